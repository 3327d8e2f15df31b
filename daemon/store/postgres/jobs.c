/* Jobs in the PostgreSQL store: insertion (with a NOTIFY that wakes the
 * idle workers of every daemon), lookups and listings, and the lifecycle
 * of claims: FOR UPDATE SKIP LOCKED claims with attempts and leases on
 * the database's clock, writes guarded by the attempt, expiry. */
#include "store/postgres/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"
#include "util/placement.h"

/* A retried insert (same key) gives the job the first one made. */
static const char SQL_JOB_INSERT[] =
    "INSERT INTO jobs (state, task, method, device, spec, total_steps, submit_key) "
    "VALUES ('queued', $1, $2, $3, $4, $5, $6) ON CONFLICT (submit_key) DO UPDATE "
    "SET submit_key = excluded.submit_key RETURNING id";
static const char SQL_NOTIFY[] = "SELECT pg_notify('evograd_jobs', '')";

static int job_insert(pg_conn *c, const char *const *p, int64_t *id)
{
    EG_TRY(pg_begin(c));
    PGresult *r = pg_q(c, SQL_JOB_INSERT, 6, p, "inserting a job");
    int rc = r ? 0 : -1;
    if (r) *id = pg_get_i64(r, 0, 0);
    PQclear(r);
    if (rc == 0) rc = pg_x(c, SQL_NOTIFY, 0, NULL, "notifying the workers", NULL);
    return pg_end(c, rc);
}

int pg_op_job_insert(eg_store *base, const char *spec_json, const char *task, const char *method,
                     const char *device, long total_steps, int64_t *id)
{
    pg_num n;
    char key[33];
    pg_submit_key(key);
    const char *p[] = {task, method, device, spec_json, pg_i64(&n, total_steps), key};
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, job_insert(c, p, id));
    return rc;
}

/* A job with its last step, as the SQLite store selects it. */
#define JOB_SELECT                                                                                 \
    "SELECT j.id, j.state, j.task, j.method, COALESCE(j.run_device, j.device), j.device, "         \
    "j.spec, " PG_TS("j.created_at") ", " PG_TS("j.started_at") ", " PG_TS(                        \
        "j.finished_at") ", j.steps_done, j.total_steps, j.error, j.summary, j.cancel_requested, " \
                         "s.step, "                                                                \
                         "s.train_loss, s.meta_loss, s.lambda, j.sweep, j.point, j.attempt, "      \
                         "j.worker "                                                               \
                         "FROM jobs j LEFT JOIN steps s ON s.job = j.id AND s.step = "             \
                         "j.steps_done - 1 "

static const char SQL_JOB_GET[] = JOB_SELECT "WHERE j.id = $1";
static const char SQL_JOBS_ALL[] = JOB_SELECT "WHERE j.id > $1 ORDER BY j.id LIMIT $2";
static const char SQL_JOBS_IN_STATE[] =
    JOB_SELECT "WHERE j.state = $3 AND j.id > $1 ORDER BY j.id LIMIT $2";

