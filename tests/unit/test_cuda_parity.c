/* Every operation of the CUDA backend against the CPU reference: the same
 * random inputs go through alloc/upload on both backends, the op runs on
 * each, and the downloaded results are compared (relative error measured
 * against the CPU's largest value). Philox noise must be bit-identical.
 *
 * Needs a GPU: with none (or a build without the CUDA backend) every test
 * is skipped and the binary says so once on stderr. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/device.h"
#include "nn/fewshot.h"
#include "nn/models.h"
#include "nn/philox.h"
#include "testutil.h"
#include "util/err.h"

enum { CPU = 0, GPU = 1 };

/* Default tolerance of op results; optimiser steps use OPT_TOL. */
#define TOL 1e-4
#define OPT_TOL 1e-5

/* Both backends, opened once for the whole binary. */
static struct {
    eg_backend *be[2]; /* [CPU], [GPU] */
    int no_gpu;        /* no usable GPU: every test skips */
    char why[512];     /* why the GPU could not be opened */
} P;

/* One tensor held on both backends: d[CPU] and d[GPU] have n elements of
 * `size` bytes each. */
typedef struct twin {
    void *d[2];
    size_t n, size;
} twin;

/* Everything a test allocates, freed by its teardown (also after a
 * failed assertion). */
#define MAX_LIVE 512
static twin *live_twins[MAX_LIVE];
static void *live_host[MAX_LIVE];
static int n_twins, n_host;

#define F(t, s) ((float *)(t)->d[s])
#define I32(t, s) ((int32_t *)(t)->d[s])

/* Runs `call` once per backend with `be` the backend and `s` its index
 * (CPU, GPU); fails the test if it returns non-zero. */
#define BOTH(call)                                                             \
    do {                                                                       \
        for (int s = 0; s < 2; s++) {                                          \
            eg_backend *be = P.be[s];                                          \
            if ((call) != 0)                                                   \
                fail_msg("%s: %s failed: %s", be->name, #call,                 \
                         eg_last_error());                                     \
        }                                                                      \
    } while (0)

/* ---- setup ---- */

static int group_setup(void **state)
{
    memset(&P, 0, sizeof P);
    if (eg_gpu_count() == 0) {
        eg_gpu_info info;
        const char *why = eg_gpu_info_get(0, &info) != 0 ? eg_last_error()
                                                         : "no device";
        fprintf(stderr, "test_cuda_parity: no usable GPU (%s): skipped\n", why);
        P.no_gpu = 1;
        return 0;
    }
    eg_device_options opt = {.tf32 = 0, .nondeterministic = 0};
    P.be[GPU] = eg_device_open("cuda:0", &opt, NULL, 0);
    if (!P.be[GPU]) {
        snprintf(P.why, sizeof P.why, "cannot open cuda:0: %s", eg_last_error());
        return 0;
    }
    P.be[CPU] = eg_cpu_backend_create();
    if (!P.be[CPU]) {
        snprintf(P.why, sizeof P.why, "cannot open the cpu: %s", eg_last_error());
        P.be[GPU]->destroy(P.be[GPU]);
        P.be[GPU] = NULL;
    }
    return 0;
}

static int group_teardown(void **state)
{
    for (int s = 0; s < 2; s++)
        if (P.be[s]) P.be[s]->destroy(P.be[s]);
    memset(&P, 0, sizeof P);
    return 0;
}

/* Skips the test without a GPU; fails it if the GPU did not open. */
static void need_gpu(void)
{
    if (P.no_gpu) skip();
    if (!P.be[GPU]) fail_msg("%s", P.why);
}

static int test_teardown(void **state)
{
    for (int i = 0; i < n_twins; i++) {
        twin *t = live_twins[i];
        for (int s = 0; s < 2; s++)
            if (t->d[s] && P.be[s]) P.be[s]->free(P.be[s], t->d[s]);
        free(t);
    }
    for (int i = 0; i < n_host; i++) free(live_host[i]);
    n_twins = n_host = 0;
    return 0;
}

/* ---- tensors on both backends ---- */

/* Host memory freed by the test's teardown. */
static void *scratch(size_t bytes)
{
    if (n_host == MAX_LIVE) fail_msg("test allocates too many host buffers");
    void *p = calloc(1, bytes ? bytes : 1);
    assert_non_null(p);
    live_host[n_host++] = p;
    return p;
}

/* n elements of `size` bytes on both backends, with the host's values. */
static twin *tw_upload(const void *host, size_t n, size_t size)
{
    if (n_twins == MAX_LIVE) fail_msg("test allocates too many tensors");
    twin *t = calloc(1, sizeof *t);
    assert_non_null(t);
    live_twins[n_twins++] = t;
    t->n = n;
    t->size = size;
    for (int s = 0; s < 2; s++) {
        eg_backend *be = P.be[s];
        t->d[s] = be->alloc(be, n * size);
        if (!t->d[s]) fail_msg("%s: alloc of %zu bytes: %s", be->name, n * size,
                               eg_last_error());
        if (be->upload(be, t->d[s], host, n * size) != 0)
            fail_msg("%s: upload: %s", be->name, eg_last_error());
    }
    return t;
}

/* n floats uniform in [lo, hi), the same on both backends. */
static twin *tw_rand(size_t n, uint64_t seed, float lo, float hi)
{
    float *h = scratch(n * sizeof *h);
    tu_fill_uniform(h, n, seed, lo, hi);
    return tw_upload(h, n, sizeof(float));
}

/* n floats, all `value`. */
static twin *tw_const(size_t n, float value)
{
    float *h = scratch(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = value;
    return tw_upload(h, n, sizeof(float));
}

/* n int32 labels in [0, classes). */
static twin *tw_labels(size_t n, int classes, uint64_t seed)
{
    float *u = scratch(n * sizeof *u);
    int32_t *h = scratch(n * sizeof *h);
    tu_fill_uniform(u, n, seed, 0.0f, (float)classes);
    for (size_t i = 0; i < n; i++) {
        h[i] = (int32_t)u[i];
        if (h[i] >= classes) h[i] = classes - 1;
    }
    return tw_upload(h, n, sizeof(int32_t));
}

/* The contents of side s of t, downloaded into scratch memory. */
static void *tw_get(const twin *t, int s)
{
    eg_backend *be = P.be[s];
    void *h = scratch(t->n * t->size);
    if (be->download(be, h, t->d[s], t->n * t->size) != 0)
        fail_msg("%s: download: %s", be->name, eg_last_error());
    return h;
}

/* Fails unless the GPU's floats are within `tol` of the CPU's
 * (tu_rel_err); prints the error either way. */
static void tw_check(const char *what, const twin *t, double tol)
{
    const float *c = tw_get(t, CPU), *g = tw_get(t, GPU);
    double err = tu_rel_err(g, c, t->n);
    fprintf(stderr, "# %-44s rel err %.3g\n", what, err);
    if (!(err <= tol))
        fail_msg("%s: GPU differs from CPU: relative error %.3g > %.3g", what,
                 err, tol);
}

/* Fails unless |gpu - cpu| <= tol * scale. */
static void check_scalar(const char *what, double cpu, double gpu, double scale,
                         double tol)
{
    double err = fabs(gpu - cpu) / (scale > 0 ? scale : 1e-300);
    fprintf(stderr, "# %-44s cpu %.17g gpu %.17g rel err %.3g\n", what, cpu,
            gpu, err);
    if (!(err <= tol))
        fail_msg("%s: GPU %.17g vs CPU %.17g: relative error %.3g > %.3g",
                 what, gpu, cpu, err, tol);
}

/* ---- dense algebra ---- */

static void gemm_case(int ta, int tb, float alpha, float beta, uint64_t seed)
{
    enum { M = 37, N = 29, K = 45, PAD = 3 };
    int rows_a = ta ? K : M, cols_a = ta ? M : K;
    int rows_b = tb ? N : K, cols_b = tb ? K : N;
    int lda = cols_a + PAD, ldb = cols_b + PAD + 2, ldc = N + PAD + 1;
    twin *a = tw_rand((size_t)rows_a * lda, seed, -1, 1);
    twin *b = tw_rand((size_t)rows_b * ldb, seed + 1, -1, 1);
    twin *c = tw_rand((size_t)M * ldc, seed + 2, -1, 1);
    BOTH(be->gemm(be, ta, tb, M, N, K, alpha, F(a, s), lda, F(b, s), ldb, beta,
                  F(c, s), ldc));
    char what[96];
    snprintf(what, sizeof what, "gemm ta=%d tb=%d alpha=%g beta=%g", ta, tb,
             (double)alpha, (double)beta);
    tw_check(what, c, TOL);
}

static void test_gemm(void **state)
{
    need_gpu();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_case(ta, tb, 0.7f, 0.3f, 10 + 4 * ta + 2 * tb);
            gemm_case(ta, tb, 1.0f, 0.0f, 20 + 4 * ta + 2 * tb);
        }
}

static void test_bias(void **state)
{
    need_gpu();
    enum { ROWS = 4, COLS = 6, INNER = 25, SZ = ROWS * COLS * INNER };
    twin *y = tw_rand(SZ, 30, -1, 1), *b = tw_rand(COLS, 31, -1, 1);
    BOTH(be->bias_add(be, ROWS, COLS, INNER, F(y, s), F(b, s)));
    tw_check("bias_add", y, TOL);
    twin *dy = tw_rand(SZ, 32, -1, 1), *db = tw_rand(COLS, 33, -1, 1);
    BOTH(be->bias_grad(be, ROWS, COLS, INNER, F(dy, s), F(db, s)));
    tw_check("bias_grad (accumulating)", db, TOL);
    /* A fully connected layer's bias: inner = 1. */
    twin *dy1 = tw_rand(ROWS * COLS, 34, -1, 1);
    BOTH(be->bias_grad(be, ROWS, COLS, 1, F(dy1, s), F(db, s)));
    tw_check("bias_grad inner=1", db, TOL);
}

