/* CPU benchmark of the engine's training step, the counterpart of
 * tests/bench/bench_torch.py: both time the same workloads with the same
 * thread count and print one JSON line per workload.
 *
 *   bench_cpu [WORKLOAD...]   lenet_b128, resnet32_b100 (default: both)
 *
 * A training step is: zero dθ, forward in training mode, mean softmax
 * cross-entropy, backward, optimiser step. Every step trains on the same
 * random batch; loss_first (first warm-up step) and loss_last (last timed
 * step) show that training moves, and a non-finite loss fails the run.
 *
 * Environment: BENCH_THREADS (default: the CPUs this process may run on)
 * sets the OpenMP and OpenBLAS thread counts; BENCH_STEPS_SCALE (default 1)
 * scales the number of timed steps. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/loss.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/rng.h"
#include "util/clock.h"
#include "util/err.h"

#define WARMUP_STEPS 3

/* One benchmarked workload: model, input shape, batch, optimiser. */
typedef struct workload {
    const char *name;
    const char *model;
    int c, h, w, classes, batch;
    int steps;          /* timed steps at BENCH_STEPS_SCALE = 1 */
    eg_optim_config opt;
} workload;

/* Everything one run of a workload holds; every buffer is on the backend
 * so its peak_bytes counts parameters, gradients, moments and data. */
typedef struct bench {
    eg_backend *be;
    eg_net net;
    eg_xent xe;
    eg_optim opt;
    float *theta, *dtheta, *state; // (P), (P), (S)
    float *x;                      // (batch, c, h, w)
    int32_t *labels;               // (batch)
    int batch;
} bench;

