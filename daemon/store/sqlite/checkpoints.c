/* Checkpoint records: which file holds a job's state after which step. */
#include "store/sqlite/sqlite.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

static const char SQL_CKPT_INSERT[] =
    "INSERT OR REPLACE INTO checkpoints (job, step, path) SELECT ?1, ?2, ?3 "
    "WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?1 AND attempt = ?4 AND state = 'running')";
static const char SQL_JOB_EXISTS[] = "SELECT 1 FROM jobs WHERE id = ?1";

static const char SQL_CKPT_LATEST[] =
    "SELECT path, step FROM checkpoints WHERE job = ?1 ORDER BY step DESC LIMIT 1";

/* Also commits the queued step rows first, so that a recorded checkpoint
 * never runs ahead of the step log. */
int eg_sq_checkpoint_record(eg_store *base, int64_t job, int attempt, long step,
                            const char *path)
{
    eg_sqlite *s = (eg_sqlite *)base;
    EG_TRY(eg_writeq_flush(&s->q));
    EG_TRY(eg_write_begin(s));
    sqlite3_stmt *st = eg_conn_stmt(s->w, SQL_CKPT_INSERT);
    int rc = st ? 0 : -1;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, job);
        sqlite3_bind_int64(st, 2, step);
        sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, attempt);
        if (sqlite3_step(st) != SQLITE_DONE) rc = eg_conn_fail(s->w, "recording a checkpoint");
        else if (sqlite3_changes(s->w->db) == 0) rc = EG_STORE_LOST;
        sqlite3_reset(st);
    }
    if (rc == EG_STORE_LOST) { /* gone, or not this attempt's */
        if (!(st = eg_conn_stmt(s->w, SQL_JOB_EXISTS))) rc = -1;
        else {
            sqlite3_bind_int64(st, 1, job);
            int src = sqlite3_step(st);
            if (src == SQLITE_DONE) rc = 1;
            else if (src != SQLITE_ROW) rc = eg_conn_fail(s->w, "reading a job");
            sqlite3_reset(st);
        }
    }
    return eg_write_end(s, rc);
}

int eg_sq_checkpoint_latest(eg_store *base, int64_t job, char **path, long *step)
{
    eg_sqlite *s = (eg_sqlite *)base;
    *path = NULL;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_CKPT_LATEST);
    int rc = st ? 0 : -1;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, job);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            *path = strdup((const char *)sqlite3_column_text(st, 0));
            *step = (long)sqlite3_column_int64(st, 1);
            if (!*path) rc = eg_errorf("store: out of memory");
        } else {
            rc = src == SQLITE_DONE ? 1 : eg_conn_fail(c, "reading checkpoints");
        }
        sqlite3_reset(st);
    }
    eg_reader_put(s, c);
    return rc;
}
