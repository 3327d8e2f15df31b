/* The lft task (cross-domain few-shot learning with learned FT layers) on
 * small IDX sets the test writes:
 *  - its spec section: defaults, round trip, and bad fields named;
 *  - EvoGrad's hypergradient to the FT parameters equals a finite
 *    difference of the EvoGrad objective J(λ) = ℓ_V(θ*(λ)), its copies,
 *    weights and θ* formed here in double around the task's own float
 *    losses (RelationNet and ProtoNet);
 *  - T1−T2's hypergradient is a central difference of ∇_λ ℓ_T along v;
 *  - a short run of each method (none, FT held fixed, evograd, t1t2)
 *    completes, logs an accuracy with its 95 % interval, and learns;
 *  - a run resumed from a checkpoint ends bit for bit where one run does. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta/job.h"
#include "meta/loop.h"
#include "meta/method.h"
#include "nn/philox.h"
#include "task_checks.h"
#include "synth_data.h"
#include "tasks/lft.h"
#include "tasks/tasks.h"
#include "testutil.h"

static const char *data_dir(void)
{
    static char dir[512];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/idx", tu_tmpdir());
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(synth_idx(dir, "", 400, 40, 16, 16, 0, 10, 5), 0);
    }
    return dir;
}

/* A tiny lft job over the synthetic set's styles; extra (", KEY: VALUE"
 * ...) adds fields to the lft section or replaces the defaults below. */
static void tiny_job(const char *method, const char *extra, eg_job *job)
{
    static const char *const defaults[][2] = {
        {"width", "2"},           {"image_size", "28"},   {"n_way", "3"},
        {"n_shot", "2"},          {"n_query", "2"},       {"test_query", "3"},
        {"episodes_per_epoch", "4"}, {"test_episodes", "6"},
        {"splits", "{\"base\": [0, 1, 2, 3, 4], \"novel\": [5, 6, 7, 8, 9]}"}};
    char text[4096], lft[1024] = "", key[40];
    size_t n = 0;
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++) {
        snprintf(key, sizeof key, "\"%s\"", defaults[i][0]);
        if (!strstr(extra, key))
            n += (size_t)snprintf(lft + n, sizeof lft - n, "%s: %s, ", key, defaults[i][1]);
    }
    const char *d = data_dir();
    snprintf(text, sizeof text,
             "{\"task\": \"lft\", \"method\": \"%s\", \"device\": \"cpu\", \"seed\": 3, "
             "\"evograd\": {\"sigma\": 0.05, \"tau\": 0.2}, \"lft\": {%s"
             "\"seen\": [{\"dataset\": \"idx\", \"path\": \"%s\", \"style\": \"original\"}, "
             "{\"dataset\": \"idx\", \"path\": \"%s\", \"style\": \"inverted\"}, "
             "{\"dataset\": \"idx\", \"path\": \"%s\", \"style\": \"edges\"}], "
             "\"unseen\": {\"dataset\": \"idx\", \"path\": \"%s\", \"style\": \"blur-noise\"}%s}}",
             method, lft, d, d, d, d, extra);
    if (eg_job_parse(text, strlen(text), job) != 0) fail_msg("spec refused: %s", eg_last_error());
}

/* The CPU backend every task of this file runs on. */
static eg_backend *cpu;

static int open_cpu(void **state)
{
    (void)state;
    cpu = eg_cpu_backend_create();
    return cpu ? 0 : -1;
}

static int close_cpu(void **state)
{
    (void)state;
    cpu->destroy(cpu);
    return 0;
}

static eg_task *make_task(const eg_job *job)
{
    eg_task *t = NULL;
    if (eg_task_create(job, cpu, &t) != 0) fail_msg("lft: %s", eg_last_error());
    return t;
}

/* ---- the spec ---- */

