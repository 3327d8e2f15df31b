/* Benchmark of the lft task (the EvoGrad paper's Figure 4): time and peak
 * engine memory per meta-training episode of none / evograd (K = 2) /
 * t1t2 with an ImageNet-style ResNet-10 or ResNet-34 backbone and the
 * RelationNet head, 5-way 5-shot 16 queries, each on a fresh backend in
 * this one run. The episodes come from synthetic CIFAR-10 images (3
 * channels) upscaled to the job's size; the time of drawing and
 * augmenting an episode is left out (PyTorch's side feeds random
 * tensors). One JSON line per configuration, the format of
 * tests/bench/bench_torch_lft.py, which tests/bench/lft.sh runs beside it.
 *
 *   bench_lft [--device D] [--size PX] [--episodes N] [--backbone B,...]
 *             [--method M,...]      (defaults: cpu, 84, 2, resnet10,resnet34,
 *                                    none,evograd,t1t2)
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../unit/synth_data.h"
#include "meta/loop.h"
#include "nn/device.h"
#include "tasks/lft.h"
#include "tasks/tasks.h"
#include "util/clock.h"
#include "util/err.h"

/* One episode of the job's method: the batches (untimed), the base step
 * and the meta-gradient with λ's step; *ms the time of the latter two. */
static int episode(eg_task *t, eg_meta *m, eg_optim *meta_opt, eg_method method, long i,
                   double *ms)
{
    double loss;
    EG_TRY(t->ops->next_batch(t));
    EG_TRY(t->be->sync(t->be));
    double t0 = eg_now_ms();
    EG_TRY(t->ops->base_step(t, &loss));
    if (method != EG_METHOD_NONE) {
        EG_TRY(eg_meta_hypergrad(m, t, i));
        EG_TRY(eg_optim_step(meta_opt, t->lambda, m->hyper));
    }
    EG_TRY(t->be->sync(t->be));
    *ms = eg_now_ms() - t0;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Measures one configuration and prints its JSON line. */
static int measure(const eg_job *job, const char *backbone, const char *method_name,
                   int episodes)
{
    eg_backend *be = eg_device_open(job->device, NULL, NULL, 0);
    if (!be) return -1;
    eg_task *t = NULL;
    eg_meta m = {0};
    eg_optim meta_opt = {0};
    double *ms = calloc((size_t)episodes, sizeof(double));
    int rc = -1;
    if (!ms || eg_task_create(job, be, &t) != 0 ||
        eg_meta_init(&m, t, job->method, &job->evograd, job->seed) != 0 ||
        (job->method != EG_METHOD_NONE &&
         eg_optim_init(&meta_opt, be, t->H, &job->meta_optimizer) != 0))
        goto out;
    double warm;
    if (episode(t, &m, &meta_opt, job->method, 0, &warm) != 0) goto out;
    for (int i = 0; i < episodes; i++)
        if (episode(t, &m, &meta_opt, job->method, i + 1, &ms[i]) != 0) goto out;
    double sum = 0;
    for (int i = 0; i < episodes; i++) sum += ms[i];
    qsort(ms, (size_t)episodes, sizeof *ms, cmp_double);
    const eg_lft_spec *s = EG_JOB_SECTION(job, const eg_lft_spec);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:f, s:f, s:I, s:f, s:I, s:I}",
                          "impl", "evograd", "backbone", backbone, "method", method_name,
                          "device", job->device, "size", s->image_size, "episodes", episodes,
                          "median_ms", ms[episodes / 2], "min_ms", ms[0], "mean_ms",
                          sum / episodes, "peak_bytes", (json_int_t)be->peak_bytes, "peak_mib",
                          be->peak_bytes / 1048576.0, "params", (json_int_t)t->P, "meta_params",
                          (json_int_t)t->H);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text) printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(o);
    rc = 0;
out:
    free(ms);
    eg_optim_free(&meta_opt);
    eg_meta_free(&m);
    eg_task_destroy(t);
    be->destroy(be);
    return rc;
}

int main(int argc, char **argv)
{
    const char *device = "cpu", *backbones = "resnet10,resnet34", *methods = "none,evograd,t1t2";
    int size = 84, episodes = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--device") == 0) device = argv[i + 1];
        else if (strcmp(argv[i], "--size") == 0) size = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--episodes") == 0) episodes = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--backbone") == 0) backbones = argv[i + 1];
        else if (strcmp(argv[i], "--method") == 0) methods = argv[i + 1];
        else {
            fprintf(stderr, "bench_lft: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (episodes < 1 || size < 8) {
        fprintf(stderr, "bench_lft: --episodes must be >= 1 and --size >= 8\n");
        return 2;
    }
    char dir[] = "/tmp/evograd-bench-lft-XXXXXX";
    if (!mkdtemp(dir) || synth_cifar10(dir, 100, 10, 1) != 0) {
        fprintf(stderr, "bench_lft: cannot write the synthetic images: %s\n", eg_last_error());
        return 1;
    }
    char bb[128], me[128];
    snprintf(bb, sizeof bb, "%s", backbones);
    for (char *b = strtok(bb, ","); b; b = strtok(NULL, ",")) {
        char *save;
        snprintf(me, sizeof me, "%s", methods);
        for (char *mname = strtok_r(me, ",", &save); mname; mname = strtok_r(NULL, ",", &save)) {
            char spec[2048];
            snprintf(spec, sizeof spec,
                     "{\"task\": \"lft\", \"method\": \"%s\", \"device\": \"%s\", \"steps\": 100, "
                     "\"lft\": {\"backbone\": \"%s\", \"image_size\": %d, "
                     "\"seen\": [{\"dataset\": \"cifar10\", \"path\": \"%s\"}, "
                     "{\"dataset\": \"cifar10\", \"path\": \"%s\", \"style\": \"inverted\"}], "
                     "\"unseen\": {\"dataset\": \"cifar10\", \"path\": \"%s\", "
                     "\"style\": \"edges\"}}}",
                     mname, device, b, size, dir, dir, dir);
            eg_job job;
            if (eg_job_parse(spec, strlen(spec), &job) != 0 ||
                measure(&job, b, mname, episodes) != 0) {
                fprintf(stderr, "bench_lft: %s %s: %s\n", b, mname, eg_last_error());
                return 1;
            }
        }
    }
    return 0;
}
