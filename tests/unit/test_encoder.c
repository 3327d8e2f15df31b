/* The token encoder's layers and the whole encoder: finite-difference
 * checks of LayerNorm, GELU, the masked softmax, the embedding lookup and
 * the batched GEMM against plain GEMMs; Philox dropout (rate, scaling,
 * the same mask forward and backward); the whole encoder + head + token
 * cross-entropy against central differences, with dropout on and off and
 * padded sequences; the token loss's ignore index. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/encoder.h"
#include "nn/philox.h"
#include "nn/token_loss.h"
#include "testutil.h"

/* ---- single operations: loss = sum w * op(x) ---- */

typedef struct op_fd {
    eg_backend *be;
    int n, d;
    float *x, *y, *w, *gamma, *beta, *mean, *rstd;
    int32_t *lens;
    int group;
    int kind; /* 0 layernorm, 1 gelu, 2 softmax */
} op_fd;

static double op_loss(void *p)
{
    op_fd *f = p;
    size_t nd = (size_t)f->n * f->d;
    int rc = f->kind == 0   ? f->be->layernorm_fwd(f->be, f->n, f->d, f->x, f->gamma, f->beta,
                                                   1e-5f, f->y, f->mean, f->rstd)
             : f->kind == 1 ? f->be->gelu_fwd(f->be, nd, f->x, f->y)
                            : f->be->softmax_fwd(f->be, f->n, f->d, f->group, f->lens, f->x, f->y);
    assert_int_equal(rc, 0);
    return tu_project(f->y, f->w, nd);
}

static void op_setup(op_fd *f, int kind, int n, int d)
{
    memset(f, 0, sizeof *f);
    f->be = tu_cpu();
    f->kind = kind;
    f->n = n;
    f->d = d;
    size_t nd = (size_t)n * d;
    f->x = malloc(nd * sizeof(float));
    f->y = malloc(nd * sizeof(float));
    f->w = malloc(nd * sizeof(float));
    f->gamma = malloc((size_t)d * sizeof(float));
    f->beta = malloc((size_t)d * sizeof(float));
    f->mean = malloc((size_t)n * sizeof(float));
    f->rstd = malloc((size_t)n * sizeof(float));
    tu_fill_uniform(f->x, nd, 1, -2.0f, 2.0f);
    tu_fill_uniform(f->w, nd, 2, -1.0f, 1.0f);
    tu_fill_uniform(f->gamma, (size_t)d, 3, 0.5f, 1.5f);
    tu_fill_uniform(f->beta, (size_t)d, 4, -0.5f, 0.5f);
}

static void op_teardown(op_fd *f)
{
    free(f->x);
    free(f->y);
    free(f->w);
    free(f->gamma);
    free(f->beta);
    free(f->mean);
    free(f->rstd);
    free(f->lens);
    f->be->destroy(f->be);
}

