/* The daemon surviving its own death, black-box: a real `evogradd serve`
 * (daemon_harness.h) running a LeNet rotation job of 80 steps.
 *
 *   kill -9 after a checkpoint: restarted on the same database, the job
 *   resumes from its last checkpoint and succeeds; its step log runs from
 *   0 to 79 with no gap and no duplicate (paged through /steps), and every
 *   step's losses and λ equal those of an uninterrupted run of the same
 *   job in a separate daemon (to 1e-6, relative).
 *
 *   kill -9 before any checkpoint: the job starts again from step 0, and
 *   the rows logged before the kill are replaced, not doubled.
 *
 *   SIGTERM while running: the daemon exits 0 within 10 s, the database
 *   (read directly) holds the job queued with a checkpoint at the step it
 *   stopped after and exactly the rows before it; restarted, it resumes
 *   there and finishes, again equal to the uninterrupted run. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "testutil.h"

#define TOTAL 80
#define SPEC "{\"task\":\"rotation\",\"steps\":80,\"eval_every\":1000000,\"eval_limit\":100}"
#define WAIT_S 120.0

static char root[512];
static json_t *reference;      /* step rows of the uninterrupted run */
static json_t *reference_job;  /* and its job object */

static int group_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s", tu_tmpdir());
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    json_decref(reference);
    json_decref(reference_job);
    dh_thread_end();
    return 0;
}

/* Every step row of the job, checked to run 0..TOTAL-1 in order. */
static json_t *all_steps(const dh_daemon *d, int64_t id, int page)
{
    json_t *rows = dh_steps_whole(d, id, page, TOTAL);
    if (!rows) fail_msg("job %lld: its step log is not whole", (long long)id);
    return rows;
}

/* Starts a daemon in root/name (a fresh one unless it exists). */
static void start(dh_daemon *d, const char *name, long checkpoint_every)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    dh_opts o = {.checkpoint_every = checkpoint_every};
    if (dh_start(d, dir, &o) != 0) fail_msg("cannot start a daemon in %s", dir);
}

/* SIGTERM: the daemon must exit 0 within 10 s with a clean log. */
static void stop(dh_daemon *d)
{
    int status;
    if (dh_stop(d, SIGTERM, 10, &status) != 0 || status != 0)
        fail_msg("the daemon did not exit 0 on SIGTERM within 10 s (status %d)", status);
    if (!dh_log_clean(d)) fail_msg("errors in %s", d->log);
}

/* The uninterrupted run, made once. */
static const json_t *reference_steps(void)
{
    if (reference) return reference;
    dh_daemon d;
    start(&d, "reference", 1000);
    int64_t id = dh_submit(&d, SPEC);
    assert_true(id > 0);
    json_t *job = NULL;
    if (dh_wait_job(&d, id, "succeeded|failed|canceled", 0, WAIT_S, &job) != 0)
        fail_msg("the reference job did not end");
    assert_string_equal(json_string_value(json_object_get(job, "state")), "succeeded");
    reference = all_steps(&d, id, 1000);
    reference_job = job;
    stop(&d);
    return reference;
}

/* Checks each step's losses, hypergradient norm and λ against the
 * uninterrupted run. */
static void expect_same_as_reference(const json_t *rows, const char *what)
{
    if (dh_rows_match(rows, reference_steps(), 1e-6, what) != 0)
        fail_msg("%s: the steps differ from the uninterrupted run's", what);
}

