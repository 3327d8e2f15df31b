/* Jobs: insertion, lookups and listings for the API, and the lifecycle
 * moves of the scheduler (claim, finish, cancel, delete, requeue). Every
 * move is one immediate transaction on the write connection. */
#include "store/sqlite/sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/placement.h"
#include "util/err.h"
#include "util/log.h"

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
/* The clock of leases: Unix time in seconds. */
#define NOW_S "((julianday('now') - 2440587.5) * 86400.0)"

static const char SQL_JOB_INSERT[] =
    "INSERT INTO jobs (state, task, method, device, spec, total_steps) "
    "VALUES ('queued', ?1, ?2, ?3, ?4, ?5)";

int eg_sq_job_insert(eg_store *base, const char *spec_json, const char *task,
                        const char *method, const char *device, long total_steps, int64_t *id)
{
    eg_sqlite *s = (eg_sqlite *)base;
    EG_TRY(eg_write_begin(s));
    sqlite3_stmt *st = eg_conn_stmt(s->w, SQL_JOB_INSERT);
    int rc = st ? 0 : -1;
    if (rc == 0) {
        sqlite3_bind_text(st, 1, task, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, method, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, device, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, spec_json, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, total_steps);
        if (sqlite3_step(st) != SQLITE_DONE) rc = eg_conn_fail(s->w, "inserting a job");
        else *id = sqlite3_last_insert_rowid(s->w->db);
        sqlite3_reset(st);
    }
    return eg_write_end(s, rc);
}

/* A job with its last step, which is the row at steps_done - 1 since the
 * writer keeps steps_done at the largest logged step + 1. */
#define JOB_SELECT                                                                      \
    "SELECT j.id, j.state, j.task, j.method, COALESCE(j.run_device, j.device), j.device, " \
    "j.spec, j.created_at, j.started_at, j.finished_at, j.steps_done, j.total_steps, "    \
    "j.error, j.summary, j.cancel_requested, s.step, s.train_loss, s.meta_loss, s.lambda, " \
    "j.sweep, j.point, j.attempt, j.worker "                                             \
    "FROM jobs j LEFT JOIN steps s ON s.job = j.id AND s.step = j.steps_done - 1 "

static const char SQL_JOB_GET[] = JOB_SELECT "WHERE j.id = ?1";
static const char SQL_JOBS_ALL[] = JOB_SELECT "WHERE j.id > ?1 ORDER BY j.id LIMIT ?2";
static const char SQL_JOBS_IN_STATE[] =
    JOB_SELECT "WHERE j.state = ?3 AND j.id > ?1 ORDER BY j.id LIMIT ?2";

static json_t *job_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    if (!o) return NULL;
    static const struct {
        const char *key;
        json_t *(*get)(sqlite3_stmt *, int);
    } cols[] = {
        {"id", eg_col_int},           {"state", eg_col_text},
        {"task", eg_col_text},        {"method", eg_col_text},
        {"device", eg_col_text},      {"requested_device", eg_col_text},
        {"spec", eg_col_json},        {"created_at", eg_col_text},
        {"started_at", eg_col_text},  {"finished_at", eg_col_text},
        {"steps_done", eg_col_int},   {"total_steps", eg_col_int},
        {"error", eg_col_text},       {"summary", eg_col_json},
    };
    int n = (int)(sizeof cols / sizeof cols[0]), bad = 0;
    for (int i = 0; i < n; i++) bad |= json_object_set_new(o, cols[i].key, cols[i].get(st, i));
    bad |= json_object_set_new(o, "cancel_requested",
                               json_boolean(sqlite3_column_int(st, n)));
    bad |= json_object_set_new(o, "sweep", eg_col_int(st, n + 5));
    bad |= json_object_set_new(o, "point", eg_col_json(st, n + 6));
    bad |= json_object_set_new(o, "attempt", eg_col_int(st, n + 7));
    bad |= json_object_set_new(o, "worker", eg_col_text(st, n + 8));
    if (sqlite3_column_type(st, n + 1) != SQLITE_NULL) {
        bad |= json_object_set_new(o, "train_loss", eg_col_f32(st, n + 2));
        bad |= json_object_set_new(o, "meta_loss", eg_col_f32(st, n + 3));
        bad |= json_object_set_new(o, "lambda", eg_col_json(st, n + 4));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int eg_sq_job_get(eg_store *base, int64_t id, json_t **out)
{
    eg_sqlite *s = (eg_sqlite *)base;
    *out = NULL;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_JOB_GET);
    int rc = st ? 0 : -1;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            if (!(*out = job_json(st))) rc = eg_errorf("store: out of memory");
        } else {
            rc = src == SQLITE_DONE ? 1 : eg_conn_fail(c, "reading a job");
        }
        sqlite3_reset(st);
    }
    eg_reader_put(s, c);
    return rc;
}

