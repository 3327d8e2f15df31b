/* The SQLite store: migrations, the job lifecycle, the step log with its
 * pages and downsampling, evaluations, checkpoints, and readers running
 * while the writer thread commits. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "store/migrations.h"
#include "store/store.h"
#include "pg_cluster.h"
#include "testutil.h"

/* A page of steps as JSON, parsed from the store's text. */
static int steps_page(eg_store *s, int64_t job, long after, int limit, int max_points,
                      json_t **out)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = eg_store_steps_page(s, job, after, limit, max_points, &text, &len);
    if (rc != 0) return rc;
    json_error_t err;
    *out = json_loadb(text, len, 0, &err);
    if (!*out) fail_msg("the steps page is not JSON (%s): %s", err.text, text);
    assert_int_equal(strlen(text), len);
    free(text);
    return 0;
}

static const char SPEC[] = "{\"task\": \"toy1d\", \"method\": \"evograd\", \"seed\": 7}";

/* A fresh database path in a new scratch folder, under a folder that does
 * not exist yet (the store creates it). */
static const char *fresh_path(void)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/a/b/evograd.db", tu_tmpdir());
    return path;
}

/* EG_TEST_STORE=postgresql: every test but the SQLite file's own runs on
 * the tests' PostgreSQL server, a database per path. */
static int use_pg;

/* The database a path names: the path, or the conninfo of its database. */
static const char *db_of(const char *path)
{
    if (!use_pg) return path;
    static char conninfo[600];
    char name[64];
    pgc_name_for(path, name, sizeof name);
    if (pgc_database(name, conninfo, sizeof conninfo) != 0) fail_msg("no PostgreSQL database");
    return conninfo;
}

/* A statement run on the database of path (PostgreSQL) outside the
 * store; the first value of its first row, or -1. */
static long pg_raw(const char *path, const char *sql)
{
    PGconn *c = PQconnectdb(db_of(path));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? atol(PQgetvalue(r, 0, 0)) : -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return v;
}

static eg_store *open_ok(const char *path)
{
    eg_store *s = NULL;
    int rc = eg_store_open(db_of(path), &s);
    if (rc != 0) fail_msg("eg_store_open: %s", eg_last_error());
    return s;
}

static int64_t insert_job(eg_store *s, const char *device, long total)
{
    int64_t id = 0;
    assert_int_equal(eg_store_job_insert(s, SPEC, "toy1d", "evograd", device, total, &id), 0);
    assert_true(id > 0);
    return id;
}

/* A claim for worker "w1" with a 30 s lease, in the old shape. */
static int claim_job(eg_store *s, const char *const *devices, int64_t *id, char **spec,
                     char *device, size_t len)
{
    eg_claim c;
    int rc = eg_store_job_claim(s, devices, "w1", 30, &c);
    *spec = c.spec;
    if (rc == 0) {
        *id = c.id;
        snprintf(device, len, "%s", c.device);
    }
    return rc;
}

/* A job inserted and claimed at once (attempt 1), so that it may log:
 * on a device of its own, so that the claim takes it and no other. */
static int64_t running_job(eg_store *s, long total)
{
    static int n;
    char dev[32];
    snprintf(dev, sizeof dev, "test:%d", ++n);
    int64_t id = insert_job(s, dev, total), got = 0;
    const char *devices[] = {dev, NULL};
    char *spec, device[32];
    assert_int_equal(claim_job(s, devices, &got, &spec, device, sizeof device), 0);
    free(spec);
    assert_int_equal(got, id);
    return id;
}

/* The job's current attempt. */
static int attempt_of(eg_store *s, int64_t id)
{
    json_t *j = NULL;
    if (eg_store_job_get(s, id, &j) != 0) return 0;
    int a = (int)json_integer_value(json_object_get(j, "attempt"));
    json_decref(j);
    return a;
}

