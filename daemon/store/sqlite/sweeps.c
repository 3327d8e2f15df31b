/* Sweeps: a request and its jobs, inserted in one transaction; read with
 * each job's point, state and summary; canceled and deleted whole. */
#include "store/sqlite/sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

static const char SQL_SWEEP_INSERT[] = "INSERT INTO sweeps (name, request) VALUES (?1, ?2)";
static const char SQL_SWEEP_JOB_INSERT[] =
    "INSERT INTO jobs (state, task, method, device, spec, total_steps, sweep, point) "
    "VALUES ('queued', ?1, ?2, ?3, ?4, ?5, ?6, ?7)";

static int insert_rows(eg_conn *c, const char *name, const char *request,
                       const eg_store_job_row *rows, int n, int64_t *id)
{
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_SWEEP_INSERT);
    if (!st) return -1;
    if (name) sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, request, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : eg_conn_fail(c, "inserting a sweep");
    sqlite3_reset(st);
    if (rc != 0) return rc;
    *id = sqlite3_last_insert_rowid(c->db);
    if (!(st = eg_conn_stmt(c, SQL_SWEEP_JOB_INSERT))) return -1;
    for (int i = 0; i < n && rc == 0; i++) {
        const eg_store_job_row *r = &rows[i];
        sqlite3_bind_text(st, 1, r->task, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r->method, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, r->device, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->spec_json, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, r->total_steps);
        sqlite3_bind_int64(st, 6, *id);
        sqlite3_bind_text(st, 7, r->point_json, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) rc = eg_conn_fail(c, "inserting a sweep's job");
        sqlite3_reset(st);
    }
    return rc;
}

int eg_sq_sweep_insert(eg_store *base, const char *name, const char *request_json,
                          const eg_store_job_row *rows, int n, int64_t *id)
{
    eg_sqlite *s = (eg_sqlite *)base;
    EG_TRY(eg_write_begin(s));
    return eg_write_end(s, insert_rows(s->w, name, request_json, rows, n, id));
}

static const char SQL_SWEEP_GET[] =
    "SELECT id, name, request, created_at FROM sweeps WHERE id = ?1";
static const char SQL_SWEEP_JOBS[] =
    "SELECT id, point, state, steps_done, total_steps, error, summary, created_at, "
    "started_at, finished_at FROM jobs WHERE sweep = ?1 ORDER BY id";
/* The same without the summaries, which a listing does not show. */
static const char SQL_SWEEP_JOBS_BRIEF[] =
    "SELECT id, point, state, steps_done, total_steps, error, NULL, created_at, "
    "started_at, finished_at FROM jobs WHERE sweep = ?1 ORDER BY id";

static json_t *sweep_head(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "id", eg_col_int(st, 0), "name", eg_col_text(st, 1),
                     "request", eg_col_json(st, 2), "created_at", eg_col_text(st, 3));
}

static json_t *sweep_job(sqlite3_stmt *st)
{
    static const char *const keys[] = {"id",          "point",      "state",   "steps_done",
                                       "total_steps", "error",      "summary", "created_at",
                                       "started_at",  "finished_at"};
    json_t *(*const get[])(sqlite3_stmt *, int) = {eg_col_int,  eg_col_json, eg_col_text,
                                                   eg_col_int,  eg_col_int,  eg_col_text,
                                                   eg_col_json, eg_col_text, eg_col_text,
                                                   eg_col_text};
    json_t *o = json_object();
    for (int i = 0; o && i < 10; i++)
        if (json_object_set_new(o, keys[i], get[i](st, i)) != 0) {
            json_decref(o);
            o = NULL;
        }
    return o;
}

/* The sweep's jobs into head["jobs"], on connection c; their summaries
 * only when summaries is set (null otherwise). */
static int read_jobs(eg_conn *c, int64_t id, json_t *head, int summaries)
{
    sqlite3_stmt *st = eg_conn_stmt(c, summaries ? SQL_SWEEP_JOBS : SQL_SWEEP_JOBS_BRIEF);
    if (!st) return -1;
    json_t *jobs = json_array();
    int rc = jobs && json_object_set_new(head, "jobs", jobs) == 0 ? 0
                                                                 : eg_errorf("store: out of memory");
    sqlite3_bind_int64(st, 1, id);
    int src;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
        if (json_array_append_new(jobs, sweep_job(st)) != 0) rc = eg_errorf("store: out of memory");
    if (rc == 0 && src != SQLITE_DONE) rc = eg_conn_fail(c, "reading a sweep's jobs");
    sqlite3_reset(st);
    return rc;
}

int eg_sq_sweep_get(eg_store *base, int64_t id, json_t **out)
{
    eg_sqlite *s = (eg_sqlite *)base;
    *out = NULL;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    /* One read transaction: the sweep and its jobs as of one moment. */
    int rc = eg_conn_exec(c, "BEGIN");
    sqlite3_stmt *st = rc == 0 ? eg_conn_stmt(c, SQL_SWEEP_GET) : NULL;
    if (rc == 0 && !st) rc = -1;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            if (!(*out = sweep_head(st))) rc = eg_errorf("store: out of memory");
        } else {
            rc = src == SQLITE_DONE ? 1 : eg_conn_fail(c, "reading a sweep");
        }
        sqlite3_reset(st);
    }
    if (rc == 0) rc = read_jobs(c, id, *out, 1);
    eg_conn_read_end(c);
    eg_reader_put(s, c);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static const char SQL_SWEEPS_LIST[] =
    "SELECT id, name, request, created_at FROM sweeps WHERE id > ?1 ORDER BY id LIMIT ?2";