static void test_layernorm_fd(void **state)
{
    op_fd f;
    op_setup(&f, 0, 5, 12);
    size_t nd = 60;
    float *dx = calloc(nd, sizeof(float)), *dg = calloc(12, sizeof(float)),
          *db = calloc(12, sizeof(float)), *dx2 = malloc(nd * sizeof(float));
    op_loss(&f);
    assert_int_equal(f.be->layernorm_bwd(f.be, 5, 12, f.x, f.w, f.gamma, f.mean, f.rstd, dx, 0,
                                         dg, db), 0);
    int bad = tu_check_grad("ln dx", f.x, dx, nd, op_loss, &f, 1e-2f, 1e-2, 1e-4, 60);
    bad += tu_check_grad("ln dgamma", f.gamma, dg, 12, op_loss, &f, 1e-2f, 1e-2, 1e-4, 12);
    bad += tu_check_grad("ln dbeta", f.beta, db, 12, op_loss, &f, 1e-2f, 1e-2, 1e-4, 12);
    assert_int_equal(bad, 0);
    /* acc adds to what dx holds; dx NULL still gives dgamma, dbeta. */
    for (size_t i = 0; i < nd; i++) dx2[i] = 1.0f;
    op_loss(&f);
    float *dg2 = calloc(12, sizeof(float)), *db2 = calloc(12, sizeof(float));
    assert_int_equal(f.be->layernorm_bwd(f.be, 5, 12, f.x, f.w, f.gamma, f.mean, f.rstd, dx2, 1,
                                         dg2, db2), 0);
    for (size_t i = 0; i < nd; i++) assert_float_equal(dx2[i], dx[i] + 1.0f, 1e-5);
    memset(dg2, 0, 12 * sizeof(float));
    assert_int_equal(f.be->layernorm_bwd(f.be, 5, 12, f.x, f.w, f.gamma, f.mean, f.rstd, NULL, 0,
                                         dg2, db2), 0);
    assert_true(tu_rel_err(dg2, dg, 12) < 1e-5);
    /* Each row normalised: mean beta, spread gamma. */
    for (int j = 0; j < 12; j++) f.gamma[j] = 1.0f, f.beta[j] = 0.0f;
    op_loss(&f);
    for (int r = 0; r < 5; r++) {
        double s = 0, ss = 0;
        for (int j = 0; j < 12; j++) s += f.y[r * 12 + j], ss += (double)f.y[r * 12 + j] * f.y[r * 12 + j];
        assert_true(fabs(s / 12) < 1e-5 && fabs(ss / 12 - 1) < 1e-3);
    }
    free(dx);
    free(dg);
    free(db);
    free(dx2);
    free(dg2);
    free(db2);
    op_teardown(&f);
}

static void test_gelu_fd(void **state)
{
    op_fd f;
    op_setup(&f, 1, 4, 10);
    float *dx = malloc(40 * sizeof(float));
    op_loss(&f);
    assert_int_equal(f.be->gelu_bwd(f.be, 40, f.x, f.w, dx), 0);
    assert_int_equal(tu_check_grad("gelu", f.x, dx, 40, op_loss, &f, 1e-2f, 1e-2, 1e-4, 40), 0);
    /* The erf form: gelu(1) = Phi(1) = 0.841345. */
    float one = 1.0f, y;
    f.be->gelu_fwd(f.be, 1, &one, &y);
    assert_float_equal(y, 0.8413447f, 1e-6);
    free(dx);
    op_teardown(&f);
}

static void test_softmax_masked_fd(void **state)
{
    op_fd f;
    op_setup(&f, 2, 6, 5); /* 3 sequences of 2 rows each */
    f.group = 2;
    f.lens = malloc(3 * sizeof(int32_t));
    f.lens[0] = 5;
    f.lens[1] = 2;
    f.lens[2] = 1;
    float *dx = malloc(30 * sizeof(float));
    op_loss(&f);
    for (int r = 0; r < 6; r++) {
        int len = f.lens[r / 2];
        double s = 0;
        for (int j = 0; j < 5; j++) {
            if (j >= len) assert_true(f.y[r * 5 + j] == 0.0f);
            s += f.y[r * 5 + j];
        }
        assert_float_equal(s, 1.0, 1e-6);
    }
    assert_int_equal(f.be->softmax_bwd(f.be, 6, 5, f.y, f.w, dx), 0);
    int bad = tu_check_grad("softmax", f.x, dx, 30, op_loss, &f, 1e-2f, 1e-2, 1e-5, 30);
    assert_int_equal(bad, 0);
    for (int j = 2; j < 5; j++) assert_true(dx[2 * 5 + j] == 0.0f); /* masked: no gradient */
    free(dx);
    op_teardown(&f);
}

