/* Whole models and whole meta-learning steps on the GPU against the CPU
 * backend: LeNet and ResNet-32 forward, mean cross-entropy, backward to
 * every parameter slice and the input, running statistics and an
 * evaluation forward; then one Meta-Weight-Net step (ResNet-32 on
 * synthetic CIFAR-10) with EvoGrad and with T1−T2, comparing the losses,
 * copy weights, hypergradient norm, λ and θ over three steps. The GPU runs
 * each pass eagerly, then records it as a CUDA graph, then replays it, and
 * each of those runs must agree with the CPU; the backend's pass counts
 * must show each phase did what it says (no recording may fail and fall
 * back to running eagerly). Everything
 * within 1e-4 relative error, in fp32 without TF32 and with deterministic
 * cuDNN algorithms. Then the token encoder (two layers, padded
 * sequences, dropout on) with its head and token cross-entropy: logits,
 * loss and every parameter's gradient. Skips every test where there is no
 * usable GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/job.h"
#include "meta/loop.h"
#include "nn/device.h"
#include "nn/encoder.h"
#include "nn/token_loss.h"
#include "nn/loss.h"
#include "nn/models.h"
#include "nn/rng.h"
#include "synth_data.h"
#include "tasks/mwn.h"
#include "tasks/tasks.h"
#include "testutil.h"

#define TOL 1e-4

static eg_backend *gpu_open(void)
{
    if (eg_gpu_count() == 0) skip();
    eg_device_options opt = {.tf32 = 0, .nondeterministic = 0};
    eg_backend *be = eg_device_open("cuda:0", &opt, NULL, 0);
    if (!be) fail_msg("cannot open cuda:0: %s", eg_last_error());
    return be;
}

static int group_setup(void **state)
{
    (void)state;
    if (eg_gpu_count() == 0)
        fprintf(stderr, "test_cuda_models: no usable GPU (no CUDA backend in this build, or no "
                        "driver or device): every test skipped\n");
    return 0;
}

static void check(const char *what, const float *gpu, const float *cpu, size_t n)
{
    double err = tu_rel_err(gpu, cpu, n);
    fprintf(stderr, "  %-28s relative error %.2e\n", what, err);
    if (!(err <= TOL)) fail_msg("%s: GPU vs CPU relative error %.3g > %.0e", what, err, TOL);
}

static void check_scalar(const char *what, double gpu, double cpu)
{
    double err = fabs(gpu - cpu) / (fabs(cpu) + 1e-12);
    fprintf(stderr, "  %-28s %.9g vs %.9g (relative error %.2e)\n", what, gpu, cpu, err);
    if (!(err <= TOL)) fail_msg("%s: GPU %.9g vs CPU %.9g", what, gpu, cpu);
}

/* Device copy of n floats of host x on be. */
static float *put(eg_backend *be, const void *x, size_t bytes)
{
    float *d = be->alloc(be, bytes);
    assert_non_null(d);
    assert_int_equal(be->upload(be, d, x, bytes), 0);
    return d;
}

static float *get(eg_backend *be, const float *d, size_t n)
{
    float *h = malloc(n * sizeof(float) + 1);
    assert_non_null(h);
    assert_int_equal(be->download(be, h, d, n * sizeof(float)), 0);
    return h;
}

typedef struct model_spec {
    const char *model;
    int width, batch, c, h, w, classes;
} model_spec;

/* What one backend computed for the model. */
typedef struct model_out {
    float *logits, *state, *dtheta, *dx, *eval_logits;
    float loss;
} model_out;

static void model_out_free(model_out *o)
{
    free(o->logits);
    free(o->state);
    free(o->dtheta);
    free(o->dx);
    free(o->eval_logits);
}

/* The passes be ran since `before`, checked against a run's phase: 0 all
 * eager, 1 recorded (each pass recorded on its second sight), 2 all
 * replayed; never a failed recording. */
static void check_phase(const eg_backend *be, const char *what, int phase,
                        unsigned long before[4])
{
    unsigned long now[4] = {be->passes.eager, be->passes.recorded, be->passes.replayed,
                            be->passes.failed};
    unsigned long d[4];
    for (int i = 0; i < 4; i++) d[i] = now[i] - before[i], before[i] = now[i];
    fprintf(stderr, "  %s: %lu passes eager, %lu recorded, %lu replayed, %lu failed\n", what,
            d[0], d[1], d[2], d[3]);
    if (d[3]) fail_msg("%s: %lu recordings failed", what, d[3]);
    int ok = phase == 0 ? d[0] > 0 && !d[1] && !d[2]
           : phase == 1 ? d[1] > 0 && !d[0] && !d[2]
                        : d[2] > 0 && !d[0] && !d[1];
    if (!ok) fail_msg("%s: not the %s phase", what,
                      phase == 0 ? "eager" : phase == 1 ? "recording" : "replay");
}