static json_t *job_json(const PGresult *r, int i)
{
    json_t *o = json_object();
    if (!o) return NULL;
    static const struct {
        const char *key;
        json_t *(*get)(const PGresult *, int, int);
    } cols[] = {
        {"id", pg_col_int},
        {"state", pg_col_text},
        {"task", pg_col_text},
        {"method", pg_col_text},
        {"device", pg_col_text},
        {"requested_device", pg_col_text},
        {"spec", pg_col_json},
        {"created_at", pg_col_text},
        {"started_at", pg_col_text},
        {"finished_at", pg_col_text},
        {"steps_done", pg_col_int},
        {"total_steps", pg_col_int},
        {"error", pg_col_text},
        {"summary", pg_col_json},
        {"cancel_requested", pg_col_bool},
    };
    int n = (int)(sizeof cols / sizeof cols[0]), bad = 0;
    for (int j = 0; j < n; j++) bad |= json_object_set_new(o, cols[j].key, cols[j].get(r, i, j));
    bad |= json_object_set_new(o, "sweep", pg_col_int(r, i, n + 4));
    bad |= json_object_set_new(o, "point", pg_col_json(r, i, n + 5));
    bad |= json_object_set_new(o, "attempt", pg_col_int(r, i, n + 6));
    bad |= json_object_set_new(o, "worker", pg_col_text(r, i, n + 7));
    if (!PQgetisnull(r, i, n)) {
        bad |= json_object_set_new(o, "train_loss", pg_col_f32(r, i, n + 1));
        bad |= json_object_set_new(o, "meta_loss", pg_col_f32(r, i, n + 2));
        bad |= json_object_set_new(o, "lambda", pg_col_json(r, i, n + 3));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int job_get(pg_conn *c, int64_t id, json_t **out)
{
    pg_num n;
    const char *p[] = {pg_i64(&n, id)};
    PGresult *r = pg_q(c, SQL_JOB_GET, 1, p, "reading a job");
    if (!r) return -1;
    int rc = PQntuples(r) == 0         ? 1
             : (*out = job_json(r, 0)) ? 0
                                       : eg_errorf("store: out of memory");
    PQclear(r);
    return rc;
}

int pg_op_job_get(eg_store *base, int64_t id, json_t **out)
{
    *out = NULL;
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, job_get(c, id, out));
    return rc;
}

static int jobs_list(pg_conn *c, const char *state, int64_t after, int limit, json_t **out)
{
    pg_num a, l;
    const char *p[] = {pg_i64(&a, after), pg_i64(&l, (long long)limit + 1), state};
    PGresult *r =
        pg_q(c, state ? SQL_JOBS_IN_STATE : SQL_JOBS_ALL, state ? 3 : 2, p, "listing jobs");
    if (!r) return -1;
    json_t *arr = json_array(), *next = NULL;
    int rc = arr ? pg_page(r, limit, job_json, arr, &next) : eg_errorf("store: out of memory");
    PQclear(r);
    if (rc == 0 && !(*out = json_pack("{s:o, s:o}", "jobs", arr, "next_after", next)))
        rc = eg_errorf("store: out of memory");
    else if (rc != 0) {
        json_decref(arr);
        json_decref(next);
    }
    return rc;
}

int pg_op_jobs_list(eg_store *base, const char *state, int64_t after, int limit, json_t **out)
{
    *out = NULL;
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, jobs_list(c, state, after, limit, out));
    return rc;
}

static const char SQL_JOB_COUNTS[] = "SELECT state, COUNT(*) FROM jobs GROUP BY state";

static int job_counts(pg_conn *c, long counts[5])
{
    PGresult *r = pg_q(c, SQL_JOB_COUNTS, 0, NULL, "counting jobs");
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        int k = eg_store_state_index(PQgetvalue(r, i, 0));
        if (k >= 0) counts[k] = (long)pg_get_i64(r, i, 1);
    }
    PQclear(r);
    return 0;
}

int pg_op_job_counts(eg_store *base, long counts[5])
{
    for (int i = 0; i < 5; i++) counts[i] = 0;
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, job_counts(c, counts));
    return rc;
}

/* The one number a single-row query gives. */
static int one_number(pg_conn *c, const char *sql, const char *what, double *out)
{
    PGresult *r = pg_q(c, sql, 0, NULL, what);
    if (!r) return -1;
    *out = PQntuples(r) ? strtod(PQgetvalue(r, 0, 0), NULL) : 0;
    PQclear(r);
    return 0;
}

static const char SQL_NEWEST[] = "SELECT COALESCE(MAX(id), 0) FROM jobs";

int pg_op_newest_job(eg_store *base, int64_t *id)
{
    double v = 0;
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, one_number(c, SQL_NEWEST, "reading the newest job", &v));
    *id = (int64_t)v;
    return rc;
}

