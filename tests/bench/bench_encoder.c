/* Benchmark of the token encoder's training step (issue: a transformer
 * encoder in the engine): forward, token cross-entropy, backward and an
 * Adam step of a RoBERTa-shaped encoder with a token classifier, dropout
 * on, on random tokens of full-length sequences, on a fresh backend.
 * Prints one JSON line in the format of tests/bench/bench_torch_encoder.py
 * (tests/bench/encoder.sh runs both): median step time, tokens per second,
 * the allocator's peak bytes and the bytes of θ, its gradient and Adam's
 * two moments among them (the rest: activations, their gradients, the
 * batch).
 *
 *   bench_encoder [--device D] [--d N] [--layers N] [--heads N] [--ff N]
 *                 [--batch N] [--len N] [--steps N]
 *   (defaults: cpu, 256, 4, 4, 1024, 8, 128, 3; one warm-up step first)
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/device.h"
#include "nn/encoder.h"
#include "nn/optim.h"
#include "nn/rng.h"
#include "nn/token_loss.h"
#include "util/clock.h"
#include "util/err.h"

#define VOCAB 30000
#define LABELS 9

typedef struct bench {
    eg_backend *be;
    eg_encoder e;
    eg_token_loss tl;
    eg_optim opt;
    float *theta, *grad;
    eg_tokens tok;
} bench;

static int step(bench *b, long i, double *ms)
{
    eg_backend *be = b->be;
    const float *logits;
    double loss;
    EG_TRY(be->sync(be));
    double t0 = eg_now_ms();
    eg_enc_pass pass = {1, 7, (uint64_t)i};
    EG_TRY(be->fill(be, b->e.params.total, 0.0f, b->grad));
    EG_TRY(eg_encoder_forward(&b->e, b->theta, &b->tok, &pass));
    EG_TRY(eg_encoder_head_forward(&b->e, b->theta, eg_encoder_hidden(&b->e),
                                   b->tok.b * b->tok.t, &pass, &logits));
    EG_TRY(eg_token_loss_forward(&b->tl, logits, &loss));
    EG_TRY(eg_token_loss_backward(&b->tl, 1.0f));
    EG_TRY(eg_encoder_head_backward(&b->e, b->theta, b->tl.xe.dlogits, b->grad, b->e.g_a));
    EG_TRY(eg_encoder_backward(&b->e, b->theta, b->e.g_a, b->grad));
    EG_TRY(eg_optim_step(&b->opt, b->theta, b->grad));
    EG_TRY(be->sync(be));
    *ms = eg_now_ms() - t0;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *device = "cpu";
    int d = 256, layers = 4, heads = 4, ff = 1024, batch = 8, len = 128, steps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        int *v = strcmp(argv[i], "--d") == 0        ? &d
                 : strcmp(argv[i], "--layers") == 0 ? &layers
                 : strcmp(argv[i], "--heads") == 0  ? &heads
                 : strcmp(argv[i], "--ff") == 0     ? &ff
                 : strcmp(argv[i], "--batch") == 0  ? &batch
                 : strcmp(argv[i], "--len") == 0    ? &len
                 : strcmp(argv[i], "--steps") == 0  ? &steps
                                                    : NULL;
        if (strcmp(argv[i], "--device") == 0) device = argv[i + 1];
        else if (v) *v = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_encoder: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1) steps = 1;
    bench b = {0};
    if (!(b.be = eg_device_open(device, NULL, NULL, 0))) {
        fprintf(stderr, "bench_encoder: %s\n", eg_last_error());
        return 1;
    }
    eg_encoder_cfg cfg = {.vocab = VOCAB, .d = d, .layers = layers, .heads = heads, .ff = ff,
                          .max_pos = len + 2, .type_vocab = 1, .pad_id = 1, .ln_eps = 1e-5f,
                          .hidden_drop = 0.1f, .attn_drop = 0.1f, .init_std = 0.02f,
                          .labels = LABELS};
    int n = batch * len, rc = 1;
    int32_t *ids = malloc((size_t)n * sizeof *ids), *pos = malloc((size_t)n * sizeof *pos),
            *labels = malloc((size_t)n * sizeof *labels), *lens = malloc((size_t)batch * sizeof *lens);
    double *ms = calloc((size_t)steps, sizeof *ms);
    float *host = NULL;
    int32_t *d_ids = NULL, *d_pos = NULL, *d_lens = NULL;
    if (!ids || !pos || !labels || !lens || !ms) goto out;
    eg_rng r;
    eg_rng_seed(&r, 3, 0);
    for (int i = 0; i < n; i++) {
        int t = i % len;
        ids[i] = t == 0 ? 0 : t == len - 1 ? 2 : 4 + (int)eg_rng_below(&r, VOCAB - 5);
        pos[i] = 2 + t;
        labels[i] = t == 0 || t == len - 1 ? EG_IGNORE_LABEL : (int)eg_rng_below(&r, LABELS);
    }
    for (int i = 0; i < batch; i++) lens[i] = len;
    if (eg_encoder_init(&b.e, b.be, &cfg, batch, len) != 0 ||
        eg_token_loss_init(&b.tl, b.be, n, LABELS) != 0 || eg_token_loss_set(&b.tl, labels, n) != 0)
        goto out;
    size_t P = b.e.params.total;
    eg_optim_config oc = eg_optim_adam_defaults();
    oc.lr = 3e-5f;
    oc.weight_decay = 5e-4f;
    if (!(host = malloc(P * sizeof *host)) || !(b.theta = eg_alloc_floats(b.be, P)) ||
        !(b.grad = eg_alloc_floats(b.be, P)) || eg_optim_init(&b.opt, b.be, P, &oc) != 0 ||
        !(d_ids = (int32_t *)eg_alloc_floats(b.be, (size_t)n)) ||
        !(d_pos = (int32_t *)eg_alloc_floats(b.be, (size_t)n)) ||
        !(d_lens = (int32_t *)eg_alloc_floats(b.be, (size_t)batch)))
        goto out;
    eg_encoder_init_params(&b.e, host, 1);
    if (b.be->upload(b.be, b.theta, host, P * sizeof *host) != 0 ||
        b.be->upload(b.be, d_ids, ids, (size_t)n * sizeof *ids) != 0 ||
        b.be->upload(b.be, d_pos, pos, (size_t)n * sizeof *pos) != 0 ||
        b.be->upload(b.be, d_lens, lens, (size_t)batch * sizeof *lens) != 0)
        goto out;
    b.tok = (eg_tokens){batch, len, d_ids, d_pos, d_lens};
    double warm;
    if (step(&b, 0, &warm) != 0) goto out;
    double sum = 0;
    for (int i = 0; i < steps; i++) {
        if (step(&b, i + 1, &ms[i]) != 0) goto out;
        sum += ms[i];
    }
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    double med = ms[steps / 2];
    json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:I, s:I, "
                          "s:I}",
                          "impl", "evograd", "device", device, "d", d, "layers", layers, "heads",
                          heads, "ff", ff, "batch", batch, "len", len, "steps", steps,
                          "median_ms", med, "mean_ms", sum / steps, "tokens_per_s",
                          1000.0 * n / med, "peak_bytes", (json_int_t)b.be->peak_bytes, "params",
                          (json_int_t)P, "state_bytes", (json_int_t)(4 * P * sizeof(float)));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text) printf("%s\n", text);
    free(text);
    json_decref(o);
    rc = 0;
out:
    if (rc) fprintf(stderr, "bench_encoder: %s\n", eg_last_error());
    if (b.be) {
        b.be->free(b.be, b.theta);
        b.be->free(b.be, b.grad);
        b.be->free(b.be, d_ids);
        b.be->free(b.be, d_pos);
        b.be->free(b.be, d_lens);
    }
    eg_optim_free(&b.opt);
    eg_token_loss_free(&b.tl);
    eg_encoder_free(&b.e);
    if (b.be) b.be->destroy(b.be);
    free(ids);
    free(pos);
    free(labels);
    free(lens);
    free(ms);
    free(host);
    return rc;
}