/* An integer pragma read on a separate connection. */
static long raw_pragma_int(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long v = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static json_t *get_job(eg_store *s, int64_t id)
{
    json_t *j = NULL;
    assert_int_equal(eg_store_job_get(s, id, &j), 0);
    return j;
}

static const char *job_str(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    assert_non_null(v);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *job_state(eg_store *s, int64_t id)
{
    static char state[32];
    json_t *j = get_job(s, id);
    snprintf(state, sizeof state, "%s", job_str(j, "state"));
    json_decref(j);
    return state;
}

/* YYYY-MM-DDTHH:MM:SS.sssZ */
static void assert_iso_utc(const char *t)
{
    assert_non_null(t);
    assert_int_equal(strlen(t), 24);
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (int i = 0; i < 24; i++) {
        if (shape[i] == 'd') assert_true(t[i] >= '0' && t[i] <= '9');
        else assert_int_equal(t[i], shape[i]);
    }
}

/* PostgreSQL: the version table, reopening, and a newer schema refused. */
static void test_pg_migrations(void **state)
{
    const char *path = fresh_path();
    eg_store *s = open_ok(path);
    assert_true(eg_pg_n_migrations >= 1);
    assert_int_equal(pg_raw(path, "SELECT MAX(version) FROM schema_version"), eg_pg_n_migrations);
    int64_t id = insert_job(s, "cpu", 10);
    eg_store_close(s);
    s = open_ok(path);
    assert_string_equal(eg_store_kind(s), "postgresql");
    assert_int_equal(pg_raw(path, "SELECT COUNT(*) FROM schema_version"), eg_pg_n_migrations);
    assert_string_equal(job_state(s, id), "queued");
    assert_true(insert_job(s, "cpu", 10) > id);
    eg_store_close(s);

    char sql[96];
    snprintf(sql, sizeof sql, "INSERT INTO schema_version VALUES (%d)", eg_pg_n_migrations + 1);
    pg_raw(path, sql);
    eg_clear_error();
    assert_int_equal(eg_store_open(db_of(path), &s), -1);
    assert_non_null(strstr(eg_last_error(), "newer"));
    /* A server that is not there: a clear error, not a hang. */
    tu_fails_with(eg_store_open("host=/nonexistent dbname=x connect_timeout=2", &s),
                  "cannot connect to the PostgreSQL database");
}

static void test_open_migrate_reopen(void **state)
{
    if (use_pg) {
        test_pg_migrations(state);
        return;
    }
    const char *path = fresh_path();
    eg_store *s = open_ok(path);
    assert_int_equal(raw_pragma_int(path, "PRAGMA user_version"), eg_sqlite_n_migrations);
    assert_true(eg_sqlite_n_migrations >= 1);
    int64_t id = insert_job(s, "cpu", 10);
    eg_store_close(s);

    /* WAL is a property of the file. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* Reopening applies nothing again (a second CREATE TABLE would fail)
     * and keeps the data and the version. */
    s = open_ok(path);
    assert_int_equal(raw_pragma_int(path, "PRAGMA user_version"), eg_sqlite_n_migrations);
    assert_string_equal(job_state(s, id), "queued");
    int64_t id2 = insert_job(s, "cpu", 10);
    assert_true(id2 > id);
    eg_store_close(s);
}

static void test_refuses_newer_schema(void **state)
{
    if (use_pg) skip(); /* test_pg_migrations */
    const char *path = fresh_path();
    eg_store_close(open_ok(path));
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", eg_sqlite_n_migrations + 1);
    raw_exec(path, sql);
    eg_store *s = NULL;
    eg_clear_error();
    assert_int_equal(eg_store_open(path, &s), -1);
    assert_null(s);
    assert_non_null(strstr(eg_last_error(), "newer"));
    /* The file is left as it was. */
    assert_int_equal(raw_pragma_int(path, "PRAGMA user_version"), eg_sqlite_n_migrations + 1);
    tu_fails_with(eg_store_open(":memory:", &s), "needs the path of a database file");
}

static void test_insert_get_list(void **state)
{
    eg_store *s = open_ok(fresh_path());
    int64_t ids[7];
    for (int i = 0; i < 7; i++) ids[i] = insert_job(s, "cpu", 100 + i);
    int64_t bad;
    tu_fails_with(eg_store_job_insert(s, "{not json", "toy1d", "evograd", "cpu", 1, &bad),
                  "the job spec is not JSON");

    json_t *j = get_job(s, ids[3]);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), ids[3]);
    assert_string_equal(job_str(j, "state"), "queued");
    assert_string_equal(job_str(j, "task"), "toy1d");
    assert_string_equal(job_str(j, "method"), "evograd");
    assert_string_equal(job_str(j, "device"), "cpu");
    json_t *spec = json_loads(SPEC, 0, NULL);
    assert_true(json_equal(json_object_get(j, "spec"), spec));
    json_decref(spec);
    assert_iso_utc(job_str(j, "created_at"));
    assert_true(json_is_null(json_object_get(j, "started_at")));
    assert_true(json_is_null(json_object_get(j, "finished_at")));
    assert_true(json_is_null(json_object_get(j, "error")));
    assert_true(json_is_null(json_object_get(j, "summary")));
    assert_int_equal(json_integer_value(json_object_get(j, "steps_done")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "total_steps")), 103);
    assert_null(json_object_get(j, "train_loss")); /* no step logged yet */
    json_decref(j);
    assert_int_equal(eg_store_job_get(s, ids[6] + 100, &j), 1);

    /* Pages of 3 walk every job once, in order. */
    int64_t after = 0, seen = 0;
    for (int page = 0;; page++) {
        assert_true(page < 5);
        json_t *l = NULL;
        assert_int_equal(eg_store_jobs_list(s, NULL, after, 3, &l), 0);
        json_t *arr = json_object_get(l, "jobs");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            int64_t id = json_integer_value(json_object_get(json_array_get(arr, i), "id"));
            assert_int_equal(id, ids[seen]);
            seen++;
        }
        json_t *next = json_object_get(l, "next_after");
        int last_page = json_is_null(next);
        if (!last_page) after = json_integer_value(next);
        if (!last_page) assert_int_equal(after, ids[seen - 1]);
        json_decref(l);
        if (last_page) break;
    }
    assert_int_equal(seen, 7);

    /* Exactly one page: no next page announced. */
    json_t *l = NULL;
    assert_int_equal(eg_store_jobs_list(s, NULL, 0, 7, &l), 0);
    assert_int_equal(json_array_size(json_object_get(l, "jobs")), 7);
    assert_true(json_is_null(json_object_get(l, "next_after")));
    json_decref(l);

    /* The state filter. */
    assert_int_equal(eg_store_job_cancel(s, ids[1]), 0);
    assert_int_equal(eg_store_job_cancel(s, ids[4]), 0);
    assert_int_equal(eg_store_jobs_list(s, "canceled", 0, 10, &l), 0);
    json_t *arr = json_object_get(l, "jobs");
    assert_int_equal(json_array_size(arr), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "id")), ids[1]);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 1), "id")), ids[4]);
    json_decref(l);
    assert_int_equal(eg_store_jobs_list(s, "queued", ids[4], 10, &l), 0);
    assert_int_equal(json_array_size(json_object_get(l, "jobs")), 2);
    json_decref(l);
    tu_fails_with(eg_store_jobs_list(s, "bogus", 0, 10, &l), "no job state 'bogus'");

    long counts[5];
    assert_int_equal(eg_store_job_counts(s, counts), 0);
    assert_int_equal(counts[0], 5);
    assert_int_equal(counts[1], 0);
    assert_int_equal(counts[4], 2);
    eg_store_close(s);
}

