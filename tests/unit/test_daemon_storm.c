/* A crash storm: three rotation jobs (LeNet, 60 steps each, checkpoints
 * every 3 steps, so that kills fall inside checkpoint writes and step-batch
 * commits too) under a daemon killed with SIGKILL at 20 random moments and
 * restarted on the same database each time. Every job must end succeeded
 * with a step log from 0 to 59, no gap and no duplicate, whose losses,
 * hypergradient norms and λ equal those of an uninterrupted run of the same
 * jobs in another daemon. Runs in the plain build only (tests/run.sh's slow
 * list: "storm"). */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_harness.h"
#include "testutil.h"

#define JOBS 3
static long n_steps = 60; /* and 20 kills: each times EG_SOAK */
static int n_kills = 20;

static const char *spec(int j)
{
    static char s[JOBS][160];
    snprintf(s[j], sizeof s[j],
             "{\"task\":\"rotation\",\"steps\":%d,\"seed\":%d,\"eval_every\":1000000,"
             "\"eval_limit\":100}", (int)n_steps, j + 3);
    return s[j];
}

static json_t *rows_of(const dh_daemon *d, int64_t id)
{
    json_t *rows = dh_steps_whole(d, id, 1000, n_steps);
    if (!rows) fail_msg("job %lld: its step log is not whole", (long long)id);
    return rows;
}

static void wait_all(const dh_daemon *d, const int64_t *ids)
{
    for (int j = 0; j < JOBS; j++) {
        json_t *job = NULL;
        if (dh_wait_job(d, ids[j], "succeeded|failed|canceled", 0, 300, &job) != 0)
            fail_msg("job %lld did not end", (long long)ids[j]);
        const char *st = json_string_value(json_object_get(job, "state"));
        if (strcmp(st, "succeeded") != 0)
            fail_msg("job %lld %s: %s", (long long)ids[j], st,
                     json_string_value(json_object_get(job, "error")));
        json_decref(job);
    }
}

static int same(const json_t *a, const json_t *b)
{
    if (json_is_null(a) || json_is_null(b)) return json_is_null(a) && json_is_null(b);
    return json_is_number(a) && json_is_number(b) &&
           json_number_value(a) == json_number_value(b);
}

static void test_storm(void **state)
{
    (void)state;
    n_steps *= tu_soak();
    n_kills *= tu_soak();
    char dir[700];
    dh_opts o = {.checkpoint_every = 3};
    /* The uninterrupted run. */
    dh_daemon d;
    snprintf(dir, sizeof dir, "%s/reference", tu_tmpdir());
    if (dh_start(&d, dir, &o) != 0) fail_msg("cannot start a daemon");
    int64_t ref_ids[JOBS], ids[JOBS];
    for (int j = 0; j < JOBS; j++) assert_true((ref_ids[j] = dh_submit(&d, spec(j))) > 0);
    wait_all(&d, ref_ids);
    json_t *ref[JOBS];
    for (int j = 0; j < JOBS; j++) ref[j] = rows_of(&d, ref_ids[j]);
    assert_int_equal(dh_stop(&d, SIGTERM, 20, NULL), 0);

    /* The storm. */
    snprintf(dir, sizeof dir, "%s/storm", tu_tmpdir());
    if (dh_start(&d, dir, &o) != 0) fail_msg("cannot start a daemon");
    for (int j = 0; j < JOBS; j++) assert_true((ids[j] = dh_submit(&d, spec(j))) > 0);
    unsigned seed = 12345;
    for (int k = 0; k < n_kills; k++) {
        dh_sleep_ms(300 + rand_r(&seed) % 1200);
        assert_int_equal(dh_stop(&d, SIGKILL, 5, NULL), 0);
        if (dh_start(&d, dir, &o) != 0) fail_msg("cannot restart the daemon (kill %d)", k + 1);
    }
    wait_all(&d, ids);
    long resumed = dh_file_count(d.log, "resumed from");
    fprintf(stderr, "%d kills; %ld resumes from a checkpoint in the last daemon's log\n", n_kills,
            resumed);
    static const char *const keys[] = {"train_loss", "meta_loss", "hyper_norm", "lambda_norm"};
    for (int j = 0; j < JOBS; j++) {
        json_t *rows = rows_of(&d, ids[j]);
        for (size_t i = 0; i < (size_t)n_steps; i++) {
            json_t *a = json_array_get(rows, i), *b = json_array_get(ref[j], i);
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
                if (!same(json_object_get(a, keys[k]), json_object_get(b, keys[k])))
                    fail_msg("job %d step %zu: %s %.9g, uninterrupted %.9g", j, i, keys[k],
                             json_number_value(json_object_get(a, keys[k])),
                             json_number_value(json_object_get(b, keys[k])));
            if (!json_equal(json_object_get(a, "lambda"), json_object_get(b, "lambda")))
                fail_msg("job %d step %zu: lambda differs", j, i);
        }
        json_decref(rows);
        json_decref(ref[j]);
    }
    assert_true(dh_log_clean(&d));
    assert_int_equal(dh_stop(&d, SIGTERM, 20, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
