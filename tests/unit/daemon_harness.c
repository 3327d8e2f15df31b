/* Starting, stopping and speaking to a real `evogradd serve` (see
 * daemon_harness.h). */
#include "daemon_harness.h"
#include "pg_cluster.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sqlite3.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 20000.0
#define START_TRIES 5
#define MAX_DAEMONS 64
#define MAX_BODY (64u << 20)

double dh_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

void dh_sleep_ms(double ms)
{
    long long ns = ms > 0 ? (long long)(ms * 1e6) : 0;
    struct timespec t = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* ---- the daemons of this process ---- */

static pid_t live[MAX_DAEMONS];
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

static void kill_live(void)
{
    pthread_mutex_lock(&live_lock);
    for (int i = 0; i < MAX_DAEMONS; i++) {
        if (live[i] <= 0) continue;
        kill(live[i], SIGKILL);
        waitpid(live[i], NULL, 0);
        live[i] = 0;
    }
    pthread_mutex_unlock(&live_lock);
}

static void live_add(pid_t pid)
{
    static int registered;
    pthread_mutex_lock(&live_lock);
    if (!registered) {
        atexit(kill_live);
        registered = 1;
    }
    for (int i = 0; i < MAX_DAEMONS; i++)
        if (live[i] <= 0) {
            live[i] = pid;
            break;
        }
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(pid_t pid)
{
    pthread_mutex_lock(&live_lock);
    for (int i = 0; i < MAX_DAEMONS; i++)
        if (live[i] == pid) live[i] = 0;
    pthread_mutex_unlock(&live_lock);
}

const char *dh_daemon_path(void)
{
    static char path[1100];
    const char *env = getenv("EG_DAEMON");
    if (env && *env) return env;
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            const char *dir_name = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
            /* BUILD/tests/test_x -> BUILD/evogradd; BUILD/bench_x -> BUILD/evogradd */
            snprintf(path, sizeof path, "%s/%sevogradd", exe,
                     strcmp(dir_name, "tests") == 0 ? "../" : "");
            if (access(path, X_OK) == 0) return path;
        }
    }
    return "build/evogradd";
}

/* A port that was free on 127.0.0.1 a moment ago; 0 when none. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Prints the last bytes of the daemon's log to stderr. */
static void print_log_tail(const dh_daemon *d)
{
    FILE *f = fopen(d->log, "r");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > 4000 ? size - 4000 : 0, SEEK_SET);
    char buf[4001];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "---- %s (tail) ----\n%s---- end of log ----\n", d->log, buf);
}

/* In the child: the daemon with its output in the log; never returns. */
static void exec_daemon(const dh_daemon *d, pid_t parent, const dh_opts *o, const char *tokfile)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    int in = open("/dev/null", O_RDONLY);
    int log = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || log < 0) _exit(127);
    dup2(in, 0);
    dup2(log, 1);
    dup2(log, 2);
    for (int fd = 3; fd < 1024; fd++) close(fd);
    setenv("OMP_NUM_THREADS", "1", 0);
    for (int i = 0; o && o->env && o->env[i]; i++) putenv((char *)o->env[i]);
    char listen[64], every[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", d->port);
    snprintf(every, sizeof every, "%ld", o ? o->checkpoint_every : 0);
    const char *argv[28];
    int n = 0;
    const char *bin = dh_daemon_path();
    argv[n++] = bin;
    argv[n++] = "serve";
    argv[n++] = "--listen";
    argv[n++] = listen;
    argv[n++] = "--db";
    argv[n++] = d->db;
    argv[n++] = "--checkpoint-dir";
    argv[n++] = d->ckpt_dir;
    argv[n++] = "--log-level";
    argv[n++] = o && o->log_level ? o->log_level : "info";
    argv[n++] = "--devices";
    argv[n++] = o && o->devices ? o->devices : "cpu";
    if (o && o->data_dir) {
        argv[n++] = "--data-dir";
        argv[n++] = o->data_dir;
    }
    if (o && o->checkpoint_every > 0) {
        argv[n++] = "--checkpoint-every";
        argv[n++] = every;
    }
    if (tokfile) {
        argv[n++] = "--token-file";
        argv[n++] = tokfile;
    }
    char lease[32];
    if (o && o->lease_seconds > 0) {
        snprintf(lease, sizeof lease, "%ld", o->lease_seconds);
        argv[n++] = "--lease-seconds";
        argv[n++] = lease;
    }
    if (o && o->worker_name) {
        argv[n++] = "--worker-name";
        argv[n++] = o->worker_name;
    }
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    fprintf(stderr, "daemon_harness: cannot run %s: %s\n", bin, strerror(errno));
    _exit(127);
}

