/* Finite-difference checks of every layer's backward, with respect to its
 * parameters and its input, through small nets of one or two layers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/loss.h"
#include "nn/net.h"
#include "testutil.h"

typedef struct fd_net {
    eg_net net;
    eg_backend *be;
    int batch;
    float *theta, *dtheta, *state, *x, *dx, *w; /* host = device on the CPU */
} fd_net;

/* sum w * output, evaluated with batch statistics and no state update. */
static double net_loss(void *p)
{
    fd_net *f = p;
    if (eg_net_forward(&f->net, f->theta, f->state, f->x, f->batch, EG_PROBE) != 0)
        fail_msg("forward: %s", eg_last_error());
    return tu_project(eg_net_output(&f->net), f->w,
                      (size_t)f->batch * eg_net_out_dim(&f->net));
}

/* Finishes f->net, fills parameters (initialised, then jittered so BN
 * scales differ from one), input and projection, runs backward, and checks
 * both gradients. Input values are spread apart by `spread` so max pooling
 * and ReLU stay away from their kinks. */
static void check(fd_net *f, int batch, float eps, double tol, double atol)
{
    eg_net *net = &f->net;
    assert_int_equal(eg_net_finish(net, batch, 1), 0);
    f->batch = batch;
    size_t P = net->params.total, S = net->state.total;
    size_t nx = (size_t)batch * net->layers[0].c * net->layers[0].h * net->layers[0].w;
    size_t ny = (size_t)batch * eg_net_out_dim(net);
    f->theta = calloc(P + 1, sizeof(float));
    f->dtheta = calloc(P + 1, sizeof(float));
    f->state = calloc(S + 1, sizeof(float));
    f->x = malloc(nx * sizeof(float));
    f->dx = malloc(nx * sizeof(float));
    f->w = malloc(ny * sizeof(float));
    float *jitter = malloc((P + 1) * sizeof(float));
    eg_net_init_params(net, f->theta, f->state, 11);
    tu_fill_uniform(jitter, P, 12, -0.3f, 0.3f);
    for (size_t i = 0; i < P; i++) f->theta[i] += jitter[i];
    /* Distinct input values: a ramp over [-1, 1) in a seeded order, so no
     * two inputs of a pooling window lie within 2 eps of each other. */
    float *order = malloc(nx * sizeof(float));
    tu_fill_uniform(order, nx, 13, 0.0f, 1.0f);
    for (size_t i = 0; i < nx; i++) {
        size_t rank = 0;
        for (size_t j = 0; j < nx; j++) rank += order[j] < order[i] || (order[j] == order[i] && j < i);
        f->x[i] = -1.0f + 2.0f * (float)rank / (float)nx;
    }
    free(order);
    tu_fill_uniform(f->w, ny, 14, -1.0f, 1.0f);

    net_loss(f);
    assert_int_equal(eg_net_backward(net, f->theta, f->w, f->dtheta, f->dx), 0);
    /* Skipping the parameter gradients leaves the input gradient as is. */
    float *dx_only = malloc(nx * sizeof(float));
    assert_int_equal(eg_net_backward(net, f->theta, f->w, NULL, dx_only), 0);
    assert_memory_equal(dx_only, f->dx, nx * sizeof(float));
    free(dx_only);
    int bad = tu_check_grad("dtheta", f->theta, f->dtheta, P, net_loss, f, eps, tol, atol, 400);
    bad += tu_check_grad("dx", f->x, f->dx, nx, net_loss, f, eps, tol, atol, 400);
    assert_int_equal(bad, 0);
    free(jitter);
}

static void fd_start(fd_net *f, int c, int h, int w)
{
    memset(f, 0, sizeof *f);
    f->be = tu_cpu();
    assert_int_equal(eg_net_init(&f->net, f->be, c, h, w), 0);
}

static void fd_end(fd_net *f)
{
    free(f->theta);
    free(f->dtheta);
    free(f->state);
    free(f->x);
    free(f->dx);
    free(f->w);
    eg_net_free(&f->net);
    f->be->destroy(f->be);
}

static void test_linear(void **s)
{
    fd_net f;
    fd_start(&f, 2, 3, 2);
    assert_true(eg_net_linear(&f.net, 0, "fc", 5, 1, EG_INIT_UNIFORM_FAN_IN) > 0);
    check(&f, 4, 1e-2f, 1e-3, 1e-4);
    fd_end(&f);
}

