/* A naive EvoGrad for comparison, the way the paper's code does it: the K
 * perturbed copies are stored (K parameter vectors allocated on the task's
 * backend, so its memory statistics count them), θ* is their weighted sum,
 * and ∂ℓ_V/∂ℓ_j is computed from g.θ_j - g.θ* without cancelling terms.
 * The noise is the same Philox Rademacher noise as meta/evograd.c's. */
#ifndef EG_NAIVE_EVOGRAD_H
#define EG_NAIVE_EVOGRAD_H

#include "meta/method.h"

/* Writes the hypergradient (H floats, host) of task t at `step` into
 * hyper and the validation loss into *val_loss. */
int naive_evograd(eg_task *t, const eg_evograd_opts *o, uint64_t seed, long step,
                  float *hyper, double *val_loss);

#endif
