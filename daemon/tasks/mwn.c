/* Meta-Weight-Net (Shu et al. 2019) as in the paper's Table 5: a VNet
 * (1 -> hidden -> 1, sigmoid) maps each training sample's loss c_i to a
 * weight v_i, and the base model trains on Σ v_i c_i / Σ v_i. λ is the
 * VNet's parameters; the validation set is `meta_samples` clean samples
 * held out from the training split (balanced over classes), and label
 * noise (uniform or flip) is injected into the rest. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "meta/spec.h"
#include "nn/models.h"
#include "nn/rng.h"
#include "tasks/mwn.h"
#include "tasks/task_data.h"
#include "tasks/tasks.h"
#include "util/err.h"

/* Training samples the VNet weight diagnostic looks at, at most. */
#define PROBE_SAMPLES 5000

typedef struct mwn {
    eg_task base;
    eg_job job;
    eg_dataset all, test_all;   /* normalised; train/meta are copies */
    eg_dataset train, meta;     /* noisy training samples; clean meta samples */
    uint8_t *corrupted;         /* (train.n) 1 where noise changed the label */
    eg_image_base b;            /* the base model, the meta batch, the orders */
    eg_net vnet;                /* λ is its parameter arena */
    float *vnet_state;          /* unused (VNet has no BatchNorm) */
    float *weight;              /* (B) per-sample weights for the loss, device */
    float *dv;                  /* (B) ∂ℓ/∂v, device */
    float *host_v, *host_w;     /* (B) host copies */
} mwn;

/* v = VNet(c) for the `count` per-sample losses c (device); copies v to
 * host_v and returns Σ v_i c_i / Σ v_i in *loss and Σ v_i in *vsum. */
static int vnet_weigh(mwn *w, const float *c, const float *host_c, int count, double *loss,
                      double *vsum)
{
    eg_backend *be = w->base.be;
    EG_TRY(eg_net_forward(&w->vnet, w->base.lambda, w->vnet_state, c, count, EG_TRAIN));
    EG_TRY(be->download(be, w->host_v, eg_net_output(&w->vnet), (size_t)count * sizeof(float)));
    double sv = 0, svc = 0;
    for (int i = 0; i < count; i++) {
        sv += w->host_v[i];
        svc += (double)w->host_v[i] * host_c[i];
    }
    if (!(sv > 0)) return eg_errorf("mwn: the VNet weights sum to %g", sv);
    *vsum = sv;
    *loss = svc / sv;
    return 0;
}

/* Forward of the base model at theta on the training batch in `mode`,
 * per-sample losses, and the VNet-weighted loss. */
static int weighted_loss(mwn *w, const float *theta, eg_mode mode, double *loss, double *vsum)
{
    eg_classifier *m = &w->b.m;
    EG_TRY(eg_net_forward(&m->net, theta, m->state, m->batch.x, m->batch.count, mode));
    EG_TRY(eg_xent_forward(&m->xe, eg_net_output(&m->net), m->batch.y, m->batch.count, NULL));
    return vnet_weigh(w, m->xe.loss, m->xe.host_loss, m->batch.count, loss, vsum);
}

/* dtheta = ∇_θ of the weighted loss of the last weighted_loss() forward,
 * with the weights v_i / Σ v held constant. */
static int weighted_grad(mwn *w, const float *theta, double vsum, float *dtheta)
{
    eg_backend *be = w->base.be;
    eg_classifier *m = &w->b.m;
    int n = m->batch.count;
    for (int i = 0; i < n; i++) w->host_w[i] = (float)(w->host_v[i] / vsum);
    EG_TRY(be->upload(be, w->weight, w->host_w, (size_t)n * sizeof(float)));
    EG_TRY(eg_xent_backward(&m->xe, m->batch.y, w->weight, 1.0f, n));
    EG_TRY(be->fill(be, w->base.P, 0.0f, dtheta));
    return eg_net_backward(&m->net, theta, m->xe.dlogits, dtheta, NULL);
}

static int next_batch(eg_task *t) { return eg_image_base_next(&((mwn *)t)->b); }

static int train_loss(eg_task *t, const float *theta, double *loss, float *dlambda)
{
    mwn *w = (mwn *)t;
    eg_backend *be = t->be;
    double vsum;
    EG_TRY(weighted_loss(w, theta, EG_PROBE, loss, &vsum));
    if (!dlambda) return 0;
    /* ∂ℓ/∂v_i = (c_i - ℓ) / Σ v; the losses c_i do not depend on λ. */
    int n = w->b.m.batch.count;
    for (int i = 0; i < n; i++) w->host_w[i] = (float)((w->b.m.xe.host_loss[i] - *loss) / vsum);
    EG_TRY(be->upload(be, w->dv, w->host_w, (size_t)n * sizeof(float)));
    EG_TRY(be->fill(be, t->H, 0.0f, dlambda));
    return eg_net_backward(&w->vnet, t->lambda, w->dv, dlambda, NULL);
}