/* Reads a "Name:  N kB" line of /proc/self/status in bytes; 0 if absent. */
static size_t proc_status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0, len = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, len) == 0 && line[len] == ':') {
            kb = strtoull(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb * 1024;
}

/* Resets the process's peak resident set (VmHWM) to its current size. */
static void reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v (n >= 1), sorted ascending. */
static double sorted_median(const double *v, int n)
{
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static workload make_lenet(void)
{
    workload wl = {.name = "lenet_b128", .model = "lenet", .c = 1, .h = 28, .w = 28,
                   .classes = 10, .batch = 128, .steps = 30};
    wl.opt = eg_optim_adam_defaults();
    wl.opt.lr = 1e-3f;
    return wl;
}

static workload make_resnet32(void)
{
    workload wl = {.name = "resnet32_b100", .model = "resnet32", .c = 3, .h = 32,
                   .w = 32, .classes = 10, .batch = 100, .steps = 8};
    wl.opt = eg_optim_sgd_defaults(0.1f);
    wl.opt.momentum = 0.9f;
    wl.opt.nesterov = 1;
    wl.opt.weight_decay = 5e-4f;
    return wl;
}

/* Builds the model, its buffers and a random batch (uniform inputs in
 * [-1, 1), uniform labels) on the CPU backend. */
static int bench_setup(bench *b, const workload *wl)
{
    memset(b, 0, sizeof *b);
    b->batch = wl->batch;
    b->be = eg_cpu_backend_create();
    if (!b->be) return -1;
    eg_backend *be = b->be;
    EG_TRY(eg_model_build(&b->net, be, wl->model, 1, wl->c, wl->h, wl->w, wl->classes));
    EG_TRY(eg_net_finish(&b->net, wl->batch, 0));
    size_t P = b->net.params.total, S = b->net.state.total;
    size_t nx = (size_t)wl->batch * wl->c * wl->h * wl->w;
    b->theta = eg_alloc_floats(be, P);
    b->dtheta = eg_alloc_floats(be, P);
    b->state = eg_alloc_floats(be, S ? S : 1);
    b->x = eg_alloc_floats(be, nx);
    b->labels = be->alloc(be, (size_t)wl->batch * sizeof(int32_t));
    if (!b->theta || !b->dtheta || !b->state || !b->x || !b->labels) return -1;
    /* On the CPU backend device memory is host memory. */
    eg_net_init_params(&b->net, b->theta, b->state, 1);
    eg_rng r;
    eg_rng_seed(&r, 2, 0);
    for (size_t i = 0; i < nx; i++) b->x[i] = 2.0f * eg_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < wl->batch; i++)
        b->labels[i] = (int32_t)eg_rng_below(&r, wl->classes);
    EG_TRY(eg_xent_init(&b->xe, be, wl->batch, wl->classes));
    EG_TRY(eg_optim_init(&b->opt, be, P, &wl->opt));
    return 0;
}

static void bench_free(bench *b)
{
    if (!b->be) return;
    eg_optim_free(&b->opt);
    eg_xent_free(&b->xe);
    b->be->free(b->be, b->theta);
    b->be->free(b->be, b->dtheta);
    b->be->free(b->be, b->state);
    b->be->free(b->be, b->x);
    b->be->free(b->be, b->labels);
    eg_net_free(&b->net);
    b->be->destroy(b->be);
    b->be = NULL;
}

/* One training step; *loss receives the mean loss before the update. */
static int train_step(bench *b, double *loss)
{
    eg_backend *be = b->be;
    EG_TRY(be->fill(be, b->net.params.total, 0.0f, b->dtheta));
    EG_TRY(eg_net_forward(&b->net, b->theta, b->state, b->x, b->batch, EG_TRAIN));
    EG_TRY(eg_xent_forward(&b->xe, eg_net_output(&b->net), b->labels, b->batch, loss));
    EG_TRY(eg_xent_backward(&b->xe, b->labels, NULL, 1.0f / b->batch, b->batch));
    EG_TRY(eg_net_backward(&b->net, b->theta, b->xe.dlogits, b->dtheta, NULL));
    EG_TRY(eg_optim_step(&b->opt, b->theta, b->dtheta));
    return be->sync(be);
}

/* Warms up, times `steps` steps and prints the workload's JSON line. */
static int run_workload(const workload *wl, int threads, double scale)
{
    int steps = (int)lround(wl->steps * scale);
    if (steps < 1) steps = 1;
    size_t rss0 = proc_status_bytes("VmRSS");
    reset_peak_rss();
    bench b = {0};
    double *ms = malloc((size_t)steps * sizeof(double));
    double loss_first = NAN, loss_last = NAN, loss;
    int rc = ms ? bench_setup(&b, wl) : eg_errorf("out of memory");
    for (int i = 0; rc == 0 && i < WARMUP_STEPS; i++) {
        rc = train_step(&b, &loss);
        if (i == 0) loss_first = loss;
    }
    for (int i = 0; rc == 0 && i < steps; i++) {
        double t0 = eg_now_ms();
        rc = train_step(&b, &loss);
        ms[i] = eg_now_ms() - t0;
        loss_last = loss;
    }
    if (rc == 0 && !(isfinite(loss_first) && isfinite(loss_last)))
        rc = eg_errorf("%s: the loss is not finite (%g -> %g)", wl->name, loss_first,
                       loss_last);
    if (rc == 0) {
        size_t hwm = proc_status_bytes("VmHWM");
        qsort(ms, steps, sizeof(double), cmp_double);
        double median = sorted_median(ms, steps);
        printf("{\"impl\":\"evograd\",\"workload\":\"%s\",\"threads\":%d,\"steps\":%d,"
               "\"median_ms\":%.3f,\"min_ms\":%.3f,\"peak_bytes\":%zu,"
               "\"rss_delta_bytes\":%zu,\"loss_first\":%.5f,\"loss_last\":%.5f}\n",
               wl->name, threads, steps, median, ms[0], b.be->peak_bytes,
               hwm > rss0 ? hwm - rss0 : 0, loss_first, loss_last);
        fflush(stdout);
    } else {
        fprintf(stderr, "bench_cpu: %s: %s\n", wl->name, eg_last_error());
    }
    bench_free(&b);
    free(ms);
    return rc;
}

/* CPUs this process may run on, as nproc counts them. */
static int allowed_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

int main(int argc, char **argv)
{
    const char *env = getenv("BENCH_THREADS");
    int threads = env && *env ? atoi(env) : allowed_cpus();
    if (threads < 1) threads = 1;
    env = getenv("BENCH_STEPS_SCALE");
    double scale = env && *env ? atof(env) : 1.0;
    if (!(scale > 0)) scale = 1.0;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);

    workload all[] = {make_lenet(), make_resnet32()};
    int n_all = (int)(sizeof all / sizeof all[0]);
    int failed = 0;
    for (int i = 0; i < n_all; i++) {
        int chosen = argc < 2;
        for (int a = 1; a < argc; a++) chosen |= strcmp(argv[a], all[i].name) == 0;
        if (chosen) failed |= run_workload(&all[i], threads, scale) != 0;
    }
    for (int a = 1; a < argc; a++) {
        int known = 0;
        for (int i = 0; i < n_all; i++) known |= strcmp(argv[a], all[i].name) == 0;
        if (!known) {
            fprintf(stderr, "bench_cpu: unknown workload \"%s\" (lenet_b128, "
                            "resnet32_b100)\n", argv[a]);
            failed = 1;
        }
    }
    return failed ? 1 : 0;
}