int dh_start(dh_daemon *d, const char *dir, const dh_opts *o)
{
    memset(d, 0, sizeof *d);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "daemon_harness: mkdir %s: %s\n", dir, strerror(errno));
        return -1;
    }
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    const char *state = o && o->state_dir ? o->state_dir : dir;
    snprintf(d->db, sizeof d->db, "%s/evograd.db", state);
    d->postgres = o && (o->postgres || o->db) ? 1 : pgc_wanted();
    if (o && o->db) {
        snprintf(d->db, sizeof d->db, "%s", o->db);
    } else if (d->postgres) {
        char name[64];
        pgc_name_for(state, name, sizeof name);
        if (pgc_database(name, d->db, sizeof d->db) != 0) return -1;
    }
    snprintf(d->ckpt_dir, sizeof d->ckpt_dir, "%s/checkpoints", state);
    snprintf(d->log, sizeof d->log, "%s/daemon.log", dir);
    char tokfile[600];
    if (o && o->token) {
        snprintf(tokfile, sizeof tokfile, "%s/token", dir);
        snprintf(d->token, sizeof d->token, "%s", o->token);
        FILE *f = fopen(tokfile, "w");
        if (!f || fprintf(f, "%s\n", o->token) < 0 || fclose(f) != 0) {
            fprintf(stderr, "daemon_harness: cannot write %s\n", tokfile);
            return -1;
        }
    }
    for (int attempt = 0; attempt < START_TRIES; attempt++) {
        d->port = free_port();
        if (!d->port) {
            fprintf(stderr, "daemon_harness: no free port\n");
            return -1;
        }
        snprintf(d->base, sizeof d->base, "http://127.0.0.1:%d", d->port);
        fflush(NULL);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "daemon_harness: fork: %s\n", strerror(errno));
            return -1;
        }
        if (pid == 0) exec_daemon(d, parent, o, o && o->token ? tokfile : NULL);
        d->pid = pid;
        live_add(pid);
        double until = dh_now_ms() + START_TIMEOUT_MS;
        int exited = 0;
        while (dh_now_ms() < until) {
            if (!dh_alive(d)) {
                exited = 1;
                break;
            }
            dh_resp r;
            dh_req rq = {.method = "GET", .path = "/healthz", .auth = ""};
            int ok = dh_do(d, &rq, &r) == 0 && r.status == 200;
            dh_resp_free(&r);
            if (ok) return 0;
            dh_sleep_ms(20);
        }
        if (!exited) {
            fprintf(stderr, "daemon_harness: %s did not answer /healthz within %.0f s\n",
                    d->base, START_TIMEOUT_MS / 1e3);
            dh_stop(d, SIGKILL, 5, NULL);
            print_log_tail(d);
            return -1;
        }
        /* Another process may have taken the port: try another. */
        if (!dh_file_contains(d->log, "Address already in use")) break;
    }
    fprintf(stderr, "daemon_harness: the daemon exited at start\n");
    print_log_tail(d);
    return -1;
}

