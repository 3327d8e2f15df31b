/* The daemon's HTTP API, black-box: a real `evogradd serve` on 127.0.0.1
 * with a fresh database, spoken to over HTTP (daemon_harness.h).
 *
 * Jobs: submit (201 + Location), show, poll to the end, list (paging with
 * after/limit, the state filter), the step log (paging, max_points
 * downsampling that keeps the first and last step), evaluations, the event
 * stream of a finished job, cancel (a running job stops within a few
 * steps and its checkpoint goes; a queued one is canceled at once; a
 * finished one is a 409), delete (204 then 404; 409 while running; a
 * queued job deleted never runs). /healthz, /v1/devices and /metrics (the
 * Prometheus text parsed line by line, per-job gauges while a job runs).
 *
 * Refusals: over 200 bad requests, each with its status, error code and,
 * where it applies, the field at fault; afterwards the daemon still
 * answers and a job submitted before them is unchanged. The bearer token
 * (a second daemon with --token-file). 8 threads x 500 reads of a running
 * job's steps: all 200, no "database is locked" in a body or in the log.
 * Every JSON body seen is validated against schema/api/ by
 * tests/parity/validate_api.py at the end. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "pg_cluster.h"
#include "data/dataset.h"
#include "testutil.h"

/* A job that runs until canceled: LeNet on Fashion-MNIST, no evaluation. */
#define LONG_JOB "{\"task\":\"rotation\",\"steps\":100000,\"eval_limit\":100,\"eval_every\":100000}"
#define WAIT_S 60.0

static dh_daemon D;            /* the daemon every test but the token's uses */
static char root[512];         /* this binary's scratch folder */
static char bodies[600];       /* response bodies for validate_api.py */

/* ---- requests and checks ---- */

/* One request to d that must get an answer. */
static void call_on(const dh_daemon *d, dh_resp *r, const char *method, const char *path,
                    const char *ctype, const char *body)
{
    dh_req rq = {.method = method, .path = path, .content_type = ctype, .body = body};
    if (dh_do(d, &rq, r) != 0) fail_msg("%s %s: no answer", method, path);
}

static void call(dh_resp *r, const char *method, const char *path, const char *ctype,
                 const char *body)
{
    call_on(&D, r, method, path, ctype, body);
}

/* Checks r is `status` with a JSON body, and keeps the body for the
 * schema check. */
static void expect_json(const dh_resp *r, long status, const char *schema, const char *what)
{
    if (r->status != status)
        fail_msg("%s: status %ld, expected %ld: %.300s", what, r->status, status, r->body);
    if (strncmp(r->content_type, "application/json", 16) != 0)
        fail_msg("%s: Content-Type \"%s\"", what, r->content_type);
    if (!r->json) fail_msg("%s: body is not JSON: %.300s", what, r->body);
    assert_int_equal(dh_save_body(bodies, schema, r), 0);
}

/* Whether r is the error {status, code, field} (field NULL: absent) with
 * a non-empty message and nothing else; prints the difference when not.
 * Keeps the body for the schema check. */
static int is_error(const dh_resp *r, long status, const char *code, const char *field,
                    const char *what)
{
    const char *got_code = dh_err_code(r), *got_field = dh_err_field(r),
               *msg = dh_err_message(r);
    int ok = r->status == status && got_code && strcmp(got_code, code) == 0 && msg && *msg &&
             json_object_size(r->json) == 1 &&
             json_object_size(json_object_get(r->json, "error")) == 2u + (got_field != NULL) &&
             strncmp(r->content_type, "application/json", 16) == 0 &&
             (field ? got_field && strcmp(field, got_field) == 0 : got_field == NULL);
    if (!ok)
        fprintf(stderr, "%s: got %ld %.300s, expected %ld %s field %s\n", what, r->status,
                r->body, status, code, field ? field : "(absent)");
    if (r->json && dh_save_body(bodies, "error", r) != 0) ok = 0;
    return ok;
}

static void expect_error(const dh_resp *r, long status, const char *code, const char *field,
                         const char *what)
{
    if (!is_error(r, status, code, field, what)) fail_msg("%s: wrong answer", what);
}

static json_int_t int_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) fail_msg("\"%s\" is not an integer", key);
    return json_integer_value(v);
}

static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s) fail_msg("\"%s\" is not a string", key);
    return s;
}

/* Keeps a JSON value for the schema check as if it were a body. */
static void save_json(const char *schema, const json_t *v)
{
    dh_resp r = {.body = json_dumps(v, JSON_COMPACT)};
    assert_non_null(r.body);
    r.len = strlen(r.body);
    assert_int_equal(dh_save_body(bodies, schema, &r), 0);
    free(r.body);
}

/* GET /v1/jobs/{id} (200, kept for the schema check); a new reference. */
static json_t *get_job(int64_t id)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)id);
    dh_resp r;
    call(&r, "GET", path, NULL, NULL);
    expect_json(&r, 200, "job", path);
    json_t *job = json_incref(r.json);
    dh_resp_free(&r);
    return job;
}

/* Waits for the job to reach one of states; a new reference to it. */
static json_t *wait_job(int64_t id, const char *states, long min_steps, double timeout_s)
{
    json_t *job = NULL;
    if (dh_wait_job(&D, id, states, min_steps, timeout_s, &job) != 0)
        fail_msg("job %lld did not reach %s", (long long)id, states);
    save_json("job", job);
    return job;
}

static int64_t submit(const char *spec)
{
    int64_t id = dh_submit(&D, spec);
    if (id < 1) fail_msg("could not submit %s", spec);
    return id;
}

/* Submits a job that runs until canceled and waits until it has logged
 * min_steps steps. */
static int64_t start_long_job(long min_steps)
{
    int64_t id = submit(LONG_JOB);
    json_decref(wait_job(id, NULL, min_steps, WAIT_S));
    return id;
}

static void cancel_and_wait(int64_t id)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", (long long)id);
    dh_resp r;
    call(&r, "POST", path, NULL, NULL);
    expect_json(&r, 202, "job", path);
    dh_resp_free(&r);
    json_decref(wait_job(id, "canceled", 0, 30));
}

/* Checks rows (a JSON array of step rows) hold steps first, first+1, ...
 * in order, n of them. */
static void expect_contiguous(const json_t *rows, long first, size_t n, const char *what)
{
    if (json_array_size(rows) != n)
        fail_msg("%s: %zu rows, expected %zu", what, json_array_size(rows), n);
    for (size_t i = 0; i < n; i++) {
        long step = (long)int_of(json_array_get(rows, i), "step");
        if (step != first + (long)i) fail_msg("%s: row %zu is step %ld", what, i, step);
    }
}

/* ---- Prometheus text ---- */

typedef struct sample {
    char name[96];
    char labels[160];          /* as written between the braces */
    double value;
} sample;

static int name_char(int c, int first)
{
    return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && c >= '0' && c <= '9');
}

/* Parses the text format 0.0.4: "# HELP name text", "# TYPE name type",
 * other comments, blank lines, and samples `name{l="v",...} value
 * [timestamp]` whose name a TYPE line declared before. The count of
 * samples, or -1 with the first bad line printed. */
static int parse_metrics(const char *text, sample *out, int cap)
{
    char declared[64][96];
    int n_declared = 0, n = 0, lineno = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) {
            fprintf(stderr, "metrics: the last line has no newline\n");
            return -1;
        }
        char buf[512] = "";
        size_t len = (size_t)(end - line);
        lineno++;
        if (len >= sizeof buf) goto bad;
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = end + 1;
        if (len == 0) continue;
        if (buf[0] == '#') {
            char kind[8], name[96], rest[400] = "";
            if (sscanf(buf, "# %7s %95s %399[^\n]", kind, name, rest) >= 2 &&
                (strcmp(kind, "HELP") == 0 || strcmp(kind, "TYPE") == 0)) {
                for (const char *p = name; *p; p++)
                    if (!name_char(*p, p == name)) goto bad;
                if (strcmp(kind, "TYPE") == 0) {
                    static const char *const types[] = {"counter", "gauge", "histogram",
                                                        "summary", "untyped"};
                    int ok = 0;
                    for (int i = 0; i < 5; i++) ok |= strcmp(rest, types[i]) == 0;
                    if (!ok || n_declared == 64) goto bad;
                    snprintf(declared[n_declared++], sizeof declared[0], "%s", name);
                }
            }
            continue;
        }
        if (n == cap) goto bad;
        sample *s = &out[n];
        const char *p = buf;
        size_t k = 0;
        while (name_char(p[k], k == 0)) k++;
        if (k == 0 || k >= sizeof s->name) goto bad;
        memcpy(s->name, p, k);
        s->name[k] = '\0';
        p += k;
        s->labels[0] = '\0';
        if (*p == '{') {
            const char *start = ++p;
            while (*p != '}') {
                size_t m = 0;
                while (name_char(p[m], m == 0) && p[m] != ':') m++;
                if (m == 0 || p[m] != '=' || p[m + 1] != '"') goto bad;
                p += m + 2;
                while (*p && *p != '"') {
                    if (*p == '\\') {
                        if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') goto bad;
                        p++;
                    }
                    p++;
                }
                if (*p != '"') goto bad;
                p++;
                if (*p == ',') p++;
                else if (*p != '}') goto bad;
            }
            if ((size_t)(p - start) >= sizeof s->labels) goto bad;
            memcpy(s->labels, start, (size_t)(p - start));
            s->labels[p - start] = '\0';
            p++;
        }
        if (*p != ' ') goto bad;
        p++;
        char *after;
        if (strncmp(p, "NaN", 3) == 0) s->value = NAN, after = (char *)p + 3;
        else if (strncmp(p, "+Inf", 4) == 0) s->value = INFINITY, after = (char *)p + 4;
        else if (strncmp(p, "-Inf", 4) == 0) s->value = -INFINITY, after = (char *)p + 4;
        else s->value = strtod(p, &after);
        if (after == p) goto bad;
        if (*after == ' ') {
            char *ts_end;
            strtoll(after + 1, &ts_end, 10);
            if (ts_end == after + 1) goto bad;
            after = ts_end;
        }
        if (*after) goto bad;
        /* A histogram's samples carry _bucket, _sum and _count. */
        int known = 0;
        for (int i = 0; i < n_declared && !known; i++) {
            size_t dl = strlen(declared[i]);
            known = strcmp(declared[i], s->name) == 0 ||
                    (strncmp(declared[i], s->name, dl) == 0 &&
                     (strcmp(s->name + dl, "_bucket") == 0 || strcmp(s->name + dl, "_sum") == 0 ||
                      strcmp(s->name + dl, "_count") == 0));
        }
        if (!known) {
            fprintf(stderr, "metrics line %d: %s has no TYPE line before it\n", lineno,
                    s->name);
            return -1;
        }
        n++;
        continue;
    bad:
        fprintf(stderr, "metrics line %d is not Prometheus text: %.200s\n", lineno, buf);
        return -1;
    }
    return n;
}

/* The value of the sample name{labels}; fails the test when absent. */
static double metric(const sample *s, int n, const char *name, const char *labels)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0 && strcmp(s[i].labels, labels) == 0) return s[i].value;
    fail_msg("metrics: no %s{%s}", name, labels);
    return NAN;
}

static int has_metric(const sample *s, int n, const char *name, const char *labels)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0 && strcmp(s[i].labels, labels) == 0) return 1;
    return 0;
}

/* GET /metrics parsed into s (cap samples); the count. */
/* promtool (Debian's prometheus, installed by make deps) must find nothing
 * to say about the text: syntax, base units, counter names. */
