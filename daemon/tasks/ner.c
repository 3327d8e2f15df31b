/* Named-entity recognition with a token encoder, trained jointly on a
 * source and a target language (MetaXL's joint-training baseline): each
 * step takes a batch of batch_size source sentences and one of target
 * sentences and descends (CE_source + CE_target) / 2 with Adam, a linear
 * warm-up then linear decay of the learning rate, and gradient-norm
 * clipping. Evaluations score entity-level F1 (seqeval) on the target's
 * dev and test sets; the summary reports the test F1 of the evaluation
 * with the best dev F1. Data, model and scoring: tasks/ner_base.h; a
 * checkpoint needs only θ, the optimiser, the best evaluation and the
 * step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim.h"
#include "tasks/ner_base.h"
#include "tasks/tasks.h"
#include "util/err.h"

int eg_ner_create(const eg_job *job, eg_backend *be, eg_task **out);

typedef struct ner {
    eg_task base;
    eg_job job;
    eg_ner_base nb;
    eg_optim opt;
    long step; /* steps taken */
} ner;

static int next_batch(eg_task *t) { return 0; } /* batches follow from the step */

static int base_step(eg_task *t, double *loss)
{
    ner *N = (ner *)t;
    eg_ner_base *b = &N->nb;
    eg_backend *be = t->be;
    EG_TRY(be->fill(be, t->P, 0.0f, t->grad));
    double sum = 0;
    for (int which = EG_NER_SOURCE; which <= EG_NER_TARGET; which++) {
        int idx[1024];
        for (int k = 0; k < b->B; k++) idx[k] = eg_ner_base_stream(b, which, N->step * b->B + k);
        eg_tokens tok;
        double l;
        EG_TRY(eg_ner_base_batch(b, which == EG_NER_TARGET ? &b->tgt : &b->src, idx, b->B, &tok));
        eg_enc_pass pass = {1, N->job.seed, (uint64_t)N->step * 2 + (uint64_t)which};
        EG_TRY(eg_ner_base_pass(b, t->theta, &tok, &pass, NULL, t->grad, 0.5f, &l));
        sum += l;
    }
    *loss = sum / 2;
    if (!isfinite(*loss)) return eg_errorf("ner: training loss is %g at step %ld", *loss, N->step);
    EG_TRY(eg_clip_grad_norm(be, t->P, t->grad, b->spec->clip, NULL));
    EG_TRY(eg_optim_step(&N->opt, t->theta, t->grad));
    N->step++;
    return 0;
}

static float base_lr(const eg_task *t) { return eg_optim_lr(&((const ner *)t)->opt); }

static int evaluate(eg_task *t, eg_eval *ev)
{
    ner *N = (ner *)t;
    return eg_ner_base_evaluate(&N->nb, t->theta, N->step, ev);
}

static int report(eg_task *t, json_t *summary)
{
    json_t *o = json_object();
    if (!o || eg_ner_base_report(&((ner *)t)->nb, o) != 0) {
        json_decref(o);
        return eg_errorf("ner: out of memory");
    }
    return json_object_set_new(summary, "ner", o);
}

static int checkpoint_items(eg_task *t, eg_ckpt_list *l)
{
    ner *N = (ner *)t;
    EG_TRY(eg_ckpt_add(l, "ner", "theta", t->theta, t->P * sizeof(float), 1));
    EG_TRY(eg_optim_checkpoint_items(&N->opt, "ner.optimizer", l));
    EG_TRY(eg_ckpt_add(l, "ner", "best", &N->nb.best, sizeof N->nb.best, 0));
    return eg_ckpt_add(l, "ner", "step", &N->step, sizeof N->step, 0);
}

static int no_meta(void)
{
    return eg_errorf("ner: the task has no meta-parameters (method \"none\" only)");
}
static int train_loss(eg_task *t, const float *theta, double *loss, float *dlambda)
{
    return no_meta();
}
static int train_grad(eg_task *t, const float *theta, double *loss, float *dtheta)
{
    return no_meta();
}
static int val_grad(eg_task *t, const float *theta, double *loss, float *dtheta, float *dlambda)
{
    return no_meta();
}

static void destroy(eg_task *t)
{
    ner *N = (ner *)t;
    eg_optim_free(&N->opt);
    if (t->be) {
        t->be->free(t->be, t->theta);
        t->be->free(t->be, t->grad);
    }
    eg_ner_base_free(&N->nb);
    free(N);
}

static const eg_task_ops ner_ops = {
    .next_batch = next_batch,
    .train_loss = train_loss,
    .train_grad = train_grad,
    .val_grad = val_grad,
    .base_step = base_step,
    .base_lr = base_lr,
    .evaluate = evaluate,
    .report = report,
    .checkpoint_items = checkpoint_items,
    .destroy = destroy,
};

int eg_ner_create(const eg_job *job, eg_backend *be, eg_task **out)
{
    ner *N = calloc(1, sizeof *N);
    if (!N) return eg_errorf("ner: out of memory");
    eg_task *t = &N->base;
    *t = (eg_task){.ops = &ner_ops, .be = be, .base_step_first = 1};
    N->job = *job;
    const eg_ner_spec *s = EG_JOB_SECTION(&N->job, const eg_ner_spec);
    float *host = NULL;
    int rc = eg_ner_base_open(&N->nb, be, &N->job, s, "ner", &host);
    if (!rc) {
        t->P = N->nb.enc.params.total;
        t->steps_per_epoch = (N->nb.src.n + N->nb.B - 1) / N->nb.B;
        eg_optim_config oc = eg_ner_schedule(&N->job.optimizer, &N->job, s, t);
        if (!(t->theta = eg_alloc_floats(be, t->P)) || !(t->grad = eg_alloc_floats(be, t->P)) ||
            be->upload(be, t->theta, host, t->P * sizeof(float)) != 0 ||
            eg_optim_init(&N->opt, be, t->P, &oc) != 0)
            rc = -1;
    }
    free(host);
    if (rc) {
        destroy(t);
        return -1;
    }
    *out = t;
    return 0;
}