/* Compares the job's summary with the uninterrupted run's. */
static void expect_same_summary(const json_t *job, const char *what)
{
    json_t *a = json_object_get(job, "summary"), *b = json_object_get(reference_job, "summary");
    static const char *const keys[] = {"train_loss", "meta_loss", "test_acc", "test_loss",
                                       "angle_deg", "lambda_norm"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        if (!dh_same_number(json_object_get(a, keys[k]), json_object_get(b, keys[k]), 1e-6))
            fail_msg("%s: summary %s differs from the uninterrupted run's", what, keys[k]);
    assert_int_equal(json_integer_value(json_object_get(a, "steps")), TOTAL);
}


/* One integer from the database of a stopped daemon: the first column of
 * the first row of sql with ?1 bound to id; -1 when there is no row. */
static long long db_int(const dh_daemon *d, const char *sql, int64_t id)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(d->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        fail_msg("cannot open %s", d->db);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    long long v = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
                      ? sqlite3_column_int64(st, 0) : -1;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* The job's state in the database of a stopped daemon. */
static void db_state(const dh_daemon *d, int64_t id, char *out, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(d->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT state FROM jobs WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        fail_msg("cannot read %s", d->db);
    sqlite3_bind_int64(st, 1, id);
    out[0] = '\0';
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Restarts d on its folder and waits for job id to succeed; its job
 * object. */
static json_t *restart_and_finish(dh_daemon *d, const char *name, long every, int64_t id)
{
    start(d, name, every);
    json_t *job = NULL;
    if (dh_wait_job(d, id, "succeeded|failed|canceled", 0, WAIT_S, &job) != 0)
        fail_msg("job %lld did not end after the restart", (long long)id);
    if (strcmp(json_string_value(json_object_get(job, "state")), "succeeded") != 0)
        fail_msg("job %lld ended %s: %s", (long long)id,
                 json_string_value(json_object_get(job, "state")),
                 json_string_value(json_object_get(job, "error")));
    assert_int_equal(json_integer_value(json_object_get(job, "steps_done")), TOTAL);
    assert_int_equal(json_integer_value(json_object_get(job, "total_steps")), TOTAL);
    return job;
}

static void test_reference_run(void **state)
{
    (void)state;
    const json_t *ref = reference_steps();
    /* A run that learns: the loss of the last steps is below the first's. */
    double first = json_number_value(json_object_get(json_array_get(ref, 0), "train_loss"));
    double last = json_number_value(json_object_get(json_array_get(ref, TOTAL - 1), "train_loss"));
    assert_true(isfinite(first) && isfinite(last) && last < first);
}

static void test_kill9_after_checkpoint_resumes(void **state)
{
    (void)state;
    reference_steps();
    dh_daemon d;
    start(&d, "kill9", 5);
    int64_t id = dh_submit(&d, SPEC);
    assert_true(id > 0);
    json_t *job = NULL;
    if (dh_wait_job(&d, id, "succeeded|failed|canceled", 12, WAIT_S, &job) != 0)
        fail_msg("job %lld did not reach 12 steps", (long long)id);
    long before = (long)json_integer_value(json_object_get(job, "steps_done"));
    json_decref(job);
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "%s/job-%lld.1.ckpt", d.ckpt_dir, (long long)id);
    assert_int_equal(access(ckpt, F_OK), 0);
    int status;
    assert_int_equal(dh_stop(&d, SIGKILL, 5, &status), 0);
    assert_int_equal(status, 128 + SIGKILL);

    char st[32];
    db_state(&d, id, st, sizeof st);
    if (strcmp(st, "running") != 0) fail_msg("job %lld was %s when killed", (long long)id, st);
    long long ck = db_int(&d, "SELECT MAX(step) FROM checkpoints WHERE job = ?1", id);
    long long rows = db_int(&d, "SELECT COUNT(*) FROM steps WHERE job = ?1", id);
    fprintf(stderr, "# killed after %ld steps (%lld rows logged), last checkpoint at %lld\n",
            before, rows, ck);
    assert_true(ck >= 10 && ck % 5 == 0 && ck < TOTAL);
    assert_true(rows >= ck);

    job = restart_and_finish(&d, "kill9", 5, id);
    long at = dh_resumed_at(&d, id);
    if (at < ck) fail_msg("resumed at step %ld, the last recorded checkpoint is %lld", at, ck);
    json_t *steps = all_steps(&d, id, 7);
    expect_same_as_reference(steps, "resumed after kill -9");
    expect_same_summary(job, "resumed after kill -9");
    assert_int_equal(access(ckpt, F_OK), -1); /* removed at the end */
    json_decref(steps);
    json_decref(job);
    stop(&d);
}

static void test_kill9_before_checkpoint_starts_over(void **state)
{
    (void)state;
    reference_steps();
    dh_daemon d;
    start(&d, "kill9-early", 1000);
    int64_t id = dh_submit(&d, SPEC);
    assert_true(id > 0);
    if (dh_wait_job(&d, id, "succeeded|failed|canceled", 3, WAIT_S, NULL) != 0)
        fail_msg("job %lld did not reach 3 steps", (long long)id);
    assert_int_equal(dh_stop(&d, SIGKILL, 5, NULL), 0);
    assert_int_equal(db_int(&d, "SELECT COUNT(*) FROM checkpoints WHERE job = ?1", id), 0);
    long long rows = db_int(&d, "SELECT COUNT(*) FROM steps WHERE job = ?1", id);
    assert_true(rows >= 1 && rows < TOTAL);

    json_t *job = restart_and_finish(&d, "kill9-early", 1000, id);
    assert_int_equal(dh_resumed_at(&d, id), -1);
    json_t *steps = all_steps(&d, id, 1000);
    expect_same_as_reference(steps, "restarted after kill -9");
    expect_same_summary(job, "restarted after kill -9");
    json_decref(steps);
    json_decref(job);
    stop(&d);
}

static void test_sigterm_requeues_and_resumes(void **state)
{
    (void)state;
    reference_steps();
    dh_daemon d;
    start(&d, "term", 1000);
    int64_t id = dh_submit(&d, SPEC);
    assert_true(id > 0);
    if (dh_wait_job(&d, id, "succeeded|failed|canceled", 8, WAIT_S, NULL) != 0)
        fail_msg("job %lld did not reach 8 steps", (long long)id);
    double t0 = dh_now_ms();
    int status;
    assert_int_equal(dh_stop(&d, SIGTERM, 10, &status), 0);
    double took = dh_now_ms() - t0;
    fprintf(stderr, "# SIGTERM: exited %d after %.0f ms\n", status, took);
    assert_int_equal(status, 0);
    assert_true(took < 10000);

    /* Back in the queue, with a checkpoint at the step it stopped after
     * and exactly the rows before it. */
    char st[32];
    db_state(&d, id, st, sizeof st);
    assert_string_equal(st, "queued");
    long long ck = db_int(&d, "SELECT MAX(step) FROM checkpoints WHERE job = ?1", id);
    assert_true(ck >= 8 && ck < TOTAL);
    assert_int_equal(db_int(&d, "SELECT COUNT(*) FROM steps WHERE job = ?1", id), ck);
    assert_int_equal(db_int(&d, "SELECT MAX(step) FROM steps WHERE job = ?1", id), ck - 1);
    assert_int_equal(db_int(&d, "SELECT steps_done FROM jobs WHERE id = ?1", id), ck);
    assert_int_equal(db_int(&d, "SELECT finished_at IS NULL AND run_device IS NULL "
                                "FROM jobs WHERE id = ?1", id), 1);

    json_t *job = restart_and_finish(&d, "term", 1000, id);
    assert_int_equal(dh_resumed_at(&d, id), ck);
    json_t *steps = all_steps(&d, id, 13);
    expect_same_as_reference(steps, "resumed after SIGTERM");
    expect_same_summary(job, "resumed after SIGTERM");
    json_decref(steps);
    json_decref(job);
    stop(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_run),
        cmocka_unit_test(test_kill9_after_checkpoint_resumes),
        cmocka_unit_test(test_kill9_before_checkpoint_starts_over),
        cmocka_unit_test(test_sigterm_requeues_and_resumes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