static void test_linear_no_bias_chain(void **s)
{
    fd_net f;
    fd_start(&f, 6, 1, 1);
    int x = eg_net_linear(&f.net, 0, "fc1", 7, 0, EG_INIT_UNIFORM_FAN_IN);
    x = eg_net_linear(&f.net, x, "fc2", 3, 1, EG_INIT_KAIMING_NORMAL);
    assert_true(x > 0);
    check(&f, 3, 1e-2f, 1e-3, 1e-4);
    fd_end(&f);
}

static void test_conv_bias_pad(void **s)
{
    fd_net f;
    fd_start(&f, 2, 7, 6);
    assert_true(eg_net_conv(&f.net, 0, "conv", 3, 5, 1, 2, 1, EG_INIT_UNIFORM_FAN_IN) > 0);
    check(&f, 2, 1e-2f, 1e-3, 1e-4);
    fd_end(&f);
}

static void test_conv_stride2_no_bias(void **s)
{
    fd_net f;
    fd_start(&f, 3, 8, 7);
    assert_true(eg_net_conv(&f.net, 0, "conv", 4, 3, 2, 1, 0, EG_INIT_KAIMING_NORMAL) > 0);
    check(&f, 3, 1e-2f, 1e-3, 1e-4);
    fd_end(&f);
}

static void test_conv_no_pad(void **s)
{
    fd_net f;
    fd_start(&f, 2, 6, 6);
    assert_true(eg_net_conv(&f.net, 0, "conv", 2, 3, 1, 0, 1, EG_INIT_UNIFORM_FAN_IN) > 0);
    check(&f, 2, 1e-2f, 1e-3, 1e-4);
    fd_end(&f);
}

static void test_batchnorm(void **s)
{
    fd_net f;
    fd_start(&f, 3, 4, 5);
    /* A conv in front so BN's input gradient flows into a layer too. */
    int x = eg_net_conv(&f.net, 0, "conv", 4, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL);
    assert_true(eg_net_bn(&f.net, x, "bn") > 0);
    check(&f, 4, 1e-2f, 5e-3, 2e-4);
    fd_end(&f);
}

static void test_relu(void **s)
{
    fd_net f;
    fd_start(&f, 2, 5, 5);
    int x = eg_net_conv(&f.net, 0, "conv", 3, 3, 1, 1, 1, EG_INIT_UNIFORM_FAN_IN);
    assert_true(eg_net_relu(&f.net, x) > 0);
    check(&f, 2, 1e-3f, 1e-2, 1e-3);
    assert_true(f.net.layers[2].in_place);
    fd_end(&f);
}

static void test_sigmoid(void **s)
{
    fd_net f;
    fd_start(&f, 4, 1, 1);
    int x = eg_net_linear(&f.net, 0, "fc", 3, 1, EG_INIT_UNIFORM_FAN_IN);
    assert_true(eg_net_sigmoid(&f.net, x) > 0);
    check(&f, 5, 1e-2f, 1e-3, 1e-5);
    fd_end(&f);
}

static void test_maxpool(void **s)
{
    fd_net f;
    fd_start(&f, 2, 6, 8);
    assert_true(eg_net_maxpool(&f.net, 0, 2, 2, 0) > 0);
    check(&f, 3, 1e-3f, 1e-2, 1e-3);
    fd_end(&f);
}

static void test_maxpool_overlapping(void **s)
{
    fd_net f;
    fd_start(&f, 1, 7, 7);
    assert_true(eg_net_maxpool(&f.net, 0, 3, 2, 0) > 0);
    check(&f, 2, 1e-3f, 1e-2, 1e-3);
    fd_end(&f);
}

static void test_avgpool(void **s)
{
    fd_net f;
    fd_start(&f, 3, 4, 4);
    assert_true(eg_net_avgpool(&f.net, 0) > 0);
    check(&f, 2, 1e-2f, 1e-3, 1e-5);
    fd_end(&f);
}

/* Option-A shortcut: stride-2 subsample with zero channel padding; and the
 * identity shortcut (stride 1, same channels). */
static void test_shortcut_downsample(void **s)
{
    fd_net f;
    fd_start(&f, 2, 6, 6);
    int x = eg_net_conv(&f.net, 0, "conv", 4, 3, 2, 1, 0, EG_INIT_KAIMING_NORMAL);
    x = eg_net_bn(&f.net, x, "bn");
    assert_true(eg_net_shortcut(&f.net, x, 0, 2) > 0);
    check(&f, 3, 1e-2f, 5e-3, 2e-4);
    fd_end(&f);
}

