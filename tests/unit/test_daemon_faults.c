/* Faults under a running daemon: its database and checkpoints on a small
 * tmpfs (root may mount one; the test skips, saying so, where it may not)
 * that a file then fills while a job logs steps.
 *
 *   - the running job fails with an error that says the disk is full, and
 *     its state is recorded (the store's space reserve makes room for it);
 *   - the daemon keeps answering reads;
 *   - a new submission gets a JSON 507 saying the disk is full;
 *   - once the file is gone, a new job runs to the end;
 *   - the database passes PRAGMA integrity_check;
 * a checkpoint written to a full disk fails saying so, leaving the
 * previous checkpoint whole and loadable; a checkpoint damaged while the
 * daemon was down fails its job at resume with a message naming the
 * damage, and the daemon serves on; a database locked by another process
 * at start, or one on a read-only file system, is a clear message and a
 * non-zero exit, with nothing changed. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "meta/ckpt_file.h"
#include "testutil.h"

static char root[512], fs[600];
static int mounted;

static int group_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s", tu_tmpdir());
    snprintf(fs, sizeof fs, "%s/tmpfs", root);
    if (mkdir(fs, 0755) != 0) return -1;
    if (mount("tmpfs", fs, "tmpfs", 0, "size=6m") == 0) mounted = 1;
    else fprintf(stderr, "test_daemon_faults: cannot mount a tmpfs (%s): skipped\n",
                 strerror(errno));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (mounted) umount2(fs, MNT_DETACH);
    return 0;
}

/* Fills the file system of path with a file until the disk is full. */
static void fill(const char *path)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    static char block[65536];
    while (fwrite(block, sizeof block, 1, f) == 1) {}
    fflush(f);
    fclose(f);
}

static long long int_of(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void test_disk_full(void **state)
{
    (void)state;
    if (!mounted) skip();
    char dir[700], filler[700];
    snprintf(dir, sizeof dir, "%s/daemon", root);
    snprintf(filler, sizeof filler, "%s/filler", fs);
    dh_daemon d;
    dh_opts o = {.state_dir = fs};
    if (dh_start(&d, dir, &o) != 0) fail_msg("cannot start a daemon");
    /* A job that would log steps for a long time. */
    int64_t id = dh_submit(&d, "{\"task\":\"toy1d\",\"steps\":100000000}");
    assert_true(id > 0);
    if (dh_wait_job(&d, id, NULL, 20, 30, NULL) != 0) fail_msg("the job did not run");
    fill(filler);

    /* It fails, saying why. */
    json_t *job = NULL;
    if (dh_wait_job(&d, id, "failed|succeeded|canceled", 0, 60, &job) != 0)
        fail_msg("the job did not end after the disk filled");
    const char *st = json_string_value(json_object_get(job, "state"));
    const char *err = json_string_value(json_object_get(job, "error"));
    fprintf(stderr, "job %lld: %s: %s\n", (long long)id, st, err ? err : "(none)");
    assert_string_equal(st, "failed");
    /* From the step log ("the disk is full") or from a checkpoint ("No
     * space left on device"), whichever met the full disk first. */
    if (!err || !(strstr(err, "disk is full") || strstr(err, "No space left on device")))
        fail_msg("the error does not name the full disk: %s", err ? err : "(none)");
    long long logged = int_of(job, "steps_done");
    json_decref(job);

    /* Reads go on. */
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%lld/steps?limit=5", (long long)id);
    dh_resp r;
    assert_int_equal(dh_get(&d, path, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(json_object_get(r.json, "steps")) == 5 || logged < 5);
    dh_resp_free(&r);
    assert_int_equal(dh_get(&d, "/v1/jobs", &r), 0);
    assert_int_equal(r.status, 200);
    dh_resp_free(&r);

    /* New work is refused with a JSON 507 that says so. */
    assert_int_equal(dh_post_json(&d, "/v1/jobs", "{\"task\":\"toy1d\"}", &r), 0);
    fprintf(stderr, "while full: %ld %s\n", r.status, r.body);
    assert_int_equal(r.status, 507);
    json_t *e = json_object_get(r.json, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "insufficient_storage");
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "full"));
    dh_resp_free(&r);

    /* Room again: a new job runs to its end. */
    assert_int_equal(unlink(filler), 0);
    int64_t next = dh_submit(&d, "{\"task\":\"toy1d\",\"steps\":50}");
    assert_true(next > 0);
    json_t *done = NULL;
    if (dh_wait_job(&d, next, "succeeded|failed|canceled", 0, 60, &done) != 0)
        fail_msg("the job after the disk emptied did not end");
    assert_string_equal(json_string_value(json_object_get(done, "state")), "succeeded");
    assert_int_equal(int_of(done, "steps_done"), 50);
    json_decref(done);

    int status;
    assert_int_equal(dh_stop(&d, SIGTERM, 20, &status), 0);
    assert_int_equal(status, 0);

    assert_true(dh_db_whole(d.db)); /* the database is whole */
}

