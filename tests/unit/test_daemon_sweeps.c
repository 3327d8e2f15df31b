/* Sweeps through a running daemon: a grid of toy1d jobs runs to the end
 * and its aggregate equals one computed here from the jobs' own summaries;
 * bad grids are refused whole (no job, no sweep made); a daemon killed
 * mid-sweep and restarted loses nothing; cancel and delete act on the
 * whole sweep. Every body is checked against schema/api. */
#include <glob.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "daemon_harness.h"
#include "testutil.h"

static char bodies[600];

static int group_setup(void **state)
{
    (void)state;
    snprintf(bodies, sizeof bodies, "%s/bodies", tu_tmpdir());
    return 0;
}

static void start(dh_daemon *d, const char *name)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/%s", tu_tmpdir(), name);
    dh_opts o = {.checkpoint_every = 50};
    if (dh_start(d, dir, &o) != 0) fail_msg("cannot start a daemon");
}

/* POSTs a sweep; its id when 201, else fails the test. The body is kept. */
static int64_t submit(const dh_daemon *d, const char *body)
{
    dh_resp r;
    assert_int_equal(dh_post_json(d, "/v1/sweeps", body, &r), 0);
    if (r.status != 201) fail_msg("POST /v1/sweeps: %ld %s", r.status, r.body);
    assert_int_equal(dh_save_body(bodies, "sweep", &r), 0);
    int64_t id = json_integer_value(json_object_get(r.json, "id"));
    char want[64];
    snprintf(want, sizeof want, "/v1/sweeps/%lld", (long long)id);
    assert_string_equal(r.location, want);
    dh_resp_free(&r);
    return id;
}

/* GET /v1/sweeps/{id} (kept for the schema check). */
static json_t *get_sweep(const dh_daemon *d, int64_t id)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/sweeps/%lld", (long long)id);
    dh_resp r;
    assert_int_equal(dh_get(d, path, &r), 0);
    if (r.status != 200) fail_msg("GET %s: %ld %s", path, r.status, r.body);
    assert_int_equal(dh_save_body(bodies, "sweep", &r), 0);
    json_t *sw = json_incref(r.json);
    dh_resp_free(&r);
    return sw;
}

/* Polls the sweep until its state is one of states ("|"-separated). */
static json_t *wait_sweep(const dh_daemon *d, int64_t id, const char *states, double timeout_s)
{
    double t0 = dh_now_ms();
    for (;;) {
        json_t *sw = get_sweep(d, id);
        const char *st = json_string_value(json_object_get(sw, "state"));
        char pattern[128];
        snprintf(pattern, sizeof pattern, "|%s|", states);
        char needle[40];
        snprintf(needle, sizeof needle, "|%s|", st ? st : "?");
        if (strstr(pattern, needle)) return sw;
        json_decref(sw);
        if (dh_now_ms() - t0 > timeout_s * 1000) fail_msg("sweep %lld did not reach %s", (long long)id, states);
        dh_sleep_ms(50);
    }
}