static const char SQL_OLDEST_QUEUED[] =
    "SELECT COALESCE(GREATEST(0, EXTRACT(EPOCH FROM now() - MIN(created_at))), 0) "
    "FROM jobs WHERE state = 'queued'";

int pg_op_oldest_queued_age(eg_store *base, double *seconds)
{
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, one_number(c, SQL_OLDEST_QUEUED, "reading the queue", seconds));
    return rc;
}

/* The oldest queued job one of the devices takes ($1: the requests they
 * take, a text array), locked; a job another daemon's claim holds is
 * skipped, not waited for. */
static const char SQL_CLAIM_PICK[] =
    "SELECT id, device FROM jobs WHERE state = 'queued' AND device = ANY($1::text[]) "
    "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED";
static const char SQL_CLAIM[] =
    "UPDATE jobs SET state = 'running', run_device = $2, started_at = COALESCE(started_at, "
    "now()), finished_at = NULL, error = NULL, attempt = attempt + 1, worker = $3, "
    "lease_until = now() + make_interval(secs => $4) WHERE id = $1 RETURNING spec, attempt";

/* The text array literal {"a","b",...} of every request the devices take. */
static int wants_array(const char *const *devices, char *buf, size_t cap)
{
    size_t n = 0;
    buf[n++] = '{';
    for (int i = 0; devices[i]; i++) {
        const char *w[EG_PLACEMENT_WANTS];
        int k = eg_device_wants(devices[i], w);
        for (int j = 0; j < k; j++) {
            int m = snprintf(buf + n, cap - n, "%s\"%s\"", n > 1 ? "," : "", w[j]);
            if (m < 0 || (size_t)m >= cap - n) return eg_errorf("store: too many devices");
            n += (size_t)m;
        }
    }
    if (n + 2 > cap) return eg_errorf("store: too many devices");
    buf[n++] = '}';
    buf[n] = '\0';
    return 0;
}

static int claim(pg_conn *c, const char *const *devices, const char *wants, const char *worker,
                 double lease_s, eg_claim *out)
{
    EG_TRY(pg_begin(c));
    const char *p1[] = {wants};
    PGresult *r = pg_q(c, SQL_CLAIM_PICK, 1, p1, "finding a queued job");
    int rc = r ? 0 : -1;
    const char *dev = NULL;
    if (r && PQntuples(r) == 0) rc = 1;
    if (rc == 0) {
        out->id = pg_get_i64(r, 0, 0);
        for (int i = 0; devices[i] && !dev; i++)
            if (eg_device_fits(PQgetvalue(r, 0, 1), devices[i])) dev = devices[i];
        if (!dev) rc = eg_errorf("store: job %lld fits none of the devices", (long long)out->id);
    }
    PQclear(r);
    if (rc == 0 && snprintf(out->device, sizeof out->device, "%s", dev) >= (int)sizeof out->device)
        rc = eg_errorf("store: device name '%s' too long", dev);
    if (rc == 0) {
        pg_num id, l;
        const char *p[] = {pg_i64(&id, out->id), dev, worker, pg_f64(&l, lease_s)};
        r = pg_q(c, SQL_CLAIM, 4, p, "claiming a job");
        if (!r)
            rc = -1;
        else if (!(out->spec = strdup(PQgetvalue(r, 0, 0))))
            rc = eg_errorf("store: out of memory");
        else
            out->attempt = (int)pg_get_i64(r, 0, 1);
        PQclear(r);
    }
    if (rc != 0) {
        free(out->spec);
        out->spec = NULL;
    }
    return pg_end(c, rc);
}

int pg_op_job_claim(eg_store *base, const char *const *devices, const char *worker, double lease_s,
                    eg_claim *c_out)
{
    memset(c_out, 0, sizeof *c_out);
    char wants[512];
    EG_TRY(wants_array(devices, wants, sizeof wants));
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, claim(c, devices, wants, worker, lease_s, c_out));
    return rc;
}

/* Runs a one-row guarded update: 0, EG_STORE_LOST when it changed
 * nothing. */