static void test_checkpoint_disk_full(void **state)
{
    (void)state;
    if (!mounted) skip();
    char path[700], filler[700];
    snprintf(path, sizeof path, "%s/run.ckpt", fs);
    snprintf(filler, sizeof filler, "%s/filler", fs);
    static float big[1 << 18], back[1 << 18]; /* 1 MiB */
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) big[i] = (float)i;
    eg_ckpt_item it[] = {{"model.theta", big, sizeof big, 0}};
    assert_int_equal(eg_ckpt_file_write(NULL, path, it, 1), 0);
    fill(filler);
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) big[i] = -1;
    tu_fails_with(eg_ckpt_file_write(NULL, path, it, 1), "No space left on device");
    char tmp[720];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1); /* no torn file left */
    eg_ckpt_item in[] = {{"model.theta", back, sizeof back, 0}};
    if (eg_ckpt_file_read(NULL, path, in, 1) != 0) fail_msg("%s", eg_last_error());
    for (size_t i = 0; i < sizeof back / sizeof *back; i++) assert_true(back[i] == (float)i);
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(unlink(path), 0);
}

static void test_damaged_checkpoint_at_resume(void **state)
{
    (void)state;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/resume", root);
    dh_daemon d;
    dh_opts o = {.checkpoint_every = 5};
    if (dh_start(&d, dir, &o) != 0) fail_msg("cannot start a daemon");
    int64_t id = dh_submit(&d, "{\"task\":\"toy1d\",\"steps\":100000000}");
    if (dh_wait_job(&d, id, NULL, 20, 30, NULL) != 0) fail_msg("the job did not run");
    assert_int_equal(dh_stop(&d, SIGKILL, 5, NULL), 0);
    char ckpt[800];
    snprintf(ckpt, sizeof ckpt, "%s/job-%lld.1.ckpt", d.ckpt_dir, (long long)id);
    FILE *f = fopen(ckpt, "r+b");
    if (!f) fail_msg("no checkpoint at %s", ckpt);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, n / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, n / 2, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    if (dh_start(&d, dir, &o) != 0) fail_msg("cannot restart the daemon");
    json_t *job = NULL;
    if (dh_wait_job(&d, id, "failed|succeeded|canceled", 0, 30, &job) != 0)
        fail_msg("the job did not end");
    const char *err = json_string_value(json_object_get(job, "error"));
    fprintf(stderr, "resumed job: %s: %s\n", json_string_value(json_object_get(job, "state")),
            err ? err : "");
    assert_string_equal(json_string_value(json_object_get(job, "state")), "failed");
    assert_non_null(err);
    assert_non_null(strstr(err, "corrupted"));
    json_decref(job);
    int64_t next = dh_submit(&d, "{\"task\":\"toy1d\",\"steps\":10}");
    if (dh_wait_job(&d, next, "succeeded", 0, 30, NULL) != 0) fail_msg("the next job failed");
    assert_true(dh_log_clean(&d));
    assert_int_equal(dh_stop(&d, SIGTERM, 20, NULL), 0);
}

