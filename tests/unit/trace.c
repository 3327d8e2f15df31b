#include "trace.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/loop.h"
#include "nn/device.h"
#include "tasks/task_data.h"
#include "tasks/tasks.h"
#include "util/err.h"

/* The trace's files, in the order of trace.h. */
enum {
    F_THETA, F_LAMBDA, F_LAMBDA_AFTER, F_HYPER, F_BASE_LR, F_VAL_LOSS, F_TRAIN_N, F_TRAIN_X,
    F_TRAIN_Y, F_VAL_N, F_VAL_X, F_VAL_Y, F_LOSSES, F_W, F_DL, F_NOISE, F_T1T2_LOSS, F_RECORD,
    F_RECORD_W, F_COUNT
};

typedef struct trace_file {
    const char *name, *type; /* type: f32, f64, i32, i8 */
    int evograd_only, t1t2_only;
} trace_file;

static const trace_file files[F_COUNT] = {
    [F_THETA] = {"theta", "f32"},          [F_LAMBDA] = {"lambda", "f32"},
    [F_LAMBDA_AFTER] = {"lambda_after", "f32"}, [F_HYPER] = {"hyper", "f32"},
    [F_BASE_LR] = {"base_lr", "f32"},      [F_VAL_LOSS] = {"val_loss", "f64"},
    [F_TRAIN_N] = {"train_n", "i32"},      [F_TRAIN_X] = {"train_x", "f32"},
    [F_TRAIN_Y] = {"train_y", "i32"},      [F_VAL_N] = {"val_n", "i32"},
    [F_VAL_X] = {"val_x", "f32"},          [F_VAL_Y] = {"val_y", "i32"},
    [F_LOSSES] = {"losses", "f64", 1},     [F_W] = {"w", "f64", 1},
    [F_DL] = {"dl", "f32", 1},             [F_NOISE] = {"noise", "i8", 1},
    [F_T1T2_LOSS] = {"t1t2_loss", "f64", 0, 1}, [F_RECORD] = {"record", "f64"},
    [F_RECORD_W] = {"record_w", "f64", 1},
};

/* The step record's figures in record.f64, in this order. */
enum { R_TRAIN_LOSS, R_META_LOSS, R_HYPER_NORM, R_LAMBDA_NORM, R_LAMBDA0, R_COUNT };

/* The run being traced; the wrapped train_loss reaches it through `active`
 * (one trace at a time). */
typedef struct tracer {
    eg_task *t;
    const eg_task_ops *inner;
    eg_task_ops ops;
    int k;              /* EvoGrad's copies, 0 for other methods */
    float *theta;       /* (P) host: θ at the start of the step */
    float *scratch;     /* (P) host */
    int8_t *noise;      /* (k, P) */
    int calls;          /* train_loss calls in this step */
    FILE *f[F_COUNT];
} tracer;

static tracer *active;

/* The task's train_loss, recording the sign of θ_k - θ for EvoGrad's
 * copies (its first k calls of a step). */
static int traced_train_loss(eg_task *t, const float *theta, double *loss, float *dlambda)
{
    tracer *tr = active;
    if (tr->k && tr->calls < tr->k) {
        EG_TRY(t->be->download(t->be, tr->scratch, theta, t->P * sizeof(float)));
        int8_t *r = tr->noise + (size_t)tr->calls * t->P;
        for (size_t i = 0; i < t->P; i++)
            r[i] = (int8_t)((tr->scratch[i] > tr->theta[i]) - (tr->scratch[i] < tr->theta[i]));
    }
    tr->calls++;
    return tr->inner->train_loss(t, theta, loss, dlambda);
}

static int put(tracer *tr, int file, const void *p, size_t bytes)
{
    if (fwrite(p, 1, bytes, tr->f[file]) != bytes)
        return eg_errorf("trace: writing %s failed", files[file].name);
    return 0;
}

static int put_device(tracer *tr, int file, const float *dev, size_t n)
{
    EG_TRY(tr->t->be->download(tr->t->be, tr->scratch, dev, n * sizeof(float)));
    return put(tr, file, tr->scratch, n * sizeof(float));
}

/* Writes the batch (n of idx from d) padded to B samples. */
static int put_batch(tracer *tr, int fn, int fx, int fy, const eg_dataset *d,
                     const uint32_t *idx, int n, int B)
{
    size_t sample = (size_t)d->c * d->h * d->w;
    float *x = calloc((size_t)B * sample, sizeof(float));
    int32_t *y = calloc((size_t)B, sizeof(int32_t));
    int rc = -1;
    if (!x || !y) {
        eg_errorf("trace: out of memory");
    } else {
        eg_dataset_gather(d, idx, n, x, y);
        int32_t n32 = n;
        rc = put(tr, fn, &n32, sizeof n32) || put(tr, fx, x, (size_t)B * sample * sizeof(float)) ||
             put(tr, fy, y, (size_t)B * sizeof(int32_t)) ? -1 : 0;
    }
    free(x);
    free(y);
    return rc;
}