static void test_embed_and_batched_gemm(void **state)
{
    eg_backend *be = tu_cpu();
    float table[4 * 3], y[5 * 3], dt[4 * 3] = {0}, dy[5 * 3];
    int32_t ids[5] = {2, 0, 2, 1, 3};
    tu_fill_uniform(table, 12, 5, -1, 1);
    tu_fill_uniform(dy, 15, 6, -1, 1);
    assert_int_equal(be->embed_fwd(be, 5, 3, ids, table, y, 0), 0);
    assert_int_equal(be->embed_fwd(be, 5, 3, ids, table, y, 1), 0);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++) assert_float_equal(y[i * 3 + j], 2 * table[ids[i] * 3 + j], 1e-7);
    assert_int_equal(be->embed_bwd(be, 5, 3, ids, 1, dy, dt), 0); /* row 1 is padding */
    for (int j = 0; j < 3; j++) {
        assert_float_equal(dt[2 * 3 + j], dy[0 * 3 + j] + dy[2 * 3 + j], 1e-6);
        assert_true(dt[1 * 3 + j] == 0.0f);
        assert_float_equal(dt[3 * 3 + j], dy[4 * 3 + j], 1e-7);
    }
    /* A (2 x 3) batch of per-head products in a fused (t, 3 d) layout,
     * against one plain GEMM per head. */
    enum { T = 4, D = 6, H = 3, DH = 2, B = 2 };
    float qkv[B * T * 3 * D], s[B * H * T * T], ref[T * T];
    tu_fill_uniform(qkv, sizeof qkv / sizeof qkv[0], 7, -1, 1);
    eg_gemm_batch gb = {B, H, (size_t)T * 3 * D, DH, (size_t)T * 3 * D, DH, (size_t)H * T * T,
                        T * T};
    assert_int_equal(be->gemm_batched(be, &gb, 0, 1, T, T, DH, 0.5f, qkv, 3 * D, qkv + D, 3 * D,
                                      0.0f, s, T), 0);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *q = qkv + b * T * 3 * D + h * DH, *k = q + D;
            be->gemm(be, 0, 1, T, T, DH, 0.5f, q, 3 * D, k, 3 * D, 0.0f, ref, T);
            assert_true(tu_rel_err(s + (b * H + h) * T * T, ref, T * T) < 1e-6);
        }
    be->destroy(be);
}

static void test_dropout_mask(void **state)
{
    eg_backend *be = tu_cpu();
    size_t n = 20000;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)),
          *z = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 1.0f;
    assert_int_equal(be->dropout(be, n, 0.1f, 9, 3, x, y), 0);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(y[i] == 0.0f || fabsf(y[i] - 1.0f / 0.9f) < 1e-6f);
        kept += y[i] != 0.0f;
        assert_int_equal(y[i] != 0.0f, eg_dropout_keep(0.1f, 9, 3, i));
    }
    /* 90 % kept, within 5 standard deviations (sd = sqrt(n 0.09) = 42). */
    assert_true(labs((long)kept - 18000) < 210);
    /* Same key and stream: the same mask (forward = backward); another
     * stream: another mask. */
    assert_int_equal(be->dropout(be, n, 0.1f, 9, 3, x, z), 0);
    assert_memory_equal(y, z, n * sizeof(float));
    assert_int_equal(be->dropout(be, n, 0.1f, 9, 4, x, z), 0);
    assert_true(memcmp(y, z, n * sizeof(float)) != 0);
    free(x);
    free(y);
    free(z);
    be->destroy(be);
}

/* ---- the whole encoder ---- */

typedef struct enc_fd {
    eg_backend *be;
    eg_encoder e;
    eg_token_loss tl;
    eg_tokens tok;
    eg_enc_pass pass;
    float *theta, *dtheta;
    int32_t ids[12], pos[12], lens[2], labels[12];
} enc_fd;

static double enc_loss(void *p)
{
    enc_fd *f = p;
    const float *logits;
    double loss;
    if (eg_encoder_forward(&f->e, f->theta, &f->tok, &f->pass) != 0 ||
        eg_encoder_head_forward(&f->e, f->theta, eg_encoder_hidden(&f->e), 12, &f->pass,
                                &logits) != 0 ||
        eg_token_loss_forward(&f->tl, logits, &loss) != 0)
        fail_msg("encoder: %s", eg_last_error());
    return loss;
}