static json_t *get_job(const dh_daemon *d, int64_t id)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)id);
    dh_resp r;
    assert_int_equal(dh_get(d, path, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *job = json_incref(r.json);
    dh_resp_free(&r);
    return job;
}

/* Runs `evogradctl --url DAEMON ARGS` (the one next to evogradd); its
 * exit status, its stdout in out (cap bytes). */
static int ctl(const dh_daemon *d, const char *args, char *out, size_t cap)
{
    char bin[1200], cmd[2400];
    snprintf(bin, sizeof bin, "%s", dh_daemon_path());
    char *slash = strrchr(bin, '/');
    snprintf(slash ? slash + 1 : bin, sizeof bin - (size_t)(slash ? slash + 1 - bin : 0),
             "evogradctl");
    snprintf(cmd, sizeof cmd, "'%s' --url %s %s", bin, d->base, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int close_to(double a, double b)
{
    return fabs(a - b) <= 1e-12 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* Checks one aggregate entry against the summaries of the jobs whose
 * point, seed left out, is entry's point. */
static void check_entry(const dh_daemon *d, const json_t *sweep, const json_t *entry)
{
    const json_t *group = json_object_get(entry, "point");
    json_t *summaries = json_array();
    size_t i;
    json_t *j;
    long members = 0;
    json_array_foreach(json_object_get(sweep, "jobs"), i, j) {
        json_t *p = json_copy(json_object_get(j, "point"));
        json_object_del(p, "seed");
        int mine = json_equal(p, group);
        json_decref(p);
        if (!mine) continue;
        members++;
        json_t *job = get_job(d, json_integer_value(json_object_get(j, "id")));
        assert_int_equal(json_integer_value(json_object_get(job, "sweep")),
                         json_integer_value(json_object_get(sweep, "id")));
        assert_true(json_equal(json_object_get(job, "point"), json_object_get(j, "point")));
        if (strcmp(json_string_value(json_object_get(job, "state")), "succeeded") == 0)
            json_array_append(summaries, json_object_get(job, "summary"));
        json_decref(job);
    }
    assert_int_equal(json_integer_value(json_object_get(entry, "jobs")), members);
    assert_int_equal(json_integer_value(json_object_get(entry, "succeeded")),
                     json_array_size(summaries));
    const json_t *metrics = json_object_get(entry, "metrics");
    /* Every number of the summaries but the run's identity is a metric. */
    const char *key;
    json_t *v;
    json_object_foreach(json_array_get(summaries, 0), key, v) {
        if (!json_is_number(v) || !strcmp(key, "seed") || !strcmp(key, "steps") ||
            !strcmp(key, "steps_per_epoch") || !strcmp(key, "n_lambda")) {
            assert_null(json_object_get(metrics, key));
            continue;
        }
        double sum = 0, ss = 0;
        size_t n = json_array_size(summaries);
        json_t *s;
        json_array_foreach(summaries, i, s) sum += json_number_value(json_object_get(s, key));
        double mean = sum / (double)n;
        json_array_foreach(summaries, i, s) {
            double dlt = json_number_value(json_object_get(s, key)) - mean;
            ss += dlt * dlt;
        }
        const json_t *m = json_object_get(metrics, key);
        if (!m) fail_msg("the aggregate lacks %s", key);
        assert_int_equal(json_integer_value(json_object_get(m, "n")), n);
        if (!close_to(json_number_value(json_object_get(m, "mean")), mean) ||
            !close_to(json_number_value(json_object_get(m, "std")), sqrt(ss / (double)n)))
            fail_msg("%s: aggregate %.17g ± %.17g, from the summaries %.17g ± %.17g", key,
                     json_number_value(json_object_get(m, "mean")),
                     json_number_value(json_object_get(m, "std")), mean, sqrt(ss / (double)n));
    }
    json_decref(summaries);
}

static void test_sweep_runs_and_aggregates(void **state)
{
    (void)state;
    dh_daemon d;
    start(&d, "grid");
    int64_t id = submit(&d, "{\"name\": \"toy grid\", \"spec\": {\"task\": \"toy1d\", \"steps\": 40, "
                            "\"toy1d\": {\"trials\": 2, \"points\": 3}}, "
                            "\"grid\": {\"method\": [\"evograd\", \"t1t2\"], "
                            "\"evograd.sigma\": [0.5, 1.0]}, \"repeats\": 3}");
    json_t *sw = wait_sweep(&d, id, "succeeded|failed|canceled", 120);
    assert_string_equal(json_string_value(json_object_get(sw, "state")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(sw, "jobs_total")), 12);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sw, "counts"), "succeeded")),
                     12);
    /* Grid order: method slowest, then sigma, then the repeats' seeds 1..3. */
    json_t *first = json_object_get(json_array_get(json_object_get(sw, "jobs"), 0), "point");
    json_t *last = json_object_get(json_array_get(json_object_get(sw, "jobs"), 11), "point");
    assert_string_equal(json_string_value(json_object_get(first, "method")), "evograd");
    assert_int_equal(json_integer_value(json_object_get(first, "seed")), 1);
    assert_string_equal(json_string_value(json_object_get(last, "method")), "t1t2");
    assert_int_equal(json_integer_value(json_object_get(last, "seed")), 3);
    json_t *agg = json_object_get(sw, "aggregate");
    assert_int_equal(json_array_size(agg), 4);
    size_t i;
    json_t *entry;
    json_array_foreach(agg, i, entry) {
        assert_null(json_object_get(json_object_get(entry, "point"), "seed"));
        assert_int_equal(json_integer_value(json_object_get(entry, "succeeded")), 3);
        check_entry(&d, sw, entry);
    }
    /* evogradctl prints the same figures: CSV with each mean and std. */
    static char out[65536];
    char args[128];
    snprintf(args, sizeof args, "sweep show %lld --csv", (long long)id);
    assert_int_equal(ctl(&d, args, out, sizeof out), 0);
    char *line = strtok(out, "\n");
    assert_non_null(line);
    assert_true(strncmp(line, "method,evograd.sigma,n,", 23) == 0);
    char *cols[64];
    int nc = 0;
    static char head[4096];
    snprintf(head, sizeof head, "%s", line);
    for (char *c = head, *comma; c && nc < 64; c = comma ? comma + 1 : NULL) {
        comma = strchr(c, ',');
        if (comma) *comma = '\0';
        cols[nc++] = c;
    }
    size_t row = 0;
    while ((line = strtok(NULL, "\n")) != NULL) {
        json_t *e = json_array_get(agg, row++);
        assert_non_null(e);
        char *cell = line;
        for (int c = 0; c < nc; c++) {
            char *comma = strchr(cell, ',');
            if (comma) *comma = '\0';
            size_t l = strlen(cols[c]);
            const char *stat = l > 5 && !strcmp(cols[c] + l - 5, "_mean") ? "mean"
                               : l > 4 && !strcmp(cols[c] + l - 4, "_std") ? "std" : NULL;
            if (stat) {
                char metric[128];
                snprintf(metric, sizeof metric, "%.*s", (int)(l - strlen(stat) - 1), cols[c]);
                double want = json_number_value(json_object_get(
                    json_object_get(json_object_get(e, "metrics"), metric), stat));
                double got = strtod(cell, NULL);
                if (fabs(got - want) > 1e-8 * fmax(1e-30, fabs(want)) + 1e-300)
                    fail_msg("evogradctl %s %s: %s, the API %.17g", metric, stat, cell, want);
            }
            cell = comma ? comma + 1 : cell + strlen(cell);
        }
    }
    assert_int_equal(row, json_array_size(agg));
    snprintf(args, sizeof args, "sweep show %lld --markdown", (long long)id);
    assert_int_equal(ctl(&d, args, out, sizeof out), 0);
    assert_non_null(strstr(out, "| method  | evograd.sigma |   n | "));
    assert_non_null(strstr(out, " ± "));
    assert_non_null(strstr(out, "--: |"));
    snprintf(args, sizeof args, "sweep watch %lld", (long long)id);
    assert_int_equal(ctl(&d, args, out, sizeof out), 0);
    assert_non_null(strstr(out, "succeeded: 12 jobs: 12 succeeded"));
    assert_int_equal(ctl(&d, "sweep list", out, sizeof out), 0);
    assert_non_null(strstr(out, "toy grid"));
    /* The seeds differ, so the spread is real. */
    double std = json_number_value(json_object_get(
        json_object_get(json_object_get(json_array_get(agg, 0), "metrics"), "train_loss"), "std"));
    assert_true(std > 0);
    json_decref(sw);

    dh_resp r;
    assert_int_equal(dh_get(&d, "/v1/sweeps", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "sweeps")), 1);
    assert_int_equal(dh_save_body(bodies, "sweeps", &r), 0);
    dh_resp_free(&r);
    assert_true(dh_log_clean(&d));
    assert_int_equal(dh_stop(&d, SIGTERM, 20, NULL), 0);
}

