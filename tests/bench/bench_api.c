/* The daemon's API under load and the cost of its step log.
 *
 *   bench_api [SECONDS [THREADS]]      (default 5 s, 4 client threads)
 *
 * Starts `evogradd serve` (the one of this build) on a free loopback port
 * with a fresh database, and measures:
 *
 *   1. requests per second of GET /v1/jobs/{id}/steps?limit=100 from
 *      THREADS client threads, each on one keep-alive connection, for
 *      SECONDS, while a rotation job runs, once it has logged enough steps
 *      for every answer to hold 100 rows (goal: >= 5000 req/s on 2 cores);
 *      the page is checked once and every answer compared with it byte for
 *      byte;
 *   2. the step-logging overhead: the same rotation job's mean_step_ms in
 *      its summary when the daemon runs it vs `evogradd run` in the
 *      foreground (goal: <= 2%). Each side runs three times, interleaved; the
 *      faster run of each side is compared, the least disturbed by
 *      whatever else shares the machine.
 *
 * Both sides run with OMP_NUM_THREADS=1 unless the environment sets it.
 * Prints one line per measure; exits 1 only when the daemon or a job
 * could not run. */
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/daemon_harness.h"

#define LOAD_JOB \
    "{\"task\":\"rotation\",\"steps\":100000,\"eval_every\":100000,\"eval_limit\":100}"
#define TIMED_STEPS 150
#define TIMED_JOB                                                                       \
    "{\"task\":\"rotation\",\"steps\":150,\"eval_every\":1000000,\"eval_limit\":100}"
#define REPS 3
#define FULL_PAGE 100

typedef struct client {
    const dh_daemon *d;
    char path[96];
    const char *want;    /* the page every answer must hold, byte for byte */
    size_t want_len;
    double until_ms;
    long ok, bad;
} client;

/* The clients do not parse the answers (the client's JSON parser would
 * cost more than the daemon's answer): each must be the page checked once
 * before, byte for byte. */
static void *client_main(void *arg)
{
    client *c = arg;
    dh_req rq = {.method = "GET", .path = c->path, .raw = 1};
    while (dh_now_ms() < c->until_ms) {
        dh_resp r;
        if (dh_do(c->d, &rq, &r) == 0 && r.status == 200 && r.len == c->want_len &&
            memcmp(r.body, c->want, r.len) == 0)
            c->ok++;
        else
            c->bad++;
        dh_resp_free(&r);
    }
    dh_thread_end();
    return NULL;
}

/* GET /v1/jobs/{id}'s steps_done; -1 on failure. */
static long steps_done(const dh_daemon *d, int64_t id)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)id);
    dh_resp r;
    long n = -1;
    if (dh_get(d, path, &r) == 0 && r.status == 200)
        n = (long)json_integer_value(json_object_get(r.json, "steps_done"));
    dh_resp_free(&r);
    return n;
}

/* Requests per second of the steps page beside a running job; 0 on failure. */
static double measure_requests(const dh_daemon *d, double seconds, int threads)
{
    int64_t id = dh_submit(d, LOAD_JOB);
    /* Every answer a full page of rows. */
    if (id < 1 || dh_wait_job(d, id, NULL, FULL_PAGE + 1, 300, NULL) != 0) return 0;
    client *c = calloc((size_t)threads, sizeof *c);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    if (!c || !t) return 0;
    /* The page, checked once: 100 full rows. */
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%lld/steps?limit=100", (long long)id);
    dh_resp page;
    if (dh_get(d, path, &page) != 0 || page.status != 200 ||
        json_array_size(json_object_get(page.json, "steps")) != FULL_PAGE ||
        !json_is_number(json_object_get(json_array_get(json_object_get(page.json, "steps"), 99),
                                        "train_loss"))) {
        fprintf(stderr, "bench_api: %s is not a page of %d rows\n", path, FULL_PAGE);
        dh_resp_free(&page);
        return 0;
    }
    long s0 = steps_done(d, id);
    double t0 = dh_now_ms();
    for (int i = 0; i < threads; i++) {
        c[i].d = d;
        c[i].until_ms = t0 + seconds * 1e3;
        c[i].want = page.body;
        c[i].want_len = page.len;
        snprintf(c[i].path, sizeof c[i].path, "%s", path);
        if (pthread_create(&t[i], NULL, client_main, &c[i]) != 0) return 0;
    }
    long ok = 0, bad = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        ok += c[i].ok;
        bad += c[i].bad;
    }
    double secs = (dh_now_ms() - t0) / 1e3;
    long s1 = steps_done(d, id);
    printf("api: a page of %d rows is %zu bytes\n", FULL_PAGE, page.len);
    dh_resp_free(&page);
    free(c);
    free(t);
    snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", (long long)id);
    dh_req rq = {.method = "POST", .path = path};
    dh_resp r;
    dh_do(d, &rq, &r);
    dh_resp_free(&r);
    dh_wait_job(d, id, "canceled|succeeded|failed", 0, 60, NULL);
    double rate = ok / secs;
    printf("api: %.0f req/s  GET /v1/jobs/{id}/steps?limit=100, %d keep-alive clients, %.1f s, "
           "%ld failed, beside a running job (%.1f steps/s meanwhile)  [goal >= 5000 req/s on 2 "
           "cores: %s]\n", rate, threads, secs, bad, (s1 - s0) / secs,
           rate >= 5000 ? "met" : "NOT met");
    fflush(stdout);
    return bad ? 0 : rate;
}

