/* The pure parts of the HTTP API (daemon/api), without a server or a
 * store: the route table and its matching (404 / 405 with Allow / bad
 * ids), job id and query parameter parsing, the error body, bearer token
 * checks, dispatch order (401 before 404), POST bodies into jobs (415,
 * 400 with the field, devices, the datasets folder), and the options of
 * `evogradd serve`: every option's bounds and refused values, the config
 * file, flags over the file, the computed defaults.
 *
 * The handlers are replaced here by recorders (the route table refers to
 * them by name), so dispatch is checked without a store. */
#include <arpa/inet.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "nn/device.h"
#include "synth_data.h"
#include "tasks/lft.h"
#include "tasks/ner.h"
#include "testutil.h"

/* ---- recording handlers ---- */

static const char *called;    /* name of the last handler run */
static int64_t called_id;

#define RECORDER(fn)                                                  \
    void fn(const eg_request *rq, eg_reply *rp)                       \
    {                                                                 \
        called = #fn;                                                 \
        called_id = rq->id;                                           \
        eg_reply_json(rp, 200, json_pack("{s:s}", "handler", #fn));   \
    }
RECORDER(eg_api_jobs_post)
RECORDER(eg_api_jobs_list)
RECORDER(eg_api_job_get)
RECORDER(eg_api_job_cancel)
RECORDER(eg_api_job_delete)
RECORDER(eg_api_steps_get)
RECORDER(eg_api_evals_get)
RECORDER(eg_api_events_get)
RECORDER(eg_api_all_events_get)
RECORDER(eg_api_devices_get)
RECORDER(eg_api_ui_get)
RECORDER(eg_api_sweeps_post)
RECORDER(eg_api_sweeps_list)
RECORDER(eg_api_sweep_get)
RECORDER(eg_api_sweep_cancel)
RECORDER(eg_api_sweep_delete)
RECORDER(eg_api_health_get)
RECORDER(eg_api_metrics_get)

/* ---- helpers ---- */

static const char *err_code(const eg_reply *rp)
{
    return json_string_value(json_object_get(json_object_get(rp->body, "error"), "code"));
}

static const char *err_field(const eg_reply *rp)
{
    return json_string_value(json_object_get(json_object_get(rp->body, "error"), "field"));
}

static const char *err_message(const eg_reply *rp)
{
    return json_string_value(json_object_get(json_object_get(rp->body, "error"), "message"));
}

/* Checks rp is the error {status, code, field (NULL: absent)} with a
 * non-empty message and nothing else in the body. */
static void assert_error(const eg_reply *rp, int status, const char *code, const char *field)
{
    if (rp->status != status)
        fail_msg("status %d, expected %d (%s)", rp->status, status,
                 err_message(rp) ? err_message(rp) : "no message");
    assert_non_null(rp->body);
    assert_int_equal(json_object_size(rp->body), 1);
    json_t *e = json_object_get(rp->body, "error");
    assert_true(json_is_object(e));
    assert_string_equal(err_code(rp), code);
    assert_non_null(err_message(rp));
    assert_true(strlen(err_message(rp)) > 0);
    if (field) {
        assert_non_null(err_field(rp));
        assert_string_equal(err_field(rp), field);
        assert_int_equal(json_object_size(e), 3);
    } else {
        assert_null(json_object_get(e, "field"));
        assert_int_equal(json_object_size(e), 2);
    }
}

static eg_query query_of(int n, const char *const *kv)
{
    eg_query q = {0};
    for (int i = 0; i < n; i++) {
        q.p[i].key = kv[2 * i];
        q.p[i].value = kv[2 * i + 1];
    }
    q.n = n;
    return q;
}

/* ---- routes ---- */

static void test_routes_match_handlers(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        eg_handler want;
        int64_t id;
    } cases[] = {
        {"POST", "/v1/jobs", eg_api_jobs_post, 0},
        {"GET", "/v1/jobs", eg_api_jobs_list, 0},
        {"HEAD", "/v1/jobs", eg_api_jobs_list, 0},
        {"GET", "/v1/jobs/1", eg_api_job_get, 1},
        {"GET", "/v1/jobs/9223372036854775807", eg_api_job_get, INT64_MAX},
        {"DELETE", "/v1/jobs/42", eg_api_job_delete, 42},
        {"GET", "/v1/jobs/7/steps", eg_api_steps_get, 7},
        {"GET", "/v1/jobs/7/evals", eg_api_evals_get, 7},
        {"GET", "/v1/jobs/7/events", eg_api_events_get, 7},
        {"POST", "/v1/jobs/8/cancel", eg_api_job_cancel, 8},
        {"GET", "/v1/devices", eg_api_devices_get, 0},
        {"GET", "/v1/workers", eg_api_workers_get, 0},
        {"GET", "/v1/events", eg_api_all_events_get, 0},
        {"POST", "/v1/sweeps", eg_api_sweeps_post, 0},
        {"GET", "/v1/sweeps", eg_api_sweeps_list, 0},
        {"GET", "/v1/sweeps/3", eg_api_sweep_get, 3},
        {"DELETE", "/v1/sweeps/3", eg_api_sweep_delete, 3},
        {"POST", "/v1/sweeps/4/cancel", eg_api_sweep_cancel, 4},
        {"GET", "/healthz", eg_api_health_get, 0},
        {"HEAD", "/healthz", eg_api_health_get, 0},
        {"GET", "/metrics", eg_api_metrics_get, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const eg_route *r = NULL;
        int64_t id = -5;
        char allow[48];
        eg_match_kind m =
            eg_route_match(cases[i].method, cases[i].path, &r, &id, allow, sizeof allow);
        if (m != EG_MATCH_OK) fail_msg("%s %s: no match (%d)", cases[i].method, cases[i].path, m);
        if (r->handler != cases[i].want)
            fail_msg("%s %s: the wrong handler", cases[i].method, cases[i].path);
        assert_int_equal(id, cases[i].id);
    }
    /* Every route in the table is reachable; only /healthz and the page's
     * files are public. */
    int n = 0;
    for (const eg_route *r = eg_routes; r->method; r++, n++) {
        assert_non_null(r->handler);
        int page = strcmp(r->pattern, "/") == 0 || strncmp(r->pattern, "/ui/", 4) == 0;
        assert_int_equal(!!(r->flags & EG_ROUTE_PUBLIC),
                         strcmp(r->pattern, "/healthz") == 0 || page);
        assert_true(!page || r->handler == eg_api_ui_get);
    }
    assert_int_equal(n, 24);
}

static void test_routes_405_allow(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"PUT", "/v1/jobs/1", "GET, HEAD, DELETE"},
        {"POST", "/v1/jobs/1", "GET, HEAD, DELETE"},
        {"DELETE", "/v1/jobs", "POST, GET, HEAD"},
        {"PATCH", "/v1/jobs", "POST, GET, HEAD"},
        {"GET", "/v1/jobs/3/cancel", "POST"},
        {"HEAD", "/v1/jobs/3/cancel", "POST"},
        {"POST", "/v1/jobs/3/steps", "GET, HEAD"},
        {"DELETE", "/healthz", "GET, HEAD"},
        {"OPTIONS", "/metrics", "GET, HEAD"},
        {"get", "/v1/devices", "GET, HEAD"}, /* methods are case-sensitive */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const eg_route *r;
        int64_t id;
        char allow[48];
        eg_match_kind m =
            eg_route_match(cases[i].method, cases[i].path, &r, &id, allow, sizeof allow);
        if (m != EG_MATCH_BAD_METHOD)
            fail_msg("%s %s: %d, expected 405", cases[i].method, cases[i].path, m);
        assert_string_equal(allow, cases[i].allow);
    }
}

