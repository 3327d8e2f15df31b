#include "meta/loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"

static void eval_init(eg_eval *ev)
{
    ev->test_acc = ev->test_loss = ev->angle_deg = ev->w_corrupted = ev->w_clean = NAN;
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

int eg_run_step(eg_run *run, eg_step_record *r)
{
    eg_task *t = run->t;
    eg_backend *be = t->be;
    const long step = run->step;
    *r = (eg_step_record){.step = step, .meta_loss = NAN, .hyper_norm = NAN};
    r->epoch = t->steps_per_epoch > 0 ? step / t->steps_per_epoch : 0;
    double t0 = eg_now_ms();
    EG_TRY(t->ops->next_batch(t));
    double t1 = eg_now_ms();
    if (run->cfg.method != EG_METHOD_NONE) {
        eg_meta *m = &run->meta;
        EG_TRY(eg_meta_hypergrad(m, t, step));
        if (!isfinite(m->hyper_norm))
            return eg_errorf("hypergradient is not finite at step %ld", step);
        EG_TRY(eg_optim_step(&run->meta_opt, t->lambda, m->hyper));
        r->meta_loss = m->val_loss;
        r->hyper_norm = m->hyper_norm;
        r->k = run->cfg.method == EG_METHOD_EVOGRAD ? run->cfg.evo.k : 0;
        if (r->k > EG_RECORD_MAX_K) r->k = EG_RECORD_MAX_K;
        memcpy(r->w, m->w, (size_t)r->k * sizeof(double));
    }
    double t2 = eg_now_ms();
    EG_TRY(t->ops->base_step(t, &r->train_loss));
    EG_TRY(be->sync(be));
    if (!isfinite(r->train_loss))
        return eg_errorf("training loss is %g at step %ld", r->train_loss, step);
    double t3 = eg_now_ms();
    r->meta_ms = t2 - t1;
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

#define CKPT_MAGIC "EGCKPT1"

int eg_run_save(eg_run *run, const char *path)
{
    eg_backend *be = run->t->be;
    eg_ckpt_item it[EG_CKPT_MAX_ITEMS];
    int n = items(run, it, EG_CKPT_MAX_ITEMS);
    if (n < 0) return -1;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return eg_errorf("checkpoint: path too long: %s", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return eg_errorf("checkpoint: cannot create %s", tmp);
    int ok = fwrite(CKPT_MAGIC, 8, 1, f) == 1 && fwrite(&n, sizeof n, 1, f) == 1;
    void *host = NULL;
    for (int i = 0; ok && i < n; i++) {
        uint32_t len = (uint32_t)strlen(it[i].name);
        uint64_t bytes = it[i].bytes;
        const void *src = it[i].ptr;
        if (it[i].device) {
            free(host);
            ok = (host = malloc(bytes ? bytes : 1)) != NULL &&
                 be->download(be, host, it[i].ptr, bytes) == 0;
            src = host;
        }
        ok = ok && fwrite(&len, sizeof len, 1, f) == 1 && fwrite(it[i].name, len, 1, f) == 1 &&
             fwrite(&bytes, sizeof bytes, 1, f) == 1 && (!bytes || fwrite(src, bytes, 1, f) == 1);
    }
    free(host);
    ok = fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return eg_errorf("checkpoint: writing %s failed", path);
    }
    return 0;
}

int eg_run_load(eg_run *run, const char *path)
{
    eg_backend *be = run->t->be;
    eg_ckpt_item it[EG_CKPT_MAX_ITEMS];
    int n = items(run, it, EG_CKPT_MAX_ITEMS), count;
    if (n < 0) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return eg_errorf("checkpoint: cannot open %s", path);
    char magic[8];
    int rc = 0;
    if (fread(magic, 8, 1, f) != 1 || memcmp(magic, CKPT_MAGIC, 8) != 0 ||
        fread(&count, sizeof count, 1, f) != 1 || count != n)
        rc = eg_errorf("checkpoint: %s is not a checkpoint of this job", path);
    void *host = NULL;
    for (int i = 0; rc == 0 && i < n; i++) {
        uint32_t len;
        uint64_t bytes;
        char name[128];
        if (fread(&len, sizeof len, 1, f) != 1 || len >= sizeof name ||
            fread(name, len, 1, f) != 1 || fread(&bytes, sizeof bytes, 1, f) != 1) {
            rc = eg_errorf("checkpoint: %s is truncated", path);
            break;
        }
        name[len] = '\0';
        if (strcmp(name, it[i].name) != 0 || bytes != it[i].bytes) {
            rc = eg_errorf("checkpoint: %s holds %s (%llu bytes) where this job has %s (%zu)",
                           path, name, (unsigned long long)bytes, it[i].name, it[i].bytes);
            break;
        }
        void *dst = it[i].ptr;
        if (it[i].device) {
            free(host);
            if (!(host = malloc(bytes ? bytes : 1))) {
                rc = eg_errorf("checkpoint: out of memory");
                break;
            }
            dst = host;
        }
        if (bytes && fread(dst, bytes, 1, f) != 1) {
            rc = eg_errorf("checkpoint: %s is truncated", path);
            break;
        }
        if (it[i].device && be->upload(be, it[i].ptr, host, bytes) != 0) rc = -1;
    }
    free(host);
    fclose(f);
    return rc;
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