static int train_grad(eg_task *t, const float *theta, double *loss, float *dtheta)
{
    mwn *w = (mwn *)t;
    double vsum;
    EG_TRY(weighted_loss(w, theta, EG_PROBE, loss, &vsum));
    return weighted_grad(w, theta, vsum, dtheta);
}

static int val_grad(eg_task *t, const float *theta, double *loss, float *dtheta,
                    float *dlambda)
{
    mwn *w = (mwn *)t;
    eg_classifier *m = &w->b.m;
    eg_backend *be = t->be;
    int n = w->b.valb.count;
    EG_TRY(eg_net_forward(&m->net, theta, m->state, w->b.valb.x, n, EG_PROBE));
    EG_TRY(eg_xent_forward(&m->xe, eg_net_output(&m->net), w->b.valb.y, n, loss));
    EG_TRY(eg_xent_backward(&m->xe, w->b.valb.y, NULL, 1.0f / n, n));
    EG_TRY(be->fill(be, t->P, 0.0f, dtheta));
    return eg_net_backward(&m->net, theta, m->xe.dlogits, dtheta, NULL);
}

static int base_step(eg_task *t, double *loss)
{
    mwn *w = (mwn *)t;
    double vsum;
    EG_TRY(weighted_loss(w, t->theta, EG_TRAIN, loss, &vsum));
    EG_TRY(weighted_grad(w, t->theta, vsum, t->grad));
    return eg_optim_step(&w->b.m.opt, t->theta, t->grad);
}

static float base_lr(const eg_task *t) { return eg_optim_lr(&((const mwn *)t)->b.m.opt); }

/* Mean VNet weight of corrupted and of clean training samples, over the
 * first PROBE_SAMPLES training samples (at most eval_limit when it is set),
 * in evaluation mode. */
static int weight_diagnostic(mwn *w, double *w_corrupted, double *w_clean)
{
    eg_classifier *m = &w->b.m;
    int n = w->train.n < PROBE_SAMPLES ? w->train.n : PROBE_SAMPLES, B = m->max_batch;
    if (w->job.eval_limit > 0 && w->job.eval_limit < n) n = w->job.eval_limit;
    double sum[2] = {0, 0};
    long cnt[2] = {0, 0};
    uint32_t *idx = malloc((size_t)B * sizeof(uint32_t));
    if (!idx) return eg_errorf("mwn: out of memory");
    int rc = 0;
    for (int b0 = 0; b0 < n && rc == 0; b0 += B) {
        int count = n - b0 < B ? n - b0 : B;
        for (int i = 0; i < count; i++) idx[i] = (uint32_t)(b0 + i);
        rc = eg_dev_batch_load(&m->batch, &w->train, idx, count);
        if (rc == 0) rc = eg_net_forward(&m->net, m->theta, m->state, m->batch.x, count, EG_EVAL);
        if (rc == 0)
            rc = eg_xent_forward(&m->xe, eg_net_output(&m->net), m->batch.y, count, NULL);
        double loss, vsum;
        if (rc == 0) rc = vnet_weigh(w, m->xe.loss, m->xe.host_loss, count, &loss, &vsum);
        for (int i = 0; rc == 0 && i < count; i++) {
            int k = w->corrupted[b0 + i] ? 1 : 0;
            sum[k] += w->host_v[i];
            cnt[k]++;
        }
    }
    free(idx);
    *w_clean = cnt[0] ? sum[0] / cnt[0] : NAN;
    *w_corrupted = cnt[1] ? sum[1] / cnt[1] : NAN;
    return rc;
}

/* The VNet's weight as a function of the loss (the paper's Figure 6):
 * its output at the losses of the grid in eg_eval, the per-sample loss
 * buffer of the base model serving as its input. */
static int vnet_curve(mwn *w, eg_eval *ev)
{
    eg_classifier *m = &w->b.m;
    eg_backend *be = w->base.be;
    if (m->max_batch < EG_VNET_CURVE) return 0; /* no room for the grid: no curve */
    float grid[EG_VNET_CURVE];
    for (int i = 0; i < EG_VNET_CURVE; i++) grid[i] = (float)(i * EG_VNET_CURVE_STEP);
    EG_TRY(be->upload(be, m->xe.loss, grid, sizeof grid));
    EG_TRY(eg_net_forward(&w->vnet, w->base.lambda, w->vnet_state, m->xe.loss, EG_VNET_CURVE,
                          EG_TRAIN));
    EG_TRY(be->download(be, ev->vnet_curve, eg_net_output(&w->vnet), sizeof grid));
    ev->has_curve = 1;
    return 0;
}

