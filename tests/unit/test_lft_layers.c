/* The layers, models and few-shot operations of cross-domain few-shot
 * learning with feature-wise transformations (LFT): finite-difference
 * checks of FT (to its input, θ_γ and θ_β, also around the softplus
 * threshold), the elementwise add, padded max pooling, BatchNorm's
 * evaluation-mode backward, batch-statistics BatchNorm and the few-shot
 * operations; FT noise; the LFT ResNet's and relation module's shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/fewshot.h"
#include "nn/models.h"
#include "nn/net.h"
#include "nn/philox.h"
#include "testutil.h"

#define KEY 77
#define STREAM 5

typedef struct fd_net {
    eg_net net;
    eg_backend *be;
    int batch;
    eg_mode mode;
    float *theta, *dtheta, *state, *meta, *dmeta, *x, *dx, *w; /* host = device on the CPU */
} fd_net;

/* sum w * output in double, in f->mode (EG_PROBE or EG_EVAL: no state
 * update), at the current FT setting. */
static double net_loss(void *p)
{
    fd_net *f = p;
    if (eg_net_forward(&f->net, f->theta, f->state, f->x, f->batch, f->mode) != 0)
        fail_msg("forward: %s", eg_last_error());
    return tu_project(eg_net_output(&f->net), f->w, (size_t)f->batch * eg_net_out_dim(&f->net));
}

static void fd_start(fd_net *f, int c, int h, int w)
{
    memset(f, 0, sizeof *f);
    f->be = tu_cpu();
    f->mode = EG_PROBE;
    assert_int_equal(eg_net_init(&f->net, f->be, c, h, w), 0);
}

/* Finishes the net and fills everything: jittered parameters, running
 * statistics away from (0, 1), meta from the layout (then `meta_fill` if
 * not NULL), distinct inputs in [-1, 1), a projection. */
static void fd_fill(fd_net *f, int batch, const float *meta_fill)
{
    eg_net *net = &f->net;
    assert_int_equal(eg_net_finish(net, batch, 1), 0);
    f->batch = batch;
    size_t P = net->params.total, S = net->state.total, M = net->meta.total;
    size_t nx = (size_t)batch * net->layers[0].c * net->layers[0].h * net->layers[0].w;
    size_t ny = (size_t)batch * eg_net_out_dim(net);
    f->theta = calloc(P + 1, sizeof(float));
    f->dtheta = calloc(P + 1, sizeof(float));
    f->state = calloc(S + 1, sizeof(float));
    f->meta = calloc(M + 1, sizeof(float));
    f->dmeta = calloc(M + 1, sizeof(float));
    f->x = malloc(nx * sizeof(float));
    f->dx = malloc(nx * sizeof(float));
    f->w = malloc(ny * sizeof(float));
    float *jitter = malloc((P + S + 1) * sizeof(float));
    eg_net_init_params(net, f->theta, f->state, 11);
    tu_fill_uniform(jitter, P + S, 12, -0.3f, 0.3f);
    for (size_t i = 0; i < P; i++) f->theta[i] += jitter[i];
    for (int i = 0; i < net->state.n; i++) { /* means in +-0.3, variances in 0.7..1.3 */
        const eg_slice *sl = &net->state.slices[i];
        for (size_t k = 0; k < sl->count; k++)
            f->state[sl->offset + k] += jitter[P + sl->offset + k];
    }
    free(jitter);
    eg_net_init_meta(net, f->meta);
    if (meta_fill) memcpy(f->meta, meta_fill, M * sizeof(float));
    float *order = malloc(nx * sizeof(float));
    tu_fill_uniform(order, nx, 13, 0.0f, 1.0f);
    for (size_t i = 0; i < nx; i++) {
        size_t rank = 0;
        for (size_t j = 0; j < nx; j++)
            rank += order[j] < order[i] || (order[j] == order[i] && j < i);
        f->x[i] = -1.0f + 2.0f * (float)rank / (float)nx;
    }
    free(order);
    tu_fill_uniform(f->w, ny, 14, -1.0f, 1.0f);
}

/* Runs one backward (FT on when the net has FT layers) and checks the
 * gradients to θ, x and meta against central differences. */
