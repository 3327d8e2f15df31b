/* An optimiser over a flat parameter arena on any backend: PyTorch's SGD
 * (momentum, nesterov, L2 weight decay) and Adam (L2 weight decay), with a
 * step learning-rate schedule (PyTorch's MultiStepLR stepped once per
 * optimiser step).
 *
 * The moments live on the backend in the layout of θ; a checkpoint of the
 * optimiser is o->m, o->v (each n floats where not NULL) and o->step. */
#ifndef EG_OPTIM_H
#define EG_OPTIM_H

#include <stddef.h>

#include "nn/backend.h"
#include "util/ckpt.h"

typedef enum { EG_OPT_SGD, EG_OPT_ADAM } eg_opt_kind;

#define EG_OPTIM_MAX_MILESTONES 8

typedef struct eg_optim_config {
    eg_opt_kind kind;
    float lr;
    float momentum;      /* SGD; 0 disables the momentum buffer */
    float weight_decay;  /* L2 penalty added to the gradient */
    float beta1, beta2;  /* Adam */
    float eps;           /* Adam */
    int nesterov;        /* SGD; needs momentum > 0 */
    /* Step schedule: the lr of step s + 1 (s steps taken) is
     * lr * gamma^(number of milestones <= s). Milestones count optimiser
     * steps, are >= 1 and strictly increasing. */
    int n_milestones;
    long milestones[EG_OPTIM_MAX_MILESTONES];
    float gamma;
    /* Linear schedule, used instead of the milestones when decay_steps > 0
     * (transformers' get_linear_schedule_with_warmup): with s steps
     * taken, the lr of the next step is lr * s / warmup_steps while s <
     * warmup_steps, then lr * max(0, (decay_steps - s) / (decay_steps -
     * warmup_steps)); 0 <= warmup_steps < decay_steps. */
    long warmup_steps, decay_steps;
} eg_optim_config;

typedef struct eg_optim {
    eg_optim_config cfg;
    eg_backend *be;
    size_t n;
    float *m, *v; /* device buffers (n), layout of θ; NULL where unused:
                   * SGD keeps its momentum buffer in m (NULL when
                   * momentum = 0) and no v; Adam keeps both. */
    long step;    /* steps taken */
} eg_optim;

/* PyTorch's SGD defaults (momentum 0, no weight decay, no nesterov) with
 * the given learning rate, which PyTorch requires; no milestones, gamma
 * 0.1. */
eg_optim_config eg_optim_sgd_defaults(float lr);

/* SGD with the given momentum, weight decay and nesterov flag. */
eg_optim_config eg_optim_sgd(float lr, float momentum, float weight_decay, int nesterov);

/* PyTorch's Adam defaults: lr 1e-3, betas 0.9 and 0.999, eps 1e-8, no
 * weight decay; no milestones, gamma 0.1. */
eg_optim_config eg_optim_adam_defaults(void);

/* Checks cfg; 0 or -1 with a message naming the offending field. */
int eg_optim_check(const eg_optim_config *cfg);

/* Validates cfg and allocates zeroed moments for n parameters through
 * be->alloc (so the backend's memory statistics count them). On failure o
 * holds nothing and needs no eg_optim_free. */
int eg_optim_init(eg_optim *o, eg_backend *be, size_t n,
                  const eg_optim_config *cfg);

/* The learning rate the next step will use. */
float eg_optim_lr(const eg_optim *o);

/* One update of theta (n, device) from grad (n, device); advances the step
 * count and the schedule. On failure the step count is unchanged. */
int eg_optim_step(eg_optim *o, float *theta, const float *grad);

/* Scales grad (n, device) so that its L2 norm is at most max_norm, as
 * torch.nn.utils.clip_grad_norm_ does (factor max_norm / (norm + 1e-6)
 * when that is below 1); the norm before clipping goes to *norm (may be
 * NULL). max_norm <= 0 only measures. A non-finite norm is an error. */
int eg_clip_grad_norm(eg_backend *be, size_t n, float *grad, double max_norm, double *norm);

/* Appends the optimiser's state (step, m, v) as "prefix.step" etc. */
int eg_optim_checkpoint_items(eg_optim *o, const char *prefix, eg_ckpt_list *l);

/* Frees the moments; o may be zeroed, freed already or failed in init. */
void eg_optim_free(eg_optim *o);

#endif
