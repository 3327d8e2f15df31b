/* Meta-learning runs on Fashion-MNIST (Debian's dataset-fashion-mnist):
 *  - rotation, one epoch: EvoGrad's rotated-test accuracy is at least 20
 *    points above plain training's, and the learned angle lies in 10-45°;
 *  - mwn: the hypergradient in the VNet's parameters equals a finite
 *    difference of the EvoGrad objective, computed through the task's own
 *    losses on a small batch, at the parameters whose gradient stands well
 *    above the tolerance; and a short run of an MLP with 40% uniform noise
 *    learns (its training loss falls, its test accuracy is far above
 *    chance) and reports the VNet weights of corrupted and clean samples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta/loop.h"
#include "nn/philox.h"
#include "synth_data.h"
#include "tasks/mwn.h"
#include "tasks/tasks.h"
#include "testutil.h"

/* A run's figures; the losses are means over the first and the last
 * WINDOW steps (fewer when the run is shorter). */
#define WINDOW 20
typedef struct run_log {
    long steps, evals;
    double first_loss, last_loss;
    double recent[WINDOW];
    eg_eval last;
} run_log;

static int on_step(void *ctx, const eg_step_record *r)
{
    run_log *log = ctx;
    long n = log->steps++;
    if (n < WINDOW) log->first_loss = (log->first_loss * n + r->train_loss) / (n + 1);
    log->recent[n % WINDOW] = r->train_loss;
    long m = log->steps < WINDOW ? log->steps : WINDOW;
    double sum = 0;
    for (long i = 0; i < m; i++) sum += log->recent[i];
    log->last_loss = sum / m;
    return 0;
}

static int on_eval(void *ctx, long step, const eg_eval *ev)
{
    run_log *log = ctx;
    log->evals++;
    log->last = *ev;
    return 0;
}

/* Runs a job to its end; returns the final evaluation. */
static eg_eval run_job(const eg_job *job, run_log *log)
{
    eg_backend *be = tu_cpu();
    eg_task *t;
    if (eg_task_create(job, be, &t) != 0) fail_msg("task: %s", eg_last_error());
    eg_loop_config cfg = eg_task_loop_config(job, t);
    eg_loop_sink sink = {on_step, on_eval, log};
    eg_loop_result res;
    memset(log, 0, sizeof *log);
    if (eg_loop_run(t, &cfg, &sink, &res) != 0) fail_msg("run: %s", eg_last_error());
    fprintf(stderr, "%s/%s: %ld steps, loss %.3f -> %.3f, test accuracy %.2f%%, "
            "mean step %.1f ms (meta %.1f ms), peak %.1f MB\n", job->task->name,
            eg_method_name(job->method), res.steps, log->first_loss, log->last_loss,
            res.last_eval.test_acc, res.mean_step_ms, res.mean_meta_ms, res.peak_bytes / 1e6);
    assert_int_equal(res.steps, cfg.steps);
    assert_int_equal(log->steps, cfg.steps);
    eg_task_destroy(t);
    be->destroy(be);
    return res.last_eval;
}

static void test_rotation_one_epoch(void **s)
{
    eg_job job;
    eg_job_defaults("rotation", &job);
    job.epochs = 1;
    run_log log;
    job.method = EG_METHOD_NONE;
    eg_eval none = run_job(&job, &log);
    job.method = EG_METHOD_EVOGRAD;
    eg_eval evo = run_job(&job, &log);
    fprintf(stderr, "rotated test accuracy: none %.2f%%, evograd %.2f%%; learned angle %.2f°\n",
            none.test_acc, evo.test_acc, evo.angle_deg);
    assert_float_equal(none.angle_deg, 0, 0);
    assert_true(evo.test_acc >= none.test_acc + 20);
    assert_true(evo.angle_deg >= 10 && evo.angle_deg <= 45);
}

/* J(λ) = ℓ_V(θ*(λ)) through the task's own operations, at step `step`. */
static double objective(eg_task *t, const eg_evograd_opts *o, uint64_t seed, long step,
                        float *buf)
{
    double loss[8], w[8], lo = INFINITY, sum = 0, j;
    for (int k = 0; k < o->k; k++) {
        uint64_t stream = ((uint64_t)step << 20) | (uint64_t)k;
        for (size_t i = 0; i < t->P; i++)
            buf[i] = t->theta[i] + o->sigma * eg_rademacher(seed, stream, i);
        assert_int_equal(t->ops->train_loss(t, buf, &loss[k], NULL), 0);
        lo = fmin(lo, loss[k]);
    }
    for (int k = 0; k < o->k; k++) sum += w[k] = exp(-(loss[k] - lo) / o->tau);
    memcpy(buf, t->theta, t->P * sizeof(float));
    for (int k = 0; k < o->k; k++) {
        uint64_t stream = ((uint64_t)step << 20) | (uint64_t)k;
        for (size_t i = 0; i < t->P; i++)
            buf[i] += (float)(o->sigma * w[k] / sum) * eg_rademacher(seed, stream, i);
    }
    assert_int_equal(t->ops->val_grad(t, buf, &j, t->grad, NULL), 0);
    return j;
}

