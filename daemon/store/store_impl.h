/* Internals shared by the store's files: connections with their cached
 * statements, the pool of read-only connections, the writer's queue, and
 * helpers between SQLite values and JSON. */
#ifndef EG_STORE_IMPL_H
#define EG_STORE_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store/store.h"

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

/* Records whether this thread's last store failure was a full disk. */
void eg_store_note_failure(int full);

/* Creates the space reserve (space.c); -1 with eg_errorf when there is no
 * room for it. */
int eg_reserve_take(eg_store *s);

/* Gives the reserve back and marks the store full. */
void eg_reserve_release(eg_store *s);

/* Ends a read transaction begun with "BEGIN" (rolls back when COMMIT
 * cannot run). */
void eg_conn_read_end(eg_conn *c);

/* A queued write for the writer thread. */
typedef enum { EG_ITEM_STEP, EG_ITEM_EVAL } eg_item_kind;

typedef struct eg_item {
    eg_item_kind kind;
    int64_t job;
    double at; /* when it was queued: Unix time, seconds */
    union {
        eg_step_record step;
        struct {
            long step;
            eg_eval ev;
        } eval;
    } u;
} eg_item;

struct eg_store {
    char *path;

    /* The write connection. Held by the writer thread for each batch and
     * by every synchronous write, so writes never contend. */
    pthread_mutex_t wlock;
    eg_conn *w;

    /* The queue of pending writes: a ring of qlen items from qhead. */
    pthread_mutex_t qlock;
    pthread_cond_t qwake;   /* to the writer: work, a flush or the stop */
    pthread_cond_t qdone;   /* from the writer: a batch was handled */
    eg_item *q;
    size_t qcap, qhead, qlen;
    uint64_t enqueued;      /* items ever queued */
    uint64_t handled;       /* items ever taken and committed (or lost) */
    uint64_t failed_from, failed_upto;  /* items (from, upto] were in the last
                                           batch that failed */
    char failed_msg[256];
    int flushers;           /* threads waiting in eg_store_flush */
    int stopping;
    int writer_started;
    pthread_t writer;
    eg_item *batch;         /* the writer's copy of the batch in hand */

    /* The disk filled: the space reserve was given back (space.c); under
     * qlock. */
    int full;

    /* Read-only connections not in use. */
    pthread_mutex_t rlock;
    eg_conn *idle;
};

/* A read-only connection for this call (from the pool, or newly opened);
 * NULL after eg_errorf. Give it back with eg_reader_put. */
eg_conn *eg_reader_get(eg_store *s);
void eg_reader_put(eg_store *s, eg_conn *c);

/* Locks the write connection and begins an immediate transaction; on
 * failure the lock is released and -1 returned. */
int eg_write_begin(eg_store *s);

/* Commits (rc == 0) or rolls back (rc != 0) and unlocks; returns rc, or
 * -1 when the commit failed. */
int eg_write_end(eg_store *s, int rc);

/* Starts / stops the writer thread (stopping commits what is queued). */
int eg_writer_start(eg_store *s);
void eg_writer_stop(eg_store *s);

/* Binds the columns of a step row or an evaluation row for the writer's
 * INSERT statements (steps.c, evals.c own their layout). */
extern const char *const eg_sql_step_insert;
extern const char *const eg_sql_eval_insert;
int eg_bind_step(sqlite3_stmt *st, int64_t job, const eg_step_record *r, double at);
int eg_bind_eval(sqlite3_stmt *st, int64_t job, long step, const eg_eval *ev);

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

#endif