static void test_claim_order_and_devices(void **state)
{
    eg_store *s = open_ok(fresh_path());
    int64_t on_gpu0 = insert_job(s, "cuda:0", 5);
    int64_t on_cpu = insert_job(s, "cpu", 5);
    int64_t any = insert_job(s, "auto", 5);
    int64_t any_gpu = insert_job(s, "cuda", 5);
    const char *cpu[] = {"cpu", NULL}, *gpu1[] = {"cuda:1", NULL}, *gpu0[] = {"cuda:0", NULL};
    int64_t id;
    char *spec, device[32];

    assert_int_equal(claim_job(s, cpu, &id, &spec, device, sizeof device), 0);
    assert_int_equal(id, on_cpu);
    assert_string_equal(device, "cpu");
    assert_string_equal(spec, SPEC);
    free(spec);
    assert_int_equal(claim_job(s, cpu, &id, &spec, device, sizeof device), 0);
    assert_int_equal(id, any);
    free(spec);
    assert_int_equal(claim_job(s, cpu, &id, &spec, device, sizeof device), 1);
    assert_null(spec);

    assert_int_equal(claim_job(s, gpu1, &id, &spec, device, sizeof device), 0);
    assert_int_equal(id, any_gpu);
    assert_string_equal(device, "cuda:1");
    free(spec);
    assert_int_equal(claim_job(s, gpu0, &id, &spec, device, sizeof device), 0);
    assert_int_equal(id, on_gpu0);
    free(spec);
    assert_int_equal(claim_job(s, gpu0, &id, &spec, device, sizeof device), 1);

    json_t *j = get_job(s, any);
    assert_string_equal(job_str(j, "state"), "running");
    assert_string_equal(job_str(j, "device"), "cpu");
    assert_string_equal(job_str(j, "requested_device"), "auto");
    assert_iso_utc(job_str(j, "started_at"));
    json_decref(j);

    /* Oldest first: a job queued again goes before newer ones. */
    int64_t newer = insert_job(s, "cpu", 5);
    assert_int_equal(eg_store_job_finish(s, any, attempt_of(s, any), "queued", NULL, NULL), 0);
    j = get_job(s, any);
    assert_string_equal(job_str(j, "state"), "queued");
    assert_string_equal(job_str(j, "device"), "auto");
    json_decref(j);
    assert_int_equal(claim_job(s, cpu, &id, &spec, device, sizeof device), 0);
    assert_int_equal(id, any);
    free(spec);
    assert_int_equal(claim_job(s, cpu, &id, &spec, device, sizeof device), 0);
    assert_int_equal(id, newer);
    free(spec);

    long counts[5];
    assert_int_equal(eg_store_job_counts(s, counts), 0);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 5);
    eg_store_close(s);
}

static void test_finish_cancel_delete(void **state)
{
    eg_store *s = open_ok(fresh_path());
    int64_t a = insert_job(s, "cpu", 5), b = insert_job(s, "cpu", 5);
    int64_t missing = b + 1000;
    const char *cpu[] = {"cpu", NULL};
    int64_t id;
    char *spec, device[32];

    /* A queued job is canceled at once; canceling it again conflicts. */
    assert_int_equal(eg_store_job_cancel(s, a), 0);
    json_t *j = get_job(s, a);
    assert_string_equal(job_str(j, "state"), "canceled");
    assert_iso_utc(job_str(j, "finished_at"));
    json_decref(j);
    assert_int_equal(eg_store_job_cancel(s, a), 2);
    assert_int_equal(eg_store_job_cancel(s, missing), 1);
    assert_int_equal(eg_store_job_cancel_requested(s, missing, 1), EG_STORE_LOST);

    /* A running one is flagged and keeps running until its worker ends it. */
    assert_int_equal(claim_job(s, cpu, &id, &spec, device, sizeof device), 0);
    assert_int_equal(id, b);
    free(spec);
    assert_int_equal(eg_store_job_cancel_requested(s, b, attempt_of(s, b)), 0);
    assert_int_equal(eg_store_job_cancel(s, b), 0);
    assert_int_equal(eg_store_job_cancel_requested(s, b, attempt_of(s, b)), 1);
    assert_string_equal(job_state(s, b), "running");
    assert_int_equal(eg_store_job_delete(s, b), 2);
    tu_fails_with(eg_store_job_finish(s, b, attempt_of(s, b), "running", NULL, NULL),
                  "cannot finish a job as 'running'");
    tu_fails_with(eg_store_job_finish(s, b, attempt_of(s, b), "succeeded", NULL, "{bad"),
                  "the job summary is not JSON");
    /* Sent back to the queue after a cancel request: canceled instead. */
    assert_int_equal(eg_store_job_finish(s, b, attempt_of(s, b), "queued", NULL, NULL), 0);
    assert_string_equal(job_state(s, b), "canceled");
    assert_int_equal(eg_store_job_cancel(s, b), 2);

    /* Failed with an error, succeeded with a summary. */
    int64_t c = insert_job(s, "cpu", 5), d = insert_job(s, "cpu", 5);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(claim_job(s, cpu, &id, &spec, device, sizeof device), 0);
        free(spec);
    }
    assert_int_equal(
        eg_store_job_finish(s, c, attempt_of(s, c), "failed", "loss is NaN at step 3", NULL), 0);
    assert_int_equal(
        eg_store_job_finish(s, d, attempt_of(s, d), "succeeded", NULL, "{\"test_acc\": 91.5}"), 0);
    assert_int_equal(eg_store_job_finish(s, missing, 1, "failed", "x", NULL), 1);
    j = get_job(s, c);
    assert_string_equal(job_str(j, "state"), "failed");
    assert_string_equal(job_str(j, "error"), "loss is NaN at step 3");
    assert_true(json_is_null(json_object_get(j, "summary")));
    json_decref(j);
    j = get_job(s, d);
    assert_string_equal(job_str(j, "state"), "succeeded");
    assert_true(json_is_null(json_object_get(j, "error")));
    assert_true(json_real_value(json_object_get(json_object_get(j, "summary"), "test_acc")) == 91.5);
    assert_iso_utc(job_str(j, "finished_at"));
    json_decref(j);
    assert_int_equal(eg_store_job_cancel(s, d), 2);

    /* Delete takes the job's rows with it. */
    eg_step_record r = {.step = 0, .train_loss = 1, .meta_loss = 1, .hyper_norm = 1};
    eg_eval ev = {.test_acc = 50, .test_loss = 1, .angle_deg = NAN, .w_corrupted = NAN,
                  .w_clean = NAN};
    int64_t e = running_job(s, 5);
    assert_int_equal(eg_store_step_append(s, e, 1, &r), 0);
    assert_int_equal(eg_store_eval_append(s, e, 1, 0, &ev), 0);
    assert_int_equal(eg_store_flush(s), 0);
    assert_int_equal(eg_store_checkpoint_record(s, e, 1, 1, "/tmp/x.ckpt"), 0);
    assert_int_equal(eg_store_job_delete(s, e), 2); /* running */
    assert_int_equal(eg_store_job_finish(s, e, 1, "succeeded", NULL, NULL), 0);
    d = e;
    assert_int_equal(eg_store_job_delete(s, d), 0);
    assert_int_equal(eg_store_job_get(s, d, &j), 1);
    assert_int_equal(eg_store_job_delete(s, d), 1);
    assert_int_equal(steps_page(s, d, -1, 10, 0, &j), 1);
    assert_int_equal(eg_store_evals(s, d, &j), 1);
    char *path;
    long at;
    assert_int_equal(eg_store_checkpoint_latest(s, d, &path, &at), 1);
    eg_store_close(s);
}