static const char *const phase_names[] = {"eager", "recorded", "replayed"};

/* Runs the model on be `reps` times from the same start, keeping each run's
 * results in o[rep]; on a backend that records (the GPU) the first run is
 * eager, the second records its passes and the third replays them. */
static void run_model(eg_backend *be, const model_spec *sp, const float *theta,
                      const float *state0, const float *x, const int32_t *labels, int reps,
                      model_out *o)
{
    unsigned long before[4] = {be->passes.eager, be->passes.recorded, be->passes.replayed,
                               be->passes.failed};
    eg_net net;
    assert_int_equal(eg_model_build(&net, be, sp->model, sp->width, sp->c, sp->h, sp->w,
                                    sp->classes), 0);
    assert_int_equal(eg_net_finish(&net, sp->batch, 1), 0);
    size_t P = net.params.total, S = net.state.total;
    size_t nx = (size_t)sp->batch * sp->c * sp->h * sp->w, nlog = (size_t)sp->batch * sp->classes;
    float *d_theta = put(be, theta, P * sizeof(float));
    float *d_state = put(be, state0, (S + 1) * sizeof(float));
    float *d_x = put(be, x, nx * sizeof(float));
    int32_t *d_labels = (int32_t *)put(be, labels, sp->batch * sizeof(int32_t));
    float *d_dtheta = eg_alloc_floats(be, P), *d_dx = eg_alloc_floats(be, nx);
    assert_non_null(d_dtheta);
    assert_non_null(d_dx);
    eg_xent xe;
    assert_int_equal(eg_xent_init(&xe, be, sp->batch, sp->classes), 0);
    for (int rep = 0; rep < reps; rep++, o++) {
        if (rep > 0) {
            assert_int_equal(be->upload(be, d_state, state0, (S + 1) * sizeof(float)), 0);
            assert_int_equal(be->fill(be, P, 0.0f, d_dtheta), 0);
        }
        assert_int_equal(eg_net_forward(&net, d_theta, d_state, d_x, sp->batch, EG_TRAIN), 0);
        o->logits = get(be, eg_net_output(&net), nlog);
        double mean;
        assert_int_equal(eg_xent_forward(&xe, eg_net_output(&net), d_labels, sp->batch, &mean),
                         0);
        o->loss = (float)mean;
        assert_int_equal(eg_xent_backward(&xe, d_labels, NULL, 1.0f / sp->batch, sp->batch), 0);
        assert_int_equal(eg_net_backward(&net, d_theta, xe.dlogits, d_dtheta, d_dx), 0);
        o->dtheta = get(be, d_dtheta, P);
        o->dx = get(be, d_dx, nx);
        o->state = get(be, d_state, S);
        assert_int_equal(eg_net_forward(&net, d_theta, d_state, d_x, sp->batch, EG_EVAL), 0);
        o->eval_logits = get(be, eg_net_output(&net), nlog);
        if (be->capture_begin) check_phase(be, phase_names[rep], rep, before);
    }
    eg_xent_free(&xe);
    be->free(be, d_theta);
    be->free(be, d_state);
    be->free(be, d_x);
    be->free(be, d_labels);
    be->free(be, d_dtheta);
    be->free(be, d_dx);
    eg_net_free(&net);
}

/* One GPU run of the model against the CPU's. */
static void compare_run(const eg_net *net, const model_spec *sp, const model_out *g,
                        const model_out *c)
{
    size_t P = net->params.total, S = net->state.total;
    size_t nx = (size_t)sp->batch * sp->c * sp->h * sp->w, nlog = (size_t)sp->batch * sp->classes;
    check("logits", g->logits, c->logits, nlog);
    check("loss", &g->loss, &c->loss, 1);
    check("running statistics", g->state, c->state, S);
    /* Every parameter slice on its own, so small biases cannot hide
     * behind large weights. */
    for (int i = 0; i < net->params.n; i++) {
        const eg_slice *sl = &net->params.slices[i];
        double err = tu_rel_err(g->dtheta + sl->offset, c->dtheta + sl->offset, sl->count);
        if (!(err <= TOL))
            fail_msg("d%s: GPU vs CPU relative error %.3g > %.0e", sl->name, err, TOL);
    }
    check("dtheta (all slices)", g->dtheta, c->dtheta, P);
    check("dx", g->dx, c->dx, nx);
    check("eval logits", g->eval_logits, c->eval_logits, nlog);
}

