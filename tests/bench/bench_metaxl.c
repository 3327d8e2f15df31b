/* Benchmark of the metaxl task (the EvoGrad paper's Figure 7): step time
 * and peak engine memory of joint training (none), EvoGrad (K = 2, the
 * classifier perturbed, the encoder's outputs shared by the copies) and
 * T1−T2, each on a fresh backend, with a from-scratch encoder on the
 * synthetic languages: batches of 12 source and 12 target sentences (the
 * target split 6 / 6), padded to their longest sentence, at most --len
 * tokens. One JSON line per method, the format of
 * tests/bench/bench_torch_metaxl.py (tests/bench/metaxl.sh runs both).
 *
 *   bench_metaxl [--device D] [--d N] [--layers N] [--heads N] [--ff N]
 *                [--bottleneck N] [--len N] [--steps N] [--method M,...]
 *   (defaults: cpu, 256, 4, 4, 1024, 128, 32, 3, none,evograd,t1t2)
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/loop.h"
#include "nn/device.h"
#include "tasks/tasks.h"
#include "util/clock.h"
#include "util/err.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int measure(const eg_job *job, const char *method, int steps, int len)
{
    eg_backend *be = eg_device_open(job->device, NULL, NULL, 0);
    if (!be) return -1;
    eg_task *t = NULL;
    eg_run run = {0};
    int inited = 0, rc = -1;
    double *ms = calloc((size_t)steps, sizeof *ms);
    if (!ms || eg_task_create(job, be, &t) != 0) goto out;
    eg_loop_config cfg = eg_task_loop_config(job, t);
    if (eg_run_init(&run, t, &cfg) != 0) goto out;
    inited = 1;
    eg_step_record r;
    if (eg_run_step(&run, &r) != 0) goto out; /* warm-up */
    double sum = 0;
    for (int i = 0; i < steps; i++) {
        if (be->sync(be) != 0) goto out;
        double t0 = eg_now_ms();
        if (eg_run_step(&run, &r) != 0 || be->sync(be) != 0) goto out;
        sum += ms[i] = eg_now_ms() - t0;
    }
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:f, s:f, s:I, s:I, s:I}", "impl", "evograd",
                          "method", method, "device", job->device, "batch", job->batch_size,
                          "len", len, "median_ms", ms[steps / 2], "mean_ms", sum / steps,
                          "peak_bytes", (json_int_t)be->peak_bytes, "params", (json_int_t)t->P,
                          "rtn_params", (json_int_t)t->H);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text) printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(o);
    rc = 0;
out:
    if (rc) fprintf(stderr, "bench_metaxl: %s: %s\n", method, eg_last_error());
    if (inited) eg_run_free(&run);
    eg_task_destroy(t);
    free(ms);
    be->destroy(be);
    return rc;
}

int main(int argc, char **argv)
{
    const char *device = "cpu", *methods = "none,evograd,t1t2";
    int d = 256, layers = 4, heads = 4, ff = 1024, bottleneck = 128, len = 32, steps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        int *v = strcmp(argv[i], "--d") == 0            ? &d
                 : strcmp(argv[i], "--layers") == 0     ? &layers
                 : strcmp(argv[i], "--heads") == 0      ? &heads
                 : strcmp(argv[i], "--ff") == 0         ? &ff
                 : strcmp(argv[i], "--bottleneck") == 0 ? &bottleneck
                 : strcmp(argv[i], "--len") == 0        ? &len
                 : strcmp(argv[i], "--steps") == 0      ? &steps
                                                        : NULL;
        if (strcmp(argv[i], "--device") == 0) device = argv[i + 1];
        else if (strcmp(argv[i], "--method") == 0) methods = argv[i + 1];
        else if (v) *v = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_metaxl: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1) steps = 1;
    char list[128];
    snprintf(list, sizeof list, "%s", methods);
    for (char *m = strtok(list, ","); m; m = strtok(NULL, ",")) {
        char spec[2048];
        snprintf(spec, sizeof spec,
                 "{\"task\": \"metaxl\", \"method\": \"%s\", \"device\": \"%s\", \"steps\": 1000, "
                 "\"batch_size\": 12, \"optimizer\": {\"kind\": \"adam\", \"lr\": 3e-5}, "
                 "\"evograd\": {\"k\": 2, \"perturb\": \"classifier\"}, "
                 "\"metaxl\": {\"source_size\": 600, \"target_size\": 100, \"eval_size\": 10, "
                 "\"d\": %d, \"layers\": %d, \"heads\": %d, \"ff\": %d, \"bottleneck\": %d, "
                 "\"max_len\": %d}}",
                 m, device, d, layers, heads, ff, bottleneck, len);
        eg_job job;
        if (eg_job_parse(spec, strlen(spec), &job) != 0) {
            fprintf(stderr, "bench_metaxl: %s\n", eg_last_error());
            return 1;
        }
        if (measure(&job, m, steps, len) != 0) return 1;
    }
    return 0;
}
