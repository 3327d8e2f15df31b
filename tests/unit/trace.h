/* A trace of a meta-learning run for replaying it outside the engine
 * (tests/parity/replay_rotation.py): per step, everything the step read —
 * θ, λ, the batches' samples, EvoGrad's noise signs — and everything it
 * computed — the copies' losses, weights, ∂ℓ_k/∂λ, ℓ_V, the hypergradient
 * and λ after the meta-optimiser's step.
 *
 * The trace is a folder of raw little-endian arrays, one file per quantity,
 * one row per step (DIR/meta.json lists the files, their element types and
 * row shapes, and the job):
 *   theta.f32 (P)         θ the step started from
 *   lambda.f32 (H)        λ the step started from
 *   lambda_after.f32 (H)  λ after the meta step
 *   hyper.f32 (H)         the hypergradient
 *   base_lr.f32 (1)       the base optimiser's learning rate (T1−T2's α)
 *   val_loss.f64 (1)      ℓ_V at θ* (T1−T2: at θ')
 *   train_n.i32 (1), train_x.f32 (B, C, H, W), train_y.i32 (B)
 *   val_n.i32 (1), val_x.f32 (B, C, H, W), val_y.i32 (B)
 *                         the batches as the task holds its samples (rows
 *                         padded with zeros beyond *_n)
 *   losses.f64 (K), w.f64 (K), dl.f32 (K, H)   EvoGrad: ℓ_k, w_k, ∂ℓ_k/∂λ
 *   noise.i8 (K, P)       EvoGrad: r_k as the signs of θ_k - θ
 *   t1t2_loss.f64 (1)     T1−T2: ℓ_T(θ) of the lookahead
 *   record.f64 (5)        the step record (what the daemon logs): the base
 *                         step's training loss, the meta loss, the
 *                         hypergradient's norm, λ's norm and λ[0]
 *   record_w.f64 (K)      EvoGrad: the record's copy weights */
#ifndef EG_TRACE_H
#define EG_TRACE_H

#include "meta/job.h"

/* Runs the first `steps` steps of job on the CPU and writes their trace
 * into the existing folder dir. The task must have a replay view. 0, or -1
 * with eg_errorf. */
int tr_trace_job(const eg_job *job, long steps, const char *dir);

#endif