static void compare_model(const model_spec *sp)
{
    eg_backend *gpu = gpu_open(), *cpu = tu_cpu();
    eg_net net;
    assert_int_equal(eg_model_build(&net, cpu, sp->model, sp->width, sp->c, sp->h, sp->w,
                                    sp->classes), 0);
    size_t P = net.params.total, S = net.state.total;
    size_t nx = (size_t)sp->batch * sp->c * sp->h * sp->w;
    float *theta = malloc(P * sizeof(float)), *state = malloc((S + 1) * sizeof(float));
    float *jitter = malloc(P * sizeof(float)), *x = malloc(nx * sizeof(float));
    int32_t *labels = malloc(sp->batch * sizeof(int32_t));
    eg_net_init_params(&net, theta, state, 11);
    /* BatchNorm's scale and shift away from the trivial 1 and 0. */
    tu_fill_uniform(jitter, P, 12, -0.05f, 0.05f);
    for (size_t i = 0; i < P; i++) theta[i] += jitter[i];
    tu_fill_uniform(x, nx, 13, -1.0f, 1.0f);
    eg_rng r;
    eg_rng_seed(&r, 14, 0);
    for (int i = 0; i < sp->batch; i++) labels[i] = (int32_t)eg_rng_below(&r, sp->classes);

    model_out runs[3], c;
    fprintf(stderr, "%s width %d, batch %d, %dx%dx%d:\n", sp->model, sp->width, sp->batch, sp->c,
            sp->h, sp->w);
    run_model(gpu, sp, theta, state, x, labels, 3, runs);
    run_model(cpu, sp, theta, state, x, labels, 1, &c);
    for (int rep = 0; rep < 3; rep++) {
        fprintf(stderr, " the %s run:\n", phase_names[rep]);
        compare_run(&net, sp, &runs[rep], &c);
        model_out_free(&runs[rep]);
    }
    model_out_free(&c);
    eg_net_free(&net);
    free(theta);
    free(state);
    free(jitter);
    free(x);
    free(labels);
    cpu->destroy(cpu);
    gpu->destroy(gpu);
}

static void test_lenet(void **state)
{
    (void)state;
    const model_spec sp = {"lenet", 1, 32, 1, 28, 28, 10};
    compare_model(&sp);
}

static void test_resnet32(void **state)
{
    (void)state;
    const model_spec sp = {"resnet32", 1, 16, 3, 32, 32, 10};
    compare_model(&sp);
}

/* ---- one meta-learning step ---- */

/* Steps compared: on the GPU the first runs eagerly, the second records
 * the network passes, the third replays them. */
#define STEPS 3

/* What a backend's first steps gave. */
typedef struct step_out {
    eg_step_record rec[STEPS];
    float *theta, *lambda;
    size_t P, H;
} step_out;

static void run_steps(eg_backend *be, const eg_job *job, step_out *o)
{
    eg_task *t = NULL;
    if (eg_task_create(job, be, &t) != 0) fail_msg("task: %s", eg_last_error());
    eg_loop_config cfg = eg_task_loop_config(job, t);
    eg_run run = {0};
    assert_int_equal(eg_run_init(&run, t, &cfg), 0);
    for (int i = 0; i < STEPS; i++)
        if (eg_run_step(&run, &o->rec[i]) != 0) fail_msg("%s step: %s", be->name, eg_last_error());
    /* The copies share one parameter buffer, so a step's passes recur
     * within it: the first step already records, the later ones replay. */
    if (be->capture_begin) {
        fprintf(stderr, "  %lu passes eager, %lu recorded, %lu replayed, %lu failed\n",
                be->passes.eager, be->passes.recorded, be->passes.replayed, be->passes.failed);
        if (be->passes.failed || !be->passes.recorded || !be->passes.replayed)
            fail_msg("%s: the steps' passes were not recorded and replayed", be->name);
    }
    o->P = t->P;
    o->H = t->H;
    o->theta = get(be, t->theta, t->P);
    o->lambda = get(be, t->lambda, t->H);
    eg_run_free(&run);
    eg_task_destroy(t);
}