int eg_sq_jobs_list(eg_store *base, const char *state, int64_t after, int limit, json_t **out)
{
    eg_sqlite *s = (eg_sqlite *)base;
    *out = NULL;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    json_t *arr = json_array();
    sqlite3_stmt *st = arr ? eg_conn_stmt(c, state ? SQL_JOBS_IN_STATE : SQL_JOBS_ALL) : NULL;
    int rc = st ? 0 : arr ? -1 : eg_errorf("store: out of memory");
    json_t *next = NULL;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, after);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)limit + 1); /* one more: is there a next page? */
        if (state) sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
        rc = eg_conn_page(c, st, limit, job_json, arr, &next, "listing jobs");
    }
    eg_reader_put(s, c);
    if (rc == 0) {
        *out = json_pack("{s:o, s:o}", "jobs", arr, "next_after", next);
        arr = next = NULL;
        if (!*out) rc = eg_errorf("store: out of memory");
    }
    json_decref(next);
    json_decref(arr);
    return rc;
}

static const char SQL_JOB_COUNTS[] = "SELECT state, COUNT(*) FROM jobs GROUP BY state";

/* counts[] in the order queued, running, succeeded, failed, canceled. */
int eg_sq_job_counts(eg_store *base, long counts[5])
{
    eg_sqlite *s = (eg_sqlite *)base;
    for (int i = 0; i < 5; i++) counts[i] = 0;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_JOB_COUNTS);
    int rc = st ? 0 : -1;
    if (rc == 0) {
        int src;
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            int i = eg_store_state_index((const char *)sqlite3_column_text(st, 0));
            if (i >= 0) counts[i] = (long)sqlite3_column_int64(st, 1);
        }
        if (src != SQLITE_DONE) rc = eg_conn_fail(c, "counting jobs");
        sqlite3_reset(st);
    }
    eg_reader_put(s, c);
    return rc;
}

/* Reads the one number a single-row query gives (never NULL) on a reader;
 * what names it in an error. */
static int one_number(eg_sqlite *s, const char *sql, const char *what, double *out)
{
    *out = 0;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    sqlite3_stmt *st = eg_conn_stmt(c, sql);
    int rc = st ? 0 : -1;
    if (rc == 0) {
        if (sqlite3_step(st) == SQLITE_ROW) *out = sqlite3_column_double(st, 0);
        else rc = eg_conn_fail(c, what);
        sqlite3_reset(st);
    }
    eg_reader_put(s, c);
    return rc;
}

static const char SQL_NEWEST[] = "SELECT COALESCE(MAX(id), 0) FROM jobs";

int eg_sq_newest_job(eg_store *base, int64_t *id)
{
    eg_sqlite *s = (eg_sqlite *)base;
    double v;
    int rc = one_number(s, SQL_NEWEST, "reading the newest job", &v);
    *id = (int64_t)v; /* ids stay far below 2^53 */
    return rc;
}

static const char SQL_OLDEST_QUEUED[] =
    "SELECT COALESCE(MAX(0, (julianday('now') - julianday(MIN(created_at))) * 86400.0), 0) "
    "FROM jobs WHERE state = 'queued'";

int eg_sq_oldest_queued_age(eg_store *base, double *seconds)
{
    eg_sqlite *s = (eg_sqlite *)base;
    return one_number(s, SQL_OLDEST_QUEUED, "reading the queue", seconds);
}

static const char SQL_QUEUED[] =
    "SELECT id, device FROM jobs WHERE state = 'queued' ORDER BY id";
static const char SQL_CLAIM[] =
    "UPDATE jobs SET state = 'running', run_device = ?2, started_at = COALESCE(started_at, " NOW
    "), finished_at = NULL, error = NULL, attempt = attempt + 1, worker = ?3, "
    "lease_until = " NOW_S " + ?4 WHERE id = ?1 RETURNING spec, attempt";

/* In the claim's transaction: the first queued job that fits, marked
 * running on that device. */