static void test_spec(void **state)
{
    (void)state;
    eg_job j;
    assert_int_equal(eg_job_defaults("lft", &j), 0);
    const eg_lft_spec *s = EG_JOB_SECTION(&j, const eg_lft_spec);
    assert_int_equal(s->n_way, 5);
    assert_int_equal(s->n_shot, 5);
    assert_int_equal(s->n_query, 16);
    assert_int_equal(s->test_query, 15);
    assert_int_equal(s->n_seen, 3);
    assert_string_equal(s->backbone, "resnet10");
    assert_string_equal(s->metric, "relationnet");
    assert_string_equal(s->unseen.style, "blur-noise");
    assert_true(j.meta_optimizer.kind == EG_OPT_ADAM && j.meta_optimizer.weight_decay == 1e-8f);

    struct { const char *text, *field, *words; } bad[] = {
        {"{\"task\": \"lft\", \"lft\": {\"seen\": [{\"style\": \"original\"}]}}", "lft.seen",
         "2 to 8 domains"},
        {"{\"task\": \"lft\", \"lft\": {\"unseen\": {\"dataset\": \"images\"}}}",
         "lft.unseen.path", "required"},
        {"{\"task\": \"lft\", \"lft\": {\"unseen\": {\"dataset\": \"images\", \"path\": \"/x\", "
         "\"style\": \"edges\"}}}",
         "lft.unseen.style", "only to domains made of a dataset"},
        {"{\"task\": \"lft\", \"lft\": {\"unseen\": {\"style\": \"sepia\"}}}", "lft.unseen.style",
         "\"sepia\""},
        {"{\"task\": \"lft\", \"lft\": {\"unseen\": {\"style\": \"edges\"}}}", "lft.unseen",
         "two domains are named"},
        {"{\"task\": \"lft\", \"lft\": {\"n_way\": 6}}", "lft.splits", "n_way is 6"},
        {"{\"task\": \"lft\", \"lft\": {\"splits\": {\"base\": [0, 1], \"novel\": [1]}}}",
         "lft.splits.novel[0]", "already in base"},
        {"{\"task\": \"lft\", \"lft\": {\"splits\": \"paper\"}}", "lft.splits", "\"own\""},
        {"{\"task\": \"lft\", \"method\": \"evograd\", \"lft\": {\"fixed_ft\": true}}",
         "lft.fixed_ft", "method \"none\""},
        {"{\"task\": \"lft\", \"lft\": {\"backbone\": \"vgg\"}}", "lft.backbone", "resnet34"},
        {"{\"task\": \"lft\", \"lft\": {\"seen\": [{\"style\": \"original\"}, "
         "{\"style\": \"inverted\", \"colour\": 1}]}}",
         "lft.seen[1].colour", "unknown field"},
        {"{\"task\": \"rotation\", \"lft\": {}}", "lft", "only to task \"lft\""},
        {"{\"task\": \"lft\", \"model\": {\"name\": \"lenet\"}}", "model.name", "\"none\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        eg_clear_error();
        if (eg_job_parse(bad[i].text, strlen(bad[i].text), &j) != -1)
            fail_msg("accepted: %s", bad[i].text);
        if (strcmp(eg_job_error_field(), bad[i].field) != 0)
            fail_msg("%s: field %s, expected %s (%s)", bad[i].text, eg_job_error_field(),
                     bad[i].field, eg_last_error());
        if (!strstr(eg_last_error(), bad[i].words))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].text, eg_last_error(), bad[i].words);
    }
}

/* A split that names a class the data does not have fails at start,
 * naming the split and the domain; so does a split too small for n_way
 * queries of the data. */
static void test_bad_data(void **state)
{
    (void)state;
    eg_job job;
    eg_task *t = NULL;
    tiny_job("none", ", \"splits\": {\"base\": [0, 1, 2], \"novel\": [5, 6, 12]}", &job);
    tu_fails_with(eg_task_create(&job, cpu, &t), "lft.splits.novel[2]: class 12");
    tiny_job("none", ", \"test_query\": 60", &job);
    tu_fails_with(eg_task_create(&job, cpu, &t), "lft.unseen");
    assert_null(t);
}

/* ---- the hypergradients ---- */

static void check_evograd_fd(const char *metric)
{
    char extra[64];
    snprintf(extra, sizeof extra, ", \"metric\": \"%s\"", metric);
    eg_job job;
    tiny_job("evograd", extra, &job);
    eg_task *t = make_task(&job);
    assert_int_equal(t->ops->next_batch(t), 0);
    /* The loss is far from linear in λ over 1e-3 at this width. */
    tu_check_evograd_fd(t, &job, metric, 5e-4f, 0.06);
    eg_task_destroy(t);
}

