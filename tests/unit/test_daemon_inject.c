/* Faults injected into a running daemon at chosen points, through the
 * egfault shim (tests/fault/egfault.c, preloaded into evogradd):
 *
 *   - an allocation made by the engine fails (at points spread over a
 *     rotation job's run: setup, steps, evaluations, checkpoints; every
 *     point with EG_INJECT_ALL=1, as `make soak` runs it): that job fails
 *     saying it ran out of memory, the next job succeeds, the daemon serves
 *     on and exits cleanly;
 *   - a checkpoint write fails midway (a write, the fsync, the rename; an
 *     I/O error or a full disk): the job fails naming the cause, the
 *     previous checkpoint stays whole, no temporary file is left, the next
 *     job succeeds;
 *   - a write of a step-batch commit fails once: the batch is committed
 *     again and the step log is whole;
 *   - the daemon is killed inside a checkpoint write (a write, the fsync,
 *     the rename) and inside a step-batch commit (a write to the WAL):
 *     restarted without the shim, the job ends succeeded with a step log
 *     bit-equal to an uninterrupted run's, the database passes
 *     PRAGMA integrity_check and no temporary file is left.
 *
 * Plain build only (tests/run.sh's slow list: "inject"): the shim's
 * allocator cannot sit beside ASan's. */
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon_harness.h"
#include "testutil.h"

#define WAIT_S 120

static char shim[1100];

static int group_setup(void **state)
{
    (void)state;
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(shim, sizeof shim, "LD_PRELOAD=%s/libegfault.so", exe);
    if (access(shim + strlen("LD_PRELOAD="), R_OK) != 0) {
        fprintf(stderr, "test_daemon_inject: no shim at %s\n", shim + strlen("LD_PRELOAD="));
        return -1;
    }
    return 0;
}

/* A LeNet rotation job of `steps` steps on Fashion-MNIST. */
static const char *rotation(int steps, int seed, int eval_every)
{
    static char s[4][200];
    static int next;
    char *out = s[next++ % 4];
    snprintf(out, sizeof s[0],
             "{\"task\":\"rotation\",\"steps\":%d,\"seed\":%d,\"eval_every\":%d,"
             "\"eval_limit\":100}",
             steps, seed, eval_every);
    return out;
}

/* The fault: "NAME=value" settings for the shim after LD_PRELOAD. */
typedef struct fault {
    const char *env[10];
} fault;

static void start(dh_daemon *d, const char *name, const fault *f, long checkpoint_every)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/%s", tu_tmpdir(), name);
    const char *env[12] = {0};
    int n = 0;
    if (f) {
        env[n++] = shim;
        for (int i = 0; f->env[i] && n < 11; i++) env[n++] = f->env[i];
    }
    dh_opts o = {.checkpoint_every = checkpoint_every, .env = env};
    if (dh_start(d, dir, &o) != 0) fail_msg("cannot start a daemon in %s", dir);
}

static json_t *wait_end(const dh_daemon *d, int64_t id)
{
    json_t *job = NULL;
    if (dh_wait_job(d, id, "succeeded|failed|canceled", 0, WAIT_S, &job) != 0)
        fail_msg("job %lld did not end", (long long)id);
    return job;
}

static const char *state_of(const json_t *job)
{
    return json_string_value(json_object_get(job, "state"));
}

static const char *error_of(const json_t *job)
{
    const char *e = json_string_value(json_object_get(job, "error"));
    return e ? e : "";
}

static void expect_succeeded(const dh_daemon *d, int64_t id, long steps)
{
    json_t *job = wait_end(d, id);
    if (strcmp(state_of(job), "succeeded") != 0)
        fail_msg("job %lld %s: %s", (long long)id, state_of(job), error_of(job));
    json_decref(job);
    json_t *rows = dh_steps_whole(d, id, 1000, steps);
    if (!rows) fail_msg("job %lld: its step log is not whole", (long long)id);
    json_decref(rows);
}

static void stop_cleanly(dh_daemon *d)
{
    int status = -1;
    assert_int_equal(dh_stop(d, SIGTERM, 30, &status), 0);
    assert_int_equal(status, 0);
}

/* Runs a daemon under the tracing fault f and returns how many calls it
 * saw while one job of spec ran to success. */