static void fd_check(fd_net *f, float eps, double tol, double atol)
{
    eg_net *net = &f->net;
    size_t P = net->params.total, M = net->meta.total;
    size_t nx = (size_t)f->batch * net->layers[0].c * net->layers[0].h * net->layers[0].w;
    if (M) assert_int_equal(eg_net_set_ft(net, f->meta, f->dmeta, KEY, STREAM), 0);
    net_loss(f);
    assert_int_equal(eg_net_backward(net, f->theta, f->w, f->dtheta, f->dx), 0);
    int bad = tu_check_grad("dtheta", f->theta, f->dtheta, P, net_loss, f, eps, tol, atol, 300);
    bad += tu_check_grad("dx", f->x, f->dx, nx, net_loss, f, eps, tol, atol, 300);
    if (M) bad += tu_check_grad("dmeta", f->meta, f->dmeta, M, net_loss, f, eps, tol, atol, 300);
    assert_int_equal(bad, 0);
}

static void fd_end(fd_net *f)
{
    free(f->theta);
    free(f->dtheta);
    free(f->state);
    free(f->meta);
    free(f->dmeta);
    free(f->x);
    free(f->dx);
    free(f->w);
    eg_net_free(&f->net);
    f->be->destroy(f->be);
}

/* ---- FT ---- */

/* conv - BN - FT at the initial meta (0.3, 0.5: softplus is linear there). */
static void test_ft_grad(void **s)
{
    fd_net f;
    fd_start(&f, 2, 5, 4);
    int x = eg_net_conv(&f.net, 0, "conv", 3, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL);
    x = eg_net_bn(&f.net, x, "bn");
    assert_true(eg_net_ft(&f.net, x, "bn") > 0);
    assert_int_equal(f.net.n_ft, 1);
    assert_int_equal(f.net.meta.total, 6);
    assert_string_equal(f.net.meta.slices[0].name, "bn.gamma");
    assert_string_equal(f.net.meta.slices[1].name, "bn.beta");
    fd_fill(&f, 3, NULL);
    assert_float_equal(f.meta[0], 0.3f, 0);
    assert_float_equal(f.meta[5], 0.5f, 0);
    fd_check(&f, 1e-3f, 1e-2, 1e-3);
    fd_end(&f);
}

/* θ on both sides of softplus's threshold (100 θ = 20) and deep in its
 * curved part; the input feeds FT directly, so dx is γ dy alone. */
static void test_ft_grad_threshold(void **s)
{
    fd_net f;
    fd_start(&f, 4, 3, 3);
    assert_true(eg_net_ft(&f.net, 0, "ft") > 0);
    float meta[8] = {0.195f, 0.205f, 0.0f, -0.01f, 0.21f, 0.01f, 0.19f, 0.003f};
    fd_fill(&f, 2, meta);
    fd_check(&f, 1e-4f, 2e-2, 2e-4);
    /* Every ∂/∂θ is non-trivial (no zero noise, no vanishing sigmoid). */
    for (int j = 0; j < 8; j++) assert_true(fabsf(f.dmeta[j]) > 1e-3f);
    fd_end(&f);
}

/* The noise is eg_gaussian's, per meta element; y matches a host
 * computation of γ_c x + β_c; same (key, stream) gives the same output,
 * another stream another. */