static void test_bad_grids_refused_whole(void **state)
{
    (void)state;
    dh_daemon d;
    start(&d, "bad");
    static const struct {
        const char *body, *field, *says;
    } cases[] = {
        {"[1, 2]", NULL, "object"},
        {"{\"grid\": {}}", "spec", "spec"},
        {"{\"spec\": {\"task\": \"toy1d\"}, \"grids\": {}}", "grids", "unknown"},
        {"{\"spec\": {\"task\": \"toy1d\"}, \"grid\": [1]}", "grid", "object"},
        {"{\"spec\": {\"task\": \"toy1d\"}, \"grid\": {\"seed\": 3}}", "grid.seed", "array"},
        {"{\"spec\": {\"task\": \"toy1d\"}, \"grid\": {\"seed\": []}}", "grid.seed", "array"},
        {"{\"spec\": {\"task\": \"toy1d\"}, \"grid\": {\"seed\": [1]}, \"repeats\": 2}", "repeats",
         "not both"},
        {"{\"spec\": {\"task\": \"toy1d\"}, \"repeats\": 0}", "repeats", "integer"},
        {"{\"spec\": {\"task\": \"toy1d\"}, \"grid\": {\"a..b\": [1]}}", "grid.a..b", "empty"},
        /* One bad point among good ones: the point and the field. */
        {"{\"spec\": {\"task\": \"toy1d\", \"steps\": 5}, \"grid\": {\"seed\": [1, 2], "
         "\"evograd.k\": [4, 0, 8]}}",
         "evograd.k", "grid point 2 of 6 (seed=1, evograd.k=0)"},
        {"{\"spec\": {\"task\": \"toy1d\"}, \"grid\": {\"method\": [\"evograd\", \"magic\"]}}",
         "method", "grid point 2 of 2"},
        {"{\"spec\": {\"task\": \"toy1d\"}, \"grid\": {\"device\": [\"cpu\", \"cuda:7\"]}}",
         "device", "grid point 2 of 2"},
        {"{\"spec\": {\"task\": \"toy1d\"}, \"grid\": {\"seed\": [1,2,3,4,5,6,7,8,9,10,11], "
         "\"evograd.k\": [1,2,3,4,5,6,7,8,9,10], \"evograd.sigma\": [1,2,3,4,5,6,7,8,9,10]}}",
         "grid", "more than 1000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dh_resp r;
        assert_int_equal(dh_post_json(&d, "/v1/sweeps", cases[i].body, &r), 0);
        if (r.status != 400 || !dh_err_code(&r) || strcmp(dh_err_code(&r), "invalid_sweep") != 0)
            fail_msg("%s: %ld %s", cases[i].body, r.status, r.body);
        const char *field = dh_err_field(&r), *msg = dh_err_message(&r);
        if ((cases[i].field && (!field || strcmp(field, cases[i].field) != 0)) ||
            (!cases[i].field && field) || !strstr(msg, cases[i].says))
            fail_msg("%s: field %s, message %s", cases[i].body, field ? field : "(none)", msg);
        assert_int_equal(dh_save_body(bodies, "error", &r), 0);
        dh_resp_free(&r);
    }
    /* The bad point is named as an object too. */
    dh_resp r;
    assert_int_equal(dh_post_json(&d, "/v1/sweeps", cases[9].body, &r), 0);
    json_t *point = json_object_get(json_object_get(r.json, "error"), "point");
    assert_int_equal(json_integer_value(json_object_get(point, "evograd.k")), 0);
    dh_resp_free(&r);
    /* Not JSON at all, and the wrong media type. */
    assert_int_equal(dh_post_json(&d, "/v1/sweeps", "{\"spec\":", &r), 0);
    assert_int_equal(r.status, 400);
    dh_resp_free(&r);
    dh_req rq = {.method = "POST", .path = "/v1/sweeps", .content_type = "text/plain",
                 .body = "{}"};
    assert_int_equal(dh_do(&d, &rq, &r), 0);
    assert_int_equal(r.status, 415);
    dh_resp_free(&r);
    /* Nothing was made. */
    assert_int_equal(dh_get(&d, "/v1/jobs", &r), 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "jobs")), 0);
    dh_resp_free(&r);
    assert_int_equal(dh_get(&d, "/v1/sweeps", &r), 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "sweeps")), 0);
    dh_resp_free(&r);
    assert_int_equal(dh_get(&d, "/v1/sweeps/5", &r), 0);
    assert_int_equal(r.status, 404);
    dh_resp_free(&r);
    assert_int_equal(dh_stop(&d, SIGTERM, 20, NULL), 0);
}

