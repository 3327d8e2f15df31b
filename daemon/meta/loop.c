#include "meta/loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meta/ckpt_file.h"
#include "util/err.h"

static void eval_init(eg_eval *ev)
{
    ev->test_acc = ev->test_acc_ci95 = ev->test_loss = ev->angle_deg = ev->w_corrupted =
        ev->w_clean = ev->dev_f1 = ev->test_f1 = NAN;
}

int eg_run_init(eg_run *run, eg_task *t, const eg_loop_config *cfg)
{
    *run = (eg_run){.t = t, .cfg = *cfg};
    run->host_lambda = malloc((t->H + 1) * sizeof(float));
    if (!run->host_lambda) return eg_errorf("run: out of memory");
    if (eg_meta_init(&run->meta, t, cfg->method, &cfg->evo, cfg->seed) != 0 ||
        (cfg->method != EG_METHOD_NONE &&
         eg_optim_init(&run->meta_opt, t->be, t->H, &cfg->meta_opt) != 0)) {
        eg_run_free(run);
        return -1;
    }
    return 0;
}

/* Copies λ (its values when few, always its norm) into the record. */
static int record_lambda(eg_run *run, eg_step_record *r)
{
    eg_task *t = run->t;
    float *h = run->host_lambda;
    EG_TRY(t->be->download(t->be, h, t->lambda, t->H * sizeof(float)));
    double sq = 0;
    for (size_t i = 0; i < t->H; i++) sq += (double)h[i] * h[i];
    r->lambda_norm = sqrt(sq);
    r->n_lambda = (int)t->H;
    if (t->H <= EG_RECORD_MAX_LAMBDA) memcpy(r->lambda, h, t->H * sizeof(float));
    return 0;
}

/* The meta-gradient of the current step and λ's step; *meta_ms its time. */
static int meta_step(eg_run *run, eg_step_record *r, double *meta_ms)
{
    eg_task *t = run->t;
    double t0 = eg_now_ms();
    *meta_ms = 0;
    if (run->cfg.method == EG_METHOD_NONE) return 0;
    eg_meta *m = &run->meta;
    EG_TRY(eg_meta_hypergrad(m, t, r->step));
    if (!isfinite(m->hyper_norm))
        return eg_errorf("hypergradient is not finite at step %ld", r->step);
    EG_TRY(eg_optim_step(&run->meta_opt, t->lambda, m->hyper));
    r->meta_loss = m->val_loss;
    r->hyper_norm = m->hyper_norm;
    r->k = run->cfg.method == EG_METHOD_EVOGRAD ? run->cfg.evo.k : 0;
    if (r->k > EG_RECORD_MAX_K) r->k = EG_RECORD_MAX_K;
    memcpy(r->w, m->w, (size_t)r->k * sizeof(double));
    *meta_ms = eg_now_ms() - t0;
    return 0;
}

int eg_run_step(eg_run *run, eg_step_record *r)
{
    eg_task *t = run->t;
    eg_backend *be = t->be;
    const long step = run->step;
    *r = (eg_step_record){.step = step, .meta_loss = NAN, .hyper_norm = NAN};
    r->epoch = t->steps_per_epoch > 0 ? step / t->steps_per_epoch : 0;
    double t0 = eg_now_ms(), meta_ms;
    EG_TRY(t->ops->next_batch(t));
    if (!t->base_step_first) EG_TRY(meta_step(run, r, &meta_ms));
    EG_TRY(t->ops->base_step(t, &r->train_loss));
    if (t->base_step_first) EG_TRY(meta_step(run, r, &meta_ms));
    EG_TRY(be->sync(be));
    if (!isfinite(r->train_loss))
        return eg_errorf("training loss is %g at step %ld", r->train_loss, step);
    double t3 = eg_now_ms();
    r->meta_ms = meta_ms;
    r->step_ms = t3 - t0;
    run->sum_step_ms += r->step_ms;
    run->sum_meta_ms += r->meta_ms;
    run->timed_steps++;
    r->cur_bytes = be->cur_bytes;
    r->peak_bytes = be->peak_bytes;
    EG_TRY(record_lambda(run, r));
    run->step++;
    return 0;
}

int eg_run_eval_due(const eg_run *run)
{
    long done = run->step, every = run->cfg.eval_every;
    return done == run->cfg.steps || (every > 0 && done % every == 0);
}

int eg_run_evaluate(eg_run *run, eg_eval *ev)
{
    eval_init(ev);
    return run->t->ops->evaluate(run->t, ev);
}

/* The run's own items, then the task's; returns their number or -1. */
static int items(eg_run *run, eg_ckpt_item *it, int max)
{
    eg_ckpt_list l = {it, 0, max};
    EG_TRY(eg_ckpt_add(&l, "run", "step", &run->step, sizeof run->step, 0));
    if (run->cfg.method != EG_METHOD_NONE)
        EG_TRY(eg_optim_checkpoint_items(&run->meta_opt, "meta_optimizer", &l));
    EG_TRY(run->t->ops->checkpoint_items(run->t, &l));
    return l.n;
}

int eg_run_save(eg_run *run, const char *path)
{
    eg_ckpt_item it[EG_CKPT_MAX_ITEMS];
    int n = items(run, it, EG_CKPT_MAX_ITEMS);
    return n < 0 ? -1 : eg_ckpt_file_write(run->t->be, path, it, n);
}

int eg_run_load(eg_run *run, const char *path)
{
    eg_ckpt_item it[EG_CKPT_MAX_ITEMS];
    int n = items(run, it, EG_CKPT_MAX_ITEMS);
    return n < 0 ? -1 : eg_ckpt_file_read(run->t->be, path, it, n);
}

void eg_run_free(eg_run *run)
{
    eg_optim_free(&run->meta_opt);
    eg_meta_free(&run->meta);
    free(run->host_lambda);
    run->host_lambda = NULL;
}

int eg_loop_run(eg_task *t, const eg_loop_config *cfg, const eg_loop_sink *sink,
                eg_loop_result *res)
{
    *res = (eg_loop_result){0};
    eval_init(&res->last_eval);
    eg_run run;
    EG_TRY(eg_run_init(&run, t, cfg));
    int rc = 0;
    while (run.step < cfg->steps) {
        if (cfg->cancel && *cfg->cancel) {
            res->canceled = 1;
            break;
        }
        eg_step_record r;
        if ((rc = eg_run_step(&run, &r)) != 0) break;
        if (sink && sink->step && sink->step(sink->ctx, &r) != 0) break;
        if (eg_run_eval_due(&run)) {
            if ((rc = eg_run_evaluate(&run, &res->last_eval)) != 0) break;
            if (sink && sink->eval) sink->eval(sink->ctx, r.step, &res->last_eval);
        }
    }
    res->steps = run.step;
    res->mean_step_ms = run.timed_steps ? run.sum_step_ms / run.timed_steps : 0;
    res->mean_meta_ms = run.timed_steps ? run.sum_meta_ms / run.timed_steps : 0;
    res->peak_bytes = t->be->peak_bytes;
    eg_run_free(&run);
    return rc;
}