static void test_requeue_running(void **state)
{
    const char *path = fresh_path();
    eg_store *s = open_ok(path);
    int64_t a = insert_job(s, "cpu", 5), b = insert_job(s, "cpu", 5), c = insert_job(s, "cpu", 5);
    const char *cpu[] = {"cpu", NULL};
    int64_t id;
    char *spec, device[32];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(claim_job(s, cpu, &id, &spec, device, sizeof device), 0);
        free(spec);
    }
    assert_int_equal(eg_store_job_cancel(s, b), 0);
    /* Another daemon's running job: PostgreSQL leaves it to its lease; one
     * daemon uses an SQLite file, so it can only be this one's. */
    int64_t other = insert_job(s, "cpu", 5);
    eg_claim oc;
    assert_int_equal(eg_store_job_claim(s, cpu, "w2", 30, &oc), 0);
    free(oc.spec);
    assert_int_equal(oc.id, c);
    eg_store_close(s); /* as if the daemon died with a and b running */

    s = open_ok(path);
    assert_int_equal(eg_store_requeue_running(s, "w1"), use_pg ? 1 : 2);
    assert_string_equal(job_state(s, c), use_pg ? "running" : "queued");
    assert_string_equal(job_state(s, other), "queued");
    if (use_pg) assert_int_equal(eg_store_requeue_running(s, "w2"), 1);
    assert_string_equal(job_state(s, a), "queued");
    assert_string_equal(job_state(s, b), "canceled");
    assert_string_equal(job_state(s, c), "queued");
    assert_int_equal(eg_store_requeue_running(s, "w1"), 0);
    json_t *j = get_job(s, a);
    assert_string_equal(job_str(j, "device"), "cpu");
    assert_iso_utc(job_str(j, "started_at")); /* the first start is kept */
    json_decref(j);
    eg_store_close(s);
}

/* A step record whose fields all derive from the step number. */
static eg_step_record make_step(long step, double scale)
{
    eg_step_record r = {0};
    r.step = step;
    r.epoch = step / 10;
    r.train_loss = step * scale;
    r.meta_loss = step % 2 ? 1.0 / (step + 1) : NAN;
    r.hyper_norm = INFINITY;
    r.n_lambda = 2;
    r.lambda[0] = 0.1f * (float)step;
    r.lambda[1] = -1.0f / 3.0f;
    r.lambda_norm = sqrt((double)r.lambda[0] * r.lambda[0] + (double)r.lambda[1] * r.lambda[1]);
    r.k = 3;
    r.w[0] = 0.5;
    r.w[1] = 1.0 / 3.0;
    r.w[2] = 1.0 / 6.0;
    r.step_ms = 2.5;
    r.meta_ms = 1.25;
    r.cur_bytes = (size_t)step * 1024;
    r.peak_bytes = ((size_t)1 << 33) + (size_t)step;
    return r;
}

static json_t *page(eg_store *s, int64_t job, long after, int limit, int max_points)
{
    json_t *p = NULL;
    assert_int_equal(steps_page(s, job, after, limit, max_points, &p), 0);
    return p;
}

static long row_step(json_t *p, size_t i)
{
    return (long)json_integer_value(json_object_get(json_array_get(json_object_get(p, "steps"), i), "step"));
}

static size_t rows(json_t *p) { return json_array_size(json_object_get(p, "steps")); }

static long next_after(json_t *p)
{
    json_t *n = json_object_get(p, "next_after");
    assert_non_null(n);
    return json_is_null(n) ? -999 : (long)json_integer_value(n);
}

/* A min/max page keeps each bucket's lowest and highest row of its
 * column, so a lone spike or dip survives any downsampling; at most
 * max_points + 1 rows, ascending, the last row always there. */