static void test_mwn_hypergradient_fd(void **s)
{
    eg_job job;
    eg_job_defaults("mwn", &job);
    snprintf(job.model.name, sizeof job.model.name, "mlp");
    job.batch_size = 16;
    EG_JOB_SECTION(&job, eg_mwn_spec)->meta_samples = 100;
    /* Noise large enough that the copies' losses differ measurably, and a
     * temperature that keeps both copies' weights away from 0 and 1. */
    job.evograd = (eg_evograd_opts){.k = 2, .sigma = 0.08f, .tau = 1.0f};
    eg_backend *be = tu_cpu();
    eg_task *t;
    if (eg_task_create(&job, be, &t) != 0) fail_msg("task: %s", eg_last_error());
    assert_int_equal(t->ops->next_batch(t), 0);
    eg_meta m;
    const long step = 4;
    assert_int_equal(eg_meta_init(&m, t, EG_METHOD_EVOGRAD, &job.evograd, job.seed), 0);
    assert_int_equal(eg_meta_hypergrad(&m, t, step), 0);
    float *buf = malloc(t->P * sizeof(float));
    int bad = 0, probed = 0;
    double scale = 0;
    /* Probes where the gradient stands at least 20 times above the
     * comparison's absolute tolerance (none on a dead VNet unit, whose
     * gradient is 0): the 4 largest and 8 spread over the rest. */
    const double atol = 3e-5;
    size_t probes[12], live[512], n_live = 0;
    assert_true(t->H <= 512);
    for (size_t i = 0; i < t->H; i++)
        if (fabs(m.hyper[i]) >= 20 * atol) live[n_live++] = i;
    fprintf(stderr, "%zu of %zu VNet parameters have |dλ| >= %.0e\n", n_live, t->H, 20 * atol);
    assert_true(n_live >= 12);
    for (int p = 0; p < 4; p++) { /* selection of the largest */
        size_t best = p;
        for (size_t q = p + 1; q < n_live; q++)
            if (fabs(m.hyper[live[q]]) > fabs(m.hyper[live[best]])) best = q;
        size_t keep = live[p];
        live[p] = live[best];
        live[best] = keep;
        probes[p] = live[p];
    }
    for (int p = 0; p < 8; p++) probes[4 + p] = live[4 + (size_t)p * (n_live - 5) / 7];
    for (size_t p = 0; p < sizeof probes / sizeof *probes; p++) {
        size_t i = probes[p];
        const float h = 1e-2f;
        float keep = t->lambda[i];
        t->lambda[i] = keep + h;
        double jp = objective(t, &job.evograd, job.seed, step, buf);
        t->lambda[i] = keep - h;
        double jm = objective(t, &job.evograd, job.seed, step, buf);
        t->lambda[i] = keep;
        double fd = (jp - jm) / (2.0 * h);
        fprintf(stderr, "dλ[%zu]: evograd %.6e, finite difference %.6e\n", i, m.hyper[i], fd);
        scale = fmax(scale, fabs(fd));
        if (fabs(fd - m.hyper[i]) > 0.02 * fabs(fd) + atol) bad++;
        probed++;
    }
    assert_true(scale > 1e-4);
    assert_int_equal(bad, 0);
    free(buf);
    eg_meta_free(&m);
    eg_task_destroy(t);
    be->destroy(be);
}

static void test_mwn_short_run(void **s)
{
    eg_job job;
    eg_job_defaults("mwn", &job);
    snprintf(job.model.name, sizeof job.model.name, "mlp");
    snprintf(job.dataset.noise, sizeof job.dataset.noise, "uniform");
    job.dataset.noise_rate = 0.4;
    job.steps = 300;
    job.eval_limit = 2000;
    run_log log;
    eg_eval ev = run_job(&job, &log);
    fprintf(stderr, "mwn: test accuracy %.2f%%, mean VNet weight corrupted %.4f, clean %.4f\n",
            ev.test_acc, ev.w_corrupted, ev.w_clean);
    assert_int_equal(log.evals, 1);
    /* Chance is 10%; the training loss, with 36% of the labels wrong,
     * cannot reach 0 but must fall by a clear margin. */
    assert_true(ev.test_acc >= 70);
    assert_true(log.last_loss <= 0.92 * log.first_loss);
    assert_true(ev.w_corrupted > 0 && ev.w_corrupted < 1);
    assert_true(ev.w_clean > 0 && ev.w_clean < 1);
    /* The VNet's weight over the loss grid: a sigmoid's values. */
    assert_true(ev.has_curve);
    for (int i = 0; i < EG_VNET_CURVE; i++)
        assert_true(ev.vnet_curve[i] > 0 && ev.vnet_curve[i] < 1);
    fprintf(stderr, "mwn: VNet weight at loss 0 %.4f, at 2 %.4f, at 10 %.4f\n", ev.vnet_curve[0],
            ev.vnet_curve[4], ev.vnet_curve[EG_VNET_CURVE - 1]);
}