static void promtool_check(const char *body)
{
    char path[700], cmd[1600];
    snprintf(path, sizeof path, "%s/metrics.txt", root);
    FILE *f = fopen(path, "w");
    if (!f || fputs(body, f) < 0 || fclose(f) != 0) fail_msg("cannot write %s", path);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    if (!p) fail_msg("cannot run promtool");
    char said[4096];
    size_t n = fread(said, 1, sizeof said - 1, p);
    said[n] = '\0';
    int rc = pclose(p);
    if (rc != 0 || n > 0)
        fail_msg("promtool check metrics (exit %d; promtool is in Debian's prometheus, which "
                 "make deps installs): %s", WEXITSTATUS(rc), said);
}

static int get_metrics(sample *s, int cap)
{
    dh_resp r;
    call(&r, "GET", "/metrics", NULL, NULL);
    if (r.status != 200) fail_msg("/metrics: %ld %s", r.status, r.body);
    if (strncmp(r.content_type, "text/plain", 10) != 0)
        fail_msg("/metrics: Content-Type %s", r.content_type);
    promtool_check(r.body);
    int n = parse_metrics(r.body, s, cap);
    dh_resp_free(&r);
    if (n < 0) fail_msg("/metrics does not parse");
    return n;
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "%s", tu_tmpdir());
    snprintf(bodies, sizeof bodies, "%s/bodies", root);
    char dir[600], data[600], broken[700], roots[1400];
    snprintf(dir, sizeof dir, "%s/daemon", root);
    /* The data roots: Debian's datasets and a folder of the test's own,
     * holding an IDX set whose files are not IDX at all. */
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(broken, sizeof broken, "%s/broken", data);
    if (mkdir(data, 0755) != 0 || mkdir(broken, 0755) != 0) return -1;
    static const char *const junk[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        char path[800];
        snprintf(path, sizeof path, "%s/%s", broken, junk[i]);
        FILE *f = fopen(path, "w");
        if (!f || fputs("not an IDX file\n", f) < 0 || fclose(f) != 0) return -1;
    }
    snprintf(roots, sizeof roots, "%s:%s", EG_FASHION_MNIST_DIR "/..", data);
    dh_opts o = {.checkpoint_every = 5, .data_dir = roots};
    return dh_start(&D, dir, &o);
}

static int group_teardown(void **state)
{
    (void)state;
    if (D.pid > 0) dh_stop(&D, SIGKILL, 5, NULL);
    dh_thread_end();
    return 0;
}

/* ---- tests ---- */

static void test_health_and_devices(void **state)
{
    (void)state;
    dh_resp r;
    call(&r, "GET", "/healthz", NULL, NULL);
    expect_json(&r, 200, "health", "/healthz");
    assert_string_equal(str_of(r.json, "status"), "ok");
    assert_string_equal(str_of(r.json, "store"), pgc_wanted() ? "postgresql" : "sqlite");
    dh_resp_free(&r);
    call(&r, "HEAD", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    dh_resp_free(&r);

    call(&r, "GET", "/v1/devices", NULL, NULL);
    expect_json(&r, 200, "devices", "/v1/devices");
    assert_true(json_is_array(r.json));
    assert_int_equal(json_array_size(r.json), 1);
    json_t *cpu = json_array_get(r.json, 0);
    assert_string_equal(str_of(cpu, "name"), "cpu");
    assert_string_equal(str_of(cpu, "kind"), "cpu");
    assert_true(int_of(cpu, "threads") >= 1);
    assert_true(int_of(cpu, "memory_bytes") > 0);
    dh_resp_free(&r);

    /* This daemon, alive, on its one device (the heartbeat beats at start). */
    call(&r, "GET", "/v1/workers", NULL, NULL);
    expect_json(&r, 200, "workers", "/v1/workers");
    json_t *ws = json_object_get(r.json, "workers");
    assert_int_equal(json_array_size(ws), 1);
    json_t *me = json_array_get(ws, 0);
    assert_true(json_is_true(json_object_get(me, "alive")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(me, "devices"), 0)),
                        "cpu");
    assert_non_null(strstr(str_of(me, "name"), ":"));
    dh_resp_free(&r);
}

static void test_metrics_idle(void **state)
{
    (void)state;
    static sample s[256];
    int n = get_metrics(s, 256);
    static const char *const states[] = {"queued", "running", "succeeded", "failed", "canceled"};
    for (int i = 0; i < 5; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "state=\"%s\"", states[i]);
        assert_true(metric(s, n, "evograd_jobs", labels) >= 0);
    }
    assert_true(metric(s, n, "evograd_running_jobs", "") == 0);
    double ok0 = metric(s, n, "evograd_http_responses_total", "code=\"2xx\"");
    double bad0 = metric(s, n, "evograd_http_responses_total", "code=\"4xx\"");
    assert_true(ok0 >= 1);
    /* One 2xx and one 4xx more, plus the /metrics answer itself. */
    dh_resp r;
    call(&r, "GET", "/healthz", NULL, NULL);
    dh_resp_free(&r);
    call(&r, "GET", "/v1/nothing-here", NULL, NULL);
    expect_error(&r, 404, "not_found", NULL, "/v1/nothing-here");
    dh_resp_free(&r);
    n = get_metrics(s, 256);
    assert_true(metric(s, n, "evograd_http_responses_total", "code=\"2xx\"") == ok0 + 2);
    assert_true(metric(s, n, "evograd_http_responses_total", "code=\"4xx\"") == bad0 + 1);
    assert_true(metric(s, n, "evograd_http_responses_total", "code=\"5xx\"") == 0);
    /* The parser refuses what is not the text format. */
    sample t[4];
    assert_int_equal(parse_metrics("x 1\n", t, 4), -1);                     /* no TYPE */
    assert_int_equal(parse_metrics("# TYPE x gauge\nx{a=1} 1\n", t, 4), -1); /* unquoted */
    assert_int_equal(parse_metrics("# TYPE x gauge\nx one\n", t, 4), -1);
    assert_int_equal(parse_metrics("# TYPE x gauge\nx{a=\"b\",c=\"d\"} NaN\n", t, 4), 1);
}

static void test_submit_show_steps_events(void **state)
{
    (void)state;
    dh_resp r;
    call(&r, "POST", "/v1/jobs", "application/json; charset=utf-8",
         "{\"task\":\"toy1d\",\"seed\":7}");
    expect_json(&r, 201, "job", "POST /v1/jobs");
    int64_t id = int_of(r.json, "id");
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)id);
    assert_string_equal(r.location, path);
    const char *st = str_of(r.json, "state");
    assert_true(strcmp(st, "queued") == 0 || strcmp(st, "running") == 0);
    json_t *spec = json_object_get(r.json, "spec");
    assert_string_equal(str_of(spec, "task"), "toy1d");
    assert_int_equal(int_of(spec, "seed"), 7);
    assert_int_equal(int_of(spec, "steps"), 5);
    assert_int_equal(int_of(r.json, "total_steps"), 5);
    assert_true(json_is_false(json_object_get(r.json, "cancel_requested")));
    assert_true(json_is_null(json_object_get(r.json, "finished_at")));
    json_t *posted_spec = json_incref(spec);
    dh_resp_free(&r);

    /* The same job at its Location, then at its end. */
    json_t *job = get_job(id);
    assert_int_equal(int_of(job, "id"), id);
    assert_true(json_equal(json_object_get(job, "spec"), posted_spec));
    json_decref(job);
    job = wait_job(id, "succeeded|failed|canceled", 0, WAIT_S);
    assert_string_equal(str_of(job, "state"), "succeeded");
    assert_int_equal(int_of(job, "steps_done"), 5);
    assert_true(json_is_string(json_object_get(job, "started_at")));
    assert_true(json_is_string(json_object_get(job, "finished_at")));
    assert_true(json_is_null(json_object_get(job, "error")));
    json_t *summary = json_object_get(job, "summary");
    assert_true(json_is_object(summary));
    assert_int_equal(int_of(summary, "steps"), 5);

    /* The step log: steps 0..4, the job's train_loss the last one's. */
    snprintf(path, sizeof path, "/v1/jobs/%lld/steps", (long long)id);
    call(&r, "GET", path, NULL, NULL);
    expect_json(&r, 200, "steps", path);
    json_t *rows = json_incref(json_object_get(r.json, "steps"));
    expect_contiguous(rows, 0, 5, path);
    assert_true(json_is_null(json_object_get(r.json, "next_after")));
    assert_true(json_real_value(json_object_get(job, "train_loss")) ==
                json_real_value(json_object_get(json_array_get(rows, 4), "train_loss")));
    dh_resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%lld/evals", (long long)id);
    call(&r, "GET", path, NULL, NULL);
    expect_json(&r, 200, "evals", path);
    json_t *evals = json_object_get(r.json, "evals");
    assert_true(json_array_size(evals) >= 1);
    for (size_t i = 0; i < json_array_size(evals); i++) {
        json_int_t step = int_of(json_array_get(evals, i), "step");
        assert_true(step >= 0 && step <= 4);
        if (i) assert_true(step > int_of(json_array_get(evals, i - 1), "step"));
    }
    dh_resp_free(&r);

    /* The event stream of a finished job: its state (the job object),
     * each step (the row of /steps, with the step as its id), and the end
     * of the stream. */
    snprintf(path, sizeof path, "/v1/jobs/%lld/events", (long long)id);
    call(&r, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(strncmp(r.content_type, "text/event-stream", 17) == 0);
    json_t *streamed = json_array();
    int states = 0;
    long event_id = -1;
    char *save = NULL;
    for (char *line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "id: ", 4) == 0) event_id = strtol(line + 4, NULL, 10);
        if (strncmp(line, "event: ", 7) == 0) states += strcmp(line + 7, "state") == 0;
        if (strncmp(line, "data: ", 6) != 0) continue;
        json_t *data = json_loads(line + 6, 0, NULL);
        if (!data) fail_msg("event data is not JSON: %s", line);
        if (json_object_get(data, "state")) {
            save_json("job", data);
            assert_int_equal(int_of(data, "id"), id);
        } else {
            assert_int_equal(int_of(data, "step"), event_id);
            json_array_append(streamed, data);
        }
        json_decref(data);
        event_id = -1;
    }
    assert_int_equal(states, 1); /* already finished: one state, no change */
    assert_true(json_equal(streamed, rows));
    json_t *page = json_pack("{s:O, s:n}", "steps", streamed, "next_after");
    save_json("steps", page);
    json_decref(page);
    json_decref(streamed);
    json_decref(rows);
    dh_resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)id);
    call(&r, "HEAD", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    dh_resp_free(&r);

    /* The media type's name is case-insensitive. */
    call(&r, "POST", "/v1/jobs", "APPLICATION/JSON", "{\"task\":\"toy1d\",\"seed\":8}");
    expect_json(&r, 201, "job", "POST /v1/jobs (upper-case type)");
    int64_t id2 = int_of(r.json, "id");
    assert_true(id2 > id);
    dh_resp_free(&r);
    json_decref(wait_job(id2, "succeeded", 0, WAIT_S));
    json_decref(posted_spec);
    json_decref(job);
}

/* Collects every job of GET /v1/jobs?QUERY&limit=page through next_after;
 * checks each page's order and size. */
static json_t *list_all(const char *query, int page)
{
    json_t *all = json_array();
    long long after = 0;
    for (int pages = 0; pages < 10000; pages++) {
        char path[256];
        snprintf(path, sizeof path, "/v1/jobs?%s%safter=%lld&limit=%d", query, *query ? "&" : "",
                 after, page);
        dh_resp r;
        call(&r, "GET", path, NULL, NULL);
        expect_json(&r, 200, "jobs", path);
        json_t *jobs = json_object_get(r.json, "jobs");
        json_t *next = json_object_get(r.json, "next_after");
        assert_true(json_array_size(jobs) <= (size_t)page);
        for (size_t i = 0; i < json_array_size(jobs); i++) {
            json_int_t id = int_of(json_array_get(jobs, i), "id");
            if (id <= after) fail_msg("%s: id %lld after %lld", path, (long long)id, after);
            after = id;
        }
        json_array_extend(all, jobs);
        if (json_is_null(next)) {
            dh_resp_free(&r);
            return all;
        }
        /* A page with a next one is full and ends at next_after. */
        assert_int_equal(json_array_size(jobs), page);
        assert_int_equal(json_integer_value(next), after);
        dh_resp_free(&r);
    }
    fail_msg("too many pages");
    return NULL;
}

