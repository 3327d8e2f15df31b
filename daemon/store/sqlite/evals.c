/* Evaluations: a row per (job, step), written by the writer thread; the
 * fields a task does not measure are NaN, kept as NULL. */
#include "store/sqlite/sqlite.h"
#include "store/step_rows.h"

#include <stdlib.h>

#include "util/err.h"
#include "util/json_num.h"
#include "util/text.h"

const char *const eg_sql_eval_insert =
    "INSERT OR REPLACE INTO evals (job, step, test_acc, test_loss, angle_deg, "
    "w_corrupted, w_clean, vnet_curve, test_acc_ci95, dev_f1, test_f1) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?11, ?12 "
    "WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?1 AND attempt = ?9 AND state = 'running')";

int eg_bind_eval(sqlite3_stmt *st, const eg_item *it)
{
    const eg_eval *ev = &it->u.eval.ev;
    int rc = sqlite3_bind_int64(st, 1, it->job);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, it->u.eval.step);
    rc = rc ? rc : eg_bind_real(st, 3, ev->test_acc);
    rc = rc ? rc : eg_bind_real(st, 4, ev->test_loss);
    rc = rc ? rc : eg_bind_real(st, 5, ev->angle_deg);
    rc = rc ? rc : eg_bind_real(st, 6, ev->w_corrupted);
    rc = rc ? rc : eg_bind_real(st, 7, ev->w_clean);
    rc = rc ? rc : sqlite3_bind_int(st, 9, it->attempt);
    rc = rc ? rc : eg_bind_real(st, 10, ev->test_acc_ci95);
    rc = rc ? rc : eg_bind_real(st, 11, ev->dev_f1);
    rc = rc ? rc : eg_bind_real(st, 12, ev->test_f1);
    if (rc || !ev->has_curve) return rc ? rc : sqlite3_bind_null(st, 8);
    eg_text t = {0};
    eg_eval_curve_put(&t, ev);
    rc = t.oom ? SQLITE_NOMEM : sqlite3_bind_text(st, 8, t.buf, (int)t.len, SQLITE_TRANSIENT);
    free(t.buf);
    return rc;
}

static const char SQL_JOB_EXISTS[] = "SELECT 1 FROM jobs WHERE id = ?1";
static const char SQL_EVALS[] =
    "SELECT step, test_acc, test_loss, angle_deg, w_corrupted, w_clean, vnet_curve, test_acc_ci95, "
    "dev_f1, test_f1 "
    "FROM evals "
    "WHERE job = ?1 ORDER BY step";

static int read_evals(eg_conn *c, int64_t job, json_t *arr)
{
    sqlite3_stmt *st = eg_conn_stmt(c, SQL_JOB_EXISTS);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, job);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 1;
    if (rc != SQLITE_ROW) return eg_conn_fail(c, "reading a job");

    if (!(st = eg_conn_stmt(c, SQL_EVALS))) return -1;
    sqlite3_bind_int64(st, 1, job);
    int out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "step",
                              eg_col_int(st, 0), "test_acc", eg_col_real(st, 1), "dev_f1",
                              eg_col_f32(st, 8), "test_f1", eg_col_f32(st, 9),
                              "test_acc_ci95", eg_col_f32(st, 7), "test_loss", eg_col_f32(st, 2),
                              "angle_deg", eg_col_f32(st, 3), "w_corrupted",
                              eg_col_f32(st, 4), "w_clean", eg_col_f32(st, 5), "vnet_curve",
                              eg_col_json(st, 6));
        if (json_array_append_new(arr, o) != 0) {
            out = eg_errorf("store: out of memory");
            break;
        }
    }
    if (out == 0 && rc != SQLITE_DONE) out = eg_conn_fail(c, "reading evaluations");
    sqlite3_reset(st);
    return out;
}

int eg_sq_evals(eg_store *base, int64_t job, json_t **out)
{
    eg_sqlite *s = (eg_sqlite *)base;
    *out = NULL;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    json_t *arr = json_array();
    int rc = arr ? eg_conn_exec(c, "BEGIN") : eg_errorf("store: out of memory");
    if (rc == 0) rc = read_evals(c, job, arr);
    eg_reader_put(s, c);
    if (rc == 0) {
        *out = json_pack("{s:o}", "evals", arr);
        arr = NULL;
        if (!*out) rc = eg_errorf("store: out of memory");
    }
    json_decref(arr);
    return rc;
}
