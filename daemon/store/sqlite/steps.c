/* The step log: a row per (job, step), written by the writer thread and
 * read in pages, downsampled on request. λ and the copy weights w are kept
 * as JSON arrays of text, and each whole row as the JSON the API serves. */
#include "store/sqlite/sqlite.h"
#include "store/step_rows.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/json_num.h"

/* A deleted job, or an attempt that is no longer the job's, logs nothing. */
const char *const eg_sql_step_insert =
    "INSERT OR REPLACE INTO steps (job, step, epoch, train_loss, meta_loss, hyper_norm, "
    "lambda, lambda_norm, w, step_ms, meta_ms, cur_bytes, peak_bytes, row, at, attempt) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16 "
    "WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?1 AND attempt = ?16 AND state = 'running')";

int eg_bind_step(sqlite3_stmt *st, const eg_item *it)
{
    const eg_step_record *r = &it->u.step;
    eg_step_texts x;
    if (eg_step_texts_make(r, it->at, &x) != 0) return SQLITE_NOMEM;
    int rc = sqlite3_bind_int64(st, 1, it->job);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, r->step);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, r->epoch);
    rc = rc ? rc : eg_bind_real(st, 4, r->train_loss);
    rc = rc ? rc : eg_bind_real(st, 5, r->meta_loss);
    rc = rc ? rc : eg_bind_real(st, 6, r->hyper_norm);
    if (x.has_lambda)
        rc = rc ? rc : sqlite3_bind_text(st, 7, x.lambda.buf, -1, SQLITE_TRANSIENT);
    else
        rc = rc ? rc : sqlite3_bind_null(st, 7); /* λ too large to log */
    rc = rc ? rc : eg_bind_real(st, 8, r->lambda_norm);
    rc = rc ? rc : sqlite3_bind_text(st, 9, x.w.buf, -1, SQLITE_TRANSIENT);
    rc = rc ? rc : eg_bind_real(st, 10, r->step_ms);
    rc = rc ? rc : eg_bind_real(st, 11, r->meta_ms);
    rc = rc ? rc : sqlite3_bind_int64(st, 12, (sqlite3_int64)r->cur_bytes);
    rc = rc ? rc : sqlite3_bind_int64(st, 13, (sqlite3_int64)r->peak_bytes);
    rc = rc ? rc : sqlite3_bind_text(st, 14, x.row.buf, (int)x.row.len, SQLITE_TRANSIENT);
    rc = rc ? rc : eg_bind_real(st, 15, round(it->at * 1e3) / 1e3);
    rc = rc ? rc : sqlite3_bind_int(st, 16, it->attempt);
    eg_step_texts_free(&x);
    return rc;
}

static const char SQL_JOB_EXISTS[] = "SELECT 1 FROM jobs WHERE id = ?1";

/* Rows in the page, counted on the (job, step) index alone. */
static const char SQL_STEPS_COUNT[] =
    "SELECT COUNT(*) FROM (SELECT step FROM steps WHERE job = ?1 AND step > ?2 "
    "ORDER BY step LIMIT ?3)";

static const char SQL_STEPS_RANGE[] =
    "SELECT step, row, epoch, train_loss, meta_loss, hyper_norm, lambda, lambda_norm, w, "
    "step_ms, meta_ms, cur_bytes, peak_bytes, at FROM steps "
    "WHERE job = ?1 AND step > ?2 ORDER BY step LIMIT ?3";

static double col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* The row's text: as logged, or rendered from its columns (rows logged
 * before the row column existed), into t. */
static const char *row_text(sqlite3_stmt *st, eg_text *t, size_t *len)
{
    if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
        *len = (size_t)sqlite3_column_bytes(st, 1);
        return (const char *)sqlite3_column_text(st, 1);
    }
    t->len = 0;
    eg_step_row_put(t, (long)sqlite3_column_int64(st, 0), (long)sqlite3_column_int64(st, 2),
            col_real(st, 3), col_real(st, 4), col_real(st, 5),
            (const char *)sqlite3_column_text(st, 6), col_real(st, 7),
            (const char *)sqlite3_column_text(st, 8), col_real(st, 9), col_real(st, 10),
            sqlite3_column_int64(st, 11), sqlite3_column_int64(st, 12), col_real(st, 13));
    *len = t->len;
    return t->oom ? NULL : t->buf;
}

/* Reads the page, in one read transaction of c, handing each kept row to
 * fn. */
