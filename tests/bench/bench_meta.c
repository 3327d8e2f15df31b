/* Benchmark of the meta-learning methods: Meta-Weight-Net with ResNet-32
 * at batch 100, step time and peak engine memory of `none`, `evograd`
 * (K = 2) and `t1t2`, each on a fresh backend in this one run, printed
 * with their ratios to the plain step.
 *
 *   bench_meta [STEPS]                 CPU: width 1 on Fashion-MNIST 1x28x28,
 *                                      plus a naive EvoGrad that stores its K
 *                                      copies (default 4 steps; env BENCH_STEPS)
 *   bench_meta --gpu [STEPS]           GPU cuda:0: widths 1, 2 and 4 on
 *                                      synthetic CIFAR-10 3x32x32, TF32 on
 *                                      and any cuDNN algorithm (as PyTorch),
 *                                      and EvoGrad once more without CUDA
 *                                      graphs (row "eager"),
 *                                      beside PyTorch's figures on an H200
 *                                      (torch_ref below; default 50 steps)
 *   bench_meta --widths DEVICE [STEPS] the same table on any device, nets
 *                                      recomputing as on the GPU (on the CPU
 *                                      its memory column is what the GPU's
 *                                      would be, less cuDNN's workspace)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/loop.h"
#include "../unit/naive_evograd.h"
#include "../unit/synth_data.h"
#include "nn/device.h"
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

/* GPU options of the backends measure() opens, and whether their nets
 * recompute activations whatever the backend's default. */
static eg_device_options bench_opt = {.tf32 = 1, .nondeterministic = 1};
static int bench_recompute;

