/* The step log, evaluations and checkpoint records in the PostgreSQL
 * store. A batch of the write queue is one transaction: its step rows go
 * through COPY into a session table and from there into steps, joined with
 * the jobs whose current attempt wrote them (a stale attempt's rows are
 * dropped there), each (job, step) once. */
#include "store/postgres/pg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/step_rows.h"
#include "util/err.h"
#include "util/text.h"

static const char SQL_STEPS_IN[] =
    "CREATE TEMP TABLE IF NOT EXISTS steps_in (job BIGINT, attempt INTEGER, step BIGINT, "
    "epoch BIGINT, train_loss DOUBLE PRECISION, meta_loss DOUBLE PRECISION, "
    "hyper_norm DOUBLE PRECISION, lambda TEXT, lambda_norm DOUBLE PRECISION, w TEXT, "
    "step_ms DOUBLE PRECISION, meta_ms DOUBLE PRECISION, cur_bytes BIGINT, "
    "peak_bytes BIGINT, row TEXT, at DOUBLE PRECISION) ON COMMIT DELETE ROWS";
static const char SQL_COPY[] = "COPY steps_in FROM STDIN";
static const char SQL_STEPS_MOVE[] =
    "INSERT INTO steps (job, step, epoch, train_loss, meta_loss, hyper_norm, lambda, "
    "lambda_norm, w, step_ms, meta_ms, cur_bytes, peak_bytes, row, at, attempt) "
    "SELECT DISTINCT ON (i.job, i.step) i.job, i.step, i.epoch, i.train_loss, i.meta_loss, "
    "i.hyper_norm, i.lambda, i.lambda_norm, i.w, i.step_ms, i.meta_ms, i.cur_bytes, "
    "i.peak_bytes, i.row, i.at, i.attempt FROM steps_in i JOIN jobs j ON j.id = i.job AND "
    "j.attempt = i.attempt AND j.state = 'running' ORDER BY i.job, i.step "
    "ON CONFLICT (job, step) DO UPDATE SET epoch = excluded.epoch, "
    "train_loss = excluded.train_loss, meta_loss = excluded.meta_loss, "
    "hyper_norm = excluded.hyper_norm, lambda = excluded.lambda, "
    "lambda_norm = excluded.lambda_norm, w = excluded.w, step_ms = excluded.step_ms, "
    "meta_ms = excluded.meta_ms, cur_bytes = excluded.cur_bytes, "
    "peak_bytes = excluded.peak_bytes, row = excluded.row, at = excluded.at, "
    "attempt = excluded.attempt";
static const char SQL_STEPS_DONE[] =
    "UPDATE jobs j SET steps_done = (SELECT COALESCE(MAX(step) + 1, 0) FROM steps "
    "WHERE job = j.id) WHERE j.id IN (SELECT DISTINCT job FROM steps_in)";
static const char SQL_EVAL_INSERT[] =
    "INSERT INTO evals (job, step, test_acc, test_loss, angle_deg, w_corrupted, w_clean, "
    "vnet_curve, test_acc_ci95, dev_f1, test_f1) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $10, "
    "$11, $12 "
    "WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND attempt = $9 AND state = 'running') "
    "ON CONFLICT (job, step) DO UPDATE SET test_acc = excluded.test_acc, "
    "test_loss = excluded.test_loss, angle_deg = excluded.angle_deg, "
    "w_corrupted = excluded.w_corrupted, w_clean = excluded.w_clean, "
    "vnet_curve = excluded.vnet_curve, test_acc_ci95 = excluded.test_acc_ci95, "
    "dev_f1 = excluded.dev_f1, test_f1 = excluded.test_f1";

/* COPY's text format: a field, escaped (backslash, tab, newline, CR). */
static void copy_text(eg_text *t, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': eg_text_puts(t, "\\\\"); break;
        case '\t': eg_text_puts(t, "\\t"); break;
        case '\n': eg_text_puts(t, "\\n"); break;
        case '\r': eg_text_puts(t, "\\r"); break;
        default: eg_text_put(t, s, 1);
        }
    }
}