/* meta.json: the job, the sizes, θ's layout, the data's normalisation and
 * each file's element type and row shape. */
static int write_meta(tracer *tr, const eg_job *job, const eg_replay_view *v, long steps,
                      const char *dir)
{
    eg_task *t = tr->t;
    const eg_dataset *d = v->train;
    int B = job->batch_size, k = tr->k;
    json_t *m = json_object();
    json_object_set_new(m, "job", eg_job_to_json(job));
    json_object_set_new(m, "steps", json_integer(steps));
    json_object_set_new(m, "P", json_integer((json_int_t)t->P));
    json_object_set_new(m, "H", json_integer((json_int_t)t->H));
    json_object_set_new(m, "K", json_integer(k));
    json_object_set_new(m, "B", json_integer(B));
    json_object_set_new(m, "sample", json_pack("[iii]", d->c, d->h, d->w));
    json_object_set_new(m, "classes", json_integer(d->classes));
    json_t *layout = json_array();
    for (int i = 0; i < v->net->params.n; i++)
        json_array_append_new(layout, json_pack("[sI]", v->net->params.slices[i].name,
                                                (json_int_t)v->net->params.slices[i].count));
    json_object_set_new(m, "layout", layout);
    /* The training split's statistics, as the image tasks normalise. */
    eg_dataset train, test;
    float mean[EG_MAX_CHANNELS], std[EG_MAX_CHANNELS];
    if (eg_task_open_data(job, &train, &test, mean, std) != 0) {
        json_decref(m);
        return -1;
    }
    eg_dataset_free(&train);
    eg_dataset_free(&test);
    json_t *jm = json_array(), *js = json_array();
    for (int c = 0; c < d->c; c++) {
        json_array_append_new(jm, json_real(mean[c]));
        json_array_append_new(js, json_real(std[c]));
    }
    json_object_set_new(m, "mean", jm);
    json_object_set_new(m, "std", js);
    size_t P = t->P, H = t->H;
    json_int_t shapes[F_COUNT][3] = {
        [F_THETA] = {(json_int_t)P}, [F_LAMBDA] = {(json_int_t)H},
        [F_LAMBDA_AFTER] = {(json_int_t)H}, [F_HYPER] = {(json_int_t)H}, [F_BASE_LR] = {1},
        [F_VAL_LOSS] = {1}, [F_TRAIN_N] = {1}, [F_TRAIN_Y] = {B}, [F_VAL_N] = {1},
        [F_VAL_Y] = {B}, [F_LOSSES] = {k}, [F_W] = {k}, [F_DL] = {k, (json_int_t)H},
        [F_NOISE] = {k, (json_int_t)P}, [F_T1T2_LOSS] = {1}, [F_RECORD] = {R_COUNT},
        [F_RECORD_W] = {k},
    };
    json_t *jf = json_object();
    for (int i = 0; i < F_COUNT; i++) {
        if (!tr->f[i]) continue;
        json_t *shape = json_array();
        if (i == F_TRAIN_X || i == F_VAL_X) {
            json_t *s = json_pack("[iiii]", B, d->c, d->h, d->w);
            json_array_extend(shape, s);
            json_decref(s);
        } else {
            for (int j = 0; j < 3 && shapes[i][j]; j++)
                json_array_append_new(shape, json_integer(shapes[i][j]));
        }
        json_object_set_new(jf, files[i].name,
                            json_pack("{s:s,s:o}", "type", files[i].type, "shape", shape));
    }
    json_object_set_new(m, "files", jf);
    char path[4200];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    int rc = json_dump_file(m, path, JSON_INDENT(1) | JSON_REAL_PRECISION(9));
    json_decref(m);
    return rc ? eg_errorf("trace: cannot write %s", path) : 0;
}