static int evaluate(eg_task *t, eg_eval *ev)
{
    mwn *w = (mwn *)t;
    EG_TRY(eg_image_base_evaluate(&w->b, &w->test_all, w->job.eval_limit, ev));
    EG_TRY(vnet_curve(w, ev));
    if (strcmp(w->job.dataset.noise, "none") != 0)
        EG_TRY(weight_diagnostic(w, &ev->w_corrupted, &ev->w_clean));
    return 0;
}

static int report(eg_task *t, json_t *summary)
{
    mwn *w = (mwn *)t;
    long corrupted = 0;
    for (int i = 0; i < w->train.n; i++) corrupted += w->corrupted[i];
    json_object_set_new(summary, "noise", json_pack("{s:s, s:f, s:f}", "kind",
                                                    w->job.dataset.noise, "rate",
                                                    w->job.dataset.noise_rate,
                                                    "measured_rate",
                                                    (double)corrupted / w->train.n));
    return 0;
}

static int checkpoint_items(eg_task *t, eg_ckpt_list *l)
{
    return eg_image_base_checkpoint_items(t, &((mwn *)t)->b, l);
}

static int replay_view(eg_task *t, eg_replay_view *v)
{
    return eg_image_base_replay_view(&((mwn *)t)->b, v);
}

static void destroy(eg_task *t)
{
    mwn *w = (mwn *)t;
    eg_backend *be = t->be;
    eg_image_base_free(&w->b);
    eg_net_free(&w->vnet);
    if (be) {
        be->free(be, t->lambda);
        be->free(be, w->vnet_state);
        be->free(be, w->weight);
        be->free(be, w->dv);
    }
    free(w->host_v);
    free(w->host_w);
    free(w->corrupted);
    eg_dataset_free(&w->train);
    eg_dataset_free(&w->meta);
    eg_dataset_free(&w->all);
    eg_dataset_free(&w->test_all);
    free(w);
}