static void test_ft_noise(void **s)
{
    enum { C = 3, HW = 4, B = 2, N = B * C * HW };
    eg_backend *be = tu_cpu();
    eg_net net;
    assert_int_equal(eg_net_init(&net, be, C, 2, 2), 0);
    assert_true(eg_net_ft(&net, 0, "ft") > 0);
    assert_int_equal(eg_net_finish(&net, B, 1), 0);
    float meta[2 * C] = {0.3f, 0.1f, -0.02f, 0.5f, 0.15f, 0.001f}, x[N], y1[N], y2[N];
    tu_fill_uniform(x, N, 3, -1, 1);
    /* Identity without meta. */
    assert_int_equal(eg_net_set_ft(&net, NULL, NULL, KEY, STREAM), 0);
    assert_int_equal(eg_net_forward(&net, NULL, NULL, x, B, EG_TRAIN), 0);
    assert_memory_equal(eg_net_output(&net), x, sizeof x);
    assert_int_equal(eg_net_set_ft(&net, meta, NULL, KEY, STREAM), 0);
    for (int j = 0; j < 2 * C; j++)
        assert_true(net.ft_noise[j] == (float)eg_gaussian(KEY, STREAM, (uint64_t)j));
    assert_int_equal(eg_net_forward(&net, NULL, NULL, x, B, EG_TRAIN), 0);
    memcpy(y1, eg_net_output(&net), sizeof y1);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            double eg = eg_gaussian(KEY, STREAM, c), eb = eg_gaussian(KEY, STREAM, C + c);
            double spg = meta[c] * 100 > 20 ? meta[c] : log1p(exp(100.0 * meta[c])) / 100;
            double spb =
                meta[C + c] * 100 > 20 ? meta[C + c] : log1p(exp(100.0 * meta[C + c])) / 100;
            double g = 1 + eg * spg, bt = eb * spb;
            for (int k = 0; k < HW; k++) {
                int i = (b * C + c) * HW + k;
                assert_float_equal(y1[i], g * x[i] + bt, 1e-6);
            }
        }
    /* Another stream draws other noise; going back draws the first again. */
    assert_int_equal(eg_net_set_ft(&net, meta, NULL, KEY, STREAM + 1), 0);
    assert_int_equal(eg_net_forward(&net, NULL, NULL, x, B, EG_TRAIN), 0);
    memcpy(y2, eg_net_output(&net), sizeof y2);
    assert_true(tu_rel_err(y2, y1, N) > 1e-2);
    assert_int_equal(eg_net_set_ft(&net, meta, NULL, KEY, STREAM), 0);
    assert_int_equal(eg_net_forward(&net, NULL, NULL, x, B, EG_TRAIN), 0);
    assert_memory_equal(eg_net_output(&net), y1, sizeof y1);
    /* A backward must see its forward's setting. */
    assert_int_equal(eg_net_set_ft(&net, meta, NULL, KEY, STREAM + 1), 0);
    float dx[N];
    tu_fails_with(eg_net_backward(&net, NULL, x, NULL, dx), "FT setting changed");
    tu_fails_with(eg_net_set_ft(&net, NULL, dx, KEY, STREAM), "meta-gradient asked without meta");
    eg_net_free(&net);
    be->destroy(be);
}

/* A backward asking only for the meta-gradient gives the full backward's,
 * and accumulates. */
static void test_ft_meta_only(void **s)
{
    fd_net f;
    memset(&f, 0, sizeof f);
    f.be = tu_cpu();
    assert_int_equal(eg_model_lft_resnet(&f.net, f.be, 10, 2, 2, 6, 1, 1), 0);
    fd_fill(&f, 2, NULL);
    size_t M = f.net.meta.total;
    float *full = calloc(M, sizeof(float)), *only = calloc(M, sizeof(float));
    assert_int_equal(eg_net_set_ft(&f.net, f.meta, full, KEY, STREAM), 0);
    assert_int_equal(eg_net_forward(&f.net, f.theta, f.state, f.x, 2, EG_TRAIN), 0);
    assert_int_equal(eg_net_backward(&f.net, f.theta, f.w, f.dtheta, f.dx), 0);
    assert_int_equal(eg_net_set_ft(&f.net, f.meta, only, KEY, STREAM), 0);
    assert_int_equal(eg_net_backward(&f.net, f.theta, f.w, NULL, NULL), 0);
    assert_true(tu_rel_err(only, full, M) < 1e-6);
    assert_int_equal(eg_net_backward(&f.net, f.theta, f.w, NULL, NULL), 0);
    for (size_t j = 0; j < M; j++)
        assert_float_equal(only[j], 2 * full[j], 1e-5 * fabs(full[j]) + 1e-7);
    /* Without FT nothing is asked. */
    assert_int_equal(eg_net_set_ft(&f.net, NULL, NULL, KEY, STREAM), 0);
    assert_int_equal(eg_net_forward(&f.net, f.theta, f.state, f.x, 2, EG_PROBE), 0);
    tu_fails_with(eg_net_backward(&f.net, f.theta, f.w, NULL, NULL), "neither parameter");
    free(full);
    free(only);
    fd_end(&f);
}

/* ---- the elementwise add ---- */