/* Two sequences of 6 tokens, the second padded after 4; labels on some
 * tokens only. */
static void enc_setup(enc_fd *f, float drop)
{
    memset(f, 0, sizeof *f);
    f->be = tu_cpu();
    eg_encoder_cfg c = {.vocab = 13, .d = 8, .layers = 2, .heads = 2, .ff = 12, .max_pos = 12,
                        .type_vocab = 1, .pad_id = 1, .ln_eps = 1e-5f, .hidden_drop = drop,
                        .attn_drop = drop, .init_std = 0.3f, .labels = 3};
    assert_int_equal(eg_encoder_init(&f->e, f->be, &c, 2, 6), 0);
    size_t P = f->e.params.total;
    f->theta = malloc(P * sizeof(float));
    f->dtheta = calloc(P, sizeof(float));
    eg_encoder_init_params(&f->e, f->theta, 3);
    /* Non-trivial LayerNorm affine parameters and biases. */
    float *jit = malloc(P * sizeof(float));
    tu_fill_uniform(jit, P, 4, -0.2f, 0.2f);
    for (size_t i = 0; i < P; i++) f->theta[i] += jit[i];
    free(jit);
    memset(f->theta + f->e.word + 1 * 8, 0, 8 * sizeof(float));
    int32_t ids[12] = {0, 5, 7, 9, 4, 2, 0, 11, 6, 2, 1, 1};
    int32_t lab[12] = {-100, 0, 2, 1, -100, -100, -100, 2, 1, -100, -100, -100};
    memcpy(f->ids, ids, sizeof ids);
    memcpy(f->labels, lab, sizeof lab);
    f->lens[0] = 6;
    f->lens[1] = 4;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 6; t++) f->pos[b * 6 + t] = t < f->lens[b] ? 2 + t : 1;
    f->tok = (eg_tokens){2, 6, f->ids, f->pos, f->lens};
    f->pass = (eg_enc_pass){drop > 0, 21, 4};
    assert_int_equal(eg_token_loss_init(&f->tl, f->be, 12, 3), 0);
    assert_int_equal(eg_token_loss_set(&f->tl, f->labels, 12), 0);
}

static void enc_teardown(enc_fd *f)
{
    eg_token_loss_free(&f->tl);
    eg_encoder_free(&f->e);
    free(f->theta);
    free(f->dtheta);
    f->be->destroy(f->be);
}

static void enc_backward(enc_fd *f)
{
    enc_loss(f);
    assert_int_equal(eg_token_loss_backward(&f->tl, 1.0f), 0);
    assert_int_equal(eg_encoder_head_backward(&f->e, f->theta, f->tl.xe.dlogits, f->dtheta,
                                              f->e.g_a), 0);
    assert_int_equal(eg_encoder_backward(&f->e, f->theta, f->e.g_a, f->dtheta), 0);
}

static void check_encoder(float drop)
{
    enc_fd f;
    enc_setup(&f, drop);
    enc_backward(&f);
    size_t P = f.e.params.total;
    /* Every slice probed, padding rows excluded (they get no gradient). */
    int bad = 0;
    for (int s = 0; s < f.e.params.n; s++) {
        const eg_slice *sl = &f.e.params.slices[s];
        bad += tu_check_grad(sl->name, f.theta + sl->offset, f.dtheta + sl->offset, sl->count,
                             enc_loss, &f, 5e-3f, 2e-2, 2e-5, 24);
    }
    assert_int_equal(bad, 0);
    for (int j = 0; j < 8; j++) {
        assert_true(f.dtheta[f.e.word + 1 * 8 + j] == 0.0f);
        assert_true(f.dtheta[f.e.pos + 1 * 8 + j] == 0.0f);
    }
    /* Tokens never seen get no gradient; a padded token changes nothing. */
    for (int j = 0; j < 8; j++) assert_true(f.dtheta[f.e.word + 3 * 8 + j] == 0.0f);
    (void)P;
    double before = enc_loss(&f);
    f.ids[11] = 8;
    double after = enc_loss(&f);
    assert_true(before == after);
    enc_teardown(&f);
}