static void copy_real(eg_text *t, double x)
{
    if (isfinite(x))
        eg_text_printf(t, "%.17g", x);
    else
        eg_text_puts(t, "\\N");
}

/* One step row as a COPY line into t. */
static int copy_line(eg_text *t, const eg_item *it)
{
    const eg_step_record *r = &it->u.step;
    eg_step_texts x;
    EG_TRY(eg_step_texts_make(r, it->at, &x));
    eg_text_printf(t, "%lld\t%d\t%ld\t%ld\t", (long long)it->job, it->attempt, r->step, r->epoch);
    copy_real(t, r->train_loss);
    eg_text_put(t, "\t", 1);
    copy_real(t, r->meta_loss);
    eg_text_put(t, "\t", 1);
    copy_real(t, r->hyper_norm);
    eg_text_put(t, "\t", 1);
    if (x.has_lambda)
        copy_text(t, x.lambda.buf);
    else
        eg_text_puts(t, "\\N");
    eg_text_put(t, "\t", 1);
    copy_real(t, r->lambda_norm);
    eg_text_put(t, "\t", 1);
    copy_text(t, x.w.buf);
    eg_text_put(t, "\t", 1);
    copy_real(t, r->step_ms);
    eg_text_put(t, "\t", 1);
    copy_real(t, r->meta_ms);
    eg_text_printf(t, "\t%lld\t%lld\t", (long long)r->cur_bytes, (long long)r->peak_bytes);
    copy_text(t, x.row.buf);
    eg_text_put(t, "\t", 1);
    copy_real(t, round(it->at * 1e3) / 1e3);
    eg_text_put(t, "\n", 1);
    eg_step_texts_free(&x);
    return t->oom ? eg_errorf("store: out of memory") : 0;
}

/* COPYs the step rows of b[0..n) into steps_in. */
static int copy_steps(pg_conn *c, const eg_item *b, size_t n)
{
    eg_text t = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (b[i].kind == EG_ITEM_STEP) rc = copy_line(&t, &b[i]);
    if (rc != 0 || t.len == 0) {
        free(t.buf);
        return rc;
    }
    /* COPY takes no parameters and cannot be prepared: the one statement
     * sent as text. */
    PGresult *r = PQexec(c->pg, SQL_COPY);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        char m[512];
        snprintf(m, sizeof m, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
        m[strcspn(m, "\n")] = '\0';
        PQclear(r);
        free(t.buf);
        return eg_errorf("store: logging steps: %s", m);
    }
    PQclear(r);
    if (PQputCopyData(c->pg, t.buf, (int)t.len) != 1 || PQputCopyEnd(c->pg, NULL) != 1)
        rc = eg_errorf("store: logging steps: %s", PQerrorMessage(c->pg));
    free(t.buf);
    while ((r = PQgetResult(c->pg))) {
        if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK) {
            char m[512];
            snprintf(m, sizeof m, "%s", PQresultErrorMessage(r));
            m[strcspn(m, "\n")] = '\0';
            rc = eg_errorf("store: logging steps: %s", m);
        }
        PQclear(r);
    }
    return rc;
}

static int insert_eval(pg_conn *c, const eg_item *it)
{
    const eg_eval *ev = &it->u.eval.ev;
    pg_num n[12];
    eg_text curve = {0};
    if (ev->has_curve) eg_eval_curve_put(&curve, ev);
    if (curve.oom) return eg_errorf("store: out of memory");
    const char *p[] = {pg_i64(&n[0], it->job),       pg_i64(&n[1], it->u.eval.step),
                       pg_f64(&n[2], ev->test_acc),  pg_f64(&n[3], ev->test_loss),
                       pg_f64(&n[4], ev->angle_deg), pg_f64(&n[5], ev->w_corrupted),
                       pg_f64(&n[6], ev->w_clean),   ev->has_curve ? curve.buf : NULL,
                       pg_i64(&n[8], it->attempt),   pg_f64(&n[9], ev->test_acc_ci95),
                       pg_f64(&n[10], ev->dev_f1),   pg_f64(&n[11], ev->test_f1)};
    int rc = pg_x(c, SQL_EVAL_INSERT, 12, p, "logging an evaluation", NULL);
    free(curve.buf);
    return rc;
}

