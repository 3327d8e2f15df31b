/* Checks the tasks' tests share, on the CPU backend.
 *
 * EvoGrad's hypergradient against a finite difference of its objective
 * J(λ) = ℓ_V(θ*(λ)), θ*(λ) = θ + σ Σ_k w_k(λ) r_k, w = softmax(-ℓ_T(θ_k,
 * λ) / τ), formed here around the task's own losses with the copies and
 * weights in double and the noise r_k of meta/evograd.c (Rademacher, on
 * the task's perturbation scope). For the tasks' tests (lft, metaxl), on the
 * CPU backend (θ and λ read in place). */
#ifndef EG_TASK_CHECKS_H
#define EG_TASK_CHECKS_H

#include "meta/job.h"
#include "meta/task.h"

/* Takes EvoGrad's hypergradient of t at step 0 of its current batches
 * with job's options, then central differences of J at h and 2h,
 * extrapolated (Richardson), at the 4 λ entries it moves most and 4
 * others; fails the test when the worst difference passes tol x the
 * largest finite difference, or when J does not depend on λ. Prints each
 * probe, labelled with what. */
void tu_check_evograd_fd(eg_task *t, const eg_job *job, const char *what, float h, double tol);

/* Resume: job (steps >= 2) run straight through, and half of it, a
 * checkpoint to path, a fresh task loading it and the other half, end
 * with the same θ and λ bit for bit (and θ moved by the second half). */
void tu_check_resume(const eg_job *job, eg_backend *be, const char *path);

#endif