static int contains_id(const json_t *jobs, int64_t id)
{
    for (size_t i = 0; i < json_array_size(jobs); i++)
        if (int_of(json_array_get(jobs, i), "id") == id) return 1;
    return 0;
}

/* The largest count of significant digits of any non-integer number in a
 * JSON text (strings skipped). */
static int max_digits(const char *text)
{
    int worst = 0, in_string = 0;
    for (const char *p = text; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == '"') in_string = 0;
            continue;
        }
        if (*p == '"') {
            in_string = 1;
            continue;
        }
        if (*p != '-' && (*p < '0' || *p > '9')) continue;
        size_t n = strspn(p, "-+.0123456789eE");
        if (memchr(p, '.', n) || memchr(p, 'e', n) || memchr(p, 'E', n)) {
            int digits = 0, started = 0, trailing = 0;
            for (size_t i = 0; i < n && p[i] != 'e' && p[i] != 'E'; i++) {
                if (p[i] < '0' || p[i] > '9') continue;
                if (p[i] != '0') started = 1;
                if (!started) continue;
                digits++;
                trailing = p[i] == '0' ? trailing + 1 : 0;
            }
            digits -= trailing;
            worst = digits > worst ? digits : worst;
        }
        p += n - 1;
    }
    return worst;
}

/* Numbers come back as the shortest text: the spec's as written, the
 * engine's float32 figures in at most 9 digits, in the job, its steps, its
 * evaluations and its event stream. */
static void test_exact_numbers(void **state)
{
    (void)state;
    int64_t id = submit("{\"task\":\"rotation\",\"steps\":4,\"eval_every\":2,\"eval_limit\":100,"
                        "\"optimizer\":{\"lr\":0.003,\"beta1\":0.9,\"gamma\":0.1},"
                        "\"evograd\":{\"sigma\":0.001,\"tau\":0.05},"
                        "\"rotation\":{\"true_angle_deg\":12.5}}");
    json_decref(wait_job(id, "succeeded", 0, WAIT_S));
    static const char *const suffixes[] = {"", "/steps", "/evals"};
    for (int i = 0; i < 3; i++) {
        char path[96];
        snprintf(path, sizeof path, "/v1/jobs/%lld%s", (long long)id, suffixes[i]);
        dh_resp r;
        call(&r, "GET", path, NULL, NULL);
        assert_int_equal(r.status, 200);
        int digits = max_digits(r.body);
        if (digits > 9) fail_msg("%s: a number of %d digits in %s", path, digits, r.body);
        if (i == 0) {
            static const char *const as_written[] = {"\"lr\":0.003", "\"beta1\":0.9",
                                                     "\"gamma\":0.1", "\"sigma\":0.001",
                                                     "\"tau\":0.05", "\"true_angle_deg\":12.5",
                                                     "\"beta2\":0.999", "\"eps\":1e-8"};
            for (size_t k = 0; k < sizeof as_written / sizeof *as_written; k++)
                if (!strstr(r.body, as_written[k]))
                    fail_msg("%s lacks %s: %s", path, as_written[k], r.body);
        }
        dh_resp_free(&r);
    }
    char path[96];
    snprintf(path, sizeof path, "/v1/jobs/%lld/events", (long long)id);
    dh_resp r;
    call(&r, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "event: step"));
    int digits = max_digits(r.body);
    if (digits > 9) fail_msg("events: a number of %d digits in %s", digits, r.body);
    dh_resp_free(&r);
}

static void test_list_paging_and_state_filter(void **state)
{
    (void)state;
    int64_t ids[7];
    for (int i = 0; i < 7; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "{\"task\":\"toy1d\",\"seed\":%d}", 100 + i);
        ids[i] = submit(spec);
    }
    /* A job whose data cannot be read fails alone. */
    int64_t failing = submit("{\"task\":\"rotation\",\"steps\":3,"
                             "\"dataset\":{\"name\":\"mnist\",\"path\":\"broken\"}}");
    for (int i = 0; i < 7; i++) json_decref(wait_job(ids[i], "succeeded", 0, WAIT_S));
    json_t *f = wait_job(failing, "failed|succeeded|canceled", 0, WAIT_S);
    assert_string_equal(str_of(f, "state"), "failed");
    assert_true(strlen(str_of(f, "error")) > 0);
    assert_true(json_is_null(json_object_get(f, "summary")));
    json_decref(f);

    json_t *one = list_all("", 1000), *paged = list_all("", 3), *by2 = list_all("", 2);
    assert_true(json_equal(one, paged));
    assert_true(json_equal(one, by2));
    for (int i = 0; i < 7; i++) assert_true(contains_id(one, ids[i]));
    assert_true(contains_id(one, failing));

    /* after= starts past the given id. */
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs?after=%lld&limit=2", (long long)ids[2]);
    dh_resp r;
    call(&r, "GET", path, NULL, NULL);
    expect_json(&r, 200, "jobs", path);
    json_t *jobs = json_object_get(r.json, "jobs");
    assert_int_equal(json_array_size(jobs), 2);
    assert_int_equal(int_of(json_array_get(jobs, 0), "id"), ids[3]);
    assert_int_equal(int_of(json_array_get(jobs, 1), "id"), ids[4]);
    assert_int_equal(json_integer_value(json_object_get(r.json, "next_after")), ids[4]);
    dh_resp_free(&r);

    static const char *const states[] = {"succeeded", "failed", "queued", "running", "canceled"};
    size_t total = 0;
    for (int s = 0; s < 5; s++) {
        char q[32];
        snprintf(q, sizeof q, "state=%s", states[s]);
        json_t *in = list_all(q, 2);
        for (size_t i = 0; i < json_array_size(in); i++)
            assert_string_equal(str_of(json_array_get(in, i), "state"), states[s]);
        if (s == 0)
            for (int i = 0; i < 7; i++) assert_true(contains_id(in, ids[i]));
        assert_int_equal(contains_id(in, failing), s == 1);
        total += json_array_size(in);
        json_decref(in);
    }
    assert_int_equal(total, json_array_size(one)); /* every job is in one state */
    json_decref(one);
    json_decref(paged);
    json_decref(by2);
}

/* GET path: a steps page; checks 200 and returns a new reference. */
static json_t *steps_page(const char *path)
{
    dh_resp r;
    call(&r, "GET", path, NULL, NULL);
    expect_json(&r, 200, "steps", path);
    json_t *page = json_incref(r.json);
    dh_resp_free(&r);
    return page;
}

static void test_steps_paging_and_downsampling(void **state)
{
    (void)state;
    int64_t id = submit("{\"task\":\"toy1d\",\"steps\":1000,\"evograd\":{\"k\":4}}");
    json_t *job = wait_job(id, "succeeded|failed|canceled", 0, WAIT_S);
    assert_string_equal(str_of(job, "state"), "succeeded");
    assert_int_equal(int_of(job, "steps_done"), 1000);
    json_decref(job);

    json_t *all = dh_steps_all(&D, id, 100);
    assert_non_null(all);
    expect_contiguous(all, 0, 1000, "all steps");
    json_t *all7 = dh_steps_all(&D, id, 7);
    assert_true(json_equal(all, all7));
    json_decref(all7);

    char path[160];
    struct {
        long after, limit;
        long first;
        size_t n;
        long next;              /* -1: null */
    } pages[] = {
        {-1, 100, 0, 100, 99}, {99, 100, 100, 100, 199}, {949, 100, 950, 50, -1},
        {998, 5, 999, 1, -1},  {999, 100, 0, 0, -1},     {5000, 10, 0, 0, -1},
        {-1, 1000, 0, 1000, -1}, {-1, 10000, 0, 1000, -1}, {499, 500, 500, 500, -1},
        {498, 500, 499, 500, 998},
    };
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        snprintf(path, sizeof path, "/v1/jobs/%lld/steps?after=%ld&limit=%ld", (long long)id,
                 pages[i].after, pages[i].limit);
        json_t *page = steps_page(path);
        json_t *rows = json_object_get(page, "steps"), *next = json_object_get(page, "next_after");
        expect_contiguous(rows, pages[i].first, pages[i].n, path);
        if (pages[i].next < 0) assert_true(json_is_null(next));
        else assert_int_equal(json_integer_value(next), pages[i].next);
        json_decref(page);
    }

    /* Downsampled: evenly spaced, first and last kept, rows unchanged. */
    struct {
        long after, limit, max_points;
        size_t n;
        long first, last;
    } thin[] = {
        {-1, 1000, 10, 10, 0, 999}, {-1, 1000, 1, 1, 999, 999}, {500, 1000, 7, 7, 501, 999},
        {-1, 100, 10, 10, 0, 99},   {-1, 1000, 2, 2, 0, 999},   {-1, 1000, 999, 999, 0, 999},
        {-1, 1000, 5000, 1000, 0, 999}, {-1, 1000, 0, 1000, 0, 999}, {989, 1000, 3, 3, 990, 999},
    };
    for (size_t i = 0; i < sizeof thin / sizeof *thin; i++) {
        snprintf(path, sizeof path, "/v1/jobs/%lld/steps?after=%ld&limit=%ld&max_points=%ld",
                 (long long)id, thin[i].after, thin[i].limit, thin[i].max_points);
        json_t *page = steps_page(path);
        json_t *rows = json_object_get(page, "steps");
        if (json_array_size(rows) != thin[i].n)
            fail_msg("%s: %zu rows, expected %zu", path, json_array_size(rows), thin[i].n);
        long prev_gap = -1, min_gap = 1L << 30, max_gap = 0;
        for (size_t j = 0; j < thin[i].n; j++) {
            json_t *row = json_array_get(rows, j);
            long step = (long)int_of(row, "step");
            assert_true(json_equal(row, json_array_get(all, (size_t)step)));
            if (j == 0) assert_int_equal(step, thin[i].first);
            if (j == thin[i].n - 1) assert_int_equal(step, thin[i].last);
            if (j > 0) {
                long gap = step - prev_gap;
                assert_true(gap > 0);
                if (gap < min_gap) min_gap = gap;
                if (gap > max_gap) max_gap = gap;
            }
            prev_gap = step;
        }
        if (thin[i].n > 2 && max_gap - min_gap > 1)
            fail_msg("%s: gaps from %ld to %ld, not even", path, min_gap, max_gap);
        /* A page that ends short of the log points at its own last row. */
        json_t *next = json_object_get(page, "next_after");
        if (thin[i].limit == 100) assert_int_equal(json_integer_value(next), 99);
        else assert_true(json_is_null(next));
        json_decref(page);
    }
    json_decref(all);
}