/* ---- convolution ---- */

static void conv_case(const char *name, int n, int c, int h, int w, int k,
                      int r, int stride, int pad, uint64_t seed)
{
    eg_conv_shape cs = {.n = n, .c = c, .h = h, .w = w, .k = k, .r = r,
                        .s = r, .stride = stride, .pad = pad};
    if (eg_conv_shape_finish(&cs) != 0) fail_msg("%s: %s", name, eg_last_error());
    size_t xn = (size_t)n * c * h * w, wn = (size_t)k * c * r * r;
    size_t yn = (size_t)n * k * cs.p * cs.q;
    twin *x = tw_rand(xn, seed, -1, 1), *wt = tw_rand(wn, seed + 1, -0.5f, 0.5f);
    twin *y = tw_const(yn, 0.0f), *dy = tw_rand(yn, seed + 2, -1, 1);
    char what[128];

    BOTH(be->conv_fwd(be, &cs, F(x, s), F(wt, s), F(y, s)));
    snprintf(what, sizeof what, "conv_fwd %s", name);
    tw_check(what, y, TOL);

    twin *dx = tw_rand(xn, seed + 3, -1, 1); /* overwritten */
    BOTH(be->conv_bwd_data(be, &cs, F(wt, s), F(dy, s), F(dx, s), 0));
    snprintf(what, sizeof what, "conv_bwd_data acc=0 %s", name);
    tw_check(what, dx, TOL);

    twin *dxa = tw_rand(xn, seed + 4, -1, 1);
    BOTH(be->conv_bwd_data(be, &cs, F(wt, s), F(dy, s), F(dxa, s), 1));
    snprintf(what, sizeof what, "conv_bwd_data acc=1 %s", name);
    tw_check(what, dxa, TOL);

    twin *dw = tw_rand(wn, seed + 5, -1, 1);
    BOTH(be->conv_bwd_filter(be, &cs, F(x, s), F(dy, s), F(dw, s)));
    snprintf(what, sizeof what, "conv_bwd_filter %s", name);
    tw_check(what, dw, TOL);
}

static void test_conv(void **state)
{
    need_gpu();
    conv_case("3x3 pad 1 stride 1", 2, 3, 8, 8, 4, 3, 1, 1, 40);
    conv_case("3x3 pad 1 stride 2", 2, 4, 9, 9, 6, 3, 2, 1, 50);
    conv_case("1x1 stride 1", 2, 8, 6, 6, 5, 1, 1, 0, 60);
    conv_case("1x1 stride 2", 2, 4, 7, 7, 8, 1, 2, 0, 65);
    conv_case("5x5 no pad (LeNet)", 2, 3, 14, 14, 6, 5, 1, 0, 70);
    conv_case("3x3 pad 1 non-square 7x10", 1, 3, 7, 10, 4, 3, 1, 1, 80);
    conv_case("3x3 pad 1 stride 2 non-square 9x6", 2, 2, 9, 6, 3, 3, 2, 1, 90);
}

/* ---- batch normalisation ---- */

static void bn_case(int n, int c, int hw, int with_running, uint64_t seed)
{
    size_t sz = (size_t)n * c * hw;
    const float momentum = 0.1f, eps = 1e-5f;
    twin *x = tw_rand(sz, seed, -1, 3), *gamma = tw_rand(c, seed + 1, 0.5f, 1.5f);
    twin *beta = tw_rand(c, seed + 2, -0.5f, 0.5f), *y = tw_const(sz, 0.0f);
    twin *rm = tw_rand(c, seed + 3, -0.5f, 0.5f), *rv = tw_rand(c, seed + 4, 0.5f, 2);
    twin *sm = tw_const(c, 0.0f), *si = tw_const(c, 0.0f);
    char what[128];

    BOTH(be->bn_fwd_train(be, n, c, hw, F(x, s), F(gamma, s), F(beta, s), F(y, s),
                          with_running ? F(rm, s) : NULL,
                          with_running ? F(rv, s) : NULL, momentum, eps,
                          F(sm, s), F(si, s)));
    const char *tag = with_running ? "with running stats" : "no running stats";
    snprintf(what, sizeof what, "bn_fwd_train y (%d,%d,%d) %s", n, c, hw, tag);
    tw_check(what, y, TOL);
    snprintf(what, sizeof what, "bn_fwd_train save_mean (%d,%d,%d)", n, c, hw);
    tw_check(what, sm, TOL);
    snprintf(what, sizeof what, "bn_fwd_train save_invstd (%d,%d,%d)", n, c, hw);
    tw_check(what, si, TOL);
    /* Without running stats they must stay as they were (equal on both). */
    snprintf(what, sizeof what, "bn_fwd_train run_mean (%d,%d,%d) %s", n, c, hw, tag);
    tw_check(what, rm, TOL);
    snprintf(what, sizeof what, "bn_fwd_train run_var (%d,%d,%d) %s", n, c, hw, tag);
    tw_check(what, rv, TOL);

    twin *ye = tw_const(sz, 0.0f);
    BOTH(be->bn_fwd_eval(be, n, c, hw, F(x, s), F(gamma, s), F(beta, s), F(ye, s),
                         F(rm, s), F(rv, s), eps));
    snprintf(what, sizeof what, "bn_fwd_eval (%d,%d,%d)", n, c, hw);
    tw_check(what, ye, TOL);

    twin *dy = tw_rand(sz, seed + 5, -1, 1), *dx = tw_rand(sz, seed + 6, -1, 1);
    twin *dg = tw_rand(c, seed + 7, -1, 1), *db = tw_rand(c, seed + 8, -1, 1);
    BOTH(be->bn_bwd(be, n, c, hw, F(x, s), F(dy, s), F(gamma, s), F(sm, s),
                    F(si, s), F(dx, s), F(dg, s), F(db, s)));
    snprintf(what, sizeof what, "bn_bwd dx (%d,%d,%d)", n, c, hw);
    tw_check(what, dx, TOL);
    snprintf(what, sizeof what, "bn_bwd dgamma (accumulating) (%d,%d,%d)", n, c, hw);
    tw_check(what, dg, TOL);
    snprintf(what, sizeof what, "bn_bwd dbeta (accumulating) (%d,%d,%d)", n, c, hw);
    tw_check(what, db, TOL);
}

static void test_bn(void **state)
{
    need_gpu();
    bn_case(4, 5, 9, 1, 100);
    bn_case(4, 5, 9, 0, 110);
    bn_case(8, 16, 64, 1, 120);
    bn_case(6, 7, 1, 1, 130); /* after a fully connected layer */
}

/* ---- activations ---- */

static void test_activations(void **state)
{
    need_gpu();
    enum { N = 3001 };
    twin *x = tw_rand(N, 140, -3, 3), *y = tw_const(N, 0.0f);
    twin *dy = tw_rand(N, 141, -1, 1), *dx = tw_const(N, 0.0f);

    BOTH(be->relu_fwd(be, N, F(x, s), F(y, s)));
    tw_check("relu_fwd", y, TOL);
    BOTH(be->relu_bwd(be, N, F(y, s), F(dy, s), F(dx, s)));
    tw_check("relu_bwd", dx, TOL);

    BOTH(be->sigmoid_fwd(be, N, F(x, s), F(y, s)));
    tw_check("sigmoid_fwd", y, TOL);
    BOTH(be->sigmoid_bwd(be, N, F(y, s), F(dy, s), F(dx, s)));
    tw_check("sigmoid_bwd", dx, TOL);

    /* In place: y aliases x, dx aliases dy. */
    twin *xi = tw_rand(N, 142, -3, 3), *gi = tw_rand(N, 143, -1, 1);
    BOTH(be->relu_fwd(be, N, F(xi, s), F(xi, s)));
    tw_check("relu_fwd in place", xi, TOL);
    BOTH(be->relu_bwd(be, N, F(xi, s), F(gi, s), F(gi, s)));
    tw_check("relu_bwd in place", gi, TOL);

    twin *xs = tw_rand(N, 144, -3, 3), *gs = tw_rand(N, 145, -1, 1);
    BOTH(be->sigmoid_fwd(be, N, F(xs, s), F(xs, s)));
    tw_check("sigmoid_fwd in place", xs, TOL);
    BOTH(be->sigmoid_bwd(be, N, F(xs, s), F(gs, s), F(gs, s)));
    tw_check("sigmoid_bwd in place", gs, TOL);
}

/* ---- pooling and the shortcut ---- */

static void maxpool_case(int n, int c, int h, int w, int size, int stride,
                         uint64_t seed)
{
    eg_pool_shape ps = {.n = n, .c = c, .h = h, .w = w, .size = size,
                        .stride = stride, .p = (h - size) / stride + 1,
                        .q = (w - size) / stride + 1};
    size_t xn = (size_t)n * c * h * w, yn = (size_t)n * c * ps.p * ps.q;
    twin *x = tw_rand(xn, seed, -1, 1), *y = tw_const(yn, 0.0f);
    twin *dy = tw_rand(yn, seed + 1, -1, 1), *dx = tw_rand(xn, seed + 2, -1, 1);
    char what[96];
    BOTH(be->maxpool_fwd(be, &ps, F(x, s), F(y, s)));
    snprintf(what, sizeof what, "maxpool_fwd %dx%d/%d on %dx%d", size, size,
             stride, h, w);
    tw_check(what, y, TOL);
    BOTH(be->maxpool_bwd(be, &ps, F(x, s), F(y, s), F(dy, s), F(dx, s)));
    snprintf(what, sizeof what, "maxpool_bwd %dx%d/%d on %dx%d", size, size,
             stride, h, w);
    tw_check(what, dx, TOL);
}

