/* MetaXL (Xia et al. 2021): low-resource cross-lingual NER with a
 * representation transformation network (RTN) meta-learned so that
 * training on RTN-transformed source batches helps the target language.
 *
 * A step takes a source batch of B sentences and a target batch of B
 * split in halves g (inner) and t (outer). With h the encoder's last
 * hidden states and h' = h + RTN(h) (nn/rtn.h, h detached) on source
 * batches only:
 *   training loss  ℓ_T(θ, λ) = CE_src(θ; h') + CE_g(θ)
 *   outer loss     ℓ_V(θ)    = CE_t(θ), no RTN
 * λ is the RTN. The base model steps on ℓ_T after the meta step (MetaXL's
 * order); method none trains jointly on the source and the whole target
 * batch without the RTN. Adam for both, each with a linear warm-up and
 * decay, the model's gradient clipped.
 *
 * EvoGrad may perturb the classifier only (evograd.perturb "classifier",
 * the default, as the official code does): then the copies differ from θ
 * only there, the encoder's outputs of the step's source and inner
 * batches are computed once and serve every copy, and the outer loss
 * needs no encoder backward. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim.h"
#include "nn/rtn.h"
#include "tasks/metaxl.h"
#include "tasks/ner_base.h"
#include "tasks/tasks.h"
#include "util/err.h"

int eg_metaxl_create(const eg_job *job, eg_backend *be, eg_task **out);

/* Dropout passes of a step: call = step x PASSES + which. */
enum { PASS_SRC, PASS_G, PASS_T, PASS_TARGET, PASSES };

typedef struct metaxl {
    eg_task base;
    eg_job job;
    const eg_metaxl_spec *spec;
    eg_ner_base nb;
    eg_optim opt;                 /* θ's */
    eg_optim_config meta_cfg;     /* λ's, scheduled over the job's steps */
    eg_rtn rtn;
    int d, n_g;                   /* width; sentences of the inner half */
    int idx_src[1024], idx_tgt[1024]; /* the step's sentences (g first, then t) */
    float *h_src, *h_rtn, *h_g;   /* (B T, d) cached hidden states; h_src after the RTN */
    int n_src, n_gtok;            /* their tokens */
    int cached;                   /* h_src, h_rtn, h_g hold this step's at t->theta, λ */
    long step;                    /* steps taken */
} metaxl;

static const eg_ner_spec *nspec(const metaxl *M) { return &M->spec->ner; }

static eg_enc_pass pass_of(const metaxl *M, int which)
{
    return (eg_enc_pass){1, M->job.seed, (uint64_t)M->step * PASSES + (uint64_t)which};
}

/* Loads one of the step's batches: the source batch, the inner half g,
 * the outer half t or the whole target batch. */
static int load(metaxl *M, int which, eg_tokens *tok)
{
    eg_ner_base *b = &M->nb;
    switch (which) {
    case PASS_SRC: return eg_ner_base_batch(b, &b->src, M->idx_src, b->B, tok);
    case PASS_G: return eg_ner_base_batch(b, &b->tgt, M->idx_tgt, M->n_g, tok);
    case PASS_T: return eg_ner_base_batch(b, &b->tgt, M->idx_tgt + M->n_g, b->B - M->n_g, tok);
    default: return eg_ner_base_batch(b, &b->tgt, M->idx_tgt, b->B, tok);
    }
}

/* The encoder's hidden states of batch `which` at theta into out; their
 * token count into *n. */
static int hidden(metaxl *M, const float *theta, int which, float *out, int *n)
{
    eg_tokens tok;
    EG_TRY(load(M, which, &tok));
    eg_enc_pass pass = pass_of(M, which);
    EG_TRY(eg_encoder_forward(&M->nb.enc, theta, &tok, &pass));
    *n = tok.b * tok.t;
    return M->base.be->copy(M->base.be, out, eg_encoder_hidden(&M->nb.enc),
                            (size_t)*n * M->d * sizeof(float));
}

/* The head and loss on hidden states h (n tokens) of batch which (its
 * labels reloaded); with dlambda, the RTN's backward from the head's
 * gradient (h is then the RTN's output of the last eg_rtn_forward). */
static int head_loss(metaxl *M, const float *theta, int which, const float *h, int n,
                     float *dlambda, double *loss)
{
    eg_ner_base *b = &M->nb;
    eg_tokens tok;
    EG_TRY(load(M, which, &tok));
    eg_enc_pass pass = pass_of(M, which);
    const float *logits;
    EG_TRY(eg_encoder_head_forward(&b->enc, theta, h, n, &pass, &logits));
    EG_TRY(eg_token_loss_forward(&b->tl, logits, loss));
    if (!dlambda) return 0;
    EG_TRY(eg_token_loss_backward(&b->tl, 1.0f));
    EG_TRY(eg_encoder_head_backward(&b->enc, theta, b->tl.xe.dlogits, NULL, b->enc.g_a));
    return eg_rtn_backward(&M->rtn, M->base.lambda, b->enc.g_a, dlambda);
}

