/* The store interface: the backend a database string names, and each of
 * store.h's functions dispatched to it (store_ops.h). */
#include "store/store_ops.h"

#include <string.h>

#include <jansson.h>

#include "store/step_rows.h"
#include "util/err.h"

int eg_store_db_is_postgres(const char *db)
{
    if (!db) return 0;
    if (strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0) return 1;
    /* A conninfo string: key=value pairs, e.g. "host=/run/postgresql
     * dbname=evograd". A file path holds no '=' before its first '/'. */
    const char *eq = strchr(db, '='), *slash = strchr(db, '/');
    return eq && (!slash || eq < slash);
}

int eg_store_open(const char *db, eg_store **out)
{
    *out = NULL;
    return eg_store_db_is_postgres(db) ? eg_pg_open(db, out) : eg_sqlite_open(db, out);
}

const char *eg_store_kind(const eg_store *s)
{
    return s->ops->kind;
}

void eg_store_close(eg_store *s)
{
    if (s) s->ops->close(s);
}

int eg_store_out_of_space(eg_store *s)
{
    return s->ops->out_of_space ? s->ops->out_of_space(s) : 0;
}

int eg_store_set_wake(eg_store *s, void (*wake)(void *ctx), void *ctx)
{
    return s->ops->set_wake ? s->ops->set_wake(s, wake, ctx) : 0;
}

int eg_store_steps_page(eg_store *s, int64_t job, long after, int limit, int max_points,
                        char **text, size_t *len)
{
    *text = NULL;
    eg_step_page p;
    eg_step_page_begin(&p);
    int more = 0;
    int rc = eg_store_steps_read(s, job, after, limit, max_points, eg_step_page_add, &p, &more);
    return eg_step_page_end(&p, rc, more, text, len);
}

int eg_store_steps_column(const char *name)
{
    for (int i = 0; i < EG_STEPS_MINMAX; i++)
        if (strcmp(eg_steps_minmax_cols[i], name) == 0) return i;
    return -1;
}

const char *const eg_store_states[5] = {"queued", "running", "succeeded", "failed", "canceled"};

int eg_store_state_index(const char *state)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(state, eg_store_states[i]) == 0) return i;
    return -1;
}

int eg_store_is_json(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    int ok = v != NULL;
    json_decref(v);
    return ok;
}

static _Thread_local int last_full, last_unreachable;

void eg_store_note_failure(int full)
{
    last_full = full;
}

int eg_store_failed_full(void)
{
    return last_full;
}

void eg_store_note_unreachable(int unreachable)
{
    last_unreachable = unreachable;
}

int eg_store_failed_unreachable(void)
{
    return last_unreachable;
}

int eg_store_flush(eg_store *s)
{
    return s->ops->flush(s);
}

int eg_store_job_insert(eg_store *s, const char *spec_json, const char *task, const char *method,
                        const char *device, long total_steps, int64_t *id)
{
    if (!eg_store_is_json(spec_json)) return eg_errorf("store: the job spec is not JSON");
    return s->ops->job_insert(s, spec_json, task, method, device, total_steps, id);
}

int eg_store_job_get(eg_store *s, int64_t id, struct json_t **out)
{
    return s->ops->job_get(s, id, out);
}

int eg_store_jobs_list(eg_store *s, const char *state, int64_t after, int limit,
                       struct json_t **out)
{
    *out = NULL;
    if (limit <= 0) return eg_errorf("store: jobs page limit must be positive");
    if (state && eg_store_state_index(state) < 0)
        return eg_errorf("store: no job state '%s'", state);
    return s->ops->jobs_list(s, state, after, limit, out);
}

int eg_store_job_counts(eg_store *s, long counts[5])
{
    return s->ops->job_counts(s, counts);
}

int eg_store_newest_job(eg_store *s, int64_t *id)
{
    return s->ops->newest_job(s, id);
}

int eg_store_oldest_queued_age(eg_store *s, double *seconds)
{
    return s->ops->oldest_queued_age(s, seconds);
}

int eg_store_job_claim(eg_store *s, const char *const *devices, const char *worker, double lease_s,
                       eg_claim *c)
{
    return s->ops->job_claim(s, devices, worker, lease_s, c);
}

int eg_store_job_renew(eg_store *s, int64_t id, int attempt, double lease_s)
{
    return s->ops->job_renew(s, id, attempt, lease_s);
}

