/* Sweeps in the PostgreSQL store: a request and its jobs inserted in one
 * transaction (with a NOTIFY), read with each job's point, state and
 * summary in one snapshot, canceled and deleted whole. */
#include "store/postgres/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* A retried insert (same key) finds the sweep, and its jobs, made by the
 * first: the second column is true then. */
static const char SQL_SWEEP_INSERT[] =
    "INSERT INTO sweeps (name, request, submit_key) VALUES ($1, $2, $3) "
    "ON CONFLICT (submit_key) DO UPDATE SET submit_key = excluded.submit_key "
    "RETURNING id, xmax <> 0";
static const char SQL_SWEEP_JOB_INSERT[] =
    "INSERT INTO jobs (state, task, method, device, spec, total_steps, sweep, point) "
    "VALUES ('queued', $1, $2, $3, $4, $5, $6, $7)";
static const char SQL_NOTIFY[] = "SELECT pg_notify('evograd_jobs', '')";

static int insert(pg_conn *c, const char *name, const char *request, const char *key,
                  const eg_store_job_row *rows, int n, int64_t *id)
{
    EG_TRY(pg_begin(c));
    const char *p[] = {name, request, key};
    PGresult *r = pg_q(c, SQL_SWEEP_INSERT, 3, p, "inserting a sweep");
    int rc = r ? 0 : -1, existed = 0;
    if (r) {
        *id = pg_get_i64(r, 0, 0);
        existed = PQgetvalue(r, 0, 1)[0] == 't';
    }
    PQclear(r);
    pg_num sid, total;
    for (int i = 0; i < n && rc == 0 && !existed; i++) {
        const eg_store_job_row *row = &rows[i];
        const char *q[] = {row->task,
                           row->method,
                           row->device,
                           row->spec_json,
                           pg_i64(&total, row->total_steps),
                           pg_i64(&sid, *id),
                           row->point_json};
        rc = pg_x(c, SQL_SWEEP_JOB_INSERT, 7, q, "inserting a sweep's job", NULL);
    }
    if (rc == 0) rc = pg_x(c, SQL_NOTIFY, 0, NULL, "notifying the workers", NULL);
    return pg_end(c, rc);
}

int pg_op_sweep_insert(eg_store *base, const char *name, const char *request_json,
                       const eg_store_job_row *rows, int n, int64_t *id)
{
    int rc;
    char key[33];
    pg_submit_key(key);
    PG_RUN((eg_pg *)base, 0, rc, insert(c, name, request_json, key, rows, n, id));
    return rc;
}

#define SWEEP_HEAD "SELECT id, name, request, " PG_TS("created_at") " FROM sweeps "
static const char SQL_SWEEP_GET[] = SWEEP_HEAD "WHERE id = $1";
static const char SQL_SWEEPS_LIST[] = SWEEP_HEAD "WHERE id > $1 ORDER BY id LIMIT $2";
#define SWEEP_JOBS(summary)                                                                        \
    "SELECT id, point, state, steps_done, total_steps, error, " summary                            \
    ", " PG_TS("created_at") ", " PG_TS("started_at") ", " PG_TS(                                  \
        "finished_at") " FROM jobs WHERE sweep = $1 ORDER BY id"
static const char SQL_SWEEP_JOBS[] = SWEEP_JOBS("summary");
/* The same without the summaries, which a listing does not show. */
static const char SQL_SWEEP_JOBS_BRIEF[] = SWEEP_JOBS("NULL");

static json_t *sweep_head(const PGresult *r, int i)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "id", pg_col_int(r, i, 0), "name",
                     pg_col_text(r, i, 1), "request", pg_col_json(r, i, 2), "created_at",
                     pg_col_text(r, i, 3));
}

static json_t *sweep_job(const PGresult *r, int i)
{
    static const char *const keys[] = {"id",          "point",      "state",   "steps_done",
                                       "total_steps", "error",      "summary", "created_at",
                                       "started_at",  "finished_at"};
    json_t *(*const get[])(const PGresult *, int,
                           int) = {pg_col_int,  pg_col_json, pg_col_text, pg_col_int,  pg_col_int,
                                   pg_col_text, pg_col_json, pg_col_text, pg_col_text, pg_col_text};
    json_t *o = json_object();
    for (int j = 0; o && j < 10; j++)
        if (json_object_set_new(o, keys[j], get[j](r, i, j)) != 0) {
            json_decref(o);
            o = NULL;
        }
    return o;
}

/* The sweep's jobs into head["jobs"]; summaries only when asked. */
static int read_jobs(pg_conn *c, int64_t id, json_t *head, int summaries)
{
    pg_num a;
    const char *p[] = {pg_i64(&a, id)};
    PGresult *r =
        pg_q(c, summaries ? SQL_SWEEP_JOBS : SQL_SWEEP_JOBS_BRIEF, 1, p, "reading a sweep's jobs");
    if (!r) return -1;
    json_t *jobs = json_array();
    int rc = jobs && json_object_set_new(head, "jobs", jobs) == 0
                 ? 0
                 : eg_errorf("store: out of memory");
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        if (json_array_append_new(jobs, sweep_job(r, i)) != 0)
            rc = eg_errorf("store: out of memory");
    PQclear(r);
    return rc;
}