static void test_evals_of_a_rotation_job(void **state)
{
    (void)state;
    int64_t id = submit("{\"task\":\"rotation\",\"steps\":20,\"eval_every\":5,\"eval_limit\":100}");
    json_t *job = wait_job(id, "succeeded|failed|canceled", 0, WAIT_S);
    assert_string_equal(str_of(job, "state"), "succeeded");
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%lld/evals", (long long)id);
    dh_resp r;
    call(&r, "GET", path, NULL, NULL);
    expect_json(&r, 200, "evals", path);
    json_t *evals = json_object_get(r.json, "evals");
    assert_int_equal(json_array_size(evals), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_array_get(evals, i);
        assert_int_equal(int_of(e, "step"), 5 * (long)i + 4);
        double acc = json_number_value(json_object_get(e, "test_acc"));
        assert_true(json_is_number(json_object_get(e, "test_acc")) && acc >= 0 && acc <= 100);
        assert_true(json_is_number(json_object_get(e, "test_loss")));
        assert_true(json_is_number(json_object_get(e, "angle_deg")));
        assert_true(json_is_null(json_object_get(e, "w_corrupted")));
        assert_true(json_is_null(json_object_get(e, "w_clean")));
    }
    /* The summary reports the last evaluation. */
    json_t *summary = json_object_get(job, "summary");
    double last = json_number_value(json_object_get(json_array_get(evals, 3), "test_acc"));
    assert_true(fabs(json_number_value(json_object_get(summary, "test_acc")) - last) <=
                1e-6 * fmax(1, fabs(last)));
    dh_resp_free(&r);
    json_decref(job);
}

static void test_metrics_while_running(void **state)
{
    (void)state;
    int64_t id = start_long_job(2);
    static sample s[256];
    int n = get_metrics(s, 256);
    assert_true(metric(s, n, "evograd_running_jobs", "") == 1);
    assert_true(metric(s, n, "evograd_jobs", "state=\"running\"") == 1);
    char labels[64];
    snprintf(labels, sizeof labels, "job_id=\"%lld\",device=\"cpu\"", (long long)id);
    assert_true(metric(s, n, "evograd_job_steps_done", labels) >= 2);
    assert_true(metric(s, n, "evograd_job_total_steps", labels) == 100000);
    assert_true(metric(s, n, "evograd_job_peak_memory_bytes", labels) > 0);
    assert_true(metric(s, n, "evograd_steps_total", "") >= 2);
    /* Step and meta-step durations as histograms of the device. */
    static const char *const hists[] = {"evograd_step_duration_seconds",
                                        "evograd_meta_step_duration_seconds"};
    for (int h = 0; h < 2; h++) {
        char name[96];
        snprintf(name, sizeof name, "%s_count", hists[h]);
        double count = metric(s, n, name, "device=\"cpu\"");
        assert_true(count >= 2);
        snprintf(name, sizeof name, "%s_bucket", hists[h]);
        assert_true(metric(s, n, name, "device=\"cpu\",le=\"+Inf\"") == count);
        assert_true(metric(s, n, name, "device=\"cpu\",le=\"30\"") <= count);
        snprintf(name, sizeof name, "%s_sum", hists[h]);
        double sum = metric(s, n, name, "device=\"cpu\"");
        assert_true(sum > 0 && sum < 30 * count);
    }
    /* A job waiting behind it: the queue's age grows from its submission. */
    assert_true(metric(s, n, "evograd_oldest_queued_job_age_seconds", "") == 0);
    int64_t waiting = submit("{\"task\":\"toy1d\"}");
    dh_sleep_ms(1200);
    n = get_metrics(s, 256);
    double waited = metric(s, n, "evograd_oldest_queued_job_age_seconds", "");
    assert_true(waited >= 1.0 && waited < 60);
    cancel_and_wait(waiting);
    cancel_and_wait(id);
    /* The worker lets go of the job's gauges just after its end is stored. */
    for (int i = 0; i < 50; i++) {
        n = get_metrics(s, 256);
        if (metric(s, n, "evograd_running_jobs", "") == 0 &&
            !has_metric(s, n, "evograd_job_steps_done", labels))
            break;
        dh_sleep_ms(100);
    }
    assert_true(metric(s, n, "evograd_oldest_queued_job_age_seconds", "") == 0);
    assert_false(has_metric(s, n, "evograd_job_steps_done", labels));
    assert_true(metric(s, n, "evograd_running_jobs", "") == 0);
}

/* Runs a shell command; its exit status, what it printed in out. */
static int shell(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p) fail_msg("cannot run %s", cmd);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Whether the metric family of a PromQL name (histogram series named by
 * their _bucket, _sum, _count) is among the samples. */
static int family_present(const sample *s, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        size_t l = strlen(name);
        if (strncmp(s[i].name, name, l) == 0 &&
            (s[i].name[l] == '\0' || !strcmp(s[i].name + l, "_bucket") ||
             !strcmp(s[i].name + l, "_sum") || !strcmp(s[i].name + l, "_count")))
            return 1;
    }
    return 0;
}

/* Checks every evograd_* name in text against the samples. */
static void names_present(const char *text, const sample *s, int n, const char *where)
{
    for (const char *p = text; (p = strstr(p, "evograd_")) != NULL;) {
        char name[96];
        size_t l = strspn(p, "abcdefghijklmnopqrstuvwxyz_0123456789");
        snprintf(name, sizeof name, "%.*s", (int)l, p);
        if (!family_present(s, n, name)) fail_msg("%s: %s is not in /metrics", where, name);
        p += l;
    }
}

/* grafana/alerts.yml passes promtool's checks and its unit tests
 * (tests/grafana/alerts.test.yml); grafana/evogradd.json is a dashboard
 * whose panels all read the datasource variable and whose queries parse
 * as PromQL (promtool, as recording rules) and name only metrics the
 * daemon serves. */
static void test_grafana(void **state)
{
    (void)state;
    static char out[65536];
    if (shell("promtool check rules grafana/alerts.yml 2>&1", out, sizeof out) != 0)
        fail_msg("promtool check rules: %s", out);
    if (shell("promtool test rules tests/grafana/alerts.test.yml 2>&1", out, sizeof out) != 0)
        fail_msg("promtool test rules: %s", out);

    int64_t id = start_long_job(2);
    static sample s[256];
    int n = get_metrics(s, 256);
    cancel_and_wait(id);
    FILE *f = fopen("grafana/alerts.yml", "r");
    assert_non_null(f);
    size_t len = fread(out, 1, sizeof out - 1, f);
    out[len] = '\0';
    fclose(f);
    names_present(out, s, n, "grafana/alerts.yml");

    json_error_t e;
    json_t *dash = json_load_file("grafana/evogradd.json", 0, &e);
    if (!dash) fail_msg("grafana/evogradd.json: %s (line %d)", e.text, e.line);
    int has_ds = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(dash, "templating"), "list"), i, v)
        has_ds |= !strcmp(json_string_value(json_object_get(v, "type")) ?: "", "datasource");
    assert_true(has_ds);
    char rules[700];
    snprintf(rules, sizeof rules, "%s/dashboard-rules.yml", root);
    FILE *r = fopen(rules, "w");
    assert_non_null(r);
    fprintf(r, "groups:\n  - name: dashboard\n    rules:\n");
    int queries = 0;
    json_t *panel;
    json_array_foreach(json_object_get(dash, "panels"), i, panel) {
        const char *uid =
            json_string_value(json_object_get(json_object_get(panel, "datasource"), "uid"));
        if (!uid || strcmp(uid, "${datasource}") != 0)
            fail_msg("panel %zu does not read the datasource variable", i);
        size_t k;
        json_t *t;
        json_array_foreach(json_object_get(panel, "targets"), k, t) {
            const char *expr = json_string_value(json_object_get(t, "expr"));
            assert_non_null(expr);
            names_present(expr, s, n, "grafana/evogradd.json");
            /* Grafana's variables as the values a query sees. */
            char q[1024];
            size_t m = 0;
            for (const char *c = expr; *c && m + 8 < sizeof q;) {
                if (!strncmp(c, "$__rate_interval", 16)) m += snprintf(q + m, 8, "5m"), c += 16;
                else if (!strncmp(c, "$instance", 9)) m += snprintf(q + m, 8, ".*"), c += 9;
                else if (!strncmp(c, "$job", 4)) m += snprintf(q + m, 8, ".*"), c += 4;
                else q[m++] = *c++;
            }
            q[m] = '\0';
            fprintf(r, "      - record: dashboard:query_%d\n        expr: '%s'\n", queries++, q);
        }
    }
    fclose(r);
    json_decref(dash);
    assert_true(queries >= 10);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "promtool check rules '%s' 2>&1", rules);
    if (shell(cmd, out, sizeof out) != 0) fail_msg("the dashboard's queries: %s", out);
}

typedef struct deleter {
    int64_t id;
    double after_ms;
} deleter;

static void *delete_later(void *arg)
{
    deleter *dl = arg;
    dh_sleep_ms(dl->after_ms);
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)dl->id);
    dh_resp r;
    dh_req rq = {.method = "DELETE", .path = path};
    dh_do(&D, &rq, &r);
    dh_resp_free(&r);
    dh_thread_end();
    return NULL;
}

/* /v1/events: every job on connecting, then each change (a job's end,
 * its deletion) as it happens. */
static void test_all_events(void **state)
{
    (void)state;
    int64_t done = submit("{\"task\":\"toy1d\",\"steps\":3}");
    json_decref(wait_job(done, "succeeded", 0, WAIT_S));
    int64_t later = submit("{\"task\":\"toy1d\",\"steps\":40}");
    pthread_t t;
    deleter dl = {done, 1500};
    assert_int_equal(pthread_create(&t, NULL, delete_later, &dl), 0);
    static char out[1 << 20];
    char req[256];
    snprintf(req, sizeof req, "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s\r\n",
             D.token[0] ? "Authorization: Bearer " : "", D.token, D.token[0] ? "\r\n" : "");
    int status = dh_raw(&D, req, strlen(req), 4.0, out, sizeof out);
    pthread_join(t, NULL);
    assert_int_equal(status, 200);
    assert_non_null(strstr(out, "text/event-stream"));
    char want[96];
    snprintf(want, sizeof want, "event: job\ndata: {\"id\":%lld,", (long long)done);
    if (!strstr(out, want)) fail_msg("no event of job %lld in %.1500s", (long long)done, out);
    snprintf(want, sizeof want, "event: deleted\ndata: {\"id\":%lld}", (long long)done);
    if (!strstr(out, want)) fail_msg("no deletion event in %.2000s", out);
    /* The second job appears as it runs and again when it has ended. */
    snprintf(want, sizeof want, "event: job\ndata: {\"id\":%lld,", (long long)later);
    const char *first = strstr(out, want);
    assert_non_null(first);
    int ended = 0;
    for (const char *p = first; (p = strstr(p, want)) != NULL; p++)
        ended |= strncmp(strstr(p, "\"state\":") + 8, "\"succeeded\"", 11) == 0;
    assert_true(ended);
}

