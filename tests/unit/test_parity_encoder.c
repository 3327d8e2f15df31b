/* The token encoder against PyTorch: a tiny random XLM-R-shaped
 * checkpoint written by tests/parity/roberta_ref.py (config.json and
 * model.safetensors in F32, F16 and BF16), loaded through the engine's
 * safetensors reader, run on a padded batch; logits, loss and the
 * gradient of every tensor against a float64 RoBERTa forward and backward
 * written in the script. Also from text: words tokenised with a
 * SentencePiece model the script trains, by the engine and by the script,
 * to the same ids and the same logits. Then broken checkpoints: a truncated file, a
 * config that disagrees with the tensors, a missing tensor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/hf_config.h"
#include "data/safetensors.h"
#include "data/tokenizer.h"
#include "nn/encoder_hf.h"
#include "nn/token_loss.h"
#include "testutil.h"

#define LABELS 5
#define B 3
#define T 16

static char dir[512];

static void make_checkpoint(const char *dtype, int seed)
{
    char args[700];
    snprintf(args, sizeof args, "make %s %s %d %d", dir, dtype, seed, LABELS);
    int rc = tu_python("roberta_ref.py", args);
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
}

typedef struct batch {
    int32_t ids[B * T], pos[B * T], lens[B], labels[B * T];
} batch;

static void write_batch(const batch *bt);

/* Three sequences of 16, 9 and 3 tokens: <s> words </s> padding; labels on
 * most words. */
static void make_batch(batch *bt, int vocab, int pad)
{
    int lens[B] = {16, 9, 3};
    float r[B * T * 2];
    tu_fill_uniform(r, B * T * 2, 31, 0.0f, 1.0f);
    for (int b = 0; b < B; b++) {
        bt->lens[b] = lens[b];
        for (int t = 0; t < T; t++) {
            int i = b * T + t;
            int last = t == lens[b] - 1;
            bt->ids[i] = t >= lens[b] ? pad : t == 0 ? 0 : last ? 2 : 3 + (int)(r[i] * (vocab - 3));
            bt->pos[i] = t < lens[b] ? pad + 1 + t : pad;
            int word = t > 0 && !last && t < lens[b];
            bt->labels[i] = word && r[B * T + i] < 0.8f ? (int)(r[B * T + i] * 6.25f) % LABELS
                                                        : EG_IGNORE_LABEL;
        }
    }
    write_batch(bt);
}

