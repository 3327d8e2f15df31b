/* The paper's rotation experiment (Table 3): the base model trains on
 * images rotated by a meta-learned angle λ (radians, starting at 0); the
 * validation images are rotated by the true angle, so the hypergradient
 * pulls λ towards it. Training and validation are the dataset.splits of
 * the training file (by default its first 2/3 and its last 1/6: samples
 * 0-39999 and 50000-59999 of 60000, as the paper); the validation
 * samples are rotated by the true angle; test: the test file rotated by
 * the true angle.
 *
 * Images are rotated in pixel space (background 0) and then normalised
 * with the training split's statistics, so λ's gradient passes through the
 * normalisation's scale. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "meta/spec.h"
#include "tasks/task_data.h"
#include "tasks/tasks.h"
#include "util/err.h"
#include "util/json_num.h"

/* The job's "rotation" section. */
typedef struct rotation_spec {
    double true_angle_deg; /* rotation of the validation and test sets */
} rotation_spec;

typedef struct rotation {
    eg_task base;
    eg_job job;
    eg_dataset train_all, test_all;  /* pixels in [0, 1] */
    eg_dataset train, val, test;     /* train: view, raw; val, test: rotated, normalised */
    float mean, std;
    eg_image_base b;                 /* the base model (b.m.batch: raw training images),
                                        the validation batch, the orders */
    float *input;                    /* (B, C, H, W) the training batch, rotated, normalised */
    float *dx;                       /* (B, C, H, W) ∂ℓ/∂input */
    float *shift;                    /* (1) -mean/std, device */
} rotation;

/* input = (rotate(raw, λ) - mean) / std, for the current training batch. */
static int prepare_input(rotation *r)
{
    eg_backend *be = r->base.be;
    eg_dev_batch *b = &r->b.m.batch;
    size_t n = (size_t)b->count * b->sample;
    EG_TRY(be->rotate_fwd(be, b->count, r->train.c, r->train.h, r->train.w, r->base.lambda, b->x,
                          r->input));
    EG_TRY(be->scale(be, n, 1.0f / r->std, r->input));
    return be->bias_add(be, 1, 1, (int)n, r->input, r->shift);
}

/* Forward of net at theta on x (count) in probe mode and mean loss. */
static int probe_loss(rotation *r, const float *theta, const float *x, const int32_t *y,
                      int count, double *loss)
{
    EG_TRY(eg_net_forward(&r->b.m.net, theta, r->b.m.state, x, count, EG_PROBE));
    return eg_xent_forward(&r->b.m.xe, eg_net_output(&r->b.m.net), y, count, loss);
}

static int next_batch(eg_task *t) { return eg_image_base_next(&((rotation *)t)->b); }

static int train_loss(eg_task *t, const float *theta, double *loss, float *dlambda)
{
    rotation *r = (rotation *)t;
    eg_backend *be = t->be;
    eg_dev_batch *b = &r->b.m.batch;
    EG_TRY(prepare_input(r));
    EG_TRY(probe_loss(r, theta, r->input, b->y, b->count, loss));
    if (!dlambda) return 0;
    EG_TRY(eg_xent_backward(&r->b.m.xe, b->y, NULL, 1.0f / b->count, b->count));
    EG_TRY(eg_net_backward(&r->b.m.net, theta, r->b.m.xe.dlogits, NULL, r->dx));
    EG_TRY(be->fill(be, 1, 0.0f, dlambda));
    EG_TRY(be->rotate_bwd(be, b->count, r->train.c, r->train.h, r->train.w, t->lambda, b->x,
                          r->dx, NULL, dlambda));
    return be->scale(be, 1, 1.0f / r->std, dlambda);
}

/* Gradient in θ of the mean loss on x at theta, into dtheta. */
static int loss_grad(rotation *r, const float *theta, const float *x, const int32_t *y,
                     int count, double *loss, float *dtheta)
{
    eg_backend *be = r->base.be;
    EG_TRY(probe_loss(r, theta, x, y, count, loss));
    EG_TRY(eg_xent_backward(&r->b.m.xe, y, NULL, 1.0f / count, count));
    EG_TRY(be->fill(be, r->base.P, 0.0f, dtheta));
    return eg_net_backward(&r->b.m.net, theta, r->b.m.xe.dlogits, dtheta, NULL);
}

static int train_grad(eg_task *t, const float *theta, double *loss, float *dtheta)
{
    rotation *r = (rotation *)t;
    EG_TRY(prepare_input(r));
    return loss_grad(r, theta, r->input, r->b.m.batch.y, r->b.m.batch.count, loss, dtheta);
}

