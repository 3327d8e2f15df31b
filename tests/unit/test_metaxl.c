/* The metaxl task (MetaXL's representation transformation network meta-
 * learned for cross-lingual NER) and the generic methods under it:
 *  - its spec: defaults (EvoGrad perturbing the classifier, the RTN's Adam
 *    at 1e-6), a perturbation scope refused where a task has none, bad
 *    fields named;
 *  - the RTN's gradient to its parameters against central differences;
 *  - EvoGrad's hypergradient to the RTN equals a finite difference of the
 *    EvoGrad objective on a tiny encoder, with the classifier as the
 *    scope and with every parameter perturbed;
 *  - T1−T2 equals the exact hypergradient of a one-step unroll on a tiny
 *    linear model;
 *  - a short run of each method logs F1, and only the meta methods move λ;
 *  - a scoped EvoGrad step's peak memory stays within 1.1x of a joint
 *    training step's and below an unscoped one's, and the encoder runs
 *    once for every copy;
 *  - a resumed run ends bit for bit where one run does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task_checks.h"
#include "meta/job.h"
#include "meta/loop.h"
#include "meta/method.h"
#include "nn/rtn.h"
#include "tasks/metaxl.h"
#include "tasks/tasks.h"
#include "testutil.h"

static eg_backend *cpu;

static int open_cpu(void **state)
{
    cpu = eg_cpu_backend_create();
    return cpu ? 0 : -1;
}

static int close_cpu(void **state)
{
    cpu->destroy(cpu);
    return 0;
}

/* A tiny metaxl job on the synthetic languages; extra: top-level fields
 * (", KEY: VALUE"). */
static void tiny_job(const char *method, const char *extra, eg_job *job)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"task\": \"metaxl\", \"method\": \"%s\", \"device\": \"cpu\", \"seed\": 4, "
             "\"batch_size\": 6, \"optimizer\": {\"kind\": \"adam\", \"lr\": 0.003}, "
             "\"meta_optimizer\": {\"kind\": \"adam\", \"lr\": 0.01}%s, "
             "\"metaxl\": {\"source_size\": 40, \"target_size\": 12, \"eval_size\": 12, \"d\": 8, "
             "\"layers\": 1, \"heads\": 2, \"ff\": 12, \"max_len\": 24, \"dropout\": 0, "
             "\"bottleneck\": 4}}",
             method, extra);
    if (eg_job_parse(text, strlen(text), job) != 0) fail_msg("spec refused: %s", eg_last_error());
}

static eg_task *make_task(const eg_job *job)
{
    eg_task *t = NULL;
    if (eg_task_create(job, cpu, &t) != 0) fail_msg("metaxl: %s", eg_last_error());
    return t;
}

