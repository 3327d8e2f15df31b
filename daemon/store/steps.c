/* The step log: a row per (job, step), written by the writer thread and
 * read in pages, downsampled on request. λ and the copy weights w are kept
 * as JSON arrays of text, and each whole row as the JSON the API serves. */
#include "store/store_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/json_num.h"

const char *const eg_sql_step_insert =
    "INSERT OR REPLACE INTO steps (job, step, epoch, train_loss, meta_loss, hyper_norm, "
    "lambda, lambda_norm, w, step_ms, meta_ms, cur_bytes, peak_bytes, row, at) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15 "
    "WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?1)"; /* a deleted job logs nothing */

/* The JSON array of n float32 values (non-finite ones null). */
static void put_array(eg_text *t, const float *f, const double *d, int n)
{
    eg_text_put(t, "[", 1);
    for (int i = 0; i < n; i++) {
        if (i) eg_text_put(t, ",", 1);
        eg_text_f32(t, f ? (double)f[i] : d[i]);
    }
    eg_text_put(t, "]", 1);
}

/* A step row as the API serves it, the one serialiser of steps: the
 * record's figures are float32 engine values (times too, to 9 digits),
 * written as their shortest text. lambda and w are the arrays' text (NULL:
 * null); at, the Unix time it was logged in seconds, goes out as at_ms,
 * whole milliseconds (NaN: null). */
static void put_row(eg_text *t, long step, long epoch, double train_loss, double meta_loss,
                    double hyper_norm, const char *lambda, double lambda_norm, const char *w,
                    double step_ms, double meta_ms, long long cur, long long peak, double at)
{
    eg_text_puts(t, "{\"step\":");
    eg_text_int(t, step);
    eg_text_puts(t, ",\"epoch\":");
    eg_text_int(t, epoch);
    eg_text_puts(t, ",\"train_loss\":");
    eg_text_f32(t, train_loss);
    eg_text_puts(t, ",\"meta_loss\":");
    eg_text_f32(t, meta_loss);
    eg_text_puts(t, ",\"hyper_norm\":");
    eg_text_f32(t, hyper_norm);
    eg_text_puts(t, ",\"lambda\":");
    eg_text_puts(t, lambda ? lambda : "null");
    eg_text_puts(t, ",\"lambda_norm\":");
    eg_text_f32(t, lambda_norm);
    eg_text_puts(t, ",\"w\":");
    eg_text_puts(t, w ? w : "[]");
    eg_text_puts(t, ",\"step_ms\":");
    eg_text_f32(t, step_ms);
    eg_text_puts(t, ",\"meta_ms\":");
    eg_text_f32(t, meta_ms);
    eg_text_puts(t, ",\"cur_bytes\":");
    eg_text_int(t, cur);
    eg_text_puts(t, ",\"peak_bytes\":");
    eg_text_int(t, peak);
    eg_text_puts(t, ",\"at_ms\":");
    if (isnan(at)) eg_text_puts(t, "null");
    else eg_text_int(t, llround(at * 1e3));
    eg_text_put(t, "}", 1);
}

int eg_bind_step(sqlite3_stmt *st, int64_t job, const eg_step_record *r, double at)
{
    eg_text lambda = {0}, w = {0}, row = {0};
    int has_lambda = r->n_lambda > 0 && r->n_lambda <= EG_RECORD_MAX_LAMBDA;
    if (has_lambda) put_array(&lambda, r->lambda, NULL, r->n_lambda);
    int k = r->k < 0 ? 0 : r->k > EG_RECORD_MAX_K ? EG_RECORD_MAX_K : r->k;
    put_array(&w, NULL, r->w, k);
    put_row(&row, r->step, r->epoch, r->train_loss, r->meta_loss, r->hyper_norm,
            has_lambda ? lambda.buf : NULL, r->lambda_norm, w.buf, r->step_ms, r->meta_ms,
            (long long)r->cur_bytes, (long long)r->peak_bytes, at);
    int rc = lambda.oom || w.oom || row.oom ? SQLITE_NOMEM : SQLITE_OK;
    rc = rc ? rc : sqlite3_bind_int64(st, 1, job);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, r->step);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, r->epoch);
    rc = rc ? rc : eg_bind_real(st, 4, r->train_loss);
    rc = rc ? rc : eg_bind_real(st, 5, r->meta_loss);
    rc = rc ? rc : eg_bind_real(st, 6, r->hyper_norm);
    if (has_lambda)
        rc = rc ? rc : sqlite3_bind_text(st, 7, lambda.buf, -1, SQLITE_TRANSIENT);
    else
        rc = rc ? rc : sqlite3_bind_null(st, 7); /* λ too large to log */
    rc = rc ? rc : eg_bind_real(st, 8, r->lambda_norm);
    rc = rc ? rc : sqlite3_bind_text(st, 9, w.buf, -1, SQLITE_TRANSIENT);
    rc = rc ? rc : eg_bind_real(st, 10, r->step_ms);
    rc = rc ? rc : eg_bind_real(st, 11, r->meta_ms);
    rc = rc ? rc : sqlite3_bind_int64(st, 12, (sqlite3_int64)r->cur_bytes);
    rc = rc ? rc : sqlite3_bind_int64(st, 13, (sqlite3_int64)r->peak_bytes);
    rc = rc ? rc : sqlite3_bind_text(st, 14, row.buf, (int)row.len, SQLITE_TRANSIENT);
    rc = rc ? rc : eg_bind_real(st, 15, round(at * 1e3) / 1e3);
    free(lambda.buf);
    free(w.buf);
    free(row.buf);
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
    put_row(t, (long)sqlite3_column_int64(st, 0), (long)sqlite3_column_int64(st, 2),
            col_real(st, 3), col_real(st, 4), col_real(st, 5),
            (const char *)sqlite3_column_text(st, 6), col_real(st, 7),
            (const char *)sqlite3_column_text(st, 8), col_real(st, 9), col_real(st, 10),
            sqlite3_column_int64(st, 11), sqlite3_column_int64(st, 12), col_real(st, 13));
    *len = t->len;
    return t->oom ? NULL : t->buf;
}