static void compare_step(eg_method method)
{
    eg_backend *gpu = gpu_open(), *cpu = tu_cpu();
    char dir[400];
    if (snprintf(dir, sizeof dir, "%s/cifar-%s", tu_tmpdir(), eg_method_name(method)) >=
        (int)sizeof dir)
        fail_msg("scratch folder path too long");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    if (synth_cifar10(dir, 60, 40, 5) != 0) fail_msg("%s", eg_last_error());
    eg_job job;
    eg_job_defaults("mwn", &job);
    job.method = method;
    snprintf(job.dataset.name, sizeof job.dataset.name, "cifar10");
    snprintf(job.dataset.path, sizeof job.dataset.path, "%s", dir);
    job.batch_size = 16;
    /* A gentle rate: at MWN's 0.1 the first steps of a fresh ResNet on
     * random data blow the loss up, where fp32 rounding grows fastest. */
    job.optimizer.lr = 0.01f;
    /* The copy weights are softmax(-loss / tau): at the default tau 0.05
     * a 1e-6 difference in a loss (fp32 sums in another order) moves them
     * by 2e-5 relative; a larger tau keeps the comparison about the code,
     * not the conditioning. */
    job.evograd.tau = 0.5f;
    EG_JOB_SECTION(&job, eg_mwn_spec)->meta_samples = 50;
    job.steps = 10;
    job.eval_limit = 16;
    job.seed = 21;

    step_out g, c;
    fprintf(stderr, "Meta-Weight-Net step, %s, ResNet-32, batch 16, synthetic CIFAR-10:\n",
            eg_method_name(method));
    run_steps(gpu, &job, &g);
    run_steps(cpu, &job, &c);
    assert_int_equal(g.P, c.P);
    assert_int_equal(g.H, c.H);
    for (int s = 0; s < STEPS; s++) {
        char what[64];
        snprintf(what, sizeof what, "step %d train loss", s);
        check_scalar(what, g.rec[s].train_loss, c.rec[s].train_loss);
        snprintf(what, sizeof what, "step %d meta loss", s);
        check_scalar(what, g.rec[s].meta_loss, c.rec[s].meta_loss);
        snprintf(what, sizeof what, "step %d hypergradient norm", s);
        check_scalar(what, g.rec[s].hyper_norm, c.rec[s].hyper_norm);
        assert_int_equal(g.rec[s].k, c.rec[s].k);
        for (int k = 0; k < g.rec[s].k; k++) {
            snprintf(what, sizeof what, "step %d copy weight %d", s, k);
            check_scalar(what, g.rec[s].w[k], c.rec[s].w[k]);
        }
    }
    check("lambda after the steps", g.lambda, c.lambda, g.H);
    check("theta after the steps", g.theta, c.theta, g.P);
    free(g.theta);
    free(g.lambda);
    free(c.theta);
    free(c.lambda);
    cpu->destroy(cpu);
    gpu->destroy(gpu);
}

static void test_evograd_step(void **state)
{
    (void)state;
    compare_step(EG_METHOD_EVOGRAD);
}

static void test_t1t2_step(void **state)
{
    (void)state;
    compare_step(EG_METHOD_T1T2);
}

/* One forward and backward of the encoder on backend be from host θ and
 * the host batch; logits (N, labels) and dθ (P) come back to the host. */