/* In place on the first addend (conv + conv of the same input). */
static void test_add_in_place(void **s)
{
    fd_net f;
    fd_start(&f, 2, 5, 5);
    int a = eg_net_conv(&f.net, 0, "a", 3, 3, 1, 1, 1, EG_INIT_UNIFORM_FAN_IN);
    int b = eg_net_conv(&f.net, 0, "b", 3, 1, 1, 0, 0, EG_INIT_UNIFORM_FAN_IN);
    int y = eg_net_add(&f.net, a, b);
    assert_true(y > 0);
    fd_fill(&f, 2, NULL);
    assert_true(f.net.layers[y].in_place);
    fd_check(&f, 1e-2f, 1e-3, 1e-4);
    fd_end(&f);
}

/* Not in place: the first addend is a ReLU (its backward needs its own
 * output) and the second is the input itself, read twice. */
static void test_add_copy(void **s)
{
    fd_net f;
    fd_start(&f, 2, 4, 4);
    int a = eg_net_conv(&f.net, 0, "a", 2, 3, 1, 1, 1, EG_INIT_UNIFORM_FAN_IN);
    a = eg_net_relu(&f.net, a);
    int y = eg_net_add(&f.net, a, 0);
    y = eg_net_add(&f.net, y, y); /* 2 (relu(conv x) + x) */
    assert_true(y > 0);
    fd_fill(&f, 2, NULL);
    assert_false(f.net.layers[y].in_place);
    assert_false(f.net.layers[y - 1].in_place);
    fd_check(&f, 1e-3f, 1e-2, 1e-3);
    fd_end(&f);
}

static void test_add_errors(void **s)
{
    eg_backend *be = tu_cpu();
    eg_net net;
    assert_int_equal(eg_net_init(&net, be, 2, 4, 4), 0);
    int a = eg_net_conv(&net, 0, "a", 3, 3, 1, 1, 0, EG_INIT_ZEROS);
    tu_fails_with(eg_net_add(&net, a, 0), "add of (3, 4, 4) and (2, 4, 4)");
    tu_fails_with(eg_net_add(&net, a, 7), "add reads missing layer 7");
    assert_int_equal(net.n_layers, 2);
    eg_net_free(&net);
    be->destroy(be);
}

/* ---- padded max pooling ---- */

static void test_maxpool_pad_grad(void **s)
{
    static const int hw[][2] = {{7, 7}, {8, 6}};
    for (int t = 0; t < 2; t++) {
        fd_net f;
        fd_start(&f, 2, hw[t][0], hw[t][1]);
        int x = eg_net_maxpool(&f.net, 0, 3, 2, 1);
        assert_true(x > 0);
        assert_int_equal(f.net.layers[x].h, (hw[t][0] + 2 - 3) / 2 + 1);
        assert_int_equal(f.net.layers[x].w, (hw[t][1] + 2 - 3) / 2 + 1);
        fd_fill(&f, 2, NULL);
        fd_check(&f, 1e-3f, 1e-2, 1e-3);
        fd_end(&f);
    }
}

/* Padding is -inf: a window of negative values keeps its maximum, and the
 * corner window of a 4x4 input covers only its 2x2 corner. */
static void test_maxpool_pad_values(void **s)
{
    eg_backend *be = tu_cpu();
    float x[16], y[4], dy[4] = {1, 2, 3, 4}, dx[16];
    for (int i = 0; i < 16; i++) x[i] = -1.0f - (float)((i * 7) % 16);
    eg_pool_shape ps = {
        .n = 1, .c = 1, .h = 4, .w = 4, .size = 3, .stride = 2, .pad = 1, .p = 2, .q = 2};
    assert_int_equal(be->maxpool_fwd(be, &ps, x, y), 0);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            float m = -INFINITY;
            for (int a = 2 * i - 1; a <= 2 * i + 1; a++)
                for (int b = 2 * j - 1; b <= 2 * j + 1; b++)
                    if (a >= 0 && a < 4 && b >= 0 && b < 4 && x[a * 4 + b] > m) m = x[a * 4 + b];
            assert_true(y[i * 2 + j] == m);
            assert_true(m < 0);
        }
    assert_int_equal(be->maxpool_bwd(be, &ps, x, y, dy, dx), 0);
    double total = 0;
    for (int i = 0; i < 16; i++) total += dx[i];
    assert_float_equal(total, 10, 0);
    be->destroy(be);
    eg_net net;
    be = tu_cpu();
    assert_int_equal(eg_net_init(&net, be, 1, 4, 4), 0);
    tu_fails_with(eg_net_maxpool(&net, 0, 3, 2, 2), "padding 2 exceeds half the window");
    eg_net_free(&net);
    be->destroy(be);
}