static int commit_on(pg_conn *c, const eg_item *b, size_t n)
{
    if (!c->has_steps_in) {
        EG_TRY(pg_x(c, SQL_STEPS_IN, 0, NULL, "the step table of a session", NULL));
        c->has_steps_in = 1;
    }
    EG_TRY(pg_begin(c));
    int rc = copy_steps(c, b, n), any_step = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (b[i].kind == EG_ITEM_EVAL)
            rc = insert_eval(c, &b[i]);
        else
            any_step = 1;
    }
    if (rc == 0 && any_step) rc = pg_x(c, SQL_STEPS_MOVE, 0, NULL, "logging steps", NULL);
    if (rc == 0 && any_step) rc = pg_x(c, SQL_STEPS_DONE, 0, NULL, "updating steps_done", NULL);
    return pg_end(c, rc);
}

int pg_commit(void *ctx, const eg_item *b, size_t n)
{
    int rc;
    PG_RUN((eg_pg *)ctx, 0, rc, commit_on(c, b, n));
    return rc;
}

static const char SQL_JOB_EXISTS[] = "SELECT 1 FROM jobs WHERE id = $1";
static const char SQL_STEPS_COUNT[] =
    "SELECT COUNT(*) FROM (SELECT step FROM steps WHERE job = $1 AND step > $2 "
    "ORDER BY step LIMIT $3) p";
static const char SQL_STEPS_RANGE[] =
    "SELECT step, row FROM steps WHERE job = $1 AND step > $2 ORDER BY step LIMIT $3";

/* 0 when the job exists, 1 when not. */
static int job_exists(pg_conn *c, const char *const *p)
{
    PGresult *r = pg_q(c, SQL_JOB_EXISTS, 1, p, "reading a job");
    if (!r) return -1;
    int rc = PQntuples(r) ? 0 : 1;
    PQclear(r);
    return rc;
}

/* The rows of the page after `after`, at most limit (+1 when asked). */
static long count_rows(pg_conn *c, const char *const *p)
{
    PGresult *r = pg_q(c, SQL_STEPS_COUNT, 3, p, "counting steps");
    if (!r) return -1;
    long n = (long)pg_get_i64(r, 0, 0);
    PQclear(r);
    return n;
}

/* In one read-only transaction (one snapshot): the page's rows, handed to
 * fn, downsampled as eg_store_steps_read says. */
static int steps_read(pg_conn *c, int64_t job, long after, int limit, int max_points,
                      eg_step_row_fn fn, void *ctx, int *more)
{
    *more = 0;
    pg_num a, b, l;
    const char *p[] = {pg_i64(&a, job), pg_i64(&b, after), pg_i64(&l, (long long)limit + 1)};
    EG_TRY(pg_begin(c));
    int rc = job_exists(c, p);
    long n = (long)limit + 1, m = n;
    if (rc == 0 && max_points > 0) {
        long total = count_rows(c, p);
        if (total < 0) rc = -1;
        *more = total > limit;
        n = *more ? limit : total;
        m = n > max_points ? max_points : n;
        p[2] = pg_i64(&l, n);
    }
    PGresult *r = rc == 0 ? pg_q(c, SQL_STEPS_RANGE, 3, p, "reading steps") : NULL;
    if (rc == 0 && !r) rc = -1;
    for (long i = 0, j = 0; rc == 0 && i < PQntuples(r); i++) {
        if (max_points <= 0 && i == limit) { /* the row past the limit */
            *more = 1;
            break;
        }
        if (max_points > 0 && (j == m || i != eg_steps_kept_index(j, n, m))) continue;
        j++;
        const char *text = PQgetvalue(r, (int)i, 1);
        if (fn(ctx, (long)pg_get_i64(r, (int)i, 0), text, strlen(text)) != 0)
            rc = eg_errorf("store: out of memory");
    }
    PQclear(r);
    return pg_end(c, rc);
}

