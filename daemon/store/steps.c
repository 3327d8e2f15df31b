/* The step log: a row per (job, step), written by the writer thread and
 * read in pages, downsampled on request. λ and the copy weights w are kept
 * as JSON arrays of text. */
#include "store/store_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

const char *const eg_sql_step_insert =
    "INSERT OR REPLACE INTO steps (job, step, epoch, train_loss, meta_loss, hyper_norm, "
    "lambda, lambda_norm, w, step_ms, meta_ms, cur_bytes, peak_bytes) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 "
    "WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?1)"; /* a deleted job logs nothing */

/* The shortest %g text that reads back as the same float (or double). */
static int put_float(char *p, size_t room, float x)
{
    int len = 0;
    for (int prec = 6; prec <= 9; prec++) {
        len = snprintf(p, room, "%.*g", prec, (double)x);
        if (strtof(p, NULL) == x) break;
    }
    return len;
}

static int put_double(char *p, size_t room, double x)
{
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(p, room, "%.*g", prec, x);
        if (strtod(p, NULL) == x) break;
    }
    return len;
}

/* Writes the JSON array of n values (floats when f, else doubles from d)
 * into buf; non-finite values become null. */
static void json_array_text(char *buf, size_t room, const float *f, const double *d, int n)
{
    size_t at = 0;
    buf[at++] = '[';
    for (int i = 0; i < n && at + 32 < room; i++) {
        if (i) buf[at++] = ',';
        double x = f ? (double)f[i] : d[i];
        if (!isfinite(x)) {
            memcpy(buf + at, "null", 4);
            at += 4;
        } else {
            at += f ? put_float(buf + at, room - at, f[i]) : put_double(buf + at, room - at, d[i]);
        }
    }
    buf[at++] = ']';
    buf[at] = '\0';
}

int eg_bind_step(sqlite3_stmt *st, int64_t job, const eg_step_record *r)
{
    /* 16 values of at most 24 characters each, with commas and brackets. */
    char lambda[16 * 26 + 8], w[16 * 26 + 8];
    int rc = sqlite3_bind_int64(st, 1, job);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, r->step);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, r->epoch);
    rc = rc ? rc : eg_bind_real(st, 4, r->train_loss);
    rc = rc ? rc : eg_bind_real(st, 5, r->meta_loss);
    rc = rc ? rc : eg_bind_real(st, 6, r->hyper_norm);
    if (r->n_lambda > 0 && r->n_lambda <= EG_RECORD_MAX_LAMBDA) {
        json_array_text(lambda, sizeof lambda, r->lambda, NULL, r->n_lambda);
        rc = rc ? rc : sqlite3_bind_text(st, 7, lambda, -1, SQLITE_TRANSIENT);
    } else {
        rc = rc ? rc : sqlite3_bind_null(st, 7); /* λ too large to log */
    }
    rc = rc ? rc : eg_bind_real(st, 8, r->lambda_norm);
    int k = r->k < 0 ? 0 : r->k > EG_RECORD_MAX_K ? EG_RECORD_MAX_K : r->k;
    json_array_text(w, sizeof w, NULL, r->w, k);
    rc = rc ? rc : sqlite3_bind_text(st, 9, w, -1, SQLITE_TRANSIENT);
    rc = rc ? rc : eg_bind_real(st, 10, r->step_ms);
    rc = rc ? rc : eg_bind_real(st, 11, r->meta_ms);
    rc = rc ? rc : sqlite3_bind_int64(st, 12, (sqlite3_int64)r->cur_bytes);
    rc = rc ? rc : sqlite3_bind_int64(st, 13, (sqlite3_int64)r->peak_bytes);
    return rc;
}

static const char SQL_JOB_EXISTS[] = "SELECT 1 FROM jobs WHERE id = ?1";