int dh_alive(dh_daemon *d)
{
    if (d->pid <= 0) return 0;
    int status;
    pid_t got = waitpid(d->pid, &status, WNOHANG);
    if (got == 0) return 1;
    live_remove(d->pid);
    d->pid = 0;
    return 0;
}

int dh_stop(dh_daemon *d, int sig, double timeout_s, int *status)
{
    if (status) *status = -1;
    if (d->pid <= 0) return -1;
    kill(d->pid, sig);
    double until = dh_now_ms() + timeout_s * 1e3;
    int st = 0, rc = -1;
    for (;;) {
        pid_t got = waitpid(d->pid, &st, WNOHANG);
        if (got == d->pid) {
            rc = 0;
            break;
        }
        if (got < 0 || dh_now_ms() >= until) break;
        dh_sleep_ms(5);
    }
    if (rc != 0) {
        fprintf(stderr, "daemon_harness: pid %d outlived %.1f s after signal %d: killed\n",
                (int)d->pid, timeout_s, sig);
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &st, 0);
    }
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    live_remove(d->pid);
    d->pid = 0;
    return rc;
}

/* ---- HTTP ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static _Thread_local CURL *tl_curl;

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void dh_thread_end(void)
{
    if (tl_curl) curl_easy_cleanup(tl_curl);
    tl_curl = NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    dh_resp *r = arg;
    size_t n = size * nmemb;
    if (r->len + n + 1 > MAX_BODY) return 0;
    char *bigger = realloc(r->body, r->len + n + 1);
    if (!bigger) return 0;
    r->body = bigger;
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* Copies the value of header line (name: value) into out when name fits. */
static void take_header(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':') return;
    const char *v = line + k + 1;
    size_t m = n - k - 1;
    while (m && (*v == ' ' || *v == '\t')) v++, m--;
    while (m && (v[m - 1] == '\r' || v[m - 1] == '\n' || v[m - 1] == ' ')) m--;
    if (m >= cap) m = cap - 1;
    memcpy(out, v, m);
    out[m] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    dh_resp *r = arg;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new answer (after a 100 Continue): forget the earlier headers. */
        r->content_type[0] = r->location[0] = r->allow[0] = r->www_authenticate[0] = '\0';
    }
    take_header(data, n, "Content-Type", r->content_type, sizeof r->content_type);
    take_header(data, n, "Location", r->location, sizeof r->location);
    take_header(data, n, "Allow", r->allow, sizeof r->allow);
    take_header(data, n, "WWW-Authenticate", r->www_authenticate, sizeof r->www_authenticate);
    return n;
}

int dh_do(const dh_daemon *d, const dh_req *rq, dh_resp *r)
{
    memset(r, 0, sizeof *r);
    pthread_once(&curl_once, curl_init);
    if (!tl_curl && !(tl_curl = curl_easy_init())) {
        fprintf(stderr, "daemon_harness: curl_easy_init failed\n");
        return -1;
    }
    CURL *h = tl_curl;
    curl_easy_reset(h); /* keeps the connection cache */
    char url[8192];
    if (snprintf(url, sizeof url, "%s%s", d->base, rq->path) >= (int)sizeof url) {
        fprintf(stderr, "daemon_harness: URL too long\n");
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    const char *method = rq->method ? rq->method : "GET";
    size_t len = rq->body ? (rq->len ? rq->len : strlen(rq->body)) : 0;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0 && !rq->body) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (rq->body || strcmp(method, "POST") == 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        }
    }
    struct curl_slist *hdrs = NULL;
    char line[512];
    if (rq->content_type && *rq->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", rq->content_type);
        hdrs = curl_slist_append(hdrs, line);
    } else if (rq->content_type) {
        hdrs = curl_slist_append(hdrs, "Content-Type;"); /* present, empty */
    } else {
        hdrs = curl_slist_append(hdrs, "Content-Type:"); /* none at all */
    }
    if (rq->auth && *rq->auth) {
        snprintf(line, sizeof line, "Authorization: %s", rq->auth);
        hdrs = curl_slist_append(hdrs, line);
    } else if (!rq->auth && d->token[0]) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", d->token);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (rq->no_expect) hdrs = curl_slist_append(hdrs, "Expect:");
    if (rq->header) hdrs = curl_slist_append(hdrs, rq->header);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        /* Quiet for refused connections: dh_start polls a daemon not up yet. */
        if (rc != CURLE_COULDNT_CONNECT)
            fprintf(stderr, "daemon_harness: %s %s: %s\n", method, rq->path,
                    curl_easy_strerror(rc));
        dh_resp_free(r);
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body) {
        r->body = calloc(1, 1);
        if (!r->body) return -1;
    }
    r->json = r->len && !rq->raw ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    return 0;
}