static void test_maxpool(void **state)
{
    need_gpu();
    maxpool_case(2, 3, 8, 8, 2, 2, 150);
    maxpool_case(2, 3, 9, 9, 3, 2, 160);
    maxpool_case(1, 4, 8, 11, 3, 2, 170);
    maxpool_case(2, 6, 24, 24, 2, 2, 180); /* LeNet's first pool */
}

static void test_avgpool(void **state)
{
    need_gpu();
    enum { N = 3, C = 4, HW = 49 };
    twin *x = tw_rand(N * C * HW, 190, -1, 1), *y = tw_const(N * C, 0.0f);
    BOTH(be->avgpool_fwd(be, N, C, HW, F(x, s), F(y, s)));
    tw_check("avgpool_fwd", y, TOL);
    twin *dy = tw_rand(N * C, 191, -1, 1);
    twin *dx = tw_rand(N * C * HW, 192, -1, 1);
    BOTH(be->avgpool_bwd(be, N, C, HW, F(dy, s), F(dx, s), 0));
    tw_check("avgpool_bwd acc=0", dx, TOL);
    twin *dxa = tw_rand(N * C * HW, 193, -1, 1);
    BOTH(be->avgpool_bwd(be, N, C, HW, F(dy, s), F(dxa, s), 1));
    tw_check("avgpool_bwd acc=1", dxa, TOL);
}

static void shortcut_case(int n, int ci, int h, int w, int co, int stride,
                          uint64_t seed)
{
    int ho = (h + stride - 1) / stride, wo = (w + stride - 1) / stride;
    size_t xn = (size_t)n * ci * h * w, yn = (size_t)n * co * ho * wo;
    twin *x = tw_rand(xn, seed, -1, 1), *y = tw_rand(yn, seed + 1, -1, 1);
    char what[96];
    BOTH(be->shortcut_fwd(be, n, ci, h, w, co, stride, F(x, s), F(y, s)));
    snprintf(what, sizeof what, "shortcut_fwd ci=%d co=%d stride=%d %dx%d", ci,
             co, stride, h, w);
    tw_check(what, y, TOL);
    twin *dy = tw_rand(yn, seed + 2, -1, 1), *dx = tw_rand(xn, seed + 3, -1, 1);
    BOTH(be->shortcut_bwd(be, n, ci, h, w, co, stride, F(dy, s), F(dx, s), 0));
    snprintf(what, sizeof what, "shortcut_bwd acc=0 ci=%d co=%d stride=%d", ci,
             co, stride);
    tw_check(what, dx, TOL);
    twin *dxa = tw_rand(xn, seed + 4, -1, 1);
    BOTH(be->shortcut_bwd(be, n, ci, h, w, co, stride, F(dy, s), F(dxa, s), 1));
    snprintf(what, sizeof what, "shortcut_bwd acc=1 ci=%d co=%d stride=%d", ci,
             co, stride);
    tw_check(what, dxa, TOL);
}

static void test_shortcut(void **state)
{
    need_gpu();
    shortcut_case(2, 4, 8, 8, 4, 1, 200);
    shortcut_case(2, 4, 8, 8, 8, 2, 210);
    shortcut_case(2, 3, 7, 9, 7, 2, 220); /* odd sizes, odd padding split */
}

/* ---- loss ---- */

static void test_xent(void **state)
{
    need_gpu();
    enum { N = 16, CL = 10 };
    twin *z = tw_rand(N * CL, 230, -3, 3), *lab = tw_labels(N, CL, 231);
    twin *loss = tw_const(N, 0.0f), *probs = tw_const(N * CL, 0.0f);
    BOTH(be->xent_fwd(be, N, CL, F(z, s), I32(lab, s), F(loss, s), F(probs, s)));
    tw_check("xent_fwd loss", loss, TOL);
    tw_check("xent_fwd probs", probs, TOL);

    twin *dz = tw_rand(N * CL, 232, -1, 1);
    BOTH(be->xent_bwd(be, N, CL, F(probs, s), I32(lab, s), NULL, 1.0f / N,
                      F(dz, s)));
    tw_check("xent_bwd weight=NULL", dz, TOL);
    twin *wt = tw_rand(N, 233, 0, 2);
    BOTH(be->xent_bwd(be, N, CL, F(probs, s), I32(lab, s), F(wt, s), 0.37f,
                      F(dz, s)));
    tw_check("xent_bwd with weights", dz, TOL);
}

/* ---- rotation ---- */

static void rotate_case(int n, int c, int h, int w, float angle, uint64_t seed)
{
    size_t sz = (size_t)n * c * h * w;
    twin *a = tw_upload(&angle, 1, sizeof angle);
    twin *x = tw_rand(sz, seed, -1, 1), *y = tw_rand(sz, seed + 1, -1, 1);
    twin *dy = tw_rand(sz, seed + 2, -1, 1), *dx = tw_rand(sz, seed + 3, -1, 1);
    twin *da = tw_const(1, 0.25f);
    char what[128];

    BOTH(be->rotate_fwd(be, n, c, h, w, F(a, s), F(x, s), F(y, s)));
    snprintf(what, sizeof what, "rotate_fwd (%d,%d,%d,%d) angle %g", n, c, h, w,
             (double)angle);
    tw_check(what, y, TOL);

    BOTH(be->rotate_bwd(be, n, c, h, w, F(a, s), F(x, s), F(dy, s), F(dx, s),
                        F(da, s)));
    snprintf(what, sizeof what, "rotate_bwd dx (%d,%d,%d,%d) angle %g", n, c, h,
             w, (double)angle);
    tw_check(what, dx, TOL);
    snprintf(what, sizeof what, "rotate_bwd dangle (%d,%d,%d,%d) angle %g", n,
             c, h, w, (double)angle);
    tw_check(what, da, TOL);

    /* dx = NULL: only the angle gradient, accumulating again. */
    BOTH(be->rotate_bwd(be, n, c, h, w, F(a, s), F(x, s), F(dy, s), NULL,
                        F(da, s)));
    snprintf(what, sizeof what, "rotate_bwd dx=NULL dangle (%d,%d,%d,%d)", n, c,
             h, w);
    tw_check(what, da, TOL);
}

static void test_rotate(void **state)
{
    need_gpu();
    rotate_case(2, 3, 28, 28, 0.3f, 240);
    rotate_case(3, 1, 28, 28, -1.1f, 250);
    rotate_case(1, 2, 9, 13, 2.5f, 260);     /* non-square */
    rotate_case(2, 2, 8, 8, 0.0f, 270);      /* samples on pixel centres */
    rotate_case(1, 1, 6, 6, 1.5707964f, 280); /* a quarter turn */
}

/* ---- flat vectors ---- */

static void test_vec(void **state)
{
    need_gpu();
    enum { N = 10007 };
    twin *x = tw_rand(N, 290, -1, 1), *y = tw_rand(N, 291, -1, 1);
    twin *f = tw_rand(N, 292, -1, 1);
    BOTH(be->fill(be, N, 0.625f, F(f, s)));
    tw_check("fill", f, 0);
    BOTH(be->fill(be, 1, -3.0f, F(f, s) + 17));
    tw_check("fill one element", f, 0);
    BOTH(be->axpy(be, N, -0.37f, F(x, s), F(y, s)));
    tw_check("axpy", y, TOL);
    BOTH(be->scale(be, N, 1.7f, F(y, s)));
    tw_check("scale", y, TOL);

    const float *xh = tw_get(x, CPU), *yh = tw_get(y, CPU);
    double out[2], mag = 0;
    for (size_t i = 0; i < N; i++) mag += fabs((double)xh[i] * yh[i]);
    BOTH(be->dot(be, N, F(x, s), F(y, s), &out[s]));
    check_scalar("dot", out[CPU], out[GPU], mag, 1e-9);
    BOTH(be->dot(be, 0, F(x, s), F(y, s), &out[s]));
    check_scalar("dot n=0", out[CPU], out[GPU], 1, 0);
}

/* y += alpha e and e . g for one noise vector (key, stream). */
static int noise_axpy(eg_backend *be, size_t n, int gaussian, float alpha, uint64_t key,
                      uint64_t stream, float *y)
{
    return be->noise_combine(be, n, gaussian, key, 1, &stream, &alpha, y, y);
}

static int noise_dot(eg_backend *be, size_t n, int gaussian, uint64_t key, uint64_t stream,
                     const float *g, double *out)
{
    return be->noise_dots(be, n, gaussian, key, 1, &stream, g, out);
}

