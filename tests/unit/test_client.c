/* evogradctl (client/): the pure parts — command line, URLs, error
 * messages, cells, the progress line, tables — and the subcommands run
 * against a small fake HTTP server in a thread that answers with canned
 * replies, odd ones included (not JSON, wrong types, HTML 500s, a dropped
 * connection). Also `systemd-analyze verify` on systemd/evogradd.service. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_api.h"
#include "ctl_args.h"
#include "ctl_commands.h"
#include "ctl_fmt.h"
#include "ctl_table.h"
#include "ctl_url.h"
#include "testutil.h"

/* ---- command line ---- */

static ctl_opts parse(int argc, char **argv, const char *env_url, const char *env_token)
{
    ctl_opts o;
    if (ctl_parse_args(argc, argv, env_url, env_token, &o) != 0)
        fail_msg("refused: %s", eg_last_error());
    return o;
}

static void test_args_defaults_and_env(void **state)
{
    char *a1[] = {"evogradctl", "list", NULL};
    ctl_opts o = parse(2, a1, NULL, NULL);
    assert_string_equal(o.url, CTL_DEFAULT_URL);
    assert_null(o.token);
    assert_string_equal(o.command, "list");
    assert_int_equal(o.n_operands, 0);
    assert_true(o.after == -1 && o.limit == 0 && o.max_points == 0 && o.given == 0);
    assert_true(fabs(o.interval_s - 0.5) < 1e-12);

    o = parse(2, a1, "http://gpu-box:9000", "envtok");
    assert_string_equal(o.url, "http://gpu-box:9000");
    assert_string_equal(o.token, "envtok");
    /* An empty variable counts as unset. */
    o = parse(2, a1, "", "");
    assert_string_equal(o.url, CTL_DEFAULT_URL);
    assert_null(o.token);

    /* The command line wins over the environment; options may follow the
     * command. */
    char *a2[] = {"evogradctl", "steps", "12", "--url", "http://x:1", "--token", "clitok",
                  "--after", "5", "--limit", "7", "--max-points", "3", "--csv", NULL};
    o = parse(14, a2, "http://gpu-box:9000", "envtok");
    assert_string_equal(o.url, "http://x:1");
    assert_string_equal(o.token, "clitok");
    assert_string_equal(o.command, "steps");
    assert_int_equal(o.n_operands, 1);
    assert_string_equal(o.operands[0], "12");
    assert_true(o.after == 5 && o.limit == 7 && o.max_points == 3 && o.csv);
    assert_int_equal(o.given, CTL_OPT_AFTER | CTL_OPT_LIMIT | CTL_OPT_MAX_POINTS | CTL_OPT_CSV);

    /* A token file replaces the environment's token. */
    char *a3[] = {"evogradctl", "--token-file", "/some/file", "submit", "-", NULL};
    o = parse(5, a3, NULL, "envtok");
    assert_null(o.token);
    assert_string_equal(o.token_file, "/some/file");
    assert_string_equal(o.operands[0], "-");

    char *a4[] = {"evogradctl", "watch", "3", "--interval", "0.25", "--state", "running", NULL};
    o = parse(7, a4, NULL, NULL);
    assert_true(fabs(o.interval_s - 0.25) < 1e-12);
    assert_string_equal(o.state, "running");
    assert_int_equal(o.given, CTL_OPT_INTERVAL | CTL_OPT_STATE);
}

static void test_args_refused(void **state)
{
    static const struct {
        int argc;
        char *argv[8];
        const char *says;
    } bad[] = {
        {5, {"evogradctl", "--token", "a", "--token-file", "f"}, "--token-file, not both"},
        {4, {"evogradctl", "list", "--limit", "0"}, "--limit wants an integer"},
        {4, {"evogradctl", "list", "--limit", "12x"}, "--limit wants an integer"},
        {4, {"evogradctl", "list", "--after", "-3"}, "--after wants an integer"},
        {5, {"evogradctl", "steps", "1", "--max-points", ""}, "--max-points wants an integer"},
        {5, {"evogradctl", "watch", "1", "--interval", "nan"}, "--interval wants seconds"},
        {5, {"evogradctl", "watch", "1", "--interval", "0"}, "--interval wants seconds"},
        {3, {"evogradctl", "list", "--bogus"}, "unknown option --bogus"},
        {3, {"evogradctl", "list", "--limit"}, "--limit needs a value"},
        {4, {"evogradctl", "--url", "", "list"}, "--url is empty"},
        {7, {"evogradctl", "show", "1", "2", "3", "4", "5"}, "too many arguments"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ctl_opts o;
        eg_clear_error();
        if (ctl_parse_args(bad[i].argc, (char **)bad[i].argv, NULL, NULL, &o) != -1)
            fail_msg("case %zu (%s %s) was accepted", i, bad[i].argv[1], bad[i].argv[2]);
        assert_true(eg_last_error()[0] != '\0');
        if (!strstr(eg_last_error(), bad[i].says))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, eg_last_error(), bad[i].says);
    }
}

