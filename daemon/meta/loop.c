#include "meta/loop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"

double eg_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

/* Copies λ (its values when few, always its norm) into the record. */
static int record_lambda(eg_task *t, eg_step_record *r, float *host_lambda)
{
    eg_backend *be = t->be;
    EG_TRY(be->download(be, host_lambda, t->lambda, t->H * sizeof(float)));
    double sq = 0;
    for (size_t i = 0; i < t->H; i++) sq += (double)host_lambda[i] * host_lambda[i];
    r->lambda_norm = sqrt(sq);
    r->n_lambda = (int)t->H;
    if (t->H <= EG_RECORD_MAX_LAMBDA) memcpy(r->lambda, host_lambda, t->H * sizeof(float));
    return 0;
}

static void eval_init(eg_eval *ev)
{
    ev->test_acc = ev->test_loss = ev->angle_deg = ev->w_corrupted = ev->w_clean = NAN;
}

int eg_loop_run(eg_task *t, const eg_loop_config *cfg, const eg_loop_sink *sink,
                eg_loop_result *res)
{
    eg_backend *be = t->be;
    eg_meta meta;
    eg_optim meta_opt = {0};
    *res = (eg_loop_result){0};
    eval_init(&res->last_eval);
    float *host_lambda = malloc((t->H + 1) * sizeof(float));
    if (!host_lambda) return eg_errorf("loop: out of memory");
    if (eg_meta_init(&meta, t, cfg->method, &cfg->evo, cfg->seed) != 0) {
        free(host_lambda);
        return -1;
    }
    int rc = 0;
    if (cfg->method != EG_METHOD_NONE) rc = eg_optim_init(&meta_opt, be, t->H, &cfg->meta_opt);
    double sum_step = 0, sum_meta = 0;
    long step;
    for (step = 0; rc == 0 && step < cfg->steps; step++) {
        if (cfg->cancel && *cfg->cancel) {
            res->canceled = 1;
            break;
        }
        eg_step_record r = {.step = step, .meta_loss = NAN, .hyper_norm = NAN};
        r.epoch = t->steps_per_epoch > 0 ? step / t->steps_per_epoch : 0;
        double t0 = eg_now_ms();
        if ((rc = t->ops->next_batch(t)) != 0) break;
        double t1 = eg_now_ms();
        if (cfg->method != EG_METHOD_NONE) {
            if ((rc = eg_meta_hypergrad(&meta, t, step)) != 0) break;
            if (!isfinite(meta.hyper_norm)) {
                rc = eg_errorf("hypergradient is not finite at step %ld", step);
                break;
            }
            if ((rc = eg_optim_step(&meta_opt, t->lambda, meta.hyper)) != 0) break;
            r.meta_loss = meta.val_loss;
            r.hyper_norm = meta.hyper_norm;
            r.k = cfg->method == EG_METHOD_EVOGRAD ? cfg->evo.k : 0;
            if (r.k > EG_RECORD_MAX_K) r.k = EG_RECORD_MAX_K;
            memcpy(r.w, meta.w, (size_t)r.k * sizeof(double));
        }
        double t2 = eg_now_ms();
        if ((rc = t->ops->base_step(t, &r.train_loss)) != 0) break;
        if ((rc = be->sync(be)) != 0) break;
        if (!isfinite(r.train_loss)) {
            rc = eg_errorf("training loss is %g at step %ld", r.train_loss, step);
            break;
        }
        double t3 = eg_now_ms();
        r.meta_ms = t2 - t1;
        r.step_ms = t3 - t0;
        sum_step += r.step_ms;
        sum_meta += r.meta_ms;
        r.cur_bytes = be->cur_bytes;
        r.peak_bytes = be->peak_bytes;
        if ((rc = record_lambda(t, &r, host_lambda)) != 0) break;
        if (sink && sink->step && sink->step(sink->ctx, &r) != 0) {
            step++;
            break;
        }
        int last = step + 1 == cfg->steps;
        if (last || (cfg->eval_every > 0 && (step + 1) % cfg->eval_every == 0)) {
            eval_init(&res->last_eval);
            if ((rc = t->ops->evaluate(t, &res->last_eval)) != 0) break;
            if (sink && sink->eval) sink->eval(sink->ctx, step, &res->last_eval);
        }
    }
    res->steps = step;
    res->mean_step_ms = step ? sum_step / step : 0;
    res->mean_meta_ms = step ? sum_meta / step : 0;
    res->peak_bytes = be->peak_bytes;
    eg_optim_free(&meta_opt);
    eg_meta_free(&meta);
    free(host_lambda);
    return rc;
}