static void test_rademacher(void **state)
{
    need_gpu();
    static const size_t sizes[] = {1, 127, 128, 129, 100003};
    const uint64_t key = 0x9E3779B97F4A7C15ull, stream = 0xD1B54A32D192ED03ull;
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        size_t n = sizes[t];
        char what[96];
        /* alpha = 1 onto zeros: the noise itself, bit for bit. */
        twin *r = tw_const(n, 0.0f);
        BOTH(noise_axpy(be, n, 0, 1.0f, key, stream + t, F(r, s)));
        const float *rc = tw_get(r, CPU), *rg = tw_get(r, GPU);
        if (memcmp(rc, rg, n * sizeof *rc) != 0) {
            size_t i = 0;
            while (i + 1 < n && memcmp(&rc[i], &rg[i], sizeof *rc) == 0) i++;
            fail_msg("rademacher n=%zu: element %zu is %g on the GPU, %g on the CPU",
                     n, i, (double)rg[i], (double)rc[i]);
        }
        fprintf(stderr, "# rademacher noise n=%-6zu identical\n", n);

        twin *y = tw_rand(n, 300 + t, -1, 1);
        BOTH(noise_axpy(be, n, 0, -0.013f, key, stream + t, F(y, s)));
        snprintf(what, sizeof what, "rademacher combine n=%zu", n);
        tw_check(what, y, TOL);

        twin *g = tw_rand(n, 310 + t, -1, 1);
        const float *gh = tw_get(g, CPU);
        double out[2], mag = 0;
        for (size_t i = 0; i < n; i++) mag += fabs((double)gh[i]);
        BOTH(noise_dot(be, n, 0, key, stream + t, F(g, s), &out[s]));
        snprintf(what, sizeof what, "rademacher dots n=%zu", n);
        check_scalar(what, out[CPU], out[GPU], mag, 1e-9);
        /* The dot is the noise against g: check the CPU's value too. */
        double want = 0;
        for (size_t i = 0; i < n; i++) want += (double)rc[i] * gh[i];
        check_scalar("rademacher dots vs r . g", want, out[GPU], mag, 1e-9);
    }
}

static void test_gaussian(void **state)
{
    need_gpu();
    static const size_t sizes[] = {1, 129, 100003};
    const uint64_t key = 12345, stream = 678;
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        size_t n = sizes[t];
        char what[96];
        twin *e = tw_const(n, 0.0f);
        BOTH(noise_axpy(be, n, 1, 1.0f, key, stream + t, F(e, s)));
        snprintf(what, sizeof what, "gaussian noise n=%zu", n);
        tw_check(what, e, 1e-6);

        twin *y = tw_rand(n, 320 + t, -1, 1);
        BOTH(noise_axpy(be, n, 1, 0.05f, key, stream + t, F(y, s)));
        snprintf(what, sizeof what, "gaussian combine n=%zu", n);
        tw_check(what, y, 1e-6);

        twin *g = tw_rand(n, 330 + t, -1, 1);
        const float *gh = tw_get(g, CPU);
        double out[2], mag = 0;
        for (size_t i = 0; i < n; i++)
            mag += fabs(eg_gaussian(key, stream + t, i) * gh[i]);
        BOTH(noise_dot(be, n, 1, key, stream + t, F(g, s), &out[s]));
        snprintf(what, sizeof what, "gaussian dots n=%zu", n);
        check_scalar(what, out[CPU], out[GPU], mag, 1e-6);
    }
}

/* Several vectors in one call: combine into a separate output and in
 * place, and the dots of each, for both kinds of noise. */
static void test_noise_fused(void **state)
{
    need_gpu();
    enum { N = 100003, K = 5 };
    const uint64_t key = 4242, streams[K] = {1, 2, 3, 1ull << 41, 5};
    const float alpha[K] = {1e-3f, -1e-3f, 0.5f, 2.0f, -0.25f};
    for (int gaussian = 0; gaussian < 2; gaussian++) {
        twin *x = tw_rand(N, 340 + gaussian, -1, 1), *y = tw_const(N, 0.0f);
        BOTH(be->noise_combine(be, N, gaussian, key, K, streams, alpha, F(x, s), F(y, s)));
        tw_check(gaussian ? "gaussian combine of 5" : "rademacher combine of 5", y,
                 gaussian ? 1e-6 : 0);
        BOTH(be->noise_combine(be, N, gaussian, key, K, streams, alpha, F(x, s), F(x, s)));
        tw_check(gaussian ? "gaussian combine of 5 in place" : "rademacher combine of 5 in place",
                 x, gaussian ? 1e-6 : 0);
        twin *g = tw_rand(N, 350 + gaussian, -1, 1);
        double out[2][K];
        BOTH(be->noise_dots(be, N, gaussian, key, K, streams, F(g, s), out[s]));
        for (int j = 0; j < K; j++)
            check_scalar(gaussian ? "gaussian dots of 5" : "rademacher dots of 5", out[CPU][j],
                         out[GPU][j], N, gaussian ? 1e-6 : 1e-9);
    }
}

/* ---- LFT: feature-wise transformation, BN's evaluation backward, padded
 * max pooling, few-shot operations ---- */

static void ft_case(int n, int c, int hw, uint64_t seed)
{
    size_t sz = (size_t)n * c * hw;
    /* θ on both sides of softplus's threshold (100 θ = 20) and the
     * default initial values. */
    float *mh = scratch(2 * c * sizeof(float)), *eh = scratch(2 * c * sizeof(float));
    for (int j = 0; j < 2 * c; j++) {
        static const float th[] = {0.3f, 0.5f, 0.195f, 0.205f, 0.0f, -0.02f, 0.01f};
        mh[j] = th[j % 7];
        eh[j] = (float)eg_gaussian(seed, 3, (uint64_t)j);
    }
    twin *meta = tw_upload(mh, 2 * c, sizeof(float)), *noise = tw_upload(eh, 2 * c, sizeof(float));
    twin *x = tw_rand(sz, seed, -2, 2), *y = tw_const(sz, 0.0f);
    char what[128];
    BOTH(be->ft_fwd(be, n, c, hw, F(x, s), F(meta, s), F(noise, s), F(y, s)));
    snprintf(what, sizeof what, "ft_fwd (%d,%d,%d)", n, c, hw);
    tw_check(what, y, TOL);
    twin *dy = tw_rand(sz, seed + 1, -1, 1), *dx = tw_rand(sz, seed + 2, -1, 1);
    twin *dm = tw_rand(2 * c, seed + 3, -1, 1);
    BOTH(be->ft_bwd(be, n, c, hw, F(x, s), F(dy, s), F(meta, s), F(noise, s), F(dx, s), 0,
                    F(dm, s)));
    snprintf(what, sizeof what, "ft_bwd dx acc=0 (%d,%d,%d)", n, c, hw);
    tw_check(what, dx, TOL);
    snprintf(what, sizeof what, "ft_bwd dmeta (accumulating) (%d,%d,%d)", n, c, hw);
    tw_check(what, dm, TOL);
    BOTH(be->ft_bwd(be, n, c, hw, F(x, s), F(dy, s), F(meta, s), F(noise, s), F(dx, s), 1, NULL));
    snprintf(what, sizeof what, "ft_bwd dx acc=1, no dmeta (%d,%d,%d)", n, c, hw);
    tw_check(what, dx, TOL);
    BOTH(be->ft_bwd(be, n, c, hw, F(x, s), F(dy, s), F(meta, s), F(noise, s), NULL, 0, F(dm, s)));
    snprintf(what, sizeof what, "ft_bwd dmeta only (%d,%d,%d)", n, c, hw);
    tw_check(what, dm, TOL);
}

static void test_ft(void **state)
{
    need_gpu();
    ft_case(4, 7, 9, 400);
    ft_case(8, 64, 49, 410);
    ft_case(3, 5, 1, 420);
}

static void bn_eval_case(int n, int c, int hw, uint64_t seed)
{
    size_t sz = (size_t)n * c * hw;
    twin *x = tw_rand(sz, seed, -1, 3), *gamma = tw_rand(c, seed + 1, 0.5f, 1.5f);
    twin *rm = tw_rand(c, seed + 2, -0.5f, 0.5f), *rv = tw_rand(c, seed + 3, 0.5f, 2);
    twin *dy = tw_rand(sz, seed + 4, -1, 1), *dx = tw_rand(sz, seed + 5, -1, 1);
    twin *dg = tw_rand(c, seed + 6, -1, 1), *db = tw_rand(c, seed + 7, -1, 1);
    char what[128];
    BOTH(be->bn_bwd_eval(be, n, c, hw, F(x, s), F(dy, s), F(gamma, s), F(rm, s), F(rv, s), 1e-5f,
                         F(dx, s), F(dg, s), F(db, s)));
    snprintf(what, sizeof what, "bn_bwd_eval dx (%d,%d,%d)", n, c, hw);
    tw_check(what, dx, TOL);
    snprintf(what, sizeof what, "bn_bwd_eval dgamma (accumulating) (%d,%d,%d)", n, c, hw);
    tw_check(what, dg, TOL);
    snprintf(what, sizeof what, "bn_bwd_eval dbeta (accumulating) (%d,%d,%d)", n, c, hw);
    tw_check(what, db, TOL);
    BOTH(be->bn_bwd_eval(be, n, c, hw, F(x, s), F(dy, s), F(gamma, s), F(rm, s), F(rv, s), 1e-5f,
                         NULL, F(dg, s), F(db, s)));
    snprintf(what, sizeof what, "bn_bwd_eval dx=NULL dgamma (%d,%d,%d)", n, c, hw);
    tw_check(what, dg, TOL);
}

static void test_bn_eval_bwd(void **state)
{
    need_gpu();
    bn_eval_case(4, 5, 9, 430);
    bn_eval_case(8, 16, 64, 440);
    bn_eval_case(6, 7, 1, 450);
}