/* Rows in the page, counted on the (job, step) index alone. */
static const char SQL_STEPS_COUNT[] =
    "SELECT COUNT(*) FROM (SELECT step FROM steps WHERE job = ?1 AND step > ?2 "
    "ORDER BY step LIMIT ?3)";

static const char SQL_STEPS_RANGE[] =
    "SELECT step, epoch, train_loss, meta_loss, hyper_norm, lambda, lambda_norm, w, "
    "step_ms, meta_ms, cur_bytes, peak_bytes FROM steps "
    "WHERE job = ?1 AND step > ?2 ORDER BY step LIMIT ?3";

static json_t *step_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    if (!o) return NULL;
    static const struct {
        const char *key;
        json_t *(*get)(sqlite3_stmt *, int);
    } cols[] = {
        {"step", eg_col_int},       {"epoch", eg_col_int},     {"train_loss", eg_col_real},
        {"meta_loss", eg_col_real}, {"hyper_norm", eg_col_real}, {"lambda", eg_col_json},
        {"lambda_norm", eg_col_real}, {"w", eg_col_json},      {"step_ms", eg_col_real},
        {"meta_ms", eg_col_real},   {"cur_bytes", eg_col_int}, {"peak_bytes", eg_col_int},
    };
    for (int i = 0; i < (int)(sizeof cols / sizeof cols[0]); i++) {
        if (json_object_set_new(o, cols[i].key, cols[i].get(st, i)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* Index of the j-th kept row of n when m are kept: evenly spaced, the
 * first and the last included (only the last when m == 1). */
static long kept_index(long j, long n, long m)
{
    if (m <= 1) return n - 1;
    return (long)((long long)j * (n - 1) / (m - 1));
}

/* Fills arr with the page, in one read transaction of c. */
static int read_page(eg_conn *c, int64_t job, long after, int limit, int max_points,
                     json_t *arr, long *last_step, int *more)
{
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_JOB_EXISTS);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, job);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 1;
    if (rc != SQLITE_ROW) return eg_conn_fail(c, "reading a job");

    if (!(st = eg_conn_stmt(c, SQL_STEPS_COUNT))) return -1;
    sqlite3_bind_int64(st, 1, job);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
    rc = sqlite3_step(st);
    long total = rc == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) return eg_conn_fail(c, "counting steps");
    *more = total > limit;
    long n = *more ? limit : total;
    long m = max_points > 0 && n > max_points ? max_points : n;

    if (!(st = eg_conn_stmt(c, SQL_STEPS_RANGE))) return -1;
    sqlite3_bind_int64(st, 1, job);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, n);
    long i = 0, j = 0;
    int out = 0;
    while (j < m && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (i++ != kept_index(j, n, m)) continue; /* a row skipped by downsampling */
        j++;
        *last_step = (long)sqlite3_column_int64(st, 0);
        if (json_array_append_new(arr, step_json(st)) != 0) {
            out = eg_errorf("store: out of memory");
            break;
        }
    }
    if (out == 0 && j < m && rc != SQLITE_DONE) out = eg_conn_fail(c, "reading steps");
    sqlite3_reset(st);
    return out;
}

int eg_store_steps_page(eg_store *s, int64_t job, long after, int limit, int max_points,
                        json_t **out)
{
    *out = NULL;
    if (limit <= 0) return eg_errorf("store: steps page limit must be positive");
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    json_t *arr = json_array();
    long last_step = -1;
    int more = 0, rc = arr ? eg_conn_exec(c, "BEGIN") : eg_errorf("store: out of memory");
    if (rc == 0) rc = read_page(c, job, after, limit, max_points, arr, &last_step, &more);
    eg_reader_put(s, c);
    if (rc == 0) {
        json_t *o = json_pack("{s:o, s:o}", "steps", arr,
                              "next_after", more ? json_integer(last_step) : json_null());
        arr = NULL;
        if (!o) rc = eg_errorf("store: out of memory");
        *out = o;
    }
    json_decref(arr);
    return rc;
}
