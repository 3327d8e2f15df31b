/* The SQLite store's internals, shared by its files: connections with
 * their cached statements, the pool of read-only connections, the store
 * with its write queue, helpers between SQLite values and JSON, and the
 * store's operations (store_ops.h) each file implements. */
#ifndef EG_STORE_IMPL_H
#define EG_STORE_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store/store_ops.h"
#include "store/step_rows.h"
#include "store/writeq.h"

#define EG_STMT_CACHE 48

/* One SQLite connection and its prepared statements, found by the address
 * of their SQL text. A connection is used by one thread at a time. */
typedef struct eg_conn {
    sqlite3 *db;
    int n;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[EG_STMT_CACHE];
    struct eg_conn *next;  /* in the pool of idle readers */
} eg_conn;

/* Opens path read-write (with the writer's pragmas: WAL, synchronous
 * NORMAL, foreign keys) or read-only; both with the busy timeout. */
int eg_conn_open(const char *path, int readonly, eg_conn **out);

/* Finalizes the cached statements and closes the connection. */
void eg_conn_close(eg_conn *c);

/* The statement for sql, prepared on first use and cached; sql must have
 * static storage (its address is the key). Returned reset, bindings
 * cleared. NULL after eg_errorf when it cannot be prepared. The caller
 * resets it when done so no read transaction stays open. */
sqlite3_stmt *eg_conn_stmt(eg_conn *c, const char *sql);

/* Runs a cached statement that returns no rows (BEGIN, COMMIT, ...). */
int eg_conn_exec(eg_conn *c, const char *sql);

/* Records "store: what: <SQLite's message>" and returns -1. */
int eg_conn_fail(eg_conn *c, const char *what);

/* Reads a page of a listing: st (bound by the caller, its LIMIT one past
 * limit, its column 0 the id) is stepped and row(st) of each of its first
 * limit rows appended to arr; *next_after gets the last id when more rows
 * follow, else JSON null (a new reference). 0, or -1 after eg_errorf
 * (what names the read). st is reset. */
int eg_conn_page(eg_conn *c, sqlite3_stmt *st, int limit, json_t *(*row)(sqlite3_stmt *),
                 json_t *arr, json_t **next_after, const char *what);

typedef struct eg_sqlite {
    eg_store base;
    char *path;

    /* The write connection. Held by the writer thread for each batch and
     * by every synchronous write, so writes never contend. */
    pthread_mutex_t wlock;
    eg_conn *w;

    /* Step and evaluation rows on their way (its full flag: the disk
     * filled and the space reserve was given back, space.c). */
    eg_writeq q;

    /* Read-only connections not in use. */
    pthread_mutex_t rlock;
    eg_conn *idle;
} eg_sqlite;

/* Creates the space reserve (space.c); -1 with eg_errorf when there is no
 * room for it. */
int eg_reserve_take(eg_sqlite *s);

/* Gives the reserve back and marks the store full. */
void eg_reserve_release(eg_sqlite *s);

/* Ends a read transaction begun with "BEGIN" (rolls back when COMMIT
 * cannot run). */
void eg_conn_read_end(eg_conn *c);


/* A read-only connection for this call (from the pool, or newly opened);
 * NULL after eg_errorf. Give it back with eg_reader_put. */
eg_conn *eg_reader_get(eg_sqlite *s);
void eg_reader_put(eg_sqlite *s, eg_conn *c);

/* Locks the write connection and begins an immediate transaction; on
 * failure the lock is released and -1 returned. */
int eg_write_begin(eg_sqlite *s);

/* Commits (rc == 0) or rolls back (rc != 0) and unlocks; returns rc, or
 * -1 when the commit failed. */
int eg_write_end(eg_sqlite *s, int rc);

/* Commits a batch of the write queue (writer.c): an eg_writeq commit. */
int eg_sq_commit(void *ctx, const eg_item *b, size_t n);

/* Binds the columns of a queued step or evaluation row for the writer's
 * INSERT statements (steps.c, evals.c own their layout). */
