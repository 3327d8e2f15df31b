/* The PostgreSQL store's internals, shared by its files: connections with
 * their prepared statements, the pool, running an operation again on a
 * new connection when the server went away, conversions between result
 * columns and JSON, and the store's operations (store_ops.h) each file
 * implements. */
#ifndef EG_STORE_PG_H
#define EG_STORE_PG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "store/store_ops.h"
#include "store/step_rows.h"
#include "store/writeq.h"

#define EG_PG_STMTS 64

/* One connection and the statements prepared on it, found by the address
 * of their SQL text. Used by one thread at a time. */
typedef struct pg_conn {
    PGconn *pg;
    int n;
    const char *sql[EG_PG_STMTS];
    int has_steps_in;     /* the session's COPY table exists */
    struct pg_conn *next; /* in the pool */
} pg_conn;

typedef struct eg_pg {
    eg_store base;
    char *conninfo;
    pthread_mutex_t lock; /* the pool */
    pg_conn *idle;
    eg_writeq q;

    /* LISTEN evograd_jobs: a thread on its own connection calls wake. */
    void (*wake)(void *ctx);
    void *wake_ctx;
    pthread_t listener;
    int listening, stopping; /* stopping: under lock */
} eg_pg;

/* Connects (with a notice processor that keeps the server's notices out
 * of stderr): NULL after eg_errorf. */
pg_conn *pg_connect(const char *conninfo);
void pg_close(pg_conn *c);

/* The result of the statement sql (prepared on c at first use; sql must
 * have static storage) run with n text parameters (NULL: SQL NULL), or
 * NULL after eg_errorf("store: what: <the server's message>") when it did
 * not give rows or complete. The caller PQclear()s it. */
PGresult *pg_q(pg_conn *c, const char *sql, int n, const char *const *params, const char *what);

/* pg_q for a command: 0 with *changed (may be NULL) the rows it touched,
 * or -1. */
int pg_x(pg_conn *c, const char *sql, int n, const char *const *params, const char *what,
         long *changed);

/* Runs BEGIN / COMMIT / ROLLBACK; pg_end commits when rc == 0, else
 * rolls back, and returns rc (or -1 when the commit failed). */
int pg_begin(pg_conn *c);
int pg_end(pg_conn *c, int rc);

/* Retrying an operation: pg_take gives a connection (from the pool, or
 * new); pg_give puts it back and returns 1 when the operation's result rc
 * stands, 0 when the connection was lost under it and the operation must
 * run again on a new one. A patient operation (the workers' writes) tries
 * again for up to EG_PG_PATIENCE_S seconds while the server is away; the
 * others once. pg_take returns NULL (after eg_errorf) when no connection
 * could be made in that time. */
#define EG_PG_PATIENCE_S 120
typedef struct pg_retry {
    int patient, tries;
    double t0;
} pg_retry;
pg_conn *pg_take(eg_pg *s, pg_retry *r);
int pg_give(eg_pg *s, pg_conn *c, pg_retry *r, int rc);

/* rc = call, with c a connection, retried as above. */
#define PG_RUN(s, is_patient, rc, call)                                                            \
    do {                                                                                           \
        pg_retry r_ = {.patient = (is_patient)};                                                   \
        pg_conn *c;                                                                                \
        (rc) = -1;                                                                                 \
        while ((c = pg_take((s), &r_))) {                                                          \
            (rc) = (call);                                                                         \
            if (pg_give((s), c, &r_, (rc))) break;                                                 \
        }                                                                                          \
    } while (0)

/* Text of numbers for parameters. */
typedef struct pg_num {
    char b[32];
} pg_num;
const char *pg_i64(pg_num *n, long long v);
const char *pg_f64(pg_num *n, double v); /* NULL (SQL NULL) when not finite */

/* Column j of row i as JSON: an integer, a real, a float32 engine value
 * (as its shortest float text), text, parsed JSON text, a boolean; SQL
 * NULL gives null. */