static long traced_calls(const char *name, const fault *f, const char *spec, long steps,
                         long checkpoint_every)
{
    dh_daemon d;
    start(&d, name, f, checkpoint_every);
    int64_t id = dh_submit(&d, spec);
    assert_true(id > 0);
    expect_succeeded(&d, id, steps);
    stop_cleanly(&d);
    return dh_file_count(d.log, "egfault: ");
}

/* How many files in dir end with suffix. */
static int files_ending(const char *dir, const char *suffix)
{
    DIR *dp = opendir(dir);
    if (!dp) return 0;
    int n = 0;
    size_t ls = strlen(suffix);
    for (struct dirent *e; (e = readdir(dp));) {
        size_t l = strlen(e->d_name);
        n += l >= ls && strcmp(e->d_name + l - ls, suffix) == 0;
    }
    closedir(dp);
    return n;
}

/* Whether the checkpoint file is whole: its magic, and its CRC-32 over
 * everything before the last four bytes. */
static int checkpoint_whole(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)n);
    int ok = n > 12 && b && fread(b, 1, (size_t)n, f) == (size_t)n &&
             memcmp(b, "EGCKPT2", 8) == 0;
    if (ok) {
        uint32_t want;
        memcpy(&want, b + n - 4, 4);
        ok = crc32(0L, b, (uInt)(n - 4)) == want;
    }
    free(b);
    fclose(f);
    return ok;
}

/* ---- allocations ---- */

#define ALLOC_STEPS 12

static void test_allocation_failure_fails_alone(void **state)
{
    (void)state;
    const char *spec = rotation(ALLOC_STEPS, 2, 6);
    fault trace = {{"EGFAULT_OP=alloc", "EGFAULT_MATCH=eg-cpu", "EGFAULT_CALLER=evogradd",
                    "EGFAULT_ACTION=trace", "EGFAULT_TIMES=0"}};
    long total = traced_calls("alloc-trace", &trace, spec, ALLOC_STEPS, 5);
    fprintf(stderr, "the engine's allocations in one job: %ld\n", total);
    assert_true(total >= 20);

    int all = getenv("EG_INJECT_ALL") != NULL;
    long points = all ? total : 8, in_steps = 0;
    for (long p = 0; p < points; p++) {
        long nth = all ? p + 1 : (total * (2 * p + 1)) / (2 * points) + 1;
        char name[64], nth_env[64];
        snprintf(name, sizeof name, "alloc-%ld", nth);
        snprintf(nth_env, sizeof nth_env, "EGFAULT_NTH=%ld", nth);
        fault f = {{"EGFAULT_OP=alloc", "EGFAULT_MATCH=eg-cpu", "EGFAULT_CALLER=evogradd",
                    nth_env}};
        dh_daemon d;
        start(&d, name, &f, 5);
        int64_t hit = dh_submit(&d, spec), next = dh_submit(&d, spec);
        assert_true(hit > 0 && next > 0);
        json_t *job = wait_end(&d, hit);
        long done = (long)json_integer_value(json_object_get(job, "steps_done"));
        fprintf(stderr, "allocation %ld of %ld failing: %s after %ld steps: %s\n", nth, total,
                state_of(job), done, error_of(job));
        if (dh_file_count(d.log, "egfault: failing") != 1)
            fail_msg("allocation %ld: the fault did not happen once", nth);
        const char *err = error_of(job);
        if (strcmp(state_of(job), "failed") != 0 ||
            !(strstr(err, "out of memory") || strstr(err, "out of host memory")))
            fail_msg("allocation %ld: the job should fail for want of memory", nth);
        in_steps += done > 0 && done < ALLOC_STEPS;
        json_decref(job);
        expect_succeeded(&d, next, ALLOC_STEPS);
        assert_true(dh_alive(&d));
        stop_cleanly(&d);
    }
    assert_true(in_steps > 0); /* some of them fell during the steps */
}

/* ---- checkpoint writes ---- */

#define CKPT_STEPS 10 /* checkpoints every 3 steps: at 3, 6 and 9 */

/* How many fwrite calls one checkpoint of the job of spec takes. */
static long checkpoint_writes(const char *spec)
{
    fault trace = {{"EGFAULT_OP=write", "EGFAULT_MATCH=.ckpt.tmp", "EGFAULT_ACTION=trace",
                    "EGFAULT_TIMES=0"}};
    long total = traced_calls("ckpt-trace", &trace, spec, CKPT_STEPS, 3);
    fprintf(stderr, "writes to checkpoint files: %ld over 3 checkpoints\n", total);
    assert_true(total >= 3 && total % 3 == 0);
    return total / 3;
}

