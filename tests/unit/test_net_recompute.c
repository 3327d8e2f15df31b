/* Recomputing nets (nn/net.h, backends with `recompute`): a ResNet keeps
 * only its blocks' outputs and recomputes the rest during backward. The
 * results must be bit for bit those of the net that keeps everything
 * (training forward, loss, every gradient, the input gradient, running
 * statistics, a second step), with less memory; a single-segment net
 * (LeNet) keeps everything. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/loss.h"
#include "nn/models.h"
#include "nn/rng.h"
#include "testutil.h"

typedef struct run_out {
    float *logits, *dtheta, *dx, *state;
    size_t peak;
    int recomputing;
} run_out;

static void run(int recompute, const char *model, int c, int hw, int batch, run_out *o)
{
    eg_backend *be = tu_cpu();
    be->recompute = recompute;
    eg_net net;
    assert_int_equal(eg_model_build(&net, be, model, 1, c, hw, hw, 10), 0);
    assert_int_equal(eg_net_finish(&net, batch, 1), 0);
    o->recomputing = net.recompute;
    size_t P = net.params.total, S = net.state.total, nx = (size_t)batch * c * hw * hw;
    float *theta = eg_alloc_floats(be, P), *state = eg_alloc_floats(be, S + 1);
    float *x = eg_alloc_floats(be, nx), *dx = eg_alloc_floats(be, nx);
    float *dtheta = eg_alloc_floats(be, P);
    int32_t *labels = be->alloc(be, batch * sizeof(int32_t));
    eg_net_init_params(&net, theta, state, 5);
    float *jitter = malloc(P * sizeof(float));
    tu_fill_uniform(jitter, P, 6, -0.05f, 0.05f);
    for (size_t i = 0; i < P; i++) theta[i] += jitter[i];
    free(jitter);
    tu_fill_uniform(x, nx, 7, -1, 1);
    eg_rng r;
    eg_rng_seed(&r, 8, 0);
    for (int i = 0; i < batch; i++) labels[i] = (int32_t)eg_rng_below(&r, 10);
    eg_xent xe;
    assert_int_equal(eg_xent_init(&xe, be, batch, 10), 0);
    /* Two steps: the second starts from the first's gradient step. */
    for (int step = 0; step < 2; step++) {
        memset(dtheta, 0, P * sizeof(float));
        assert_int_equal(eg_net_forward(&net, theta, state, x, batch, EG_TRAIN), 0);
        assert_int_equal(eg_xent_forward(&xe, eg_net_output(&net), labels, batch, NULL), 0);
        assert_int_equal(eg_xent_backward(&xe, labels, NULL, 1.0f / batch, batch), 0);
        assert_int_equal(eg_net_backward(&net, theta, xe.dlogits, dtheta, dx), 0);
        if (step == 0) assert_int_equal(be->axpy(be, P, -0.1f, dtheta, theta), 0);
    }
    size_t nlog = (size_t)batch * 10;
    o->logits = malloc(nlog * sizeof(float));
    memcpy(o->logits, eg_net_output(&net), nlog * sizeof(float));
    o->dtheta = malloc(P * sizeof(float));
    memcpy(o->dtheta, dtheta, P * sizeof(float));
    o->dx = malloc(nx * sizeof(float));
    memcpy(o->dx, dx, nx * sizeof(float));
    o->state = malloc((S + 1) * sizeof(float));
    memcpy(o->state, state, S * sizeof(float));
    o->peak = be->peak_bytes;
    eg_xent_free(&xe);
    eg_net_free(&net);
    be->free(be, theta);
    be->free(be, state);
    be->free(be, x);
    be->free(be, dx);
    be->free(be, dtheta);
    be->free(be, labels);
    be->destroy(be);
}

static void run_free(run_out *o)
{
    free(o->logits);
    free(o->dtheta);
    free(o->dx);
    free(o->state);
}

static void test_resnet_same_bits_less_memory(void **state)
{
    (void)state;
    run_out keep, lean;
    run(0, "resnet20", 3, 32, 8, &keep);
    run(1, "resnet20", 3, 32, 8, &lean);
    assert_int_equal(keep.recomputing, 0);
    assert_int_equal(lean.recomputing, 1);
    assert_memory_equal(keep.logits, lean.logits, 8 * 10 * sizeof(float));
    eg_net net;
    eg_backend *be = tu_cpu();
    assert_int_equal(eg_model_build(&net, be, "resnet20", 1, 3, 32, 32, 10), 0);
    size_t P = net.params.total, S = net.state.total;
    eg_net_free(&net);
    be->destroy(be);
    assert_memory_equal(keep.dtheta, lean.dtheta, P * sizeof(float));
    assert_memory_equal(keep.dx, lean.dx, 8 * 3 * 32 * 32 * sizeof(float));
    assert_memory_equal(keep.state, lean.state, S * sizeof(float));
    fprintf(stderr, "resnet20 batch 8: peak %.2f MB keeping every activation, %.2f MB "
                    "recomputing\n", keep.peak / 1e6, lean.peak / 1e6);
    assert_true(lean.peak < keep.peak * 6 / 10);
    run_free(&keep);
    run_free(&lean);
}