static void test_encoder_fd(void **state) { check_encoder(0.0f); }
static void test_encoder_fd_dropout(void **state) { check_encoder(0.2f); }

static void test_encoder_errors(void **state)
{
    eg_backend *be = tu_cpu();
    eg_encoder e;
    eg_encoder_cfg c = {.vocab = 13, .d = 10, .layers = 1, .heads = 4, .ff = 12, .max_pos = 12,
                        .type_vocab = 1, .pad_id = 1, .ln_eps = 1e-5f, .init_std = 0.02f,
                        .labels = 3};
    tu_fails_with(eg_encoder_init(&e, be, &c, 2, 6), "not a multiple of heads");
    c.heads = 2;
    tu_fails_with(eg_encoder_init(&e, be, &c, 2, 11), "at most 10 tokens");
    c.attn_drop = 1.0f;
    tu_fails_with(eg_encoder_init(&e, be, &c, 2, 6), "dropout");
    c.attn_drop = 0.1f;
    assert_int_equal(eg_encoder_init(&e, be, &c, 2, 6), 0);
    float *theta = calloc(e.params.total, sizeof(float));
    int32_t ids[21] = {0}, lens[3] = {7, 7, 7};
    eg_tokens tok = {3, 7, ids, ids, lens};
    eg_enc_pass pass = {0, 0, 0};
    tu_fails_with(eg_encoder_forward(&e, theta, &tok, &pass), "exceeds the capacity");
    eg_token_loss tl;
    assert_int_equal(eg_token_loss_init(&tl, be, 4, 3), 0);
    int32_t bad[2] = {0, 3};
    tu_fails_with(eg_token_loss_set(&tl, bad, 2), "label 3 of token 1");
    eg_token_loss_free(&tl);
    free(theta);
    eg_encoder_free(&e);
    be->destroy(be);
}

/* Ignored tokens contribute neither to the loss nor to its gradient, and
 * the mean is over labelled tokens only. */
static void test_token_loss_ignore(void **state)
{
    eg_backend *be = tu_cpu();
    eg_token_loss tl;
    assert_int_equal(eg_token_loss_init(&tl, be, 4, 2), 0);
    float logits[8] = {0, 0, 2, 0, 5, -5, 0, 1};
    int32_t labels[4] = {0, -100, 1, -100};
    assert_int_equal(eg_token_loss_set(&tl, labels, 4), 0);
    double loss;
    assert_int_equal(eg_token_loss_forward(&tl, logits, &loss), 0);
    double want = (log(2.0) + (10.0 + log1p(exp(-10.0)))) / 2;
    assert_float_equal(loss, want, 1e-5);
    assert_int_equal(eg_token_loss_backward(&tl, 1.0f), 0);
    assert_true(tl.xe.dlogits[2] == 0.0f && tl.xe.dlogits[3] == 0.0f);
    assert_float_equal(tl.xe.dlogits[0], (0.5 - 1) / 2, 1e-6);
    int32_t pred[4];
    assert_int_equal(eg_token_loss_predict(&tl, pred), 0);
    assert_int_equal(pred[0], 0);
    assert_int_equal(pred[1], 0);
    assert_int_equal(pred[2], 0);
    assert_int_equal(pred[3], 1);
    eg_token_loss_free(&tl);
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm_fd),
        cmocka_unit_test(test_gelu_fd),
        cmocka_unit_test(test_softmax_masked_fd),
        cmocka_unit_test(test_embed_and_batched_gemm),
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_encoder_fd),
        cmocka_unit_test(test_encoder_fd_dropout),
        cmocka_unit_test(test_encoder_errors),
        cmocka_unit_test(test_token_loss_ignore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