static void test_restart_mid_sweep(void **state)
{
    (void)state;
    dh_daemon d;
    start(&d, "restart");
    int64_t id = submit(&d, "{\"spec\": {\"task\": \"toy1d\", \"steps\": 4000, "
                            "\"toy1d\": {\"trials\": 1, \"points\": 1}}, "
                            "\"grid\": {\"method\": [\"evograd\", \"none\"]}, \"repeats\": 2}");
    json_t *sw = get_sweep(&d, id);
    json_t *jobs = json_deep_copy(json_object_get(sw, "jobs"));
    json_decref(sw);
    int64_t first = json_integer_value(json_object_get(json_array_get(jobs, 0), "id"));
    if (dh_wait_job(&d, first, NULL, 100, 60, NULL) != 0) fail_msg("the sweep did not start");
    assert_int_equal(dh_stop(&d, SIGKILL, 5, NULL), 0);
    char dir[700];
    snprintf(dir, sizeof dir, "%s", d.dir);
    dh_opts o = {.checkpoint_every = 50};
    if (dh_start(&d, dir, &o) != 0) fail_msg("cannot restart the daemon");
    sw = wait_sweep(&d, id, "succeeded|failed|canceled", 120);
    assert_string_equal(json_string_value(json_object_get(sw, "state")), "succeeded");
    json_t *after = json_object_get(sw, "jobs");
    assert_int_equal(json_array_size(after), json_array_size(jobs));
    for (size_t i = 0; i < json_array_size(jobs); i++) {
        json_t *a = json_array_get(jobs, i), *b = json_array_get(after, i);
        assert_int_equal(json_integer_value(json_object_get(a, "id")),
                         json_integer_value(json_object_get(b, "id")));
        assert_true(json_equal(json_object_get(a, "point"), json_object_get(b, "point")));
        json_t *rows = dh_steps_whole(&d, json_integer_value(json_object_get(b, "id")), 1000, 4000);
        if (!rows) fail_msg("job %zu: its step log is not whole", i);
        json_decref(rows);
    }
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(sw, "aggregate"), i, entry) check_entry(&d, sw, entry);
    json_decref(jobs);
    json_decref(sw);
    assert_int_equal(dh_stop(&d, SIGTERM, 20, NULL), 0);
}