static int val_grad(eg_task *t, const float *theta, double *loss, float *dtheta,
                    float *dlambda)
{
    rotation *r = (rotation *)t;
    return loss_grad(r, theta, r->b.valb.x, r->b.valb.y, r->b.valb.count, loss, dtheta);
}

static int base_step(eg_task *t, double *loss)
{
    rotation *r = (rotation *)t;
    EG_TRY(prepare_input(r));
    return eg_classifier_step(&r->b.m, r->input, r->b.m.batch.y, r->b.m.batch.count, loss);
}

static float base_lr(const eg_task *t) { return eg_optim_lr(&((const rotation *)t)->b.m.opt); }

static int angle_deg(eg_task *t, double *deg)
{
    float a;
    EG_TRY(t->be->download(t->be, &a, t->lambda, sizeof a));
    *deg = a * 180.0 / M_PI;
    return 0;
}

static int evaluate(eg_task *t, eg_eval *ev)
{
    rotation *r = (rotation *)t;
    EG_TRY(eg_image_base_evaluate(&r->b, &r->test, r->job.eval_limit, ev));
    return angle_deg(t, &ev->angle_deg);
}

static int report(eg_task *t, json_t *summary)
{
    rotation *r = (rotation *)t;
    double deg;
    EG_TRY(angle_deg(t, &deg));
    json_object_set_new(summary, "angle_deg", eg_json_f32((float)deg));
    json_object_set_new(summary, "true_angle_deg", json_real(EG_JOB_SECTION(&r->job, const rotation_spec)->true_angle_deg));
    return 0;
}

static int checkpoint_items(eg_task *t, eg_ckpt_list *l)
{
    return eg_image_base_checkpoint_items(t, &((rotation *)t)->b, l);
}

static int replay_view(eg_task *t, eg_replay_view *v)
{
    return eg_image_base_replay_view(&((rotation *)t)->b, v);
}

static void destroy(eg_task *t)
{
    rotation *r = (rotation *)t;
    eg_backend *be = t->be;
    eg_image_base_free(&r->b);
    if (be) {
        be->free(be, r->input);
        be->free(be, r->dx);
        be->free(be, r->shift);
        be->free(be, t->lambda);
    }
    eg_dataset_free(&r->val);
    eg_dataset_free(&r->test);
    eg_dataset_free(&r->train_all);
    eg_dataset_free(&r->test_all);
    free(r);
}

static const eg_task_ops rotation_ops = {
    .next_batch = next_batch,
    .train_loss = train_loss,
    .train_grad = train_grad,
    .val_grad = val_grad,
    .base_step = base_step,
    .base_lr = base_lr,
    .evaluate = evaluate,
    .report = report,
    .checkpoint_items = checkpoint_items,
    .replay_view = replay_view,
    .destroy = destroy,
};

/* *out = a new owning copy of src rotated by `degrees` and normalised. */
static int rotated_copy(eg_backend *be, const eg_dataset *src, double degrees, float mean,
                        float std, eg_dataset *out)
{
    size_t n = (size_t)src->n * src->c * src->h * src->w;
    *out = *src;
    out->owns = 1;
    out->x = malloc(n * sizeof(float));
    out->y = malloc((size_t)src->n * sizeof(int32_t));
    float *dev_x = eg_alloc_floats(be, n), *dev_y = eg_alloc_floats(be, n);
    float *angle = eg_alloc_floats(be, 1);
    float a = (float)(degrees * M_PI / 180.0);
    int rc = -1;
    if (out->x && out->y && dev_x && dev_y && angle &&
        be->upload(be, dev_x, src->x, n * sizeof(float)) == 0 &&
        be->upload(be, angle, &a, sizeof a) == 0 &&
        be->rotate_fwd(be, src->n, src->c, src->h, src->w, angle, dev_x, dev_y) == 0 &&
        be->download(be, out->x, dev_y, n * sizeof(float)) == 0) {
        for (size_t i = 0; i < (size_t)src->n; i++) out->y[i] = src->y[i];
        eg_dataset_normalize(out, &mean, &std);
        rc = 0;
    } else if (!eg_last_error()[0]) {
        eg_errorf("rotation: out of memory rotating %d images", src->n);
    }
    be->free(be, dev_x);
    be->free(be, dev_y);
    be->free(be, angle);
    if (rc) eg_dataset_free(out);
    return rc;
}