int eg_sq_sweeps_list(eg_store *base, int64_t after, int limit, json_t **out)
{
    eg_sqlite *s = (eg_sqlite *)base;
    *out = NULL;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    json_t *arr = json_array();
    int rc = arr ? eg_conn_exec(c, "BEGIN") : eg_errorf("store: out of memory");
    sqlite3_stmt *st = rc == 0 ? eg_conn_stmt(c, SQL_SWEEPS_LIST) : NULL;
    if (rc == 0 && !st) rc = -1;
    json_t *next = NULL;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, after);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)limit + 1);
        rc = eg_conn_page(c, st, limit, sweep_head, arr, &next, "listing sweeps");
    }
    size_t i;
    json_t *sw;
    json_array_foreach(arr, i, sw) {
        if (rc != 0) break;
        rc = read_jobs(c, json_integer_value(json_object_get(sw, "id")), sw, 0);
    }
    eg_conn_read_end(c);
    eg_reader_put(s, c);
    if (rc == 0) {
        *out = json_pack("{s:o, s:o}", "sweeps", arr, "next_after", next);
        arr = next = NULL;
        if (!*out) rc = eg_errorf("store: out of memory");
    }
    json_decref(next);
    json_decref(arr);
    return rc;
}

static const char SQL_SWEEP_EXISTS[] = "SELECT 1 FROM sweeps WHERE id = ?1";

/* In a write transaction: 0 when sweep id exists, 1 when not. */
static int sweep_exists(eg_conn *c, int64_t id)
{
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_SWEEP_EXISTS);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    if (src == SQLITE_ROW) return 0;
    return src == SQLITE_DONE ? 1 : eg_conn_fail(c, "reading a sweep");
}

/* Runs a cached statement binding ?1 to id; sqlite3_changes after it. */
static int run_for(eg_conn *c, const char *sql, int64_t id, int *changes)
{
    sqlite3_stmt *st = eg_conn_stmt(c, sql);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : eg_conn_fail(c, "updating a sweep's jobs");
    sqlite3_reset(st);
    if (changes) *changes = rc == 0 ? sqlite3_changes(c->db) : 0;
    return rc;
}

static const char SQL_SWEEP_CANCEL_QUEUED[] =
    "UPDATE jobs SET state = 'canceled', cancel_requested = 1, finished_at = " NOW
    " WHERE sweep = ?1 AND state = 'queued'";
static const char SQL_SWEEP_CANCEL_RUNNING[] =
    "UPDATE jobs SET cancel_requested = 1 WHERE sweep = ?1 AND state = 'running' "
    "AND NOT cancel_requested";

int eg_sq_sweep_cancel(eg_store *base, int64_t id, int *n)
{
    eg_sqlite *s = (eg_sqlite *)base;
    *n = 0;
    EG_TRY(eg_write_begin(s));
    int a = 0, b = 0, rc = sweep_exists(s->w, id);
    if (rc == 0) rc = run_for(s->w, SQL_SWEEP_CANCEL_QUEUED, id, &a);
    if (rc == 0) rc = run_for(s->w, SQL_SWEEP_CANCEL_RUNNING, id, &b);
    if (rc == 0) *n = a + b;
    if (rc == 0 && a + b == 0) rc = 2;
    return eg_write_end(s, rc);
}

static const char SQL_SWEEP_RUNNING[] =
    "SELECT COUNT(*) FROM jobs WHERE sweep = ?1 AND state = 'running'";
static const char SQL_SWEEP_JOB_IDS[] = "SELECT id FROM jobs WHERE sweep = ?1 ORDER BY id";
static const char SQL_SWEEP_DELETE_JOBS[] = "DELETE FROM jobs WHERE sweep = ?1";
static const char SQL_SWEEP_DELETE[] = "DELETE FROM sweeps WHERE id = ?1";

/* In the delete's transaction: the ids of the sweep's jobs (malloc'd). */
static int job_ids(eg_conn *c, int64_t id, int64_t **ids, int *n)
{
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_SWEEP_JOB_IDS);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = 0, cap = 0, src;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            int64_t *more = realloc(*ids, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *more);
            if (!more) {
                rc = eg_errorf("store: out of memory");
                break;
            }
            *ids = more;
        }
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    if (rc == 0 && src != SQLITE_DONE) rc = eg_conn_fail(c, "reading a sweep's jobs");
    sqlite3_reset(st);
    return rc;
}

int eg_sq_sweep_delete(eg_store *base, int64_t id, int64_t **ids, int *n)
{
    eg_sqlite *s = (eg_sqlite *)base;
    *ids = NULL;
    *n = 0;
    EG_TRY(eg_write_begin(s));
    int rc = sweep_exists(s->w, id);
    sqlite3_stmt *st = rc == 0 ? eg_conn_stmt(s->w, SQL_SWEEP_RUNNING) : NULL;
    if (rc == 0 && !st) rc = -1;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_ROW) rc = eg_conn_fail(s->w, "reading a sweep's jobs");
        else if (sqlite3_column_int64(st, 0) > 0) rc = 2;
        sqlite3_reset(st);
    }
    if (rc == 0) rc = job_ids(s->w, id, ids, n);
    if (rc == 0) rc = run_for(s->w, SQL_SWEEP_DELETE_JOBS, id, NULL);
    if (rc == 0) rc = run_for(s->w, SQL_SWEEP_DELETE, id, NULL);
    rc = eg_write_end(s, rc);
    if (rc != 0) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}