static void test_spec(void **state)
{
    eg_job j;
    assert_int_equal(eg_job_defaults("metaxl", &j), 0);
    assert_true(j.method == EG_METHOD_EVOGRAD);
    assert_int_equal(j.evograd.perturb, 1);
    assert_true(j.meta_optimizer.kind == EG_OPT_ADAM && j.meta_optimizer.lr == 1e-6f);
    assert_true(j.optimizer.weight_decay == 5e-4f && j.batch_size == 12);
    struct { const char *text, *field, *words; } bad[] = {
        {"{\"task\": \"metaxl\", \"batch_size\": 1}", "batch_size", "two halves"},
        {"{\"task\": \"metaxl\", \"evograd\": {\"perturb\": \"encoder\"}}", "evograd.perturb",
         "classifier"},
        {"{\"task\": \"rotation\", \"evograd\": {\"perturb\": \"classifier\"}}",
         "evograd.perturb", "\"all\""},
        {"{\"task\": \"metaxl\", \"metaxl\": {\"bottleneck\": -1}}", "metaxl.bottleneck", "0"},
        {"{\"task\": \"metaxl\", \"metaxl\": {\"data\": \"files\"}}", "metaxl.source",
         "required"},
        {"{\"task\": \"metaxl\", \"metaxl\": {\"layer\": 3}}", "metaxl.layer", "unknown"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        eg_job k;
        eg_clear_error();
        if (eg_job_parse(bad[i].text, strlen(bad[i].text), &k) != -1)
            fail_msg("accepted: %s", bad[i].text);
        if (!strstr(eg_last_error(), bad[i].field) || !strstr(eg_last_error(), bad[i].words))
            fail_msg("%s: got \"%s\", wanted %s ... %s", bad[i].text, eg_last_error(),
                     bad[i].field, bad[i].words);
    }
}

/* ---- the RTN ---- */

typedef struct rtn_fd {
    eg_rtn r;
    float *lambda, *h, *y, *w;
    int n;
} rtn_fd;

static double rtn_loss(void *p)
{
    rtn_fd *f = p;
    if (eg_rtn_forward(&f->r, f->lambda, f->h, f->n, f->y) != 0) fail_msg("%s", eg_last_error());
    return tu_project(f->y, f->w, (size_t)f->n * f->r.d);
}

static void test_rtn_fd(void **state)
{
    rtn_fd f = {.n = 7};
    int d = 6;
    assert_int_equal(eg_rtn_init(&f.r, cpu, d, 4, f.n), 0);
    size_t H = f.r.params.total, nd = (size_t)f.n * d;
    f.lambda = malloc(H * sizeof(float));
    float *dl = calloc(H, sizeof(float));
    f.h = malloc(nd * sizeof(float));
    f.y = malloc(nd * sizeof(float));
    f.w = malloc(nd * sizeof(float));
    eg_rtn_init_params(&f.r, f.lambda, 3);
    /* Biases away from zero, so the ReLU's kinks and the gate are exercised. */
    float *jit = malloc(H * sizeof(float));
    tu_fill_uniform(jit, H, 4, -0.3f, 0.3f);
    for (size_t i = 0; i < H; i++) f.lambda[i] += jit[i];
    free(jit);
    tu_fill_uniform(f.h, nd, 5, -1, 1);
    tu_fill_uniform(f.w, nd, 6, -1, 1);
    /* The first d outputs of a row are gated by the sigmoid of the last. */
    rtn_loss(&f);
    for (int i = 0; i < f.n; i++)
        for (int j = 0; j < d; j++) {
            const float *o = f.r.o + (size_t)i * (d + 1);
            float want = f.h[i * d + j] + o[j] / (1 + expf(-o[d]));
            assert_float_equal(f.y[i * d + j], want, 1e-5);
        }
    assert_int_equal(eg_rtn_backward(&f.r, f.lambda, f.w, dl), 0);
    assert_int_equal(tu_check_grad("rtn dλ", f.lambda, dl, H, rtn_loss, &f, 1e-3f, 2e-2, 1e-5, 200),
                     0);
    free(f.lambda);
    free(dl);
    free(f.h);
    free(f.y);
    free(f.w);
    eg_rtn_free(&f.r);
}

/* ---- hypergradients ---- */

static void test_evograd_fd_scoped(void **state)
{
    eg_job job;
    tiny_job("evograd", ", \"evograd\": {\"sigma\": 0.05, \"tau\": 0.2, \"perturb\": \"classifier\"}",
             &job);
    eg_task *t = make_task(&job);
    assert_true(t->scope_n > 0 && t->scope_off + t->scope_n == t->P);
    assert_int_equal(t->ops->next_batch(t), 0);
    tu_check_evograd_fd(t, &job, "classifier scope", 2e-3f, 0.06);
    eg_task_destroy(t);
}

static void test_evograd_fd_all(void **state)
{
    eg_job job;
    tiny_job("evograd", ", \"evograd\": {\"sigma\": 0.05, \"tau\": 0.2, \"perturb\": \"all\"}",
             &job);
    eg_task *t = make_task(&job);
    assert_int_equal((int)t->scope_n, 0);
    assert_int_equal(t->ops->next_batch(t), 0);
    tu_check_evograd_fd(t, &job, "every parameter", 2e-3f, 0.06);
    eg_task_destroy(t);
}

/* A linear model for T1−T2: ℓ_T(θ, λ) = ½‖θ - Aλ‖², ℓ_V(θ) = ½‖θ - c‖².
 * One step θ' = θ - α(θ - Aλ) makes dℓ_V(θ'(λ))/dλ = α Aᵀ(θ' - c) exactly. */
enum { LP = 5, LH = 3 };
typedef struct lin_task {
    eg_task base;
    float theta[LP], lambda[LH], grad[LP], A[LP][LH], c[LP];
} lin_task;

static int lin_train_loss(eg_task *t, const float *theta, double *loss, float *dl)
{
    lin_task *L = (lin_task *)t;
    double s = 0, r[LP];
    for (int i = 0; i < LP; i++) {
        double a = 0;
        for (int j = 0; j < LH; j++) a += (double)L->A[i][j] * t->lambda[j];
        r[i] = theta[i] - a;
        s += 0.5 * r[i] * r[i];
    }
    *loss = s;
    if (dl)
        for (int j = 0; j < LH; j++) {
            double g = 0;
            for (int i = 0; i < LP; i++) g -= L->A[i][j] * r[i];
            dl[j] = (float)g;
        }
    return 0;
}

static int lin_train_grad(eg_task *t, const float *theta, double *loss, float *dtheta)
{
    lin_task *L = (lin_task *)t;
    EG_TRY(lin_train_loss(t, theta, loss, NULL));
    for (int i = 0; i < LP; i++) {
        double a = 0;
        for (int j = 0; j < LH; j++) a += (double)L->A[i][j] * t->lambda[j];
        dtheta[i] = (float)(theta[i] - a);
    }
    return 0;
}

static int lin_val_grad(eg_task *t, const float *theta, double *loss, float *dtheta, float *dl)
{
    lin_task *L = (lin_task *)t;
    double s = 0;
    for (int i = 0; i < LP; i++) {
        dtheta[i] = theta[i] - L->c[i];
        s += 0.5 * (double)dtheta[i] * dtheta[i];
    }
    *loss = s;
    return 0;
}

static float lin_lr(const eg_task *t) { return 0.3f; }

static void test_t1t2_linear_unroll(void **state)
{
    static const eg_task_ops ops = {.train_loss = lin_train_loss, .train_grad = lin_train_grad,
                                    .val_grad = lin_val_grad, .base_lr = lin_lr};
    lin_task L = {0};
    L.base = (eg_task){.ops = &ops, .be = cpu, .P = LP, .H = LH};
    L.base.theta = L.theta;
    L.base.lambda = L.lambda;
    L.base.grad = L.grad;
    tu_fill_uniform(L.theta, LP, 1, -1, 1);
    tu_fill_uniform(L.lambda, LH, 2, -1, 1);
    tu_fill_uniform(&L.A[0][0], LP * LH, 3, -1, 1);
    tu_fill_uniform(L.c, LP, 4, -1, 1);
    eg_evograd_opts evo = {.k = 2, .sigma = 1e-3f, .tau = 0.05f};
    eg_meta m;
    assert_int_equal(eg_meta_init(&m, &L.base, EG_METHOD_T1T2, &evo, 1), 0);
    assert_int_equal(eg_meta_hypergrad(&m, &L.base, 0), 0);
    double alpha = 0.3, tp[LP], worst = 0, scale = 0;
    for (int i = 0; i < LP; i++) {
        double a = 0;
        for (int j = 0; j < LH; j++) a += (double)L.A[i][j] * L.lambda[j];
        tp[i] = L.theta[i] - alpha * (L.theta[i] - a);
    }
    for (int j = 0; j < LH; j++) {
        double want = 0;
        for (int i = 0; i < LP; i++) want += alpha * L.A[i][j] * (tp[i] - L.c[i]);
        fprintf(stderr, "t1t2 dλ[%d]: %.7f, exact unroll %.7f\n", j, m.hyper[j], want);
        worst = fmax(worst, fabs(want - m.hyper[j]));
        scale = fmax(scale, fabs(want));
    }
    assert_true(scale > 1e-3);
    assert_true(worst <= 1e-4 * scale);
    eg_meta_free(&m);
}

/* ---- runs ---- */

typedef struct evals_seen {
    int n;
    eg_eval last;
} evals_seen;

static int on_eval(void *ctx, long step, const eg_eval *ev)
{
    evals_seen *e = ctx;
    e->last = *ev;
    e->n++;
    return 0;
}

static void test_methods_run(void **state)
{
    static const char *const methods[] = {"none", "evograd", "t1t2"};
    for (size_t i = 0; i < 3; i++) {
        eg_job job;
        tiny_job(methods[i], "", &job);
        job.steps = 6;
        job.eval_every = 3;
        eg_task *t = make_task(&job);
        float *init = malloc(t->H * sizeof(float));
        memcpy(init, t->lambda, t->H * sizeof(float));
        evals_seen e = {0};
        eg_loop_sink sink = {.ctx = &e, .eval = on_eval};
        eg_loop_config cfg = eg_task_loop_config(&job, t);
        eg_loop_result res;
        if (eg_loop_run(t, &cfg, &sink, &res) != 0) fail_msg("%s: %s", methods[i], eg_last_error());
        fprintf(stderr, "%s: %d evaluations, dev F1 %.2f, test F1 %.2f\n", methods[i], e.n,
                e.last.dev_f1, e.last.test_f1);
        assert_int_equal(e.n, 2);
        assert_true(e.last.dev_f1 >= 0 && e.last.dev_f1 <= 100 && isfinite(e.last.test_loss));
        int moved = memcmp(init, t->lambda, t->H * sizeof(float)) != 0;
        assert_int_equal(moved, i != 0);
        free(init);
        eg_task_destroy(t);
    }
}

/* Peak memory of one step of job (on a fresh CPU backend) after a
 * warm-up step, minus what the task held before it. */
static size_t step_peak(const char *method, const char *extra, unsigned long *passes)
{
    eg_job job;
    tiny_job(method, extra, &job);
    eg_backend *be = eg_cpu_backend_create();
    eg_task *t;
    if (eg_task_create(&job, be, &t) != 0) fail_msg("%s", eg_last_error());
    eg_loop_config cfg = eg_task_loop_config(&job, t);
    eg_run r;
    eg_step_record rec;
    assert_int_equal(eg_run_init(&r, t, &cfg), 0);
    assert_int_equal(eg_run_step(&r, &rec), 0);
    size_t before = be->cur_bytes;
    be->peak_bytes = be->cur_bytes;
    unsigned long p0 = be->passes.eager;
    assert_int_equal(eg_run_step(&r, &rec), 0);
    size_t peak = be->peak_bytes - before;
    if (passes) *passes = be->passes.eager - p0;
    eg_run_free(&r);
    eg_task_destroy(t);
    be->destroy(be);
    return peak + before;
}

static void test_scoped_memory(void **state)
{
    size_t none = step_peak("none", "", NULL);
    size_t scoped = step_peak("evograd", ", \"evograd\": {\"k\": 4, \"perturb\": \"classifier\"}",
                              NULL);
    size_t all = step_peak("evograd", ", \"evograd\": {\"k\": 4, \"perturb\": \"all\"}", NULL);
    fprintf(stderr, "peak bytes: joint %zu, evograd (classifier, K = 4) %zu (%.3fx), "
                    "evograd (all) %zu (%.3fx)\n",
            none, scoped, (double)scoped / none, all, (double)all / none);
    assert_true(scoped <= 1.1 * none);
    assert_true(all <= 1.1 * none);
    /* The scoped copies keep the classifier's values, not a whole θ. */
    assert_true(scoped < all);
}

/* The scoped copies reuse the encoder's outputs: after a scoped EvoGrad
 * step, a scoped training loss reads the step's cached hidden states (a
 * change to the encoder's weights does not reach it) and an unscoped one
 * recomputes them. */
static void test_scoped_encoder_once(void **state)
{
    eg_job job;
    tiny_job("evograd", ", \"evograd\": {\"k\": 4}", &job);
    eg_task *t = make_task(&job);
    assert_int_equal(t->ops->next_batch(t), 0);
    eg_meta m;
    assert_int_equal(eg_meta_init(&m, t, EG_METHOD_EVOGRAD, &job.evograd, job.seed), 0);
    assert_int_equal(eg_meta_hypergrad(&m, t, 0), 0);
    assert_int_equal(t->scoped, 0);
    double l_scoped, l_cached, l_fresh;
    t->scoped = 1;
    assert_int_equal(t->ops->train_loss(t, t->theta, &l_scoped, NULL), 0);
    t->theta[0] += 1.0f; /* a word embedding: the encoder's part of θ */
    assert_int_equal(t->ops->train_loss(t, t->theta, &l_cached, NULL), 0);
    t->scoped = 0;
    assert_int_equal(t->ops->train_loss(t, t->theta, &l_fresh, NULL), 0);
    t->theta[0] -= 1.0f;
    fprintf(stderr, "scoped %.9g, scoped after an encoder change %.9g, unscoped %.9g\n", l_scoped,
            l_cached, l_fresh);
    assert_true(isfinite(l_scoped) && l_cached == l_scoped && l_fresh != l_scoped);
    eg_meta_free(&m);
    eg_task_destroy(t);
}

static void test_resume(void **state)
{
    eg_job job;
    tiny_job("evograd", "", &job);
    job.steps = 6;
    char path[600];
    snprintf(path, sizeof path, "%s/metaxl.ckpt", tu_tmpdir());
    tu_check_resume(&job, cpu, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec),
        cmocka_unit_test(test_rtn_fd),
        cmocka_unit_test(test_evograd_fd_scoped),
        cmocka_unit_test(test_evograd_fd_all),
        cmocka_unit_test(test_t1t2_linear_unroll),
        cmocka_unit_test(test_methods_run),
        cmocka_unit_test(test_scoped_memory),
        cmocka_unit_test(test_scoped_encoder_once),
        cmocka_unit_test(test_resume),
    };
    return cmocka_run_group_tests(tests, open_cpu, close_cpu);
}