/* Index of the j-th kept row of n when m are kept: evenly spaced, the
 * first and the last included (only the last when m == 1). */
static long kept_index(long j, long n, long m)
{
    if (m <= 1) return n - 1;
    return (long)((long long)j * (n - 1) / (m - 1));
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
        if (max_points > 0 && (j == m || at != kept_index(j, n, m))) continue; /* dropped */
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

int eg_store_steps_read(eg_store *s, int64_t job, long after, int limit, int max_points,
                        eg_step_row_fn fn, void *ctx, int *more)
{
    *more = 0;
    if (limit <= 0) return eg_errorf("store: steps page limit must be positive");
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    long last_step = -1;
    int rc = eg_conn_exec(c, "BEGIN");
    if (rc == 0) rc = read_page(c, job, after, limit, max_points, fn, ctx, &last_step, more);
    eg_reader_put(s, c);
    return rc;
}

typedef struct page {
    eg_text t;
    int rows;
    long last;
} page;

static int add_row(void *ctx, long step, const char *text, size_t len)
{
    page *p = ctx;
    if (p->rows++) eg_text_put(&p->t, ",", 1);
    eg_text_put(&p->t, text, len);
    p->last = step;
    return p->t.oom ? -1 : 0;
}

/* Closes a page read with result rc: its next_after, and the text handed
 * to the caller (freed on failure). */
static int page_end(page *p, int rc, int more, char **text, size_t *len)
{
    if (rc == 0) {
        eg_text_puts(&p->t, "],\"next_after\":");
        if (more) eg_text_int(&p->t, p->last);
        else eg_text_puts(&p->t, "null");
        eg_text_puts(&p->t, "}");
        if (p->t.oom) rc = eg_errorf("store: out of memory");
    }
    if (rc != 0) {
        free(p->t.buf);
        return rc;
    }
    *text = p->t.buf;
    *len = p->t.len;
    return 0;
}

int eg_store_steps_page(eg_store *s, int64_t job, long after, int limit, int max_points,
                        char **text, size_t *len)
{
    *text = NULL;
    page p = {.last = -1};
    eg_text_puts(&p.t, "{\"steps\":[");
    int more = 0;
    int rc = eg_store_steps_read(s, job, after, limit, max_points, add_row, &p, &more);
    return page_end(&p, rc, more, text, len);
}

/* The columns a min/max page may follow. */
static const char *const minmax_cols[] = {"train_loss", "meta_loss", "hyper_norm",
                                          "lambda_norm", "step_ms", "meta_ms",
                                          "cur_bytes", "peak_bytes"};
#define N_MINMAX (int)(sizeof minmax_cols / sizeof *minmax_cols)

static const char SQL_STEP_ONE[] =
    "SELECT step, row, epoch, train_loss, meta_loss, hyper_norm, lambda, lambda_norm, w, "
    "step_ms, meta_ms, cur_bytes, peak_bytes, at FROM steps WHERE job = ?1 AND step = ?2";

int eg_store_steps_column(const char *name)
{
    for (int i = 0; i < N_MINMAX; i++)
        if (strcmp(minmax_cols[i], name) == 0) return i;
    return -1;
}

/* The columns of a comma-separated list into cols[] (each once); their
 * count, or -1 with eg_errorf for a name that is not one. */
static int parse_columns(const char *by, int *cols)
{
    int n = 0;
    for (const char *p = by; *p;) {
        size_t l = strcspn(p, ",");
        char name[32];
        if (l == 0 || l >= sizeof name) return eg_errorf("store: no step column in \"%s\"", by);
        memcpy(name, p, l);
        name[l] = '\0';
        int c = eg_store_steps_column(name);
        if (c < 0) return eg_errorf("store: no step column %s", name);
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= cols[i] == c;
        if (!seen) cols[n++] = c;
        p += l;
        if (*p == ',') p++;
    }
    return n > 0 ? n : eg_errorf("store: no step column given");
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

typedef struct extreme {
    double lo, hi;
    long lo_step, hi_step; /* -1: none yet in this bucket */
} extreme;

/* Pass 1 of a min/max page: the steps to keep (ascending, distinct, in
 * *kept, malloc'd): of the rows after `after` (at most limit), split into
 * max_points / 2 buckets of consecutive rows, each bucket's rows at the
 * minimum and at the maximum of each column cols[0..n), and the last row;
 * all in one scan. */
static int minmax_steps(eg_conn *c, int64_t job, long after, int limit, int max_points,
                        const int *cols, int n_cols, long **kept, long *n_kept, int *more)
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
    long n = *more ? limit : total, buckets = max_points / 2 > 0 ? max_points / 2 : 1;
    if (buckets > n) buckets = n;
    *kept = malloc(((size_t)buckets * 2 * (size_t)n_cols + 1) * sizeof **kept);
    if (!*kept) return eg_errorf("store: out of memory");
    *n_kept = 0;
    if (n == 0) return 0;
    /* The scan names only columns of the fixed list above. */
    char sql[512] = "SELECT step";
    for (int k = 0; k < n_cols; k++)
        snprintf(sql + strlen(sql), sizeof sql - strlen(sql), ", %s", minmax_cols[cols[k]]);
    snprintf(sql + strlen(sql), sizeof sql - strlen(sql),
             " FROM steps WHERE job = ?1 AND step > ?2 ORDER BY step LIMIT ?3");
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return eg_conn_fail(c, "preparing a step scan");
    sqlite3_bind_int64(st, 1, job);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, n);
    extreme ex[N_MINMAX];
    long i = 0, bucket = -1, step = -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long b = (long)((long long)i++ * buckets / n);
        for (int k = 0; k < n_cols && b != bucket; k++) { /* close the bucket */
            if (bucket >= 0 && ex[k].lo_step >= 0) (*kept)[(*n_kept)++] = ex[k].lo_step;
            if (bucket >= 0 && ex[k].hi_step >= 0 && ex[k].hi_step != ex[k].lo_step)
                (*kept)[(*n_kept)++] = ex[k].hi_step;
            ex[k].lo_step = ex[k].hi_step = -1;
        }
        bucket = b;
        step = (long)sqlite3_column_int64(st, 0);
        for (int k = 0; k < n_cols; k++) {
            if (sqlite3_column_type(st, k + 1) == SQLITE_NULL) continue;
            double v = sqlite3_column_double(st, k + 1);
            if (ex[k].lo_step < 0 || v < ex[k].lo) ex[k].lo = v, ex[k].lo_step = step;
            if (ex[k].hi_step < 0 || v > ex[k].hi) ex[k].hi = v, ex[k].hi_step = step;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return eg_conn_fail(c, "reading steps");
    for (int k = 0; k < n_cols; k++) {
        if (ex[k].lo_step >= 0) (*kept)[(*n_kept)++] = ex[k].lo_step;
        if (ex[k].hi_step >= 0 && ex[k].hi_step != ex[k].lo_step)
            (*kept)[(*n_kept)++] = ex[k].hi_step;
    }
    (*kept)[(*n_kept)++] = step;
    qsort(*kept, (size_t)*n_kept, sizeof **kept, cmp_long);
    long m = 0;
    for (long k = 0; k < *n_kept; k++)
        if (m == 0 || (*kept)[k] != (*kept)[m - 1]) (*kept)[m++] = (*kept)[k];
    *n_kept = m;
    return 0;
}

int eg_store_steps_minmax_page(eg_store *s, int64_t job, long after, int limit, int max_points,
                               const char *by, char **text, size_t *len)
{
    *text = NULL;
    int cols[N_MINMAX], n_cols = parse_columns(by, cols);
    if (n_cols < 0) return -1;
    if (limit <= 0 || max_points <= 0) return eg_errorf("store: bad steps page");
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    page p = {.last = -1};
    eg_text_puts(&p.t, "{\"steps\":[");
    long *kept = NULL, n_kept = 0;
    int more = 0, rc = eg_conn_exec(c, "BEGIN");
    sqlite3_stmt *st = rc == 0 ? eg_conn_stmt(c, SQL_JOB_EXISTS) : NULL;
    if (rc == 0 && !st) rc = -1;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, job);
        int src = sqlite3_step(st);
        sqlite3_reset(st);
        rc = src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? 1 : eg_conn_fail(c, "reading a job");
    }
    if (rc == 0)
        rc = minmax_steps(c, job, after, limit, max_points, cols, n_cols, &kept, &n_kept, &more);
    eg_text scratch = {0};
    for (long k = 0; rc == 0 && k < n_kept; k++) {
        if (!(st = eg_conn_stmt(c, SQL_STEP_ONE))) {
            rc = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, job);
        sqlite3_bind_int64(st, 2, kept[k]);
        if (sqlite3_step(st) == SQLITE_ROW) {
            size_t l;
            const char *row = row_text(st, &scratch, &l);
            if (!row || add_row(&p, kept[k], row, l) != 0) rc = eg_errorf("store: out of memory");
        } else {
            rc = eg_conn_fail(c, "reading a step");
        }
        sqlite3_reset(st);
    }
    free(scratch.buf);
    free(kept);
    eg_conn_read_end(c);
    eg_reader_put(s, c);
    return page_end(&p, rc, more, text, len);
}
