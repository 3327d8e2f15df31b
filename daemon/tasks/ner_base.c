/* The data, model, batches and scoring the token-classification tasks
 * share (tasks/ner_base.h). */
#include "tasks/ner_base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/hf_config.h"
#include "data/seqeval.h"
#include "data/synth_lang.h"
#include "nn/encoder_hf.h"
#include "nn/optim.h"
#include "nn/rng.h"
#include "tasks/tasks.h"
#include "util/err.h"
#include "util/json_num.h"

/* Streams of the training sets' permutations. */
enum { STREAM_SOURCE = 1, STREAM_TARGET = 2 };

typedef eg_ner_corpus corpus;

static void corpus_free(corpus *c)
{
    free(c->ids);
    free(c->labels);
    free(c->len);
    free(c->start);
    free(c->gold);
    memset(c, 0, sizeof *c);
}

/* Tokenises the sentences of cl into c. */
static int corpus_make(eg_ner_base *N, const char *name, const eg_conll *cl, corpus *c)
{
    int T = N->T;
    c->name = name;
    c->n = cl->n_sent;
    c->max_len = T;
    c->ids = malloc((size_t)c->n * T * sizeof *c->ids);
    c->labels = malloc((size_t)c->n * T * sizeof *c->labels);
    c->len = malloc((size_t)c->n * sizeof *c->len);
    c->start = calloc((size_t)c->n + 1, sizeof *c->start);
    if (!c->ids || !c->labels || !c->len || !c->start) return eg_errorf("ner: out of memory");
    for (int i = 0; i < c->n; i++) {
        long s = cl->start[i];
        int words = (int)(cl->start[i + 1] - s);
        int32_t *ids = c->ids + (size_t)i * T, *lab = c->labels + (size_t)i * T;
        if (eg_tokenizer_encode_sentence(N->tok, (const char *const *)cl->word + s, NULL,
                                         cl->tag + s, words, T, ids, lab, &c->len[i]) != 0)
            return eg_errorf("ner: %s sentence %d: %s", name, i + 1, eg_last_error());
        eg_tokenizer_pad(ids, lab, c->len[i], T);
        long k = 0;
        for (int t = 0; t < c->len[i]; t++) k += lab[t] != EG_IGNORE_LABEL;
        c->start[i + 1] = c->start[i] + k;
    }
    c->gold = malloc(((size_t)c->start[c->n] + 1) * sizeof *c->gold);
    if (!c->gold) return eg_errorf("ner: out of memory");
    for (int i = 0; i < c->n; i++) {
        long k = c->start[i];
        for (int t = 0; t < c->len[i]; t++) {
            int32_t y = c->labels[(size_t)i * T + t];
            if (y != EG_IGNORE_LABEL) c->gold[k++] = y;
        }
    }
    return 0;
}

/* The four corpora as read (files) or generated (synthetic), their tags
 * ids of the same growable set `seen`. */
typedef struct raw_data {
    eg_conll src, tgt, dev, test;
} raw_data;

static void raw_free(raw_data *r)
{
    eg_conll_free(&r->src);
    eg_conll_free(&r->tgt);
    eg_conll_free(&r->dev);
    eg_conll_free(&r->test);
}

