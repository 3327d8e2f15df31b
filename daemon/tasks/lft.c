/* Cross-domain few-shot learning with learned feature-wise transformations
 * (LFT, Tseng et al. 2020), the meta-gradient taken by the job's method in
 * place of LFT's second-order step (the EvoGrad paper's Table 4).
 *
 * θ is the model: an ImageNet-style ResNet backbone and the metric head
 * (RelationNet's relation module; ProtoNet has no parameters), one arena
 * [backbone | relation]. λ is every FT layer's θ_γ, θ_β. Once per epoch
 * two seen domains are drawn: a pseudo-seen one, whose episodes are the
 * training batch (FT on, batch statistics), and a pseudo-unseen one, whose
 * episodes are the validation batch (FT off, the backbone's BatchNorm in
 * evaluation mode), so λ reaches the validation loss only through the
 * method's meta-gradient. The base model (Adam) steps first, then the
 * meta-gradient is taken, as the official code orders them.
 *
 * FT noise is drawn from Philox keyed by (seed, step, call): EvoGrad's
 * copies (the train_loss calls since the step's batch was drawn or the
 * last val_grad) each get fresh noise; T1−T2's central difference and the base
 * step share one draw per step, so the difference sees the same
 * stochastic loss on both sides. Episodes, domain pairs, augmentation and
 * test episodes are functions of (seed, step) too, so a resumed job
 * redraws them exactly. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/domain.h"
#include "data/episode.h"
#include "nn/fewshot.h"
#include "nn/loss.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/rng.h"
#include "tasks/lft.h"
#include "tasks/tasks.h"
#include "util/err.h"
#include "util/json_num.h"

int eg_lft_create(const eg_job *job, eg_backend *be, eg_task **out);

/* Tags that keep the Philox streams of different draws apart. */
enum { TAG_PAIR = 1, TAG_SEEN, TAG_UNSEEN, TAG_TEST, TAG_FT, TAG_PRETRAIN };

typedef struct lft {
    eg_task base;
    eg_job job;
    const eg_lft_spec *spec;     /* job's section */
    int n_domains;               /* seen domains, then the unseen one */
    eg_domain *domain[EG_LFT_MAX_SEEN + 1];
    eg_class_index *base_ix[EG_LFT_MAX_SEEN]; /* seen domains' base classes */
    eg_class_index *novel_ix;    /* the unseen domain's novel classes */
    eg_episode *ep_train, *ep_val, *ep_test;
    int c, size;                 /* episode images (c, size, size) */
    int fc, fh, fw;              /* backbone output map */
    int relation;                /* metric: 1 RelationNet, 0 ProtoNet */
    eg_net bb, rel;
    size_t P_bb, S_bb;
    float *state;                /* (S) backbone state, then the relation module's */
    eg_optim opt;                /* θ's */
    int ft_learned;              /* FT on in training with t->lambda */
    float *x_train, *x_val, *x_eval; /* (images, c, size, size) device */
    float *host_x;               /* (max images, c, size, size) */
    int32_t *labels_train, *labels_test; /* (n_way n_query), (n_way test_query) device */
    int32_t *host_labels_test;
    float *protos, *dprotos;     /* (n_way, D) */
    float *pairs, *dpairs;       /* (max pairs, 2 fc, fh, fw) */
    float *feat_grad;            /* (max images, D) */
    float *pooled, *dpooled;     /* (max images, fc) ProtoNet */
    float *scores;               /* (max queries, n_way) ProtoNet */
    eg_xent xe;
    int cur_query;               /* queries per class of the last forward */
    long step;                   /* episodes drawn */
    int call;                    /* EvoGrad copies evaluated this step */
    int32_t pair[2];             /* pseudo-seen, pseudo-unseen domain of this epoch */
} lft;

static const eg_lft_spec *spec_of(const lft *L) { return L->spec; }

static int images_of(const lft *L, int query)
{
    return spec_of(L)->n_way * (spec_of(L)->n_shot + query);
}

static size_t feat_dim(const lft *L) { return (size_t)L->fc * L->fh * L->fw; }