static int read_page(eg_conn *c, int64_t job, long after, int limit, int max_points,
                     eg_step_row_fn fn, void *ctx, long *last_step, int *more)
{
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_JOB_EXISTS);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, job);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 1;
    if (rc != SQLITE_ROW) return eg_conn_fail(c, "reading a job");

    /* Downsampling needs the page's row count first; a plain page reads
     * one row past the limit to know whether more follow. */
    long n = (long)limit + 1, m = n;
    if (max_points > 0) {
        if (!(st = eg_conn_stmt(c, SQL_STEPS_COUNT))) return -1;
        sqlite3_bind_int64(st, 1, job);
        sqlite3_bind_int64(st, 2, after);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
        rc = sqlite3_step(st);
        long total = rc == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (rc != SQLITE_ROW) return eg_conn_fail(c, "counting steps");
        *more = total > limit;
        n = *more ? limit : total;
        m = n > max_points ? max_points : n;
    }

    if (!(st = eg_conn_stmt(c, SQL_STEPS_RANGE))) return -1;
    sqlite3_bind_int64(st, 1, job);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, n);
    long i = 0, j = 0;
    int out = 0;
    eg_text scratch = {0};
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long at = i++;
        if (max_points <= 0 && at == limit) { /* the row past the limit */
            *more = 1;
            break;
        }
        if (max_points > 0 && (j == m || at != eg_steps_kept_index(j, n, m))) continue; /* dropped */
        j++;
        *last_step = (long)sqlite3_column_int64(st, 0);
        size_t len;
        const char *text = row_text(st, &scratch, &len);
        if (!text || fn(ctx, *last_step, text, len) != 0) {
            out = eg_errorf("store: out of memory");
            break;
        }
    }
    free(scratch.buf);
    if (out == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) out = eg_conn_fail(c, "reading steps");
    sqlite3_reset(st);
    return out;
}

int eg_sq_steps_read(eg_store *base, int64_t job, long after, int limit, int max_points,
                        eg_step_row_fn fn, void *ctx, int *more)
{
    eg_sqlite *s = (eg_sqlite *)base;
    *more = 0;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    long last_step = -1;
    int rc = eg_conn_exec(c, "BEGIN");
    if (rc == 0) rc = read_page(c, job, after, limit, max_points, fn, ctx, &last_step, more);
    eg_reader_put(s, c);
    return rc;
}

static const char SQL_STEP_ONE[] =
    "SELECT step, row, epoch, train_loss, meta_loss, hyper_norm, lambda, lambda_norm, w, "
    "step_ms, meta_ms, cur_bytes, peak_bytes, at FROM steps WHERE job = ?1 AND step = ?2";

/* Pass 1 of a min/max page: the steps to keep (m->kept, m->n_kept) of the
 * rows after `after` (at most limit), in one scan (step_rows.h). */
static int minmax_steps(eg_conn *c, int64_t job, long after, int limit, int max_points,
                        const int *cols, int n_cols, eg_minmax *m, int *more)
{
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_STEPS_COUNT);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, job);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
    int rc = sqlite3_step(st);
    long total = rc == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) return eg_conn_fail(c, "counting steps");
    *more = total > limit;
    long n = *more ? limit : total;
    EG_TRY(eg_minmax_begin(m, n, max_points, n_cols));
    if (n == 0) return 0;
    /* The scan names only columns of the fixed list. */
    char sql[512] = "SELECT step";
    for (int k = 0; k < n_cols; k++)
        snprintf(sql + strlen(sql), sizeof sql - strlen(sql), ", %s",
                 eg_steps_minmax_cols[cols[k]]);
    snprintf(sql + strlen(sql), sizeof sql - strlen(sql),
             " FROM steps WHERE job = ?1 AND step > ?2 ORDER BY step LIMIT ?3");
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return eg_conn_fail(c, "preparing a step scan");
    sqlite3_bind_int64(st, 1, job);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, n);
    double v[EG_STEPS_MINMAX];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int k = 0; k < n_cols; k++)
            v[k] = sqlite3_column_type(st, k + 1) == SQLITE_NULL
                       ? NAN
                       : sqlite3_column_double(st, k + 1);
        eg_minmax_row(m, (long)sqlite3_column_int64(st, 0), v);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return eg_conn_fail(c, "reading steps");
    eg_minmax_end(m);
    return 0;
}

int eg_sq_steps_minmax(eg_store *base, int64_t job, long after, int limit, int max_points,
                       const int *cols, int n_cols, eg_step_page *page, int *more)
{
    eg_sqlite *s = (eg_sqlite *)base;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    eg_minmax m = {0};
    int rc = eg_conn_exec(c, "BEGIN");
    sqlite3_stmt *st = rc == 0 ? eg_conn_stmt(c, SQL_JOB_EXISTS) : NULL;
    if (rc == 0 && !st) rc = -1;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, job);
        int src = sqlite3_step(st);
        sqlite3_reset(st);
        rc = src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? 1 : eg_conn_fail(c, "reading a job");
    }
    if (rc == 0) rc = minmax_steps(c, job, after, limit, max_points, cols, n_cols, &m, more);
    eg_text scratch = {0};
    for (long k = 0; rc == 0 && k < m.n_kept; k++) {
        if (!(st = eg_conn_stmt(c, SQL_STEP_ONE))) {
            rc = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, job);
        sqlite3_bind_int64(st, 2, m.kept[k]);
        if (sqlite3_step(st) == SQLITE_ROW) {
            size_t l;
            const char *row = row_text(st, &scratch, &l);
            if (!row || eg_step_page_add(page, m.kept[k], row, l) != 0)
                rc = eg_errorf("store: out of memory");
        } else {
            rc = eg_conn_fail(c, "reading a step");
        }
        sqlite3_reset(st);
    }
    free(scratch.buf);
    free(m.kept);
    eg_conn_read_end(c);
    eg_reader_put(s, c);
    return rc;
}