static int guarded(pg_conn *c, const char *sql, int n, const char *const *p, const char *what)
{
    long changed = 0;
    EG_TRY(pg_x(c, sql, n, p, what, &changed));
    return changed ? 0 : EG_STORE_LOST;
}

static const char SQL_RENEW[] = "UPDATE jobs SET lease_until = now() + make_interval(secs => $3) "
                                "WHERE id = $1 AND attempt = $2 AND state = 'running'";

int pg_op_job_renew(eg_store *base, int64_t id, int attempt, double lease_s)
{
    pg_num a, b, l;
    const char *p[] = {pg_i64(&a, id), pg_i64(&b, attempt), pg_f64(&l, lease_s)};
    int rc;
    PG_RUN((eg_pg *)base, 1, rc, guarded(c, SQL_RENEW, 3, p, "renewing a lease"));
    return rc;
}

static const char SQL_EXPIRE_FAIL[] =
    "UPDATE jobs SET state = 'failed', finished_at = now(), leases_lost = leases_lost + 1, "
    "lease_until = NULL, error = 'its lease ran out ' || (leases_lost + 1) || ' times (the "
    "last on worker ' || COALESCE(worker, '?') || ', attempt ' || attempt || '): given up' "
    "WHERE state = 'running' AND lease_until < now() AND leases_lost + 1 >= $1";
static const char SQL_EXPIRE_CANCEL[] =
    "UPDATE jobs SET state = 'canceled', finished_at = now(), leases_lost = leases_lost + 1, "
    "lease_until = NULL WHERE state = 'running' AND lease_until < now() AND cancel_requested";
static const char SQL_EXPIRE_REQUEUE[] =
    "UPDATE jobs SET state = 'queued', run_device = NULL, lease_until = NULL, "
    "leases_lost = leases_lost + 1 WHERE state = 'running' AND lease_until < now()";

static int expire(pg_conn *c, int max_lost, long *nq, long *nf)
{
    EG_TRY(pg_begin(c));
    pg_num m;
    const char *p[] = {pg_i64(&m, max_lost)};
    int rc = pg_x(c, SQL_EXPIRE_FAIL, 1, p, "expiring leases", nf);
    if (rc == 0) rc = pg_x(c, SQL_EXPIRE_CANCEL, 0, NULL, "expiring leases", NULL);
    if (rc == 0) rc = pg_x(c, SQL_EXPIRE_REQUEUE, 0, NULL, "expiring leases", nq);
    if (rc == 0 && *nq > 0) rc = pg_x(c, SQL_NOTIFY, 0, NULL, "notifying the workers", NULL);
    return pg_end(c, rc);
}

int pg_op_leases_expire(eg_store *base, int max_lost, int *requeued, int *failed)
{
    long nq = 0, nf = 0;
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, expire(c, max_lost, &nq, &nf));
    if (requeued) *requeued = rc == 0 ? (int)nq : 0;
    if (failed) *failed = rc == 0 ? (int)nf : 0;
    return rc;
}

static const char SQL_SET_TOTAL[] =
    "UPDATE jobs SET total_steps = $2 WHERE id = $1 AND attempt = $3 AND state = 'running'";

int pg_op_job_set_total(eg_store *base, int64_t id, int attempt, long total_steps)
{
    pg_num a, b, d;
    const char *p[] = {pg_i64(&a, id), pg_i64(&b, total_steps), pg_i64(&d, attempt)};
    int rc;
    PG_RUN((eg_pg *)base, 1, rc, guarded(c, SQL_SET_TOTAL, 3, p, "setting a job's steps"));
    return rc;
}

/* $1 id, $2 attempt, $3 state, $4 error, $5 summary. A job sent back to
 * "queued" after a cancel was requested is canceled instead. */
