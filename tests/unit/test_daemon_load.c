/* Load: 1,000 small jobs (toy1d, 5 steps each, the smallest report;
 * EG_SOAK times as many under `make soak`) submitted by 20 concurrent
 * clients while 200 event-stream subscribers
 * and 100 pollers read. No
 * answer may be a 5xx; every job runs exactly once and succeeds, with a
 * contiguous step log of 5 rows; the daemon's resident memory and the
 * database size are printed at the start, halfway and at the end, and the
 * memory must level off (the second half adds at most 32 MiB). Runs in the
 * plain build only (tests/run.sh's slow list: "load"). */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "testutil.h"

enum { SUBMITTERS = 20, SUBSCRIBERS = 200, POLLERS = 100, STEPS = 5 };

static int per_submitter, n_jobs; /* 50 and 1,000, times EG_SOAK */
static dh_daemon D;
static atomic_llong *ids;
static atomic_int submitted, server_errors, subscribed, done_reading;

static void *submitter(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int i = 0; i < per_submitter; i++) {
        char spec[160];
        snprintf(spec, sizeof spec,
                 "{\"task\":\"toy1d\",\"steps\":%d,\"seed\":%d,\"toy1d\":{\"trials\":1,"
                 "\"points\":1,\"trajectory_steps\":1}}", STEPS, me * per_submitter + i + 1);
        dh_resp r;
        if (dh_post_json(&D, "/v1/jobs", spec, &r) == 0 && r.status == 201)
            atomic_store(&ids[atomic_fetch_add(&submitted, 1)],
                         json_integer_value(json_object_get(r.json, "id")));
        else if (r.status == 0 || r.status >= 500)
            atomic_fetch_add(&server_errors, 1);
        dh_resp_free(&r);
    }
    dh_thread_end();
    return NULL;
}

/* A random job submitted so far (0 while there is none). */
static long long some_job(unsigned *seed)
{
    int n = atomic_load(&submitted);
    return n ? atomic_load(&ids[rand_r(seed) % n]) : 0;
}

static void *subscriber(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    long long id = 0;
    while (!(id = some_job(&seed))) dh_sleep_ms(20);
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%lld/events", id);
    dh_req rq = {.method = "GET", .path = path, .raw = 1};
    dh_resp r;
    if (dh_do(&D, &rq, &r) != 0 || r.status != 200 || !strstr(r.body, "event: state"))
        atomic_fetch_add(&server_errors, 1);
    else
        atomic_fetch_add(&subscribed, 1);
    dh_resp_free(&r);
    dh_thread_end();
    return NULL;
}

static void *poller(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&done_reading)) {
        long long id = some_job(&seed);
        char path[96];
        if (id && rand_r(&seed) % 2)
            snprintf(path, sizeof path, "/v1/jobs/%lld/steps?limit=10", id);
        else
            snprintf(path, sizeof path, "/v1/jobs?state=running&limit=20");
        dh_req rq = {.method = "GET", .path = path, .raw = 1};
        dh_resp r;
        if (dh_do(&D, &rq, &r) != 0 || r.status >= 500 || r.status == 0)
            atomic_fetch_add(&server_errors, 1);
        dh_resp_free(&r);
        dh_sleep_ms(rand_r(&seed) % 50);
    }
    dh_thread_end();
    return NULL;
}

/* The daemon's resident memory (KiB) and the database's size (bytes). */
static void usage(const char *when, long *rss_kib)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)D.pid);
    FILE *f = fopen(path, "r");
    *rss_kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", rss_kib) == 1) break;
    if (f) fclose(f);
    struct stat db, wal;
    char walp[700];
    snprintf(walp, sizeof walp, "%s-wal", D.db);
    long long size = (stat(D.db, &db) == 0 ? db.st_size : 0) +
                     (stat(walp, &wal) == 0 ? wal.st_size : 0);
    fprintf(stderr, "%-8s daemon RSS %.1f MiB, database %.1f MiB, %d jobs submitted\n", when,
            *rss_kib / 1024.0, size / 1048576.0, atomic_load(&submitted));
}

static void test_load(void **state)
{
    (void)state;
    per_submitter = 50 * tu_soak();
    n_jobs = SUBMITTERS * per_submitter;
    assert_non_null(ids = calloc((size_t)n_jobs, sizeof *ids));
    char dir[600];
    snprintf(dir, sizeof dir, "%s/daemon", tu_tmpdir());
    dh_opts o = {.checkpoint_every = 1000};
    if (dh_start(&D, dir, &o) != 0) fail_msg("cannot start a daemon");
    long rss0, rss1, rss2;
    usage("start", &rss0);
    pthread_t sub[SUBMITTERS], ev[SUBSCRIBERS], pol[POLLERS];
    for (int i = 0; i < POLLERS; i++)
        assert_int_equal(pthread_create(&pol[i], NULL, poller, (void *)(uintptr_t)(i + 1)), 0);
    for (int i = 0; i < SUBSCRIBERS; i++)
        assert_int_equal(pthread_create(&ev[i], NULL, subscriber, (void *)(uintptr_t)(i + 7)), 0);
    for (int i = 0; i < SUBMITTERS; i++)
        assert_int_equal(pthread_create(&sub[i], NULL, submitter, (void *)(intptr_t)i), 0);
    for (int i = 0; i < SUBMITTERS; i++) pthread_join(sub[i], NULL);
    usage("halfway", &rss1);
    assert_int_equal(atomic_load(&submitted), n_jobs);
    /* Every job to its end. */
    for (int i = 0; i < n_jobs; i++) {
        json_t *job = NULL;
        if (dh_wait_job(&D, atomic_load(&ids[i]), "succeeded|failed|canceled", 0, 120, &job) != 0)
            fail_msg("job %lld did not end", atomic_load(&ids[i]));
        assert_string_equal(json_string_value(json_object_get(job, "state")), "succeeded");
        assert_int_equal(json_integer_value(json_object_get(job, "steps_done")), STEPS);
        json_decref(job);
    }
    for (int i = 0; i < SUBSCRIBERS; i++) pthread_join(ev[i], NULL);
    atomic_store(&done_reading, 1);
    for (int i = 0; i < POLLERS; i++) pthread_join(pol[i], NULL);
    usage("end", &rss2);
    /* Contiguous step logs, and each job ran exactly once. */
    for (int i = 0; i < n_jobs; i++) {
        long long id = atomic_load(&ids[i]);
        json_t *steps = dh_steps_whole(&D, id, 100, STEPS);
        if (!steps) fail_msg("job %lld: its step log is not whole", id);
        json_decref(steps);
        char line[64];
        snprintf(line, sizeof line, "job %lld: running on", id);
        assert_int_equal(dh_file_count(D.log, line), 1);
    }
    fprintf(stderr, "%d event streams read to their ends, %d server errors\n",
            atomic_load(&subscribed), atomic_load(&server_errors));
    assert_int_equal(atomic_load(&server_errors), 0);
    assert_int_equal(atomic_load(&subscribed), SUBSCRIBERS);
    assert_true(rss2 - rss1 <= 32 * 1024);
    assert_true(dh_log_clean(&D));
    int status;
    assert_int_equal(dh_stop(&D, SIGTERM, 30, &status), 0);
    assert_int_equal(status, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