static int measure(variant v, const eg_job *job, int steps, result *out)
{
    eg_backend *be = eg_device_open(job->device, &bench_opt, NULL, 0);
    if (!be) return -1;
    if (bench_recompute) be->recompute = 1;
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
    /* Warm-up: first-use costs (cuDNN algorithm searches, caches). */
    for (int i = 0; i < 3; i++)
        if (step(v, t, &m, &meta_opt, job, i, host_hyper) != 0) goto out;
    if (be->sync(be) != 0) goto out;
    double t0 = eg_now_ms();
    for (int i = 3; i < 3 + steps; i++)
        if (step(v, t, &m, &meta_opt, job, i, host_hyper) != 0) goto out;
    if (be->sync(be) != 0) goto out;
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

static int cpu_bench(int steps)
{
    eg_job job;
    eg_job_defaults("mwn", &job);
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

/* PyTorch 2.11 on an H200, official-code style, same model, batch and input:
 * eager step ms and peak MB of none / evograd / t1t2, and the EvoGrad step
 * under torch.compile (0 where not measured). */
static const struct {
    int width;
    double ms[3], mb[3], compiled_ms;
} torch_ref[] = {
    {1, {12.6, 60.3, 85.8}, {312, 320, 780}, 30.2},
    {2, {10.1, 50.2, 74.0}, {573, 601, 1533}, 0},
    {4, {11.2, 55.6, 97.3}, {1103, 1207, 3045}, 30.5},
};

/* The EvoGrad step of job issued op by op, printed beside the recorded
 * one: what recording the network passes as CUDA graphs saves. */
static int eager_row(const eg_job *job, int steps, int width, const result *graphs)
{
    result eager;
    bench_opt.no_graphs = 1;
    int rc = measure(EVOGRAD, job, steps, &eager);
    bench_opt.no_graphs = 0;
    if (rc) {
        fprintf(stderr, "bench_meta: width %d evograd without graphs: %s\n", width,
                eg_last_error());
        return 1;
    }
    printf("%-6d %-8s %9.2f %9.1f | graphs make the EvoGrad step %.2fx faster\n", width,
           "eager", eager.step_ms, eager.peak / 1048576.0, eager.step_ms / graphs->step_ms);
    return 0;
}

static int widths_bench(const char *device, int steps)
{
    char dir[] = "/tmp/evograd-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench_meta: mkdtemp");
        return 1;
    }
    /* 3000 training images: MWN holds 1000 out as its meta set; the timed
     * steps cycle through the rest. */
    if (synth_cifar10(dir, 600, 100, 1) != 0) {
        fprintf(stderr, "bench_meta: %s\n", eg_last_error());
        return 1;
    }
    eg_gpu_info info;
    int ordinal;
    if (eg_device_parse(device, &ordinal) != 0) {
        fprintf(stderr, "bench_meta: %s\n", eg_last_error());
        return 1;
    }
    if (ordinal < 0) snprintf(info.name, sizeof info.name, "%s", device);
    else if (eg_gpu_info_get(ordinal, &info) != 0) {
        fprintf(stderr, "bench_meta: %s\n", eg_last_error());
        return 1;
    }
    printf("Meta-Weight-Net, ResNet-32, batch 100, synthetic CIFAR-10 3x32x32, %s, TF32, "
           "%d timed steps each; PyTorch (eager) figures from an H200\n", info.name, steps);
    printf("%-6s %-8s %9s %9s | %9s %9s | %8s %7s\n", "width", "method", "step ms", "peak MB",
           "torch ms", "torch MB", "speedup", "mem x");
    int rc = 0;
    for (size_t w = 0; w < sizeof torch_ref / sizeof *torch_ref && rc == 0; w++) {
        eg_job job;
        eg_job_defaults("mwn", &job);
        job.steps = 1000;
        job.model.width = torch_ref[w].width;
        snprintf(job.dataset.name, sizeof job.dataset.name, "cifar10");
        snprintf(job.dataset.path, sizeof job.dataset.path, "%s", dir);
        snprintf(job.device, sizeof job.device, "%s", device);
        result r[3];
        for (int v = NONE; v <= T1T2; v++) {
            if (measure((variant)v, &job, steps, &r[v]) != 0) {
                fprintf(stderr, "bench_meta: width %d %s: %s\n", torch_ref[w].width, names[v],
                        eg_last_error());
                rc = 1;
                break;
            }
            printf("%-6d %-8s %9.2f %9.1f | %9.1f %9.0f | %8.2f %7.3f\n", torch_ref[w].width,
                   names[v], r[v].step_ms, r[v].peak / 1048576.0, torch_ref[w].ms[v],
                   torch_ref[w].mb[v], torch_ref[w].ms[v] / r[v].step_ms,
                   r[v].peak / 1048576.0 / torch_ref[w].mb[v]);
            fflush(stdout);
        }
        if (rc) break;
        if (ordinal >= 0 && (rc = eager_row(&job, steps, torch_ref[w].width, &r[EVOGRAD])))
            break;
        double goal = torch_ref[w].width == 1 ? 6.0 : torch_ref[w].width == 4 ? 18.0 : 0;
        if (goal > 0)
            printf("width %d: evograd %.2f ms (goal <= %.0f ms: %s; torch.compile %.1f ms), "
                   "peak %.3fx PyTorch's (goal <= 0.5x: %s)\n",
                   torch_ref[w].width, r[EVOGRAD].step_ms, goal,
                   r[EVOGRAD].step_ms <= goal ? "met" : "not met", torch_ref[w].compiled_ms,
                   r[EVOGRAD].peak / 1048576.0 / torch_ref[w].mb[EVOGRAD],
                   r[EVOGRAD].peak / 1048576.0 <= 0.5 * torch_ref[w].mb[EVOGRAD] ? "met"
                                                                                : "not met");
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_meta: could not remove %s\n", dir);
    return rc;
}

int main(int argc, char **argv)
{
    const char *device = NULL;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--gpu") == 0) {
        device = "cuda:0";
        first = 2;
        if (eg_gpu_count() == 0) {
            fprintf(stderr, "bench_meta --gpu: no usable GPU\n");
            return 2;
        }
    } else if (argc > 2 && strcmp(argv[1], "--widths") == 0) {
        device = argv[2];
        first = 3;
        bench_recompute = 1;
    }
    const char *arg = argc > first ? argv[first] : getenv("BENCH_STEPS");
    int steps = arg ? atoi(arg) : device ? 50 : 4;
    if (steps < 1) steps = 1;
    return device ? widths_bench(device, steps) : cpu_bench(steps);
}