int pg_op_steps_read(eg_store *base, int64_t job, long after, int limit, int max_points,
                     eg_step_row_fn fn, void *ctx, int *more)
{
    *more = 0;
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, steps_read(c, job, after, limit, max_points, fn, ctx, more));
    return rc;
}

/* Every column a min/max page may follow, in eg_steps_minmax_cols' order. */
static const char SQL_STEPS_SCAN[] =
    "SELECT step, train_loss, meta_loss, hyper_norm, lambda_norm, step_ms, meta_ms, "
    "cur_bytes, peak_bytes FROM steps WHERE job = $1 AND step > $2 ORDER BY step LIMIT $3";
static const char SQL_STEPS_KEPT[] =
    "SELECT step, row FROM steps WHERE job = $1 AND step = ANY($2::bigint[]) ORDER BY step";

static int minmax_page(pg_conn *c, int64_t job, long after, int limit, int max_points,
                       const int *cols, int n_cols, eg_step_page *page, int *more)
{
    /* A read that fails leaves the page as it found it (it may be run
     * again on a new connection). */
    const size_t len0 = page->t.len;
    const int rows0 = page->rows;
    const long last0 = page->last;
    pg_num a, b, l;
    const char *p[] = {pg_i64(&a, job), pg_i64(&b, after), pg_i64(&l, (long long)limit + 1)};
    EG_TRY(pg_begin(c));
    int rc = job_exists(c, p);
    long total = rc == 0 ? count_rows(c, p) : 0;
    if (total < 0) rc = -1;
    *more = total > limit;
    long n = *more ? limit : total;
    eg_minmax m = {0};
    if (rc == 0) rc = eg_minmax_begin(&m, n, max_points, n_cols);
    p[2] = pg_i64(&l, n);
    PGresult *r = rc == 0 && n > 0 ? pg_q(c, SQL_STEPS_SCAN, 3, p, "reading steps") : NULL;
    if (rc == 0 && n > 0 && !r) rc = -1;
    double v[EG_STEPS_MINMAX];
    for (int i = 0; rc == 0 && r && i < PQntuples(r); i++) {
        for (int k = 0; k < n_cols; k++)
            v[k] =
                PQgetisnull(r, i, cols[k] + 1) ? NAN : strtod(PQgetvalue(r, i, cols[k] + 1), NULL);
        eg_minmax_row(&m, (long)pg_get_i64(r, i, 0), v);
    }
    PQclear(r);
    eg_minmax_end(&m);
    eg_text ids = {0};
    eg_text_put(&ids, "{", 1);
    for (long k = 0; k < m.n_kept; k++) eg_text_printf(&ids, "%s%ld", k ? "," : "", m.kept[k]);
    eg_text_put(&ids, "}", 1);
    free(m.kept);
    if (rc == 0 && ids.oom) rc = eg_errorf("store: out of memory");
    const char *q[] = {p[0], ids.buf};
    r = rc == 0 ? pg_q(c, SQL_STEPS_KEPT, 2, q, "reading steps") : NULL;
    if (rc == 0 && !r) rc = -1;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        const char *text = PQgetvalue(r, i, 1);
        if (eg_step_page_add(page, (long)pg_get_i64(r, i, 0), text, strlen(text)) != 0)
            rc = eg_errorf("store: out of memory");
    }
    PQclear(r);
    free(ids.buf);
    rc = pg_end(c, rc);
    if (rc != 0) {
        page->t.len = len0;
        page->rows = rows0;
        page->last = last0;
    }
    return rc;
}

int pg_op_steps_minmax(eg_store *base, int64_t job, long after, int limit, int max_points,
                       const int *cols, int n_cols, eg_step_page *page, int *more)
{
    int rc;
    PG_RUN((eg_pg *)base, 0, rc,
           minmax_page(c, job, after, limit, max_points, cols, n_cols, page, more));
    return rc;
}

static const char SQL_EVALS[] =
    "SELECT step, test_acc, test_loss, angle_deg, w_corrupted, w_clean, vnet_curve, test_acc_ci95, "
    "dev_f1, test_f1 FROM evals WHERE job = $1 ORDER BY step";

