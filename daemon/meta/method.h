/* Hypergradient methods, generic over the task interface (meta/task.h):
 * EvoGrad (Bohdal et al. 2021) and the second-order T1−T2 baseline, plus
 * `none`, which learns nothing (λ keeps its initial value). */
#ifndef EG_METHOD_H
#define EG_METHOD_H

#include <stdint.h>

#include "meta/task.h"

typedef enum eg_method { EG_METHOD_NONE, EG_METHOD_EVOGRAD, EG_METHOD_T1T2 } eg_method;

typedef enum eg_noise { EG_NOISE_RADEMACHER, EG_NOISE_GAUSSIAN } eg_noise;

typedef struct eg_evograd_opts {
    int k;           /* model copies, >= 2 */
    float sigma;     /* noise scale */
    float tau;       /* softmax temperature */
    int antithetic;  /* copies in pairs r_2i = -r_2i-1 (needs even k) */
    eg_noise noise;  /* Rademacher (default) or Gaussian */
    int perturb;     /* the copies' perturbation scope: an index into the
                        task's perturb_scopes (meta/task_def.h); 0 = all of θ */
} eg_evograd_opts;

/* Parses "none", "evograd", "t1t2"; -1 for anything else. */
int eg_method_parse(const char *name, eg_method *out);
const char *eg_method_name(eg_method m);

/* Workspace of a method for one task. The memory rule: EvoGrad holds one
 * extra parameter vector (buf) whatever k is; the noise r_k is regenerated
 * from (seed, step, k) and never stored. g = ∇ℓ_V lives in the task's own
 * gradient buffer. */
typedef struct eg_meta {
    eg_method method;
    eg_evograd_opts evo;
    uint64_t seed;
    eg_backend *be;
    float *buf;      /* (P) θ_k, then θ*; T1−T2: θ', then θ ± εv; a scoped
                        EvoGrad (eg_task.scope_n < P): (scope_n) the scope's
                        values of θ, which it perturbs in place */
    float *dl;       /* (k, H) ∂ℓ_k/∂λ; T1−T2: (2, H) */
    float *hyper;    /* (H) the hypergradient of the last step */
    double *losses;  /* (k) ℓ_k of the last step, host */
    double *w;       /* (k) copy weights of the last step, host */
    double *dot;     /* (k) g . r_k, host */
    double val_loss; /* ℓ_V at θ* (T1−T2: at θ') */
    double hyper_norm;
} eg_meta;

/* Checks the options (naming the field on error) and allocates the
 * workspace; for EG_METHOD_NONE nothing is allocated. */
int eg_meta_init(eg_meta *m, eg_task *t, eg_method method,
                 const eg_evograd_opts *evo, uint64_t seed);

/* Validates EvoGrad options: k >= 2 (even when antithetic), sigma > 0,
 * tau > 0, all finite. */
int eg_evograd_check(const eg_evograd_opts *o);

/* Computes m->hyper = ∂ℓ_V/∂λ for the task's current batches at step
 * `step` (which keys the noise), with the method chosen at init. Leaves θ
 * and λ unchanged; overwrites the task's gradient buffer. */
int eg_meta_hypergrad(eg_meta *m, eg_task *t, long step);

/* The two methods themselves (eg_meta_hypergrad dispatches to them). */
int eg_evograd_hypergrad(eg_meta *m, eg_task *t, long step);
int eg_t1t2_hypergrad(eg_meta *m, eg_task *t);

void eg_meta_free(eg_meta *m);

#endif