int dh_get(const dh_daemon *d, const char *path, dh_resp *r)
{
    dh_req rq = {.method = "GET", .path = path};
    return dh_do(d, &rq, r);
}

int dh_post_json(const dh_daemon *d, const char *path, const char *json, dh_resp *r)
{
    dh_req rq = {.method = "POST", .path = path, .content_type = "application/json",
                 .body = json};
    return dh_do(d, &rq, r);
}

void dh_resp_free(dh_resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static const char *err_str(const dh_resp *r, const char *key)
{
    json_t *e = json_object_get(r->json, "error");
    return json_string_value(json_object_get(e, key));
}

const char *dh_err_code(const dh_resp *r) { return err_str(r, "code"); }
const char *dh_err_field(const dh_resp *r) { return err_str(r, "field"); }
const char *dh_err_message(const dh_resp *r) { return err_str(r, "message"); }

int dh_raw(const dh_daemon *d, const char *bytes, size_t n, double timeout_s, char *out,
           size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    size_t size = out && cap > 16384 ? cap : 16384, got = 0;
    char *buf = malloc(size);
    if (!buf || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        free(buf);
        close(fd);
        return 0;
    }
    for (size_t sent = 0; sent < n;) {
        ssize_t k = send(fd, bytes + sent, n - sent, MSG_NOSIGNAL);
        if (k <= 0) break; /* the server may answer and close early */
        sent += (size_t)k;
    }
    double until = dh_now_ms() + timeout_s * 1e3;
    while (got < size - 1) {
        double left = until - dh_now_ms();
        if (left <= 0) break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left + 1) <= 0) break;
        ssize_t k = recv(fd, buf + got, size - 1 - got, 0);
        if (k <= 0) break;
        got += (size_t)k;
        buf[got] = '\0';
        /* Done once the headers and a declared body are all in. */
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (end && cl && cl < end && got >= (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10))
            break;
    }
    buf[got] = '\0';
    close(fd);
    if (out && cap) snprintf(out, cap, "%s", buf);
    int status = 0;
    if (strncmp(buf, "HTTP/1.", 7) == 0 && got >= 12) status = atoi(buf + 9);
    free(buf);
    return status;
}

/* ---- the database ---- */

int dh_db_whole(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK &&
             sqlite3_step(q) == SQLITE_ROW;
    const char *said = ok ? (const char *)sqlite3_column_text(q, 0) : sqlite3_errmsg(db);
    ok = ok && said && strcmp(said, "ok") == 0;
    if (!ok) fprintf(stderr, "daemon_harness: %s: integrity_check: %s\n", path, said ? said : "?");
    sqlite3_finalize(q);
    sqlite3_close(db);
    return ok;
}

/* ---- jobs ---- */

int64_t dh_submit(const dh_daemon *d, const char *spec)
{
    dh_resp r;
    if (dh_post_json(d, "/v1/jobs", spec, &r) != 0) return -1;
    int64_t id = -1;
    if (r.status == 201 && json_is_integer(json_object_get(r.json, "id")))
        id = json_integer_value(json_object_get(r.json, "id"));
    else
        fprintf(stderr, "daemon_harness: POST /v1/jobs %s: %ld %s\n", spec, r.status, r.body);
    dh_resp_free(&r);
    return id;
}