static int evals(pg_conn *c, int64_t job, json_t *arr)
{
    json_array_clear(arr); /* a read run again starts afresh */
    pg_num a;
    const char *p[] = {pg_i64(&a, job)};
    EG_TRY(pg_begin(c));
    int rc = job_exists(c, p);
    PGresult *r = rc == 0 ? pg_q(c, SQL_EVALS, 1, p, "reading evaluations") : NULL;
    if (rc == 0 && !r) rc = -1;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "step",
                              pg_col_int(r, i, 0), "test_acc", pg_col_real(r, i, 1), "dev_f1",
                              pg_col_f32(r, i, 8), "test_f1", pg_col_f32(r, i, 9),
                              "test_acc_ci95", pg_col_f32(r, i, 7), "test_loss", pg_col_f32(r, i, 2),
                              "angle_deg", pg_col_f32(r, i, 3), "w_corrupted", pg_col_f32(r, i, 4),
                              "w_clean", pg_col_f32(r, i, 5), "vnet_curve", pg_col_json(r, i, 6));
        if (json_array_append_new(arr, o) != 0) rc = eg_errorf("store: out of memory");
    }
    PQclear(r);
    return pg_end(c, rc);
}

int pg_op_evals(eg_store *base, int64_t job, json_t **out)
{
    *out = NULL;
    json_t *arr = json_array();
    if (!arr) return eg_errorf("store: out of memory");
    int rc;
    PG_RUN((eg_pg *)base, 0, rc, evals(c, job, arr));
    if (rc == 0 && !(*out = json_pack("{s:o}", "evals", arr)))
        rc = eg_errorf("store: out of memory");
    else if (rc != 0)
        json_decref(arr);
    return rc;
}

static const char SQL_CKPT_INSERT[] =
    "INSERT INTO checkpoints (job, step, path) SELECT $1, $2, $3 WHERE EXISTS "
    "(SELECT 1 FROM jobs WHERE id = $1 AND attempt = $4 AND state = 'running') "
    "ON CONFLICT (job, step) DO UPDATE SET path = excluded.path, created_at = now()";

static int ckpt_record(pg_conn *c, const char *const *p)
{
    long changed = 0;
    EG_TRY(pg_x(c, SQL_CKPT_INSERT, 4, p, "recording a checkpoint", &changed));
    if (changed) return 0;
    int rc = job_exists(c, p);
    return rc == 0 ? EG_STORE_LOST : rc;
}

int pg_op_checkpoint_record(eg_store *base, int64_t job, int attempt, long step, const char *path)
{
    eg_pg *s = (eg_pg *)base;
    EG_TRY(eg_writeq_flush(&s->q));
    pg_num a, b, d;
    const char *p[] = {pg_i64(&a, job), pg_i64(&b, step), path, pg_i64(&d, attempt)};
    int rc;
    PG_RUN(s, 1, rc, ckpt_record(c, p));
    return rc;
}

static const char SQL_CKPT_LATEST[] =
    "SELECT path, step FROM checkpoints WHERE job = $1 ORDER BY step DESC LIMIT 1";

static int ckpt_latest(pg_conn *c, int64_t job, char **path, long *step)
{
    pg_num a;
    const char *p[] = {pg_i64(&a, job)};
    PGresult *r = pg_q(c, SQL_CKPT_LATEST, 1, p, "reading checkpoints");
    if (!r) return -1;
    int rc = 1;
    if (PQntuples(r)) {
        *step = (long)pg_get_i64(r, 0, 1);
        rc = (*path = strdup(PQgetvalue(r, 0, 0))) ? 0 : eg_errorf("store: out of memory");
    }
    PQclear(r);
    return rc;
}

int pg_op_checkpoint_latest(eg_store *base, int64_t job, char **path, long *step)
{
    *path = NULL;
    int rc;
    PG_RUN((eg_pg *)base, 1, rc, ckpt_latest(c, job, path, step));
    return rc;
}