/* ---- BatchNorm ---- */

/* The gradient of an evaluation-mode forward: running statistics are
 * constants; the net's input gradient flows through a conv in front. */
static void test_bn_eval_grad(void **s)
{
    fd_net f;
    fd_start(&f, 2, 4, 5);
    int x = eg_net_conv(&f.net, 0, "conv", 3, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL);
    assert_true(eg_net_bn(&f.net, x, "bn") > 0);
    fd_fill(&f, 3, NULL);
    f.mode = EG_EVAL;
    fd_check(&f, 1e-2f, 1e-3, 1e-4);
    /* dx is γ / sqrt(var + eps) dy: with a BN on the input directly. */
    fd_end(&f);
    fd_start(&f, 3, 2, 2);
    assert_true(eg_net_bn(&f.net, 0, "bn") > 0);
    fd_fill(&f, 2, NULL);
    f.mode = EG_EVAL;
    net_loss(&f);
    assert_int_equal(eg_net_backward(&f.net, f.theta, f.w, f.dtheta, f.dx), 0);
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 4; k++) {
                int i = (b * 3 + c) * 4 + k;
                double want = f.w[i] * f.theta[c] / sqrt(f.state[3 + c] + 1e-5);
                assert_float_equal(f.dx[i], want, 1e-6);
            }
    fd_end(&f);
}

/* Batch statistics in every mode, no running statistics. */
static void test_bn_batch(void **s)
{
    fd_net f;
    fd_start(&f, 2, 4, 4);
    int x = eg_net_conv(&f.net, 0, "conv", 3, 3, 1, 1, 1, EG_INIT_UNIFORM_FAN_IN);
    assert_true(eg_net_bn_batch(&f.net, x, "bn") > 0);
    assert_int_equal(f.net.state.total, 0);
    fd_fill(&f, 3, NULL);
    size_t ny = (size_t)3 * eg_net_out_dim(&f.net);
    float *probe = malloc(ny * sizeof(float));
    assert_int_equal(eg_net_forward(&f.net, f.theta, f.state, f.x, 3, EG_PROBE), 0);
    memcpy(probe, eg_net_output(&f.net), ny * sizeof(float));
    assert_int_equal(eg_net_forward(&f.net, f.theta, f.state, f.x, 3, EG_EVAL), 0);
    assert_memory_equal(probe, eg_net_output(&f.net), ny * sizeof(float));
    free(probe);
    f.mode = EG_EVAL; /* still the batch-statistics gradient */
    fd_check(&f, 1e-2f, 5e-3, 2e-4);
    fd_end(&f);
}

/* ---- models ---- */

static int count_kind(const eg_net *net, eg_layer_kind k)
{
    int n = 0;
    for (int i = 0; i < net->n_layers; i++) n += net->layers[i].kind == k;
    return n;
}

static void test_lft_resnet_shapes(void **s)
{
    eg_backend *be = tu_cpu();
    static const struct {
        int depth, fts;
    } cases[] = {{10, 7}, {18, 11}, {34, 19}};
    for (int t = 0; t < 3; t++) {
        eg_net net;
        assert_int_equal(eg_model_lft_resnet(&net, be, cases[t].depth, 64, 3, 224, 0, 1), 0);
        assert_int_equal(net.n_ft, cases[t].fts);
        assert_int_equal(count_kind(&net, EG_L_FT), cases[t].fts);
        assert_int_equal(net.meta.n, 2 * cases[t].fts);
        const eg_layer *out = &net.layers[net.n_layers - 1];
        assert_int_equal(out->c, 512);
        assert_int_equal(out->h, 7);
        assert_int_equal(out->w, 7);
        /* Projection shortcuts in stages 2-4 only. */
        assert_int_equal(count_kind(&net, EG_L_ADD), cases[t].fts - 3);
        eg_net_free(&net);
    }
    eg_net net;
    assert_int_equal(eg_model_lft_resnet(&net, be, 10, 64, 3, 224, 0, 0), 0);
    assert_int_equal(net.n_ft, 0);
    assert_int_equal(net.meta.total, 0);
    /* ResNet-10 at width 64: 4.9 M parameters, as LFT's. */
    assert_int_equal(net.params.total, 4905792);
    assert_string_equal(net.params.slices[0].name, "trunk.0.weight");
    eg_net_free(&net);
    assert_int_equal(eg_model_lft_resnet(&net, be, 10, 8, 3, 32, 1, 1), 0);
    const eg_layer *out = &net.layers[net.n_layers - 1];
    assert_int_equal(out->c, 64);
    assert_int_equal(out->h, 4);
    assert_int_equal(out->w, 4);
    assert_int_equal(count_kind(&net, EG_L_MAXPOOL), 0);
    assert_string_equal(net.meta.slices[0].name, "trunk.3.BN2.gamma");
    assert_string_equal(net.meta.slices[3].name, "trunk.4.BN2.beta");
    assert_string_equal(net.meta.slices[4].name, "trunk.4.BNshortcut.gamma");
    eg_net_free(&net);
    tu_fails_with(eg_model_lft_resnet(&net, be, 12, 8, 3, 32, 1, 1), "depth 12");
    eg_net_free(&net);
    be->destroy(be);
}