/* Whether state is one of the "|"-separated names in states. */
static int state_in(const char *state, const char *states)
{
    if (!state || !states) return 0;
    size_t n = strlen(state);
    for (const char *p = states; *p;) {
        size_t k = strcspn(p, "|");
        if (k == n && strncmp(p, state, n) == 0) return 1;
        p += k;
        if (*p == '|') p++;
    }
    return 0;
}

int dh_wait_job(const dh_daemon *d, int64_t id, const char *states, long min_steps,
                double timeout_s, json_t **job)
{
    if (job) *job = NULL;
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)id);
    double until = dh_now_ms() + timeout_s * 1e3;
    char last_state[32] = "?";
    long steps = -1;
    for (;;) {
        dh_resp r;
        if (dh_get(d, path, &r) != 0) return -1;
        if (r.status != 200) {
            fprintf(stderr, "daemon_harness: GET %s: %ld %s\n", path, r.status, r.body);
            dh_resp_free(&r);
            return -1;
        }
        const char *state = json_string_value(json_object_get(r.json, "state"));
        steps = (long)json_integer_value(json_object_get(r.json, "steps_done"));
        snprintf(last_state, sizeof last_state, "%s", state ? state : "?");
        if (state_in(state, states) || (min_steps > 0 && steps >= min_steps)) {
            if (job) *job = json_incref(r.json);
            dh_resp_free(&r);
            return 0;
        }
        dh_resp_free(&r);
        if (dh_now_ms() >= until) break;
        dh_sleep_ms(5);
    }
    fprintf(stderr, "daemon_harness: job %lld still %s with %ld steps after %.0f s (waiting "
            "for %s%s%ld steps)\n", (long long)id, last_state, steps, timeout_s,
            states ? states : "", states ? " or " : "", min_steps);
    return -1;
}

json_t *dh_steps_all(const dh_daemon *d, int64_t id, int page)
{
    json_t *all = json_array();
    long long after = -1;
    for (int pages = 0; all && pages < 100000; pages++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/jobs/%lld/steps?after=%lld&limit=%d", (long long)id,
                 after, page);
        dh_resp r;
        if (dh_get(d, path, &r) != 0) break;
        json_t *rows = json_object_get(r.json, "steps");
        json_t *next = json_object_get(r.json, "next_after");
        if (r.status != 200 || !json_is_array(rows) || !next) {
            fprintf(stderr, "daemon_harness: GET %s: %ld %s\n", path, r.status, r.body);
            dh_resp_free(&r);
            break;
        }
        json_array_extend(all, rows);
        if (json_is_null(next)) {
            dh_resp_free(&r);
            return all;
        }
        after = json_integer_value(next);
        dh_resp_free(&r);
    }
    json_decref(all);
    return NULL;
}

json_t *dh_steps_whole(const dh_daemon *d, int64_t id, int page, long steps)
{
    json_t *rows = dh_steps_all(d, id, page);
    if (!rows) return NULL;
    size_t n = json_array_size(rows);
    int ok = n == (size_t)steps;
    for (size_t i = 0; ok && i < n; i++)
        ok = json_integer_value(json_object_get(json_array_get(rows, i), "step")) == (json_int_t)i;
    if (ok) return rows;
    fprintf(stderr, "daemon_harness: job %lld: %zu step rows, not the steps 0..%ld in order\n",
            (long long)id, n, steps - 1);
    json_decref(rows);
    return NULL;
}

/* ---- files ---- */