/* mean_step_ms of TIMED_JOB run by the daemon; 0 on failure. */
static double daemon_step_ms(const dh_daemon *d)
{
    int64_t id = dh_submit(d, TIMED_JOB);
    json_t *job = NULL;
    if (id < 1 || dh_wait_job(d, id, "succeeded|failed|canceled", 0, 600, &job) != 0) return 0;
    const char *state = json_string_value(json_object_get(job, "state"));
    json_t *ms = json_object_get(json_object_get(job, "summary"), "mean_step_ms");
    double v = state && strcmp(state, "succeeded") == 0 && json_is_number(ms)
                   ? json_number_value(ms) : 0;
    if (!v) fprintf(stderr, "bench_api: the daemon's job ended %s\n", state ? state : "?");
    json_decref(job);
    return v;
}

/* mean_step_ms of TIMED_JOB run by `evogradd run`; 0 on failure. */
static double foreground_step_ms(const char *spec_path)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' run '%s' 2>/dev/null", dh_daemon_path(), spec_path);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    json_t *summary = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *ms = json_object_get(summary, "mean_step_ms");
    double v = rc == 0 && json_is_number(ms) ? json_number_value(ms) : 0;
    if (!v) fprintf(stderr, "bench_api: `%s` failed (status %d)\n", cmd, rc);
    json_decref(summary);
    return v;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    if (seconds <= 0 || threads < 1 || threads > 256) {
        fprintf(stderr, "usage: bench_api [SECONDS [THREADS]]\n");
        return 2;
    }
    setenv("OMP_NUM_THREADS", "1", 0);
    char dir[] = "/tmp/evograd-bench-api-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench_api: mkdtemp");
        return 1;
    }
    char spec_path[128];
    snprintf(spec_path, sizeof spec_path, "%s/job.json", dir);
    FILE *f = fopen(spec_path, "w");
    if (!f || fputs(TIMED_JOB "\n", f) < 0 || fclose(f) != 0) {
        perror("bench_api: writing the job spec");
        return 1;
    }
    char ddir[128];
    snprintf(ddir, sizeof ddir, "%s/daemon", dir);
    dh_daemon d;
    dh_opts o = {.log_level = "warn"};
    int rc = 1;
    if (dh_start(&d, ddir, &o) != 0) goto out;
    printf("bench_api: %s, OMP_NUM_THREADS=%s, %ld cores online\n", dh_daemon_path(),
           getenv("OMP_NUM_THREADS"), sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);
    if (measure_requests(&d, seconds, threads) <= 0) goto out;

    double best_d = 0, best_f = 0, worst_d = 0, worst_f = 0;
    for (int rep = 0; rep < REPS; rep++) {
        double dm = daemon_step_ms(&d), fm = foreground_step_ms(spec_path);
        if (dm <= 0 || fm <= 0) goto out;
        printf("  run %d: daemon %.3f ms/step, foreground %.3f ms/step\n", rep + 1, dm, fm);
        fflush(stdout);
        if (best_d == 0 || dm < best_d) best_d = dm;
        if (best_f == 0 || fm < best_f) best_f = fm;
        if (dm > worst_d) worst_d = dm;
        if (fm > worst_f) worst_f = fm;
    }
    double overhead = (best_d / best_f - 1) * 100;
    /* How far runs of one side differ: the resolution of the comparison. */
    double spread = 100 * (worst_d / best_d > worst_f / best_f ? worst_d / best_d - 1
                                                               : worst_f / best_f - 1);
    printf("step logging: daemon %.3f ms/step vs foreground %.3f ms/step (rotation, %d steps, "
           "best of %d): overhead %+.2f%%  [goal <= 2%%: %s]\n", best_d, best_f, TIMED_STEPS,
           REPS, overhead, overhead <= 2 ? "met" : "NOT met");
    if (spread > 2)
        printf("  runs of one side differ by up to %.1f%%: the machine is too busy for the "
               "overhead to be resolved to 2%%\n", spread);
    rc = 0;
out:
    if (d.pid > 0) {
        int status;
        dh_stop(&d, SIGTERM, 10, &status);
        if (status != 0) fprintf(stderr, "bench_api: the daemon exited with %d\n", status);
    }
    dh_thread_end();
    if (rc != 0) fprintf(stderr, "bench_api: failed; the daemon's log is in %s\n", ddir);
    else nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