static int claim(eg_conn *c, const char *const *devices, const char *worker, double lease_s,
                 eg_claim *out)
{
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_QUEUED);
    if (!st) return -1;
    const char *dev = NULL;
    int64_t found = 0;
    int rc = SQLITE_DONE;
    while (!dev && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *want = (const char *)sqlite3_column_text(st, 1);
        for (int i = 0; devices[i] && !dev; i++)
            if (eg_device_fits(want, devices[i])) dev = devices[i];
        found = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (!dev) return rc == SQLITE_DONE ? 1 : eg_conn_fail(c, "finding a queued job");
    out->id = found;
    if (snprintf(out->device, sizeof out->device, "%s", dev) >= (int)sizeof out->device)
        return eg_errorf("store: device name '%s' too long", dev);

    if (!(st = eg_conn_stmt(c, SQL_CLAIM))) return -1;
    sqlite3_bind_int64(st, 1, out->id);
    sqlite3_bind_text(st, 2, dev, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, worker, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, lease_s);
    rc = sqlite3_step(st) == SQLITE_ROW ? 0 : eg_conn_fail(c, "claiming a job");
    if (rc == 0 && !(out->spec = strdup((const char *)sqlite3_column_text(st, 0))))
        rc = eg_errorf("store: out of memory");
    if (rc == 0) out->attempt = sqlite3_column_int(st, 1);
    sqlite3_reset(st);
    return rc;
}

int eg_sq_job_claim(eg_store *base, const char *const *devices, const char *worker,
                    double lease_s, eg_claim *c)
{
    eg_sqlite *s = (eg_sqlite *)base;
    memset(c, 0, sizeof *c);
    EG_TRY(eg_write_begin(s));
    int rc = claim(s->w, devices, worker, lease_s, c);
    rc = eg_write_end(s, rc);
    if (rc != 0) {
        free(c->spec);
        c->spec = NULL;
    }
    return rc;
}

static const char SQL_RENEW[] =
    "UPDATE jobs SET lease_until = " NOW_S " + ?3 "
    "WHERE id = ?1 AND attempt = ?2 AND state = 'running'";

int eg_sq_job_renew(eg_store *base, int64_t id, int attempt, double lease_s)
{
    eg_sqlite *s = (eg_sqlite *)base;
    EG_TRY(eg_write_begin(s));
    sqlite3_stmt *st = eg_conn_stmt(s->w, SQL_RENEW);
    int rc = st ? 0 : -1;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, attempt);
        sqlite3_bind_double(st, 3, lease_s);
        if (sqlite3_step(st) != SQLITE_DONE) rc = eg_conn_fail(s->w, "renewing a lease");
        else if (sqlite3_changes(s->w->db) == 0) rc = EG_STORE_LOST;
        sqlite3_reset(st);
    }
    return eg_write_end(s, rc);
}

/* ?1: how many lost leases a job may have had before this one. */
static const char SQL_EXPIRE_FAIL[] =
    "UPDATE jobs SET state = 'failed', finished_at = " NOW ", leases_lost = leases_lost + 1, "
    "error = 'its lease ran out ' || (leases_lost + 1) || ' times (the last on worker ' || "
    "COALESCE(worker, '?') || ', attempt ' || attempt || '): given up' "
    "WHERE state = 'running' AND lease_until < " NOW_S " AND leases_lost + 1 >= ?1";
static const char SQL_EXPIRE_CANCEL[] =
    "UPDATE jobs SET state = 'canceled', finished_at = " NOW ", leases_lost = leases_lost + 1 "
    "WHERE state = 'running' AND lease_until < " NOW_S " AND cancel_requested";
static const char SQL_EXPIRE_REQUEUE[] =
    "UPDATE jobs SET state = 'queued', run_device = NULL, lease_until = NULL, "
    "leases_lost = leases_lost + 1 WHERE state = 'running' AND lease_until < " NOW_S;

/* Runs a cached statement with ?1 = i (when it has a parameter); *n gets
 * the rows changed. */
static int run_counted(eg_conn *c, const char *sql, int i, int *n)
{
    sqlite3_stmt *st = eg_conn_stmt(c, sql);
    if (!st) return -1;
    if (sqlite3_bind_parameter_count(st) > 0) sqlite3_bind_int(st, 1, i);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : eg_conn_fail(c, "expiring leases");
    sqlite3_reset(st);
    if (n) *n = sqlite3_changes(c->db);
    return rc;
}