/* dir/batch.json: the ids and labels, as the script reads them. */
static void write_batch(const batch *bt)
{
    char path[600];
    snprintf(path, sizeof path, "%s/batch.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    const int32_t *rows[2] = {bt->ids, bt->labels};
    const char *keys[2] = {"ids", "labels"};
    fprintf(f, "{");
    for (int k = 0; k < 2; k++) {
        fprintf(f, "%s\"%s\": [", k ? ", " : "", keys[k]);
        for (int b = 0; b < B; b++) {
            fprintf(f, "%s[", b ? ", " : "");
            for (int t = 0; t < T; t++) fprintf(f, "%s%d", t ? ", " : "", rows[k][b * T + t]);
            fprintf(f, "]");
        }
        fprintf(f, "]");
    }
    fprintf(f, "}\n");
    fclose(f);
}

/* Loads the checkpoint of dir, runs forward and backward on the batch
 * (given, or random when given is NULL) and compares with the script's
 * reference (its mode: ref, or text, which also tokenises dir's
 * sentences.json itself and checks the ids); returns the worst error. */
static double check_against_torch(const char *mode, const batch *given)
{
    eg_backend *be = tu_cpu();
    eg_hf_config hf;
    assert_int_equal(eg_hf_config_load(dir, &hf), 0);
    eg_encoder_cfg cfg;
    eg_encoder_cfg_from_hf(&hf, LABELS, &cfg);
    eg_encoder e;
    assert_int_equal(eg_encoder_init(&e, be, &cfg, B, T), 0);
    size_t P = e.params.total;
    float *theta = calloc(P, sizeof(float)), *dtheta = calloc(P, sizeof(float)),
          *dref = calloc(P, sizeof(float));
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int head = 0;
    if (eg_encoder_load_st(&e, path, theta, &head) != 0) fail_msg("load: %s", eg_last_error());
    assert_int_equal(head, 1);

    batch bt;
    if (given) {
        bt = *given;
        write_batch(&bt);
    } else {
        make_batch(&bt, cfg.vocab, cfg.pad_id);
    }
    eg_tokens tok = {B, T, bt.ids, bt.pos, bt.lens};
    eg_enc_pass pass = {0, 0, 0};
    eg_token_loss tl;
    assert_int_equal(eg_token_loss_init(&tl, be, B * T, LABELS), 0);
    assert_int_equal(eg_token_loss_set(&tl, bt.labels, B * T), 0);
    const float *logits;
    double loss;
    assert_int_equal(eg_encoder_forward(&e, theta, &tok, &pass), 0);
    assert_int_equal(
        eg_encoder_head_forward(&e, theta, eg_encoder_hidden(&e), B * T, &pass, &logits), 0);
    assert_int_equal(eg_token_loss_forward(&tl, logits, &loss), 0);
    assert_int_equal(eg_token_loss_backward(&tl, 1.0f), 0);
    assert_int_equal(eg_encoder_head_backward(&e, theta, tl.xe.dlogits, dtheta, e.g_a), 0);
    assert_int_equal(eg_encoder_backward(&e, theta, e.g_a, dtheta), 0);

    char args[700];
    snprintf(args, sizeof args, "%s %s %d", mode, dir, T);
    assert_int_equal(tu_python("roberta_ref.py", args), 0);
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    eg_st_file st;
    assert_int_equal(eg_st_open(path, &st), 0);
    float ref_logits[B * T * LABELS], ref_loss;
    int64_t shape[2] = {B * T, LABELS}, one = 1;
    assert_int_equal(eg_st_load_f32(&st, "logits", shape, 2, ref_logits), 0);
    assert_int_equal(eg_st_load_f32(&st, "loss", &one, 1, &ref_loss), 0);
    eg_st_close(&st);
    int hl;
    assert_int_equal(eg_encoder_load_st(&e, path, dref, &hl), 0);

    double worst = tu_rel_err(logits, ref_logits, B * T * LABELS);
    printf("# logits %.2e, loss %.9g vs %.9g\n", worst, loss, (double)ref_loss);
    assert_true(worst < 1e-4);
    assert_float_equal(loss, ref_loss, 1e-5 * ref_loss);
    for (int s = 0; s < e.params.n; s++) {
        const eg_slice *sl = &e.params.slices[s];
        double err = tu_rel_err(dtheta + sl->offset, dref + sl->offset, sl->count);
        if (err > worst) worst = err;
        if (err >= 1e-4) printf("# d%s: %.2e\n", sl->name, err);
        assert_true(err < 1e-4);
    }
    printf("# worst relative error over logits and gradients %.2e\n", worst);
    eg_token_loss_free(&tl);
    eg_encoder_free(&e);
    free(theta);
    free(dtheta);
    free(dref);
    be->destroy(be);
    return worst;
}

static void test_parity_f32(void **state)
{
    make_checkpoint("F32", 1);
    check_against_torch("ref", NULL);
}

/* Half-precision checkpoints read into float32 exactly: the reference
 * computes with the same rounded weights. */
static void test_parity_f16(void **state)
{
    make_checkpoint("F16", 2);
    check_against_torch("ref", NULL);
}

static void test_parity_bf16(void **state)
{
    make_checkpoint("BF16", 3);
    check_against_torch("ref", NULL);
}


/* Text to logits: a SentencePiece model trained by the script, words
 * tokenised by the engine (XLM-R's ids, first subwords labelled, a
 * sentence cut to T tokens) and by the script the way Hugging Face's NER
 * example does it, the same ids, then logits and gradients as above. */
static void test_parity_tokenised(void **state)
{
    char args[1600], text[700];
    snprintf(args, sizeof args, "make %s F32 5 %d 102 20", dir, LABELS);
    int rc = tu_python("roberta_ref.py", args);
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    snprintf(text, sizeof text, "%s/text.txt", dir);
    FILE *f = fopen(text, "w");
    for (int i = 0; i < 40; i++)
        fprintf(f, "the quick brown fox jumps over lazy dogs in Zürich and São Paulo %d\n"
                   "Anna Schmidt travelled from Berlin to the United Nations office\n", i);
    fclose(f);
    snprintf(args, sizeof args, "spm %s %s 100", dir, text);
    assert_int_equal(tu_python("roberta_ref.py", args), 0);
    eg_tokenizer *tok;
    if (eg_tokenizer_open_spm(dir, &tok) != 0) fail_msg("%s", eg_last_error());
    assert_int_equal(eg_tokenizer_vocab(tok), 102);
    static const char *const sent[B][12] = {
        {"Anna", "Schmidt", "travelled", "from", "Zürich", "to", "the", "United", "Nations",
         "office", "quickly", NULL},
        {"São", "Paulo", "dogs", "jump", NULL},
        {"Berlin", "\xe2\x80\x8b", "foxes", NULL},
    };
    static const int32_t tags[B][12] = {{1, 2, 0, 0, 3, 0, 0, 4, 4, 0, 0},
                                        {3, 3, 0, 0},
                                        {3, 0, 0}};
    batch bt;
    char path[600];
    snprintf(path, sizeof path, "%s/sentences.json", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"words\": [");
    for (int b = 0; b < B; b++) {
        int n = 0;
        while (sent[b][n]) n++;
        int len;
        assert_int_equal(eg_tokenizer_encode_sentence(tok, sent[b], NULL, tags[b], n, T,
                                                      bt.ids + b * T, bt.labels + b * T, &len),
                         0);
        eg_tokenizer_pad(bt.ids + b * T, bt.labels + b * T, len, T);
        eg_tokenizer_positions(bt.ids + b * T, T, EG_TOK_PAD, bt.pos + b * T);
        bt.lens[b] = len;
        fprintf(f, "%s[", b ? ", " : "");
        for (int w = 0; w < n; w++) {
            fputc(w ? ',' : ' ', f);
            fputc('"', f);
            fputs(sent[b][w], f); /* UTF-8 as it is; no quote or backslash in these words */
            fputc('"', f);
        }
        fprintf(f, "]");
    }
    fprintf(f, "], \"labels\": [");
    for (int b = 0; b < B; b++) {
        fprintf(f, "%s[", b ? ", " : "");
        for (int w = 0; sent[b][w]; w++) fprintf(f, "%s%d", w ? ", " : "", tags[b][w]);
        fprintf(f, "]");
    }
    fprintf(f, "]}\n");
    fclose(f);
    eg_tokenizer_free(tok);
    assert_true(bt.lens[0] == T); /* the first sentence is cut */
    check_against_torch("text", &bt);
}

static void replace_in_file(const char *path, const char *from, const char *to)
{
    size_t n;
    unsigned char *text = tu_read_all(path, &n);
    assert_non_null(text);
    char *hit = memmem(text, n, from, strlen(from));
    assert_non_null(hit);
    size_t head = (size_t)(hit - (char *)text), tail = n - head - strlen(from);
    FILE *f = fopen(path, "w");
    fwrite(text, 1, head, f);
    fputs(to, f);
    fwrite(hit + strlen(from), 1, tail, f);
    fclose(f);
    free(text);
}

static void test_broken_checkpoints(void **state)
{
    make_checkpoint("F32", 4);
    eg_backend *be = tu_cpu();
    eg_hf_config hf;
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);

    /* The config says a wider feed-forward than the tensors have. */
    char cfgpath[600];
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", dir);
    replace_in_file(cfgpath, "\"intermediate_size\": 24", "\"intermediate_size\": 32");
    if (eg_hf_config_load(dir, &hf) != 0) fail_msg("config: %s", eg_last_error());
    eg_encoder_cfg cfg;
    eg_encoder_cfg_from_hf(&hf, LABELS, &cfg);
    eg_encoder e;
    assert_int_equal(eg_encoder_init(&e, be, &cfg, 1, 4), 0);
    float *theta = calloc(e.params.total, sizeof(float));
    int head;
    tu_fails_with(eg_encoder_load_st(&e, path, theta, &head),
                  "encoder.layer.0.intermediate.dense.weight: shape [24, 16], expected [32, 16]");
    free(theta);
    eg_encoder_free(&e);

    /* A head of another size than the job's. */
    replace_in_file(cfgpath, "\"intermediate_size\": 32", "\"intermediate_size\": 24");
    assert_int_equal(eg_hf_config_load(dir, &hf), 0);
    eg_encoder_cfg_from_hf(&hf, LABELS + 2, &cfg);
    assert_int_equal(eg_encoder_init(&e, be, &cfg, 1, 4), 0);
    theta = calloc(e.params.total, sizeof(float));
    tu_fails_with(eg_encoder_load_st(&e, path, theta, &head), "classifier.weight: shape");

    /* A file cut short. */
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size - 100), 0);
    tu_fails_with(eg_encoder_load_st(&e, path, theta, &head), "truncated");

    /* A checkpoint without a tensor the encoder needs. */
    make_checkpoint("F32", 4);
    size_t n;
    unsigned char *bytes = tu_read_all(path, &n);
    const char *name = "roberta.encoder.layer.1.output.dense.bias";
    char *hit = memmem(bytes, n, name, strlen(name));
    assert_non_null(hit);
    memcpy(hit, "roberta.encoder.layer.1.output.dense.bia_", 41);
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
    free(bytes);
    tu_fails_with(eg_encoder_load_st(&e, path, theta, &head),
                  "no tensor roberta.encoder.layer.1.output.dense.bias");
    free(theta);
    eg_encoder_free(&e);
    be->destroy(be);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "%s/encoder-parity", tu_tmpdir());
    mkdir(dir, 0755);
    return 0;
}

static int teardown(void **state)
{
    tu_rmtree(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_f32),
        cmocka_unit_test(test_parity_f16),
        cmocka_unit_test(test_parity_bf16),
        cmocka_unit_test(test_parity_tokenised),
        cmocka_unit_test(test_broken_checkpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