static void test_cancel_and_delete(void **state)
{
    (void)state;
    dh_daemon d;
    start(&d, "cancel");
    int64_t id = submit(&d, "{\"spec\": {\"task\": \"toy1d\", \"steps\": 100000000}, "
                            "\"repeats\": 3}");
    json_t *sw = get_sweep(&d, id);
    int64_t first = json_integer_value(json_object_get(json_array_get(json_object_get(sw, "jobs"), 0), "id"));
    json_decref(sw);
    if (dh_wait_job(&d, first, NULL, 10, 60, NULL) != 0) fail_msg("the sweep did not start");
    char path[96];
    snprintf(path, sizeof path, "/v1/sweeps/%lld", (long long)id);
    dh_resp r;
    dh_req del = {.method = "DELETE", .path = path};
    assert_int_equal(dh_do(&d, &del, &r), 0);
    assert_int_equal(r.status, 409); /* a job is running */
    dh_resp_free(&r);
    snprintf(path, sizeof path, "/v1/sweeps/%lld/cancel", (long long)id);
    assert_int_equal(dh_post_json(&d, path, "", &r), 0);
    assert_int_equal(r.status, 202);
    assert_int_equal(dh_save_body(bodies, "sweep", &r), 0);
    dh_resp_free(&r);
    sw = wait_sweep(&d, id, "canceled", 60);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sw, "counts"), "canceled")), 3);
    json_decref(sw);
    assert_int_equal(dh_post_json(&d, path, "", &r), 0);
    assert_int_equal(r.status, 409); /* nothing left to cancel */
    dh_resp_free(&r);
    snprintf(path, sizeof path, "/v1/sweeps/%lld", (long long)id);
    assert_int_equal(dh_do(&d, &del, &r), 0);
    assert_int_equal(r.status, 204);
    dh_resp_free(&r);
    assert_int_equal(dh_get(&d, path, &r), 0);
    assert_int_equal(r.status, 404);
    dh_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)first);
    assert_int_equal(dh_get(&d, path, &r), 0);
    assert_int_equal(r.status, 404);
    dh_resp_free(&r);
    assert_int_equal(dh_stop(&d, SIGTERM, 20, NULL), 0);
    assert_int_equal(dh_validate_bodies(bodies), 0);
}

/* Every example sweep is accepted as it stands, through evogradctl. */
static void test_example_sweeps(void **state)
{
    (void)state;
    dh_daemon d;
    start(&d, "examples");
    glob_t g;
    assert_int_equal(glob("schema/examples/sweeps/*.json", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 3);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char args[1100], out[4096];
        snprintf(args, sizeof args, "sweep submit '%s' -q", g.gl_pathv[i]);
        if (ctl(&d, args, out, sizeof out) != 0) fail_msg("%s was refused", g.gl_pathv[i]);
        long long id = atoll(out);
        assert_true(id > 0);
        snprintf(args, sizeof args, "sweep cancel %lld", id);
        assert_int_equal(ctl(&d, args, out, sizeof out), 0);
        json_t *sw = wait_sweep(&d, id, "canceled", 60);
        json_decref(sw);
        snprintf(args, sizeof args, "sweep delete %lld", id);
        assert_int_equal(ctl(&d, args, out, sizeof out), 0);
        fprintf(stderr, "%s: accepted\n", g.gl_pathv[i]);
    }
    globfree(&g);
    assert_int_equal(dh_stop(&d, SIGTERM, 20, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_runs_and_aggregates),
        cmocka_unit_test(test_bad_grids_refused_whole),
        cmocka_unit_test(test_restart_mid_sweep),
        cmocka_unit_test(test_example_sweeps),
        cmocka_unit_test(test_cancel_and_delete),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