int eg_store_leases_expire(eg_store *s, int max_lost, int *requeued, int *failed)
{
    return s->ops->leases_expire(s, max_lost, requeued, failed);
}

int eg_store_job_set_total(eg_store *s, int64_t id, int attempt, long total_steps)
{
    return s->ops->job_set_total(s, id, attempt, total_steps);
}

int eg_store_job_finish(eg_store *s, int64_t id, int attempt, const char *state, const char *error,
                        const char *summary_json)
{
    int want = eg_store_state_index(state);
    if (want < 0 || want == 1) return eg_errorf("store: cannot finish a job as '%s'", state);
    if (summary_json && !eg_store_is_json(summary_json))
        return eg_errorf("store: the job summary is not JSON");
    return s->ops->job_finish(s, id, attempt, state, error, summary_json);
}

int eg_store_job_cancel(eg_store *s, int64_t id)
{
    return s->ops->job_cancel(s, id);
}

int eg_store_job_cancel_requested(eg_store *s, int64_t id, int attempt)
{
    return s->ops->job_cancel_requested(s, id, attempt);
}

int eg_store_job_delete(eg_store *s, int64_t id)
{
    return s->ops->job_delete(s, id);
}

int eg_store_requeue_running(eg_store *s, const char *worker)
{
    return s->ops->requeue_running(s, worker);
}

int eg_store_worker_beat(eg_store *s, const eg_store_worker *w)
{
    return s->ops->worker_beat(s, w);
}

int eg_store_workers(eg_store *s, double alive_s, struct json_t **out)
{
    return s->ops->workers(s, alive_s, out);
}

int eg_store_step_append(eg_store *s, int64_t job, int attempt, const eg_step_record *r)
{
    return s->ops->step_append(s, job, attempt, r);
}

int eg_store_steps_read(eg_store *s, int64_t job, long after, int limit, int max_points,
                        eg_step_row_fn fn, void *ctx, int *more)
{
    *more = 0;
    if (limit <= 0) return eg_errorf("store: steps page limit must be positive");
    return s->ops->steps_read(s, job, after, limit, max_points, fn, ctx, more);
}

int eg_store_steps_minmax_page(eg_store *s, int64_t job, long after, int limit, int max_points,
                               const char *by, char **text, size_t *len)
{
    *text = NULL;
    int cols[EG_STEPS_MINMAX], n_cols = eg_steps_parse_columns(by, cols);
    if (n_cols < 0) return -1;
    if (limit <= 0 || max_points <= 0) return eg_errorf("store: bad steps page");
    eg_step_page p;
    eg_step_page_begin(&p);
    int more = 0;
    int rc = s->ops->steps_minmax(s, job, after, limit, max_points, cols, n_cols, &p, &more);
    return eg_step_page_end(&p, rc, more, text, len);
}

int eg_store_sweep_insert(eg_store *s, const char *name, const char *request_json,
                          const eg_store_job_row *rows, int n, int64_t *id)
{
    return s->ops->sweep_insert(s, name, request_json, rows, n, id);
}

int eg_store_sweep_get(eg_store *s, int64_t id, struct json_t **out)
{
    return s->ops->sweep_get(s, id, out);
}

int eg_store_sweeps_list(eg_store *s, int64_t after, int limit, struct json_t **out)
{
    *out = NULL;
    if (limit <= 0) return eg_errorf("store: sweeps page limit must be positive");
    return s->ops->sweeps_list(s, after, limit, out);
}

int eg_store_sweep_cancel(eg_store *s, int64_t id, int *n)
{
    return s->ops->sweep_cancel(s, id, n);
}

int eg_store_sweep_delete(eg_store *s, int64_t id, int64_t **ids, int *n)
{
    return s->ops->sweep_delete(s, id, ids, n);
}

int eg_store_eval_append(eg_store *s, int64_t job, int attempt, long step, const eg_eval *ev)
{
    return s->ops->eval_append(s, job, attempt, step, ev);
}

int eg_store_evals(eg_store *s, int64_t job, struct json_t **out)
{
    return s->ops->evals(s, job, out);
}

int eg_store_checkpoint_record(eg_store *s, int64_t job, int attempt, long step, const char *path)
{
    return s->ops->checkpoint_record(s, job, attempt, step, path);
}

int eg_store_checkpoint_latest(eg_store *s, int64_t job, char **path, long *step)
{
    return s->ops->checkpoint_latest(s, job, path, step);
}