static void test_cancel(void **state)
{
    (void)state;
    /* Past the checkpoint at step 5 (the daemon checkpoints every 5). */
    int64_t run = start_long_job(7);
    char ckpt[700], path[96];
    snprintf(ckpt, sizeof ckpt, "%s/job-%lld.1.ckpt", D.ckpt_dir, (long long)run);
    assert_int_equal(access(ckpt, F_OK), 0);

    /* A queued job (the only worker is busy) is canceled at once. */
    int64_t queued = submit("{\"task\":\"toy1d\"}");
    snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", (long long)queued);
    dh_resp r;
    call(&r, "POST", path, NULL, NULL);
    expect_json(&r, 202, "job", path);
    assert_string_equal(str_of(r.json, "state"), "canceled");
    assert_true(json_is_true(json_object_get(r.json, "cancel_requested")));
    dh_resp_free(&r);
    json_t *q = get_job(queued);
    assert_string_equal(str_of(q, "state"), "canceled");
    assert_int_equal(int_of(q, "steps_done"), 0);
    assert_true(json_is_null(json_object_get(q, "started_at")));
    assert_true(json_is_string(json_object_get(q, "finished_at")));
    json_decref(q);

    /* A running one stops within a few steps. */
    snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", (long long)run);
    double t0 = dh_now_ms();
    call(&r, "POST", path, NULL, NULL);
    expect_json(&r, 202, "job", path);
    assert_string_equal(str_of(r.json, "state"), "running");
    assert_true(json_is_true(json_object_get(r.json, "cancel_requested")));
    long at_cancel = (long)int_of(r.json, "steps_done");
    dh_resp_free(&r);
    json_t *job = wait_job(run, "canceled|succeeded|failed", 0, 30);
    double took = dh_now_ms() - t0;
    assert_string_equal(str_of(job, "state"), "canceled");
    long done = (long)int_of(job, "steps_done");
    if (done - at_cancel > 10 || took > 5000)
        fail_msg("canceled after %ld more steps and %.0f ms", done - at_cancel, took);
    assert_true(json_is_null(json_object_get(job, "summary")));
    assert_true(json_is_null(json_object_get(job, "error")));
    json_decref(job);
    json_t *rows = dh_steps_all(&D, run, 1000);
    assert_non_null(rows);
    expect_contiguous(rows, 0, (size_t)done, "steps of the canceled job");
    json_decref(rows);
    assert_int_equal(access(ckpt, F_OK), -1); /* its checkpoint went with it */

    /* Finished jobs: 409, twice. */
    int64_t finished = submit("{\"task\":\"toy1d\"}");
    json_decref(wait_job(finished, "succeeded", 0, WAIT_S));
    int64_t ids[3] = {run, queued, finished};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", (long long)ids[i]);
        call(&r, "POST", path, NULL, NULL);
        expect_error(&r, 409, "conflict", NULL, path);
        dh_resp_free(&r);
    }
}

static void test_delete(void **state)
{
    (void)state;
    int64_t run = start_long_job(1);
    int64_t queued = submit("{\"task\":\"toy1d\",\"seed\":3}");
    char path[96];
    dh_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)run);
    call(&r, "DELETE", path, NULL, NULL);
    expect_error(&r, 409, "conflict", NULL, "DELETE of a running job");
    dh_resp_free(&r);

    /* A queued job goes at once and never runs. */
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)queued);
    call(&r, "DELETE", path, NULL, NULL);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    dh_resp_free(&r);

    cancel_and_wait(run);
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)run);
    call(&r, "DELETE", path, NULL, NULL);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    dh_resp_free(&r);

    /* Both are gone from every route. */
    int64_t gone[2] = {run, queued};
    for (int g = 0; g < 2; g++) {
        static const char *const routes[][2] = {
            {"GET", ""}, {"GET", "/steps"}, {"GET", "/evals"}, {"GET", "/events"},
            {"POST", "/cancel"}, {"DELETE", ""},
        };
        for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
            snprintf(path, sizeof path, "/v1/jobs/%lld%s", (long long)gone[g], routes[i][1]);
            call(&r, routes[i][0], path, NULL, NULL);
            expect_error(&r, 404, "not_found", NULL, path);
            dh_resp_free(&r);
        }
    }
    json_t *all = list_all("", 1000);
    assert_false(contains_id(all, run));
    assert_false(contains_id(all, queued));
    json_decref(all);
    /* The worker, free again, does not find the deleted job. */
    int64_t next = submit("{\"task\":\"toy1d\"}");
    json_decref(wait_job(next, "succeeded", 0, WAIT_S));
    all = list_all("", 1000);
    assert_false(contains_id(all, queued));
    json_decref(all);
}

/* ---- concurrent readers ---- */

typedef struct hammer {
    int64_t job;
    int idx, n;
    int ok, bad;
    char first_bad[400];
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;
    for (int i = 0; i < h->n; i++) {
        char path[128];
        switch ((h->idx + i) % 4) {
        case 0:
            snprintf(path, sizeof path, "/v1/jobs/%lld/steps?limit=100", (long long)h->job);
            break;
        case 1:
            snprintf(path, sizeof path, "/v1/jobs/%lld/steps?after=%d&limit=50",
                     (long long)h->job, i % 40 - 1);
            break;
        case 2:
            snprintf(path, sizeof path, "/v1/jobs/%lld/steps?max_points=20", (long long)h->job);
            break;
        default:
            snprintf(path, sizeof path, "/v1/jobs/%lld/steps?after=-1&limit=10", (long long)h->job);
            break;
        }
        dh_resp r;
        int transport = dh_get(&D, path, &r);
        int good = transport == 0 && r.status == 200 && json_is_object(r.json) &&
                   json_is_array(json_object_get(r.json, "steps")) &&
                   json_object_get(r.json, "next_after") && !json_object_get(r.json, "error") &&
                   !strstr(r.body, "locked");
        if (good) {
            h->ok++;
        } else if (h->bad++ == 0) {
            snprintf(h->first_bad, sizeof h->first_bad, "%s: %s %ld %.200s", path,
                     transport ? "no answer" : "answer", r.status, r.body ? r.body : "");
        }
        dh_resp_free(&r);
    }
    dh_thread_end();
    return NULL;
}

static void test_concurrent_step_reads(void **state)
{
    (void)state;
    int64_t id = start_long_job(2);
    json_t *before = get_job(id);
    enum { THREADS = 8, EACH = 500 };
    hammer h[THREADS];
    pthread_t t[THREADS];
    double t0 = dh_now_ms();
    for (int i = 0; i < THREADS; i++) {
        h[i] = (hammer){.job = id, .idx = i, .n = EACH};
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    }
    int ok = 0, bad = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += h[i].ok;
        bad += h[i].bad;
        if (h[i].bad)
            fprintf(stderr, "thread %d: %d bad, first: %s\n", i, h[i].bad, h[i].first_bad);
    }
    double ms = dh_now_ms() - t0;
    fprintf(stderr, "# %d step reads in %.0f ms (%.0f/s) beside a running job\n", ok + bad, ms,
            (ok + bad) / (ms / 1e3));
    assert_int_equal(bad, 0);
    assert_int_equal(ok, THREADS * EACH);
    /* The job kept running and logging. */
    json_t *after = wait_job(id, NULL, (long)int_of(before, "steps_done") + 1, 30);
    assert_string_equal(str_of(after, "state"), "running");
    json_decref(before);
    json_decref(after);
    cancel_and_wait(id);
    assert_false(dh_file_contains(D.log, "database is locked"));
    assert_false(dh_file_contains(D.log, "locked"));
}

/* ---- refusals ---- */

typedef struct bad_req {
    const char *method, *path, *ctype, *body;
    long status;
    const char *code, *field;
} bad_req;

#define JT "application/json"
/* A POST /v1/jobs body refused as invalid_job naming field (NULL: none). */
#define BADJOB(body, field) {"POST", "/v1/jobs", JT, body, 400, "invalid_job", field}

