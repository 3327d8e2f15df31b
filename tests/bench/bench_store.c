/* Benchmark of the step log: step rows per second each store commits with
 * N jobs logging at once, the embedded SQLite store against PostgreSQL (a
 * server of its own on a Unix socket, tests/unit/pg_cluster.c), measured
 * in the same run and printed as a table with their ratio.
 *
 * Each of N threads is a running job's worker: it queues ROWS step rows
 * as fast as it can, then the store's queue is flushed; rows per second =
 * N x ROWS / (the time from the first row to the flush's end). Every row
 * is then counted back, so a store that dropped rows fails the run.
 *
 *   bench_store [ROWS]    rows per job (default 20000) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "store/store.h"
#include "util/err.h"
#include "../unit/pg_cluster.h"

typedef struct job_ctx {
    eg_store *s;
    int64_t id;
    int attempt;
    long rows;
    int rc;
} job_ctx;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *log_rows(void *arg)
{
    job_ctx *c = arg;
    for (long i = 0; i < c->rows && c->rc == 0; i++) {
        eg_step_record r = {.step = i,
                            .epoch = i / 100,
                            .train_loss = 1.0 / (i + 1),
                            .meta_loss = 2.0 / (i + 1),
                            .hyper_norm = 0.5,
                            .n_lambda = 2,
                            .lambda = {0.1f, 0.2f},
                            .lambda_norm = 0.22,
                            .k = 2,
                            .w = {0.4, 0.6},
                            .step_ms = 1.5,
                            .meta_ms = 0.7,
                            .cur_bytes = 1 << 20,
                            .peak_bytes = 1 << 21};
        /* The queue holds 2^17 rows: past that, wait for the writer. */
        while ((c->rc = eg_store_step_append(c->s, c->id, c->attempt, &r)) != 0 &&
               strstr(eg_last_error(), "write queue full")) {
            c->rc = 0;
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
    }
    return NULL;
}

/* Rows per second of n jobs logging rows each on the store at db; -1 on
 * error. */
static double measure(const char *db, int n, long rows)
{
    eg_store *s = NULL;
    if (eg_store_open(db, &s) != 0) {
        fprintf(stderr, "bench_store: %s\n", eg_last_error());
        return -1;
    }
    job_ctx jobs[64];
    pthread_t th[64];
    char dev[32];
    for (int i = 0; i < n; i++) {
        snprintf(dev, sizeof dev, "bench:%d", i);
        const char *devs[] = {dev, NULL};
        eg_claim c;
        if (eg_store_job_insert(s, "{}", "toy1d", "none", dev, rows, &jobs[i].id) != 0 ||
            eg_store_job_claim(s, devs, "bench", 600, &c) != 0) {
            fprintf(stderr, "bench_store: %s\n", eg_last_error());
            eg_store_close(s);
            return -1;
        }
        free(c.spec);
        jobs[i] = (job_ctx){.s = s, .id = c.id, .attempt = c.attempt, .rows = rows};
    }
    double t0 = now_s();
    for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, log_rows, &jobs[i]);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        rc |= jobs[i].rc;
    }
    if (rc == 0) rc = eg_store_flush(s);
    double secs = now_s() - t0;
    for (int i = 0; i < n && rc == 0; i++) {
        json_t *j = NULL;
        if (eg_store_job_get(s, jobs[i].id, &j) != 0 ||
            json_integer_value(json_object_get(j, "steps_done")) != rows)
            rc = eg_errorf("job %lld: not every row was committed", (long long)jobs[i].id);
        json_decref(j);
    }
    if (rc != 0) fprintf(stderr, "bench_store: %s\n", eg_last_error());
    eg_store_close(s);
    return rc == 0 ? (double)n * rows / secs : -1;
}

int main(int argc, char **argv)
{
    long rows = argc > 1 ? atol(argv[1]) : 20000;
    if (rows < 1) rows = 20000;
    if (pgc_start() != 0) return 1;
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/egbench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return 1;
    static const int jobs[] = {1, 4, 16};
    printf("step rows per second committed, %ld rows per job (bench_store)\n", rows);
    printf("%-6s %14s %14s %8s\n", "jobs", "sqlite", "postgresql", "pg/sqlite");
    int rc = 0;
    for (size_t k = 0; k < sizeof jobs / sizeof *jobs; k++) {
        char path[400], name[32], conninfo[600];
        snprintf(path, sizeof path, "%s/bench-%d.db", dir, jobs[k]);
        snprintf(name, sizeof name, "bench_%d", jobs[k]);
        if (pgc_database(name, conninfo, sizeof conninfo) != 0) return 1;
        double a = measure(path, jobs[k], rows), b = measure(conninfo, jobs[k], rows);
        if (a < 0 || b < 0) rc = 1;
        printf("%-6d %14.0f %14.0f %8.2f\n", jobs[k], a, b, a > 0 ? b / a : 0);
    }
    char rm[300];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0) fprintf(stderr, "bench_store: cannot remove %s\n", dir);
    return rc;
}