static void test_steps_minmax(void **state)
{
    (void)state;
    eg_store *s = open_ok(fresh_path());
    int64_t job = running_job(s, 10000);
    for (long i = 0; i < 10000; i++) {
        eg_step_record r = make_step(i, 0.0);
        r.train_loss = 1.0 + 0.001 * (double)(i % 7);
        if (i == 4321) r.train_loss = 50;   /* a spike */
        if (i == 8765) r.train_loss = -3;   /* a dip */
        if (i == 100) r.train_loss = NAN;   /* NaN is no minimum */
        r.meta_loss = i == 777 ? 99 : 0.5;  /* a spike of another column */
        assert_int_equal(eg_store_step_append(s, job, 1, &r), 0);
    }
    assert_int_equal(eg_store_flush(s), 0);
    static const int widths[] = {2, 10, 64, 1000};
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
        char *text;
        size_t len;
        assert_int_equal(eg_store_steps_minmax_page(s, job, -1, 100000, widths[w], "train_loss",
                                                    &text, &len), 0);
        json_t *p = json_loads(text, 0, NULL);
        free(text);
        assert_non_null(p);
        size_t n = rows(p);
        assert_true(n >= 2 && n <= (size_t)widths[w] + 1);
        int spike = 0, dip = 0;
        for (size_t i = 0; i < n; i++) {
            if (i) assert_true(row_step(p, i) > row_step(p, i - 1));
            spike |= row_step(p, i) == 4321;
            dip |= row_step(p, i) == 8765;
        }
        assert_true(spike && dip);
        assert_int_equal(row_step(p, n - 1), 9999);
        assert_int_equal(next_after(p), -999);
        json_decref(p);
    }
    /* Several columns in one scan: each keeps its extremes. */
    {
        char *text;
        size_t len;
        assert_int_equal(eg_store_steps_minmax_page(s, job, -1, 100000, 16,
                                                    "train_loss,meta_loss,train_loss", &text,
                                                    &len), 0);
        json_t *p = json_loads(text, 0, NULL);
        free(text);
        size_t n = rows(p);
        int spikes = 0;
        for (size_t i = 0; i < n; i++) {
            if (i) assert_true(row_step(p, i) > row_step(p, i - 1));
            long st = row_step(p, i);
            spikes += st == 4321 || st == 8765 || st == 777;
        }
        assert_int_equal(spikes, 3);
        assert_true(n <= 2 * 16 + 1);
        json_decref(p);
    }
    /* A range with more rows than the limit continues after its last. */
    char *text;
    size_t len;
    assert_int_equal(eg_store_steps_minmax_page(s, job, 999, 1000, 10, "peak_bytes", &text, &len),
                     0);
    json_t *p = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(row_step(p, 0), 1000);
    assert_int_equal(row_step(p, rows(p) - 1), 1999);
    assert_int_equal(next_after(p), 1999);
    json_decref(p);
    assert_int_equal(eg_store_steps_minmax_page(s, 999, -1, 10, 10, "train_loss", &text, &len), 1);
    tu_fails_with(eg_store_steps_minmax_page(s, job, -1, 10, 10, "row", &text, &len), "no step column");
    eg_store_close(s);
}

static void test_steps_page(void **state)
{
    eg_store *s = open_ok(fresh_path());
    int64_t job = running_job(s, 100), other = running_job(s, 100);
    for (long i = 0; i < 100; i++) {
        eg_step_record r = make_step(i, 0.5);
        assert_int_equal(eg_store_step_append(s, job, 1, &r), 0);
        r = make_step(i, 7.0);
        if (i < 20) assert_int_equal(eg_store_step_append(s, other, 1, &r), 0);
    }
    assert_int_equal(eg_store_flush(s), 0);

    json_t *j = get_job(s, job);
    assert_int_equal(json_integer_value(json_object_get(j, "steps_done")), 100);
    /* Engine figures come back as float32 values in their shortest text. */
    assert_true(json_real_value(json_object_get(j, "train_loss")) == 99 * 0.5);
    assert_true((float)json_real_value(json_object_get(j, "meta_loss")) == (float)(1.0 / 100));
    assert_true(json_real_value(json_object_get(j, "meta_loss")) == 0.01);
    assert_true((float)json_real_value(json_array_get(json_object_get(j, "lambda"), 0)) ==
                0.1f * 99.0f);
    json_decref(j);

    /* A row's every field. */
    json_t *p = page(s, job, 4, 1, 0);
    assert_int_equal(rows(p), 1);
    json_t *row = json_array_get(json_object_get(p, "steps"), 0);
    eg_step_record want = make_step(5, 0.5);
    assert_int_equal(json_integer_value(json_object_get(row, "step")), 5);
    assert_int_equal(json_integer_value(json_object_get(row, "epoch")), 0);
    assert_true((float)json_real_value(json_object_get(row, "train_loss")) ==
                (float)want.train_loss);
    assert_true((float)json_real_value(json_object_get(row, "meta_loss")) ==
                (float)want.meta_loss);
    assert_true(json_is_null(json_object_get(row, "hyper_norm"))); /* infinite */
    json_t *lam = json_object_get(row, "lambda");
    assert_int_equal(json_array_size(lam), 2);
    assert_true((float)json_real_value(json_array_get(lam, 0)) == want.lambda[0]);
    assert_true((float)json_real_value(json_array_get(lam, 1)) == want.lambda[1]);
    assert_true((float)json_real_value(json_object_get(row, "lambda_norm")) ==
                (float)want.lambda_norm);
    json_t *w = json_object_get(row, "w");
    assert_int_equal(json_array_size(w), 3);
    for (int k = 0; k < 3; k++)
        assert_true((float)json_real_value(json_array_get(w, k)) == (float)want.w[k]);
    assert_true(json_real_value(json_object_get(row, "step_ms")) == 2.5);
    assert_true(json_real_value(json_object_get(row, "meta_ms")) == 1.25);
    assert_int_equal(json_integer_value(json_object_get(row, "cur_bytes")), 5 * 1024);
    assert_int_equal(json_integer_value(json_object_get(row, "peak_bytes")), (1LL << 33) + 5);
    assert_int_equal(next_after(p), 5);
    json_decref(p);
    p = page(s, job, 5, 1, 0);
    assert_true(json_is_null(json_object_get(json_array_get(json_object_get(p, "steps"), 0),
                                             "meta_loss"))); /* NaN */
    json_decref(p);

    /* Paging: after / limit / next_after. */
    p = page(s, job, -1, 30, 0);
    assert_int_equal(rows(p), 30);
    for (size_t i = 0; i < 30; i++) assert_int_equal(row_step(p, i), (long)i);
    assert_int_equal(next_after(p), 29);
    json_decref(p);
    p = page(s, job, 89, 30, 0);
    assert_int_equal(rows(p), 10);
    assert_int_equal(row_step(p, 0), 90);
    assert_int_equal(next_after(p), -999);
    json_decref(p);
    p = page(s, job, 99, 30, 0);
    assert_int_equal(rows(p), 0);
    assert_int_equal(next_after(p), -999);
    json_decref(p);
    p = page(s, job, 69, 30, 0); /* exactly the rest: no next page */
    assert_int_equal(rows(p), 30);
    assert_int_equal(next_after(p), -999);
    json_decref(p);

    /* Downsampling: evenly spaced, first and last kept. */
    p = page(s, job, -1, 1000, 10);
    assert_int_equal(rows(p), 10);
    for (size_t i = 0; i < 10; i++) assert_int_equal(row_step(p, i), (long)(11 * i));
    assert_int_equal(next_after(p), -999);
    json_decref(p);
    p = page(s, job, -1, 50, 7); /* the range is steps 0..49 */
    assert_int_equal(rows(p), 7);
    assert_int_equal(row_step(p, 0), 0);
    assert_int_equal(row_step(p, 6), 49);
    for (size_t i = 1; i < 7; i++) {
        long gap = row_step(p, i) - row_step(p, i - 1);
        assert_true(gap == 8 || gap == 9);
    }
    assert_int_equal(next_after(p), 49);
    json_decref(p);
    p = page(s, job, 10, 1000, 1);
    assert_int_equal(rows(p), 1);
    assert_int_equal(row_step(p, 0), 99);
    json_decref(p);
    p = page(s, job, 94, 1000, 10); /* fewer rows than points: all of them */
    assert_int_equal(rows(p), 5);
    json_decref(p);

    /* A resumed job logs steps again: the rows are replaced, never doubled. */
    for (long i = 40; i < 60; i++) {
        eg_step_record r = make_step(i, -1.0);
        assert_int_equal(eg_store_step_append(s, job, 1, &r), 0);
    }
    assert_int_equal(eg_store_flush(s), 0);
    p = page(s, job, -1, 1000, 0);
    assert_int_equal(rows(p), 100);
    for (size_t i = 0; i < 100; i++) {
        assert_int_equal(row_step(p, i), (long)i);
        double loss = json_real_value(json_object_get(json_array_get(json_object_get(p, "steps"), i),
                                                      "train_loss"));
        assert_true(loss == (i >= 40 && i < 60 ? -1.0 : 0.5) * (double)i);
    }
    json_decref(p);
    j = get_job(s, job);
    assert_int_equal(json_integer_value(json_object_get(j, "steps_done")), 100);
    json_decref(j);
    j = get_job(s, other);
    assert_int_equal(json_integer_value(json_object_get(j, "steps_done")), 20);
    json_decref(j);

    /* λ too large to log is null; no copies gives an empty w. */
    eg_step_record big = make_step(100, 0.5);
    big.n_lambda = 1000;
    big.k = 0;
    assert_int_equal(eg_store_step_append(s, job, 1, &big), 0);
    assert_int_equal(eg_store_flush(s), 0);
    p = page(s, job, 99, 10, 0);
    row = json_array_get(json_object_get(p, "steps"), 0);
    assert_true(json_is_null(json_object_get(row, "lambda")));
    assert_int_equal(json_array_size(json_object_get(row, "w")), 0);
    assert_true(json_is_array(json_object_get(row, "w")));
    json_decref(p);

    assert_int_equal(steps_page(s, other + 50, -1, 10, 0, &p), 1);
    tu_fails_with(steps_page(s, job, -1, 0, 0, &p), "steps page limit must be positive");
    eg_store_close(s);
}

