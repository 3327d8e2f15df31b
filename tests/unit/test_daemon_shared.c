/* Many daemons, one PostgreSQL store, black-box: real `evogradd serve`
 * processes (daemon_harness.h) sharing one database on the tests' own
 * server (pg_cluster.h) and one checkpoint folder, as the daemons of
 * several GPU boxes would.
 *
 *   three daemons, 60 short jobs submitted to all of them: every job runs
 *   exactly once (attempt 1, one "running on" line in all the logs), each
 *   with its whole step log; every daemon answers for every job, and
 *   GET /v1/workers lists the three, alive;
 *
 *   kill -9 of the daemon running a job: once its lease runs out another
 *   daemon queues the job again and resumes it from its last checkpoint;
 *   the step log runs 0..79 with no gap and no duplicate, and the losses
 *   equal those of an uninterrupted run (in a daemon of its own, SQLite);
 *
 *   the database stops for 10 s and comes back: the daemons wait, keep
 *   serving, and finish their jobs with nothing lost or duplicated (every
 *   job's log whole and equal to the uninterrupted run, attempt 1);
 *
 *   a stalled worker (SIGSTOP past its lease, then SIGCONT) writes nothing
 *   into the job another daemon took over: every row past the resume
 *   point is the new attempt's, no checkpoint of the old attempt is
 *   recorded or left, and the stalled daemon says it stopped the job. */
#include <dirent.h>
#include <libpq-fe.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "daemon_harness.h"
#include "pg_cluster.h"
#include "testutil.h"

#define TOTAL 80
#define SPEC "{\"task\":\"rotation\",\"steps\":80,\"eval_every\":1000000,\"eval_limit\":100}"
#define WAIT_S 180.0
#define LEASE_S 2

static char root[512];
static json_t *reference;    /* step rows of the uninterrupted run */
static char shared_dir[700]; /* the current test's checkpoint folder, shared */

static int group_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s", tu_tmpdir());
    if (pgc_start() != 0) return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    json_decref(reference);
    dh_thread_end();
    return 0;
}

/* One integer from the shared database: sql's first column of its first
 * row (with $1 = a when a >= 0); -1 when there is none. */
static long long db_int(const char *conninfo, const char *sql, long long a)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) fail_msg("psql: %s", PQerrorMessage(c));
    char arg[32];
    snprintf(arg, sizeof arg, "%lld", a);
    const char *p[] = {arg};
    PGresult *r = PQexecParams(c, sql, a >= 0 ? 1 : 0, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    long long v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

/* A daemon named `name` in root/NAME on the shared database `db`, its
 * checkpoints in the folder all of them share (root/shared). */
static void start(dh_daemon *d, const char *name, const char *db, long lease_s)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    dh_opts o = {.checkpoint_every = 5,
                 .db = db,
                 .worker_name = name,
                 .lease_seconds = lease_s,
                 .state_dir = shared_dir};
    if (dh_start(d, dir, &o) != 0) fail_msg("cannot start daemon %s", name);
}

static void stop(dh_daemon *d)
{
    int status;
    if (dh_stop(d, SIGTERM, 20, &status) != 0 || status != 0)
        fail_msg("the daemon did not exit 0 on SIGTERM (status %d)", status);
}

/* A database of its own for a test, and a checkpoint folder its daemons
 * share. */
static void shared_db(const char *name, char *conninfo, size_t cap)
{
    if (pgc_database(name, conninfo, cap) != 0) fail_msg("no database %s", name);
    snprintf(shared_dir, sizeof shared_dir, "%s/shared-%s", root, name);
    mkdir(shared_dir, 0755);
}

/* Files in dir whose names start with prefix. */
static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* The uninterrupted run, once, in a daemon of its own (SQLite). */
static const json_t *reference_steps(void)
{
    if (reference) return reference;
    dh_daemon d;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/reference", root);
    dh_opts o = {.checkpoint_every = 1000};
    if (dh_start(&d, dir, &o) != 0) fail_msg("cannot start the reference daemon");
    int64_t id = dh_submit(&d, SPEC);
    json_t *job = NULL;
    if (dh_wait_job(&d, id, "succeeded|failed|canceled", 0, WAIT_S, &job) != 0)
        fail_msg("the reference job did not end");
    assert_string_equal(json_string_value(json_object_get(job, "state")), "succeeded");
    json_decref(job);
    reference = dh_steps_whole(&d, id, 1000, TOTAL);
    assert_non_null(reference);
    stop(&d);
    return reference;
}