static int read_data(const eg_ner_spec *s, const char *field, eg_tagset *seen, raw_data *r)
{
    if (strcmp(s->data, "synthetic") == 0) {
        eg_synth_lang *g;
        EG_TRY(eg_synth_lang_create((uint64_t)s->synth_seed, s->synth_remap, &g));
        int rc = eg_synth_lang_tagset(seen);
        rc = rc ? rc : eg_synth_lang_sentences(g, 0, EG_SYNTH_TRAIN, s->source_size, &r->src);
        rc = rc ? rc : eg_synth_lang_sentences(g, 1, EG_SYNTH_TRAIN, s->target_size, &r->tgt);
        rc = rc ? rc : eg_synth_lang_sentences(g, 1, EG_SYNTH_DEV, s->eval_size, &r->dev);
        rc = rc ? rc : eg_synth_lang_sentences(g, 1, EG_SYNTH_TEST, s->eval_size, &r->test);
        eg_synth_lang_free(g);
        return rc;
    }
    struct { const char *key, *path; int max; eg_conll *out; } f[] = {
        {"source", s->source, s->source_size, &r->src},
        {"target_train", s->target_train, s->target_size, &r->tgt},
        {"target_dev", s->target_dev, s->eval_size, &r->dev},
        {"target_test", s->target_test, s->eval_size, &r->test},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (eg_conll_load(f[i].path, seen, f[i].max, f[i].out) != 0)
            return eg_errorf("%s.%s: %s", field, f[i].key, eg_last_error());
    return 0;
}

/* A word-level vocabulary over every word of the training corpora. */
static int open_words(const raw_data *r, eg_tokenizer **out)
{
    long n = r->src.n_words + r->tgt.n_words;
    const char **w = malloc((size_t)n * sizeof *w);
    if (!w) return eg_errorf("ner: out of memory");
    for (long i = 0; i < r->src.n_words; i++) w[i] = r->src.word[i];
    for (long i = 0; i < r->tgt.n_words; i++) w[r->src.n_words + i] = r->tgt.word[i];
    int rc = eg_tokenizer_open_words(w, NULL, n, out);
    free(w);
    return rc;
}

static int open_data(eg_ner_base *N, eg_encoder_cfg *cfg, eg_hf_config *hf)
{
    const eg_ner_spec *s = N->spec;
    eg_tagset seen = {0};
    raw_data r = {0};
    int rc = read_data(s, N->field, &seen, &r);
    rc = rc ? rc : eg_tagset_labels(&seen, &N->labels);
    eg_conll *all[] = {&r.src, &r.tgt, &r.dev, &r.test};
    for (int i = 0; i < 4 && !rc; i++) rc = eg_conll_retag(all[i], &seen, &N->labels);
    int xlmr = strcmp(s->model, "xlmr") == 0;
    if (!rc && xlmr) {
        rc = eg_hf_config_load(s->checkpoint, hf);
        rc = rc ? rc : eg_tokenizer_open_spm(s->checkpoint, &N->tok);
        if (!rc && eg_tokenizer_vocab(N->tok) > hf->vocab_size)
            rc = eg_errorf("%s.checkpoint: the tokenizer has %d ids, the model's vocabulary %d",
                           N->field, eg_tokenizer_vocab(N->tok), hf->vocab_size);
        if (!rc && s->max_len > hf->max_position_embeddings - hf->pad_token_id - 1)
            rc = eg_errorf("%s.max_len: %d tokens, but the checkpoint has positions for %d",
                           N->field, s->max_len, hf->max_position_embeddings - hf->pad_token_id - 1);
    } else if (!rc) {
        rc = open_words(&r, &N->tok);
    }
    N->T = s->max_len;
    if (!rc) rc = corpus_make(N, "source", &r.src, &N->src);
    if (!rc) rc = corpus_make(N, "target", &r.tgt, &N->tgt);
    if (!rc) rc = corpus_make(N, "dev", &r.dev, &N->dev);
    if (!rc) rc = corpus_make(N, "test", &r.test, &N->test);
    raw_free(&r);
    eg_tagset_free(&seen);
    if (rc) return -1;
    if (xlmr) {
        eg_encoder_cfg_from_hf(hf, N->labels.n, cfg);
    } else {
        *cfg = (eg_encoder_cfg){.vocab = eg_tokenizer_vocab(N->tok), .d = s->d,
                                .layers = s->layers, .heads = s->heads, .ff = s->ff,
                                .max_pos = s->max_len + EG_TOK_PAD + 1, .type_vocab = 1,
                                .pad_id = EG_TOK_PAD, .ln_eps = 1e-5f,
                                .hidden_drop = (float)s->dropout, .attn_drop = (float)s->dropout,
                                .init_std = 0.02f, .labels = N->labels.n};
    }
    return 0;
}

/* Sentence index of position k of the stream through corpus c (which,
 * 0 source or 1 target): pass k / n in the pass's permutation. */
int eg_ner_base_stream(eg_ner_base *N, int which, long k)
{
    const corpus *c = which ? &N->tgt : &N->src;
    long pass = k / c->n;
    if (N->perm_pass[which] != pass) {
        eg_rng r;
        eg_rng_seed(&r, N->seed, (uint64_t)(which ? STREAM_TARGET : STREAM_SOURCE) << 40 |
                                         (uint64_t)pass);
        for (int i = 0; i < c->n; i++) N->perm[which][i] = (uint32_t)i;
        eg_rng_shuffle(&r, N->perm[which], (uint32_t)c->n);
        N->perm_pass[which] = pass;
    }
    return (int)N->perm[which][k % c->n];
}

/* Uploads rows idx[0..b) of c, padded to the longest, and their labels;
 * fills *tok. */
int eg_ner_base_batch(eg_ner_base *N, const corpus *c, const int *idx, int b, eg_tokens *tok)
{
    eg_backend *be = N->be;
    int t = 1;
    for (int i = 0; i < b; i++)
        if (c->len[idx[i]] > t) t = c->len[idx[i]];
    for (int i = 0; i < b; i++) {
        memcpy(N->h_ids + (size_t)i * t, c->ids + (size_t)idx[i] * c->max_len, t * sizeof(int32_t));
        memcpy(N->h_labels + (size_t)i * t, c->labels + (size_t)idx[i] * c->max_len,
               t * sizeof(int32_t));
        eg_tokenizer_positions(N->h_ids + (size_t)i * t, t, EG_TOK_PAD, N->h_pos + (size_t)i * t);
        N->h_lens[i] = c->len[idx[i]];
    }
    size_t n = (size_t)b * t * sizeof(int32_t);
    EG_TRY(be->upload(be, N->d_ids, N->h_ids, n));
    EG_TRY(be->upload(be, N->d_pos, N->h_pos, n));
    EG_TRY(be->upload(be, N->d_lens, N->h_lens, (size_t)b * sizeof(int32_t)));
    EG_TRY(eg_token_loss_set(&N->tl, N->h_labels, b * t));
    *tok = (eg_tokens){b, t, N->d_ids, N->d_pos, N->d_lens};
    return 0;
}

/* Forward (and, when dtheta is not NULL, backward with the loss scaled
 * by `scale`, accumulating into dtheta) of one batch; its mean loss over
 * labelled tokens into *loss. */
int eg_ner_base_pass(eg_ner_base *N, const float *theta, const eg_tokens *tok,
                     const eg_enc_pass *pass, const eg_ner_hidden_map *map, float *dtheta,
                     float scale, double *loss)
{
    const float *logits, *h;
    int n = tok->b * tok->t;
    EG_TRY(eg_encoder_forward(&N->enc, theta, tok, pass));
    h = eg_encoder_hidden(&N->enc);
    if (map) EG_TRY(map->fn(map->ctx, h, n, &h));
    EG_TRY(eg_encoder_head_forward(&N->enc, theta, h, n, pass, &logits));
    EG_TRY(eg_token_loss_forward(&N->tl, logits, loss));
    if (!dtheta) return 0;
    EG_TRY(eg_token_loss_backward(&N->tl, scale));
    EG_TRY(eg_encoder_head_backward(&N->enc, theta, N->tl.xe.dlogits, dtheta, N->enc.g_a));
    return eg_encoder_backward(&N->enc, theta, N->enc.g_a, dtheta);
}

/* Entity-level F1 (percent) of the current model on c (its first
 * eval_limit sentences when the job sets one), and its mean token loss. */
static int score(eg_ner_base *N, const float *theta, const corpus *full, double *f1,
                 double *loss)
{
    corpus cut = *full, *c = &cut;
    if (N->eval_limit > 0 && N->eval_limit < c->n) c->n = N->eval_limit;
    int32_t *pred = calloc((size_t)c->start[c->n] + 1, sizeof *pred);
    if (!pred) return eg_errorf("ner: out of memory");
    eg_enc_pass pass = {0, 0, 0};
    double loss_sum = 0;
    long tokens = 0;
    int rc = 0;
    for (int i0 = 0; i0 < c->n && !rc; i0 += N->B) {
        int b = c->n - i0 < N->B ? c->n - i0 : N->B, idx[1024];
        for (int k = 0; k < b; k++) idx[k] = i0 + k;
        eg_tokens tok;
        double l;
        rc = eg_ner_base_batch(N, c, idx, b, &tok);
        rc = rc ? rc : eg_ner_base_pass(N, theta, &tok, &pass, NULL, NULL, 0, &l);
        rc = rc ? rc : eg_token_loss_predict(&N->tl, N->h_pred);
        if (rc) break;
        loss_sum += l * N->tl.labelled;
        tokens += N->tl.labelled;
        for (int k = 0; k < b; k++) {
            long at = c->start[i0 + k];
            for (int t = 0; t < tok.t; t++)
                if (N->h_labels[(size_t)k * tok.t + t] != EG_IGNORE_LABEL)
                    pred[at++] = N->h_pred[(size_t)k * tok.t + t];
        }
    }
    eg_seqeval s;
    if (!rc) rc = eg_seqeval_score(&N->labels, c->start, c->n, c->gold, pred, N->mode, &s);
    free(pred);
    EG_TRY(rc);
    *f1 = 100.0 * s.f1;
    *loss = tokens ? loss_sum / tokens : 0;
    eg_seqeval_free(&s);
    return 0;
}


int eg_ner_base_open(eg_ner_base *N, eg_backend *be, const eg_job *job, const eg_ner_spec *s,
                     const char *field, float **theta_out)
{
    memset(N, 0, sizeof *N);
    N->be = be;
    N->seed = job->seed;
    N->eval_limit = job->eval_limit;
    N->spec = s;
    N->field = field;
    N->B = job->batch_size;
    N->mode = strcmp(s->f1_mode, "strict") == 0 ? EG_SEQEVAL_STRICT : EG_SEQEVAL_DEFAULT;
    N->perm_pass[0] = N->perm_pass[1] = -1;
    N->best.step = -1;
    *theta_out = NULL;
    eg_encoder_cfg cfg;
    eg_hf_config hf;
    EG_TRY(open_data(N, &cfg, &hf));
    int BT = N->B * N->T;
    EG_TRY(eg_encoder_init(&N->enc, be, &cfg, N->B, N->T));
    EG_TRY(eg_token_loss_init(&N->tl, be, BT, cfg.labels));
    N->d_ids = (int32_t *)eg_alloc_floats(be, (size_t)BT);
    N->d_pos = (int32_t *)eg_alloc_floats(be, (size_t)BT);
    N->d_lens = (int32_t *)eg_alloc_floats(be, (size_t)N->B);
    N->h_ids = malloc((size_t)BT * sizeof(int32_t));
    N->h_pos = malloc((size_t)BT * sizeof(int32_t));
    N->h_labels = malloc((size_t)BT * sizeof(int32_t));
    N->h_pred = malloc((size_t)BT * sizeof(int32_t));
    N->h_lens = malloc((size_t)N->B * sizeof(int32_t));
    N->perm[0] = malloc((size_t)N->src.n * sizeof(uint32_t));
    N->perm[1] = malloc((size_t)N->tgt.n * sizeof(uint32_t));
    if (!N->d_ids || !N->d_pos || !N->d_lens || !N->h_ids || !N->h_pos || !N->h_labels ||
        !N->h_pred || !N->h_lens || !N->perm[0] || !N->perm[1])
        return eg_errorf("%s: out of memory", field);
    size_t P = N->enc.params.total;
    float *host = malloc(P * sizeof(float));
    if (!host) return eg_errorf("%s: out of memory for %zu parameters", field, P);
    eg_encoder_init_params(&N->enc, host, N->seed);
    if (strcmp(s->model, "xlmr") == 0) {
        char path[600];
        int head;
        snprintf(path, sizeof path, "%s/model.safetensors", s->checkpoint);
        if (eg_encoder_load_st(&N->enc, path, host, &head) != 0) {
            free(host);
            return eg_errorf("%s.checkpoint: %s", field, eg_last_error());
        }
    }
    *theta_out = host;
    return 0;
}

int eg_ner_base_evaluate(eg_ner_base *N, const float *theta, long step, eg_eval *ev)
{
    double dev_loss;
    EG_TRY(score(N, theta, &N->dev, &ev->dev_f1, &dev_loss));
    EG_TRY(score(N, theta, &N->test, &ev->test_f1, &ev->test_loss));
    if (N->best.step < 0 || ev->dev_f1 > N->best.dev_f1) {
        N->best.dev_f1 = ev->dev_f1;
        N->best.test_f1 = ev->test_f1;
        N->best.step = step;
    }
    return 0;
}

int eg_ner_base_report(const eg_ner_base *N, json_t *o)
{
    int rc = json_object_set_new(o, "labels", json_integer(N->labels.n));
    rc |= json_object_set_new(o, "vocab", json_integer(eg_tokenizer_vocab(N->tok)));
    rc |= json_object_set_new(o, "source_sentences", json_integer(N->src.n));
    rc |= json_object_set_new(o, "target_sentences", json_integer(N->tgt.n));
    rc |= json_object_set_new(o, "dev_sentences", json_integer(N->dev.n));
    rc |= json_object_set_new(o, "test_sentences", json_integer(N->test.n));
    rc |= json_object_set_new(o, "max_len", json_integer(N->T));
    if (N->best.step >= 0) {
        rc |= json_object_set_new(o, "best_step", json_integer(N->best.step));
        rc |= json_object_set_new(o, "best_dev_f1", eg_json_f32((float)N->best.dev_f1));
        rc |= json_object_set_new(o, "test_f1_at_best_dev", eg_json_f32((float)N->best.test_f1));
    }
    return rc ? eg_errorf("%s: out of memory", N->field) : 0;
}

void eg_ner_base_free(eg_ner_base *N)
{
    eg_backend *be = N->be;
    eg_encoder_free(&N->enc);
    eg_token_loss_free(&N->tl);
    if (be) {
        be->free(be, N->d_ids);
        be->free(be, N->d_pos);
        be->free(be, N->d_lens);
    }
    free(N->h_ids);
    free(N->h_pos);
    free(N->h_labels);
    free(N->h_pred);
    free(N->h_lens);
    free(N->perm[0]);
    free(N->perm[1]);
    corpus_free(&N->src);
    corpus_free(&N->tgt);
    corpus_free(&N->dev);
    corpus_free(&N->test);
    eg_tokenizer_free(N->tok);
    eg_tagset_free(&N->labels);
    memset(N, 0, sizeof *N);
}

eg_optim_config eg_ner_schedule(const eg_optim_config *cfg, const eg_job *job,
                                const eg_ner_spec *s, const eg_task *t)
{
    eg_optim_config oc = *cfg;
    long total = eg_task_total_steps(job, t);
    if (s->warmup > 0 || oc.n_milestones == 0) {
        oc.n_milestones = 0;
        oc.decay_steps = total;
        oc.warmup_steps = (long)(s->warmup * (double)total);
    }
    return oc;
}