/* Rotation and mwn on IDX sets of several sizes the test writes: the
 * splits follow the default shares (2/3 to train, the last 1/6 to
 * validate) or the ranges given, a few steps run, and splits past the
 * data fail naming the field. */
static void test_sets_of_any_size(void **s)
{
    static const int sizes[] = {90, 700, 7000};
    eg_backend *be = tu_cpu();
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char dir[400];
        snprintf(dir, sizeof dir, "%.380s/idx%d", tu_tmpdir(), sizes[i]);
        assert_int_equal(mkdir(dir, 0755), 0);
        if (synth_idx(dir, "", sizes[i], sizes[i] / 6 + 1, 28, 28, 0, 10, 7 + i) != 0)
            fail_msg("%s", eg_last_error());
        eg_job job;
        eg_job_defaults("rotation", &job);
        snprintf(job.dataset.name, sizeof job.dataset.name, "idx");
        snprintf(job.dataset.path, sizeof job.dataset.path, "%s", dir);
        job.batch_size = 32;
        job.steps = 3;
        eg_task *t;
        if (eg_task_create(&job, be, &t) != 0) fail_msg("%d: %s", sizes[i], eg_last_error());
        long train = lround(sizes[i] * 2.0 / 3.0);
        assert_int_equal(t->steps_per_epoch, (train + 31) / 32);
        eg_loop_config cfg = eg_task_loop_config(&job, t);
        eg_loop_result res;
        if (eg_loop_run(t, &cfg, NULL, &res) != 0) fail_msg("%d: %s", sizes[i], eg_last_error());
        assert_int_equal(res.steps, 3);
        assert_true(res.last_eval.test_acc >= 0 && res.last_eval.test_acc <= 100);
        eg_task_destroy(t);
        fprintf(stderr, "rotation on %d images: %ld training steps per epoch\n", sizes[i],
                (train + 31) / 32);

        /* Ranges: 100 samples to train on from 10, the validation set at the
         * end; then a range past the data. */
        job.dataset.train = (eg_split){.begin = 10, .end = 10 + sizes[i] / 2};
        job.dataset.validation = (eg_split){.begin = sizes[i] - 30, .end = sizes[i]};
        if (eg_task_create(&job, be, &t) != 0) fail_msg("%d: %s", sizes[i], eg_last_error());
        assert_int_equal(t->steps_per_epoch, (sizes[i] / 2 + 31) / 32);
        eg_task_destroy(t);
        job.dataset.validation = (eg_split){.begin = sizes[i] - 30, .end = sizes[i] + 1};
        tu_fails_with(eg_task_create(&job, be, &t), "dataset.splits.validation");

        /* mwn with a small clean meta set. */
        eg_job_defaults("mwn", &job);
        snprintf(job.model.name, sizeof job.model.name, "mlp");
        snprintf(job.dataset.name, sizeof job.dataset.name, "idx");
        snprintf(job.dataset.path, sizeof job.dataset.path, "%s", dir);
        EG_JOB_SECTION(&job, eg_mwn_spec)->meta_samples = 20;
        job.batch_size = 16;
        job.steps = 2;
        if (eg_task_create(&job, be, &t) != 0) fail_msg("mwn %d: %s", sizes[i], eg_last_error());
        cfg = eg_task_loop_config(&job, t);
        if (eg_loop_run(t, &cfg, NULL, &res) != 0) fail_msg("%d: %s", sizes[i], eg_last_error());
        eg_task_destroy(t);
        EG_JOB_SECTION(&job, eg_mwn_spec)->meta_samples = sizes[i];
        tu_fails_with(eg_task_create(&job, be, &t), "mwn.meta_samples");
    }
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mwn_hypergradient_fd),
        cmocka_unit_test(test_rotation_one_epoch),
        cmocka_unit_test(test_mwn_short_run),
        cmocka_unit_test(test_sets_of_any_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