extern const char *const eg_sql_step_insert;
extern const char *const eg_sql_eval_insert;
int eg_bind_step(sqlite3_stmt *st, const eg_item *it);
int eg_bind_eval(sqlite3_stmt *st, const eg_item *it);

/* Binds x, or NULL when x is NaN or infinite. */
int eg_bind_real(sqlite3_stmt *st, int i, double x);

/* Column i as JSON: a real (NULL -> null), an integer, text (NULL ->
 * null), or parsed JSON text (NULL or unparsable -> null). Never NULL
 * except when out of memory. */
json_t *eg_col_real(sqlite3_stmt *st, int i);
json_t *eg_col_int(sqlite3_stmt *st, int i);
/* A column holding a float32 engine value (a loss, an angle), as the JSON
 * real of its shortest float text; null for NULL. */
json_t *eg_col_f32(sqlite3_stmt *st, int i);
json_t *eg_col_text(sqlite3_stmt *st, int i);
json_t *eg_col_json(sqlite3_stmt *st, int i);

/* The operations (store_ops.h), by file. */
void eg_sq_close(eg_store *base);
int eg_sq_out_of_space(eg_store *base);
int eg_sq_flush(eg_store *base);
int eg_sq_job_insert(eg_store *base, const char *spec_json, const char *task, const char *method,
                     const char *device, long total_steps, int64_t *id);
int eg_sq_job_get(eg_store *base, int64_t id, json_t **out);
int eg_sq_jobs_list(eg_store *base, const char *state, int64_t after, int limit, json_t **out);
int eg_sq_job_counts(eg_store *base, long counts[5]);
int eg_sq_newest_job(eg_store *base, int64_t *id);
int eg_sq_oldest_queued_age(eg_store *base, double *seconds);
int eg_sq_job_claim(eg_store *base, const char *const *devices, const char *worker,
                    double lease_s, eg_claim *c);
int eg_sq_job_renew(eg_store *base, int64_t id, int attempt, double lease_s);
int eg_sq_leases_expire(eg_store *base, int max_lost, int *requeued, int *failed);
int eg_sq_job_set_total(eg_store *base, int64_t id, int attempt, long total_steps);
int eg_sq_job_finish(eg_store *base, int64_t id, int attempt, const char *state,
                     const char *error, const char *summary_json);
int eg_sq_job_cancel(eg_store *base, int64_t id);
int eg_sq_job_cancel_requested(eg_store *base, int64_t id, int attempt);
int eg_sq_job_delete(eg_store *base, int64_t id);
int eg_sq_requeue_running(eg_store *base, const char *worker);
int eg_sq_worker_beat(eg_store *base, const eg_store_worker *w);
int eg_sq_workers(eg_store *base, double alive_s, json_t **out);
int eg_sq_step_append(eg_store *base, int64_t job, int attempt, const eg_step_record *r);
int eg_sq_steps_read(eg_store *base, int64_t job, long after, int limit, int max_points,
                     eg_step_row_fn fn, void *ctx, int *more);
int eg_sq_steps_minmax(eg_store *base, int64_t job, long after, int limit, int max_points,
                 const int *cols, int n_cols, eg_step_page *page, int *more);
int eg_sq_sweep_insert(eg_store *base, const char *name, const char *request_json,
                       const eg_store_job_row *rows, int n, int64_t *id);
int eg_sq_sweep_get(eg_store *base, int64_t id, json_t **out);
int eg_sq_sweeps_list(eg_store *base, int64_t after, int limit, json_t **out);
int eg_sq_sweep_cancel(eg_store *base, int64_t id, int *n);
int eg_sq_sweep_delete(eg_store *base, int64_t id, int64_t **ids, int *n);
int eg_sq_eval_append(eg_store *base, int64_t job, int attempt, long step, const eg_eval *ev);
int eg_sq_evals(eg_store *base, int64_t job, json_t **out);
int eg_sq_checkpoint_record(eg_store *base, int64_t job, int attempt, long step,
                            const char *path);
int eg_sq_checkpoint_latest(eg_store *base, int64_t job, char **path, long *step);

#endif