static const char SQL_FINISH[] =
    "UPDATE jobs SET state = CASE WHEN $3 = 'queued' AND cancel_requested THEN 'canceled' "
    "ELSE $3 END, error = $4, "
    "summary = CASE WHEN $3 = 'queued' THEN NULL ELSE $5 END, "
    "finished_at = CASE WHEN $3 = 'queued' AND NOT cancel_requested THEN NULL ELSE now() END, "
    "run_device = CASE WHEN $3 = 'queued' AND NOT cancel_requested THEN NULL "
    "ELSE run_device END, lease_until = NULL "
    "WHERE id = $1 AND attempt = $2 AND state = 'running'";

static const char SQL_JOB_EXISTS[] = "SELECT 1 FROM jobs WHERE id = $1";

/* 0, EG_STORE_LOST, or 1 when the job is missing. */
static int finish(pg_conn *c, const char *const *p)
{
    int rc = guarded(c, SQL_FINISH, 5, p, "ending a job");
    if (rc != EG_STORE_LOST) return rc;
    PGresult *r = pg_q(c, SQL_JOB_EXISTS, 1, p, "reading a job");
    if (!r) return -1;
    if (PQntuples(r) == 0) rc = 1;
    PQclear(r);
    return rc;
}

int pg_op_job_finish(eg_store *base, int64_t id, int attempt, const char *state, const char *error,
                     const char *summary_json)
{
    eg_pg *s = (eg_pg *)base;
    char err[1024];
    snprintf(err, sizeof err, "%s", error ? error : "");
    if (eg_writeq_flush(&s->q) != 0) EG_LOG(WARN, "%s", eg_last_error());
    pg_num a, b;
    const char *p[] = {pg_i64(&a, id), pg_i64(&b, attempt), state, error ? err : NULL,
                       summary_json};
    int rc;
    PG_RUN(s, 1, rc, finish(c, p));
    return rc;
}

static const char SQL_CANCEL[] =
    "UPDATE jobs SET cancel_requested = true, "
    "state = CASE WHEN state = 'queued' THEN 'canceled' ELSE state END, "
    "finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END "
    "WHERE id = $1 AND state IN ('queued', 'running')";

/* 0 when it changed, else 1 missing or 2 ended; on one connection. */
static int changed_or_why(pg_conn *c, const char *sql, const char *const *p, const char *what)
{
    long changed = 0;
    EG_TRY(pg_x(c, sql, 1, p, what, &changed));
    if (changed) return 0;
    PGresult *r = pg_q(c, SQL_JOB_EXISTS, 1, p, "reading a job");
    if (!r) return -1;
    int rc = PQntuples(r) ? 2 : 1;
    PQclear(r);
    return rc;
}

int pg_op_job_cancel(eg_store *base, int64_t id)
{
    pg_num a;
    const char *p[] = {pg_i64(&a, id)};
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, changed_or_why(c, SQL_CANCEL, p, "canceling a job"));
    return rc;
}

static const char SQL_CANCEL_REQUESTED[] =
    "SELECT cancel_requested, state = 'running' AND attempt = $2 FROM jobs WHERE id = $1";

static int cancel_requested(pg_conn *c, const char *const *p)
{
    PGresult *r = pg_q(c, SQL_CANCEL_REQUESTED, 2, p, "reading a job");
    if (!r) return -1;
    int rc = PQntuples(r) == 0 || PQgetvalue(r, 0, 1)[0] != 't' ? EG_STORE_LOST
                                                                : PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return rc;
}

int pg_op_job_cancel_requested(eg_store *base, int64_t id, int attempt)
{
    pg_num a, b;
    const char *p[] = {pg_i64(&a, id), pg_i64(&b, attempt)};
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, cancel_requested(c, p));
    return rc;
}

static const char SQL_DELETE[] = "DELETE FROM jobs WHERE id = $1 AND state <> 'running'";

/* 0 deleted, 2 running, 1 missing. */
int pg_op_job_delete(eg_store *base, int64_t id)
{
    pg_num a;
    const char *p[] = {pg_i64(&a, id)};
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, changed_or_why(c, SQL_DELETE, p, "deleting a job"));
    return rc;
}