int dh_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t k = strlen(needle), cap = 1 << 16, keep = 0;
    char *buf = malloc(cap + 1);
    int found = 0;
    if (!buf || k == 0 || k > cap / 2) {
        free(buf);
        fclose(f);
        return 0;
    }
    for (;;) {
        size_t n = fread(buf + keep, 1, cap - keep, f);
        if (n == 0) break;
        size_t len = keep + n;
        buf[len] = '\0';
        if (memmem(buf, len, needle, k)) {
            found = 1;
            break;
        }
        /* Keep the last k - 1 bytes: a match may straddle reads. */
        keep = k - 1 < len ? k - 1 : len;
        memmove(buf, buf + len - keep, keep);
    }
    free(buf);
    fclose(f);
    return found;
}

long dh_file_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    long count = -1;
    if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        count = 0;
        for (const char *p = buf; (p = strstr(p, needle)); p += strlen(needle)) count++;
    }
    free(buf);
    fclose(f);
    return count;
}

int dh_log_clean(const dh_daemon *d)
{
    static const char *const bad[] = {"Z error ", "database is locked", "AddressSanitizer",
                                      "LeakSanitizer", "runtime error:"};
    int clean = 1;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (dh_file_contains(d->log, bad[i])) {
            fprintf(stderr, "daemon_harness: %s holds \"%s\"\n", d->log, bad[i]);
            clean = 0;
        }
    if (!clean) print_log_tail(d);
    return clean;
}

int dh_save_body(const char *dir, const char *schema, const dh_resp *r)
{
    static atomic_int counter;
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s", dir, schema);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return -1;
    snprintf(path, sizeof path, "%s/%s/%05d.json", dir, schema, atomic_fetch_add(&counter, 1));
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = r->len ? fwrite(r->body, 1, r->len, f) : 0;
    return fclose(f) == 0 && w == r->len ? 0 : -1;
}

int dh_validate_bodies(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/parity/validate_api.py '%s' 1>&2", dir);
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

long dh_resumed_at(const dh_daemon *d, int64_t id)
{
    FILE *f = fopen(d->log, "r");
    if (!f) return -1;
    char line[2048], want[64];
    snprintf(want, sizeof want, "job %lld: resumed from ", (long long)id);
    long at = -1;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, want), *q = p ? strstr(p, " at step ") : NULL;
        if (q) at = strtol(q + 9, NULL, 10);
    }
    fclose(f);
    return at;
}

int dh_same_number(const json_t *a, const json_t *b, double tol)
{
    if (json_is_null(a) || json_is_null(b)) return json_is_null(a) && json_is_null(b);
    if (!json_is_number(a) || !json_is_number(b)) return 0;
    double x = json_number_value(a), y = json_number_value(b);
    return tol == 0 ? x == y : fabs(x - y) <= tol * fmax(1, fabs(y));
}

int dh_rows_match(const json_t *rows, const json_t *ref, double tol, const char *what)
{
    static const char *const keys[] = {"train_loss", "meta_loss", "hyper_norm", "lambda_norm",
                                       "epoch"};
    if (json_array_size(rows) != json_array_size(ref)) {
        fprintf(stderr, "%s: %zu rows, the reference %zu\n", what, json_array_size(rows),
                json_array_size(ref));
        return -1;
    }
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i), *b = json_array_get(ref, i);
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            if (!dh_same_number(json_object_get(a, keys[k]), json_object_get(b, keys[k]), tol)) {
                fprintf(stderr, "%s: step %zu: %s %.9g, the reference %.9g\n", what, i, keys[k],
                        json_number_value(json_object_get(a, keys[k])),
                        json_number_value(json_object_get(b, keys[k])));
                return -1;
            }
        json_t *la = json_object_get(a, "lambda"), *lb = json_object_get(b, "lambda");
        int same = json_is_null(la) ? json_is_null(lb)
                                    : json_array_size(la) == json_array_size(lb);
        for (size_t j = 0; same && j < json_array_size(la); j++)
            same = dh_same_number(json_array_get(la, j), json_array_get(lb, j), tol);
        if (!same) {
            fprintf(stderr, "%s: step %zu: lambda differs from the reference's\n", what, i);
            return -1;
        }
    }
    return 0;
}