/* ---- the model on one episode ---- */

/* Forward of an episode x (images_of(query) images, class-major) at theta:
 * the backbone in mode with FT from meta (NULL: off) drawn from stream,
 * accumulating ∂/∂meta into dmeta in the backward that follows, then the
 * metric head; *loss is the mean cross-entropy of the n_way-way scores
 * over the queries. */
static int episode_forward(lft *L, const float *theta, const float *x, int query,
                           const float *meta, float *dmeta, uint64_t stream, eg_mode mode,
                           double *loss)
{
    eg_backend *be = L->base.be;
    const eg_lft_spec *s = spec_of(L);
    int way = s->n_way, shot = s->n_shot, nq = way * query, hw = L->fh * L->fw;
    size_t D = feat_dim(L);
    EG_TRY(eg_net_set_ft(&L->bb, meta, dmeta, L->job.seed, stream));
    EG_TRY(eg_net_forward(&L->bb, theta, L->state, x, images_of(L, query), mode));
    const float *feats = eg_net_output(&L->bb);
    const float *logits;
    if (L->relation) {
        EG_TRY(eg_fewshot_protos(be, way, shot, query, (int)D, feats, L->protos));
        EG_TRY(eg_fewshot_pairs(be, way, shot, query, L->fc, hw, L->protos, feats, L->pairs));
        EG_TRY(eg_net_forward(&L->rel, theta + L->P_bb, L->state + L->S_bb, L->pairs, nq * way,
                              EG_PROBE));
        logits = eg_net_output(&L->rel); /* (nq n_way, 1) = (nq, n_way) */
    } else {
        EG_TRY(be->avgpool_fwd(be, images_of(L, query), L->fc, hw, feats, L->pooled));
        EG_TRY(eg_fewshot_protos(be, way, shot, query, L->fc, L->pooled, L->protos));
        EG_TRY(eg_fewshot_sqdist(be, way, shot, query, L->fc, L->pooled, L->protos, L->scores));
        logits = L->scores;
    }
    L->cur_query = query;
    const int32_t *labels = query == s->n_query ? L->labels_train : L->labels_test;
    return eg_xent_forward(&L->xe, logits, labels, nq, loss);
}

/* Backward of the last episode_forward: dtheta (P) accumulates when not
 * NULL; the FT meta-gradient goes where the forward's dmeta said. */
static int episode_backward(lft *L, const float *theta, float *dtheta)
{
    eg_backend *be = L->base.be;
    const eg_lft_spec *s = spec_of(L);
    int way = s->n_way, shot = s->n_shot, query = L->cur_query, nq = way * query;
    int n = images_of(L, query), hw = L->fh * L->fw;
    size_t D = feat_dim(L);
    const int32_t *labels = query == s->n_query ? L->labels_train : L->labels_test;
    EG_TRY(eg_xent_backward(&L->xe, labels, NULL, 1.0f / nq, nq));
    if (L->relation) {
        EG_TRY(eg_net_backward(&L->rel, theta + L->P_bb, L->xe.dlogits,
                               dtheta ? dtheta + L->P_bb : NULL, L->dpairs));
        EG_TRY(be->fill(be, (size_t)n * D, 0.0f, L->feat_grad));
        EG_TRY(eg_fewshot_pairs_bwd(be, way, shot, query, L->fc, hw, L->dpairs, L->dprotos,
                                    L->feat_grad));
        EG_TRY(eg_fewshot_protos_bwd(be, way, shot, query, (int)D, L->dprotos, L->feat_grad));
    } else {
        EG_TRY(be->fill(be, (size_t)n * L->fc, 0.0f, L->dpooled));
        EG_TRY(eg_fewshot_sqdist_bwd(be, way, shot, query, L->fc, L->pooled, L->protos,
                                     L->xe.dlogits, L->dprotos, L->dpooled));
        EG_TRY(eg_fewshot_protos_bwd(be, way, shot, query, L->fc, L->dprotos, L->dpooled));
        EG_TRY(be->avgpool_bwd(be, n, L->fc, hw, L->dpooled, L->feat_grad, 0));
    }
    return eg_net_backward(&L->bb, theta, L->feat_grad, dtheta, NULL);
}