/* LFT's init_layer: conv weights N(0, 2 / (k k out)), BN weight 1, bias 0. */
static void test_lft_resnet_init(void **s)
{
    eg_backend *be = tu_cpu();
    eg_net net;
    assert_int_equal(eg_model_lft_resnet(&net, be, 10, 16, 3, 64, 0, 1), 0);
    float *theta = malloc(net.params.total * sizeof(float));
    float *state = malloc(net.state.total * sizeof(float));
    float *meta = malloc(net.meta.total * sizeof(float));
    eg_net_init_params(&net, theta, state, 3);
    eg_net_init_meta(&net, meta);
    for (int i = 0; i < net.params.n; i++) {
        const eg_slice *sl = &net.params.slices[i];
        const float *p = theta + sl->offset;
        int stem = !strcmp(sl->name, "trunk.0.weight");
        if (stem || strstr(sl->name, "C2.weight")) {
            /* The stem: 16 outputs of 7x7; C2: (out, out, 3, 3). */
            int k = stem ? 7 : 3, out = stem ? 16 : (int)sqrt((double)sl->count / 9);
            double ss = 0;
            for (size_t j = 0; j < sl->count; j++) ss += (double)p[j] * p[j];
            double std = sqrt(ss / sl->count);
            double want = sqrt(2.0 / (k * k * out));
            if (fabs(std - want) > 0.05 * want)
                fail_msg("%s: std %.4g, want %.4g", sl->name, std, want);
        } else if (strstr(sl->name, "BN") || !strncmp(sl->name, "trunk.1.", 8)) {
            float want = strstr(sl->name, ".weight") ? 1.0f : 0.0f;
            for (size_t j = 0; j < sl->count; j++) assert_true(p[j] == want);
        }
    }
    for (int i = 0; i < net.meta.n; i++) {
        const eg_slice *sl = &net.meta.slices[i];
        float want = strstr(sl->name, ".gamma") ? 0.3f : 0.5f;
        for (size_t j = 0; j < sl->count; j++) assert_true(meta[sl->offset + j] == want);
    }
    free(theta);
    free(state);
    free(meta);
    eg_net_free(&net);
    be->destroy(be);
}

static void test_relation_shapes(void **s)
{
    eg_backend *be = tu_cpu();
    eg_net net;
    /* ResNet's 7x7 map: padding 1, 7 -> 3 -> 1. */
    assert_int_equal(eg_model_relation(&net, be, 16, 7, 7), 0);
    assert_int_equal(net.layers[0].c, 32);
    assert_int_equal(eg_net_out_dim(&net), 1);
    assert_int_equal(net.state.total, 0);
    assert_int_equal(net.layers[1].pad, 1);
    int lin = -1;
    for (int i = 0; i < net.n_layers; i++)
        if (net.layers[i].kind == EG_L_LINEAR && lin < 0) lin = i;
    assert_int_equal(net.layers[net.layers[lin].in].c * net.layers[net.layers[lin].in].h, 16);
    assert_int_equal(net.layers[lin].c, 8);
    eg_net_free(&net);
    /* Conv4NP's 19x19 map: no padding, 19 -> 17 -> 8 -> 6 -> 3. */
    assert_int_equal(eg_model_relation(&net, be, 4, 19, 19), 0);
    assert_int_equal(net.layers[1].pad, 0);
    const eg_layer *pool2 = NULL;
    for (int i = 0; i < net.n_layers; i++)
        if (net.layers[i].kind == EG_L_MAXPOOL) pool2 = &net.layers[i];
    assert_int_equal(pool2->h, 3);
    eg_net_free(&net);
    /* A 3x3 map (84 px inputs) pools to 1x1 in block 1; block 2 leaves
     * its 1x1 map unpooled: one max-pool, and fc1 reads 4 x 1 x 1. */
    assert_int_equal(eg_model_relation(&net, be, 4, 3, 3), 0);
    int pools = 0;
    lin = -1;
    for (int i = 0; i < net.n_layers; i++) {
        pools += net.layers[i].kind == EG_L_MAXPOOL;
        if (net.layers[i].kind == EG_L_LINEAR && lin < 0) lin = i;
    }
    assert_int_equal(pools, 1);
    assert_int_equal(net.layers[net.layers[lin].in].c * net.layers[net.layers[lin].in].h *
                         net.layers[net.layers[lin].in].w,
                     4);
    eg_net_free(&net);
    be->destroy(be);
}