static double encoder_pass(eg_backend *be, const eg_encoder_cfg *cfg, const float *theta_h,
                           const int32_t *ids, const int32_t *pos, const int32_t *lens,
                           const int32_t *labels, int b, int t, float *logits_h, float *dtheta_h)
{
    eg_encoder e;
    eg_token_loss tl;
    assert_int_equal(eg_encoder_init(&e, be, cfg, b, t), 0);
    assert_int_equal(eg_token_loss_init(&tl, be, b * t, cfg->labels), 0);
    size_t P = e.params.total, n = (size_t)b * t;
    float *theta = eg_alloc_floats(be, P), *dtheta = eg_alloc_floats(be, P);
    int32_t *d_ids = (int32_t *)eg_alloc_floats(be, n), *d_pos = (int32_t *)eg_alloc_floats(be, n),
            *d_lens = (int32_t *)eg_alloc_floats(be, (size_t)b);
    assert_true(theta && dtheta && d_ids && d_pos && d_lens);
    assert_int_equal(be->upload(be, theta, theta_h, P * sizeof(float)), 0);
    assert_int_equal(be->upload(be, d_ids, ids, n * sizeof(int32_t)), 0);
    assert_int_equal(be->upload(be, d_pos, pos, n * sizeof(int32_t)), 0);
    assert_int_equal(be->upload(be, d_lens, lens, (size_t)b * sizeof(int32_t)), 0);
    assert_int_equal(eg_token_loss_set(&tl, labels, (int)n), 0);
    eg_tokens tok = {b, t, d_ids, d_pos, d_lens};
    eg_enc_pass pass = {1, 42, 3};
    const float *logits;
    double loss;
    assert_int_equal(eg_encoder_forward(&e, theta, &tok, &pass), 0);
    assert_int_equal(
        eg_encoder_head_forward(&e, theta, eg_encoder_hidden(&e), b * t, &pass, &logits), 0);
    assert_int_equal(eg_token_loss_forward(&tl, logits, &loss), 0);
    assert_int_equal(eg_token_loss_backward(&tl, 1.0f), 0);
    assert_int_equal(eg_encoder_head_backward(&e, theta, tl.xe.dlogits, dtheta, e.g_a), 0);
    assert_int_equal(eg_encoder_backward(&e, theta, e.g_a, dtheta), 0);
    assert_int_equal(be->download(be, logits_h, logits, n * cfg->labels * sizeof(float)), 0);
    assert_int_equal(be->download(be, dtheta_h, dtheta, P * sizeof(float)), 0);
    be->free(be, theta);
    be->free(be, dtheta);
    be->free(be, d_ids);
    be->free(be, d_pos);
    be->free(be, d_lens);
    eg_token_loss_free(&tl);
    eg_encoder_free(&e);
    return loss;
}

static void test_encoder(void **state)
{
    (void)state;
    eg_backend *gpu = gpu_open();
    eg_backend *cpu = eg_cpu_backend_create();
    enum { B = 3, T = 37 };
    eg_encoder_cfg cfg = {.vocab = 500, .d = 96, .layers = 2, .heads = 6, .ff = 192,
                          .max_pos = T + 2, .type_vocab = 1, .pad_id = 1, .ln_eps = 1e-5f,
                          .hidden_drop = 0.1f, .attn_drop = 0.1f, .init_std = 0.05f, .labels = 7};
    eg_encoder shape;
    assert_int_equal(eg_encoder_init(&shape, cpu, &cfg, 1, 1), 0);
    size_t P = shape.params.total;
    float *theta = malloc(P * sizeof(float)), *dc = malloc(P * sizeof(float)),
          *dg = malloc(P * sizeof(float));
    eg_encoder_init_params(&shape, theta, 5);
    int32_t ids[B * T], pos[B * T], labels[B * T], lens[B] = {37, 20, 5};
    eg_rng r;
    eg_rng_seed(&r, 9, 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int i = b * T + t, in = t < lens[b];
            ids[i] = in ? (int)eg_rng_below(&r, 496) + 4 : 1;
            pos[i] = in ? 2 + t : 1;
            labels[i] = in && t > 0 ? (int)eg_rng_below(&r, 7) : EG_IGNORE_LABEL;
        }
    float lc[B * T * 7], lg[B * T * 7];
    double loss_c = encoder_pass(cpu, &cfg, theta, ids, pos, lens, labels, B, T, lc, dc);
    double loss_g = encoder_pass(gpu, &cfg, theta, ids, pos, lens, labels, B, T, lg, dg);
    check_scalar("encoder loss", loss_g, loss_c);
    check("encoder logits", lg, lc, B * T * 7);
    for (int s = 0; s < shape.params.n; s++) {
        const eg_slice *sl = &shape.params.slices[s];
        char what[64];
        snprintf(what, sizeof what, "encoder d%s", sl->name);
        check(what, dg + sl->offset, dc + sl->offset, sl->count);
    }
    eg_encoder_free(&shape);
    free(theta);
    free(dc);
    free(dg);
    cpu->destroy(cpu);
    gpu->destroy(gpu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet),
        cmocka_unit_test(test_resnet32),
        cmocka_unit_test(test_evograd_step),
        cmocka_unit_test(test_t1t2_step),
        cmocka_unit_test(test_encoder),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