/* The FT noise stream of call `call` of the current step. */
static uint64_t ft_stream(const lft *L, int call)
{
    return eg_stream_mix(eg_stream_mix(TAG_FT, (uint64_t)L->step), (uint64_t)call);
}

/* ---- data ---- */

/* Draws episode ep from ix at (tag, index) and uploads its images (the
 * training transform when train) into x. */
static int load_episode(lft *L, const eg_class_index *ix, eg_episode *ep, int tag, long index,
                        int train, float *x)
{
    eg_backend *be = L->base.be;
    uint64_t stream = eg_stream_mix((uint64_t)tag, (uint64_t)index);
    EG_TRY(eg_episode_draw(ix, L->job.seed, stream, ep));
    EG_TRY(eg_episode_fetch(ep, train, L->job.seed, stream, L->size, L->host_x, NULL));
    size_t n = (size_t)ep->n_way * (ep->n_shot + ep->n_query) * L->c * L->size * L->size;
    return be->upload(be, x, L->host_x, n * sizeof(float));
}

/* The epoch's pseudo-seen and pseudo-unseen domains: two distinct seen
 * domains drawn from (seed, epoch). */
static void draw_pair(lft *L, long epoch)
{
    eg_rng r;
    eg_rng_seed(&r, L->job.seed, eg_stream_mix(TAG_PAIR, (uint64_t)epoch));
    int n = spec_of(L)->n_seen;
    L->pair[0] = (int32_t)eg_rng_below(&r, (uint32_t)n);
    L->pair[1] = (int32_t)eg_rng_below(&r, (uint32_t)(n - 1));
    if (L->pair[1] >= L->pair[0]) L->pair[1]++;
}

static int next_batch(eg_task *t)
{
    lft *L = (lft *)t;
    draw_pair(L, L->step / spec_of(L)->episodes_per_epoch);
    L->call = 0;
    EG_TRY(load_episode(L, L->base_ix[L->pair[0]], L->ep_train, TAG_SEEN, L->step, 1,
                        L->x_train));
    EG_TRY(load_episode(L, L->base_ix[L->pair[1]], L->ep_val, TAG_UNSEEN, L->step, 1, L->x_val));
    L->step++;
    return 0;
}

/* ---- the task interface ---- */

static int train_loss(eg_task *t, const float *theta, double *loss, float *dlambda)
{
    lft *L = (lft *)t;
    /* EvoGrad: fresh noise per copy; T1−T2: the step's one draw. */
    int call = L->job.method == EG_METHOD_EVOGRAD ? ++L->call : 0;
    if (dlambda) EG_TRY(t->be->fill(t->be, t->H, 0.0f, dlambda));
    EG_TRY(episode_forward(L, theta, L->x_train, spec_of(L)->n_query, t->lambda, dlambda,
                           ft_stream(L, call), EG_PROBE, loss));
    return dlambda ? episode_backward(L, theta, NULL) : 0;
}

/* ∇θ of the pseudo-seen loss with the training FT (or none). */
static int seen_grad(lft *L, const float *theta, eg_mode mode, double *loss, float *dtheta)
{
    eg_task *t = &L->base;
    EG_TRY(t->be->fill(t->be, t->P, 0.0f, dtheta));
    EG_TRY(episode_forward(L, theta, L->x_train, spec_of(L)->n_query,
                           L->ft_learned ? t->lambda : NULL, NULL, ft_stream(L, 0), mode, loss));
    return episode_backward(L, theta, dtheta);
}

static int train_grad(eg_task *t, const float *theta, double *loss, float *dtheta)
{
    return seen_grad((lft *)t, theta, EG_PROBE, loss, dtheta);
}

static int val_grad(eg_task *t, const float *theta, double *loss, float *dtheta,
                    float *dlambda)
{
    lft *L = (lft *)t;
    L->call = 0; /* the next copies start again from the first one's noise */
    EG_TRY(t->be->fill(t->be, t->P, 0.0f, dtheta));
    EG_TRY(episode_forward(L, theta, L->x_val, spec_of(L)->n_query, NULL, NULL, 0, EG_EVAL,
                           loss));
    return episode_backward(L, theta, dtheta);
}