static void test_evals(void **state)
{
    eg_store *s = open_ok(fresh_path());
    int64_t job = running_job(s, 100);
    json_t *e = NULL;
    assert_int_equal(eg_store_evals(s, job, &e), 0);
    assert_int_equal(json_array_size(json_object_get(e, "evals")), 0);
    json_decref(e);

    eg_eval a = {.test_acc = 81.25, .test_loss = 0.5, .angle_deg = NAN, .w_corrupted = NAN,
                 .w_clean = NAN};
    eg_eval b = {.test_acc = NAN, .test_loss = NAN, .angle_deg = 12.5, .w_corrupted = 0.125,
                 .w_clean = 0.875, .has_curve = 1};
    for (int i = 0; i < EG_VNET_CURVE; i++) b.vnet_curve[i] = 1.0f / (float)(i + 1);
    assert_int_equal(eg_store_eval_append(s, job, 1, 49, &a), 0);
    assert_int_equal(eg_store_eval_append(s, job, 1, 99, &a), 0);
    assert_int_equal(eg_store_eval_append(s, job, 1, 99, &b), 0); /* replaces */
    assert_int_equal(eg_store_flush(s), 0);
    assert_int_equal(eg_store_evals(s, job, &e), 0);
    json_t *arr = json_object_get(e, "evals");
    assert_int_equal(json_array_size(arr), 2);
    json_t *x = json_array_get(arr, 0), *y = json_array_get(arr, 1);
    assert_int_equal(json_integer_value(json_object_get(x, "step")), 49);
    assert_true(json_real_value(json_object_get(x, "test_acc")) == 81.25);
    assert_true(json_real_value(json_object_get(x, "test_loss")) == 0.5);
    assert_true(json_is_null(json_object_get(x, "angle_deg")));
    assert_true(json_is_null(json_object_get(x, "w_corrupted")));
    assert_true(json_is_null(json_object_get(x, "w_clean")));
    assert_int_equal(json_integer_value(json_object_get(y, "step")), 99);
    assert_true(json_is_null(json_object_get(y, "test_acc")));
    assert_true(json_real_value(json_object_get(y, "angle_deg")) == 12.5);
    assert_true(json_real_value(json_object_get(y, "w_clean")) == 0.875);
    /* mwn's VNet curve: the loss grid and the weights read there. */
    assert_true(json_is_null(json_object_get(x, "vnet_curve")));
    json_t *curve = json_object_get(y, "vnet_curve");
    json_t *losses = json_object_get(curve, "loss"), *weights = json_object_get(curve, "weight");
    assert_int_equal(json_array_size(losses), EG_VNET_CURVE);
    assert_int_equal(json_array_size(weights), EG_VNET_CURVE);
    for (int i = 0; i < EG_VNET_CURVE; i++) {
        assert_true(json_number_value(json_array_get(losses, i)) == i * EG_VNET_CURVE_STEP);
        assert_true((float)json_number_value(json_array_get(weights, i)) == 1.0f / (float)(i + 1));
    }
    json_decref(e);
    assert_int_equal(eg_store_evals(s, job + 1, &e), 1);
    eg_store_close(s);
}