/* One step: its inputs, the step, its outputs. */
static int trace_step(tracer *tr, eg_run *run, const eg_job *job)
{
    eg_task *t = tr->t;
    eg_backend *be = t->be;
    eg_meta *m = &run->meta;
    EG_TRY(be->download(be, tr->theta, t->theta, t->P * sizeof(float)));
    EG_TRY(put(tr, F_THETA, tr->theta, t->P * sizeof(float)));
    EG_TRY(put_device(tr, F_LAMBDA, t->lambda, t->H));
    float lr = t->ops->base_lr(t);
    EG_TRY(put(tr, F_BASE_LR, &lr, sizeof lr));
    tr->calls = 0;
    eg_step_record r;
    EG_TRY(eg_run_step(run, &r));
    eg_replay_view v;
    EG_TRY(t->ops->replay_view(t, &v));
    EG_TRY(put_batch(tr, F_TRAIN_N, F_TRAIN_X, F_TRAIN_Y, v.train, v.train_idx, v.n_train,
                     job->batch_size));
    EG_TRY(put_batch(tr, F_VAL_N, F_VAL_X, F_VAL_Y, v.val, v.val_idx, v.n_val, job->batch_size));
    EG_TRY(put_device(tr, F_LAMBDA_AFTER, t->lambda, t->H));
    EG_TRY(put_device(tr, F_HYPER, m->hyper, t->H));
    EG_TRY(put(tr, F_VAL_LOSS, &m->val_loss, sizeof(double)));
    double rec[R_COUNT] = {[R_TRAIN_LOSS] = r.train_loss, [R_META_LOSS] = r.meta_loss,
                           [R_HYPER_NORM] = r.hyper_norm, [R_LAMBDA_NORM] = r.lambda_norm,
                           [R_LAMBDA0] = r.lambda[0]};
    EG_TRY(put(tr, F_RECORD, rec, sizeof rec));
    if (tr->k) {
        if (r.k != tr->k) return eg_errorf("trace: the record holds %d weights, not %d", r.k,
                                           tr->k);
        EG_TRY(put(tr, F_RECORD_W, r.w, (size_t)tr->k * sizeof(double)));
        if (tr->calls < tr->k) return eg_errorf("trace: %d copies evaluated, not %d", tr->calls,
                                                tr->k);
        EG_TRY(put(tr, F_LOSSES, m->losses, (size_t)tr->k * sizeof(double)));
        EG_TRY(put(tr, F_W, m->w, (size_t)tr->k * sizeof(double)));
        EG_TRY(put_device(tr, F_DL, m->dl, (size_t)tr->k * t->H));
        EG_TRY(put(tr, F_NOISE, tr->noise, (size_t)tr->k * t->P));
    } else {
        EG_TRY(put(tr, F_T1T2_LOSS, &m->losses[0], sizeof(double)));
    }
    return 0;
}

int tr_trace_job(const eg_job *job, long steps, const char *dir)
{
    if (job->method == EG_METHOD_NONE) return eg_errorf("trace: method none has nothing to trace");
    if (job->method == EG_METHOD_EVOGRAD && job->evograd.k > EG_RECORD_MAX_K)
        return eg_errorf("trace: at most %d copies, as a step record holds", EG_RECORD_MAX_K);
    eg_backend *be = eg_device_open("cpu", &(eg_device_options){0}, NULL, 0);
    if (!be) return -1;
    tracer tr = {.k = job->method == EG_METHOD_EVOGRAD ? job->evograd.k : 0};
    eg_run run = {0};
    int rc = -1, run_ready = 0;
    if (eg_task_create(job, be, &tr.t) != 0) goto out;
    if (!tr.t->ops->replay_view) {
        eg_errorf("trace: task %s has no replay view", job->task->name);
        goto out;
    }
    tr.inner = tr.t->ops;
    tr.ops = *tr.inner;
    tr.ops.train_loss = traced_train_loss;
    tr.t->ops = &tr.ops;
    active = &tr;
    size_t P = tr.t->P;
    tr.theta = malloc(P * sizeof(float));
    tr.scratch = malloc((P > (size_t)tr.k * tr.t->H ? P : (size_t)tr.k * tr.t->H) * sizeof(float));
    tr.noise = malloc((size_t)(tr.k ? tr.k : 1) * P);
    if (!tr.theta || !tr.scratch || !tr.noise) {
        eg_errorf("trace: out of memory");
        goto out;
    }
    for (int i = 0; i < F_COUNT; i++) {
        if ((files[i].evograd_only && !tr.k) || (files[i].t1t2_only && tr.k)) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.%s", dir, files[i].name, files[i].type);
        if (!(tr.f[i] = fopen(path, "wb"))) {
            eg_errorf("trace: cannot create %s", path);
            goto out;
        }
    }
    eg_loop_config cfg = eg_task_loop_config(job, tr.t);
    if (eg_run_init(&run, tr.t, &cfg) != 0) goto out;
    run_ready = 1;
    for (long s = 0; s < steps; s++)
        if (trace_step(&tr, &run, job) != 0) goto out;
    eg_replay_view v;
    if (tr.t->ops->replay_view(tr.t, &v) != 0 || write_meta(&tr, job, &v, steps, dir) != 0)
        goto out;
    rc = 0;
out:
    for (int i = 0; i < F_COUNT; i++)
        if (tr.f[i] && fclose(tr.f[i]) != 0 && rc == 0)
            rc = eg_errorf("trace: writing %s failed", files[i].name);
    if (run_ready) eg_run_free(&run);
    if (tr.t) {
        tr.t->ops = tr.inner;
        eg_task_destroy(tr.t);
    }
    active = NULL;
    free(tr.theta);
    free(tr.scratch);
    free(tr.noise);
    be->destroy(be);
    return rc;
}