/* A projection block as the LFT ResNet builds it: conv3x3 stride 2 - BN -
 * FT on the main path, conv1x1 stride 2 - BN - FT on the shortcut, added,
 * then ReLU (whole networks are compared with PyTorch in
 * test_parity_lft). */
static void test_projection_block_grad(void **s)
{
    fd_net f;
    fd_start(&f, 2, 6, 6);
    int in = eg_net_conv(&f.net, 0, "stem", 2, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL);
    int x = eg_net_conv(&f.net, in, "c1", 4, 3, 2, 1, 0, EG_INIT_KAIMING_NORMAL);
    x = eg_net_bn(&f.net, x, "bn1");
    int body = eg_net_ft(&f.net, x, "bn1");
    x = eg_net_conv(&f.net, in, "sc", 4, 1, 2, 0, 0, EG_INIT_KAIMING_NORMAL);
    x = eg_net_bn(&f.net, x, "bns");
    int skip = eg_net_ft(&f.net, x, "bns");
    x = eg_net_add(&f.net, body, skip);
    assert_true(eg_net_relu(&f.net, x) > 0);
    assert_int_equal(f.net.n_ft, 2);
    fd_fill(&f, 3, NULL);
    assert_true(f.net.layers[x].in_place);
    fd_check(&f, 1e-3f, 1e-2, 1e-3);
    fd_end(&f);
}

/* ---- few-shot operations ---- */

enum { NW = 3, SH = 2, QU = 2, CH = 2, HW = 3, D = CH * HW, NF = NW * (SH + QU) };

typedef struct fs_ctx {
    eg_backend *be;
    int op; /* 0 protos, 1 pairs, 2 sqdist */
    float feats[NF * D], protos[NW * D], out[NW * QU * NW * 2 * D], w[NW * QU * NW * 2 * D];
    size_t n_out;
} fs_ctx;

static double fs_loss(void *p)
{
    fs_ctx *c = p;
    assert_int_equal(eg_fewshot_protos(c->be, NW, SH, QU, D, c->feats, c->protos), 0);
    if (c->op == 0) {
        memcpy(c->out, c->protos, sizeof c->protos);
        c->n_out = NW * D;
    } else if (c->op == 1) {
        assert_int_equal(eg_fewshot_pairs(c->be, NW, SH, QU, CH, HW, c->protos, c->feats, c->out),
                         0);
        c->n_out = (size_t)NW * QU * NW * 2 * D;
    } else {
        assert_int_equal(eg_fewshot_sqdist(c->be, NW, SH, QU, D, c->feats, c->protos, c->out), 0);
        c->n_out = NW * QU * NW;
    }
    return tu_project(c->out, c->w, c->n_out);
}

