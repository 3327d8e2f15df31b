/* The meta-learning training loop, generic over tasks and methods: per
 * step, the next batches, the hypergradient and a meta-optimiser step on λ
 * (unless the method is none), then the base model's step; a record per
 * step and an evaluation every eval_every steps and at the end. The
 * foreground runner and the daemon's workers both run it. */
#ifndef EG_LOOP_H
#define EG_LOOP_H

#include "meta/method.h"
#include "nn/optim.h"
#include "util/clock.h"

#define EG_RECORD_MAX_LAMBDA 16
#define EG_RECORD_MAX_K 16

/* What one step did (DESIGN.md §4's step row). */
typedef struct eg_step_record {
    long step;              /* 0-based */
    long epoch;
    double train_loss;      /* the base step's */
    double meta_loss;       /* ℓ_V at θ* (NaN for none) */
    double hyper_norm;      /* ‖∂ℓ_V/∂λ‖ (NaN for none) */
    int n_lambda;           /* H; lambda[] holds all values when H <= 16 */
    float lambda[EG_RECORD_MAX_LAMBDA];
    double lambda_norm;     /* ‖λ‖ */
    int k;                  /* copy weights recorded (0 for none) */
    double w[EG_RECORD_MAX_K];
    double step_ms, meta_ms;
    size_t cur_bytes, peak_bytes;
} eg_step_record;

typedef struct eg_loop_sink {
    /* Called after every step; a non-zero return stops the loop. */
    int (*step)(void *ctx, const eg_step_record *r);
    /* Called after every evaluation. */
    int (*eval)(void *ctx, long step, const eg_eval *ev);
    void *ctx;
} eg_loop_sink;

typedef struct eg_loop_config {
    eg_method method;
    eg_evograd_opts evo;
    eg_optim_config meta_opt;  /* the meta-optimiser on λ */
    long steps;                /* total steps */
    long eval_every;           /* 0: only at the end */
    uint64_t seed;             /* keys the EvoGrad noise */
    volatile int *cancel;      /* checked every step; may be NULL */
} eg_loop_config;

typedef struct eg_loop_result {
    long steps;
    eg_eval last_eval;
    double mean_step_ms, mean_meta_ms;
    size_t peak_bytes;
    int canceled;
} eg_loop_result;

/* A run in progress: the loop's state between steps, so that a worker can
 * step it, checkpoint it and resume it. */
typedef struct eg_run {
    eg_task *t;
    eg_loop_config cfg;
    eg_meta meta;
    eg_optim meta_opt;
    long step;          /* the next step to run */
    float *host_lambda; /* (H) */
    double sum_step_ms, sum_meta_ms;
    long timed_steps;   /* steps run by this process (for the means) */
} eg_run;

int eg_run_init(eg_run *run, eg_task *t, const eg_loop_config *cfg);

/* Runs step run->step into *r and advances; -1 with eg_errorf when the step
 * failed (a non-finite loss or hypergradient included). */
int eg_run_step(eg_run *run, eg_step_record *r);

/* Evaluates the task now; fields that do not apply are NaN. */
int eg_run_evaluate(eg_run *run, eg_eval *ev);

/* Whether an evaluation is due after the step just run. */
int eg_run_eval_due(const eg_run *run);

/* Writes everything needed to resume — the step, λ's optimiser, and the
 * task's state (θ, λ, BatchNorm state, base optimiser, data positions) — to
 * path by writing path.tmp and renaming it over path. */
int eg_run_save(eg_run *run, const char *path);

/* Restores a checkpoint written by eg_run_save for the same job; refuses,
 * naming the cause, a file whose items do not match this run's in name and
 * size, a truncated one and one whose checksum fails (meta/ckpt_file.h). */
int eg_run_load(eg_run *run, const char *path);

void eg_run_free(eg_run *run);

/* Runs cfg->steps steps of task t. Returns 0 when every step ran (or the
 * run was canceled, res->canceled set), -1 with eg_errorf when a step
 * failed (for example a non-finite loss). */
int eg_loop_run(eg_task *t, const eg_loop_config *cfg, const eg_loop_sink *sink,
                eg_loop_result *res);

#endif