static void maxpool_pad_case(int n, int c, int h, int w, int size, int stride, int pad,
                             uint64_t seed)
{
    eg_pool_shape ps = {.n = n,
                        .c = c,
                        .h = h,
                        .w = w,
                        .size = size,
                        .stride = stride,
                        .pad = pad,
                        .p = (h + 2 * pad - size) / stride + 1,
                        .q = (w + 2 * pad - size) / stride + 1};
    size_t xn = (size_t)n * c * h * w, yn = (size_t)n * c * ps.p * ps.q;
    /* Negative values: the padding must not win. */
    twin *x = tw_rand(xn, seed, -2, -0.5f), *y = tw_const(yn, 0.0f);
    twin *dy = tw_rand(yn, seed + 1, -1, 1), *dx = tw_rand(xn, seed + 2, -1, 1);
    char what[96];
    BOTH(be->maxpool_fwd(be, &ps, F(x, s), F(y, s)));
    snprintf(what, sizeof what, "maxpool_fwd %dx%d/%d pad %d on %dx%d", size, size, stride, pad, h,
             w);
    tw_check(what, y, 0);
    BOTH(be->maxpool_bwd(be, &ps, F(x, s), F(y, s), F(dy, s), F(dx, s)));
    snprintf(what, sizeof what, "maxpool_bwd %dx%d/%d pad %d on %dx%d", size, size, stride, pad, h,
             w);
    tw_check(what, dx, 0);
}

static void test_maxpool_pad(void **state)
{
    need_gpu();
    maxpool_pad_case(2, 3, 8, 8, 3, 2, 1, 460);
    maxpool_pad_case(2, 3, 7, 9, 3, 2, 1, 470);
    maxpool_pad_case(2, 4, 56, 56, 3, 2, 1, 480); /* the ResNet stem at 112 px */
    maxpool_pad_case(1, 2, 5, 5, 2, 1, 1, 490);
}

static void test_fewshot_ops(void **state)
{
    need_gpu();
    enum { NW = 5, SH = 3, QU = 4, C = 6, HW = 9, D = C * HW, NF = NW * (SH + QU) };
    enum { NP = NW * QU * NW };
    twin *feats = tw_rand((size_t)NF * D, 500, -1, 1), *protos = tw_const(NW * D, 0.0f);
    BOTH(eg_fewshot_protos(be, NW, SH, QU, D, F(feats, s), F(protos, s)));
    tw_check("fewshot protos", protos, TOL);
    twin *pairs = tw_const((size_t)NP * 2 * D, 0.0f);
    BOTH(eg_fewshot_pairs(be, NW, SH, QU, C, HW, F(protos, s), F(feats, s), F(pairs, s)));
    tw_check("fewshot pairs", pairs, 0);
    twin *dpairs = tw_rand((size_t)NP * 2 * D, 501, -1, 1);
    twin *dprotos = tw_rand(NW * D, 502, -1, 1), *dfeats = tw_rand((size_t)NF * D, 503, -1, 1);
    BOTH(eg_fewshot_pairs_bwd(be, NW, SH, QU, C, HW, F(dpairs, s), F(dprotos, s), F(dfeats, s)));
    tw_check("fewshot pairs_bwd dprotos", dprotos, TOL);
    tw_check("fewshot pairs_bwd dfeats (support rows kept)", dfeats, TOL);
    BOTH(eg_fewshot_protos_bwd(be, NW, SH, QU, D, F(dprotos, s), F(dfeats, s)));
    tw_check("fewshot protos_bwd dfeats", dfeats, TOL);
    twin *scores = tw_const(NW * QU * NW, 0.0f);
    BOTH(eg_fewshot_sqdist(be, NW, SH, QU, D, F(feats, s), F(protos, s), F(scores, s)));
    tw_check("fewshot sqdist", scores, TOL);
    twin *ds = tw_rand(NW * QU * NW, 504, -1, 1);
    BOTH(eg_fewshot_sqdist_bwd(be, NW, SH, QU, D, F(feats, s), F(protos, s), F(ds, s),
                               F(dprotos, s), F(dfeats, s)));
    tw_check("fewshot sqdist_bwd dprotos", dprotos, TOL);
    tw_check("fewshot sqdist_bwd dfeats", dfeats, TOL);
    /* The generic op with accumulation and scaling. */
    eg_blocks bs = {.n0 = 3,
                    .n1 = 4,
                    .reps = 5,
                    .len = 7,
                    .xs0 = 200,
                    .xs1 = 40,
                    .xsr = 8,
                    .ys0 = 30,
                    .ys1 = 7};
    twin *bx = tw_rand(600, 505, -1, 1), *by = tw_rand(90, 506, -1, 1);
    BOTH(be->block_sum(be, &bs, 0.3f, F(bx, s), F(by, s), 1));
    tw_check("block_sum acc=1 alpha=0.3", by, TOL);
}

/* The LFT ResNet-10 with FT, prototypes, pairs and the relation module,
 * forward and backward in training mode and the backbone in evaluation
 * mode, on both backends; on the GPU the passes are run until they replay
 * from CUDA graphs, then once more at another noise stream, which the
 * replayed graphs must pick up from device memory. */
typedef struct lft_side {
    eg_net net, rel;
} lft_side;

static void test_lft_model(void **state)
{
    need_gpu();
    enum { NW = 3, SH = 2, QU = 2, N = NW * (SH + QU), NP = NW * QU * NW, SZ = 112 };
    lft_side side[2];
    for (int s = 0; s < 2; s++) {
        if (eg_model_lft_resnet(&side[s].net, P.be[s], 10, 8, 3, SZ, 0, 1) != 0 ||
            eg_net_finish(&side[s].net, N, 1) != 0)
            fail_msg("%s: lft resnet: %s", P.be[s]->name, eg_last_error());
    }
    const eg_layer *fl = &side[CPU].net.layers[side[CPU].net.n_layers - 1];
    int fc = fl->c, fh = fl->h, fw = fl->w, d = fc * fh * fw;
    for (int s = 0; s < 2; s++)
        if (eg_model_relation(&side[s].rel, P.be[s], fc, fh, fw) != 0 ||
            eg_net_finish(&side[s].rel, NP, 1) != 0)
            fail_msg("%s: relation: %s", P.be[s]->name, eg_last_error());
    eg_net *net = &side[CPU].net, *rel = &side[CPU].rel;
    size_t Pn = net->params.total, S = net->state.total, M = net->meta.total;
    size_t R = rel->params.total, nx = (size_t)N * 3 * SZ * SZ;
    float *th = scratch(Pn * sizeof(float)), *st = scratch(S * sizeof(float));
    float *mh = scratch(M * sizeof(float)), *rh = scratch(R * sizeof(float));
    eg_net_init_params(net, th, st, 1);
    eg_net_init_meta(net, mh);
    eg_net_init_params(rel, rh, NULL, 2);
    float *jit = scratch(M * sizeof(float));
    tu_fill_uniform(jit, M, 3, -0.3f, 0.02f);
    for (size_t j = 0; j < M; j++) mh[j] += jit[j];
    twin *theta = tw_upload(th, Pn, sizeof(float));
    twin *meta = tw_upload(mh, M, sizeof(float)), *rtheta = tw_upload(rh, R, sizeof(float));
    twin *x = tw_rand(nx, 4, -1, 1), *w = tw_rand(NP, 5, -1, 1);
    twin *w2 = tw_rand((size_t)N * d, 6, -1, 1);
    twin *protos = tw_const(NW * d, 0), *pairs = tw_const((size_t)NP * 2 * d, 0);
    twin *dpairs = tw_const((size_t)NP * 2 * d, 0), *dprotos = tw_const(NW * d, 0);
    twin *dfeats = tw_const((size_t)N * d, 0), *dx = tw_const(nx, 0);
    twin *feats = tw_const((size_t)N * d, 0), *scores = tw_const(NP, 0);
    /* The same buffers every run, so the passes' pointers recur. */
    twin *state_t = tw_const(S, 0), *dtheta = tw_const(Pn, 0), *dmeta = tw_const(M, 0);
    twin *drtheta = tw_const(R, 0), *edtheta = tw_const(Pn, 0);
    const uint64_t streams[] = {7, 7, 7, 7, 8};
    for (int run = 0; run < 5; run++) {
        int last = run == 4;
        for (int s = 0; s < 2; s++) {
            eg_backend *be = P.be[s];
            eg_net *bn = &side[s].net, *rn = &side[s].rel;
            if (s == CPU && !last && run) continue; /* the CPU reference: runs 0 and 4 */
            if (be->upload(be, F(state_t, s), st, S * sizeof(float)) != 0 ||
                be->fill(be, Pn, 0.0f, F(dtheta, s)) != 0 || be->fill(be, M, 0.0f, F(dmeta, s)) ||
                be->fill(be, R, 0.0f, F(drtheta, s)) != 0 ||
                be->fill(be, Pn, 0.0f, F(edtheta, s)) != 0 ||
                eg_net_set_ft(bn, F(meta, s), F(dmeta, s), 99, streams[run]) != 0 ||
                eg_net_forward(bn, F(theta, s), F(state_t, s), F(x, s), N, EG_TRAIN) != 0 ||
                be->copy(be, F(feats, s), eg_net_output(bn), (size_t)N * d * sizeof(float)) ||
                eg_fewshot_protos(be, NW, SH, QU, d, F(feats, s), F(protos, s)) != 0 ||
                eg_fewshot_pairs(be, NW, SH, QU, fc, fh * fw, F(protos, s), F(feats, s),
                                 F(pairs, s)) != 0 ||
                eg_net_forward(rn, F(rtheta, s), NULL, F(pairs, s), NP, EG_TRAIN) != 0 ||
                be->copy(be, F(scores, s), eg_net_output(rn), NP * sizeof(float)) ||
                eg_net_backward(rn, F(rtheta, s), F(w, s), F(drtheta, s), F(dpairs, s)) != 0 ||
                be->fill(be, (size_t)N * d, 0.0f, F(dfeats, s)) != 0 ||
                eg_fewshot_pairs_bwd(be, NW, SH, QU, fc, fh * fw, F(dpairs, s), F(dprotos, s),
                                     F(dfeats, s)) != 0 ||
                eg_fewshot_protos_bwd(be, NW, SH, QU, d, F(dprotos, s), F(dfeats, s)) != 0 ||
                eg_net_backward(bn, F(theta, s), F(dfeats, s), F(dtheta, s), F(dx, s)) != 0)
                fail_msg("%s run %d: %s", be->name, run, eg_last_error());
        }
        if (run && !last) continue;
        const char *tag = last ? " (replayed, new stream)" : "";
        char what[96];
#define CHECK(t, name)                                                                             \
    do {                                                                                           \
        snprintf(what, sizeof what, "lft %s%s", name, tag);                                        \
        tw_check(what, t, TOL);                                                                    \
    } while (0)
        CHECK(feats, "features");
        CHECK(scores, "relation scores");
        CHECK(dtheta, "backbone dtheta");
        CHECK(dmeta, "dmeta");
        CHECK(drtheta, "relation dtheta");
        CHECK(dx, "dx");
        CHECK(state_t, "running statistics");
        /* Evaluation mode, FT off, from the updated statistics. */
        for (int s = 0; s < 2; s++) {
            eg_backend *be = P.be[s];
            eg_net *bn = &side[s].net;
            if (eg_net_set_ft(bn, NULL, NULL, 0, 0) != 0 ||
                eg_net_forward(bn, F(theta, s), F(state_t, s), F(x, s), N, EG_EVAL) != 0 ||
                be->copy(be, F(feats, s), eg_net_output(bn), (size_t)N * d * sizeof(float)) ||
                eg_net_backward(bn, F(theta, s), F(w2, s), F(edtheta, s), F(dx, s)) != 0)
                fail_msg("%s eval: %s", be->name, eg_last_error());
        }
        CHECK(feats, "eval features");
        CHECK(edtheta, "eval dtheta");
        CHECK(dx, "eval dx");
#undef CHECK
    }
    fprintf(stderr, "# lft passes on the GPU: %lu eager, %lu recorded, %lu replayed, %lu failed\n",
            P.be[GPU]->passes.eager, P.be[GPU]->passes.recorded, P.be[GPU]->passes.replayed,
            P.be[GPU]->passes.failed);
    if (P.be[GPU]->capture_begin) assert_true(P.be[GPU]->passes.replayed > 0);
    for (int s = 0; s < 2; s++) {
        eg_net_free(&side[s].rel);
        eg_net_free(&side[s].net);
    }
}