/* d(sum w out)/d feats through the prototypes and the op. */
static void fs_grad(fs_ctx *c, float *dfeats)
{
    float dprotos[NW * D];
    fs_loss(c);
    for (int i = 0; i < NF * D; i++) dfeats[i] = 12345.0f; /* overwritten or added to */
    if (c->op == 0) {
        memcpy(dprotos, c->w, sizeof dprotos);
        for (int i = 0; i < NF * D; i++) dfeats[i] = 0;
    } else if (c->op == 1) {
        assert_int_equal(eg_fewshot_pairs_bwd(c->be, NW, SH, QU, CH, HW, c->w, dprotos, dfeats), 0);
    } else {
        assert_int_equal(
            eg_fewshot_sqdist_bwd(c->be, NW, SH, QU, D, c->feats, c->protos, c->w, dprotos, dfeats),
            0);
    }
    /* Support rows were left alone: zero them, then add the prototypes'. */
    for (int j = 0; j < NW; j++)
        for (int r = 0; r < SH; r++)
            for (int k = 0; k < D; k++) {
                float *v = &dfeats[(j * (SH + QU) + r) * D + k];
                if (c->op) assert_true(*v == 12345.0f);
                *v = 0;
            }
    assert_int_equal(eg_fewshot_protos_bwd(c->be, NW, SH, QU, D, dprotos, dfeats), 0);
}

static void test_fewshot_grad(void **s)
{
    for (int op = 0; op < 3; op++) {
        fs_ctx *c = calloc(1, sizeof *c);
        c->be = tu_cpu();
        c->op = op;
        tu_fill_uniform(c->feats, NF * D, 20 + op, -1, 1);
        tu_fill_uniform(c->w, sizeof c->w / sizeof(float), 30 + op, -1, 1);
        float dfeats[NF * D];
        fs_grad(c, dfeats);
        for (int i = 0; i < NF * D; i++) assert_true(dfeats[i] != 12345.0f);
        char what[32];
        snprintf(what, sizeof what, "dfeats op %d", op);
        assert_int_equal(
            tu_check_grad(what, c->feats, dfeats, NF * D, fs_loss, c, 1e-2f, 1e-3, 1e-4, 1000), 0);
        c->be->destroy(c->be);
        free(c);
    }
}

/* The layouts: prototype = support mean; pair q n_way + j = [proto_j ;
 * query q]; score = -|query - proto|^2. */
static void test_fewshot_values(void **s)
{
    fs_ctx *c = calloc(1, sizeof *c);
    c->be = tu_cpu();
    tu_fill_uniform(c->feats, NF * D, 40, -1, 1);
    c->op = 1;
    fs_loss(c);
    for (int j = 0; j < NW; j++)
        for (int k = 0; k < D; k++) {
            double m = 0;
            for (int r = 0; r < SH; r++) m += c->feats[(j * (SH + QU) + r) * D + k];
            assert_float_equal(c->protos[j * D + k], m / SH, 1e-6);
        }
    for (int cls = 0; cls < NW; cls++)
        for (int i = 0; i < QU; i++)
            for (int j = 0; j < NW; j++) {
                int q = cls * QU + i;
                const float *pair = c->out + (size_t)(q * NW + j) * 2 * D;
                assert_memory_equal(pair, c->protos + j * D, D * sizeof(float));
                assert_memory_equal(pair + D, c->feats + (cls * (SH + QU) + SH + i) * D,
                                    D * sizeof(float));
            }
    c->op = 2;
    fs_loss(c);
    for (int q = 0; q < NW * QU; q++)
        for (int j = 0; j < NW; j++) {
            const float *qr = c->feats + ((q / QU) * (SH + QU) + SH + q % QU) * D;
            double d2 = 0;
            for (int k = 0; k < D; k++) d2 += pow(qr[k] - c->protos[j * D + k], 2);
            assert_float_equal(c->out[q * NW + j], -d2, 1e-5);
        }
    tu_fails_with(eg_fewshot_protos(c->be, 0, SH, QU, D, c->feats, c->protos), "0-way");
    c->be->destroy(c->be);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ft_grad),
        cmocka_unit_test(test_ft_grad_threshold),
        cmocka_unit_test(test_ft_noise),
        cmocka_unit_test(test_ft_meta_only),
        cmocka_unit_test(test_add_in_place),
        cmocka_unit_test(test_add_copy),
        cmocka_unit_test(test_add_errors),
        cmocka_unit_test(test_maxpool_pad_grad),
        cmocka_unit_test(test_maxpool_pad_values),
        cmocka_unit_test(test_bn_eval_grad),
        cmocka_unit_test(test_bn_batch),
        cmocka_unit_test(test_lft_resnet_shapes),
        cmocka_unit_test(test_lft_resnet_init),
        cmocka_unit_test(test_relation_shapes),
        cmocka_unit_test(test_projection_block_grad),
        cmocka_unit_test(test_fewshot_grad),
        cmocka_unit_test(test_fewshot_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