static int eg_rotation_create(const eg_job *job, eg_backend *be, eg_task **out)
{
    rotation *r = calloc(1, sizeof *r);
    if (!r) return eg_errorf("rotation: out of memory");
    eg_task *t = &r->base;
    *t = (eg_task){.ops = &rotation_ops, .be = be, .H = 1};
    r->job = *job;
    float mean[EG_MAX_CHANNELS], std[EG_MAX_CHANNELS];
    eg_clear_error();
    if (eg_task_open_data(job, &r->train_all, &r->test_all, mean, std) != 0) goto fail;
    if (r->train_all.c != 1) {
        eg_errorf("dataset.name: rotation needs one-channel images (an IDX set such as "
                  "fashion-mnist or mnist), not the %d channels of %s", r->train_all.c,
                  job->dataset.name);
        goto fail;
    }
    long range[2][2];
    if (eg_job_splits_resolve(job, r->train_all.n, range) != 0) goto fail;
    r->mean = mean[0];
    r->std = std[0] > 0 ? std[0] : 1.0f;
    eg_dataset val_raw;
    double deg = EG_JOB_SECTION(job, const rotation_spec)->true_angle_deg;
    int B = job->batch_size;
    if (eg_dataset_slice(&r->train_all, (int)range[0][0], (int)range[0][1], &r->train) != 0 ||
        eg_dataset_slice(&r->train_all, (int)range[1][0], (int)range[1][1], &val_raw) != 0 ||
        rotated_copy(be, &val_raw, deg, r->mean, r->std, &r->val) != 0 ||
        rotated_copy(be, &r->test_all, deg, r->mean, r->std, &r->test) != 0)
        goto fail;
    if (eg_image_base_init(&r->b, job, be, &r->train, &r->val, &job->optimizer, 1) != 0)
        goto fail;
    size_t nx = (size_t)B * r->train.h * r->train.w;
    float shift = -r->mean / r->std;
    r->input = eg_alloc_floats(be, nx);
    r->dx = eg_alloc_floats(be, nx);
    r->shift = eg_alloc_floats(be, 1);
    t->lambda = eg_alloc_floats(be, 1); /* the angle starts at 0 */
    if (!r->input || !r->dx || !r->shift || !t->lambda ||
        be->upload(be, r->shift, &shift, sizeof shift) != 0)
        goto fail;
    t->P = r->b.m.net.params.total;
    t->theta = r->b.m.theta;
    t->grad = r->b.m.dtheta;
    t->steps_per_epoch = eg_batcher_batches_per_epoch(&r->b.train_order);
    *out = t;
    return 0;
fail:
    if (!eg_last_error()[0]) eg_errorf("rotation: out of memory");
    destroy(t);
    return -1;
}

/* ---- the job's "rotation" section ---- */

_Static_assert(sizeof(rotation_spec) <= EG_JOB_SECTION_BYTES, "rotation section too big");

static void rotation_defaults(eg_job *j)
{
    j->optimizer = eg_optim_adam_defaults();
    j->meta_optimizer = eg_optim_adam_defaults();
    j->meta_optimizer.lr = 1e-2f;
    /* With 2 copies the angle's hypergradient is mostly noise while the
     * model is young, and about one run in four drifts into the mirrored
     * basin (-30° and beyond) and stays: 4 copies (3 noise directions
     * instead of 1) brought every one of 10 seeds to 22-37° (README, "The
     * rotation task"). */
    j->evograd.k = 4;
    j->epochs = 5;
    j->batch_size = 128;
    EG_JOB_SECTION(j, rotation_spec)->true_angle_deg = 30;
}

static int rotation_read(const eg_spec_scope *s, eg_job *j)
{
    return eg_spec_num(s, "true_angle_deg", -180, 180,
                       &EG_JOB_SECTION(j, rotation_spec)->true_angle_deg);
}

static json_t *rotation_json(const eg_job *j)
{
    return json_pack("{s:f}", "true_angle_deg",
                     EG_JOB_SECTION(j, const rotation_spec)->true_angle_deg);
}

static const char *const rotation_keys[] = {"true_angle_deg", NULL};

const eg_task_def eg_rotation_def = {
    .name = "rotation",
    .flags = EG_TASKF_SPLITS,
    .section_keys = rotation_keys,
    .defaults = rotation_defaults,
    .read = rotation_read,
    .section_json = rotation_json,
    .create = eg_rotation_create,
};