/* ---- token encoders: batched GEMMs, embeddings, LayerNorm, GELU, masked
 * softmax, dropout; MetaXL's RTN gate ---- */

/* Tolerance of the token-encoder ops: their sums run in double on both
 * sides, so only GEMM blocking and the last bits of erff and expf differ. */
#define TEXT_TOL 1e-5

/* Fails unless the GPU's bytes equal the CPU's; names the first element
 * that differs. */
static void tw_same(const char *what, const twin *t)
{
    const float *c = tw_get(t, CPU), *g = tw_get(t, GPU);
    for (size_t i = 0; i < t->n; i++)
        if (memcmp(&c[i], &g[i], sizeof *c) != 0)
            fail_msg("%s: element %zu is %g on the GPU, %g on the CPU", what, i, (double)g[i],
                     (double)c[i]);
    fprintf(stderr, "# %-44s identical\n", what);
}

/* One gemm_batched call on both backends, A, B and C at offsets into
 * their tensors; C is compared whole (what lies between the matrices must
 * stay as it was). */
static void gemm_batched_case(const char *what, const eg_gemm_batch *gb, int ta, int tb, int m,
                              int n, int k, float alpha, const twin *a, size_t a_off, int lda,
                              const twin *b, size_t b_off, int ldb, float beta, const twin *c,
                              size_t c_off, int ldc)
{
    BOTH(be->gemm_batched(be, gb, ta, tb, m, n, k, alpha, F(a, s) + a_off, lda, F(b, s) + b_off,
                          ldb, beta, F(c, s) + c_off, ldc));
    tw_check(what, c, TEXT_TOL);
}

/* Multi-head attention's GEMMs on a fused QKV projection qkv (NS T, 3 d),
 * d = NH DH, addressed in place: i the sequence (T rows apart), j the head
 * (DH columns apart); Q, K and V are the column blocks at 0, d and 2 d. */
static void attention_gemms_case(int ns, int nh, int t, int dh, uint64_t seed)
{
    int d = nh * dh, ld = 3 * d;
    size_t tok = (size_t)ns * t, ss = (size_t)ns * nh * t * t;
    twin *qkv = tw_rand(tok * ld, seed, -1, 1), *sc = tw_rand(ss, seed + 1, -1, 1);
    twin *ctx = tw_rand(tok * d, seed + 2, -1, 1), *dctx = tw_rand(tok * d, seed + 3, -1, 1);
    twin *dsc = tw_rand(ss, seed + 4, -1, 1), *dqkv = tw_rand(tok * ld, seed + 5, -1, 1);
    /* Heads of qkv, of the dense scores (NS, NH, T, T) and of ctx (NS T, d). */
    size_t sq0 = (size_t)t * ld, ss0 = (size_t)nh * t * t, ss1 = (size_t)t * t;
    size_t sx0 = (size_t)t * d;
    char what[128];
#define CASE(name) snprintf(what, sizeof what, "gemm_batched %s (%d seq, %d heads, T %d, dh %d)", \
                            name, ns, nh, t, dh)
    /* scores = Q K^T / sqrt(dh) */
    eg_gemm_batch qk = {.n0 = ns, .n1 = nh, .sa0 = sq0, .sa1 = dh, .sb0 = sq0, .sb1 = dh,
                        .sc0 = ss0, .sc1 = ss1};
    CASE("Q K^T");
    gemm_batched_case(what, &qk, 0, 1, t, t, dh, 1.0f / sqrtf((float)dh), qkv, 0, ld, qkv, d, ld,
                      0.0f, sc, 0, t);
    /* ctx = P V, into the heads' columns of ctx */
    eg_gemm_batch pv = {.n0 = ns, .n1 = nh, .sa0 = ss0, .sa1 = ss1, .sb0 = sq0, .sb1 = dh,
                        .sc0 = sx0, .sc1 = dh};
    CASE("P V");
    gemm_batched_case(what, &pv, 0, 0, t, dh, t, 1.0f, sc, 0, t, qkv, 2 * d, ld, 0.0f, ctx, 0, d);
    /* dV += P^T dctx, into the V columns of dqkv */
    eg_gemm_batch dv = {.n0 = ns, .n1 = nh, .sa0 = ss0, .sa1 = ss1, .sb0 = sx0, .sb1 = dh,
                        .sc0 = sq0, .sc1 = dh};
    CASE("dV += P^T dctx");
    gemm_batched_case(what, &dv, 1, 0, t, dh, t, 1.0f, sc, 0, t, dctx, 0, d, 1.0f, dqkv, 2 * d,
                      ld);
    /* dQ += dS K, dK += dS^T Q (scaled) */
    eg_gemm_batch dq = {.n0 = ns, .n1 = nh, .sa0 = ss0, .sa1 = ss1, .sb0 = sq0, .sb1 = dh,
                        .sc0 = sq0, .sc1 = dh};
    float sc_alpha = 1.0f / sqrtf((float)dh);
    CASE("dQ += dS K");
    gemm_batched_case(what, &dq, 0, 0, t, dh, t, sc_alpha, dsc, 0, t, qkv, d, ld, 1.0f, dqkv, 0,
                      ld);
    CASE("dK += dS^T Q");
    gemm_batched_case(what, &dq, 1, 0, t, dh, t, sc_alpha, dsc, 0, t, qkv, 0, ld, 1.0f, dqkv, d,
                      ld);
#undef CASE
}

static void test_gemm_batched(void **state)
{
    need_gpu();
    attention_gemms_case(2, 3, 11, 8, 600); /* a call per sequence, batched over heads */
    attention_gemms_case(3, 2, 9, 4, 610);  /* a call per head, batched over sequences */
    attention_gemms_case(1, 4, 7, 5, 620);  /* one sequence: one call */
    /* Dense per-head tensors (NS, NH, K, M) and (NS, NH, N, K): one call over
     * all NS NH matrices, both operands transposed. */
    enum { NS = 2, NH = 3, M = 6, N = 5, K = 7 };
    twin *a = tw_rand(NS * NH * K * M, 630, -1, 1), *b = tw_rand(NS * NH * N * K, 631, -1, 1);
    twin *c = tw_rand(NS * NH * M * N, 632, -1, 1);
    eg_gemm_batch dense = {.n0 = NS, .n1 = NH, .sa0 = NH * K * M, .sa1 = K * M,
                           .sb0 = NH * N * K, .sb1 = N * K, .sc0 = NH * M * N, .sc1 = M * N};
    gemm_batched_case("gemm_batched dense ta=1 tb=1 alpha=0.7 beta=0.3", &dense, 1, 1, M, N, K,
                      0.7f, a, 0, M, b, 0, K, 0.3f, c, 0, N);
    /* n1 = 1 and every product onto one C (a weight gradient summed over
     * sequences): C += sum_i A_i^T B_i. */
    twin *x = tw_rand(3 * K * M, 633, -1, 1), *g = tw_rand(3 * K * N, 634, -1, 1);
    twin *w = tw_rand(M * N, 635, -1, 1);
    eg_gemm_batch shared = {.n0 = 3, .n1 = 1, .sa0 = K * M, .sb0 = K * N, .sc0 = 0};
    gemm_batched_case("gemm_batched n1=1, one shared C, beta=1", &shared, 1, 0, M, N, K, 1.0f, x,
                      0, M, g, 0, N, 1.0f, w, 0, N);
}