static int base_step(eg_task *t, double *loss)
{
    lft *L = (lft *)t;
    EG_TRY(seen_grad(L, t->theta, EG_TRAIN, loss, t->grad));
    return eg_optim_step(&L->opt, t->theta, t->grad);
}

static float base_lr(const eg_task *t) { return eg_optim_lr(&((const lft *)t)->opt); }

/* Accuracy (percent) of each of spec.test_episodes episodes of the unseen
 * domain's novel classes (fewer when the job's eval_limit caps the query
 * samples scored, at least one episode), FT off, BatchNorm in evaluation
 * mode; their mean and 95 % interval 1.96 std / sqrt(episodes). */
static int evaluate(eg_task *t, eg_eval *ev)
{
    lft *L = (lft *)t;
    const eg_lft_spec *s = spec_of(L);
    int nq = s->n_way * s->test_query, n = s->test_episodes;
    if (L->job.eval_limit > 0 && L->job.eval_limit / nq < n)
        n = L->job.eval_limit / nq > 1 ? L->job.eval_limit / nq : 1;
    double sum = 0, sq = 0, loss_sum = 0;
    for (int e = 0; e < n; e++) {
        double loss;
        EG_TRY(load_episode(L, L->novel_ix, L->ep_test, TAG_TEST, e, 0, L->x_eval));
        EG_TRY(episode_forward(L, t->theta, L->x_eval, s->test_query, NULL, NULL, 0, EG_EVAL,
                               &loss));
        double acc = 100.0 * eg_xent_correct(&L->xe, L->host_labels_test, nq) / nq;
        sum += acc;
        sq += acc * acc;
        loss_sum += loss;
    }
    double mean = sum / n, var = n > 1 ? (sq - n * mean * mean) / (n - 1) : 0;
    ev->test_acc = mean;
    ev->test_acc_ci95 = 1.96 * sqrt(var > 0 ? var : 0) / sqrt((double)n);
    ev->test_loss = loss_sum / n;
    return 0;
}

/* Softplus at beta 100, as the FT layers apply it. */
static double sp100(double x)
{
    return 100 * x > 20 ? x : log1p(exp(100 * x)) / 100;
}

/* The summary's "ft": the mean softplus scales of the learned θ_γ, θ_β. */
static int report(eg_task *t, json_t *summary)
{
    lft *L = (lft *)t;
    float *h = malloc(t->H * sizeof(float));
    if (!h) return eg_errorf("lft: out of memory");
    if (t->be->download(t->be, h, t->lambda, t->H * sizeof(float)) != 0) {
        free(h);
        return -1;
    }
    double g = 0, b = 0;
    long ng = 0, nb = 0;
    for (int i = 0; i < L->bb.meta.n; i++) {
        const eg_slice *sl = &L->bb.meta.slices[i];
        int beta = strstr(sl->name, ".beta") != NULL;
        for (size_t k = 0; k < sl->count; k++) *(beta ? &b : &g) += sp100(h[sl->offset + k]);
        *(beta ? &nb : &ng) += (long)sl->count;
    }
    free(h);
    json_object_set_new(summary, "ft_layers", json_integer(L->bb.meta.n / 2));
    json_object_set_new(summary, "ft_gamma_scale", eg_json_f32((float)(ng ? g / ng : 0)));
    json_object_set_new(summary, "ft_beta_scale", eg_json_f32((float)(nb ? b / nb : 0)));
    return 0;
}

static int checkpoint_items(eg_task *t, eg_ckpt_list *l)
{
    lft *L = (lft *)t;
    size_t S = L->bb.state.total + L->rel.state.total;
    EG_TRY(eg_ckpt_add(l, "lft", "theta", t->theta, t->P * sizeof(float), 1));
    EG_TRY(eg_ckpt_add(l, "lft", "lambda", t->lambda, t->H * sizeof(float), 1));
    if (S) EG_TRY(eg_ckpt_add(l, "lft", "state", L->state, S * sizeof(float), 1));
    EG_TRY(eg_optim_checkpoint_items(&L->opt, "lft.optimizer", l));
    return eg_ckpt_add(l, "lft", "step", &L->step, sizeof L->step, 0);
}

