/* The task interface: what a meta-learning problem gives the generic
 * methods (meta/evograd.c, meta/t1t2.c) and the training loop
 * (meta/loop.c).
 *
 * A task owns a base model with parameters θ (P floats) and meta-parameters
 * λ (H floats), both flat arenas in device memory, and the data of the
 * current step: a training batch and a validation batch. θ-arguments below
 * are device vectors in θ's layout, λ-gradients device vectors of H. */
#ifndef EG_TASK_H
#define EG_TASK_H

#include <stddef.h>

#include "data/dataset.h"
#include "nn/backend.h"
#include "nn/net.h"
#include "util/ckpt.h"

struct json_t; /* jansson's, for the report hook */

/* What an evaluation measured; fields that do not apply are NaN. */
/* The losses at which an evaluation of mwn reads the VNet's weight: 0,
 * EG_VNET_CURVE_STEP, ..., (EG_VNET_CURVE - 1) x EG_VNET_CURVE_STEP. */
#define EG_VNET_CURVE 21
#define EG_VNET_CURVE_STEP 0.5

typedef struct eg_eval {
    double test_acc;        /* percent */
    double test_acc_ci95;   /* lft: 95 % interval of test_acc over test episodes */
    double test_loss;
    double dev_f1, test_f1; /* ner: entity-level F1 (percent) on the target's dev and test sets */
    double angle_deg;       /* rotation: the learned angle */
    double w_corrupted;     /* mwn: mean VNet weight of corrupted samples */
    double w_clean;         /* mwn: ... and of the samples left clean */
    int has_curve;          /* mwn: vnet_curve is set */
    float vnet_curve[EG_VNET_CURVE]; /* mwn: the VNet's weight at each loss of the grid */
} eg_eval;

typedef struct eg_task eg_task;

/* What a replay of a run outside the engine (tests/unit/trace.c) needs of
 * the current step: the base network, for its parameter layout, and the
 * samples of the step's batches, as the task holds them on the host. */
typedef struct eg_replay_view {
    const eg_net *net;
    const eg_dataset *train, *val;
    const uint32_t *train_idx, *val_idx;  /* valid until the next next_batch */
    int n_train, n_val;
} eg_replay_view;


typedef struct eg_task_ops {
    /* Draws the next step's training and validation batches. */
    int (*next_batch)(eg_task *t);

    /* ℓ_T(θ, λ) on the training batch, forward only, BatchNorm running
     * statistics untouched. When dlambda is not NULL it is overwritten
     * with ∂ℓ_T/∂λ at this θ. */
    int (*train_loss)(eg_task *t, const float *theta, double *loss,
                      float *dlambda);

    /* ∇_θ ℓ_T(θ, λ) on the training batch into dtheta (overwritten). */
    int (*train_grad)(eg_task *t, const float *theta, double *loss,
                      float *dtheta);

    /* ℓ_V(θ) on the validation batch and its gradient into dtheta
     * (overwritten); the direct term ∂ℓ_V/∂λ, where the task has one, is
     * added to dlambda. */
    int (*val_grad)(eg_task *t, const float *theta, double *loss,
                    float *dtheta, float *dlambda);

    /* The base model's ordinary training step at the current λ, on the
     * training batch; *loss is its training loss. */
    int (*base_step)(eg_task *t, double *loss);

    /* The base model's current learning rate (T1−T2's lookahead step). */
    float (*base_lr)(const eg_task *t);

    /* Evaluates the current model; fields that do not apply stay NaN. */
    int (*evaluate)(eg_task *t, eg_eval *ev);

    /* Adds the task's own results to the run's final summary object (a
     * jansson json_t); NULL when the task has none beyond eg_eval. */
    int (*report)(eg_task *t, struct json_t *summary);

    /* Appends the state a checkpoint must hold to resume the task exactly:
     * θ, λ, BatchNorm state, the base optimiser, data positions. */
    int (*checkpoint_items)(eg_task *t, eg_ckpt_list *list);

    /* Describes the current step for a replay; NULL where the task has no
     * such view. */
    int (*replay_view)(eg_task *t, eg_replay_view *view);

    void (*destroy)(eg_task *t);
} eg_task_ops;

struct eg_task {
    const eg_task_ops *ops;
    eg_backend *be;
    size_t P, H;        /* sizes of θ and λ */
    float *theta;       /* (P) base model parameters, device */
    float *lambda;      /* (H) meta-parameters, device */
    float *grad;        /* (P) the base model's gradient buffer; the
                           methods use it as scratch between base steps */
    long steps_per_epoch;
    int base_step_first; /* the base model steps before the meta-gradient
                            is taken (else after) */
    /* EvoGrad's perturbation scope: its copies perturb θ[scope_off ..
     * scope_off + scope_n) only (scope_n = 0: all of θ). While `scoped` is
     * set (EvoGrad sets it around the copies' train_loss and θ*'s
     * val_grad), every θ handed to the task equals t->theta outside the
     * scope, so the task may reuse what it computed from the rest at
     * t->theta in this step (MetaXL: the encoder's outputs), and val_grad
     * need only fill dtheta inside the scope. */
    size_t scope_off, scope_n;
    int scoped;
    /* λ's optimiser when the task schedules it itself (metaxl: warm-up
     * and decay over the job's steps); NULL: the job's meta_optimizer. */
    const struct eg_optim_config *meta_opt;
    void *impl;
};

#endif