static void test_embed(void **state)
{
    need_gpu();
    enum { N = 50, V = 7, D = 33 };
    int32_t ids_h[N], perm_h[V] = {4, 0, 6, 2, 5, 1, 3};
    for (int i = 0; i < N; i++) ids_h[i] = (int32_t)((i * 3 + i / 4) % V); /* rows repeat */
    twin *ids = tw_upload(ids_h, N, sizeof(int32_t)), *perm = tw_upload(perm_h, V, sizeof(int32_t));
    twin *table = tw_rand(V * D, 640, -1, 1), *y = tw_rand(N * D, 641, -1, 1);
    BOTH(be->embed_fwd(be, N, D, I32(ids, s), F(table, s), F(y, s), 0));
    tw_same("embed_fwd acc=0", y);
    BOTH(be->embed_fwd(be, N, D, I32(ids, s), F(table, s), F(y, s), 1));
    tw_same("embed_fwd acc=1", y);
    twin *dy = tw_rand(N * D, 642, -1, 1), *dt = tw_rand(V * D, 643, -1, 1);
    BOTH(be->embed_bwd(be, N, D, I32(ids, s), -1, F(dy, s), F(dt, s)));
    tw_check("embed_bwd repeated rows (atomic order)", dt, TEXT_TOL);
    BOTH(be->embed_bwd(be, N, D, I32(ids, s), 3, F(dy, s), F(dt, s)));
    tw_check("embed_bwd skip=3", dt, TEXT_TOL);
    /* Every row once: one float addition each, exactly the CPU's. */
    twin *dt1 = tw_rand(V * D, 644, -1, 1);
    BOTH(be->embed_bwd(be, V, D, I32(perm, s), -1, F(dy, s), F(dt1, s)));
    tw_same("embed_bwd distinct rows", dt1);
}

static void layernorm_case(int n, int d, uint64_t seed)
{
    size_t sz = (size_t)n * d;
    const float eps = 1e-5f;
    twin *x = tw_rand(sz, seed, -1, 3), *gamma = tw_rand(d, seed + 1, 0.5f, 1.5f);
    twin *beta = tw_rand(d, seed + 2, -0.5f, 0.5f), *y = tw_rand(sz, seed + 3, -1, 1);
    twin *sm = tw_const(n, 0.0f), *sr = tw_const(n, 0.0f);
    char what[128];
    BOTH(be->layernorm_fwd(be, n, d, F(x, s), F(gamma, s), F(beta, s), eps, F(y, s), F(sm, s),
                           F(sr, s)));
    snprintf(what, sizeof what, "layernorm_fwd y (%d,%d)", n, d);
    tw_check(what, y, TEXT_TOL);
    snprintf(what, sizeof what, "layernorm_fwd save_mean (%d,%d)", n, d);
    tw_check(what, sm, TEXT_TOL);
    snprintf(what, sizeof what, "layernorm_fwd save_rstd (%d,%d)", n, d);
    tw_check(what, sr, TEXT_TOL);

    twin *dy = tw_rand(sz, seed + 4, -1, 1), *dx = tw_rand(sz, seed + 5, -1, 1);
    twin *dg = tw_rand(d, seed + 6, -1, 1), *db = tw_rand(d, seed + 7, -1, 1);
    BOTH(be->layernorm_bwd(be, n, d, F(x, s), F(dy, s), F(gamma, s), F(sm, s), F(sr, s), F(dx, s),
                           0, F(dg, s), F(db, s)));
    snprintf(what, sizeof what, "layernorm_bwd dx acc=0 (%d,%d)", n, d);
    tw_check(what, dx, TEXT_TOL);
    snprintf(what, sizeof what, "layernorm_bwd dgamma (accumulating) (%d,%d)", n, d);
    tw_check(what, dg, TEXT_TOL);
    snprintf(what, sizeof what, "layernorm_bwd dbeta (accumulating) (%d,%d)", n, d);
    tw_check(what, db, TEXT_TOL);
    BOTH(be->layernorm_bwd(be, n, d, F(x, s), F(dy, s), F(gamma, s), F(sm, s), F(sr, s), F(dx, s),
                           1, F(dg, s), F(db, s)));
    snprintf(what, sizeof what, "layernorm_bwd dx acc=1 (%d,%d)", n, d);
    tw_check(what, dx, TEXT_TOL);
    BOTH(be->layernorm_bwd(be, n, d, F(x, s), F(dy, s), F(gamma, s), F(sm, s), F(sr, s), NULL, 0,
                           F(dg, s), F(db, s)));
    snprintf(what, sizeof what, "layernorm_bwd dx=NULL dgamma (%d,%d)", n, d);
    tw_check(what, dg, TEXT_TOL);
    snprintf(what, sizeof what, "layernorm_bwd dx=NULL dbeta (%d,%d)", n, d);
    tw_check(what, db, TEXT_TOL);
}

static void test_layernorm(void **state)
{
    need_gpu();
    layernorm_case(37, 300, 650); /* d past one pass of the block, not a multiple of 8 */
    layernorm_case(5, 64, 660);   /* fewer columns than threads */
    layernorm_case(130, 768, 670); /* BERT-base width, rows past the row groups */
    layernorm_case(3, 5, 680);
}

static void test_gelu(void **state)
{
    need_gpu();
    enum { N = 3001 };
    twin *x = tw_rand(N, 690, -6, 6), *y = tw_const(N, 0.0f);
    twin *dy = tw_rand(N, 691, -1, 1), *dx = tw_const(N, 0.0f);
    BOTH(be->gelu_fwd(be, N, F(x, s), F(y, s)));
    tw_check("gelu_fwd", y, TEXT_TOL);
    BOTH(be->gelu_bwd(be, N, F(x, s), F(dy, s), F(dx, s)));
    tw_check("gelu_bwd", dx, TEXT_TOL);
    /* In place: y aliases x, dx aliases dy. */
    twin *xi = tw_rand(N, 692, -6, 6), *xb = tw_rand(N, 692, -6, 6), *gi = tw_rand(N, 693, -1, 1);
    BOTH(be->gelu_fwd(be, N, F(xi, s), F(xi, s)));
    tw_check("gelu_fwd in place", xi, TEXT_TOL);
    BOTH(be->gelu_bwd(be, N, F(xb, s), F(gi, s), F(gi, s)));
    tw_check("gelu_bwd in place", gi, TEXT_TOL);
}

/* Attention scores (NS, NH, T, T) softmaxed along rows, masked by one
 * length per sequence (group = NH T rows), lens NULL too, then backward;
 * also in place. */
static void softmax_case(int ns, int nh, int t, const int32_t *lens_h, uint64_t seed)
{
    int rows = ns * nh * t, group = nh * t;
    size_t sz = (size_t)rows * t;
    twin *lens = tw_upload(lens_h, ns, sizeof(int32_t));
    twin *x = tw_rand(sz, seed, -4, 4), *y = tw_rand(sz, seed + 1, -1, 1);
    char what[128];
    BOTH(be->softmax_fwd(be, rows, t, group, I32(lens, s), F(x, s), F(y, s)));
    snprintf(what, sizeof what, "softmax_fwd masked (%d rows, %d cols)", rows, t);
    tw_check(what, y, TEXT_TOL);
    const float *yg = tw_get(y, GPU);
    for (int r = 0; r < rows; r++) {
        int len = lens_h[r / group];
        if (len < 1 || len > t) len = t;
        for (int j = len; j < t; j++)
            if (yg[(size_t)r * t + j] != 0.0f)
                fail_msg("softmax_fwd: row %d column %d past length %d is %g on the GPU", r, j,
                         len, (double)yg[(size_t)r * t + j]);
    }
    twin *dy = tw_rand(sz, seed + 2, -1, 1), *dx = tw_rand(sz, seed + 3, -1, 1);
    BOTH(be->softmax_bwd(be, rows, t, F(y, s), F(dy, s), F(dx, s)));
    snprintf(what, sizeof what, "softmax_bwd masked (%d rows, %d cols)", rows, t);
    tw_check(what, dx, TEXT_TOL);

    twin *yn = tw_const(sz, 0.0f);
    BOTH(be->softmax_fwd(be, rows, t, group, NULL, F(x, s), F(yn, s)));
    snprintf(what, sizeof what, "softmax_fwd lens=NULL (%d rows, %d cols)", rows, t);
    tw_check(what, yn, TEXT_TOL);

    /* In place: y aliases x, dx aliases dy. */
    twin *xi = tw_rand(sz, seed, -4, 4), *gi = tw_rand(sz, seed + 2, -1, 1);
    BOTH(be->softmax_fwd(be, rows, t, group, I32(lens, s), F(xi, s), F(xi, s)));
    snprintf(what, sizeof what, "softmax_fwd masked in place (%d cols)", t);
    tw_check(what, xi, TEXT_TOL);
    BOTH(be->softmax_bwd(be, rows, t, F(xi, s), F(gi, s), F(gi, s)));
    snprintf(what, sizeof what, "softmax_bwd in place (%d cols)", t);
    tw_check(what, gi, TEXT_TOL);
}