static void test_shortcut_identity_block(void **s)
{
    fd_net f;
    fd_start(&f, 3, 5, 5);
    int in = eg_net_conv(&f.net, 0, "stem", 4, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL);
    int x = eg_net_conv(&f.net, in, "conv", 4, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL);
    x = eg_net_bn(&f.net, x, "bn");
    x = eg_net_shortcut(&f.net, x, in, 1);
    assert_true(eg_net_relu(&f.net, x) > 0);
    check(&f, 2, 1e-3f, 1e-2, 1e-3);
    fd_end(&f);
}

/* The subsample keeps even rows/columns and pads channels symmetrically. */
static void test_shortcut_values(void **s)
{
    eg_backend *be = tu_cpu();
    float x[1 * 2 * 4 * 4], y[1 * 4 * 2 * 2] = {0};
    for (int i = 0; i < 32; i++) x[i] = (float)i;
    assert_int_equal(be->shortcut_fwd(be, 1, 2, 4, 4, 4, 2, x, y), 0);
    float want[16] = {0, 0, 0, 0, 0, 2, 8, 10, 16, 18, 24, 26, 0, 0, 0, 0};
    for (int i = 0; i < 16; i++) assert_float_equal(y[i], want[i], 0);
    be->destroy(be);
}

/* BatchNorm feeding an in-place ReLU feeding a convolution: the pattern
 * of every ResNet block. */
static void test_conv_bn_relu_chain(void **s)
{
    fd_net f;
    fd_start(&f, 2, 5, 5);
    int x = eg_net_conv(&f.net, 0, "c1", 3, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL);
    x = eg_net_bn(&f.net, x, "bn");
    x = eg_net_relu(&f.net, x);
    assert_true(eg_net_conv(&f.net, x, "c2", 3, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL) > 0);
    check(&f, 2, 1e-3f, 1e-2, 1e-3);
    assert_true(f.net.layers[3].in_place);
    fd_end(&f);
}

/* Running statistics: momentum 0.1, unbiased variance; eval uses them. */
static void test_batchnorm_running_stats(void **s)
{
    eg_backend *be = tu_cpu();
    eg_net net;
    assert_int_equal(eg_net_init(&net, be, 2, 2, 2), 0);
    assert_true(eg_net_bn(&net, 0, "bn") > 0);
    assert_int_equal(eg_net_finish(&net, 3, 0), 0);
    float theta[4], state[4], x[3 * 2 * 4];
    eg_net_init_params(&net, theta, state, 1);
    assert_float_equal(theta[0], 1, 0);
    assert_float_equal(theta[2], 0, 0);
    assert_float_equal(state[0], 0, 0);
    assert_float_equal(state[2], 1, 0);
    tu_fill_uniform(x, 24, 5, -2, 3);
    assert_int_equal(eg_net_forward(&net, theta, state, x, 3, EG_TRAIN), 0);
    for (int c = 0; c < 2; c++) {
        double s1 = 0, s2 = 0;
        for (int b = 0; b < 3; b++)
            for (int k = 0; k < 4; k++) s1 += x[(b * 2 + c) * 4 + k];
        double mean = s1 / 12;
        for (int b = 0; b < 3; b++)
            for (int k = 0; k < 4; k++) s2 += pow(x[(b * 2 + c) * 4 + k] - mean, 2);
        assert_float_equal(state[c], 0.1 * mean, 1e-6);
        assert_float_equal(state[2 + c], 0.9 + 0.1 * s2 / 11, 1e-6);
        /* Train-mode output: normalised with the biased variance. */
        const float *y = eg_net_output(&net);
        assert_float_equal(y[c * 4], (x[c * 4] - mean) / sqrt(s2 / 12 + 1e-5), 1e-5);
    }
    float keep[4];
    memcpy(keep, state, sizeof keep);
    assert_int_equal(eg_net_forward(&net, theta, state, x, 3, EG_PROBE), 0);
    assert_memory_equal(keep, state, sizeof keep); /* probes leave state alone */
    assert_int_equal(eg_net_forward(&net, theta, state, x, 3, EG_EVAL), 0);
    const float *y = eg_net_output(&net);
    assert_float_equal(y[5], (x[5] - state[1]) / sqrt(state[3] + 1e-5), 1e-5);
    /* An evaluation-mode backward treats the running statistics as
     * constants: dbeta = sum dy (test_lft_layers checks the rest). */
    float dtheta[4] = {0}, ones[24];
    for (int i = 0; i < 24; i++) ones[i] = 1.0f;
    assert_int_equal(eg_net_backward(&net, theta, ones, dtheta, NULL), 0);
    assert_float_equal(dtheta[2], 12, 1e-5);
    assert_float_equal(dtheta[3], 12, 1e-5);
    eg_net_free(&net);
    be->destroy(be);
}