int eg_sq_leases_expire(eg_store *base, int max_lost, int *requeued, int *failed)
{
    eg_sqlite *s = (eg_sqlite *)base;
    int nq = 0, nf = 0;
    EG_TRY(eg_write_begin(s));
    int rc = run_counted(s->w, SQL_EXPIRE_FAIL, max_lost, &nf);
    if (rc == 0) rc = run_counted(s->w, SQL_EXPIRE_CANCEL, 0, NULL);
    if (rc == 0) rc = run_counted(s->w, SQL_EXPIRE_REQUEUE, 0, &nq);
    rc = eg_write_end(s, rc);
    if (requeued) *requeued = rc == 0 ? nq : 0;
    if (failed) *failed = rc == 0 ? nf : 0;
    return rc;
}

static const char SQL_JOB_STATE[] =
    "SELECT state, cancel_requested, attempt FROM jobs WHERE id = ?1";

/* In a write transaction: the job's state index, cancel flag and attempt;
 * 1 when there is no such job. */
static int job_state(eg_conn *c, int64_t id, int *state, int *cancel_requested, int *attempt)
{
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_JOB_STATE);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st), rc = 0;
    if (src == SQLITE_ROW) {
        *state = eg_store_state_index((const char *)sqlite3_column_text(st, 0));
        *cancel_requested = sqlite3_column_int(st, 1);
        *attempt = sqlite3_column_int(st, 2);
    } else {
        rc = src == SQLITE_DONE ? 1 : eg_conn_fail(c, "reading a job");
    }
    sqlite3_reset(st);
    return rc;
}

/* Runs a cached one-job update: ?1 the id, then up to three texts. */
static int update_job(eg_conn *c, const char *sql, int64_t id, const char *a, const char *b,
                      const char *d)
{
    sqlite3_stmt *st = eg_conn_stmt(c, sql);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    const char *texts[3] = {a, b, d};
    for (int i = 0; i < 3 && i + 2 <= sqlite3_bind_parameter_count(st); i++)
        sqlite3_bind_text(st, i + 2, texts[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : eg_conn_fail(c, "updating a job");
    sqlite3_reset(st);
    return rc;
}

static const char SQL_FINISH[] =
    "UPDATE jobs SET state = ?2, error = ?3, summary = ?4, finished_at = " NOW ", "
    "lease_until = NULL WHERE id = ?1";
static const char SQL_REQUEUE[] =
    "UPDATE jobs SET state = 'queued', run_device = NULL, finished_at = NULL, error = ?2, "
    "lease_until = NULL WHERE id = ?1";

/* The queued steps are committed first, so a job never shows as ended
 * while its last rows are still on their way. A job sent back to "queued"
 * after a cancel was requested is canceled instead. */
int eg_sq_job_finish(eg_store *base, int64_t id, int attempt, const char *state,
                     const char *error, const char *summary_json)
{
    eg_sqlite *s = (eg_sqlite *)base;
    int want = eg_store_state_index(state);
    /* error may be eg_last_error() itself: kept before anything else. */
    char err[1024];
    snprintf(err, sizeof err, "%s", error ? error : "");
    /* Rows lost to a failed write do not keep the job from ending: its
     * error (a full disk) is what the end records. */
    if (eg_writeq_flush(&s->q) != 0) EG_LOG(WARN, "%s", eg_last_error());
    int rc = -1;
    for (int tries = 0; tries < 2 && rc != 0; tries++) {
        EG_TRY(eg_write_begin(s));
        int now, cancel_requested, current, target = want;
        rc = job_state(s->w, id, &now, &cancel_requested, &current);
        if (rc == 0 && (now != 1 || current != attempt)) rc = EG_STORE_LOST;
        if (rc == 0) {
            if (target == 0 && cancel_requested) target = 4;
            if (target == 0) rc = update_job(s->w, SQL_REQUEUE, id, error ? err : NULL, NULL, NULL);
            else rc = update_job(s->w, SQL_FINISH, id, eg_store_states[target], error ? err : NULL,
                                 summary_json);
        }
        rc = eg_write_end(s, rc);
        /* With the disk full, the space reserve makes room for this. */
        if (rc < 0 && eg_store_failed_full()) eg_reserve_release(s);
        else break;
    }
    return rc;
}

static const char SQL_SET_TOTAL[] =
    "UPDATE jobs SET total_steps = ?2 WHERE id = ?1 AND attempt = ?3 AND state = 'running'";

int eg_sq_job_set_total(eg_store *base, int64_t id, int attempt, long total_steps)
{
    eg_sqlite *s = (eg_sqlite *)base;
    EG_TRY(eg_write_begin(s));
    int rc = 0;
    sqlite3_stmt *st = eg_conn_stmt(s->w, SQL_SET_TOTAL);
    if (!st) rc = -1;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, total_steps);
        sqlite3_bind_int(st, 3, attempt);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : eg_conn_fail(s->w, "setting a job's steps");
        if (rc == 0 && sqlite3_changes(s->w->db) == 0) rc = EG_STORE_LOST;
        sqlite3_reset(st);
    }
    return eg_write_end(s, rc);
}