static void test_softmax(void **state)
{
    need_gpu();
    /* Full, one column, part, and lengths outside [1, cols] (all columns). */
    static const int32_t short_lens[] = {13, 1, 5, 0, 17, -3};
    static const int32_t long_lens[] = {77, 1, 40, 33, 100};
    softmax_case(6, 2, 13, short_lens, 700); /* fewer columns than lanes */
    softmax_case(5, 3, 77, long_lens, 710);  /* several columns per lane */
}

static void test_dropout(void **state)
{
    need_gpu();
    static const size_t sizes[] = {1, 5, 100003};
    static const float rates[] = {0.0f, 0.1f, 0.5f};
    const uint64_t key = 0x243F6A8885A308D3ull;
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++)
        for (size_t q = 0; q < sizeof rates / sizeof *rates; q++) {
            size_t n = sizes[t];
            float p = rates[q];
            uint64_t stream = 1000 + 10 * t + q;
            char what[96];
            twin *x = tw_rand(n, 720 + t, -1, 1), *y = tw_rand(n, 730 + t, -1, 1);
            BOTH(be->dropout(be, n, p, key, stream, F(x, s), F(y, s)));
            snprintf(what, sizeof what, "dropout n=%zu p=%g", n, (double)p);
            tw_same(what, y);
            /* In place, as the backward runs it (x = dy, y = dx). */
            BOTH(be->dropout(be, n, p, key, stream, F(x, s), F(x, s)));
            snprintf(what, sizeof what, "dropout n=%zu p=%g in place", n, (double)p);
            tw_same(what, x);
        }
}

/* Column `col` of t (rows, cols) on both sides compared on its own scale
 * (tu_rel_err over that column only). */
static void tw_check_col(const char *what, const twin *t, int rows, int cols, int col, double tol)
{
    const float *c = tw_get(t, CPU), *g = tw_get(t, GPU);
    float *cc = scratch((size_t)rows * sizeof *cc), *gc = scratch((size_t)rows * sizeof *gc);
    for (int r = 0; r < rows; r++) {
        cc[r] = c[(size_t)r * cols + col];
        gc[r] = g[(size_t)r * cols + col];
    }
    double err = tu_rel_err(gc, cc, (size_t)rows);
    fprintf(stderr, "# %-44s rel err %.3g\n", what, err);
    if (!(err <= tol))
        fail_msg("%s: GPU differs from CPU: relative error %.3g > %.3g", what, err, tol);
}

/* MetaXL's RTN output gate on h (n, d) and o (n, d + 1): forward, also
 * with y aliasing h, then the backward to o, whose gate column do_d (a
 * double sum over the row) is also checked on its own scale. */
static void rtn_gate_case(int n, int d, uint64_t seed)
{
    size_t sz = (size_t)n * d, so = (size_t)n * (d + 1);
    twin *h = tw_rand(sz, seed, -1, 1), *o = tw_rand(so, seed + 1, -4, 4);
    twin *y = tw_rand(sz, seed + 2, -1, 1);
    char what[128];
    BOTH(be->rtn_gate_fwd(be, n, d, F(h, s), F(o, s), F(y, s)));
    snprintf(what, sizeof what, "rtn_gate_fwd (%d,%d)", n, d);
    tw_check(what, y, TEXT_TOL);
    /* In place: y aliases h. */
    twin *hi = tw_rand(sz, seed, -1, 1);
    BOTH(be->rtn_gate_fwd(be, n, d, F(hi, s), F(o, s), F(hi, s)));
    snprintf(what, sizeof what, "rtn_gate_fwd in place (%d,%d)", n, d);
    tw_check(what, hi, TEXT_TOL);

    twin *dy = tw_rand(sz, seed + 3, -1, 1), *dout = tw_rand(so, seed + 4, -1, 1);
    BOTH(be->rtn_gate_bwd(be, n, d, F(o, s), F(dy, s), F(dout, s)));
    snprintf(what, sizeof what, "rtn_gate_bwd (%d,%d)", n, d);
    tw_check(what, dout, TEXT_TOL);
    snprintf(what, sizeof what, "rtn_gate_bwd gate column (%d,%d)", n, d);
    tw_check_col(what, dout, n, d + 1, d, TEXT_TOL);
}

static void test_rtn_gate(void **state)
{
    need_gpu();
    rtn_gate_case(37, 768, 740); /* BERT-base width: many columns per lane */
    rtn_gate_case(9, 5, 750);    /* fewer columns than lanes */
    rtn_gate_case(1, 768, 760);  /* one row */
    rtn_gate_case(1, 5, 770);
    rtn_gate_case(300, 33, 780); /* rows past one block's warps */
}

/* ---- optimisers ---- */

static void sgd_case(const char *name, float momentum, float wd, int nesterov,
                     uint64_t seed)
{
    enum { N = 10007 };
    const float lr = 0.05f;
    twin *theta = tw_rand(N, seed, -1, 1);
    twin *buf = momentum != 0.0f ? tw_rand(N, seed + 1, -1, 1) : NULL;
    char what[128];
    for (int step = 0; step < 3; step++) {
        twin *g = tw_rand(N, seed + 10 + step, -1, 1);
        int first = step == 0;
        BOTH(be->sgd_step(be, N, F(theta, s), F(g, s), buf ? F(buf, s) : NULL,
                          lr, momentum, wd, nesterov, first));
        snprintf(what, sizeof what, "sgd %s step %d (first=%d) theta", name,
                 step + 1, first);
        tw_check(what, theta, OPT_TOL);
        if (buf) {
            snprintf(what, sizeof what, "sgd %s step %d (first=%d) buf", name,
                     step + 1, first);
            tw_check(what, buf, OPT_TOL);
        }
    }
}

static void test_sgd(void **state)
{
    need_gpu();
    sgd_case("momentum 0", 0.0f, 0.0f, 0, 340);
    sgd_case("momentum 0 wd", 0.0f, 5e-4f, 0, 350);
    sgd_case("momentum 0.9", 0.9f, 0.0f, 0, 360);
    sgd_case("momentum 0.9 wd", 0.9f, 5e-4f, 0, 370);
    sgd_case("nesterov 0.9 wd", 0.9f, 1e-3f, 1, 380);
}

static void adam_case(const char *name, float wd, uint64_t seed)
{
    enum { N = 10007 };
    twin *theta = tw_rand(N, seed, -1, 1);
    twin *m = tw_const(N, 0.0f), *v = tw_const(N, 0.0f);
    char what[128];
    for (int t = 1; t <= 10; t++) {
        twin *g = tw_rand(N, seed + 10 + t, -1, 1);
        BOTH(be->adam_step(be, N, F(theta, s), F(g, s), F(m, s), F(v, s), 1e-3f,
                           0.9f, 0.999f, 1e-8f, wd, t));
        if (t != 1 && t != 2 && t != 10) continue;
        snprintf(what, sizeof what, "adam %s t=%d theta", name, t);
        tw_check(what, theta, OPT_TOL);
        snprintf(what, sizeof what, "adam %s t=%d m", name, t);
        tw_check(what, m, OPT_TOL);
        snprintf(what, sizeof what, "adam %s t=%d v", name, t);
        tw_check(what, v, OPT_TOL);
    }
}

static void test_adam(void **state)
{
    need_gpu();
    adam_case("no wd", 0.0f, 400);
    adam_case("wd 1e-2", 1e-2f, 420);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_gemm, test_teardown),
        cmocka_unit_test_teardown(test_bias, test_teardown),
        cmocka_unit_test_teardown(test_conv, test_teardown),
        cmocka_unit_test_teardown(test_bn, test_teardown),
        cmocka_unit_test_teardown(test_activations, test_teardown),
        cmocka_unit_test_teardown(test_maxpool, test_teardown),
        cmocka_unit_test_teardown(test_avgpool, test_teardown),
        cmocka_unit_test_teardown(test_shortcut, test_teardown),
        cmocka_unit_test_teardown(test_xent, test_teardown),
        cmocka_unit_test_teardown(test_rotate, test_teardown),
        cmocka_unit_test_teardown(test_vec, test_teardown),
        cmocka_unit_test_teardown(test_rademacher, test_teardown),
        cmocka_unit_test_teardown(test_noise_fused, test_teardown),
        cmocka_unit_test_teardown(test_gaussian, test_teardown),
        cmocka_unit_test_teardown(test_ft, test_teardown),
        cmocka_unit_test_teardown(test_bn_eval_bwd, test_teardown),
        cmocka_unit_test_teardown(test_maxpool_pad, test_teardown),
        cmocka_unit_test_teardown(test_fewshot_ops, test_teardown),
        cmocka_unit_test_teardown(test_lft_model, test_teardown),
        cmocka_unit_test_teardown(test_gemm_batched, test_teardown),
        cmocka_unit_test_teardown(test_embed, test_teardown),
        cmocka_unit_test_teardown(test_layernorm, test_teardown),
        cmocka_unit_test_teardown(test_gelu, test_teardown),
        cmocka_unit_test_teardown(test_softmax, test_teardown),
        cmocka_unit_test_teardown(test_dropout, test_teardown),
        cmocka_unit_test_teardown(test_rtn_gate, test_teardown),
        cmocka_unit_test_teardown(test_sgd, test_teardown),
        cmocka_unit_test_teardown(test_adam, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