static void test_locked_database(void **state)
{
    (void)state;
    char dir[700], db[800], cmd[2400], log[800];
    snprintf(dir, sizeof dir, "%s/locked", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(db, sizeof db, "%s/evograd.db", dir);
    snprintf(log, sizeof log, "%s/serve.log", dir);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "CREATE TABLE t(x); BEGIN EXCLUSIVE; INSERT INTO t VALUES(1)",
                                  NULL, NULL, NULL), SQLITE_OK);
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' serve --listen 127.0.0.1:%d --db '%s' "
             "--devices cpu > '%s' 2>&1", dh_daemon_path(), 20000 + getpid() % 20000, db, log);
    int rc = system(cmd);
    sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(h);
    int status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    fprintf(stderr, "serve on a locked database: exit %d\n", status);
    assert_true(status != 0 && status != 124); /* not 0, and not hung until the timeout */
    assert_true(dh_file_contains(log, "locked"));
    /* Nothing changed: the other process's table alone, no migrations. */
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_master", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1);
    sqlite3_finalize(q);
    sqlite3_close(h);
}

/* Runs `evogradd serve` on db until it exits (at most 60 s); its exit
 * status, its output in log. */
static int serve_once(const char *db, const char *log)
{
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' serve --listen 127.0.0.1:%d --db '%s' "
             "--devices cpu --checkpoint-dir '%s/ckpt' > '%s' 2>&1", dh_daemon_path(),
             20000 + getpid() % 20000, db, root, log);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static unsigned long file_sum(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned long h = 5381;
    for (int c; (c = fgetc(f)) != EOF;) h = h * 33 + (unsigned)c;
    fclose(f);
    return h;
}

static void test_readonly_database(void **state)
{
    (void)state;
    char ro[700], db[800], fresh[800], log[800];
    snprintf(ro, sizeof ro, "%s/readonly", root);
    assert_int_equal(mkdir(ro, 0755), 0);
    if (mount("tmpfs", ro, "tmpfs", 0, "size=4m") != 0) {
        fprintf(stderr, "test_daemon_faults: cannot mount a tmpfs (%s): skipped\n",
                strerror(errno));
        skip();
    }
    snprintf(db, sizeof db, "%s/evograd.db", ro);
    snprintf(fresh, sizeof fresh, "%s/new.db", ro);
    snprintf(log, sizeof log, "%s/readonly.log", root);
    /* A database with a job in it, on a file system then made read-only. */
    dh_daemon d;
    dh_opts o = {.state_dir = ro};
    char dir[700];
    snprintf(dir, sizeof dir, "%s/readonly-daemon", root);
    if (dh_start(&d, dir, &o) != 0) fail_msg("cannot start a daemon");
    int64_t id = dh_submit(&d, "{\"task\":\"toy1d\",\"steps\":20}");
    if (dh_wait_job(&d, id, "succeeded", 0, 30, NULL) != 0) fail_msg("the job did not run");
    assert_int_equal(dh_stop(&d, SIGTERM, 20, NULL), 0);
    snprintf(db, sizeof db, "%s", d.db);
    if (mount(NULL, ro, NULL, MS_REMOUNT | MS_RDONLY, NULL) != 0)
        fail_msg("cannot remount %s read-only: %s", ro, strerror(errno));
    unsigned long before = file_sum(db);

    int status = serve_once(db, log);
    fprintf(stderr, "serve on a read-only database: exit %d\n", status);
    assert_true(status != 0 && status != 124);
    if (!dh_file_contains(log, "not writable") || !dh_file_contains(log, "Read-only file system"))
        fail_msg("the message should say the database is not writable, and why");
    assert_true(file_sum(db) == before);

    /* A new database where none can be made. */
    status = serve_once(fresh, log);
    assert_true(status != 0 && status != 124);
    assert_true(dh_file_contains(log, "not writable"));
    assert_int_equal(access(fresh, F_OK), -1);
    umount2(ro, MNT_DETACH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_checkpoint_disk_full),
        cmocka_unit_test(test_damaged_checkpoint_at_resume),
        cmocka_unit_test(test_locked_database),
        cmocka_unit_test(test_readonly_database),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