/* Cross-entropy: per-sample losses against a direct log-softmax, and the
 * weighted backward against finite differences of sum_i w_i loss_i. */
typedef struct xent_ctx {
    eg_backend *be;
    eg_xent xe;
    float *logits, *weight;
    int32_t *labels;
    int n;
} xent_ctx;

static double xent_loss(void *p)
{
    xent_ctx *c = p;
    assert_int_equal(eg_xent_forward(&c->xe, c->logits, c->labels, c->n, NULL), 0);
    return tu_project(c->xe.host_loss, c->weight, c->n);
}

static void test_softmax_xent(void **s)
{
    enum { N = 6, K = 5 };
    xent_ctx c = {.be = tu_cpu(), .n = N};
    float logits[N * K], weight[N];
    int32_t labels[N] = {0, 4, 2, 2, 1, 3};
    tu_fill_uniform(logits, N * K, 3, -4, 4);
    tu_fill_uniform(weight, N, 4, 0, 2);
    c.logits = logits;
    c.weight = weight;
    c.labels = labels;
    assert_int_equal(eg_xent_init(&c.xe, c.be, N, K), 0);
    double mean;
    assert_int_equal(eg_xent_forward(&c.xe, logits, labels, N, &mean), 0);
    double total = 0;
    for (int i = 0; i < N; i++) {
        double z = 0;
        for (int j = 0; j < K; j++) z += exp(logits[i * K + j]);
        double want = log(z) - logits[i * K + labels[i]];
        assert_float_equal(c.xe.host_loss[i], want, 1e-5);
        total += want;
    }
    assert_float_equal(mean, total / N, 1e-5);
    assert_int_equal(eg_xent_backward(&c.xe, labels, weight, 1.0f, N), 0);
    float g[N * K];
    memcpy(g, c.xe.dlogits, sizeof g);
    assert_int_equal(tu_check_grad("dlogits", logits, g, N * K, xent_loss, &c, 1e-2f, 1e-3,
                                   1e-5, 100), 0);
    /* A label outside the classes is an error, not a read out of bounds. */
    labels[2] = K;
    assert_int_not_equal(eg_xent_forward(&c.xe, logits, labels, N, NULL), 0);
    assert_non_null(strstr(eg_last_error(), "label"));
    eg_xent_free(&c.xe);
    c.be->destroy(c.be);
}

/* Bad geometry is refused with a message, not a crash. */
static void test_builder_errors(void **s)
{
    eg_backend *be = tu_cpu();
    eg_net net;
    assert_int_equal(eg_net_init(&net, be, 1, 4, 4), 0);
    tu_fails_with(eg_net_conv(&net, 0, "c", 2, 7, 1, 0, 0, EG_INIT_ZEROS),
                  "conv c: conv: kernel 7x7 larger than padded input 4x4");
    tu_fails_with(eg_net_maxpool(&net, 0, 5, 1, 0), "maxpool 5/1 does not fit 4x4");
    tu_fails_with(eg_net_relu(&net, 9), "reads missing layer 9");
    tu_fails_with(eg_net_forward(&net, NULL, NULL, NULL, 1, EG_TRAIN),
                  "forward before eg_net_finish");
    assert_int_equal(eg_net_finish(&net, 2, 0), 0);
    float x[32] = {0};
    assert_int_equal(eg_net_forward(&net, NULL, NULL, x, 3, EG_TRAIN), -1);
    assert_non_null(strstr(eg_last_error(), "batch"));
    eg_net_free(&net);
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_no_bias_chain),
        cmocka_unit_test(test_conv_bias_pad),
        cmocka_unit_test(test_conv_stride2_no_bias),
        cmocka_unit_test(test_conv_no_pad),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_running_stats),
        cmocka_unit_test(test_conv_bn_relu_chain),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_maxpool_overlapping),
        cmocka_unit_test(test_avgpool),
        cmocka_unit_test(test_shortcut_values),
        cmocka_unit_test(test_shortcut_downsample),
        cmocka_unit_test(test_shortcut_identity_block),
        cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_builder_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