static void test_token_file(void **state)
{
    const char *dir = tu_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/token", dir);
    struct {
        const char *content, *want; /* want NULL: refused */
    } cases[] = {
        {"s3cr3t\n", "s3cr3t"},
        {"  s3cr3t \r\nsecond line\n", "s3cr3t"},
        {"abc", "abc"},
        {"\n", NULL},
        {"", NULL},
        {"two words\n", NULL},
        {"tab\tinside\n", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(cases[i].content, f);
        fclose(f);
        char *tok = ctl_read_token_file(path);
        if (cases[i].want) {
            if (!tok) fail_msg("case %zu refused: %s", i, eg_last_error());
            assert_string_equal(tok, cases[i].want);
        } else if (tok) {
            fail_msg("case %zu accepted as \"%s\"", i, tok);
        }
        free(tok);
    }
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_null(ctl_read_token_file(path));
    assert_non_null(strstr(eg_last_error(), "missing"));
    assert_true(ctl_token_ok("abc.DEF-123_~+/="));
    assert_false(ctl_token_ok(""));
    assert_false(ctl_token_ok("a\nb"));
    assert_false(ctl_token_ok("caf\xc3\xa9"));
}

/* ---- URLs ---- */

static void test_url_base(void **state)
{
    struct {
        const char *in, *want;
    } ok[] = {
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
        {"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
        {"https://box.example/evograd//", "https://box.example/evograd"},
        {"127.0.0.1:9", "http://127.0.0.1:9"},
        {"HTTP://[::1]:8080/", "HTTP://[::1]:8080"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char *b = ctl_url_base(ok[i].in);
        if (!b) fail_msg("%s refused: %s", ok[i].in, eg_last_error());
        assert_string_equal(b, ok[i].want);
        free(b);
    }
    const char *bad[] = {"ftp://x", "http://", "http:///", "http://a b", "http://a\n", "/"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *b = ctl_url_base(bad[i]);
        if (b) fail_msg("\"%s\" accepted as %s", bad[i], b);
    }
}

static void test_ids_and_paths(void **state)
{
    long long id;
    assert_int_equal(ctl_parse_id("1", &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(ctl_parse_id("9007199254740991", &id), 0);
    assert_int_equal(id, 9007199254740991LL);
    const char *bad[] = {"0", "", "-1", "+1", "1.0", "12a", " 1", "9007199254740992",
                         "99999999999999999999", "../1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (ctl_parse_id(bad[i], &id) == 0) fail_msg("\"%s\" accepted as %lld", bad[i], id);

    char p[64];
    assert_int_equal(ctl_job_path(p, sizeof p, "42", "/steps", &id), 0);
    assert_string_equal(p, "/v1/jobs/42/steps");
    assert_int_equal(id, 42);
    assert_int_equal(ctl_job_path(p, sizeof p, "7", "", NULL), 0);
    assert_string_equal(p, "/v1/jobs/7");
    tu_fails_with(ctl_job_path(p, sizeof p, "7/../1", "", NULL), "\"7/../1\" is not a job id");
    char tiny[12];
    tu_fails_with(ctl_job_path(tiny, sizeof tiny, "123456", "/cancel", NULL),
                  "request URL too long");
}

static void test_query(void **state)
{
    char q[64] = "/v1/jobs";
    assert_int_equal(ctl_query_add(q, sizeof q, "state", "running"), 0);
    assert_string_equal(q, "/v1/jobs?state=running");
    assert_int_equal(ctl_query_add_ll(q, sizeof q, "after", 12), 0);
    assert_string_equal(q, "/v1/jobs?state=running&after=12");
    char e[64] = "/x";
    assert_int_equal(ctl_query_add(e, sizeof e, "state", "a b&c=d/é~._-"), 0);
    assert_string_equal(e, "/x?state=a%20b%26c%3Dd%2F%C3%A9~._-");
    /* Too long: refused, the buffer left as it was. */
    char small[16] = "/v1/jobs";
    tu_fails_with(ctl_query_add(small, sizeof small, "state", "running"), "request URL too long");
    assert_string_equal(small, "/v1/jobs");
    char exact[16] = "/a";
    assert_int_equal(ctl_query_add(exact, sizeof exact, "k", "0123456789"), 0); /* 15 bytes */
    assert_string_equal(exact, "/a?k=0123456789");
    tu_fails_with(ctl_query_add(exact, sizeof exact, "k", ""), "request URL too long");
}

static void test_resolve(void **state)
{
    struct {
        const char *base, *loc, *want;
    } cases[] = {
        {"http://h:1", "/v1/jobs/3", "http://h:1/v1/jobs/3"},
        {"http://h:1/prefix", "/v1/jobs/3", "http://h:1/v1/jobs/3"},
        {"http://h:1/prefix", "v1/jobs/3", "http://h:1/prefix/v1/jobs/3"},
        {"http://h:1", "https://other/v1/jobs/3", "https://other/v1/jobs/3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *u = ctl_url_resolve(cases[i].base, cases[i].loc);
        assert_non_null(u);
        assert_string_equal(u, cases[i].want);
        free(u);
    }
}

/* ---- error replies ---- */

static void test_error_message(void **state)
{
    char m[256];
    const char *full = "{\"error\": {\"code\": \"invalid_job\", \"message\": \"k must be >= 2\","
                       " \"field\": \"evograd.k\"}}";
    ctl_error_message(400, full, strlen(full), m, sizeof m);
    assert_string_equal(m, "k must be >= 2 (field evograd.k) (HTTP 400, invalid_job)");

    const char *nofield = "{\"error\": {\"code\": \"not_found\", \"message\": \"no job 9\"}}";
    ctl_error_message(404, nofield, strlen(nofield), m, sizeof m);
    assert_string_equal(m, "no job 9 (HTTP 404, not_found)");

    const char *html = "<html><body>Bad Gateway</body></html>\nmore";
    ctl_error_message(502, html, strlen(html), m, sizeof m);
    assert_string_equal(m, "the server answered HTTP 502: <html><body>Bad Gateway</body></html>");

    ctl_error_message(500, "", 0, m, sizeof m);
    assert_string_equal(m, "the server answered HTTP 500");

    /* Wrong types inside the error object, and escapes in the message. */
    const char *odd = "{\"error\": {\"code\": 7, \"message\": \"bad\\u001b[31mred\"}}";
    ctl_error_message(400, odd, strlen(odd), m, sizeof m);
    assert_string_equal(m, "bad?[31mred (HTTP 400)");
    const char *arr = "[1, 2]";
    ctl_error_message(409, arr, strlen(arr), m, sizeof m);
    assert_string_equal(m, "the server answered HTTP 409: [1, 2]");
    char tiny[8];
    ctl_error_message(400, full, strlen(full), tiny, sizeof tiny);
    assert_int_equal(strlen(tiny), 7);

    assert_int_equal(ctl_exit_status(0), CTL_EXIT_FAIL);
    assert_int_equal(ctl_exit_status(400), CTL_EXIT_CLIENT);
    assert_int_equal(ctl_exit_status(404), CTL_EXIT_CLIENT);
    assert_int_equal(ctl_exit_status(499), CTL_EXIT_CLIENT);
    assert_int_equal(ctl_exit_status(500), CTL_EXIT_FAIL);
    assert_int_equal(ctl_exit_status(200), CTL_EXIT_FAIL);
}

/* ---- cells, durations, the progress line ---- */

static void test_cells(void **state)
{
    json_t *v = json_loads("{\"i\": 12, \"r\": 0.000123456, \"big\": 123456789.0, \"s\": "
                           "\"a\\tb\", \"n\": null, \"a\": [1, 0.5, null, \"x\"], \"b\": true, "
                           "\"o\": {}}",
                           0, NULL);
    assert_non_null(v);
    char c[64];
    ctl_fmt_cell(json_object_get(v, "i"), 0, c, sizeof c);
    assert_string_equal(c, "12");
    ctl_fmt_cell(json_object_get(v, "r"), 0, c, sizeof c);
    assert_string_equal(c, "0.0001235");
    ctl_fmt_cell(json_object_get(v, "r"), 1, c, sizeof c);
    assert_string_equal(c, "0.000123456");
    ctl_fmt_cell(json_object_get(v, "big"), 0, c, sizeof c);
    assert_string_equal(c, "1.235e+08");
    ctl_fmt_cell(json_object_get(v, "s"), 0, c, sizeof c);
    assert_string_equal(c, "a?b");
    ctl_fmt_cell(json_object_get(v, "n"), 0, c, sizeof c);
    assert_string_equal(c, "-");
    ctl_fmt_cell(json_object_get(v, "n"), 1, c, sizeof c);
    assert_string_equal(c, "");
    ctl_fmt_cell(json_object_get(v, "missing"), 0, c, sizeof c);
    assert_string_equal(c, "-");
    ctl_fmt_cell(json_object_get(v, "a"), 1, c, sizeof c);
    assert_string_equal(c, "1;0.5;-;?");
    ctl_fmt_cell(json_object_get(v, "b"), 0, c, sizeof c);
    assert_string_equal(c, "true");
    ctl_fmt_cell(json_object_get(v, "o"), 0, c, sizeof c);
    assert_string_equal(c, "?");
    char small[4];
    ctl_fmt_cell(json_object_get(v, "a"), 1, small, sizeof small);
    assert_true(strlen(small) < sizeof small);

    double x;
    long long n;
    assert_true(ctl_json_num(v, "i", &x) && x == 12);
    assert_false(ctl_json_num(v, "s", &x));
    assert_false(ctl_json_int(v, "r", &n));
    assert_false(ctl_json_num(json_object_get(v, "a"), "i", &x)); /* not an object */
    assert_null(ctl_json_str(v, "i", NULL));
    assert_string_equal(ctl_json_str(NULL, "s", "dflt"), "dflt");
    json_decref(v);

    ctl_fmt_duration(0, c, sizeof c);
    assert_string_equal(c, "0:00");
    ctl_fmt_duration(83.4, c, sizeof c);
    assert_string_equal(c, "1:23");
    ctl_fmt_duration(3600 * 12 + 185, c, sizeof c);
    assert_string_equal(c, "12:03:05");
    ctl_fmt_duration(NAN, c, sizeof c);
    assert_string_equal(c, "-");
    ctl_fmt_duration(-1, c, sizeof c);
    assert_string_equal(c, "-");
}

/* Columns of a UTF-8 line. */
static size_t cols(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void test_progress_line(void **state)
{
    ctl_progress p = {.state = "running", .step = 120, .total = 480, .train_loss = 0.5123,
                      .meta_loss = 0.49876, .n_lambda = 1, .lambda = {0.2134},
                      .lambda_norm = 0.2134, .rate = 4.0};
    char line[512];
    ctl_progress_line(&p, 120, line, sizeof line);
    assert_non_null(strstr(line, "running"));
    assert_non_null(strstr(line, "120/480 25%"));
    assert_non_null(strstr(line, "loss 0.5123"));
    assert_non_null(strstr(line, "meta 0.4988"));
    assert_non_null(strstr(line, "λ 0.2134"));
    assert_non_null(strstr(line, "4 it/s ETA 1:30"));
    /* The bar shows the fraction done: a quarter of its cells. */
    const char *open = strchr(line, '['), *close = strchr(line, ']');
    assert_true(open && close && close > open);
    size_t cells = (size_t)(close - open - 1), full = 0;
    for (const char *q = open + 1; q < close; q++) full += *q == '#';
    assert_true(cells >= 10 && cells <= 40);
    assert_int_equal(full, cells / 4);

    /* Every width is respected; a narrow one drops the bar first. */
    for (int w = 1; w <= 160; w++) {
        ctl_progress_line(&p, w, line, sizeof line);
        if (cols(line) > (size_t)(w > 1 ? w - 1 : 0))
            fail_msg("width %d: %zu columns: %s", w, cols(line), line);
    }
    ctl_progress_line(&p, 60, line, sizeof line);
    assert_null(strchr(line, '['));
    assert_non_null(strstr(line, "120/480"));

    /* Several λ values, unknown total, no losses yet, a hostile state. */
    ctl_progress q = {.state = "run\033[2Jning", .step = 3, .total = 0, .train_loss = NAN,
                      .meta_loss = NAN, .n_lambda = 3, .lambda = {1, 2, 3}, .lambda_norm = NAN,
                      .rate = NAN};
    ctl_progress_line(&q, 200, line, sizeof line);
    assert_null(strchr(line, '\033'));
    assert_non_null(strstr(line, "step 3"));
    assert_non_null(strstr(line, "λ [1 2 3]"));
    assert_null(strstr(line, "loss"));
    assert_null(strstr(line, "ETA"));
    /* Many λ: the norm. Done: 100% and a full bar, no ETA. */
    ctl_progress r = {.state = "succeeded", .step = 10, .total = 10, .train_loss = NAN,
                      .meta_loss = NAN, .n_lambda = 0, .lambda_norm = 3.5, .rate = 2};
    ctl_progress_line(&r, 100, line, sizeof line);
    assert_non_null(strstr(line, "10/10 100%"));
    assert_non_null(strstr(line, "|λ| 3.5"));
    assert_null(strstr(line, "ETA"));
    r.step = 4; /* canceled early: no ETA either */
    r.state = "canceled";
    ctl_progress_line(&r, 100, line, sizeof line);
    assert_non_null(strstr(line, "2 it/s"));
    assert_null(strstr(line, "ETA"));
    r.step = 10;
    ctl_progress_line(&r, 100, line, sizeof line);
    open = strchr(line, '[');
    close = strchr(line, ']');
    assert_true(open && close);
    for (const char *c = open + 1; c < close; c++) assert_int_equal(*c, '#');
}

/* ---- tables ---- */

static char *capture_table(int csv, const char *const rows[][3], int nrows, int print)
{
    static const char *const head[] = {"ID", "STATE", "LOSS"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ctl_table t;
    assert_int_equal(ctl_table_init(&t, f, csv, 3, head), 0);
    for (int i = 0; i < nrows; i++) assert_int_equal(ctl_table_row(&t, rows[i]), 0);
    assert_int_equal(ctl_table_finish(&t, print), 0);
    fclose(f);
    return buf;
}

static void test_tables(void **state)
{
    const char *const rows[][3] = {{"1", "succeeded", "0.25"}, {"12", "queued", "-"},
                                   {"3", "failed", "1e-05"}};
    char *out = capture_table(0, rows, 3, 1);
    assert_string_equal(out, "ID  STATE       LOSS\n"
                             " 1  succeeded   0.25\n"
                             "12  queued         -\n"
                             " 3  failed     1e-05\n");
    free(out);
    const char *const odd[][3] = {{"1", "a,b", "say \"hi\""}, {"2", "line\nend", ""}};
    out = capture_table(1, odd, 2, 1);
    assert_string_equal(out, "ID,STATE,LOSS\n1,\"a,b\",\"say \"\"hi\"\"\"\n2,\"line\nend\",\n");
    free(out);
    out = capture_table(1, odd, 0, 1);
    assert_string_equal(out, "ID,STATE,LOSS\n");
    free(out);
    out = capture_table(0, rows, 3, 0);
    assert_string_equal(out, "");
    free(out);
    ctl_table t;
    const char *head[40] = {0};
    tu_fails_with(ctl_table_init(&t, stdout, 0, 40, head), "a table has 1 to 32 columns");

    /* Markdown: a rule under the header, numbers (and means ± stds)
     * right-aligned, '|' in a cell escaped. */
    const char *const md[][3] = {{"1", "a|b", "87.74 ± 0.54"}, {"12", "queued", "-"}};
    out = capture_table(CTL_TABLE_MARKDOWN, md, 2, 1);
    assert_string_equal(out, "|  ID | STATE  |         LOSS |\n"
                             "| --: | ------ | -----------: |\n"
                             "|   1 | a\\|b   | 87.74 ± 0.54 |\n"
                             "|  12 | queued |            - |\n");
    free(out);
}

static void test_mean_std(void **state)
{
    (void)state;
    static const struct {
        double mean, std;
        const char *want;
    } cases[] = {
        {87.7412, 0.5371, "87.74 ± 0.54"},   {0.030165, 0.0021, "0.0302 ± 0.0021"},
        {0.000333, 0.0000574, "0.000333 ± 0.000057"}, {30.2, 0.0, "30.20 ± 0.00"},
        {0.00177, 0.0, "0.00177 ± 0.00000"},  {-12.5, 3.25, "-12.50 ± 3.25"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[64];
        ctl_fmt_mean_std(cases[i].mean, cases[i].std, out, sizeof out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%g ± %g: \"%s\", not \"%s\"", cases[i].mean, cases[i].std, out,
                     cases[i].want);
    }
}

/* ---- a fake server ---- */

typedef struct fake_reply {
    int status;           /* 0: close the connection without answering */
    char body[8192];
    char headers[256];    /* extra header lines, each ending in \r\n */
} fake_reply;

typedef void (*fake_fn)(void *ctx, const char *method, const char *target,
                        const char *headers, const char *body, fake_reply *r);

typedef struct fake_server {
    int fd, port;
    pthread_t thread;
    atomic_int stop;
    fake_fn fn;
    void *ctx;
    int requests;
    fake_reply reply;
    char last_method[16], last_target[512], last_headers[4096], last_body[4096];
} fake_server;

/* Reads one request: headers, then Content-Length bytes of body. */
static int read_request(int fd, char *buf, size_t cap, size_t *head_len, size_t *total)
{
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n + 1 >= cap) return -1;
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got <= 0) return -1;
        n += (size_t)got;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    *head_len = (size_t)(end - buf) + 4;
    size_t body = 0;
    const char *cl = strcasestr(buf, "\r\ncontent-length:");
    if (cl && cl < end) body = strtoul(cl + 17, NULL, 10);
    while (n < *head_len + body) {
        if (n + 1 >= cap) return -1;
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got <= 0) return -1;
        n += (size_t)got;
    }
    buf[n] = '\0';
    *total = n;
    return 0;
}

/* Copies n bytes of src to dst (size bytes), cut to fit, NUL-terminated. */
static void copy_text(char *dst, size_t size, const char *src, size_t n)
{
    if (n >= size) n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void write_all(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void *serve(void *arg)
{
    fake_server *s = arg;
    static char buf[65536];
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0) continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        size_t head_len, total;
        if (read_request(c, buf, sizeof buf, &head_len, &total) == 0) {
            buf[head_len - 2] = '\0';
            sscanf(buf, "%15s %511s", s->last_method, s->last_target);
            copy_text(s->last_headers, sizeof s->last_headers, buf, head_len - 2);
            copy_text(s->last_body, sizeof s->last_body, buf + head_len, total - head_len);
            s->requests++;
            fake_reply *r = &s->reply;
            memset(r, 0, sizeof *r);
            s->fn(s->ctx, s->last_method, s->last_target, s->last_headers, s->last_body, r);
            if (r->status) {
                char head[512];
                int hl = snprintf(head, sizeof head,
                                  "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                  "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                                  r->status, strlen(r->body), r->headers);
                if (write(c, head, (size_t)hl) == hl) write_all(c, r->body);
            }
        }
        close(c);
    }
    return NULL;
}

static void fake_start(fake_server *s, fake_fn fn, void *ctx)
{
    memset(s, 0, sizeof *s);
    s->fn = fn;
    s->ctx = ctx;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void fake_stop(fake_server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* A connection to the fake server (base URL malloc'd). */
static ctl_conn conn_to(const fake_server *s, const char *token)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s->port);
    ctl_conn c = {.base = ctl_url_base(url), .token = token, .timeout_s = 10};
    assert_non_null(c.base);
    return c;
}

static void conn_free(ctl_conn *c)
{
    ctl_conn_close(c);
    free(c->base);
}

/* Runs fn with stdout going to a file; returns what it printed. */
static char captured[65536];
static int run_captured(int (*cmd)(ctl_conn *, const ctl_opts *), ctl_conn *c,
                        const ctl_opts *o)
{
    char path[600];
    snprintf(path, sizeof path, "%s/stdout", tu_tmpdir());
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = cmd(c, o);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(captured, 1, sizeof captured - 1, f);
    captured[n] = '\0';
    fclose(f);
    return rc;
}

static ctl_opts opts_for(const char *command, const char *operand)
{
    ctl_opts o = {.command = command, .after = -1, .interval_s = 0.05};
    if (operand) o.operands[o.n_operands++] = operand;
    return o;
}

/* ---- replies for the commands ---- */

static const char job_done[] =
    "{\"id\": 7, \"state\": \"succeeded\", \"task\": \"rotation\", \"method\": \"evograd\", "
    "\"device\": \"cpu\", \"steps_done\": 10, \"total_steps\": 10, \"created_at\": "
    "\"2024-01-01T00:00:00Z\", \"finished_at\": \"2024-01-01T00:01:00Z\", \"error\": null, "
    "\"summary\": {\"steps\": 10, \"test_acc\": 87.5, \"test_loss\": 0.4, \"angle_deg\": "
    "29.1, \"true_angle_deg\": 30, \"wall_s\": 61, \"mean_step_ms\": 12.5, "
    "\"mean_meta_ms\": 4, \"peak_mem_bytes\": 10485760}}";

/* Routes for the well-behaved server. */
static void good_server(void *ctx, const char *method, const char *target, const char *headers,
                        const char *body, fake_reply *r)
{
    int *polls = ctx;
    r->status = 200;
    if (strcmp(method, "POST") == 0 && strcmp(target, "/v1/jobs") == 0) {
        r->status = 201;
        snprintf(r->headers, sizeof r->headers, "Location: /v1/jobs/7\r\n");
        snprintf(r->body, sizeof r->body, "{\"id\": 7, \"state\": \"queued\"}");
    } else if (strncmp(target, "/v1/jobs?", 9) == 0) {
        if (strstr(target, "after=2"))
            snprintf(r->body, sizeof r->body,
                     "{\"jobs\": [{\"id\": 3, \"state\": \"failed\", \"task\": \"mwn\", "
                     "\"steps_done\": 1, \"total_steps\": null}], \"next_after\": null}");
        else
            snprintf(r->body, sizeof r->body,
                     "{\"jobs\": [{\"id\": 1, \"state\": \"succeeded\", \"task\": \"toy1d\", "
                     "\"method\": \"evograd\", \"device\": \"cpu\", \"steps_done\": 5, "
                     "\"total_steps\": 5, \"created_at\": \"2024-01-01T00:00:00Z\"}, 17, "
                     "{\"id\": 2, \"state\": \"running\", \"task\": \"rotation\", "
                     "\"total_steps\": 0}], "
                     "\"next_after\": 2}");
    } else if (strcmp(target, "/v1/jobs/7") == 0 && strcmp(method, "GET") == 0) {
        /* Running for two polls, then done. */
        if (++*polls < 3)
            snprintf(r->body, sizeof r->body,
                     "{\"id\": 7, \"state\": \"running\", \"steps_done\": %d, "
                     "\"total_steps\": 10}", *polls * 4);
        else
            snprintf(r->body, sizeof r->body, "%s", job_done);
    } else if (strncmp(target, "/v1/jobs/7/steps", 16) == 0) {
        if (strstr(target, "max_points=1"))
            snprintf(r->body, sizeof r->body,
                     "{\"steps\": [{\"step\": %d, \"train_loss\": 0.5, \"meta_loss\": 0.6, "
                     "\"lambda\": [0.5], \"lambda_norm\": 0.5}], \"next_after\": null}",
                     *polls * 4 - 1);
        else if (strstr(target, "after=1&"))
            snprintf(r->body, sizeof r->body,
                     "{\"steps\": [{\"step\": 2, \"epoch\": 0, \"train_loss\": 0.25, "
                     "\"meta_loss\": null, \"lambda\": [1, 2, 3, 4, 5], \"lambda_norm\": "
                     "7.41, \"w\": [0.5, 0.5], \"peak_bytes\": 2097152}], "
                     "\"next_after\": null}");
        else
            snprintf(r->body, sizeof r->body,
                     "{\"steps\": [{\"step\": 0, \"epoch\": 0, \"train_loss\": 2.3, "
                     "\"lambda\": [0.1], \"w\": [0.25, 0.75]}, {\"step\": 1, \"epoch\": 0, "
                     "\"train_loss\": 1.5, \"lambda\": [0.2]}], \"next_after\": 1}");
    } else if (strcmp(target, "/v1/devices") == 0) {
        snprintf(r->body, sizeof r->body,
                 "[{\"name\": \"cuda:0\", \"kind\": \"cuda\", \"model\": \"NVIDIA H200\", "
                 "\"compute_capability\": \"9.0\", \"memory_bytes\": 150754820096, "
                 "\"free_bytes\": 150000000000}, {\"name\": \"cpu\", \"kind\": \"cpu\", "
                 "\"threads\": 16, \"memory_bytes\": 1073741824}]");
    } else if (strcmp(target, "/v1/workers") == 0) {
        snprintf(r->body, sizeof r->body,
                 "{\"workers\": [{\"name\": \"box-a:8080\", \"host\": \"box-a\", \"listen\": "
                 "\"0.0.0.0:8080\", \"devices\": [\"cuda:0\", \"cuda:1\"], \"started_at\": "
                 "\"2026-01-01T00:00:00.000Z\", \"last_heartbeat\": \"2026-01-01T01:00:00.000Z\", "
                 "\"alive\": true, \"running\": [4, 9]}, {\"name\": \"box-b:8080\", "
                 "\"host\": \"box-b\", \"listen\": null, \"devices\": [\"cpu\"], "
                 "\"started_at\": \"2026-01-01T00:00:00.000Z\", \"last_heartbeat\": "
                 "\"2026-01-01T00:10:00.000Z\", \"alive\": false, \"running\": []}]}");
    } else if (strcmp(target, "/v1/jobs/7/cancel") == 0) {
        r->status = 202;
        snprintf(r->body, sizeof r->body, "{\"id\": 7, \"state\": \"running\"}");
    } else if (strcmp(target, "/v1/jobs/7") == 0 && strcmp(method, "DELETE") == 0) {
        r->status = 204;
    } else if (strcmp(target, "/v1/jobs/8") == 0) {
        r->status = 409;
        snprintf(r->body, sizeof r->body,
                 "{\"error\": {\"code\": \"conflict\", \"message\": \"job 8 is running\"}}");
    } else {
        r->status = 404;
        snprintf(r->body, sizeof r->body,
                 "{\"error\": {\"code\": \"not_found\", \"message\": \"no such resource\"}}");
    }
}

static void test_submit(void **state)
{
    int polls = 0;
    fake_server s;
    fake_start(&s, good_server, &polls);
    ctl_conn c = conn_to(&s, "tok123");
    char path[600];
    snprintf(path, sizeof path, "%s/job.json", tu_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("{\"task\": \"rotation\", \"epochs\": 1}\n", f);
    fclose(f);
    ctl_opts o = opts_for("submit", path);
    assert_int_equal(run_captured(ctl_cmd_submit, &c, &o), CTL_EXIT_OK);
    char want[128];
    snprintf(want, sizeof want, "7 http://127.0.0.1:%d/v1/jobs/7\n", s.port);
    assert_string_equal(captured, want);
    assert_string_equal(s.last_method, "POST");
    assert_string_equal(s.last_body, "{\"task\": \"rotation\", \"epochs\": 1}\n");
    assert_non_null(strcasestr(s.last_headers, "\r\nAuthorization: Bearer tok123"));
    assert_non_null(strcasestr(s.last_headers, "\r\nContent-Type: application/json"));
    o.quiet = 1;
    assert_int_equal(run_captured(ctl_cmd_submit, &c, &o), CTL_EXIT_OK);
    assert_string_equal(captured, "7\n");

    /* Specs that are not JSON objects never reach the server. */
    int before = s.requests;
    f = fopen(path, "w");
    fputs("[1, 2]", f);
    fclose(f);
    assert_int_equal(run_captured(ctl_cmd_submit, &c, &o), CTL_EXIT_CLIENT);
    f = fopen(path, "w");
    fputs("{\"task\": ", f);
    fclose(f);
    assert_int_equal(run_captured(ctl_cmd_submit, &c, &o), CTL_EXIT_CLIENT);
    o.operands[0] = "/nonexistent/job.json";
    assert_int_equal(run_captured(ctl_cmd_submit, &c, &o), CTL_EXIT_CLIENT);
    assert_int_equal(s.requests, before);
    assert_string_equal(captured, "");
    conn_free(&c);
    fake_stop(&s);
}

static void test_list_show_steps(void **state)
{
    int polls = 0;
    fake_server s;
    fake_start(&s, good_server, &polls);
    ctl_conn c = conn_to(&s, NULL);

    ctl_opts o = opts_for("list", NULL);
    assert_int_equal(run_captured(ctl_cmd_list, &c, &o), CTL_EXIT_OK);
    /* Both pages, the non-object entry skipped, absent fields as "-". */
    assert_non_null(strstr(captured, "ID  STATE      TASK      METHOD   DEVICE  STEPS  CREATED"));
    assert_non_null(strstr(captured, " 1  succeeded  toy1d     evograd  cpu     5/5    2024-"));
    assert_non_null(strstr(captured, " 2  running    rotation  -        -       -/-"));
    assert_non_null(strstr(captured, " 3  failed     mwn       -        -       1/-"));
    assert_null(strstr(captured, "17"));
    assert_null(strstr(s.last_headers, "Authorization"));

    o.state = "running";
    o.limit = 2;
    o.csv = 1;
    assert_int_equal(run_captured(ctl_cmd_list, &c, &o), CTL_EXIT_OK);
    assert_string_equal(s.last_target, "/v1/jobs?state=running&limit=2");
    assert_string_equal(captured,
                        "ID,STATE,TASK,METHOD,DEVICE,STEPS,CREATED,FINISHED\n"
                        "1,succeeded,toy1d,evograd,cpu,5/5,2024-01-01T00:00:00Z,\n"
                        "2,running,rotation,,,-/-,,\n");

    o = opts_for("workers", NULL);
    o.csv = 1;
    assert_int_equal(run_captured(ctl_cmd_workers, &c, &o), CTL_EXIT_OK);
    assert_string_equal(captured,
                        "NAME,HOST,LISTEN,DEVICES,ALIVE,LAST_HEARTBEAT,RUNNING\n"
                        "box-a:8080,box-a,0.0.0.0:8080,cuda:0;cuda:1,yes,"
                        "2026-01-01T01:00:00.000Z,4;9\n"
                        "box-b:8080,box-b,,cpu,no,2026-01-01T00:10:00.000Z,\n");
    o.csv = 0;
    assert_int_equal(run_captured(ctl_cmd_workers, &c, &o), CTL_EXIT_OK);
    assert_non_null(strstr(captured, "cuda:0,cuda:1  yes"));
    assert_non_null(strstr(captured, "4,9"));

    o = opts_for("devices", NULL);
    assert_int_equal(run_captured(ctl_cmd_devices, &c, &o), CTL_EXIT_OK);
    assert_non_null(strstr(captured, "NAME    KIND  MODEL         CC  THREADS  MEMORY_MIB  FREE_MIB"));
    assert_non_null(strstr(captured, "cuda:0  cuda  NVIDIA H200  9.0        -      143771    143051"));
    assert_non_null(strstr(captured, "cpu     cpu   -              -       16        1024         -"));
    o.csv = 1;
    assert_int_equal(run_captured(ctl_cmd_devices, &c, &o), CTL_EXIT_OK);
    assert_string_equal(captured, "NAME,KIND,MODEL,CC,THREADS,MEMORY_MIB,FREE_MIB\n"
                                  "cuda:0,cuda,NVIDIA H200,9.0,,143771,143051\n"
                                  "cpu,cpu,,,16,1024,\n");

    o = opts_for("show", "7");
    polls = 10;
    assert_int_equal(run_captured(ctl_cmd_show, &c, &o), CTL_EXIT_OK);
    json_t *shown = json_loads(captured, 0, NULL);
    json_t *want = json_loads(job_done, 0, NULL);
    assert_non_null(shown);
    assert_true(json_equal(shown, want));
    assert_non_null(strstr(captured, "\n  \"state\": \"succeeded\""));
    json_decref(shown);
    json_decref(want);

    o = opts_for("steps", "7");
    o.csv = 1;
    assert_int_equal(run_captured(ctl_cmd_steps, &c, &o), CTL_EXIT_OK);
    assert_string_equal(captured,
                        "step,epoch,train_loss,meta_loss,hyper_norm,lambda,lambda_norm,w,"
                        "step_ms,meta_ms,cur_bytes,peak_bytes\n"
                        "0,0,2.3,,,0.1,,0.25;0.75,,,,\n"
                        "1,0,1.5,,,0.2,,,,,,\n"
                        "2,0,0.25,,,1;2;3;4;5,7.41,0.5;0.5,,,,2097152\n");
    o.csv = 0;
    o.limit = 2;
    assert_int_equal(run_captured(ctl_cmd_steps, &c, &o), CTL_EXIT_OK);
    assert_string_equal(s.last_target, "/v1/jobs/7/steps?limit=2");
    assert_non_null(strstr(captured, "STEP  EPOCH  TRAIN_LOSS"));
    assert_null(strstr(captured, "(5 values)"));
    o.limit = 0;
    o.after = 0;
    o.max_points = 50;
    assert_int_equal(run_captured(ctl_cmd_steps, &c, &o), CTL_EXIT_OK);
    assert_string_equal(s.last_target, "/v1/jobs/7/steps?after=0&limit=1000&max_points=50");
    o.after = 1;
    o.max_points = 0;
    assert_int_equal(run_captured(ctl_cmd_steps, &c, &o), CTL_EXIT_OK);
    assert_non_null(strstr(captured, "(5 values)"));
    assert_non_null(strstr(captured, "2.0\n"));

    o = opts_for("cancel", "7");
    assert_int_equal(run_captured(ctl_cmd_cancel, &c, &o), CTL_EXIT_OK);
    assert_string_equal(captured, "job 7: cancel requested (now running)\n");
    o = opts_for("delete", "7");
    assert_int_equal(run_captured(ctl_cmd_delete, &c, &o), CTL_EXIT_OK);
    assert_string_equal(s.last_method, "DELETE");
    assert_string_equal(captured, "job 7 deleted\n");
    o = opts_for("delete", "8");
    assert_int_equal(run_captured(ctl_cmd_delete, &c, &o), CTL_EXIT_CLIENT);
    assert_string_equal(captured, "");
    o = opts_for("show", "99");
    assert_int_equal(run_captured(ctl_cmd_show, &c, &o), CTL_EXIT_CLIENT);
    assert_non_null(strstr(eg_last_error(), "no such resource (HTTP 404, not_found)"));
    conn_free(&c);
    fake_stop(&s);
}

static void test_watch(void **state)
{
    int polls = 0;
    fake_server s;
    fake_start(&s, good_server, &polls);
    ctl_conn c = conn_to(&s, NULL);
    ctl_opts o = opts_for("watch", "7");
    assert_int_equal(run_captured(ctl_cmd_watch, &c, &o), CTL_EXIT_OK);
    assert_int_equal(polls, 3);
    assert_non_null(strstr(captured, "job 7 succeeded after 10 steps in 1:01\n"));
    assert_non_null(strstr(captured, "test accuracy: 87.50 %\n"));
    assert_non_null(strstr(captured, "learned angle: 29.10° (true 30°)\n"));
    assert_non_null(strstr(captured, "peak memory 10.0 MiB"));
    conn_free(&c);
    fake_stop(&s);
}

/* A job that ends in `state` at once; evals answer for the figures. */
static void ending_server(void *ctx, const char *method, const char *target,
                          const char *headers, const char *body, fake_reply *r)
{
    const char *state = ctx;
    r->status = 200;
    if (strstr(target, "/evals"))
        snprintf(r->body, sizeof r->body,
                 "{\"evals\": [{\"step\": 4, \"test_acc\": 10}, {\"step\": 9, \"test_acc\": "
                 "55.5, \"angle_deg\": null}]}");
    else if (strstr(target, "/steps"))
        snprintf(r->body, sizeof r->body, "{\"steps\": \"garbage\", \"next_after\": []}");
    else
        snprintf(r->body, sizeof r->body,
                 "{\"id\": 5, \"state\": \"%s\", \"steps_done\": 9, \"total_steps\": 20, "
                 "\"error\": \"loss is NaN at step 9\", \"summary\": null}", state);
}

static void test_watch_outcomes(void **state)
{
    const char *states[] = {"failed", "canceled"};
    const int want[] = {CTL_EXIT_FAIL, CTL_EXIT_CANCELED};
    for (int i = 0; i < 2; i++) {
        fake_server s;
        fake_start(&s, ending_server, (void *)states[i]);
        ctl_conn c = conn_to(&s, NULL);
        ctl_opts o = opts_for("watch", "5");
        assert_int_equal(run_captured(ctl_cmd_watch, &c, &o), want[i]);
        char line[64];
        snprintf(line, sizeof line, "job 5 %s after 9 steps\n", states[i]);
        assert_non_null(strstr(captured, line));
        assert_non_null(strstr(captured, "error: loss is NaN at step 9\n"));
        assert_non_null(strstr(captured, "test accuracy: 55.50 %\n"));
        assert_null(strstr(captured, "learned angle"));
        conn_free(&c);
        fake_stop(&s);
    }
}

/* Odd replies, chosen by the request's path. */
static void odd_server(void *ctx, const char *method, const char *target, const char *headers,
                       const char *body, fake_reply *r)
{
    r->status = 200;
    if (strstr(target, "/v1/jobs/1"))
        snprintf(r->body, sizeof r->body, "<html>not json</html>");
    else if (strstr(target, "/v1/jobs/2"))
        snprintf(r->body, sizeof r->body, "[\"an\", \"array\"]");
    else if (strstr(target, "/v1/jobs/3"))
        snprintf(r->body, sizeof r->body, "{\"state\": 12, \"steps_done\": \"x\", "
                                          "\"summary\": [1], \"error\": {}}");
    else if (strstr(target, "/v1/jobs/4"))
        r->status = 0; /* hang up */
    else if (strstr(target, "/v1/jobs/5")) {
        r->status = 500;
        snprintf(r->body, sizeof r->body, "<h1>Internal Server Error</h1>");
    } else if (strstr(target, "/v1/jobs/6"))
        snprintf(r->body, sizeof r->body, "{\"steps\": [1, null, {\"step\": \"zero\"}, "
                                          "{\"lambda\": {\"a\": 1}}], \"next_after\": 0}");
    else if (strstr(target, "/v1/jobs/9"))
        snprintf(r->body, sizeof r->body, "{\"id\": \"seven\"}");
    else if (strncmp(target, "/v1/jobs", 8) == 0 && strcmp(method, "POST") == 0) {
        r->status = 201;
        snprintf(r->body, sizeof r->body, "{\"id\": null}");
    } else if (strncmp(target, "/v1/jobs", 8) == 0)
        snprintf(r->body, sizeof r->body, "{\"jobs\": {\"id\": 1}, \"next_after\": 5}");
}

static void test_odd_replies(void **state)
{
    fake_server s;
    fake_start(&s, odd_server, NULL);
    ctl_conn c = conn_to(&s, NULL);
    static const struct {
        int (*cmd)(ctl_conn *, const ctl_opts *);
        const char *command, *id;
        int want;
    } cases[] = {
        {ctl_cmd_show, "show", "1", CTL_EXIT_FAIL},     /* not JSON */
        {ctl_cmd_show, "show", "2", CTL_EXIT_OK},       /* JSON, printed as it is */
        {ctl_cmd_watch, "watch", "1", CTL_EXIT_FAIL},
        {ctl_cmd_watch, "watch", "2", CTL_EXIT_FAIL},   /* not a job object */
        {ctl_cmd_watch, "watch", "3", CTL_EXIT_FAIL},   /* no state string */
        {ctl_cmd_steps, "steps", "1", CTL_EXIT_FAIL},
        {ctl_cmd_steps, "steps", "2", CTL_EXIT_FAIL},   /* no steps array */
        {ctl_cmd_steps, "steps", "6", CTL_EXIT_OK},     /* odd rows skipped or shown as ? */
        {ctl_cmd_show, "show", "4", CTL_EXIT_FAIL},     /* connection dropped */
        {ctl_cmd_show, "show", "5", CTL_EXIT_FAIL},     /* HTML 500 */
        {ctl_cmd_cancel, "cancel", "5", CTL_EXIT_FAIL},
        {ctl_cmd_cancel, "cancel", "1", CTL_EXIT_FAIL},
        {ctl_cmd_cancel, "cancel", "2", CTL_EXIT_OK},   /* accepted; no state to show */
        {ctl_cmd_delete, "delete", "3", CTL_EXIT_OK},   /* a 200 with a body is fine */
        {ctl_cmd_list, "list", NULL, CTL_EXIT_FAIL},    /* "jobs" is no array */
        {ctl_cmd_submit, "submit", NULL, CTL_EXIT_FAIL}, /* 201 without an id */
    };
    char spec[600];
    snprintf(spec, sizeof spec, "%s/spec.json", tu_tmpdir());
    FILE *f = fopen(spec, "w");
    fputs("{\"task\": \"toy1d\"}", f);
    fclose(f);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ctl_opts o = opts_for(cases[i].command, cases[i].cmd == ctl_cmd_submit ? spec
                                                                               : cases[i].id);
        int rc = run_captured(cases[i].cmd, &c, &o);
        if (rc != cases[i].want)
            fail_msg("%s %s: exit %d, want %d (%s)", cases[i].command,
                     cases[i].id ? cases[i].id : "", rc, cases[i].want, eg_last_error());
    }
    ctl_opts o = opts_for("steps", "6");
    o.csv = 1;
    assert_int_equal(run_captured(ctl_cmd_steps, &c, &o), CTL_EXIT_OK);
    assert_non_null(strstr(captured, ",?,"));
    conn_free(&c);
    fake_stop(&s);

    /* No server at all: exit 1. */
    fake_start(&s, odd_server, NULL);
    ctl_conn gone = conn_to(&s, NULL);
    fake_stop(&s);
    o = opts_for("show", "1");
    assert_int_equal(run_captured(ctl_cmd_show, &gone, &o), CTL_EXIT_FAIL);
    conn_free(&gone);
}

/* ---- the systemd unit ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_systemd_unit(void **state)
{
    const char *unit = slurp("systemd/evogradd.service");
    static const char *const must[] = {
        "\nType=notify\n",
        "\nExecStart=/usr/local/bin/evogradd serve --config /etc/evograd/evogradd.conf\n",
        "\nStateDirectory=evograd\n", "\nDynamicUser=yes\n", "\nProtectSystem=strict\n",
        "\nProtectHome=yes\n", "\nPrivateTmp=yes\n", "\nNoNewPrivileges=yes\n",
        "\nDevicePolicy=closed\n", "\nDeviceAllow=/dev/nvidiactl rw\n",
        "\nDeviceAllow=/dev/nvidia0 rw\n", "\nDeviceAllow=/dev/nvidia-uvm rw\n",
        "\nRestart=on-failure\n", "\nTimeoutStopSec=30s\n",
        "\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n"};
    for (size_t i = 0; i < sizeof must / sizeof *must; i++)
        if (!strstr(unit, must[i])) fail_msg("the unit lacks %s", must[i] + 1);
    assert_null(strstr(unit, "\nPrivateDevices=yes"));
    assert_null(strstr(unit, "\nMemoryDenyWriteExecute=yes"));

    if (system("command -v systemd-analyze >/dev/null 2>&1") != 0) {
        fprintf(stderr, "systemd-analyze not installed (Debian package systemd)\n");
        skip();
    }
    /* verify insists that ExecStart's binary exists: point it at the
     * daemon of this build (BUILD/evogradd, next to BUILD/tests/), or at
     * this test binary when the daemon is not built. */
    char exe[1024], daemon[1100];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    snprintf(daemon, sizeof daemon, "%s/../evogradd", exe);
    *slash = '/';
    const char *bin = access(daemon, X_OK) == 0 ? daemon : exe;

    /* The unit with the shared store's drop-in (the unit path holds both,
     * as /etc/systemd/system would). */
    const char *dir = tu_tmpdir();
    char path[600], drop[700], cmd[1800];
    snprintf(path, sizeof path, "%s/evogradd.service", dir);
    snprintf(drop, sizeof drop, "%s/evogradd.service.d", dir);
    assert_int_equal(mkdir(drop, 0755), 0);
    char *unit_text = strdup(unit); /* slurp's buffer is reused */
    const char *texts[2] = {unit_text, slurp("systemd/evogradd.service.d/shared-store.conf")};
    assert_non_null(strstr(texts[1], "\nExecStart=\n"));
    assert_non_null(strstr(texts[1], "--db "));
    char dest[2][800];
    snprintf(dest[0], sizeof dest[0], "%s", path);
    snprintf(dest[1], sizeof dest[1], "%s/shared-store.conf", drop);
    FILE *f;
    for (int i = 0; i < 2; i++) {
        f = fopen(dest[i], "w");
        assert_non_null(f);
        const char *at = strstr(texts[i], "/usr/local/bin/evogradd ");
        assert_non_null(at);
        fprintf(f, "%.*s%s%s", (int)(at - texts[i]), texts[i], bin,
                at + strlen("/usr/local/bin/evogradd"));
        fclose(f);
    }
    free(unit_text);
    snprintf(cmd, sizeof cmd,
             "SYSTEMD_UNIT_PATH=%s: SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no %s 2>&1",
             dir, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int rc = pclose(p);
    /* verify exits 0 on unknown keys and bad values; it only warns, so
     * any output at all is a failure. */
    if (rc != 0 || got != 0) fail_msg("systemd-analyze verify (exit %d):\n%s", rc, out);

    /* The same check sees a broken unit. */
    assert_int_equal(unlink(dest[1]), 0);
    f = fopen(path, "w");
    fprintf(f, "[Service]\nType=notify\nExecStart=%s\nProtectSytem=strict\n", bin);
    fclose(f);
    p = popen(cmd, "r");
    got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    pclose(p);
    assert_non_null(strstr(out, "ProtectSytem"));
}

/* The example config names only options of `evogradd serve`, each once. */
static void test_example_config(void **state)
{
    static const char *const known[] = {"listen",         "db",          "data-dir",
                                        "devices",        "token-file",  "checkpoint-dir",
                                        "checkpoint-every", "log-level", "worker-name",
                                        "lease-seconds",  "max-lost-leases"};
#define N_KNOWN (int)(sizeof known / sizeof *known)
    char *conf = slurp("systemd/evogradd.conf");
    int seen[N_KNOWN] = {0};
    for (char *line = strtok(conf, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ') line++;
        if (*line == '#' && strchr(line, '=') && line[1] != ' ') line++; /* "#name = value" */
        else if (*line == '#' || !*line) continue;
        size_t len = strcspn(line, " =");
        int found = -1;
        for (int i = 0; i < N_KNOWN; i++)
            if (strlen(known[i]) == len && strncmp(line, known[i], len) == 0) found = i;
        if (found < 0) fail_msg("unknown option in the example config: %s", line);
        seen[found]++;
    }
    for (int i = 0; i < N_KNOWN; i++)
        if (seen[i] != 1) fail_msg("%s appears %d times in the example config", known[i], seen[i]);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_defaults_and_env),
        cmocka_unit_test(test_args_refused),
        cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_url_base),
        cmocka_unit_test(test_ids_and_paths),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_error_message),
        cmocka_unit_test(test_cells),
        cmocka_unit_test(test_progress_line),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_mean_std),
        cmocka_unit_test(test_submit),
        cmocka_unit_test(test_list_show_steps),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_watch_outcomes),
        cmocka_unit_test(test_odd_replies),
        cmocka_unit_test(test_systemd_unit),
        cmocka_unit_test(test_example_config),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