static void test_checkpoints(void **state)
{
    eg_store *s = open_ok(fresh_path());
    int64_t job = running_job(s, 1000), other = running_job(s, 1000);
    char *path = NULL;
    long step = -1;
    assert_int_equal(eg_store_checkpoint_latest(s, job, &path, &step), 1);
    assert_null(path);
    assert_int_equal(eg_store_checkpoint_record(s, job, 1, 200, "/ck/job-1.ckpt.b"), 0);
    assert_int_equal(eg_store_checkpoint_record(s, job, 1, 100, "/ck/job-1.ckpt.a"), 0);
    assert_int_equal(eg_store_checkpoint_record(s, other, 1, 300, "/ck/job-2.ckpt"), 0);
    assert_int_equal(eg_store_checkpoint_latest(s, job, &path, &step), 0);
    assert_string_equal(path, "/ck/job-1.ckpt.b");
    assert_int_equal(step, 200);
    free(path);
    assert_int_equal(eg_store_checkpoint_record(s, job, 1, 200, "/ck/again"), 0);
    assert_int_equal(eg_store_checkpoint_latest(s, job, &path, &step), 0);
    assert_string_equal(path, "/ck/again");
    free(path);
    assert_int_equal(eg_store_checkpoint_record(s, other + 10, 1, 1, "/ck/none"), 1);
    eg_store_close(s);
}

/* Rows queued for a job deleted meanwhile (its worker lost its lease, and
 * the job was deleted once queued again) are dropped; the batch they
 * share with other rows still commits. */
static void test_rows_of_deleted_job(void **state)
{
    eg_store *s = open_ok(fresh_path());
    int64_t gone = insert_job(s, "test:gone", 10), kept = running_job(s, 10);
    const char *dev[] = {"test:gone", NULL};
    eg_claim c;
    assert_int_equal(eg_store_job_claim(s, dev, "w2", 0.001, &c), 0);
    free(c.spec);
    assert_int_equal(c.id, gone);
    for (long i = 0; i < 10; i++) {
        eg_step_record r = make_step(i, 1.0);
        assert_int_equal(eg_store_step_append(s, gone, c.attempt, &r), 0);
        assert_int_equal(eg_store_step_append(s, kept, 1, &r), 0);
    }
    usleep(20 * 1000);
    int requeued = 0;
    assert_int_equal(eg_store_leases_expire(s, 3, &requeued, NULL), 0);
    assert_int_equal(requeued, 1);
    assert_int_equal(eg_store_job_delete(s, gone), 0);
    assert_int_equal(eg_store_flush(s), 0);
    json_t *p = page(s, kept, -1, 100, 0);
    assert_int_equal(rows(p), 10);
    json_decref(p);
    assert_int_equal(steps_page(s, gone, -1, 100, 0, &p), 1);
    eg_store_close(s);
}

/* ---- readers while the writer commits ---- */

#define N_READERS 8
#define REQUESTS 500
#define N_STEPS 5000

typedef struct reader_ctx {
    eg_store *s;
    int64_t job;
    int seed;
    atomic_int *errors;
    atomic_int *done;
    long max_seen;
} reader_ctx;

static void reader_fail(reader_ctx *c, const char *what)
{
    fprintf(stderr, "reader %d: %s: %s\n", c->seed, what, eg_last_error());
    atomic_fetch_add(c->errors, 1);
}

/* Checks a page: ascending steps after `after`, each row's loss matching
 * its step. */
static void check_page(reader_ctx *c, json_t *p, long after)
{
    json_t *arr = json_object_get(p, "steps");
    long prev = after;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *row = json_array_get(arr, i);
        long step = (long)json_integer_value(json_object_get(row, "step"));
        double loss = json_real_value(json_object_get(row, "train_loss"));
        if (step <= prev || loss != step * 0.25) {
            fprintf(stderr, "reader %d: bad row %ld after %ld\n", c->seed, step, prev);
            atomic_fetch_add(c->errors, 1);
        }
        prev = step;
        if (step > c->max_seen) c->max_seen = step;
    }
}

static void *reader_main(void *arg)
{
    reader_ctx *c = arg;
    unsigned r = (unsigned)c->seed * 2654435761u + 1;
    for (int i = 0; i < REQUESTS || !atomic_load(c->done); i++) {
        r = r * 1103515245u + 12345u;
        json_t *out = NULL;
        int rc = 0;
        switch (r >> 16 & 3) {
        case 0: {
            long after = (long)(r >> 8) % N_STEPS - 1;
            rc = steps_page(c->s, c->job, after, 100, (r & 1) ? 20 : 0, &out);
            if (rc == 0) check_page(c, out, after);
            break;
        }
        case 1: rc = eg_store_job_get(c->s, c->job, &out); break;
        case 2: rc = eg_store_jobs_list(c->s, NULL, 0, 50, &out); break;
        default: {
            long counts[5];
            rc = eg_store_job_counts(c->s, counts);
            if (rc == 0 && eg_store_job_cancel_requested(c->s, c->job, 1) < 0) rc = -1;
            break;
        }
        }
        if (rc != 0) reader_fail(c, "request");
        json_decref(out);
    }
    return NULL;
}