static void test_routes_404(void **state)
{
    (void)state;
    static const char *const no_route[] = {
        "",           "/ui",        "/v1",           "/v1/",           "/v1/jobs/",
        "//v1/jobs",  "/v1//jobs",  "/v1/jobs//steps", "/v1/jobs/1/",  "/v1/jobs/1/steps/",
        "/v1/jobs/1/steps/2", "/v1/JOBS", "/v2/jobs", "/healthz/", "/healthzz", "/v1/jobs/1/x",
        "/v1/devices/cpu", "/metrics/x", "v1/jobs", "/v1/jobsx", "/ui/", "/ui/app.jsx", "/index.html",
    };
    static const char *const bad_id[] = {
        "/v1/jobs/abc", "/v1/jobs/-1", "/v1/jobs/0", "/v1/jobs/+1", "/v1/jobs/ 1",
        "/v1/jobs/1.0", "/v1/jobs/0x10", "/v1/jobs/99999999999999999999",
        "/v1/jobs/9223372036854775808", "/v1/jobs/1e3/steps", "/v1/jobs/abc/cancel",
        "/v1/jobs/-1/events", "/v1/jobs/12345678901234567890123456789",
    };
    for (size_t i = 0; i < sizeof no_route / sizeof *no_route; i++) {
        const eg_route *r;
        int64_t id;
        char allow[48];
        eg_match_kind m = eg_route_match("GET", no_route[i], &r, &id, allow, sizeof allow);
        if (m != EG_MATCH_NO_ROUTE) fail_msg("\"%s\": %d, expected no route", no_route[i], m);
    }
    for (size_t i = 0; i < sizeof bad_id / sizeof *bad_id; i++) {
        const eg_route *r;
        int64_t id;
        char allow[48];
        eg_match_kind m = eg_route_match("GET", bad_id[i], &r, &id, allow, sizeof allow);
        if (m != EG_MATCH_BAD_ID) fail_msg("\"%s\": %d, expected a bad id", bad_id[i], m);
        /* Any method: a bad id is a 404, not a 405. */
        m = eg_route_match("PUT", bad_id[i], &r, &id, allow, sizeof allow);
        if (m != EG_MATCH_BAD_ID) fail_msg("PUT \"%s\": %d, expected a bad id", bad_id[i], m);
    }
}

/* ---- ids and integers ---- */

static void test_parse_id(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t want;
    } good[] = {
        {"1", 1}, {"42", 42}, {"007", 7}, {"9223372036854775807", INT64_MAX},
        {"1000000000000000000", 1000000000000000000LL},
    };
    static const char *const bad[] = {
        "", "0", "00", "-1", "-0", "+1", " 1", "1 ", "1a", "a1", "abc", "1.5", "1e3", "0x1f",
        "9223372036854775808", "99999999999999999999", "18446744073709551616",
        "00000000000000000001", /* 20 digits */
        "-9223372036854775808",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        int64_t id = 0;
        if (eg_parse_id(good[i].text, &id) != 0) fail_msg("\"%s\" refused", good[i].text);
        assert_int_equal(id, good[i].want);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t id = 123;
        if (eg_parse_id(bad[i], &id) == 0) fail_msg("\"%s\" taken as %lld", bad[i], (long long)id);
        assert_int_equal(id, 123); /* untouched */
    }
    assert_int_equal(eg_parse_id(NULL, &(int64_t){0}), -1);
}