static void destroy(eg_task *t)
{
    lft *L = (lft *)t;
    eg_backend *be = t->be;
    eg_net_free(&L->bb);
    eg_net_free(&L->rel);
    eg_optim_free(&L->opt);
    eg_xent_free(&L->xe);
    if (be) {
        float *dev[] = {t->theta,    t->lambda,  t->grad,     L->state,   L->x_train,
                        L->x_val,    L->x_eval,  L->protos,   L->dprotos, L->pairs,
                        L->dpairs,   L->feat_grad, L->pooled, L->dpooled, L->scores};
        for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) be->free(be, dev[i]);
        be->free(be, L->labels_train);
        be->free(be, L->labels_test);
    }
    free(L->host_x);
    free(L->host_labels_test);
    eg_episode_free(L->ep_train);
    eg_episode_free(L->ep_val);
    eg_episode_free(L->ep_test);
    for (int i = 0; i < EG_LFT_MAX_SEEN; i++) eg_class_index_free(L->base_ix[i]);
    eg_class_index_free(L->novel_ix);
    for (int i = 0; i < L->n_domains; i++) eg_domain_free(L->domain[i]);
    free(L);
}

static const eg_task_ops lft_ops = {
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

/* ---- building ---- */

/* Opens domain spec d (field: its path in the job, for messages) and
 * applies the job's class splits to it. */
static int open_domain(const eg_lft_spec *s, const eg_lft_domain_spec *d, const char *field,
                       eg_domain **out)
{
    if (strcmp(d->dataset, "images") == 0) {
        if (eg_domain_open_images(d->name, d->path, (size_t)s->cache_mb << 20,
                                  eg_tasks_data_roots(), out) != 0)
            return eg_errorf("%s: %s", field, eg_last_error());
    } else if (eg_domain_open_dataset(d->name, d->dataset, d->path[0] ? d->path : NULL,
                                      d->style, d->per_class, out) != 0) {
        return eg_errorf("%s: %s", field, eg_last_error());
    }
    if (s->own_splits) return 0;
    eg_domain *dom = *out;
    memset(dom->split_of, 0xff, (size_t)dom->classes);
    static const char *const names[3] = {"base", "val", "novel"};
    static const eg_class_split kinds[3] = {EG_SPLIT_BASE, EG_SPLIT_VAL, EG_SPLIT_NOVEL};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < s->split_count[k]; i++) {
            if (s->split[k][i] >= dom->classes)
                return eg_errorf("lft.splits.%s[%d]: class %d, but domain %s has %d classes",
                                 names[k], i, s->split[k][i], dom->name, dom->classes);
            dom->split_of[s->split[k][i]] = (uint8_t)kinds[k];
        }
    return 0;
}

static int open_data(lft *L)
{
    const eg_lft_spec *s = spec_of(L);
    for (int i = 0; i <= s->n_seen; i++) {
        char field[32];
        if (i < s->n_seen)
            snprintf(field, sizeof field, "lft.seen[%d]", i);
        else
            snprintf(field, sizeof field, "lft.unseen");
        int rc = open_domain(s, i < s->n_seen ? &s->seen[i] : &s->unseen, field, &L->domain[i]);
        if (L->domain[i]) L->n_domains = i + 1; /* destroy frees it, also after an error */
        EG_TRY(rc);
        if (L->domain[i]->c != L->domain[0]->c)
            return eg_errorf("%s: domain %s has %d channels, %s has %d", field,
                             L->domain[i]->name, L->domain[i]->c, L->domain[0]->name,
                             L->domain[0]->c);
        eg_class_index **ix = i < s->n_seen ? &L->base_ix[i] : &L->novel_ix;
        EG_TRY(eg_class_index_new(L->domain[i], i < s->n_seen ? EG_SPLIT_BASE : EG_SPLIT_NOVEL,
                                  ix));
        if (eg_class_index_check(*ix, s->n_way, s->n_shot,
                                 i < s->n_seen ? s->n_query : s->test_query) != 0)
            return eg_errorf("%s: %s", field, eg_last_error());
    }
    L->c = L->domain[0]->c;
    L->size = s->image_size;
    EG_TRY(eg_episode_new(s->n_way, s->n_shot, s->n_query, &L->ep_train));
    EG_TRY(eg_episode_new(s->n_way, s->n_shot, s->n_query, &L->ep_val));
    return eg_episode_new(s->n_way, s->n_shot, s->test_query, &L->ep_test);
}