static const eg_task_ops mwn_ops = {
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

/* Splits all into `n_meta` clean meta samples (n_meta / classes per class
 * after a seeded shuffle, as the Meta-Weight-Net code does) and the rest,
 * both owning copies. */
static int split_meta(const eg_dataset *all, int n_meta, uint64_t seed, eg_dataset *meta,
                      eg_dataset *rest)
{
    int n = all->n, per_class = n_meta / all->classes;
    if (per_class < 1 || n_meta >= n)
        return eg_errorf("mwn.meta_samples: %d cannot give each of %d classes a sample and "
                         "leave training data out of %d", n_meta, all->classes, n);
    uint32_t *order = malloc((size_t)n * sizeof(uint32_t));
    uint32_t *pick = malloc((size_t)n * sizeof(uint32_t));
    int *taken = calloc(all->classes, sizeof(int));
    if (!order || !pick || !taken) {
        free(order), free(pick), free(taken);
        return eg_errorf("mwn: out of memory");
    }
    for (int i = 0; i < n; i++) order[i] = (uint32_t)i;
    eg_rng r;
    eg_rng_seed(&r, seed, 21);
    eg_rng_shuffle(&r, order, (uint32_t)n);
    int nm = 0, nr = n;
    for (int i = 0; i < n; i++) {
        int c = all->y[order[i]];
        if (taken[c] < per_class) {
            taken[c]++;
            pick[nm++] = order[i];
        } else {
            pick[--nr] = order[i];
        }
    }
    /* pick = meta samples, then the rest in reverse shuffled order. */
    size_t sample = (size_t)all->c * all->h * all->w;
    *meta = (eg_dataset){.n = nm, .c = all->c, .h = all->h, .w = all->w,
                         .classes = all->classes, .owns = 1};
    *rest = *meta;
    rest->n = n - nm;
    meta->x = malloc((size_t)nm * sample * sizeof(float));
    meta->y = malloc((size_t)nm * sizeof(int32_t));
    rest->x = malloc((size_t)rest->n * sample * sizeof(float));
    rest->y = malloc((size_t)rest->n * sizeof(int32_t));
    int rc = 0;
    if (meta->x && meta->y && rest->x && rest->y) {
        eg_dataset_gather(all, pick, nm, meta->x, meta->y);
        eg_dataset_gather(all, pick + nm, rest->n, rest->x, rest->y);
    } else {
        eg_dataset_free(meta);
        eg_dataset_free(rest);
        rc = eg_errorf("mwn: out of memory splitting %d samples", n);
    }
    free(order), free(pick), free(taken);
    return rc;
}

static int eg_mwn_create(const eg_job *job, eg_backend *be, eg_task **out)
{
    mwn *w = calloc(1, sizeof *w);
    if (!w) return eg_errorf("mwn: out of memory");
    eg_task *t = &w->base;
    *t = (eg_task){.ops = &mwn_ops, .be = be};
    w->job = *job;
    int B = job->batch_size;
    float mean[EG_MAX_CHANNELS], std[EG_MAX_CHANNELS];
    eg_clear_error();
    if (eg_task_open_data(job, &w->all, &w->test_all, mean, std) != 0) goto fail;
    eg_dataset_normalize(&w->all, mean, std);
    eg_dataset_normalize(&w->test_all, mean, std);
    if (split_meta(&w->all, EG_JOB_SECTION(job, const eg_mwn_spec)->meta_samples, job->seed, &w->meta, &w->train) != 0)
        goto fail;
    eg_dataset_free(&w->all);
    w->corrupted = malloc((size_t)w->train.n);
    if (!w->corrupted ||
        eg_label_noise(w->train.y, w->train.n, w->train.classes, job->dataset.noise,
                       (float)job->dataset.noise_rate, job->seed + 2, w->corrupted) != 0)
        goto fail;
    /* The schedule needs the run's length before the optimiser exists. */
    t->steps_per_epoch = (w->train.n + B - 1) / B;
    eg_optim_config opt = job->optimizer;
    eg_job_auto_milestones(job, eg_task_total_steps(job, t), &opt);
    if (eg_image_base_init(&w->b, job, be, &w->train, &w->meta, &opt, 0) != 0) goto fail;
    if (eg_model_vnet(&w->vnet, be, EG_JOB_SECTION(job, const eg_mwn_spec)->vnet_hidden) != 0 ||
        eg_net_finish(&w->vnet, B, 0) != 0)
        goto fail;
    t->H = w->vnet.params.total;
    float *host_lambda = malloc(t->H * sizeof(float));
    if (!host_lambda) goto fail;
    eg_net_init_params(&w->vnet, host_lambda, NULL, job->seed + 3);
    t->lambda = eg_alloc_floats(be, t->H);
    w->vnet_state = eg_alloc_floats(be, 1);
    w->weight = eg_alloc_floats(be, B);
    w->dv = eg_alloc_floats(be, B);
    w->host_v = malloc((size_t)B * sizeof(float));
    w->host_w = malloc((size_t)B * sizeof(float));
    int ok = t->lambda && w->vnet_state && w->weight && w->dv && w->host_v && w->host_w &&
             be->upload(be, t->lambda, host_lambda, t->H * sizeof(float)) == 0;
    free(host_lambda);
    if (!ok) goto fail;
    t->P = w->b.m.net.params.total;
    t->theta = w->b.m.theta;
    t->grad = w->b.m.dtheta;
    *out = t;
    return 0;
fail:
    if (!eg_last_error()[0]) eg_errorf("mwn: out of memory");
    destroy(t);
    return -1;
}

/* ---- the job's "mwn" section ---- */

_Static_assert(sizeof(eg_mwn_spec) <= EG_JOB_SECTION_BYTES, "mwn section too big");

static void mwn_defaults(eg_job *j)
{
    strcpy(j->model.name, "resnet32");
    strcpy(j->dataset.noise, "uniform");
    j->dataset.noise_rate = 0.4;
    j->optimizer = eg_optim_sgd(0.1f, 0.9f, 5e-4f, 1);
    j->auto_milestones = 1;
    j->meta_optimizer = eg_optim_sgd(1e-3f, 0.9f, 5e-4f, 1);
    j->epochs = 60;
    j->batch_size = 100;
    *EG_JOB_SECTION(j, eg_mwn_spec) = (eg_mwn_spec){.meta_samples = 1000, .vnet_hidden = 100};
}

static int mwn_read(const eg_spec_scope *s, eg_job *j)
{
    eg_mwn_spec *m = EG_JOB_SECTION(j, eg_mwn_spec);
    EG_TRY(eg_spec_i(s, "meta_samples", 1, 50000, &m->meta_samples));
    return eg_spec_i(s, "vnet_hidden", 1, 4096, &m->vnet_hidden);
}

static json_t *mwn_json(const eg_job *j)
{
    const eg_mwn_spec *m = EG_JOB_SECTION(j, const eg_mwn_spec);
    return json_pack("{s:i, s:i}", "meta_samples", m->meta_samples, "vnet_hidden",
                     m->vnet_hidden);
}

static const char *const mwn_keys[] = {"meta_samples", "vnet_hidden", NULL};

const eg_task_def eg_mwn_def = {
    .name = "mwn",
    .flags = EG_TASKF_LABEL_NOISE | EG_TASKF_AUTO_MILESTONES,
    .section_keys = mwn_keys,
    .defaults = mwn_defaults,
    .read = mwn_read,
    .section_json = mwn_json,
    .create = eg_mwn_create,
};