static int sweep_get(pg_conn *c, int64_t id, json_t **out)
{
    pg_num a;
    const char *p[] = {pg_i64(&a, id)};
    EG_TRY(pg_begin(c));
    PGresult *r = pg_q(c, SQL_SWEEP_GET, 1, p, "reading a sweep");
    int rc = r ? (PQntuples(r) ? 0 : 1) : -1;
    if (rc == 0 && !(*out = sweep_head(r, 0))) rc = eg_errorf("store: out of memory");
    PQclear(r);
    if (rc == 0) rc = read_jobs(c, id, *out, 1);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return pg_end(c, rc);
}

int pg_op_sweep_get(eg_store *base, int64_t id, json_t **out)
{
    *out = NULL;
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, sweep_get(c, id, out));
    return rc;
}

static int sweeps_list(pg_conn *c, int64_t after, int limit, json_t **out)
{
    pg_num a, l;
    const char *p[] = {pg_i64(&a, after), pg_i64(&l, (long long)limit + 1)};
    EG_TRY(pg_begin(c));
    PGresult *r = pg_q(c, SQL_SWEEPS_LIST, 2, p, "listing sweeps");
    json_t *arr = json_array(), *next = NULL;
    int rc = !r     ? -1
             : !arr ? eg_errorf("store: out of memory")
                    : pg_page(r, limit, sweep_head, arr, &next);
    PQclear(r);
    size_t i;
    json_t *sw;
    json_array_foreach(arr, i, sw)
    {
        if (rc != 0) break;
        rc = read_jobs(c, json_integer_value(json_object_get(sw, "id")), sw, 0);
    }
    if (rc == 0 && !(*out = json_pack("{s:o, s:o}", "sweeps", arr, "next_after", next)))
        rc = eg_errorf("store: out of memory");
    else if (rc != 0) {
        json_decref(arr);
        json_decref(next);
    }
    return pg_end(c, rc);
}

int pg_op_sweeps_list(eg_store *base, int64_t after, int limit, json_t **out)
{
    *out = NULL;
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, sweeps_list(c, after, limit, out));
    return rc;
}

static const char SQL_SWEEP_EXISTS[] = "SELECT 1 FROM sweeps WHERE id = $1 FOR UPDATE";
static const char SQL_SWEEP_CANCEL[] =
    "UPDATE jobs SET cancel_requested = true, "
    "state = CASE WHEN state = 'queued' THEN 'canceled' ELSE state END, "
    "finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END "
    "WHERE sweep = $1 AND (state = 'queued' OR (state = 'running' AND NOT cancel_requested))";

/* In a transaction: 0 when the sweep exists (locked), 1 when not. */
static int sweep_exists(pg_conn *c, const char *const *p)
{
    PGresult *r = pg_q(c, SQL_SWEEP_EXISTS, 1, p, "reading a sweep");
    if (!r) return -1;
    int rc = PQntuples(r) ? 0 : 1;
    PQclear(r);
    return rc;
}

static int sweep_cancel(pg_conn *c, int64_t id, int *n)
{
    pg_num a;
    const char *p[] = {pg_i64(&a, id)};
    EG_TRY(pg_begin(c));
    long changed = 0;
    int rc = sweep_exists(c, p);
    if (rc == 0) rc = pg_x(c, SQL_SWEEP_CANCEL, 1, p, "canceling a sweep's jobs", &changed);
    if (rc == 0) *n = (int)changed;
    if (rc == 0 && changed == 0) rc = 2;
    return pg_end(c, rc);
}

int pg_op_sweep_cancel(eg_store *base, int64_t id, int *n)
{
    *n = 0;
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, sweep_cancel(c, id, n));
    return rc;
}

static const char SQL_SWEEP_RUNNING[] =
    "SELECT COUNT(*) FROM jobs WHERE sweep = $1 AND state = 'running'";
static const char SQL_SWEEP_DELETE_JOBS[] = "DELETE FROM jobs WHERE sweep = $1 RETURNING id";
static const char SQL_SWEEP_DELETE[] = "DELETE FROM sweeps WHERE id = $1";

static int sweep_delete(pg_conn *c, int64_t id, int64_t **ids, int *n)
{
    pg_num a;
    const char *p[] = {pg_i64(&a, id)};
    EG_TRY(pg_begin(c));
    int rc = sweep_exists(c, p);
    PGresult *r = rc == 0 ? pg_q(c, SQL_SWEEP_RUNNING, 1, p, "reading a sweep's jobs") : NULL;
    if (rc == 0 && !r) rc = -1;
    if (rc == 0 && pg_get_i64(r, 0, 0) > 0) rc = 2;
    PQclear(r);
    r = rc == 0 ? pg_q(c, SQL_SWEEP_DELETE_JOBS, 1, p, "deleting a sweep's jobs") : NULL;
    if (rc == 0 && !r) rc = -1;
    if (rc == 0 && PQntuples(r) > 0 && !(*ids = malloc((size_t)PQntuples(r) * sizeof **ids)))
        rc = eg_errorf("store: out of memory");
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) (*ids)[(*n)++] = pg_get_i64(r, i, 0);
    PQclear(r);
    if (rc == 0) rc = pg_x(c, SQL_SWEEP_DELETE, 1, p, "deleting a sweep", NULL);
    rc = pg_end(c, rc);
    if (rc != 0) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

int pg_op_sweep_delete(eg_store *base, int64_t id, int64_t **ids, int *n)
{
    *ids = NULL;
    *n = 0;
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, sweep_delete(c, id, ids, n));
    return rc;
}