static const bad_req bad_bodies[] = {
    /* not JSON */
    BADJOB("", NULL), BADJOB("{", NULL), BADJOB("}", NULL), BADJOB("{\"task\":}", NULL),
    BADJOB("{'task':'toy1d'}", NULL), BADJOB("{\"task\":\"toy1d\",}", NULL), BADJOB("nul", NULL),
    BADJOB("{\"task\" \"toy1d\"}", NULL), BADJOB("{\"task\":\"toy1d\"} x", NULL),
    BADJOB("{\"task\":\"toy1d\"}{\"task\":\"toy1d\"}", NULL),
    BADJOB("{\"task\":\"to\xff" "y1d\"}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"task\":\"toy1d\"}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":1e999}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":-1e999}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":99999999999999999999}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"seed\":-99999999999999999999}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":NaN}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":Infinity}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":-Infinity}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":0x10}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":+5}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":05}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":.5}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":5.}", NULL),
    BADJOB("{\"task\":\"toy1d\" /* c */}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"x\":\"\\uD800\"}", NULL),
    BADJOB("\xef\xbb\xbf{\"task\":\"toy1d\"}", NULL), BADJOB("{\"task\":\"toy1d\"", NULL),
    BADJOB("{\"task\":\"toy\n1d\"}", NULL), BADJOB("{\"task\":\"toy1d\",\"steps\":5e}", NULL),
    BADJOB("{\"task\":\"toy1d\",\"steps\":--5}", NULL),
    /* not an object */
    BADJOB("[]", NULL), BADJOB("1", NULL), BADJOB("\"toy1d\"", NULL), BADJOB("null", NULL),
    BADJOB("true", NULL), BADJOB("[{\"task\":\"toy1d\"}]", NULL), BADJOB("1.5", NULL),
    /* task */
    BADJOB("{}", "task"), BADJOB("{\"method\":\"none\"}", "task"), BADJOB("{\"task\":1}", "task"),
    BADJOB("{\"task\":true}", "task"), BADJOB("{\"task\":null}", "task"),
    BADJOB("{\"task\":[]}", "task"), BADJOB("{\"task\":{}}", "task"),
    BADJOB("{\"task\":\"cartpole\"}", "task"), BADJOB("{\"task\":\"\"}", "task"),
    BADJOB("{\"task\":\"TOY1D\"}", "task"), BADJOB("{\"task\":\"toy1d \"}", "task"),
    BADJOB("{\"task\":\"toy\\u0000d\"}", "task"),
    /* method */
    BADJOB("{\"task\":\"toy1d\",\"method\":1}", "method"),
    BADJOB("{\"task\":\"toy1d\",\"method\":\"maml\"}", "method"),
    BADJOB("{\"task\":\"toy1d\",\"method\":null}", "method"),
    BADJOB("{\"task\":\"toy1d\",\"method\":\"\"}", "method"),
    BADJOB("{\"task\":\"toy1d\",\"method\":[\"none\"]}", "method"),
    /* steps, epochs, batch_size, seed */
    BADJOB("{\"task\":\"toy1d\",\"steps\":\"5\"}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":1.5}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":-1}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":1000000001}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":true}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":null}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":[]}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":{}}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":1e10}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":-0.5}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":9223372036854775807}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"steps\":-9223372036854775808}", "steps"),
    BADJOB("{\"task\":\"toy1d\",\"epochs\":0}", "epochs"),
    BADJOB("{\"task\":\"toy1d\",\"epochs\":10001}", "epochs"),
    BADJOB("{\"task\":\"toy1d\",\"epochs\":\"1\"}", "epochs"),
    BADJOB("{\"task\":\"toy1d\",\"epochs\":2.5}", "epochs"),
    BADJOB("{\"task\":\"toy1d\",\"epochs\":-1}", "epochs"),
    BADJOB("{\"task\":\"toy1d\",\"batch_size\":0}", "batch_size"),
    BADJOB("{\"task\":\"toy1d\",\"batch_size\":65537}", "batch_size"),
    BADJOB("{\"task\":\"toy1d\",\"batch_size\":-5}", "batch_size"),
    BADJOB("{\"task\":\"toy1d\",\"batch_size\":\"1\"}", "batch_size"),
    BADJOB("{\"task\":\"toy1d\",\"batch_size\":1.1}", "batch_size"),
    BADJOB("{\"task\":\"toy1d\",\"seed\":-1}", "seed"),
    BADJOB("{\"task\":\"toy1d\",\"seed\":9007199254740992}", "seed"),
    BADJOB("{\"task\":\"toy1d\",\"seed\":\"1\"}", "seed"),
    BADJOB("{\"task\":\"toy1d\",\"seed\":1.5}", "seed"),
    BADJOB("{\"task\":\"toy1d\",\"seed\":1e300}", "seed"),
    /* device */
    BADJOB("{\"task\":\"toy1d\",\"device\":\"gpu\"}", "device"),
    BADJOB("{\"task\":\"toy1d\",\"device\":1}", "device"),
    BADJOB("{\"task\":\"toy1d\",\"device\":\"cuda:123\"}", "device"),
    BADJOB("{\"task\":\"toy1d\",\"device\":\"\"}", "device"),
    BADJOB("{\"task\":\"toy1d\",\"device\":\"CPU\"}", "device"),
    BADJOB("{\"task\":\"toy1d\",\"device\":\"cuda:x\"}", "device"),
    BADJOB("{\"task\":\"toy1d\",\"device\":null}", "device"),
    BADJOB("{\"task\":\"toy1d\",\"device\":\"cuda\"}", "device"),
    BADJOB("{\"task\":\"toy1d\",\"device\":\"cuda:0\"}", "device"),
    BADJOB("{\"task\":\"toy1d\",\"device\":\"cpu \"}", "device"),
    /* evaluation */
    BADJOB("{\"task\":\"toy1d\",\"eval_every\":-1}", "eval_every"),
    BADJOB("{\"task\":\"toy1d\",\"eval_every\":1000000001}", "eval_every"),
    BADJOB("{\"task\":\"toy1d\",\"eval_every\":\"x\"}", "eval_every"),
    BADJOB("{\"task\":\"toy1d\",\"eval_limit\":-1}", "eval_limit"),
    BADJOB("{\"task\":\"toy1d\",\"eval_limit\":10000001}", "eval_limit"),
    BADJOB("{\"task\":\"toy1d\",\"eval_limit\":0.5}", "eval_limit"),
    /* unknown fields */
    BADJOB("{\"task\":\"toy1d\",\"colour\":\"blue\"}", "colour"),
    BADJOB("{\"task\":\"toy1d\",\"Task\":\"toy1d\"}", "Task"),
    BADJOB("{\"task\":\"toy1d\",\"steps \":5}", "steps "),
    BADJOB("{\"colour\":\"blue\"}", "colour"),
    BADJOB("{\"task\":\"toy1d\",\"\":1}", NULL),
    /* model */
    BADJOB("{\"task\":\"rotation\",\"model\":\"lenet\"}", "model"),
    BADJOB("{\"task\":\"rotation\",\"model\":{\"name\":\"resnet99\"}}", "model.name"),
    BADJOB("{\"task\":\"rotation\",\"model\":{\"name\":\"none\"}}", "model.name"),
    BADJOB("{\"task\":\"rotation\",\"model\":{\"width\":0}}", "model.width"),
    BADJOB("{\"task\":\"rotation\",\"model\":{\"width\":17}}", "model.width"),
    BADJOB("{\"task\":\"rotation\",\"model\":{\"depth\":3}}", "model.depth"),
    BADJOB("{\"task\":\"rotation\",\"model\":{\"name\":5}}", "model.name"),
    BADJOB("{\"task\":\"toy1d\",\"model\":{\"name\":\"lenet\"}}", "model.name"),
    BADJOB("{\"task\":\"toy1d\",\"model\":{\"width\":1}}", "model.width"),
    /* dataset */
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"name\":\"imagenet\"}}", "dataset.name"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"name\":\"none\"}}", "dataset.name"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"path\":5}}", "dataset.path"),
    /* data outside the daemon's data roots, or missing */
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"path\":\"../../../../../../etc\"}}",
           "dataset.path"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"path\":\"/etc\"}}", "dataset.path"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"path\":\"/nonexistent/evograd-data\"}}",
           "dataset.path"),
    BADJOB("{\"task\":\"mwn\",\"dataset\":{\"name\":\"cifar10\"}}", "dataset.path"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"path\":\"a\\u0000b\"}}", "dataset.path"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"noise\":{\"kind\":\"uniform\"}}}",
           "dataset.noise.kind"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"noise\":{\"rate\":0.5}}}", "dataset.noise.rate"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"noise\":{\"rate\":2}}}", "dataset.noise.rate"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"noise\":\"none\"}}", "dataset.noise"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":{\"extra\":1}}", "dataset.extra"),
    BADJOB("{\"task\":\"rotation\",\"dataset\":[]}", "dataset"),
    BADJOB("{\"task\":\"mwn\",\"dataset\":{\"noise\":{\"kind\":\"none\",\"rate\":0.4}}}",
           "dataset.noise.rate"),
    BADJOB("{\"task\":\"mwn\",\"dataset\":{\"noise\":{\"kind\":\"gaussian\"}}}",
           "dataset.noise.kind"),
    BADJOB("{\"task\":\"mwn\",\"dataset\":{\"noise\":{\"rate\":-0.1}}}", "dataset.noise.rate"),
    BADJOB("{\"task\":\"toy1d\",\"dataset\":{\"path\":\"/x\"}}", "dataset.path"),
    BADJOB("{\"task\":\"toy1d\",\"dataset\":{\"name\":\"mnist\"}}", "dataset.name"),
    /* optimizer (rotation's default is Adam) */
    BADJOB("{\"task\":\"rotation\",\"optimizer\":\"adam\"}", "optimizer"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":null}", "optimizer"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"foo\":1}}", "optimizer.foo"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"lr\":0}}", "optimizer.lr"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"lr\":11}}", "optimizer.lr"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"lr\":\"fast\"}}", "optimizer.lr"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"lr\":-1}}", "optimizer.lr"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"lr\":null}}", "optimizer.lr"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"lr\":1e-11}}", "optimizer.lr"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"kind\":\"rmsprop\"}}", "optimizer.kind"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"kind\":1}}", "optimizer.kind"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"momentum\":0.9}}", "optimizer.momentum"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"nesterov\":true}}", "optimizer.nesterov"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"kind\":\"sgd\",\"beta1\":0.9}}",
           "optimizer.beta1"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"kind\":\"sgd\",\"eps\":1e-8}}",
           "optimizer.eps"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"milestones\":\"auto\"}}",
           "optimizer.milestones"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"milestones\":[3,2]}}",
           "optimizer.milestones[1]"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"milestones\":[0]}}",
           "optimizer.milestones[0]"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"milestones\":[1,2,3,4,5,6,7,8,9]}}",
           "optimizer.milestones"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"milestones\":[\"a\"]}}",
           "optimizer.milestones[0]"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"milestones\":[1.5]}}",
           "optimizer.milestones[0]"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"milestones\":[5,5]}}",
           "optimizer.milestones[1]"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"milestones\":{}}}", "optimizer.milestones"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"gamma\":0}}", "optimizer.gamma"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"gamma\":2}}", "optimizer.gamma"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"weight_decay\":2}}", "optimizer.weight_decay"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"weight_decay\":-0.1}}",
           "optimizer.weight_decay"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"kind\":\"sgd\",\"nesterov\":\"yes\"}}",
           "optimizer.nesterov"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"kind\":\"sgd\",\"nesterov\":true}}",
           "optimizer.nesterov"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"kind\":\"sgd\",\"momentum\":1}}",
           "optimizer.momentum"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"eps\":0}}", "optimizer.eps"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"beta2\":1}}", "optimizer.beta2"),
    BADJOB("{\"task\":\"rotation\",\"optimizer\":{\"beta1\":-0.1}}", "optimizer.beta1"),
    BADJOB("{\"task\":\"mwn\",\"meta_optimizer\":{\"milestones\":\"auto\"}}",
           "meta_optimizer.milestones"),
    BADJOB("{\"task\":\"rotation\",\"meta_optimizer\":{\"lr\":100}}", "meta_optimizer.lr"),
    BADJOB("{\"task\":\"rotation\",\"meta_optimizer\":[]}", "meta_optimizer"),
    /* evograd */
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"k\":1}}", "evograd.k"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"k\":4097}}", "evograd.k"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"k\":2.5}}", "evograd.k"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"k\":\"2\"}}", "evograd.k"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"sigma\":0}}", "evograd.sigma"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"sigma\":11}}", "evograd.sigma"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"tau\":0}}", "evograd.tau"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"tau\":1001}}", "evograd.tau"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"antithetic\":\"yes\"}}", "evograd.antithetic"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"noise\":\"uniform\"}}", "evograd.noise"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"k\":3,\"antithetic\":true}}", "evograd.k"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":[]}", "evograd"),
    BADJOB("{\"task\":\"rotation\",\"evograd\":{\"kk\":2}}", "evograd.kk"),
    /* task sections */
    BADJOB("{\"task\":\"toy1d\",\"rotation\":{}}", "rotation"),
    BADJOB("{\"task\":\"rotation\",\"toy1d\":{}}", "toy1d"),
    BADJOB("{\"task\":\"rotation\",\"mwn\":{}}", "mwn"),
    BADJOB("{\"task\":\"rotation\",\"rotation\":{\"true_angle_deg\":181}}",
           "rotation.true_angle_deg"),
    BADJOB("{\"task\":\"rotation\",\"rotation\":{\"true_angle_deg\":-181}}",
           "rotation.true_angle_deg"),
    BADJOB("{\"task\":\"rotation\",\"rotation\":{\"true_angle_deg\":\"30\"}}",
           "rotation.true_angle_deg"),
    BADJOB("{\"task\":\"rotation\",\"rotation\":{\"angle\":30}}", "rotation.angle"),
    BADJOB("{\"task\":\"toy1d\",\"toy1d\":{\"x0\":101}}", "toy1d.x0"),
    BADJOB("{\"task\":\"toy1d\",\"toy1d\":{\"lambda0\":-1}}", "toy1d.lambda0"),
    BADJOB("{\"task\":\"toy1d\",\"toy1d\":{\"trials\":0}}", "toy1d.trials"),
    BADJOB("{\"task\":\"toy1d\",\"toy1d\":{\"points\":1001}}", "toy1d.points"),
    BADJOB("{\"task\":\"toy1d\",\"toy1d\":{\"lr\":0}}", "toy1d.lr"),
    BADJOB("{\"task\":\"toy1d\",\"toy1d\":{\"trajectory_steps\":0}}", "toy1d.trajectory_steps"),
    BADJOB("{\"task\":\"toy1d\",\"toy1d\":5}", "toy1d"),
    BADJOB("{\"task\":\"mwn\",\"mwn\":{\"meta_samples\":0}}", "mwn.meta_samples"),
    BADJOB("{\"task\":\"mwn\",\"mwn\":{\"vnet_hidden\":4097}}", "mwn.vnet_hidden"),
    /* the content type is checked first, then the body */
    {"POST", "/v1/jobs", NULL, "{\"task\":\"toy1d\"}", 415, "unsupported_media_type", NULL},
    {"POST", "/v1/jobs", "", "{\"task\":\"toy1d\"}", 415, "unsupported_media_type", NULL},
    {"POST", "/v1/jobs", "text/plain", "{\"task\":\"toy1d\"}", 415, "unsupported_media_type", NULL},
    {"POST", "/v1/jobs", "application/x-www-form-urlencoded", "task=toy1d", 415,
     "unsupported_media_type", NULL},
    {"POST", "/v1/jobs", "application/jsonp", "{\"task\":\"toy1d\"}", 415,
     "unsupported_media_type", NULL},
    {"POST", "/v1/jobs", "application/json-seq", "{\"task\":\"toy1d\"}", 415,
     "unsupported_media_type", NULL},
    {"POST", "/v1/jobs", "json", "{\"task\":\"toy1d\"}", 415, "unsupported_media_type", NULL},
    {"POST", "/v1/jobs", "text/json", "{\"task\":\"toy1d\"}", 415, "unsupported_media_type", NULL},
    {"POST", "/v1/jobs", "application/xml", "<task>toy1d</task>", 415, "unsupported_media_type",
     NULL},
    {"POST", "/v1/jobs", "multipart/form-data; boundary=x", "--x--", 415,
     "unsupported_media_type", NULL},
    {"POST", "/v1/jobs", "text/plain", "{", 415, "unsupported_media_type", NULL},
    {"POST", "/v1/jobs", "application", "{\"task\":\"toy1d\"}", 415, "unsupported_media_type",
     NULL},
    /* query parameters of the collection */
    {"POST", "/v1/jobs?dry_run=1", JT, "{\"task\":\"toy1d\"}", 400, "invalid_parameter", "dry_run"},
    {"GET", "/v1/jobs?limit=0", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=1001", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=-1", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=abc", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=1.5", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=99999999999999999999", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=%201", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=1e2", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=0x10", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=1&limit=2", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?after=-1", NULL, NULL, 400, "invalid_parameter", "after"},
    {"GET", "/v1/jobs?after=x", NULL, NULL, 400, "invalid_parameter", "after"},
    {"GET", "/v1/jobs?after=9223372036854775808", NULL, NULL, 400, "invalid_parameter", "after"},
    {"GET", "/v1/jobs?state=done", NULL, NULL, 400, "invalid_parameter", "state"},
    {"GET", "/v1/jobs?state=", NULL, NULL, 400, "invalid_parameter", "state"},
    {"GET", "/v1/jobs?state=QUEUED", NULL, NULL, 400, "invalid_parameter", "state"},
    {"GET", "/v1/jobs?state=queued,running", NULL, NULL, 400, "invalid_parameter", "state"},
    {"GET", "/v1/jobs?state=queued&state=running", NULL, NULL, 400, "invalid_parameter", "state"},
    {"GET", "/v1/jobs?foo=1", NULL, NULL, 400, "invalid_parameter", "foo"},
    {"GET", "/v1/jobs?limit=1%002", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?limit=%00", NULL, NULL, 400, "invalid_parameter", "limit"},
    {"GET", "/v1/jobs?state=queued%00x", NULL, NULL, 400, "invalid_parameter", "state"},
    {"GET", "/healthz%00", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/v1/jobs?a0=1&a1=1&a2=1&a3=1&a4=1&a5=1&a6=1&a7=1&a8=1&a9=1&a10=1&a11=1&a12=1&a13=1"
            "&a14=1&a15=1&a16=1", NULL, NULL, 400, "invalid_parameter", NULL},
    {"GET", "/healthz?x=1", NULL, NULL, 400, "invalid_parameter", "x"},
    {"GET", "/metrics?format=json", NULL, NULL, 400, "invalid_parameter", "format"},
    {"GET", "/v1/devices?all=1", NULL, NULL, 400, "invalid_parameter", "all"},
    /* unknown routes */
    {"GET", "/ui/nothing.js", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/v1", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/v1/", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/v2/jobs", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/v1/job", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/v1/jobs/", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/v1/jobs//steps", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/healthz/", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/metrics/x", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/v1/devices/cpu", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/V1/JOBS", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/v1//jobs", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/favicon.ico", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/index.html", NULL, NULL, 404, "not_found", NULL},
    {"GET", "/v1/healthz", NULL, NULL, 404, "not_found", NULL},
    {"POST", "/v1/nope", JT, "{}", 404, "not_found", NULL},
    /* wrong methods: 405 (the Allow header is checked separately) */
    {"DELETE", "/v1/jobs", NULL, NULL, 405, "method_not_allowed", NULL},
    {"PUT", "/v1/jobs", JT, "{\"task\":\"toy1d\"}", 405, "method_not_allowed", NULL},
    {"PATCH", "/v1/jobs", NULL, NULL, 405, "method_not_allowed", NULL},
    {"OPTIONS", "/v1/jobs", NULL, NULL, 405, "method_not_allowed", NULL},
    {"BREW", "/v1/jobs", NULL, NULL, 405, "method_not_allowed", NULL},
    {"POST", "/healthz", NULL, NULL, 405, "method_not_allowed", NULL},
    {"PUT", "/healthz", NULL, NULL, 405, "method_not_allowed", NULL},
    {"POST", "/metrics", NULL, NULL, 405, "method_not_allowed", NULL},
    {"DELETE", "/metrics", NULL, NULL, 405, "method_not_allowed", NULL},
    {"POST", "/v1/devices", NULL, NULL, 405, "method_not_allowed", NULL},
    {"DELETE", "/v1/devices", NULL, NULL, 405, "method_not_allowed", NULL},
    {"PATCH", "/v1/jobs/99999999", NULL, NULL, 405, "method_not_allowed", NULL},
};

/* Methods refused on routes of one job ("{}" is the reference job's id),
 * with the methods the Allow header must list. */
static const struct {
    const char *method, *route, *allow;
} bad_methods[] = {
    {"PUT", "", "GET, HEAD, DELETE"},           {"POST", "", "GET, HEAD, DELETE"},
    {"PATCH", "", "GET, HEAD, DELETE"},         {"POST", "/steps", "GET, HEAD"},
    {"DELETE", "/steps", "GET, HEAD"},          {"PUT", "/evals", "GET, HEAD"},
    {"POST", "/evals", "GET, HEAD"},            {"POST", "/events", "GET, HEAD"},
    {"GET", "/cancel", "POST"},                 {"DELETE", "/cancel", "POST"},
    {"PUT", "/cancel", "POST"},                 {"HEAD", "/cancel", "POST"},
};

/* Query parameters refused on routes of one job: route, query, field. */
static const struct {
    const char *method, *route, *query, *field;
} bad_queries[] = {
    {"GET", "/steps", "after=-2", "after"},
    {"GET", "/steps", "after=1000000000001", "after"},
    {"GET", "/steps", "after=abc", "after"},
    {"GET", "/steps", "after=1&after=2", "after"},
    {"GET", "/steps", "limit=0", "limit"},
    {"GET", "/steps", "limit=10001", "limit"},
    {"GET", "/steps", "limit=x", "limit"},
    {"GET", "/steps", "max_points=-1", "max_points"},
    {"GET", "/steps", "max_points=10001", "max_points"},
    {"GET", "/steps", "max_points=1.0", "max_points"},
    {"GET", "/steps", "every=2", "every"},
    {"GET", "/steps", "state=running", "state"},
    {"GET", "/steps", "limit=10&offset=5", "offset"},
    {"GET", "/evals", "after=1", "after"},
    {"GET", "/evals", "limit=1", "limit"},
    {"GET", "/events", "after=abc", "after"},
    {"GET", "/events", "after=-2", "after"},
    {"GET", "/events", "foo=1", "foo"},
    {"GET", "", "verbose=1", "verbose"},
    {"POST", "/cancel", "force=1", "force"},
    {"DELETE", "", "x=1", "x"},
    {"DELETE", "", "force", "force"},
};

/* Path ids that are no job id, and ids of no job: 404 on every job route. */
static const char *const bad_ids[] = {
    "abc", "-1", "0", "99999999999999999999", "1.5", "+1", "0x10", "1e3", "%20",
    "9223372036854775808", "1a", "%2D1", "99999999", "9223372036854775807",
    "1%00", "1%00abc", /* an escaped NUL does not end the id: job 1 exists */
};

static const char *const job_routes[][2] = {
    {"GET", ""},         {"GET", "/steps"}, {"GET", "/evals"}, {"GET", "/events"},
    {"POST", "/cancel"}, {"DELETE", ""},
};

/* Whether the Allow header lists exactly the methods of want (any order). */
static int same_methods(const char *allow, const char *want)
{
    char a[128], w[128];
    snprintf(a, sizeof a, "%s", allow);
    snprintf(w, sizeof w, "%s", want);
    int n_a = 0, n_w = 0;
    char *save, *tok;
    for (tok = strtok_r(a, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        n_a++;
        if (!strstr(want, tok)) return 0;
    }
    for (tok = strtok_r(w, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        n_w++;
        if (!strstr(allow, tok)) return 0;
    }
    return n_a == n_w;
}

/* A body of n bytes: a valid job spec padded with spaces. */
static char *padded_job(size_t n)
{
    static const char spec[] = "{\"task\":\"toy1d\"}";
    char *b = malloc(n + 1);
    assert_non_null(b);
    memset(b, ' ', n);
    memcpy(b, spec, sizeof spec - 1);
    b[n] = '\0';
    return b;
}

static void test_bad_requests(void **state)
{
    (void)state;
    /* A job submitted before, to be found intact after. */
    int64_t ref = submit("{\"task\":\"toy1d\",\"steps\":9,\"seed\":42}");
    json_t *ref_job = wait_job(ref, "succeeded", 0, WAIT_S);
    json_t *ref_steps = dh_steps_all(&D, ref, 1000);
    assert_non_null(ref_steps);
    json_t *jobs_before = list_all("", 1000);

    int cases = 0, wrong = 0;
    dh_resp r;
    char what[2300], path[2200];
    for (size_t i = 0; i < sizeof bad_bodies / sizeof *bad_bodies; i++) {
        const bad_req *b = &bad_bodies[i];
        call(&r, b->method, b->path, b->ctype, b->body);
        snprintf(what, sizeof what, "%s %s %.80s", b->method, b->path, b->body ? b->body : "");
        wrong += !is_error(&r, b->status, b->code, b->field, what);
        if (b->status == 405 && !r.allow[0]) {
            fprintf(stderr, "%s: 405 without Allow\n", what);
            wrong++;
        }
        dh_resp_free(&r);
        cases++;
    }
    /* A NUL byte after the spec, counted in the body's length. */
    {
        dh_req rq = {.method = "POST", .path = "/v1/jobs", .content_type = JT,
                     .body = "{\"task\":\"toy1d\"}\0", .len = 17};
        assert_int_equal(dh_do(&D, &rq, &r), 0);
        wrong += !is_error(&r, 400, "invalid_job", NULL, "spec with a NUL after it");
        dh_resp_free(&r);
        cases++;
    }
    /* Too deep to parse. */
    {
        char *deep = malloc(20001);
        assert_non_null(deep);
        memset(deep, '[', 10000);
        memset(deep + 10000, ']', 10000);
        deep[20000] = '\0';
        call(&r, "POST", "/v1/jobs", JT, deep);
        wrong += !is_error(&r, 400, "invalid_job", NULL, "10000 nested arrays");
        dh_resp_free(&r);
        free(deep);
        cases++;
    }
    /* A dataset path longer than the spec allows. */
    {
        char body[1200];
        snprintf(body, sizeof body, "{\"task\":\"rotation\",\"dataset\":{\"path\":\"/%0600d\"}}",
                 0);
        call(&r, "POST", "/v1/jobs", JT, body);
        wrong += !is_error(&r, 400, "invalid_job", "dataset.path", "a 601-byte dataset.path");
        dh_resp_free(&r);
        cases++;
    }
    /* Bodies over 1 MiB: 413 whether the client waits for 100 Continue
     * (libcurl asks, past 1 MiB) or sends it all at once; exactly 1 MiB is
     * read (and refused for what it says). */
    {
        size_t sizes[] = {(1u << 20) + 1, (1u << 20) + 1, 5u << 20, 1u << 20};
        int no_expect[] = {0, 1, 1, 1};
        for (int i = 0; i < 4; i++) {
            char *body = padded_job(sizes[i]);
            if (i == 3) memcpy(body, "{\"task\":\"toy1d\",\"x\":1}", 22);
            dh_req rq = {.method = "POST", .path = "/v1/jobs", .content_type = JT, .body = body,
                         .len = sizes[i], .no_expect = no_expect[i]};
            assert_int_equal(dh_do(&D, &rq, &r), 0);
            snprintf(what, sizeof what, "a %zu-byte body%s", sizes[i],
                     no_expect[i] ? " sent at once" : " after Expect");
            if (i < 3) wrong += !is_error(&r, 413, "payload_too_large", NULL, what);
            else wrong += !is_error(&r, 400, "invalid_job", "x", what);
            dh_resp_free(&r);
            free(body);
            cases++;
        }
        /* Chunked, without a declared length: counted as it comes. */
        char *body = padded_job(3u << 20);
        dh_req rq = {.method = "POST", .path = "/v1/jobs", .content_type = JT, .body = body,
                     .len = 3u << 20, .header = "Transfer-Encoding: chunked"};
        assert_int_equal(dh_do(&D, &rq, &r), 0);
        wrong += !is_error(&r, 413, "payload_too_large", NULL, "a chunked 3 MiB body");
        dh_resp_free(&r);
        free(body);
        cases++;
        /* Declared far beyond the cap, with no body sent: refused at once. */
        static const char raw[] = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                  "application/json\r\nContent-Length: 100000000\r\n\r\n";
        char out[2048];
        int status = dh_raw(&D, raw, sizeof raw - 1, 5, out, sizeof out);
        if (status != 413 || !strstr(out, "\"payload_too_large\"")) {
            fprintf(stderr, "100 MB declared: %.300s\n", out);
            wrong++;
        }
        static const char expect_raw[] = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                         "application/json\r\nContent-Length: 2000000\r\n"
                                         "Expect: 100-continue\r\n\r\n";
        status = dh_raw(&D, expect_raw, sizeof expect_raw - 1, 5, out, sizeof out);
        if (status != 413 || !strstr(out, "\"payload_too_large\"")) {
            fprintf(stderr, "2 MB declared with Expect: %.300s\n", out);
            wrong++;
        }
        cases += 2;
    }
    /* Paths and query strings over their caps. */
    {
        char longp[1200];
        snprintf(longp, sizeof longp, "/v1/jobs/%01100d", 1);
        call(&r, "GET", longp, NULL, NULL);
        wrong += !is_error(&r, 414, "uri_too_long", NULL, "an 1109-byte path");
        dh_resp_free(&r);
        snprintf(path, sizeof path, "/v1/jobs?state=%02100d", 0);
        call(&r, "GET", path, NULL, NULL);
        wrong += !is_error(&r, 414, "uri_too_long", NULL, "a 2106-byte query");
        dh_resp_free(&r);
        cases += 2;
    }
    /* Bad ids and ids of no job, on every job route. */
    for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++)
        for (size_t k = 0; k < sizeof job_routes / sizeof *job_routes; k++) {
            snprintf(path, sizeof path, "/v1/jobs/%s%s", bad_ids[i], job_routes[k][1]);
            call(&r, job_routes[k][0], path, NULL, NULL);
            snprintf(what, sizeof what, "%s %s", job_routes[k][0], path);
            wrong += !is_error(&r, 404, "not_found", NULL, what);
            dh_resp_free(&r);
            cases++;
        }
    /* Wrong methods on the reference job's routes. */
    for (size_t i = 0; i < sizeof bad_methods / sizeof *bad_methods; i++) {
        snprintf(path, sizeof path, "/v1/jobs/%lld%s", (long long)ref, bad_methods[i].route);
        call(&r, bad_methods[i].method, path, NULL, NULL);
        snprintf(what, sizeof what, "%s %s", bad_methods[i].method, path);
        if (strcmp(bad_methods[i].method, "HEAD") == 0) {
            if (r.status != 405) {
                fprintf(stderr, "%s: %ld\n", what, r.status);
                wrong++;
            }
        } else {
            wrong += !is_error(&r, 405, "method_not_allowed", NULL, what);
        }
        if (!same_methods(r.allow, bad_methods[i].allow)) {
            fprintf(stderr, "%s: Allow \"%s\", expected %s\n", what, r.allow,
                    bad_methods[i].allow);
            wrong++;
        }
        dh_resp_free(&r);
        cases++;
    }
    /* The collection's Allow. */
    call(&r, "PUT", "/v1/jobs", NULL, NULL);
    if (!same_methods(r.allow, "GET, HEAD, POST")) {
        fprintf(stderr, "PUT /v1/jobs: Allow \"%s\"\n", r.allow);
        wrong++;
    }
    dh_resp_free(&r);
    /* Query parameters on the reference job's routes. */
    for (size_t i = 0; i < sizeof bad_queries / sizeof *bad_queries; i++) {
        snprintf(path, sizeof path, "/v1/jobs/%lld%s?%s", (long long)ref, bad_queries[i].route,
                 bad_queries[i].query);
        call(&r, bad_queries[i].method, path, NULL, NULL);
        snprintf(what, sizeof what, "%s %s", bad_queries[i].method, path);
        wrong += !is_error(&r, 400, "invalid_parameter", bad_queries[i].field, what);
        dh_resp_free(&r);
        cases++;
    }
    fprintf(stderr, "# %d bad requests, %d answered wrongly\n", cases, wrong);
    assert_true(cases >= 200);
    assert_int_equal(wrong, 0);

    /* The daemon is alive, made no job, and the reference job is intact. */
    call(&r, "GET", "/healthz", NULL, NULL);
    expect_json(&r, 200, "health", "/healthz after the refusals");
    dh_resp_free(&r);
    assert_true(dh_alive(&D));
    json_t *jobs_after = list_all("", 1000);
    assert_true(json_equal(jobs_before, jobs_after));
    json_t *job = get_job(ref);
    assert_true(json_equal(job, ref_job));
    json_t *steps = dh_steps_all(&D, ref, 1000);
    assert_true(json_equal(steps, ref_steps));
    expect_contiguous(steps, 0, 9, "the reference job's steps");
    json_decref(job);
    json_decref(steps);
    json_decref(jobs_after);
    json_decref(jobs_before);
    json_decref(ref_job);
    json_decref(ref_steps);
}

/* ---- the bearer token ---- */

static void test_bearer_token(void **state)
{
    (void)state;
    static const char token[] = "s3cret-Token_123";
    dh_daemon T;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/token-daemon", root);
    dh_opts o = {.token = token};
    assert_int_equal(dh_start(&T, dir, &o), 0);
    dh_resp r;

    /* With the token: a job to read. */
    call_on(&T, &r, "POST", "/v1/jobs", JT, "{\"task\":\"toy1d\"}");
    expect_json(&r, 201, "job", "POST with the token");
    int64_t id = int_of(r.json, "id");
    dh_resp_free(&r);
    json_t *job = NULL;
    assert_int_equal(dh_wait_job(&T, id, "succeeded", 0, WAIT_S, &job), 0);
    json_decref(job);

    char paths[8][64];
    static const char *const suffix[] = {"", "/steps", "/evals", "/events", "/cancel", ""};
    static const char *const methods[] = {"GET", "GET", "GET", "GET", "POST", "DELETE"};
    static const long good_status[] = {200, 200, 200, 200, 409, 204};
    typedef struct route_case {
        const char *method, *path, *body;
        long good;                  /* the status with the right token */
    } route_case;
    route_case routes[16] = {
        {"GET", "/v1/jobs", NULL, 200},    {"POST", "/v1/jobs", "{\"task\":\"toy1d\"}", 201},
        {"GET", "/v1/devices", NULL, 200}, {"GET", "/metrics", NULL, 200},
        {"GET", "/v1/nope", NULL, 404},    {"PUT", "/v1/jobs", NULL, 405},
        {"GET", "/v1/jobs/abc", NULL, 404},
    };
    int n = 7;
    for (int i = 0; i < 6; i++) {
        snprintf(paths[i], sizeof paths[i], "/v1/jobs/%lld%s", (long long)id, suffix[i]);
        routes[n++] = (route_case){methods[i], paths[i], NULL, good_status[i]};
    }
    static const char *const wrong_auth[] = {
        "",                          /* no header */
        "Bearer wrong",
        "Bearer s3cret-Token_12",    /* a prefix */
        "Bearer s3cret-Token_1234",  /* longer */
        "Bearer S3CRET-TOKEN_123",   /* tokens are case-sensitive */
        "Basic s3cret-Token_123",
        "s3cret-Token_123",
        "Bearer",
        "Bearer  ",
        "Bearers3cret-Token_123",
    };
    int wrong = 0, cases = 0;
    char what[256];
    for (int k = 0; k < n; k++) {
        for (size_t a = 0; a < sizeof wrong_auth / sizeof *wrong_auth; a++) {
            dh_req rq = {.method = routes[k].method, .path = routes[k].path,
                         .content_type = routes[k].body ? JT : NULL, .body = routes[k].body,
                         .auth = wrong_auth[a]};
            assert_int_equal(dh_do(&T, &rq, &r), 0);
            snprintf(what, sizeof what, "%s %s with \"%s\"", routes[k].method, routes[k].path,
                     wrong_auth[a]);
            wrong += !is_error(&r, 401, "unauthorized", NULL, what);
            if (strncmp(r.www_authenticate, "Bearer", 6) != 0) {
                fprintf(stderr, "%s: WWW-Authenticate \"%s\"\n", what, r.www_authenticate);
                wrong++;
            }
            dh_resp_free(&r);
            cases++;
        }
        /* The right token, the scheme in any case. */
        dh_req rq = {.method = routes[k].method, .path = routes[k].path,
                     .content_type = routes[k].body ? JT : NULL, .body = routes[k].body,
                     .auth = k % 2 ? "bearer s3cret-Token_123" : NULL};
        assert_int_equal(dh_do(&T, &rq, &r), 0);
        if (r.status != routes[k].good) {
            fprintf(stderr, "%s %s with the token: %ld %.200s, expected %ld\n", routes[k].method,
                    routes[k].path, r.status, r.body, routes[k].good);
            wrong++;
        }
        if (r.json && r.status >= 400) dh_save_body(bodies, "error", &r);
        dh_resp_free(&r);
    }
    /* /healthz needs none, and a wrong one does not matter. */
    for (size_t a = 0; a < 3; a++) {
        dh_req rq = {.method = "GET", .path = "/healthz", .auth = wrong_auth[a]};
        assert_int_equal(dh_do(&T, &rq, &r), 0);
        if (r.status != 200) {
            fprintf(stderr, "/healthz with \"%s\": %ld\n", wrong_auth[a], r.status);
            wrong++;
        }
        dh_resp_free(&r);
    }
    fprintf(stderr, "# %d unauthorized requests, %d answered wrongly\n", cases, wrong);
    assert_int_equal(wrong, 0);
    int status;
    assert_int_equal(dh_stop(&T, SIGTERM, 10, &status), 0);
    assert_int_equal(status, 0);
    assert_true(dh_log_clean(&T));
}

/* ---- the end ---- */

static void test_bodies_match_the_schemas(void **state)
{
    (void)state;
    static const char *const want[] = {"health", "devices", "workers", "job", "jobs", "steps",
                                       "evals", "error"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char dir[700];
        snprintf(dir, sizeof dir, "%s/%s", bodies, want[i]);
        if (access(dir, F_OK) != 0) fail_msg("no %s bodies were kept", want[i]);
    }
    assert_int_equal(dh_validate_bodies(bodies), 0);
}

static void test_clean_shutdown(void **state)
{
    (void)state;
    int status;
    double t0 = dh_now_ms();
    assert_int_equal(dh_stop(&D, SIGTERM, 10, &status), 0);
    assert_int_equal(status, 0);
    assert_true(dh_now_ms() - t0 < 10000);
    assert_true(dh_file_contains(D.log, "serve: stopped"));
    /* No 5xx, no error and no sanitizer report during the whole run. */
    assert_true(dh_log_clean(&D));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_and_devices),
        cmocka_unit_test(test_metrics_idle),
        cmocka_unit_test(test_submit_show_steps_events),
        cmocka_unit_test(test_exact_numbers),
        cmocka_unit_test(test_list_paging_and_state_filter),
        cmocka_unit_test(test_steps_paging_and_downsampling),
        cmocka_unit_test(test_evals_of_a_rotation_job),
        cmocka_unit_test(test_metrics_while_running),
        cmocka_unit_test(test_grafana),
        cmocka_unit_test(test_all_events),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_concurrent_step_reads),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_bearer_token),
        cmocka_unit_test(test_bodies_match_the_schemas),
        cmocka_unit_test(test_clean_shutdown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