/* The job's whole step log (0..79, no gap, no duplicate), equal to the
 * uninterrupted run's. */
static void expect_whole_and_same(const dh_daemon *d, int64_t id, const char *what)
{
    json_t *rows = dh_steps_whole(d, id, 33, TOTAL);
    if (!rows) fail_msg("%s: job %lld: the step log is not whole", what, (long long)id);
    if (dh_rows_match(rows, reference_steps(), 1e-6, what) != 0)
        fail_msg("%s: job %lld: the steps differ from the uninterrupted run's", what,
                 (long long)id);
    json_decref(rows);
}

static json_t *get_job(const dh_daemon *d, int64_t id)
{
    json_t *job = NULL;
    if (dh_wait_job(d, id, "queued|running|succeeded|failed|canceled", 0, 10, &job) != 0)
        fail_msg("GET job %lld failed", (long long)id);
    return job;
}

static const char *str_of(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static long long int_of(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}


/* Waits until the job is running as attempt `attempt` with at least
 * min_steps done; the job then. */
static json_t *wait_attempt(const dh_daemon *d, int64_t id, int attempt, long min_steps)
{
    double until = dh_now_ms() + WAIT_S * 1e3;
    while (dh_now_ms() < until) {
        json_t *job = get_job(d, id);
        if (int_of(job, "attempt") >= attempt && strcmp(str_of(job, "state"), "running") == 0 &&
            int_of(job, "steps_done") >= min_steps)
            return job;
        if (strcmp(str_of(job, "state"), "running") != 0 &&
            strcmp(str_of(job, "state"), "queued") != 0)
            fail_msg("job %lld ended (%s) before attempt %d ran %ld steps", (long long)id,
                     str_of(job, "state"), attempt, min_steps);
        json_decref(job);
        dh_sleep_ms(50);
    }
    fail_msg("job %lld: attempt %d did not reach %ld steps", (long long)id, attempt, min_steps);
    return NULL;
}

/* ---- three daemons, sixty jobs ---- */

#define N_DAEMONS 3
#define N_JOBS 60

static void test_each_job_runs_once(void **state)
{
    (void)state;
    char db[600];
    shared_db("once", db, sizeof db);
    dh_daemon d[N_DAEMONS];
    static const char *const names[N_DAEMONS] = {"box-a", "box-b", "box-c"};
    for (int i = 0; i < N_DAEMONS; i++) start(&d[i], names[i], db, 30);
    int64_t ids[N_JOBS];
    for (int i = 0; i < N_JOBS; i++) {
        ids[i] = dh_submit(&d[i % N_DAEMONS], "{\"task\":\"toy1d\",\"steps\":40}");
        assert_true(ids[i] > 0);
    }
    for (int i = 0; i < N_JOBS; i++) {
        /* Each asked of a daemon other than the one it was submitted to. */
        json_t *job = NULL;
        if (dh_wait_job(&d[(i + 1) % N_DAEMONS], ids[i], "succeeded|failed|canceled", 0, WAIT_S,
                        &job) != 0)
            fail_msg("job %lld did not end", (long long)ids[i]);
        if (strcmp(str_of(job, "state"), "succeeded") != 0)
            fail_msg("job %lld: %s: %s", (long long)ids[i], str_of(job, "state"),
                     str_of(job, "error"));
        assert_int_equal(int_of(job, "attempt"), 1);
        assert_int_equal(int_of(job, "steps_done"), 40);
        json_decref(job);
    }
    /* Exactly once: one claim each in all the logs, 40 rows each. */
    for (int i = 0; i < N_JOBS; i++) {
        char want[64];
        snprintf(want, sizeof want, "job %lld: running on ", (long long)ids[i]);
        long runs = 0;
        for (int k = 0; k < N_DAEMONS; k++) runs += dh_file_count(d[k].log, want);
        if (runs != 1) fail_msg("job %lld ran %ld times", (long long)ids[i], runs);
    }
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM steps", -1), N_JOBS * 40);
    long long workers = db_int(db, "SELECT COUNT(DISTINCT worker) FROM jobs", -1);
    fprintf(stderr, "# %d jobs on %d daemons: run by %lld of them\n", N_JOBS, N_DAEMONS, workers);
    assert_true(workers >= 2);

    dh_resp r;
    assert_int_equal(dh_get(&d[2], "/v1/workers", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *ws = json_object_get(r.json, "workers");
    assert_int_equal(json_array_size(ws), N_DAEMONS);
    for (size_t i = 0; i < N_DAEMONS; i++) {
        json_t *w = json_array_get(ws, i);
        assert_string_equal(str_of(w, "name"), names[i]);
        assert_true(json_is_true(json_object_get(w, "alive")));
        assert_int_equal(json_array_size(json_object_get(w, "running")), 0);
    }
    dh_resp_free(&r);
    assert_int_equal(dh_get(&d[0], "/healthz", &r), 0);
    assert_string_equal(str_of(r.json, "store"), "postgresql");
    dh_resp_free(&r);

    /* A job may ask for a device of any daemon alive on the store: a GPU
     * box's heartbeat (written as its daemon would) lets these CPU-only
     * daemons take a job for cuda:0, which then waits for that box. */
    db_int(db,
           "INSERT INTO workers (name, host, devices) VALUES ('gpu-box', 'gpu-box', "
           "'[\"cuda:0\"]') RETURNING 1",
           -1);
    int64_t gpu_job = dh_submit(&d[1], "{\"task\":\"toy1d\",\"device\":\"cuda:0\"}");
    assert_true(gpu_job > 0);
    assert_int_equal(
        dh_post_json(&d[1], "/v1/jobs", "{\"task\":\"toy1d\",\"device\":\"cuda:5\"}", &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(dh_err_message(&r), "cuda:0"));
    dh_resp_free(&r);
    dh_sleep_ms(500);
    json_t *waiting = get_job(&d[0], gpu_job);
    assert_string_equal(str_of(waiting, "state"), "queued");
    json_decref(waiting);
    for (int i = 0; i < N_DAEMONS; i++) {
        stop(&d[i]);
        if (!dh_log_clean(&d[i])) fail_msg("errors in %s", d[i].log);
    }
}

/* ---- kill -9: another daemon resumes the job ---- */

static void test_kill_resumes_elsewhere(void **state)
{
    (void)state;
    reference_steps();
    char db[600];
    shared_db("killed", db, sizeof db);
    dh_daemon a, b;
    start(&a, "dies", db, LEASE_S);
    int64_t id = dh_submit(&a, SPEC);
    json_t *job = wait_attempt(&a, id, 1, 12);
    json_decref(job);
    start(&b, "takes-over", db, LEASE_S);
    assert_int_equal(dh_stop(&a, SIGKILL, 5, NULL), 0);
    double killed = dh_now_ms();
    if (dh_wait_job(&b, id, "succeeded|failed|canceled", 0, WAIT_S, &job) != 0)
        fail_msg("the job did not end");
    assert_string_equal(str_of(job, "state"), "succeeded");
    assert_int_equal(int_of(job, "attempt"), 2);
    assert_string_equal(str_of(job, "worker"), "takes-over");
    json_decref(job);
    long at = dh_resumed_at(&b, id);
    fprintf(stderr, "# killed; resumed on the other daemon at step %ld, %.1f s later\n", at,
            (dh_now_ms() - killed) / 1e3);
    assert_true(at >= 10 && at % 5 == 0);
    expect_whole_and_same(&b, id, "kill -9");
    assert_int_equal(db_int(db, "SELECT leases_lost FROM jobs WHERE id = $1", id), 1);
    stop(&b);
}

/* ---- the database goes away for 10 s ---- */

#define N_OUTAGE_JOBS 3

static void test_database_outage(void **state)
{
    (void)state;
    reference_steps();
    char db[600];
    shared_db("outage", db, sizeof db);
    dh_daemon a, b;
    start(&a, "wait-a", db, 30);
    start(&b, "wait-b", db, 30);
    int64_t ids[N_OUTAGE_JOBS];
    for (int i = 0; i < N_OUTAGE_JOBS; i++) ids[i] = dh_submit(i % 2 ? &b : &a, SPEC);
    json_t *job = wait_attempt(&a, ids[0], 1, 5);
    json_decref(job);
    assert_int_equal(pgc_server_stop(), 0);
    double down = dh_now_ms();
    /* Meanwhile reads say the store is away (503), and the daemons live. */
    dh_resp r;
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)ids[0]);
    assert_int_equal(dh_get(&b, path, &r), 0);
    if (r.status != 503 || strcmp(dh_err_code(&r) ? dh_err_code(&r) : "", "store_unavailable"))
        fail_msg("GET %s while the database is away: %ld %s", path, r.status, r.body);
    dh_resp_free(&r);
    dh_sleep_ms(10000 - (dh_now_ms() - down));
    assert_true(dh_alive(&a) && dh_alive(&b));
    assert_int_equal(pgc_server_start(), 0);
    for (int i = 0; i < N_OUTAGE_JOBS; i++) {
        if (dh_wait_job(&b, ids[i], "succeeded|failed|canceled", 0, WAIT_S, &job) != 0)
            fail_msg("job %lld did not end after the outage", (long long)ids[i]);
        if (strcmp(str_of(job, "state"), "succeeded") != 0)
            fail_msg("job %lld: %s: %s", (long long)ids[i], str_of(job, "state"),
                     str_of(job, "error"));
        assert_int_equal(int_of(job, "attempt"), 1);
        json_decref(job);
        expect_whole_and_same(&a, ids[i], "outage");
    }
    /* The daemons felt it: their writes waited and were tried again. */
    assert_true(dh_file_contains(a.log, "trying again") || dh_file_contains(b.log, "trying again"));
    fprintf(stderr, "# the database was away for 10 s: %d jobs whole and equal\n", N_OUTAGE_JOBS);
    stop(&a);
    stop(&b);
}

/* ---- a stalled worker ---- */

static void test_stalled_worker_writes_nothing(void **state)
{
    (void)state;
    reference_steps();
    char db[600];
    shared_db("stalled", db, sizeof db);
    dh_daemon a, b;
    start(&a, "stalls", db, LEASE_S);
    int64_t id = dh_submit(&a, SPEC);
    json_t *job = wait_attempt(&a, id, 1, 8);
    json_decref(job);
    start(&b, "goes-on", db, LEASE_S);
    assert_int_equal(kill(a.pid, SIGSTOP), 0);
    long stopped_at = (long)db_int(db, "SELECT steps_done FROM jobs WHERE id = $1", id);
    /* The other daemon takes the job over and passes where the stalled one
     * stopped. */
    job = wait_attempt(&b, id, 2, stopped_at + 10 < TOTAL ? stopped_at + 10 : TOTAL - 1);
    assert_string_equal(str_of(job, "worker"), "goes-on");
    json_decref(job);
    assert_int_equal(kill(a.pid, SIGCONT), 0);
    if (dh_wait_job(&b, id, "succeeded|failed|canceled", 0, WAIT_S, &job) != 0)
        fail_msg("the job did not end");
    assert_string_equal(str_of(job, "state"), "succeeded");
    assert_int_equal(int_of(job, "attempt"), 2);
    json_decref(job);
    /* Time for the woken daemon to do whatever it would. */
    char said[64];
    snprintf(said, sizeof said, "job %lld: attempt 1 stopped", (long long)id);
    for (int i = 0; i < 100 && !dh_file_contains(a.log, said); i++) dh_sleep_ms(100);
    if (!dh_file_contains(a.log, said)) fail_msg("the stalled daemon did not stop the job");
    dh_sleep_ms(1000);

    long resumed = dh_resumed_at(&b, id);
    fprintf(stderr, "# stalled at step %ld; the other daemon resumed at %ld\n", stopped_at,
            resumed);
    assert_true(resumed >= 5 && resumed <= stopped_at);
    /* Every row from the resume point on is the new attempt's. */
    char q[200];
    snprintf(q, sizeof q,
             "SELECT COUNT(*) FROM steps WHERE job = $1 AND step >= %ld AND attempt <> 2", resumed);
    assert_int_equal(db_int(db, q, id), 0);
    assert_int_equal(db_int(db, "SELECT COUNT(*) FROM steps WHERE job = $1", id), TOTAL);
    snprintf(q, sizeof q,
             "SELECT COUNT(*) FROM checkpoints WHERE job = $1 AND step > %ld AND path NOT LIKE "
             "'%%.2.ckpt'",
             resumed);
    assert_int_equal(db_int(db, q, id), 0);
    /* The new attempt removed the job's files when it ended; the stalled
     * one wrote none since. */
    char name[64];
    snprintf(name, sizeof name, "job-%lld.", (long long)id);
    assert_int_equal(count_files(a.ckpt_dir, name), 0);
    expect_whole_and_same(&b, id, "stalled");
    assert_true(dh_alive(&a));
    stop(&a);
    stop(&b);
}

int main(void)
{
    if (!pgc_available()) {
        /* Debian's postgresql is what make deps installs; without it this
         * is a failure, not a skip. */
        fprintf(stderr, "no PostgreSQL server programs: make deps installs them\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_job_runs_once),
        cmocka_unit_test(test_kill_resumes_elsewhere),
        cmocka_unit_test(test_database_outage),
        cmocka_unit_test(test_stalled_worker_writes_nothing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