static int depth_of(const char *backbone)
{
    return strcmp(backbone, "resnet34") == 0 ? 34 : strcmp(backbone, "resnet18") == 0 ? 18 : 10;
}

/* The networks, θ, λ, BatchNorm state and the buffers of one episode. */
static int build_model(lft *L)
{
    eg_task *t = &L->base;
    eg_backend *be = t->be;
    const eg_lft_spec *s = spec_of(L);
    int max_query = s->n_query > s->test_query ? s->n_query : s->test_query;
    int max_images = images_of(L, max_query), max_q = s->n_way * max_query;
    int max_pairs = max_q * s->n_way;
    EG_TRY(eg_model_lft_resnet(&L->bb, be, depth_of(s->backbone), s->width, L->c, L->size,
                               L->size <= 32, 1));
    /* Pre-training batches run on the same backbone. */
    int cap = s->pretrain_steps > 0 && L->job.batch_size > max_images ? L->job.batch_size
                                                                       : max_images;
    EG_TRY(eg_net_finish(&L->bb, cap, 0));
    const eg_layer *top = &L->bb.layers[L->bb.n_layers - 1];
    L->fc = top->c, L->fh = top->h, L->fw = top->w;
    L->relation = strcmp(s->metric, "relationnet") == 0;
    if (L->relation) {
        EG_TRY(eg_model_relation(&L->rel, be, L->fc, L->fh, L->fw));
        EG_TRY(eg_net_finish(&L->rel, max_pairs, 1));
    }
    L->P_bb = L->bb.params.total;
    L->S_bb = L->bb.state.total;
    t->P = L->P_bb + (L->relation ? L->rel.params.total : 0);
    t->H = L->bb.meta.total;
    size_t S = L->S_bb + (L->relation ? L->rel.state.total : 0);
    size_t D = feat_dim(L), img = (size_t)L->c * L->size * L->size;

    float *host = malloc((t->P + S + t->H + 1) * sizeof(float));
    if (!host) return eg_errorf("lft: out of memory");
    eg_net_init_params(&L->bb, host, host + t->P, L->job.seed);
    if (L->relation)
        eg_net_init_params(&L->rel, host + L->P_bb, host + t->P + L->S_bb, L->job.seed + 1);
    eg_net_init_meta(&L->bb, host + t->P + S);
    t->theta = eg_alloc_floats(be, t->P);
    t->grad = eg_alloc_floats(be, t->P);
    t->lambda = eg_alloc_floats(be, t->H);
    L->state = eg_alloc_floats(be, S + 1);
    int rc = (!t->theta || !t->grad || !t->lambda || !L->state ||
              be->upload(be, t->theta, host, t->P * sizeof(float)) ||
              be->upload(be, L->state, host + t->P, S * sizeof(float)) ||
              be->upload(be, t->lambda, host + t->P + S, t->H * sizeof(float)))
                 ? -1
                 : 0;
    free(host);
    EG_TRY(rc);

    L->x_train = eg_alloc_floats(be, (size_t)images_of(L, s->n_query) * img);
    L->x_val = eg_alloc_floats(be, (size_t)images_of(L, s->n_query) * img);
    L->x_eval = eg_alloc_floats(be, (size_t)images_of(L, s->test_query) * img);
    L->host_x = malloc((size_t)max_images * img * sizeof(float));
    L->feat_grad = eg_alloc_floats(be, (size_t)max_images * D);
    L->protos = eg_alloc_floats(be, (size_t)s->n_way * D);
    L->dprotos = eg_alloc_floats(be, (size_t)s->n_way * D);
    if (!L->x_train || !L->x_val || !L->x_eval || !L->host_x || !L->feat_grad || !L->protos ||
        !L->dprotos)
        return eg_errorf("lft: out of memory for the episode buffers");
    if (L->relation) {
        L->pairs = eg_alloc_floats(be, (size_t)max_pairs * 2 * D);
        L->dpairs = eg_alloc_floats(be, (size_t)max_pairs * 2 * D);
        if (!L->pairs || !L->dpairs) return eg_errorf("lft: out of memory for the pairs");
    } else {
        L->pooled = eg_alloc_floats(be, (size_t)max_images * L->fc);
        L->dpooled = eg_alloc_floats(be, (size_t)max_images * L->fc);
        L->scores = eg_alloc_floats(be, (size_t)max_q * s->n_way);
        if (!L->pooled || !L->dpooled || !L->scores)
            return eg_errorf("lft: out of memory for the ProtoNet buffers");
    }
    EG_TRY(eg_xent_init(&L->xe, be, max_q, s->n_way));

    /* Query labels, class-major: query class * n_query + i has label class. */
    int counts[2] = {s->n_query, s->test_query};
    int32_t **dev[2] = {&L->labels_train, &L->labels_test};
    L->host_labels_test = malloc((size_t)s->n_way * s->test_query * sizeof(int32_t));
    if (!L->host_labels_test) return eg_errorf("lft: out of memory");
    for (int k = 0; k < 2; k++) {
        int nq = s->n_way * counts[k];
        int32_t *h = k ? L->host_labels_test : malloc((size_t)nq * sizeof(int32_t));
        if (!h) return eg_errorf("lft: out of memory");
        for (int q = 0; q < nq; q++) h[q] = q / counts[k];
        *dev[k] = be->alloc(be, (size_t)nq * sizeof(int32_t));
        rc = !*dev[k] || be->upload(be, *dev[k], h, (size_t)nq * sizeof(int32_t)) ? -1 : 0;
        if (!k) free(h);
        EG_TRY(rc);
    }
    return eg_optim_init(&L->opt, be, t->P, &L->job.optimizer);
}