json_t *pg_col_int(const PGresult *r, int i, int j);
json_t *pg_col_real(const PGresult *r, int i, int j);
json_t *pg_col_f32(const PGresult *r, int i, int j);
json_t *pg_col_text(const PGresult *r, int i, int j);
json_t *pg_col_json(const PGresult *r, int i, int j);
json_t *pg_col_bool(const PGresult *r, int i, int j);
long long pg_get_i64(const PGresult *r, int i, int j);

/* A timestamptz column as ISO 8601 UTC with milliseconds. */
#define PG_TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The rows of r as a page: row(r, i) of each of the first limit rows
 * appended to arr (column 0 the id), *next_after the last id when more
 * rows follow (r holds limit + 1), else null. */
int pg_page(const PGresult *r, int limit, json_t *(*row)(const PGresult *, int), json_t *arr,
            json_t **next_after);

/* A random key for an insert that may be retried on a new connection
 * after the server committed it (the answer lost with the connection):
 * the rows carry it, unique, and the retry finds them. */
void pg_submit_key(char out[33]);

/* The write queue's commit (steps.c). */
int pg_commit(void *ctx, const eg_item *b, size_t n);

/* The operations, by file. */
void pg_op_close(eg_store *base);
int pg_op_flush(eg_store *base);
int pg_op_set_wake(eg_store *base, void (*wake)(void *ctx), void *ctx);
int pg_op_job_insert(eg_store *base, const char *spec_json, const char *task, const char *method,
                     const char *device, long total_steps, int64_t *id);
int pg_op_job_get(eg_store *base, int64_t id, json_t **out);
int pg_op_jobs_list(eg_store *base, const char *state, int64_t after, int limit, json_t **out);
int pg_op_job_counts(eg_store *base, long counts[5]);
int pg_op_newest_job(eg_store *base, int64_t *id);
int pg_op_oldest_queued_age(eg_store *base, double *seconds);
int pg_op_job_claim(eg_store *base, const char *const *devices, const char *worker, double lease_s,
                    eg_claim *c);
int pg_op_job_renew(eg_store *base, int64_t id, int attempt, double lease_s);
int pg_op_leases_expire(eg_store *base, int max_lost, int *requeued, int *failed);
int pg_op_job_set_total(eg_store *base, int64_t id, int attempt, long total_steps);
int pg_op_job_finish(eg_store *base, int64_t id, int attempt, const char *state, const char *error,
                     const char *summary_json);
int pg_op_job_cancel(eg_store *base, int64_t id);
int pg_op_job_cancel_requested(eg_store *base, int64_t id, int attempt);
int pg_op_job_delete(eg_store *base, int64_t id);
int pg_op_requeue_running(eg_store *base, const char *worker);
int pg_op_worker_beat(eg_store *base, const eg_store_worker *w);
int pg_op_workers(eg_store *base, double alive_s, json_t **out);
int pg_op_step_append(eg_store *base, int64_t job, int attempt, const eg_step_record *r);
int pg_op_steps_read(eg_store *base, int64_t job, long after, int limit, int max_points,
                     eg_step_row_fn fn, void *ctx, int *more);
int pg_op_steps_minmax(eg_store *base, int64_t job, long after, int limit, int max_points,
                       const int *cols, int n_cols, eg_step_page *page, int *more);
int pg_op_sweep_insert(eg_store *base, const char *name, const char *request_json,
                       const eg_store_job_row *rows, int n, int64_t *id);
int pg_op_sweep_get(eg_store *base, int64_t id, json_t **out);
int pg_op_sweeps_list(eg_store *base, int64_t after, int limit, json_t **out);
int pg_op_sweep_cancel(eg_store *base, int64_t id, int *n);
int pg_op_sweep_delete(eg_store *base, int64_t id, int64_t **ids, int *n);
int pg_op_eval_append(eg_store *base, int64_t job, int attempt, long step, const eg_eval *ev);
int pg_op_evals(eg_store *base, int64_t job, json_t **out);
int pg_op_checkpoint_record(eg_store *base, int64_t job, int attempt, long step, const char *path);
int pg_op_checkpoint_latest(eg_store *base, int64_t job, char **path, long *step);

#endif