static void test_checkpoint_write_fails(void **state)
{
    (void)state;
    const char *spec = rotation(CKPT_STEPS, 3, 1000000);
    long per = checkpoint_writes(spec);
    char midway[64], first[64];
    snprintf(midway, sizeof midway, "EGFAULT_NTH=%ld", per + per / 2 + 1);
    snprintf(first, sizeof first, "EGFAULT_NTH=%ld", per + 1);
    struct {
        const char *name;
        fault f;
        const char *says;
    } cases[] = {
        {"ckpt-write-eio", {{"EGFAULT_OP=write", "EGFAULT_MATCH=.ckpt.tmp", midway}},
         "Input/output error"},
        {"ckpt-write-enospc",
         {{"EGFAULT_OP=write", "EGFAULT_MATCH=.ckpt.tmp", first, "EGFAULT_ERRNO=28"}},
         "No space left on device"},
        {"ckpt-fsync", {{"EGFAULT_OP=fsync", "EGFAULT_MATCH=.ckpt.tmp", "EGFAULT_NTH=2"}},
         "Input/output error"},
        {"ckpt-rename", {{"EGFAULT_OP=rename", "EGFAULT_MATCH=.ckpt", "EGFAULT_NTH=2"}},
         "Input/output error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dh_daemon d;
        start(&d, cases[i].name, &cases[i].f, 3);
        int64_t hit = dh_submit(&d, spec), next = dh_submit(&d, spec);
        assert_true(hit > 0 && next > 0);
        json_t *job = wait_end(&d, hit);
        fprintf(stderr, "%s: %s after %lld steps: %s\n", cases[i].name, state_of(job),
                json_integer_value(json_object_get(job, "steps_done")), error_of(job));
        assert_string_equal(state_of(job), "failed");
        if (!strstr(error_of(job), "checkpoint") || !strstr(error_of(job), cases[i].says))
            fail_msg("%s: the error should name the checkpoint and \"%s\"", cases[i].name,
                     cases[i].says);
        json_decref(job);
        /* The first checkpoint (step 3) is still there, whole; nothing torn. */
        char path[800];
        snprintf(path, sizeof path, "%s/job-%lld.1.ckpt", d.ckpt_dir, (long long)hit);
        if (!checkpoint_whole(path)) fail_msg("%s: %s is not whole", cases[i].name, path);
        expect_succeeded(&d, next, CKPT_STEPS);
        assert_int_equal(files_ending(d.ckpt_dir, ".tmp"), 0);
        stop_cleanly(&d);
        assert_true(dh_db_whole(d.db));
    }
}

/* ---- step-batch commits ---- */

#define LOG_STEPS 30

/* How many writes to the WAL the store's writer thread (the step-batch
 * commits; not the heartbeat's or the job's own synchronous writes) makes
 * while a daemon runs one job of spec. */
static long wal_writes(const char *spec)
{
    static long total;
    if (total) return total;
    fault trace = {{"EGFAULT_OP=write", "EGFAULT_MATCH=-wal", "EGFAULT_THREAD=eg-store",
                    "EGFAULT_ACTION=trace", "EGFAULT_TIMES=0"}};
    total = traced_calls("wal-trace", &trace, spec, LOG_STEPS, 3);
    fprintf(stderr, "writes to the WAL: %ld\n", total);
    assert_true(total > 8);
    return total;
}

static void test_step_commit_write_fails_once(void **state)
{
    (void)state;
    const char *spec = rotation(LOG_STEPS, 4, 1000000);
    long total = wal_writes(spec);
    char nth[64];
    snprintf(nth, sizeof nth, "EGFAULT_NTH=%ld", total / 2);
    fault f = {{"EGFAULT_OP=write", "EGFAULT_MATCH=-wal", "EGFAULT_THREAD=eg-store", nth}};
    dh_daemon d;
    start(&d, "wal-fail", &f, 3);
    int64_t id = dh_submit(&d, spec);
    assert_true(id > 0);
    expect_succeeded(&d, id, LOG_STEPS);
    assert_int_equal(dh_file_count(d.log, "egfault: failing"), 1);
    stop_cleanly(&d);
    assert_true(dh_db_whole(d.db));
}

/* ---- kills at chosen points ---- */

static json_t *all_rows(const dh_daemon *d, int64_t id)
{
    json_t *rows = dh_steps_whole(d, id, 1000, LOG_STEPS);
    if (!rows) fail_msg("job %lld: its step log is not whole", (long long)id);
    return rows;
}

/* The rows' losses, hypergradient norms and λ equal those of ref, bit for
 * bit. */
static void same_rows(const json_t *rows, const json_t *ref, const char *what)
{
    if (dh_rows_match(rows, ref, 0, what) != 0)
        fail_msg("%s: the steps differ from the uninterrupted run's", what);
}

static void test_kills_at_chosen_points(void **state)
{
    (void)state;
    const char *spec = rotation(LOG_STEPS, 4, 1000000);
    dh_daemon d;
    start(&d, "kill-reference", NULL, 3);
    int64_t ref_id = dh_submit(&d, spec);
    expect_succeeded(&d, ref_id, LOG_STEPS);
    json_t *ref = all_rows(&d, ref_id);
    stop_cleanly(&d);

    long per = checkpoint_writes(rotation(CKPT_STEPS, 3, 1000000));
    long wal = wal_writes(spec);
    char midway[64], wal_early[64], wal_late[64];
    snprintf(midway, sizeof midway, "EGFAULT_NTH=%ld", 3 * per + per / 2 + 1);
    snprintf(wal_early, sizeof wal_early, "EGFAULT_NTH=%ld", wal / 4);
    snprintf(wal_late, sizeof wal_late, "EGFAULT_NTH=%ld", 3 * wal / 4);
    struct {
        const char *name;
        fault f;
    } cases[] = {
        {"kill-ckpt-write", {{"EGFAULT_OP=write", "EGFAULT_MATCH=.ckpt.tmp", midway}}},
        {"kill-ckpt-fsync", {{"EGFAULT_OP=fsync", "EGFAULT_MATCH=.ckpt.tmp", "EGFAULT_NTH=5"}}},
        {"kill-ckpt-rename", {{"EGFAULT_OP=rename", "EGFAULT_MATCH=.ckpt", "EGFAULT_NTH=6"}}},
        {"kill-wal-early",
         {{"EGFAULT_OP=write", "EGFAULT_MATCH=-wal", "EGFAULT_THREAD=eg-store", wal_early}}},
        {"kill-wal-late",
         {{"EGFAULT_OP=write", "EGFAULT_MATCH=-wal", "EGFAULT_THREAD=eg-store", wal_late}}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fault f = cases[i].f;
        int n = 0;
        while (f.env[n]) n++;
        f.env[n] = "EGFAULT_ACTION=kill";
        start(&d, cases[i].name, &f, 3);
        int64_t id = dh_submit(&d, spec);
        assert_true(id > 0);
        double t0 = dh_now_ms();
        while (dh_alive(&d) && dh_now_ms() - t0 < WAIT_S * 1000.0) dh_sleep_ms(20);
        if (dh_alive(&d)) fail_msg("%s: the daemon was not killed", cases[i].name);
        if (dh_file_count(d.log, "egfault: killing") != 1)
            fail_msg("%s: the daemon died, but not at the fault", cases[i].name);
        /* Restarted without the shim, the job ends as if nothing happened. */
        char dir[700];
        snprintf(dir, sizeof dir, "%s", d.dir);
        dh_opts o = {.checkpoint_every = 3};
        if (dh_start(&d, dir, &o) != 0) fail_msg("%s: cannot restart", cases[i].name);
        expect_succeeded(&d, id, LOG_STEPS);
        json_t *rows = all_rows(&d, id);
        same_rows(rows, ref, cases[i].name);
        json_decref(rows);
        fprintf(stderr, "%s: resumed, %d steps bit-equal to the uninterrupted run\n",
                cases[i].name, LOG_STEPS);
        assert_int_equal(files_ending(d.ckpt_dir, ".tmp"), 0);
        /* The files go once the job's end is recorded, just after the
         * state the API showed changed. */
        for (t0 = dh_now_ms(); files_ending(d.ckpt_dir, ".ckpt") && dh_now_ms() - t0 < 5000;)
            dh_sleep_ms(20);
        assert_int_equal(files_ending(d.ckpt_dir, ".ckpt"), 0);
        stop_cleanly(&d);
        assert_true(dh_db_whole(d.db));
    }
    json_decref(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocation_failure_fails_alone),
        cmocka_unit_test(test_checkpoint_write_fails),
        cmocka_unit_test(test_step_commit_write_fails_once),
        cmocka_unit_test(test_kills_at_chosen_points),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