/* ℓ_T(θ, λ) = CE_src(h + RTN(h)) + CE_g: the hidden states computed at θ,
 * or taken from this step's cache when EvoGrad's scoped copies differ
 * from t->theta in the classifier only. */
static int train_loss(eg_task *t, const float *theta, double *loss, float *dlambda)
{
    metaxl *M = (metaxl *)t;
    eg_backend *be = t->be;
    if (!(t->scoped && M->cached)) {
        EG_TRY(hidden(M, theta, PASS_SRC, M->h_src, &M->n_src));
        EG_TRY(hidden(M, theta, PASS_G, M->h_g, &M->n_gtok));
        EG_TRY(eg_rtn_forward(&M->rtn, t->lambda, M->h_src, M->n_src, M->h_rtn));
        M->cached = t->scoped;
    }
    double ls, lg;
    if (dlambda) EG_TRY(be->fill(be, t->H, 0.0f, dlambda));
    EG_TRY(head_loss(M, theta, PASS_SRC, M->h_rtn, M->n_src, dlambda, &ls));
    EG_TRY(head_loss(M, theta, PASS_G, M->h_g, M->n_gtok, NULL, &lg));
    *loss = ls + lg;
    return 0;
}

/* The RTN on the encoder's hidden states, for eg_ner_base_pass. */
static int rtn_map(void *ctx, const float *h, int n, const float **out)
{
    metaxl *M = ctx;
    EG_TRY(eg_rtn_forward(&M->rtn, M->base.lambda, h, n, M->h_rtn));
    *out = M->h_rtn;
    return 0;
}

/* Forward and full backward of one batch at theta, the RTN on its hidden
 * states when rtn is set (h detached: the encoder's gradient is the
 * head's); dθ accumulates. */
static int full_pass(metaxl *M, const float *theta, int which, int rtn, float *dtheta,
                     double *loss)
{
    eg_tokens tok;
    EG_TRY(load(M, which, &tok));
    eg_enc_pass pass = pass_of(M, which);
    eg_ner_hidden_map map = {rtn_map, M};
    return eg_ner_base_pass(&M->nb, theta, &tok, &pass, rtn ? &map : NULL, dtheta, 1.0f, loss);
}

static int train_grad(eg_task *t, const float *theta, double *loss, float *dtheta)
{
    metaxl *M = (metaxl *)t;
    double ls, lg;
    EG_TRY(t->be->fill(t->be, t->P, 0.0f, dtheta));
    EG_TRY(full_pass(M, theta, PASS_SRC, 1, dtheta, &ls));
    EG_TRY(full_pass(M, theta, PASS_G, 0, dtheta, &lg));
    *loss = ls + lg;
    return 0;
}

/* ℓ_V(θ) = CE_t without the RTN; no direct term in λ. Scoped (θ differs
 * from t->theta in the classifier only), only the classifier's gradient
 * is formed. */
static int val_grad(eg_task *t, const float *theta, double *loss, float *dtheta, float *dlambda)
{
    metaxl *M = (metaxl *)t;
    eg_ner_base *b = &M->nb;
    EG_TRY(t->be->fill(t->be, t->P, 0.0f, dtheta));
    if (!t->scoped) return full_pass(M, theta, PASS_T, 0, dtheta, loss);
    /* Scoped: the forward and loss, then the head's backward only. */
    eg_tokens tok;
    EG_TRY(load(M, PASS_T, &tok));
    eg_enc_pass pass = pass_of(M, PASS_T);
    EG_TRY(eg_ner_base_pass(b, theta, &tok, &pass, NULL, NULL, 0, loss));
    EG_TRY(eg_token_loss_backward(&b->tl, 1.0f));
    return eg_encoder_head_backward(&b->enc, theta, b->tl.xe.dlogits, dtheta, NULL);
}

static int next_batch(eg_task *t)
{
    metaxl *M = (metaxl *)t;
    eg_ner_base *b = &M->nb;
    for (int k = 0; k < b->B; k++) {
        M->idx_src[k] = eg_ner_base_stream(b, EG_NER_SOURCE, M->step * b->B + k);
        M->idx_tgt[k] = eg_ner_base_stream(b, EG_NER_TARGET, M->step * b->B + k);
    }
    M->cached = 0;
    return 0;
}

static int base_step(eg_task *t, double *loss)
{
    metaxl *M = (metaxl *)t;
    eg_backend *be = t->be;
    if (M->job.method == EG_METHOD_NONE) {
        double ls, lt;
        EG_TRY(be->fill(be, t->P, 0.0f, t->grad));
        EG_TRY(full_pass(M, t->theta, PASS_SRC, 0, t->grad, &ls));
        EG_TRY(full_pass(M, t->theta, PASS_TARGET, 0, t->grad, &lt));
        *loss = ls + lt;
    } else {
        EG_TRY(train_grad(t, t->theta, loss, t->grad));
    }
    if (!isfinite(*loss))
        return eg_errorf("metaxl: training loss is %g at step %ld", *loss, M->step);
    EG_TRY(eg_clip_grad_norm(be, t->P, t->grad, nspec(M)->clip, NULL));
    EG_TRY(eg_optim_step(&M->opt, t->theta, t->grad));
    M->cached = 0;
    M->step++;
    return 0;
}