static void test_single_segment_keeps_all(void **state)
{
    (void)state;
    run_out keep, lean;
    run(0, "lenet", 1, 28, 4, &keep);
    run(1, "lenet", 1, 28, 4, &lean);
    assert_int_equal(lean.recomputing, 0);
    assert_memory_equal(keep.logits, lean.logits, 4 * 10 * sizeof(float));
    assert_int_equal(keep.peak, lean.peak);
    run_free(&keep);
    run_free(&lean);
}

/* The LFT ResNet-10 with FT layers and projection shortcuts (eg_net_add):
 * features and the gradients to θ, the input and the FT meta-parameters,
 * after a training-mode forward (batch statistics, FT on) and after an
 * evaluation-mode one (running statistics), written into o. */
typedef struct lft_out {
    float *feats[2], *dtheta[2], *dx[2], *dmeta[2];
    size_t nf, P, nx, M;
    size_t peak;
    int recomputing;
} lft_out;

static void run_lft(int recompute, lft_out *o)
{
    eg_backend *be = tu_cpu();
    be->recompute = recompute;
    eg_net net;
    enum { B = 4, C = 3, HW = 32 };
    assert_int_equal(eg_model_lft_resnet(&net, be, 10, 4, C, HW, 1, 1), 0);
    assert_int_equal(eg_net_finish(&net, B, 1), 0);
    o->recomputing = net.recompute;
    size_t P = net.params.total, S = net.state.total, M = net.meta.total;
    size_t nx = (size_t)B * C * HW * HW, nf = (size_t)B * eg_net_out_dim(&net);
    o->P = P, o->M = M, o->nx = nx, o->nf = nf;
    float *theta = eg_alloc_floats(be, P), *state = eg_alloc_floats(be, S);
    float *meta = eg_alloc_floats(be, M), *x = eg_alloc_floats(be, nx);
    float *w = eg_alloc_floats(be, nf);
    eg_net_init_params(&net, theta, state, 5);
    eg_net_init_meta(&net, meta);
    tu_fill_uniform(x, nx, 7, -1, 1);
    tu_fill_uniform(w, nf, 8, -1, 1);
    for (int pass = 0; pass < 2; pass++) {
        o->feats[pass] = malloc(nf * sizeof(float));
        o->dtheta[pass] = calloc(P, sizeof(float));
        o->dx[pass] = malloc(nx * sizeof(float));
        o->dmeta[pass] = calloc(M, sizeof(float));
        eg_mode mode = pass ? EG_EVAL : EG_TRAIN;
        assert_int_equal(
            eg_net_set_ft(&net, pass ? NULL : meta, pass ? NULL : o->dmeta[pass], 9, 1), 0);
        assert_int_equal(eg_net_forward(&net, theta, state, x, B, mode), 0);
        memcpy(o->feats[pass], eg_net_output(&net), nf * sizeof(float));
        assert_int_equal(eg_net_backward(&net, theta, w, o->dtheta[pass], o->dx[pass]), 0);
    }
    o->peak = be->peak_bytes;
    eg_net_free(&net);
    be->free(be, theta);
    be->free(be, state);
    be->free(be, meta);
    be->free(be, x);
    be->free(be, w);
    be->destroy(be);
}

static void test_lft_resnet_same_bits(void **state)
{
    (void)state;
    lft_out keep, lean;
    run_lft(0, &keep);
    run_lft(1, &lean);
    assert_int_equal(keep.recomputing, 0);
    assert_int_equal(lean.recomputing, 1);
    for (int pass = 0; pass < 2; pass++) {
        assert_memory_equal(keep.feats[pass], lean.feats[pass], keep.nf * sizeof(float));
        assert_memory_equal(keep.dtheta[pass], lean.dtheta[pass], keep.P * sizeof(float));
        assert_memory_equal(keep.dx[pass], lean.dx[pass], keep.nx * sizeof(float));
        assert_memory_equal(keep.dmeta[pass], lean.dmeta[pass], keep.M * sizeof(float));
    }
    /* The meta-gradient is there, and FT changed the training features. */
    double s = 0;
    for (size_t j = 0; j < keep.M; j++) s += fabs(keep.dmeta[0][j]);
    assert_true(s > 0);
    fprintf(stderr,
            "lft resnet10 batch 4: peak %.2f MB keeping every activation, %.2f MB "
            "recomputing\n",
            keep.peak / 1e6, lean.peak / 1e6);
    assert_true(lean.peak < keep.peak);
    for (int pass = 0; pass < 2; pass++) {
        free(keep.feats[pass]), free(lean.feats[pass]);
        free(keep.dtheta[pass]), free(lean.dtheta[pass]);
        free(keep.dx[pass]), free(lean.dx[pass]);
        free(keep.dmeta[pass]), free(lean.dmeta[pass]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet_same_bits_less_memory),
        cmocka_unit_test(test_single_segment_keeps_all),
        cmocka_unit_test(test_lft_resnet_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