static void test_evograd_fd_relationnet(void **state)
{
    (void)state;
    check_evograd_fd("relationnet");
}

static void test_evograd_fd_protonet(void **state)
{
    (void)state;
    check_evograd_fd("protonet");
}

/* T1−T2: hyper = -α (∇_λℓ_T(θ + εv) - ∇_λℓ_T(θ - εv)) / 2ε with v the
 * validation gradient at the lookahead θ - α∇_θℓ_T and one FT draw for
 * every evaluation of the step, checked against the same quantity formed
 * from the task's own calls. */
static void test_t1t2(void **state)
{
    (void)state;
    eg_job job;
    tiny_job("t1t2", "", &job);
    eg_task *t = make_task(&job);
    assert_int_equal(t->ops->next_batch(t), 0);
    eg_meta m;
    assert_int_equal(eg_meta_init(&m, t, EG_METHOD_T1T2, &job.evograd, job.seed), 0);
    assert_int_equal(eg_meta_hypergrad(&m, t, 0), 0);
    size_t P = t->P, H = t->H;
    float *g = malloc(P * sizeof(float)), *th = malloc(P * sizeof(float));
    float *v = malloc(P * sizeof(float)), *dp = calloc(H, sizeof(float));
    float *dm = calloc(H, sizeof(float)), *direct = calloc(H, sizeof(float));
    double loss, vv = 0;
    float alpha = t->ops->base_lr(t);
    assert_int_equal(t->ops->train_grad(t, t->theta, &loss, g), 0);
    for (size_t i = 0; i < P; i++) th[i] = t->theta[i] - alpha * g[i];
    assert_int_equal(t->ops->val_grad(t, th, &loss, v, direct), 0);
    for (size_t i = 0; i < P; i++) vv += (double)v[i] * v[i];
    float eps = (float)(0.01 / sqrt(vv));
    for (size_t i = 0; i < P; i++) th[i] = t->theta[i] + eps * v[i];
    assert_int_equal(t->ops->train_loss(t, th, &loss, dp), 0);
    for (size_t i = 0; i < P; i++) th[i] = t->theta[i] - eps * v[i];
    assert_int_equal(t->ops->train_loss(t, th, &loss, dm), 0);
    double worst = 0, scale = 0;
    for (size_t j = 0; j < H; j++) {
        double want = -alpha * ((double)dp[j] - dm[j]) / (2.0 * eps);
        worst = fmax(worst, fabs(want - m.hyper[j]));
        scale = fmax(scale, fabs(want));
    }
    fprintf(stderr, "t1t2: |hyper| scale %.3e, worst difference %.3e\n", scale, worst);
    assert_true(scale > 0);
    assert_true(worst <= 1e-3 * scale);
    /* Only the training loss holds λ: the direct term is zero. */
    for (size_t j = 0; j < H; j++) assert_true(direct[j] == 0);
    free(g);
    free(th);
    free(v);
    free(dp);
    free(dm);
    free(direct);
    eg_meta_free(&m);
    eg_task_destroy(t);
}

/* ---- runs ---- */

typedef struct evals_seen {
    int n;
    eg_eval last, first;
} evals_seen;

static int on_eval(void *ctx, long step, const eg_eval *ev)
{
    evals_seen *e = ctx;
    if (!e->n) e->first = *ev;
    e->last = *ev;
    e->n++;
    return 0;
}

/* Runs job to its end; returns its last evaluation. */
static eg_eval run_job(const eg_job *job, int *n_evals, float *lambda_out, size_t *H)
{
    eg_task *t = make_task(job);
    evals_seen e = {0};
    eg_loop_sink sink = {.ctx = &e, .eval = on_eval};
    eg_loop_config cfg = eg_task_loop_config(job, t);
    eg_loop_result res;
    if (eg_loop_run(t, &cfg, &sink, &res) != 0) fail_msg("run failed: %s", eg_last_error());
    *n_evals = e.n;
    if (lambda_out) memcpy(lambda_out, t->lambda, t->H * sizeof(float));
    if (H) *H = t->H;
    eg_task_destroy(t);
    return e.last;
}