static const char SQL_CANCEL_QUEUED[] =
    "UPDATE jobs SET state = 'canceled', cancel_requested = 1, finished_at = " NOW
    " WHERE id = ?1";
static const char SQL_CANCEL_RUNNING[] = "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1";

int eg_sq_job_cancel(eg_store *base, int64_t id)
{
    eg_sqlite *s = (eg_sqlite *)base;
    EG_TRY(eg_write_begin(s));
    int now, cancel_requested, attempt;
    int rc = job_state(s->w, id, &now, &cancel_requested, &attempt);
    if (rc == 0) {
        if (now == 0) rc = update_job(s->w, SQL_CANCEL_QUEUED, id, NULL, NULL, NULL);
        else if (now == 1) rc = update_job(s->w, SQL_CANCEL_RUNNING, id, NULL, NULL, NULL);
        else rc = 2;
    }
    return eg_write_end(s, rc);
}

static const char SQL_CANCEL_REQUESTED[] =
    "SELECT cancel_requested, state = 'running' AND attempt = ?2 FROM jobs WHERE id = ?1";

int eg_sq_job_cancel_requested(eg_store *base, int64_t id, int attempt)
{
    eg_sqlite *s = (eg_sqlite *)base;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_CANCEL_REQUESTED);
    int rc = st ? 0 : -1;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, attempt);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            rc = !sqlite3_column_int(st, 1) ? EG_STORE_LOST : sqlite3_column_int(st, 0) != 0;
        else if (src == SQLITE_DONE) rc = EG_STORE_LOST; /* deleted */
        else rc = eg_conn_fail(c, "reading a job");
        sqlite3_reset(st);
    }
    eg_reader_put(s, c);
    return rc;
}

/* Steps, evaluations and checkpoint rows go with the job (ON DELETE
 * CASCADE). */
static const char SQL_DELETE[] = "DELETE FROM jobs WHERE id = ?1";

int eg_sq_job_delete(eg_store *base, int64_t id)
{
    eg_sqlite *s = (eg_sqlite *)base;
    EG_TRY(eg_write_begin(s));
    int now, cancel_requested, attempt;
    int rc = job_state(s->w, id, &now, &cancel_requested, &attempt);
    if (rc == 0) rc = now == 1 ? 2 : update_job(s->w, SQL_DELETE, id, NULL, NULL, NULL);
    return eg_write_end(s, rc);
}

/* One daemon uses an SQLite database: every job it finds running at
 * start was its own, whatever name it had then. */
static const char SQL_REQUEUE_CANCELED[] =
    "UPDATE jobs SET state = 'canceled', finished_at = " NOW ", lease_until = NULL "
    "WHERE state = 'running' AND cancel_requested";
static const char SQL_REQUEUE_RUNNING[] =
    "UPDATE jobs SET state = 'queued', run_device = NULL, lease_until = NULL "
    "WHERE state = 'running'";

/* Jobs that were asked to cancel before the daemon stopped are canceled
 * instead; the count is of the jobs queued again. */
int eg_sq_requeue_running(eg_store *base, const char *worker)
{
    eg_sqlite *s = (eg_sqlite *)base;
    EG_TRY(eg_write_begin(s));
    int n = 0, rc = eg_conn_exec(s->w, SQL_REQUEUE_CANCELED);
    if (rc == 0 && (rc = eg_conn_exec(s->w, SQL_REQUEUE_RUNNING)) == 0)
        n = sqlite3_changes(s->w->db);
    rc = eg_write_end(s, rc);
    return rc == 0 ? n : -1;
}