static float base_lr(const eg_task *t) { return eg_optim_lr(&((const metaxl *)t)->opt); }

static int evaluate(eg_task *t, eg_eval *ev)
{
    metaxl *M = (metaxl *)t;
    return eg_ner_base_evaluate(&M->nb, t->theta, M->step, ev);
}

static int report(eg_task *t, json_t *summary)
{
    metaxl *M = (metaxl *)t;
    json_t *o = json_object();
    if (!o || eg_ner_base_report(&M->nb, o) != 0 ||
        json_object_set_new(o, "rtn_bottleneck", json_integer(M->rtn.b)) != 0) {
        json_decref(o);
        return eg_errorf("metaxl: out of memory");
    }
    return json_object_set_new(summary, "metaxl", o);
}

static int checkpoint_items(eg_task *t, eg_ckpt_list *l)
{
    metaxl *M = (metaxl *)t;
    EG_TRY(eg_ckpt_add(l, "metaxl", "theta", t->theta, t->P * sizeof(float), 1));
    EG_TRY(eg_ckpt_add(l, "metaxl", "lambda", t->lambda, t->H * sizeof(float), 1));
    EG_TRY(eg_optim_checkpoint_items(&M->opt, "metaxl.optimizer", l));
    EG_TRY(eg_ckpt_add(l, "metaxl", "best", &M->nb.best, sizeof M->nb.best, 0));
    return eg_ckpt_add(l, "metaxl", "step", &M->step, sizeof M->step, 0);
}

static void destroy(eg_task *t)
{
    metaxl *M = (metaxl *)t;
    eg_backend *be = t->be;
    eg_optim_free(&M->opt);
    eg_rtn_free(&M->rtn);
    if (be) {
        float *dev[] = {t->theta, t->grad, t->lambda, M->h_src, M->h_rtn, M->h_g};
        for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) be->free(be, dev[i]);
    }
    eg_ner_base_free(&M->nb);
    free(M);
}

static const eg_task_ops metaxl_ops = {
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

static int build(metaxl *M, float *host_theta)
{
    eg_task *t = &M->base;
    eg_backend *be = t->be;
    eg_ner_base *b = &M->nb;
    const eg_ner_spec *s = nspec(M);
    M->d = b->enc.cfg.d;
    M->n_g = b->B / 2;
    t->P = b->enc.params.total;
    t->steps_per_epoch = (b->src.n + b->B - 1) / b->B;
    if (M->job.evograd.perturb == 1) { /* "classifier": its weight and bias, last in θ */
        t->scope_off = b->enc.cls_w;
        t->scope_n = t->P - b->enc.cls_w;
    }
    int bottleneck = M->spec->bottleneck ? M->spec->bottleneck : (M->d + 1) / 2;
    size_t BTd = (size_t)b->B * b->T * M->d;
    EG_TRY(eg_rtn_init(&M->rtn, be, M->d, bottleneck, b->B * b->T));
    t->H = M->rtn.params.total;
    float *host_lambda = malloc(t->H * sizeof(float));
    if (!host_lambda) return eg_errorf("metaxl: out of memory");
    eg_rtn_init_params(&M->rtn, host_lambda, M->job.seed ^ 0x5a5a);
    int rc = !(t->theta = eg_alloc_floats(be, t->P)) || !(t->grad = eg_alloc_floats(be, t->P)) ||
             !(t->lambda = eg_alloc_floats(be, t->H)) || !(M->h_src = eg_alloc_floats(be, BTd)) ||
             !(M->h_rtn = eg_alloc_floats(be, BTd)) || !(M->h_g = eg_alloc_floats(be, BTd));
    if (!rc) rc = be->upload(be, t->theta, host_theta, t->P * sizeof(float)) ||
                  be->upload(be, t->lambda, host_lambda, t->H * sizeof(float));
    free(host_lambda);
    if (rc) return -1;
    eg_optim_config oc = eg_ner_schedule(&M->job.optimizer, &M->job, s, t);
    EG_TRY(eg_optim_init(&M->opt, be, t->P, &oc));
    /* λ's Adam with the same warm-up and decay. */
    M->meta_cfg = eg_ner_schedule(&M->job.meta_optimizer, &M->job, s, t);
    t->meta_opt = &M->meta_cfg;
    return eg_optim_check(&M->meta_cfg);
}

int eg_metaxl_create(const eg_job *job, eg_backend *be, eg_task **out)
{
    metaxl *M = calloc(1, sizeof *M);
    if (!M) return eg_errorf("metaxl: out of memory");
    eg_task *t = &M->base;
    *t = (eg_task){.ops = &metaxl_ops, .be = be, .base_step_first = 0};
    M->job = *job;
    M->spec = EG_JOB_SECTION(&M->job, const eg_metaxl_spec);
    float *host = NULL;
    int rc = eg_ner_base_open(&M->nb, be, &M->job, nspec(M), "metaxl", &host);
    if (!rc) rc = build(M, host);
    free(host);
    if (rc) {
        destroy(t);
        return -1;
    }
    *out = t;
    return 0;
}