static void test_parse_int(void **state)
{
    (void)state;
    long long v;
    assert_int_equal(eg_parse_int("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(eg_parse_int("-1", -1, 10, &v), 0);
    assert_int_equal(v, -1);
    assert_int_equal(eg_parse_int("10", 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(eg_parse_int("11", 0, 10, &v), -1);
    assert_int_equal(eg_parse_int("-2", -1, 10, &v), -1);
    assert_int_equal(eg_parse_int("9223372036854775807", LLONG_MIN, LLONG_MAX, &v), 0);
    assert_true(v == LLONG_MAX);
    assert_int_equal(eg_parse_int("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v), 0);
    assert_true(v == LLONG_MIN);
    static const char *const bad[] = {"", "-", "--1", "+5", " 5", "5 ", "5x", "0x5", "1e2",
                                      "9223372036854775808", "-9223372036854775809",
                                      "123456789012345678901234567890"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (eg_parse_int(bad[i], LLONG_MIN, LLONG_MAX, &v) == 0)
            fail_msg("\"%s\" taken as %lld", bad[i], v);
}

/* ---- query parameters ---- */

static void test_query_check(void **state)
{
    (void)state;
    static const char *const known[] = {"after", "limit", NULL};
    static const char *const none[] = {NULL};
    eg_reply rp = {0};

    const char *ok[] = {"limit", "5", "after", "3"};
    eg_query q = query_of(2, ok);
    assert_int_equal(eg_query_check(&q, known, &rp), 0);
    assert_string_equal(eg_query_get(&q, "after"), "3");
    assert_null(eg_query_get(&q, "state"));

    const char *unknown[] = {"limit", "5", "colour", "red"};
    q = query_of(2, unknown);
    assert_int_equal(eg_query_check(&q, known, &rp), -1);
    assert_error(&rp, 400, "invalid_parameter", "colour");
    eg_reply_clear(&rp);

    q = query_of(1, ok);
    assert_int_equal(eg_query_check(&q, none, &rp), -1);
    assert_error(&rp, 400, "invalid_parameter", "limit");
    eg_reply_clear(&rp);

    const char *twice[] = {"limit", "5", "limit", "6"};
    q = query_of(2, twice);
    assert_int_equal(eg_query_check(&q, known, &rp), -1);
    assert_error(&rp, 400, "invalid_parameter", "limit");
    eg_reply_clear(&rp);

    q = query_of(0, NULL);
    q.too_many = 1;
    assert_int_equal(eg_query_check(&q, known, &rp), -1);
    assert_error(&rp, 400, "invalid_parameter", NULL);
    eg_reply_clear(&rp);
}

static void test_query_int(void **state)
{
    (void)state;
    eg_reply rp = {0};
    long long v = -7;
    eg_query q = query_of(0, NULL);
    assert_int_equal(eg_query_int(&q, "limit", 1, 1000, 100, &v, &rp), 0);
    assert_int_equal(v, 100); /* the default when absent */
    assert_int_equal(rp.status, 0);

    static const struct {
        const char *value;
        int ok;
        long long want;
    } cases[] = {
        {"1", 1, 1},     {"1000", 1, 1000}, {"0", 0, 0},      {"1001", 0, 0},
        {"-1", 0, 0},    {"", 0, 0},        {"abc", 0, 0},    {"10abc", 0, 0},
        {"1.5", 0, 0},   {" 5", 0, 0},      {"99999999999999999999", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *kv[] = {"limit", cases[i].value};
        q = query_of(1, kv);
        v = -7;
        int rc = eg_query_int(&q, "limit", 1, 1000, 100, &v, &rp);
        if (cases[i].ok) {
            if (rc != 0) fail_msg("limit=%s refused", cases[i].value);
            assert_int_equal(v, cases[i].want);
        } else {
            if (rc == 0) fail_msg("limit=%s taken", cases[i].value);
            assert_error(&rp, 400, "invalid_parameter", "limit");
            eg_reply_clear(&rp);
        }
    }
}

/* ---- replies ---- */

static void test_error_body(void **state)
{
    (void)state;
    eg_reply rp = {0};
    eg_reply_error(&rp, 409, "conflict", NULL, "job %d is %s", 3, "running");
    assert_error(&rp, 409, "conflict", NULL);
    assert_string_equal(err_message(&rp), "job 3 is running");
    assert_int_equal(rp.www_authenticate, 0);

    eg_reply_error(&rp, 400, "invalid_job", "", "no field");
    assert_error(&rp, 400, "invalid_job", NULL);

    eg_reply_error(&rp, 400, "invalid_job", "evograd.sigma", "bad");
    assert_error(&rp, 400, "invalid_job", "evograd.sigma");

    eg_reply_error(&rp, 401, "unauthorized", NULL, "no token");
    assert_error(&rp, 401, "unauthorized", NULL);
    assert_int_equal(rp.www_authenticate, 1);

    /* Bytes from a URL that are not UTF-8 still give a JSON body. */
    eg_reply_error(&rp, 404, "not_found", "k\xff", "no such resource: /\xc3\x28\x80");
    assert_error(&rp, 404, "not_found", "k?");
    assert_null(strchr(err_message(&rp), '\xff'));
    char *text = json_dumps(rp.body, JSON_COMPACT);
    assert_non_null(text);
    json_t *back = json_loads(text, 0, NULL);
    assert_non_null(back);
    json_decref(back);
    free(text);

    eg_reply_json(&rp, 201, json_pack("{s:i}", "id", 5));
    assert_int_equal(rp.status, 201);
    assert_int_equal(json_integer_value(json_object_get(rp.body, "id")), 5);
    eg_reply_json(&rp, 200, NULL);
    assert_error(&rp, 500, "internal", NULL);
    eg_reply_clear(&rp);
    assert_null(rp.body);
    assert_int_equal(rp.status, 0);
}

/* ---- authentication and content types ---- */

static void test_auth(void **state)
{
    (void)state;
    assert_true(eg_const_time_equal("abc", 3, "abc", 3));
    assert_false(eg_const_time_equal("abd", 3, "abc", 3));
    assert_false(eg_const_time_equal("ab", 2, "abc", 3));
    assert_false(eg_const_time_equal("abcd", 4, "abc", 3));
    assert_false(eg_const_time_equal("", 0, "abc", 3));
    assert_false(eg_const_time_equal("abcabc", 6, "abc", 3));

    const char *tok = "s3cr3t-T0ken";
    assert_true(eg_auth_ok("Bearer s3cr3t-T0ken", tok));
    assert_true(eg_auth_ok("bearer s3cr3t-T0ken", tok)); /* the scheme is case-insensitive */
    assert_true(eg_auth_ok("Bearer   s3cr3t-T0ken  ", tok));
    assert_false(eg_auth_ok(NULL, tok));
    assert_false(eg_auth_ok("", tok));
    assert_false(eg_auth_ok("Bearer", tok));
    assert_false(eg_auth_ok("Bearer ", tok));
    assert_false(eg_auth_ok("Bearers3cr3t-T0ken", tok));
    assert_false(eg_auth_ok("Basic s3cr3t-T0ken", tok));
    assert_false(eg_auth_ok("Bearer s3cr3t-T0kem", tok));
    assert_false(eg_auth_ok("Bearer s3cr3t-T0ke", tok));
    assert_false(eg_auth_ok("Bearer s3cr3t-T0kenX", tok));
    assert_false(eg_auth_ok("Bearer S3CR3T-T0KEN", tok)); /* the token is not */
    /* No token configured: everything passes. */
    assert_true(eg_auth_ok(NULL, ""));
    assert_true(eg_auth_ok("Bearer whatever", NULL));
}

static void test_json_type(void **state)
{
    (void)state;
    assert_true(eg_is_json_type("application/json"));
    assert_true(eg_is_json_type("Application/JSON"));
    assert_true(eg_is_json_type("application/json; charset=utf-8"));
    assert_true(eg_is_json_type(" application/json ;charset=UTF-8"));
    assert_false(eg_is_json_type(NULL));
    assert_false(eg_is_json_type(""));
    assert_false(eg_is_json_type("text/plain"));
    assert_false(eg_is_json_type("application/jsonx"));
    assert_false(eg_is_json_type("application/json-patch+json"));
    assert_false(eg_is_json_type("application/x-www-form-urlencoded"));
    assert_false(eg_is_json_type("multipart/form-data; boundary=x"));
}

/* ---- dispatch ---- */

static eg_reply dispatch(eg_api_ctx *ctx, const char *method, const char *path,
                         const char *authorization)
{
    eg_request rq = {.ctx = ctx, .method = method, .path = path, .authorization = authorization};
    eg_reply rp = {0};
    called = NULL;
    eg_api_dispatch(&rq, &rp);
    return rp;
}

static void test_dispatch(void **state)
{
    (void)state;
    static eg_api_ctx ctx; /* no store: only the recorders run */
    ctx.token = "tok";

    /* The token guards every route but /healthz, known or not. */
    eg_reply rp = dispatch(&ctx, "GET", "/v1/jobs", NULL);
    assert_error(&rp, 401, "unauthorized", NULL);
    assert_int_equal(rp.www_authenticate, 1);
    assert_null(called);
    eg_reply_clear(&rp);
    rp = dispatch(&ctx, "GET", "/v1/jobs/3", "Bearer nope");
    assert_error(&rp, 401, "unauthorized", NULL);
    assert_null(called);
    eg_reply_clear(&rp);
    rp = dispatch(&ctx, "GET", "/nowhere", NULL);
    assert_error(&rp, 401, "unauthorized", NULL);
    eg_reply_clear(&rp);
    rp = dispatch(&ctx, "PUT", "/v1/jobs", NULL);
    assert_error(&rp, 401, "unauthorized", NULL);
    eg_reply_clear(&rp);

    rp = dispatch(&ctx, "GET", "/healthz", NULL);
    assert_int_equal(rp.status, 200);
    assert_string_equal(called, "eg_api_health_get");
    eg_reply_clear(&rp);

    rp = dispatch(&ctx, "GET", "/v1/jobs/12/steps", "Bearer tok");
    assert_int_equal(rp.status, 200);
    assert_string_equal(called, "eg_api_steps_get");
    assert_int_equal(called_id, 12);
    eg_reply_clear(&rp);

    rp = dispatch(&ctx, "GET", "/nowhere", "Bearer tok");
    assert_error(&rp, 404, "not_found", NULL);
    assert_null(called);
    eg_reply_clear(&rp);

    rp = dispatch(&ctx, "GET", "/v1/jobs/abc", "Bearer tok");
    assert_error(&rp, 404, "not_found", NULL);
    eg_reply_clear(&rp);

    rp = dispatch(&ctx, "PUT", "/v1/jobs/5", "Bearer tok");
    assert_error(&rp, 405, "method_not_allowed", NULL);
    assert_string_equal(rp.allow, "GET, HEAD, DELETE");
    assert_null(called);
    eg_reply_clear(&rp);

    /* Without a token configured, no header is needed. */
    ctx.token = "";
    rp = dispatch(&ctx, "POST", "/v1/jobs/9/cancel", NULL);
    assert_int_equal(rp.status, 200);
    assert_string_equal(called, "eg_api_job_cancel");
    assert_int_equal(called_id, 9);
    eg_reply_clear(&rp);
}

/* ---- POST bodies ---- */

static const char *const cpu_only[] = {"cpu", NULL};

/* The body through eg_api_job_from_body with data roots `roots`
 * (':'-separated, "" for none). */
static eg_reply body_to_job(const char *type, const char *body, const char *roots,
                            eg_job *job, int want_rc)
{
    eg_reply rp = {0};
    eg_data_roots r;
    if (eg_data_roots_parse(roots, &r) != 0) fail_msg("roots %s: %s", roots, eg_last_error());
    int rc = eg_api_job_from_body(type, body, body ? strlen(body) : 0, &r, cpu_only, job, &rp);
    if (rc != want_rc)
        fail_msg("%s: rc %d, expected %d (%s)", body ? body : "(no body)", rc, want_rc,
                 err_message(&rp) ? err_message(&rp) : "");
    return rp;
}

static void test_job_from_body(void **state)
{
    (void)state;
    eg_job job;
    eg_reply rp = body_to_job(NULL, "{\"task\":\"toy1d\"}", "", &job, -1);
    assert_error(&rp, 415, "unsupported_media_type", NULL);
    eg_reply_clear(&rp);
    rp = body_to_job("text/plain", "{\"task\":\"toy1d\"}", "", &job, -1);
    assert_error(&rp, 415, "unsupported_media_type", NULL);
    eg_reply_clear(&rp);

    static const struct {
        const char *body, *field;
    } bad[] = {
        {"", NULL},
        {NULL, NULL},
        {"{\"task\":", NULL},
        {"{\"task\":\"toy1d\",\"task\":\"mwn\"}", NULL}, /* duplicate key */
        {"[1,2]", NULL},
        {"{}", "task"},
        {"{\"task\":\"cartpole\"}", "task"},
        {"{\"task\":\"toy1d\",\"evograd\":{\"k\":1}}", "evograd.k"},
        {"{\"task\":\"rotation\",\"colour\":1}", "colour"},
        {"{\"task\":\"rotation\",\"device\":\"cuda\"}", "device"},
        {"{\"task\":\"rotation\",\"device\":\"cuda:1\"}", "device"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rp = body_to_job("application/json", bad[i].body, "", &job, -1);
        assert_error(&rp, 400, "invalid_job", bad[i].field);
        eg_reply_clear(&rp);
    }

    rp = body_to_job("application/json; charset=utf-8", "{\"task\":\"toy1d\",\"steps\":7}", "",
                     &job, 0);
    assert_string_equal(job.task->name, "toy1d");
    assert_int_equal(job.steps, 7);
    assert_int_equal(rp.status, 0);
    rp = body_to_job("application/json", "{\"task\":\"toy1d\",\"device\":\"auto\"}", "", &job, 0);
    assert_string_equal(job.device, "auto");
}

static void touch(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);
}

/* A job body on dataset `name` with dataset.path `path` (NULL: none). */
static const char *dataset_body(const char *name, const char *path)
{
    static char body[1400];
    if (path)
        snprintf(body, sizeof body,
                 "{\"task\":\"rotation\",\"dataset\":{\"name\":\"%s\",\"path\":\"%s\"}}",
                 name, path);
    else
        snprintf(body, sizeof body, "{\"task\":\"rotation\",\"dataset\":{\"name\":\"%s\"}}",
                 name);
    return body;
}

/* Refused with 400 on dataset.path and a message holding `says`. */
static void refused_path(const char *body, const char *roots, const char *says)
{
    eg_job job;
    eg_reply rp = body_to_job("application/json", body, roots, &job, -1);
    assert_error(&rp, 400, "invalid_job", "dataset.path");
    const char *m = err_message(&rp);
    if (!m || !strstr(m, says)) fail_msg("%s: \"%s\" lacks \"%s\"", body, m ? m : "", says);
    eg_reply_clear(&rp);
}

static void test_data_roots(void **state)
{
    (void)state;
    /* Two roots: A with mnist/ (IDX files) and a cifar10 set in itself,
     * B with a symbolic link leading out of both; and a folder outside. */
    char a[600], b[600], out[600], sub[700], link[700], dotdot[700], roots[1300];
    const char *tmp = tu_tmpdir();
    snprintf(a, sizeof a, "%s/rootA", tmp);
    snprintf(b, sizeof b, "%s/rootB", tmp);
    snprintf(out, sizeof out, "%s/outside", tmp);
    snprintf(sub, sizeof sub, "%s/mnist", a);
    snprintf(link, sizeof link, "%s/escape", b);
    assert_int_equal(mkdir(a, 0755), 0);
    assert_int_equal(mkdir(b, 0755), 0);
    assert_int_equal(mkdir(out, 0755), 0);
    assert_int_equal(mkdir(sub, 0755), 0);
    touch(sub, "train-images-idx3-ubyte.gz");
    touch(sub, "train-labels-idx1-ubyte.gz");
    touch(a, "data_batch_1.bin");
    touch(out, "train-images-idx3-ubyte");
    touch(out, "train-labels-idx1-ubyte");
    assert_int_equal(symlink(out, link), 0);
    snprintf(roots, sizeof roots, "%s:%s", a, b);
    eg_job job;
    eg_reply rp;

    /* No path: the first root's NAME/ subfolder, else a root that holds
     * the files itself. */
    rp = body_to_job("application/json", dataset_body("mnist", NULL), roots, &job, 0);
    assert_string_equal(job.dataset.path, sub);
    rp = body_to_job("application/json",
                     "{\"task\":\"mwn\",\"dataset\":{\"name\":\"cifar10\"}}", roots, &job, 0);
    assert_string_equal(job.dataset.path, a);
    /* A good path inside, relative (looked for under each root) or
     * absolute; stored resolved. */
    rp = body_to_job("application/json", dataset_body("mnist", "mnist"), roots, &job, 0);
    assert_string_equal(job.dataset.path, sub);
    char messy[800];
    snprintf(messy, sizeof messy, "%s/./mnist/../mnist", a);
    rp = body_to_job("application/json", dataset_body("mnist", messy), roots, &job, 0);
    assert_string_equal(job.dataset.path, sub);
    /* toy1d has no dataset; no roots are needed for it. */
    rp = body_to_job("application/json", "{\"task\":\"toy1d\"}", "", &job, 0);
    assert_string_equal(job.dataset.path, "");
    assert_int_equal(rp.status, 0);

    /* Traversal, absolute paths outside, a link leading out, a missing
     * folder, a file, and no root holding the dataset. */
    refused_path(dataset_body("mnist", "../outside"), roots, "outside the daemon's data folders");
    snprintf(dotdot, sizeof dotdot, "%s/../outside", a);
    refused_path(dataset_body("mnist", dotdot), roots, "outside the daemon's data folders");
    refused_path(dataset_body("mnist", out), roots, "outside the daemon's data folders");
    refused_path(dataset_body("mnist", "/etc"), roots, "outside the daemon's data folders");
    refused_path(dataset_body("mnist", "escape"), roots, "outside the daemon's data folders");
    refused_path(dataset_body("mnist", link), roots, "outside the daemon's data folders");
    refused_path(dataset_body("mnist", "kmnist"), roots, "does not exist");
    refused_path(dataset_body("mnist", "/nonexistent/mnist"), roots, "does not exist");
    refused_path(dataset_body("cifar10", "data_batch_1.bin"), roots, "is not a folder");
    refused_path(dataset_body("cifar100", NULL), roots, "holds cifar100");
    refused_path(dataset_body("mnist", NULL), "", "none: start the daemon with --data-dir");
    refused_path(dataset_body("mnist", sub), "", "outside the daemon's data folders");

    /* Splits are checked against the data's size at submission: a range
     * past the 90 images of a small IDX set is refused naming it. */
    char small[700];
    snprintf(small, sizeof small, "%s/small", b);
    assert_int_equal(mkdir(small, 0755), 0);
    if (synth_idx(small, "", 90, 10, 28, 28, 0, 10, 1) != 0) fail_msg("%s", eg_last_error());
    rp = body_to_job("application/json",
                     "{\"task\":\"rotation\",\"dataset\":{\"name\":\"idx\",\"path\":\"small\","
                     "\"splits\":{\"validation\":[80,100]}}}", roots, &job, -1);
    assert_error(&rp, 400, "invalid_job", "dataset.splits.validation");
    assert_non_null(strstr(err_message(&rp), "passes the 90 samples"));
    eg_reply_clear(&rp);
    rp = body_to_job("application/json",
                     "{\"task\":\"rotation\",\"dataset\":{\"name\":\"idx\",\"path\":\"small\","
                     "\"splits\":{\"validation\":[70,90]}}}", roots, &job, 0);
    assert_string_equal(job.dataset.path, small);

    /* A task's own paths (lft's domains) go through the roots too, the
     * field named in the error: a dataset found under a root, image files
     * resolved, one outside refused. */
    char lft[1600];
    snprintf(lft, sizeof lft,
             "{\"task\":\"lft\",\"lft\":{\"seen\":[{\"dataset\":\"idx\",\"path\":\"small\"},"
             "{\"dataset\":\"images\",\"path\":\"%s/.\"}],"
             "\"unseen\":{\"dataset\":\"mnist\"}}}", sub);
    rp = body_to_job("application/json", lft, roots, &job, 0);
    const eg_lft_spec *ls = EG_JOB_SECTION(&job, const eg_lft_spec);
    assert_string_equal(ls->seen[0].path, small);
    assert_string_equal(ls->seen[1].path, sub);
    assert_string_equal(ls->unseen.path, sub);
    snprintf(lft, sizeof lft,
             "{\"task\":\"lft\",\"lft\":{\"seen\":[{\"dataset\":\"idx\",\"path\":\"small\"},"
             "{\"dataset\":\"images\",\"path\":\"/etc\"}]}}");
    rp = body_to_job("application/json", lft, roots, &job, -1);
    assert_error(&rp, 400, "invalid_job", "lft.seen[1].path");
    assert_non_null(strstr(err_message(&rp), "outside the daemon's data folders"));
    eg_reply_clear(&rp);

    /* ner's files and checkpoint folder as well: a file under a root
     * resolved, /etc/passwd refused naming the field. */
    char ner[1600], conll[800];
    snprintf(conll, sizeof conll, "%s/src.txt", b);
    FILE *f = fopen(conll, "w");
    fputs("Anna\tB-PER\n", f);
    fclose(f);
    snprintf(ner, sizeof ner,
             "{\"task\":\"ner\",\"ner\":{\"data\":\"files\",\"source\":\"src.txt\","
             "\"target_train\":\"%s\",\"target_dev\":\"src.txt\",\"target_test\":\"src.txt\"}}",
             conll);
    rp = body_to_job("application/json", ner, roots, &job, 0);
    const eg_ner_spec *ns = EG_JOB_SECTION(&job, const eg_ner_spec);
    assert_string_equal(ns->source, conll);
    assert_string_equal(ns->target_train, conll);
    snprintf(ner, sizeof ner,
             "{\"task\":\"ner\",\"ner\":{\"data\":\"files\",\"source\":\"src.txt\","
             "\"target_train\":\"src.txt\",\"target_dev\":\"/etc/passwd\","
             "\"target_test\":\"src.txt\"}}");
    rp = body_to_job("application/json", ner, roots, &job, -1);
    assert_error(&rp, 400, "invalid_job", "ner.target_dev");
    assert_non_null(strstr(err_message(&rp), "outside the daemon's data folders"));
    eg_reply_clear(&rp);
    rp = body_to_job("application/json",
                     "{\"task\":\"ner\",\"ner\":{\"model\":\"xlmr\",\"checkpoint\":\"/etc\"}}",
                     roots, &job, -1);
    assert_error(&rp, 400, "invalid_job", "ner.checkpoint");
    eg_reply_clear(&rp);

    /* Roots themselves must exist. */
    eg_data_roots r;
    tu_fails_with(eg_data_roots_parse("/nonexistent/data", &r), "/nonexistent/data");
}

/* ---- serve options ---- */

/* Sets one option; checks the outcome and, on refusal, that the message
 * names the option. */
static void set_expect(eg_serve_opts *o, const char *name, const char *value, int ok)
{
    eg_clear_error();
    int rc = eg_serve_opts_set(o, name, value);
    if (ok && rc != 0) fail_msg("%s = \"%s\" refused: %s", name, value, eg_last_error());
    if (!ok) {
        if (rc == 0) fail_msg("%s = \"%s\" taken", name, value);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s: ", name);
        if (strncmp(eg_last_error(), prefix, strlen(prefix)) != 0)
            fail_msg("%s = \"%s\": message \"%s\" does not name the option", name, value,
                     eg_last_error());
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_options_defaults(void **state)
{
    (void)state;
    static eg_serve_opts o;
    unsetenv("STATE_DIRECTORY");
    char *argv[] = {"serve", NULL};
    assert_int_equal(eg_serve_opts_parse(&o, 1, argv), 0);
    assert_string_equal(o.listen, "127.0.0.1:8080");
    const struct sockaddr_in *a = (const struct sockaddr_in *)&o.addr;
    assert_int_equal(a->sin_family, AF_INET);
    assert_int_equal(ntohs(a->sin_port), 8080);
    assert_int_equal(ntohl(a->sin_addr.s_addr), 0x7f000001);
    assert_int_equal(o.addr_len, sizeof(struct sockaddr_in));
    assert_string_equal(o.db, "./var/evograd.db");
    assert_string_equal(o.checkpoint_dir, "./var/checkpoints");
    /* The data roots default to Debian's dataset folder where it exists. */
    struct stat st;
    int have_default = stat(EG_DEFAULT_DATA_ROOT, &st) == 0 && S_ISDIR(st.st_mode);
    assert_string_equal(o.data_dir, have_default ? EG_DEFAULT_DATA_ROOT : "");
    assert_int_equal(o.data_roots.n, have_default);
    /* "auto": every GPU, or the CPU on a machine without one. */
    assert_string_equal(o.devices, "auto");
    assert_string_equal(o.device_list[0], eg_gpu_count() ? "cuda:0" : "cpu");
    if (!eg_gpu_count()) assert_null(o.device_list[1]);
    assert_string_equal(o.token, "");
    assert_int_equal(o.checkpoint_every, 200);
    assert_int_equal(o.level, EG_LOG_INFO);

    /* Under systemd the db goes to the (first) state directory. */
    setenv("STATE_DIRECTORY", "/var/lib/evograd:/var/lib/other", 1);
    assert_int_equal(eg_serve_opts_parse(&o, 1, argv), 0);
    assert_string_equal(o.db, "/var/lib/evograd/evograd.db");
    assert_string_equal(o.checkpoint_dir, "/var/lib/evograd/checkpoints");
    /* ... unless --db says otherwise. */
    char *argv2[] = {"serve", "--db", "x.db", NULL};
    assert_int_equal(eg_serve_opts_parse(&o, 3, argv2), 0);
    assert_string_equal(o.db, "x.db");
    assert_string_equal(o.checkpoint_dir, "checkpoints");
    unsetenv("STATE_DIRECTORY");

    /* Every option has help, and its default (when it has one) passes its
     * own validator. */
    for (const eg_option *opt = eg_serve_options; opt->name; opt++) {
        assert_non_null(opt->help);
        assert_non_null(opt->set);
        if (opt->def) set_expect(&o, opt->name, opt->def, 1);
    }
}

/* Values each option refuses and takes. Every option of the table must
 * appear here, so a new option comes with its own checks. */
static void test_options_values(void **state)
{
    (void)state;
    static eg_serve_opts o;
    char dir[512], token_ok[600], token_empty[600], token_blank[600], token_space[600],
        plain_file[600], missing[600];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(token_ok, sizeof token_ok, "%s/token", dir);
    snprintf(token_empty, sizeof token_empty, "%s/empty", dir);
    snprintf(token_blank, sizeof token_blank, "%s/blank", dir);
    snprintf(token_space, sizeof token_space, "%s/space", dir);
    snprintf(plain_file, sizeof plain_file, "%s/file", dir);
    snprintf(missing, sizeof missing, "%s/missing", dir);
    write_file(token_ok, "  abc123  \r\nsecond line ignored\n");
    write_file(token_empty, "");
    write_file(token_blank, "\nabc\n");
    write_file(token_space, "two words\n");
    write_file(plain_file, "x");

    const struct {
        const char *name;
        const char *good[8];
        const char *bad[12];
    } cases[] = {
        {"listen",
         {"127.0.0.1:8080", "0.0.0.0:1", "10.1.2.3:65535", "[::1]:8080", "[::]:80",
          "[fe80::1]:443"},
         {"", "8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
          "127.0.0.1:-1", "127.0.0.1:80x", "localhost:8080", "::1:8080", "[::1]8080",
          "[zz::1]:80"}},
        {"db",
         {"x.db", "/tmp/a/b.db", "postgresql://evo@db.lab/evograd",
          "host=/run/postgresql dbname=evograd"},
         {""}},
        {"data-dir", {dir, ""}, {missing, plain_file}},
        {"devices", {"cpu", " cpu ", "auto"},
         {"", "cuda:99", "gpu", "cpu,cpu", "cpu,", ",cpu", "CPU", "cuda:x", "auto,auto"}},
        {"token-file", {token_ok}, {"", missing, token_empty, token_blank, token_space, dir}},
        {"checkpoint-dir", {"ckpt", "/tmp/x"}, {""}},
        {"worker-name", {"gpu-box-1", "h:8080"}, {""}},
        {"lease-seconds", {"1", "30", "3600"}, {"0", "3601", "", "x"}},
        {"max-lost-leases", {"1", "3", "100"}, {"0", "101", "", "x"}},
        {"checkpoint-every", {"1", "200", "1000000"},
         {"0", "-1", "1000001", "", "abc", "1e6", "2.5", " 5", "99999999999999999999"}},
        {"log-level", {"debug", "info", "warn", "error"}, {"", "INFO", "verbose", "warning"}},
    };
    size_t n_cases = sizeof cases / sizeof *cases;
    for (const eg_option *opt = eg_serve_options; opt->name; opt++) {
        size_t i = 0;
        while (i < n_cases && strcmp(cases[i].name, opt->name) != 0) i++;
        if (i == n_cases) fail_msg("option %s has no checks in this test", opt->name);
    }
    for (size_t i = 0; i < n_cases; i++) {
        eg_serve_opts_init(&o);
        for (int j = 0; j < 8 && cases[i].good[j]; j++)
            set_expect(&o, cases[i].name, cases[i].good[j], 1);
        for (int j = 0; j < 12 && cases[i].bad[j]; j++)
            set_expect(&o, cases[i].name, cases[i].bad[j], 0);
    }
    /* GPUs are taken exactly when the machine has them. */
    const char *gpu_names[] = {"cuda", "cuda:0", "cpu,cuda:0", " cuda:0 , cpu"};
    for (size_t i = 0; i < sizeof gpu_names / sizeof *gpu_names; i++) {
        eg_serve_opts_init(&o);
        set_expect(&o, "devices", gpu_names[i], eg_gpu_count() > 0);
    }

    /* Integer options: exactly their bounds. */
    for (const eg_option *opt = eg_serve_options; opt->name; opt++) {
        if (!opt->lo && !opt->hi) continue;
        char text[32];
        eg_serve_opts_init(&o);
        snprintf(text, sizeof text, "%lld", opt->lo - 1);
        set_expect(&o, opt->name, text, 0);
        snprintf(text, sizeof text, "%lld", opt->hi + 1);
        set_expect(&o, opt->name, text, 0);
        snprintf(text, sizeof text, "%lld", opt->lo);
        set_expect(&o, opt->name, text, 1);
        snprintf(text, sizeof text, "%lld", opt->hi);
        set_expect(&o, opt->name, text, 1);
    }

    /* What the values became. */
    eg_serve_opts_init(&o);
    set_expect(&o, "token-file", token_ok, 1);
    assert_string_equal(o.token, "abc123");
    set_expect(&o, "listen", "[::1]:9090", 1);
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&o.addr;
    assert_int_equal(a6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(a6->sin6_port), 9090);
    assert_int_equal(o.addr_len, sizeof(struct sockaddr_in6));
    assert_true(IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr));
    set_expect(&o, "checkpoint-every", "1000000", 1);
    assert_int_equal(o.checkpoint_every, 1000000);
    set_expect(&o, "log-level", "warn", 1);
    assert_int_equal(o.level, EG_LOG_WARN);
    /* A refused value leaves the earlier one. */
    set_expect(&o, "checkpoint-every", "0", 0);
    assert_int_equal(o.checkpoint_every, 1000000);
    set_expect(&o, "listen", "nowhere", 0);
    assert_string_equal(o.listen, "[::1]:9090");

    /* Unknown names. */
    assert_int_equal(eg_serve_opts_set(&o, "colour", "red"), -1);
    assert_non_null(strstr(eg_last_error(), "colour"));
    tu_fails_with(eg_serve_opts_set(&o, "config", "x"), "config: only given on the command line");
}

static void test_options_config_file(void **state)
{
    (void)state;
    static eg_serve_opts o;
    char dir[512], conf[600], bad[600], token[600], line[2400];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(conf, sizeof conf, "%s/evograd.conf", dir);
    snprintf(bad, sizeof bad, "%s/bad.conf", dir);
    snprintf(token, sizeof token, "%s/token", dir);
    write_file(token, "from-file\n");
    snprintf(line, sizeof line,
             "# evogradd serve options\n"
             "\n"
             "listen = 127.0.0.2:9000\n"
             "   db=%s/jobs.db   \n"
             "\t# an indented comment\n"
             "checkpoint-every = 50\n"
             "log-level = \"debug\"\n"
             "token-file = %s\n"
             "data-dir = %s\n",
             dir, token, dir);
    write_file(conf, line);

    /* The file alone. */
    char *argv1[] = {"serve", "--config", conf, NULL};
    assert_int_equal(eg_serve_opts_parse(&o, 3, argv1), 0);
    assert_string_equal(o.listen, "127.0.0.2:9000");
    char want[700];
    snprintf(want, sizeof want, "%s/jobs.db", dir);
    assert_string_equal(o.db, want);
    snprintf(want, sizeof want, "%s/checkpoints", dir);
    assert_string_equal(o.checkpoint_dir, want);
    assert_int_equal(o.checkpoint_every, 50);
    assert_int_equal(o.level, EG_LOG_DEBUG);
    assert_string_equal(o.token, "from-file");
    assert_string_equal(o.data_dir, dir);
    assert_string_equal(o.config, conf);

    /* Flags override the file, whatever their place on the line, in both
     * spellings. */
    char config_flag[700];
    snprintf(config_flag, sizeof config_flag, "--config=%s", conf);
    char *argv3[] = {"serve", "--checkpoint-every=7", config_flag, "--listen", "[::1]:1234",
                     "--data-dir=", NULL};
    assert_int_equal(eg_serve_opts_parse(&o, 6, argv3), 0);
    assert_int_equal(o.checkpoint_every, 7);
    assert_string_equal(o.listen, "[::1]:1234");
    assert_string_equal(o.data_dir, "");
    assert_int_equal(o.data_roots.n, 0); /* given empty: no roots, not the default */
    assert_int_equal(o.level, EG_LOG_DEBUG); /* from the file */

    /* Bad lines are refused with FILE:LINE and the option's name. */
    static const struct {
        const char *text;
        int line;
        const char *says;
    } bad_files[] = {
        {"listen = 127.0.0.1:8080\ncheckpoint-every = 0\n", 2, "checkpoint-every"},
        {"# ok\n\nno equals sign here\n", 3, "name = value"},
        {"colour = red\n", 1, "colour"},
        {"config = /etc/other.conf\n", 1, "config"},
        {"devices = cuda:99\n", 1, "devices"},
        {"log-level = loud\n", 1, "log-level"},
        {" = value\n", 1, "unknown option"},
    };
    for (size_t i = 0; i < sizeof bad_files / sizeof *bad_files; i++) {
        write_file(bad, bad_files[i].text);
        char *argv4[] = {"serve", "--config", bad, NULL};
        if (eg_serve_opts_parse(&o, 3, argv4) != -1)
            fail_msg("config file %zu taken", i);
        char where[700];
        snprintf(where, sizeof where, "%s:%d: ", bad, bad_files[i].line);
        if (strncmp(eg_last_error(), where, strlen(where)) != 0 ||
            !strstr(eg_last_error(), bad_files[i].says))
            fail_msg("config file %zu: message \"%s\"", i, eg_last_error());
    }
    /* A line longer than the reader's buffer. */
    static char huge[6000];
    memset(huge, 'x', sizeof huge - 2);
    memcpy(huge, "db = ", 5);
    huge[sizeof huge - 2] = '\n';
    write_file(bad, huge);
    char *argv5[] = {"serve", "--config", bad, NULL};
    char longer[700];
    snprintf(longer, sizeof longer, "%s:1: line longer than", bad);
    tu_fails_with(eg_serve_opts_parse(&o, 3, argv5), longer);
    /* A missing file. */
    char nofile[700];
    snprintf(nofile, sizeof nofile, "%s/none.conf", dir);
    char *argv6[] = {"serve", "--config", nofile, NULL};
    assert_int_equal(eg_serve_opts_parse(&o, 3, argv6), -1);
    assert_non_null(strstr(eg_last_error(), "config"));
}

static void test_options_command_line(void **state)
{
    (void)state;
    static eg_serve_opts o;
    char *help[] = {"serve", "--listen=1.2.3.4:5", "--help", NULL};
    assert_int_equal(eg_serve_opts_parse(&o, 3, help), 1);

    static const struct {
        int argc;
        const char *argv[4];
        const char *says;
    } bad[] = {
        {2, {"serve", "--nope=1"}, "unknown option --nope"},
        {2, {"serve", "--nope"}, "unknown option --nope"},
        {3, {"serve", "--nope", "1"}, "unknown option --nope"},
        {2, {"serve", "positional"}, "positional"},
        {2, {"serve", "-l"}, "-l"},
        {2, {"serve", "--"}, "--"},
        {2, {"serve", "--listen"}, "needs a value"},
        {3, {"serve", "--checkpoint-every", "0"}, "checkpoint-every"},
        {2, {"serve", "--devices=cuda:99"}, "devices"},
        {2, {"serve", "--help=yes"}, "help"},
        {2, {"serve", "--config="}, "config"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (eg_serve_opts_parse(&o, bad[i].argc, (char **)bad[i].argv) != -1)
            fail_msg("command line %zu taken", i);
        if (!strstr(eg_last_error(), bad[i].says))
            fail_msg("command line %zu: message \"%s\"", i, eg_last_error());
    }
    /* The last of a repeated flag wins. */
    char *twice[] = {"serve", "--checkpoint-every=5", "--checkpoint-every", "6", NULL};
    assert_int_equal(eg_serve_opts_parse(&o, 4, twice), 0);
    assert_int_equal(o.checkpoint_every, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_match_handlers),
        cmocka_unit_test(test_routes_405_allow),
        cmocka_unit_test(test_routes_404),
        cmocka_unit_test(test_parse_id),
        cmocka_unit_test(test_parse_int),
        cmocka_unit_test(test_query_check),
        cmocka_unit_test(test_query_int),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_json_type),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_job_from_body),
        cmocka_unit_test(test_data_roots),
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_options_values),
        cmocka_unit_test(test_options_config_file),
        cmocka_unit_test(test_options_command_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
