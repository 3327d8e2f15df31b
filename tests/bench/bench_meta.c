/* Benchmark of the meta-learning methods on the CPU: Meta-Weight-Net with
 * ResNet-32 at batch 100 (Fashion-MNIST, the dataset on every machine),
 * step time and peak engine memory of `none`, `evograd` (K = 2), `t1t2`
 * and a naive EvoGrad that stores its K copies, each on a fresh backend in
 * this one run, printed with their ratios to the plain step.
 *
 *   bench_meta [STEPS]   timed steps per method (default 4; env BENCH_STEPS)
 */
#include <stdio.h>
#include <stdlib.h>

#include "meta/loop.h"
#include "../unit/naive_evograd.h"
#include "tasks/tasks.h"
#include "util/err.h"

typedef enum { NONE, EVOGRAD, T1T2, NAIVE, N_VARIANTS } variant;
static const char *const names[] = {"none", "evograd", "t1t2", "naive-evograd"};

typedef struct result {
    double step_ms;
    size_t peak;
} result;

/* One step of a variant: batches, hypergradient and λ update, base step. */
static int step(variant v, eg_task *t, eg_meta *m, eg_optim *meta_opt, const eg_job *job,
                long i, float *host_hyper)
{
    double loss, vloss;
    EG_TRY(t->ops->next_batch(t));
    if (v == EVOGRAD || v == T1T2) {
        EG_TRY(eg_meta_hypergrad(m, t, i));
        EG_TRY(eg_optim_step(meta_opt, t->lambda, m->hyper));
    } else if (v == NAIVE) {
        EG_TRY(naive_evograd(t, &job->evograd, job->seed, i, host_hyper, &vloss));
        EG_TRY(t->be->upload(t->be, m->hyper, host_hyper, t->H * sizeof(float)));
        EG_TRY(eg_optim_step(meta_opt, t->lambda, m->hyper));
    }
    return t->ops->base_step(t, &loss);
}

static int measure(variant v, const eg_job *job, int steps, result *out)
{
    eg_backend *be = eg_cpu_backend_create();
    if (!be) return -1;
    eg_task *t = NULL;
    eg_meta m = {0};
    eg_optim meta_opt = {0};
    float *host_hyper = NULL;
    int rc = -1;
    eg_method method = v == NONE ? EG_METHOD_NONE : v == T1T2 ? EG_METHOD_T1T2 : EG_METHOD_EVOGRAD;
    if (eg_task_create(job, be, &t) != 0) goto out;
    /* The naive variant uses only the workspace's hypergradient vector. */
    if (eg_meta_init(&m, t, method, &job->evograd, job->seed) != 0) goto out;
    if (v == NAIVE) {
        be->free(be, m.buf);
        m.buf = NULL;
    }
    if (v != NONE && eg_optim_init(&meta_opt, be, t->H, &job->meta_optimizer) != 0) goto out;
    if (!(host_hyper = malloc(t->H * sizeof(float)))) goto out;
    if (step(v, t, &m, &meta_opt, job, 0, host_hyper) != 0) goto out; /* warm-up */
    double t0 = eg_now_ms();
    for (int i = 1; i <= steps; i++)
        if (step(v, t, &m, &meta_opt, job, i, host_hyper) != 0) goto out;
    out->step_ms = (eg_now_ms() - t0) / steps;
    out->peak = be->peak_bytes;
    rc = 0;
out:
    free(host_hyper);
    eg_optim_free(&meta_opt);
    eg_meta_free(&m);
    eg_task_destroy(t);
    be->destroy(be);
    return rc;
}

int main(int argc, char **argv)
{
    const char *env = getenv("BENCH_STEPS");
    int steps = argc > 1 ? atoi(argv[1]) : env ? atoi(env) : 4;
    if (steps < 1) steps = 1;
    eg_job job;
    eg_job_defaults(EG_TASK_MWN, &job);
    job.steps = 1000; /* sets the learning-rate schedule; only a few run */
    result r[N_VARIANTS];
    printf("Meta-Weight-Net, ResNet-32 width 1, batch 100, Fashion-MNIST 1x28x28, CPU, "
           "%d timed steps each\n", steps);
    printf("%-14s %10s %12s %10s %10s\n", "method", "step ms", "peak MB", "time x", "memory x");
    for (int v = 0; v < N_VARIANTS; v++) {
        if (measure((variant)v, &job, steps, &r[v]) != 0) {
            fprintf(stderr, "bench_meta: %s: %s\n", names[v], eg_last_error());
            return 1;
        }
        printf("%-14s %10.1f %12.1f %10.2f %10.3f\n", names[v], r[v].step_ms, r[v].peak / 1e6,
               r[v].step_ms / r[NONE].step_ms, (double)r[v].peak / r[NONE].peak);
        fflush(stdout);
    }
    double tx = r[EVOGRAD].step_ms / r[NONE].step_ms;
    double mx = (double)r[EVOGRAD].peak / r[NONE].peak;
    printf("evograd vs plain step: time %.2fx (goal <= 2.5x: %s), peak memory %.3fx "
           "(goal <= 1.1x: %s)\n", tx, tx <= 2.5 ? "met" : "not met", mx,
           mx <= 1.1 ? "met" : "not met");
    printf("evograd vs naive K-copy evograd: time %.2fx, peak memory %.3fx\n",
           r[EVOGRAD].step_ms / r[NAIVE].step_ms, (double)r[EVOGRAD].peak / r[NAIVE].peak);
    return 0;
}