/* Plain classification of the seen domains' base classes by the backbone
 * (FT off) and a linear head on its pooled features, spec.pretrain_steps
 * batches of job.batch_size with Adam at the job's learning rate: the warm
 * start LFT's meta-training begins from. The head is dropped after. */
static int pretrain(lft *L)
{
    const eg_lft_spec *s = spec_of(L);
    if (s->pretrain_steps <= 0) return 0;
    eg_task *t = &L->base;
    eg_backend *be = t->be;
    int B = L->job.batch_size;
    eg_pool *pool = NULL;
    eg_net head = {0};
    eg_optim bb_opt = {0}, head_opt = {0};
    eg_xent xe = {0};
    float *th = NULL, *dth = NULL, *x = NULL, *dfeat = NULL, *host = NULL;
    int32_t *entry = NULL, *y = NULL, *host_y = NULL;
    size_t img = (size_t)L->c * L->size * L->size, D = feat_dim(L);
    int rc = -1;
    if (eg_pool_new(L->domain, s->n_seen, EG_SPLIT_BASE, &pool) != 0) goto out;
    if (eg_net_init(&head, be, L->fc, L->fh, L->fw) != 0 ||
        eg_net_avgpool(&head, 0) < 0 ||
        eg_net_linear(&head, 1, "head", pool->classes, 1, EG_INIT_UNIFORM_FAN_IN) < 0 ||
        eg_net_finish(&head, B, 1) != 0 || eg_xent_init(&xe, be, B, pool->classes) != 0)
        goto out;
    size_t Ph = head.params.total;
    float *hh = malloc((Ph + 1) * sizeof(float));
    th = eg_alloc_floats(be, Ph);
    dth = eg_alloc_floats(be, Ph);
    x = eg_alloc_floats(be, (size_t)B * img);
    dfeat = eg_alloc_floats(be, (size_t)B * D);
    host = malloc((size_t)B * img * sizeof(float));
    entry = malloc((size_t)B * sizeof(int32_t));
    host_y = malloc((size_t)B * sizeof(int32_t));
    y = be->alloc(be, (size_t)B * sizeof(int32_t));
    if (!hh || !th || !dth || !x || !dfeat || !host || !entry || !host_y || !y) {
        free(hh);
        eg_errorf("lft: out of memory for pre-training");
        goto out;
    }
    eg_net_init_params(&head, hh, NULL, L->job.seed + 2);
    rc = be->upload(be, th, hh, Ph * sizeof(float));
    free(hh);
    if (rc) goto out;
    rc = -1;
    if (eg_optim_init(&bb_opt, be, L->P_bb, &L->job.optimizer) != 0 ||
        eg_optim_init(&head_opt, be, Ph, &L->job.optimizer) != 0 ||
        eg_net_set_ft(&L->bb, NULL, NULL, 0, 0) != 0)
        goto out;
    for (long step = 0; step < s->pretrain_steps; step++) {
        if (eg_pool_draw(pool, L->job.seed, (uint64_t)step, B, entry) != 0) goto out;
        for (int i = 0; i < B; i++) {
            eg_domain *d = pool->domain[pool->entry_domain[entry[i]]];
            uint64_t stream = eg_stream_mix(eg_stream_mix(TAG_PRETRAIN, (uint64_t)step), i);
            if (d->ops->fetch(d, pool->entry_sample[entry[i]], 1, L->job.seed, stream, L->size,
                              host + (size_t)i * img) != 0)
                goto out;
            host_y[i] = pool->entry_label[entry[i]];
        }
        double loss;
        if (be->upload(be, x, host, (size_t)B * img * sizeof(float)) ||
            be->upload(be, y, host_y, (size_t)B * sizeof(int32_t)) ||
            eg_net_forward(&L->bb, t->theta, L->state, x, B, EG_TRAIN) ||
            eg_net_forward(&head, th, NULL, eg_net_output(&L->bb), B, EG_TRAIN) ||
            eg_xent_forward(&xe, eg_net_output(&head), y, B, &loss) ||
            eg_xent_backward(&xe, y, NULL, 1.0f / B, B) ||
            be->fill(be, Ph, 0.0f, dth) || be->fill(be, L->P_bb, 0.0f, t->grad) ||
            eg_net_backward(&head, th, xe.dlogits, dth, dfeat) ||
            eg_net_backward(&L->bb, t->theta, dfeat, t->grad, NULL) ||
            eg_optim_step(&bb_opt, t->theta, t->grad) || eg_optim_step(&head_opt, th, dth))
            goto out;
        if (!isfinite(loss)) {
            eg_errorf("lft: pre-training loss is %g at step %ld", loss, step);
            goto out;
        }
    }
    rc = 0;
out:
    eg_pool_free(pool);
    eg_net_free(&head);
    eg_optim_free(&bb_opt);
    eg_optim_free(&head_opt);
    eg_xent_free(&xe);
    be->free(be, th);
    be->free(be, dth);
    be->free(be, x);
    be->free(be, dfeat);
    be->free(be, y);
    free(host);
    free(entry);
    free(host_y);
    return rc;
}

int eg_lft_create(const eg_job *job, eg_backend *be, eg_task **out)
{
    lft *L = calloc(1, sizeof *L);
    if (!L) return eg_errorf("lft: out of memory");
    eg_task *t = &L->base;
    *t = (eg_task){.ops = &lft_ops, .be = be, .base_step_first = 1};
    L->job = *job;
    L->spec = EG_JOB_SECTION(&L->job, const eg_lft_spec);
    L->ft_learned = job->method != EG_METHOD_NONE || L->spec->fixed_ft;
    t->steps_per_epoch = L->spec->episodes_per_epoch;
    if (open_data(L) != 0 || build_model(L) != 0 || pretrain(L) != 0) {
        destroy(t);
        return -1;
    }
    *out = t;
    return 0;
}