static void test_readers_while_writing(void **state)
{
    eg_store *s = open_ok(fresh_path());
    int64_t job = running_job(s, N_STEPS);
    atomic_int errors = 0, done = 0;
    reader_ctx ctx[N_READERS];
    pthread_t th[N_READERS];
    for (int i = 0; i < N_READERS; i++) {
        ctx[i] = (reader_ctx){s, job, i + 1, &errors, &done, -1};
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &ctx[i]), 0);
    }
    for (long i = 0; i < N_STEPS; i++) {
        eg_step_record r = make_step(i, 0.25);
        assert_int_equal(eg_store_step_append(s, job, 1, &r), 0);
        /* Synchronous writes between the batches. */
        if (i % 500 == 0) {
            int64_t extra = insert_job(s, "cuda:0", 1);
            assert_int_equal(eg_store_job_cancel(s, extra), 0);
        }
        if (i % 1000 == 999) assert_int_equal(eg_store_flush(s), 0);
    }
    assert_int_equal(eg_store_flush(s), 0);
    atomic_store(&done, 1);
    long max_seen = -1;
    for (int i = 0; i < N_READERS; i++) {
        pthread_join(th[i], NULL);
        if (ctx[i].max_seen > max_seen) max_seen = ctx[i].max_seen;
    }
    assert_int_equal(atomic_load(&errors), 0);
    assert_true(max_seen > 0);

    json_t *p = page(s, job, -1, 2 * N_STEPS, 0);
    assert_int_equal(rows(p), N_STEPS);
    json_decref(p);
    json_t *j = get_job(s, job);
    assert_int_equal(json_integer_value(json_object_get(j, "steps_done")), N_STEPS);
    json_decref(j);
    eg_store_close(s);
}

static void test_close_flushes(void **state)
{
    const char *path = fresh_path();
    eg_store *s = open_ok(path);
    int64_t job = running_job(s, 300);
    for (long i = 0; i < 300; i++) {
        eg_step_record r = make_step(i, 0.25);
        assert_int_equal(eg_store_step_append(s, job, 1, &r), 0);
    }
    eg_eval ev = {.test_acc = 90, .test_loss = 0.25, .angle_deg = NAN, .w_corrupted = NAN,
                  .w_clean = NAN};
    assert_int_equal(eg_store_eval_append(s, job, 1, 299, &ev), 0);
    eg_store_close(s);

    s = open_ok(path);
    json_t *p = page(s, job, -1, 1000, 0);
    assert_int_equal(rows(p), 300);
    assert_int_equal(row_step(p, 299), 299);
    json_decref(p);
    json_t *e = NULL;
    assert_int_equal(eg_store_evals(s, job, &e), 0);
    assert_int_equal(json_array_size(json_object_get(e, "evals")), 1);
    json_decref(e);
    json_t *j = get_job(s, job);
    assert_int_equal(json_integer_value(json_object_get(j, "steps_done")), 300);
    json_decref(j);
    eg_store_close(s);
}

/* Heartbeats: the workers with their devices, alive within alive_s, their
 * running jobs; a worker not heard from for a day is forgotten. */
static void test_workers(void **state)
{
    const char *path = fresh_path();
    eg_store *s = open_ok(path);
    eg_store_worker a = {.name = "box-a:8080", .host = "box-a", .listen = "0.0.0.0:8080",
                         .devices_json = "[\"cuda:0\",\"cuda:1\"]"};
    assert_int_equal(eg_store_worker_beat(s, &a), 0);
    int64_t job = insert_job(s, "cuda:1", 5);
    const char *gpu[] = {"cuda:1", NULL};
    eg_claim c;
    assert_int_equal(eg_store_job_claim(s, gpu, a.name, 30, &c), 0);
    free(c.spec);
    /* One an hour quiet (kept, not alive) and one two days quiet (gone at
     * the next beat), written as a daemon's beats would be. */
    static const char *const old[2][2] = {
        {"INSERT INTO workers (name, host, heartbeat_at) VALUES ('quiet', 'q', "
         "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour'))",
         "INSERT INTO workers (name, host, heartbeat_at) VALUES ('quiet', 'q', "
         "now() - interval '1 hour')"},
        {"INSERT INTO workers (name, host, heartbeat_at) VALUES ('gone', 'g', "
         "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days'))",
         "INSERT INTO workers (name, host, heartbeat_at) VALUES ('gone', 'g', "
         "now() - interval '2 days')"}};
    for (int i = 0; i < 2; i++) {
        if (use_pg) pg_raw(path, old[i][1]);
        else raw_exec(path, old[i][0]);
    }
    assert_int_equal(eg_store_worker_beat(s, &a), 0);
    json_t *out = NULL;
    assert_int_equal(eg_store_workers(s, 60, &out), 0);
    json_t *ws = json_object_get(out, "workers");
    assert_int_equal(json_array_size(ws), 2);
    json_t *w0 = json_array_get(ws, 0), *w1 = json_array_get(ws, 1);
    assert_string_equal(job_str(w0, "name"), "box-a:8080");
    assert_string_equal(job_str(w0, "listen"), "0.0.0.0:8080");
    assert_true(json_is_true(json_object_get(w0, "alive")));
    assert_int_equal(json_array_size(json_object_get(w0, "devices")), 2);
    assert_int_equal(json_array_size(json_object_get(w0, "running")), 1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(w0, "running"), 0)), job);
    assert_iso_utc(job_str(w0, "last_heartbeat"));
    assert_string_equal(job_str(w1, "name"), "quiet");
    assert_true(json_is_false(json_object_get(w1, "alive")));
    assert_int_equal(json_array_size(json_object_get(w1, "running")), 0);
    json_decref(out);
    eg_store_close(s);
}

int main(void)
{
    use_pg = pgc_wanted();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_migrate_reopen),
        cmocka_unit_test(test_refuses_newer_schema),
        cmocka_unit_test(test_insert_get_list),
        cmocka_unit_test(test_claim_order_and_devices),
        cmocka_unit_test(test_finish_cancel_delete),
        cmocka_unit_test(test_requeue_running),
        cmocka_unit_test(test_steps_page),
        cmocka_unit_test(test_steps_minmax),
        cmocka_unit_test(test_evals),
        cmocka_unit_test(test_checkpoints),
        cmocka_unit_test(test_rows_of_deleted_job),
        cmocka_unit_test(test_readers_while_writing),
        cmocka_unit_test(test_close_flushes),
        cmocka_unit_test(test_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
