#include "optim.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "util/err.h"

eg_optim_config eg_optim_sgd_defaults(float lr)
{
    return (eg_optim_config){.kind = EG_OPT_SGD, .lr = lr, .gamma = 0.1f};
}

eg_optim_config eg_optim_sgd(float lr, float momentum, float weight_decay, int nesterov)
{
    eg_optim_config c = eg_optim_sgd_defaults(lr);
    c.momentum = momentum;
    c.weight_decay = weight_decay;
    c.nesterov = nesterov;
    return c;
}

eg_optim_config eg_optim_adam_defaults(void)
{
    return (eg_optim_config){.kind = EG_OPT_ADAM,
                             .lr = 1e-3f,
                             .beta1 = 0.9f,
                             .beta2 = 0.999f,
                             .eps = 1e-8f,
                             .gamma = 0.1f};
}

/* 1 if x is finite and lo <= x < hi. */
static int in_range(float x, float lo, float hi)
{
    return isfinite(x) && x >= lo && x < hi;
}

int eg_optim_check(const eg_optim_config *cfg)
{
    if (!cfg) return eg_errorf("optim: no config");
    if (cfg->kind != EG_OPT_SGD && cfg->kind != EG_OPT_ADAM)
        return eg_errorf("optim: kind %d is neither SGD nor Adam", (int)cfg->kind);
    if (!(isfinite(cfg->lr) && cfg->lr > 0.0f))
        return eg_errorf("optim: lr %g must be positive and finite", (double)cfg->lr);
    if (!in_range(cfg->weight_decay, 0.0f, INFINITY))
        return eg_errorf("optim: weight_decay %g must be >= 0 and finite",
                         (double)cfg->weight_decay);
    if (cfg->kind == EG_OPT_SGD) {
        if (!in_range(cfg->momentum, 0.0f, 1.0f))
            return eg_errorf("optim: momentum %g must be in [0, 1)",
                             (double)cfg->momentum);
        if (cfg->nesterov && !(cfg->momentum > 0.0f))
            return eg_errorf("optim: nesterov needs momentum > 0");
    } else {
        if (!in_range(cfg->beta1, 0.0f, 1.0f))
            return eg_errorf("optim: beta1 %g must be in [0, 1)", (double)cfg->beta1);
        if (!in_range(cfg->beta2, 0.0f, 1.0f))
            return eg_errorf("optim: beta2 %g must be in [0, 1)", (double)cfg->beta2);
        if (!(isfinite(cfg->eps) && cfg->eps > 0.0f))
            return eg_errorf("optim: eps %g must be positive and finite",
                             (double)cfg->eps);
    }
    if (cfg->n_milestones < 0 || cfg->n_milestones > EG_OPTIM_MAX_MILESTONES)
        return eg_errorf("optim: n_milestones %d must be in [0, %d]",
                         cfg->n_milestones, EG_OPTIM_MAX_MILESTONES);
    for (int i = 0; i < cfg->n_milestones; i++) {
        long prev = i > 0 ? cfg->milestones[i - 1] : 0;
        if (cfg->milestones[i] <= prev)
            return eg_errorf("optim: milestones[%d] = %ld must be > %ld "
                             "(milestones are >= 1 and strictly increasing)",
                             i, cfg->milestones[i], prev);
    }
    if (cfg->n_milestones > 0 && !(isfinite(cfg->gamma) && cfg->gamma > 0.0f))
        return eg_errorf("optim: gamma %g must be positive and finite",
                         (double)cfg->gamma);
    if (cfg->decay_steps < 0 || cfg->warmup_steps < 0 ||
        (cfg->decay_steps > 0 && cfg->warmup_steps >= cfg->decay_steps))
        return eg_errorf("optim: warmup_steps %ld must lie in [0, decay_steps %ld)",
                         cfg->warmup_steps, cfg->decay_steps);
    return 0;
}

int eg_optim_init(eg_optim *o, eg_backend *be, size_t n,
                  const eg_optim_config *cfg)
{
    memset(o, 0, sizeof *o);
    if (!be) return eg_errorf("optim: no backend");
    if (n == 0) return eg_errorf("optim: no parameters (n = 0)");
    EG_TRY(eg_optim_check(cfg));
    o->cfg = *cfg;
    o->be = be;
    o->n = n;
    int want_m = cfg->kind == EG_OPT_ADAM || cfg->momentum != 0.0f;
    int want_v = cfg->kind == EG_OPT_ADAM;
    if (want_m && !(o->m = eg_alloc_floats(be, n))) goto fail;
    if (want_v && !(o->v = eg_alloc_floats(be, n))) goto fail;
    return 0;
fail:
    eg_optim_free(o);
    memset(o, 0, sizeof *o);
    return -1;
}

float eg_optim_lr(const eg_optim *o)
{
    const eg_optim_config *c = &o->cfg;
    if (c->decay_steps > 0) {
        double s = (double)o->step, f;
        if (o->step < c->warmup_steps)
            f = s / (double)c->warmup_steps;
        else
            f = fmax(0.0, ((double)c->decay_steps - s) /
                              (double)(c->decay_steps - c->warmup_steps));
        return (float)(c->lr * f);
    }
    int passed = 0;
    for (int i = 0; i < o->cfg.n_milestones; i++)
        if (o->cfg.milestones[i] <= o->step) passed++;
    double lr = o->cfg.lr;
    for (int i = 0; i < passed; i++) lr *= o->cfg.gamma;
    return (float)lr;
}

int eg_optim_step(eg_optim *o, float *theta, const float *grad)
{
    if (!o->be) return eg_errorf("optim: step on an uninitialised optimiser");
    if (!theta || !grad) return eg_errorf("optim: step without theta or grad");
    if (o->step < 0 || o->step >= INT_MAX)
        return eg_errorf("optim: step count %ld out of range", o->step);
    const eg_optim_config *c = &o->cfg;
    float lr = eg_optim_lr(o);
    if (c->kind == EG_OPT_SGD)
        EG_TRY(o->be->sgd_step(o->be, o->n, theta, grad, o->m, lr, c->momentum,
                               c->weight_decay, c->nesterov, o->step == 0));
    else
        EG_TRY(o->be->adam_step(o->be, o->n, theta, grad, o->m, o->v, lr,
                                c->beta1, c->beta2, c->eps, c->weight_decay,
                                (int)(o->step + 1)));
    o->step++;
    return 0;
}

int eg_clip_grad_norm(eg_backend *be, size_t n, float *grad, double max_norm, double *norm)
{
    double sq;
    EG_TRY(be->dot(be, n, grad, grad, &sq));
    double nrm = sqrt(sq);
    if (!isfinite(nrm)) return eg_errorf("gradient norm is %g", nrm);
    if (norm) *norm = nrm;
    double f = max_norm / (nrm + 1e-6);
    if (max_norm > 0 && f < 1.0) EG_TRY(be->scale(be, n, (float)f, grad));
    return 0;
}

int eg_optim_checkpoint_items(eg_optim *o, const char *prefix, eg_ckpt_list *l)
{
    size_t bytes = o->n * sizeof(float);
    EG_TRY(eg_ckpt_add(l, prefix, "step", &o->step, sizeof o->step, 0));
    EG_TRY(eg_ckpt_add(l, prefix, "m", o->m, bytes, 1));
    return eg_ckpt_add(l, prefix, "v", o->v, bytes, 1);
}

void eg_optim_free(eg_optim *o)
{
    if (!o) return;
    if (o->be) {
        o->be->free(o->be, o->m);
        o->be->free(o->be, o->v);
    }
    o->m = o->v = NULL;
}