static void test_methods_run(void **state)
{
    (void)state;
    static const char *const methods[][2] = {
        {"none", ""}, {"none", ", \"fixed_ft\": true"}, {"evograd", ""}, {"t1t2", ""},
        {"evograd", ", \"metric\": \"protonet\""}};
    float init[4096], after[4096];
    size_t H0 = 0;
    {
        eg_job job;
        tiny_job("evograd", "", &job);
        eg_task *t = make_task(&job);
        H0 = t->H;
        assert_true(H0 <= 4096);
        memcpy(init, t->lambda, H0 * sizeof(float));
        eg_task_destroy(t);
    }
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        eg_job job;
        tiny_job(methods[i][0], methods[i][1], &job);
        job.epochs = 2;
        int n;
        size_t H;
        eg_eval ev = run_job(&job, &n, after, &H);
        fprintf(stderr, "%s%s: %d evaluations, test acc %.2f%% ± %.2f\n", methods[i][0],
                methods[i][1], n, ev.test_acc, ev.test_acc_ci95);
        assert_int_equal(n, 2);
        assert_true(ev.test_acc >= 0 && ev.test_acc <= 100);
        assert_true(ev.test_acc_ci95 > 0 && ev.test_acc_ci95 < 50);
        assert_true(isfinite(ev.test_loss));
        assert_true(H == H0);
        /* Only the meta-learning methods move λ. */
        int moved = memcmp(after, init, H * sizeof(float)) != 0;
        assert_int_equal(moved, strcmp(methods[i][0], "none") != 0);
    }
}

/* A longer run with the job's learning: test accuracy well above the
 * 1/n_way of chance. */
static void test_learns(void **state)
{
    (void)state;
    eg_job job;
    tiny_job("evograd", ", \"width\": 4, \"test_episodes\": 30, \"metric\": \"protonet\"", &job);
    job.epochs = 15;
    int n;
    eg_eval ev = run_job(&job, &n, NULL, NULL);
    fprintf(stderr, "after 60 episodes: %.2f%% ± %.2f (chance 33.3%%)\n", ev.test_acc,
            ev.test_acc_ci95);
    assert_true(ev.test_acc > 33.4 + 2 * ev.test_acc_ci95);
}

/* Pre-training moves the backbone (only): the same job with and without
 * pretrain_steps starts from different θ, the same λ, and still runs. */
static void test_pretrain(void **state)
{
    (void)state;
    eg_job plain, pre;
    tiny_job("evograd", "", &plain);
    tiny_job("evograd", ", \"pretrain_steps\": 3", &pre);
    pre.batch_size = 12;
    eg_task *a = make_task(&plain), *b = make_task(&pre);
    assert_int_equal(a->P, b->P);
    assert_true(memcmp(a->theta, b->theta, a->P * sizeof(float)) != 0);
    assert_memory_equal(a->lambda, b->lambda, a->H * sizeof(float));
    double loss;
    assert_int_equal(b->ops->next_batch(b), 0);
    assert_int_equal(b->ops->base_step(b, &loss), 0);
    assert_true(isfinite(loss));
    eg_task_destroy(a);
    eg_task_destroy(b);
}

/* 6 steps straight, and 3 steps, a checkpoint, a new task and 3 more:
 * the same θ and λ bit for bit. */
static void test_resume(void **state)
{
    (void)state;
    eg_job job;
    tiny_job("evograd", "", &job);
    job.steps = 6;
    char path[600];
    snprintf(path, sizeof path, "%s/lft.ckpt", tu_tmpdir());
    tu_check_resume(&job, cpu, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec),
        cmocka_unit_test(test_bad_data),
        cmocka_unit_test(test_evograd_fd_relationnet),
        cmocka_unit_test(test_evograd_fd_protonet),
        cmocka_unit_test(test_t1t2),
        cmocka_unit_test(test_methods_run),
        cmocka_unit_test(test_learns),
        cmocka_unit_test(test_pretrain),
        cmocka_unit_test(test_resume),
    };
    return cmocka_run_group_tests(tests, open_cpu, close_cpu);
}
