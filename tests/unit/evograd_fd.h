/* EvoGrad's hypergradient against a finite difference of its objective
 * J(λ) = ℓ_V(θ*(λ)), θ*(λ) = θ + σ Σ_k w_k(λ) r_k, w = softmax(-ℓ_T(θ_k,
 * λ) / τ), formed here around the task's own losses with the copies and
 * weights in double and the noise r_k of meta/evograd.c (Rademacher, on
 * the task's perturbation scope). For the tasks' tests (lft, metaxl), on the
 * CPU backend (θ and λ read in place). */
#ifndef EG_EVOGRAD_FD_H
#define EG_EVOGRAD_FD_H

#include "meta/job.h"
#include "meta/task.h"

/* Takes EvoGrad's hypergradient of t at step 0 of its current batches
 * with job's options, then central differences of J at h and 2h,
 * extrapolated (Richardson), at the 4 λ entries it moves most and 4
 * others; fails the test when the worst difference passes tol x the
 * largest finite difference, or when J does not depend on λ. Prints each
 * probe, labelled with what. */
void tu_check_evograd_fd(eg_task *t, const eg_job *job, const char *what, float h, double tol);

#endif