static const char SQL_REQUEUE_CANCELED[] =
    "UPDATE jobs SET state = 'canceled', finished_at = now(), lease_until = NULL "
    "WHERE state = 'running' AND cancel_requested AND (worker = $1 OR worker IS NULL)";
static const char SQL_REQUEUE_RUNNING[] =
    "UPDATE jobs SET state = 'queued', run_device = NULL, lease_until = NULL "
    "WHERE state = 'running' AND (worker = $1 OR worker IS NULL)";

static int requeue(pg_conn *c, const char *worker, long *n)
{
    EG_TRY(pg_begin(c));
    const char *p[] = {worker};
    int rc = pg_x(c, SQL_REQUEUE_CANCELED, 1, p, "requeueing jobs", NULL);
    if (rc == 0) rc = pg_x(c, SQL_REQUEUE_RUNNING, 1, p, "requeueing jobs", n);
    if (rc == 0 && *n > 0) rc = pg_x(c, SQL_NOTIFY, 0, NULL, "notifying the workers", NULL);
    return pg_end(c, rc);
}

int pg_op_requeue_running(eg_store *base, const char *worker)
{
    long n = 0;
    int rc;
    PG_RUN((eg_pg *)base, 1, rc, requeue(c, worker, &n));
    return rc == 0 ? (int)n : -1;
}

static const char SQL_BEAT[] =
    "INSERT INTO workers (name, host, listen, devices) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (name) DO UPDATE SET host = excluded.host, listen = excluded.listen, "
    "devices = excluded.devices, heartbeat_at = now()";

/* Daemons not heard from for a day are gone for good. */
static const char SQL_PRUNE[] = "DELETE FROM workers WHERE heartbeat_at < now() - interval '1 day'";

static int beat(pg_conn *c, const char *const *p)
{
    EG_TRY(pg_x(c, SQL_BEAT, 4, p, "recording a heartbeat", NULL));
    return pg_x(c, SQL_PRUNE, 0, NULL, "removing gone workers", NULL);
}

int pg_op_worker_beat(eg_store *base, const eg_store_worker *w)
{
    const char *p[] = {w->name, w->host, w->listen, w->devices_json};
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, beat(c, p));
    return rc;
}

static const char SQL_WORKERS[] =
    "SELECT w.name, w.host, w.listen, w.devices, " PG_TS("w.started_at") ", " PG_TS(
        "w.heartbeat_at") ", w.heartbeat_at >= now() - make_interval(secs => $1), "
                          "(SELECT COALESCE(json_agg(j.id ORDER BY j.id), '[]') FROM jobs j "
                          "WHERE j.worker = w.name AND j.state = 'running') FROM workers w ORDER "
                          "BY w.name";

static int workers(pg_conn *c, double alive_s, json_t *arr)
{
    json_array_clear(arr); /* a read run again starts afresh */
    pg_num a;
    const char *p[] = {pg_f64(&a, alive_s)};
    PGresult *r = pg_q(c, SQL_WORKERS, 1, p, "listing workers");
    if (!r) return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "name",
                              pg_col_text(r, i, 0), "host", pg_col_text(r, i, 1), "listen",
                              pg_col_text(r, i, 2), "devices", pg_col_json(r, i, 3), "started_at",
                              pg_col_text(r, i, 4), "last_heartbeat", pg_col_text(r, i, 5), "alive",
                              pg_col_bool(r, i, 6), "running", pg_col_json(r, i, 7));
        if (json_array_append_new(arr, o) != 0) rc = eg_errorf("store: out of memory");
    }
    PQclear(r);
    return rc;
}

int pg_op_workers(eg_store *base, double alive_s, json_t **out)
{
    *out = NULL;
    json_t *arr = json_array();
    if (!arr) return eg_errorf("store: out of memory");
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, workers(c, alive_s, arr));
    if (rc == 0 && !(*out = json_pack("{s:o}", "workers", arr)))
        rc = eg_errorf("store: out of memory");
    else if (rc != 0)
        json_decref(arr);
    return rc;
}
