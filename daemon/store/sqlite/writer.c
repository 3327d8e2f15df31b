/* The SQLite store's side of the write queue (store/writeq.h): a batch of
 * step and evaluation rows in one transaction, and the appends. */
#include "store/sqlite/sqlite.h"

#include <stdio.h>

#include "util/err.h"

static const char SQL_STEPS_DONE[] =
    "UPDATE jobs SET steps_done = "
    "(SELECT COALESCE(MAX(step) + 1, 0) FROM steps WHERE job = ?1) WHERE id = ?1";

/* Writes the rows b[0..n) in one transaction, and the steps_done of each
 * job that logged steps. Rows of an attempt that is no longer its job's
 * insert nothing (the statements' guard). */
int eg_sq_commit(void *ctx, const eg_item *b, size_t n)
{
    eg_sqlite *s = ctx;
    EG_TRY(eg_write_begin(s));
    eg_conn *c = s->w;
    int rc = 0;
    int64_t jobs[16];
    int n_jobs = 0, all_jobs = 1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const eg_item *it = &b[i];
        int is_step = it->kind == EG_ITEM_STEP;
        sqlite3_stmt *st = eg_conn_stmt(c, is_step ? eg_sql_step_insert : eg_sql_eval_insert);
        if (!st) {
            rc = -1;
            break;
        }
        int brc = is_step ? eg_bind_step(st, it) : eg_bind_eval(st, it);
        if (brc != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
            rc = eg_conn_fail(c, is_step ? "logging a step" : "logging an evaluation");
        sqlite3_reset(st);
        if (!is_step) continue;
        int seen = 0;
        for (int j = 0; j < n_jobs && !seen; j++) seen = jobs[j] == it->job;
        if (seen) continue;
        if (n_jobs < (int)(sizeof jobs / sizeof jobs[0])) jobs[n_jobs++] = it->job;
        else all_jobs = 0;
    }
    /* steps_done follows the rows; with more jobs than the list holds,
     * every job in the batch is updated row by row instead. */
    for (size_t i = 0; i < (all_jobs ? (size_t)n_jobs : n) && rc == 0; i++) {
        int64_t job;
        if (all_jobs) job = jobs[i];
        else if (b[i].kind == EG_ITEM_STEP) job = b[i].job;
        else continue;
        sqlite3_stmt *st = eg_conn_stmt(c, SQL_STEPS_DONE);
        if (!st) {
            rc = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, job);
        if (sqlite3_step(st) != SQLITE_DONE) rc = eg_conn_fail(c, "updating steps_done");
        sqlite3_reset(st);
    }
    return eg_write_end(s, rc);
}

int eg_sq_step_append(eg_store *base, int64_t job, int attempt, const eg_step_record *r)
{
    return eg_writeq_step(&((eg_sqlite *)base)->q, job, attempt, r);
}

int eg_sq_eval_append(eg_store *base, int64_t job, int attempt, long step, const eg_eval *ev)
{
    return eg_writeq_eval(&((eg_sqlite *)base)->q, job, attempt, step, ev);
}

int eg_sq_flush(eg_store *base)
{
    eg_sqlite *s = (eg_sqlite *)base;
    return eg_writeq_flush(&s->q);
}
