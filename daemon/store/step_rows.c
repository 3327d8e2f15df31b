/* Step and evaluation rows as both stores log and page them. */
#include "store/step_rows.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/task.h"
#include "store/store.h"
#include "util/err.h"
#include "util/json_num.h"

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

void eg_step_row_put(eg_text *t, long step, long epoch, double train_loss, double meta_loss,
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
    if (isnan(at))
        eg_text_puts(t, "null");
    else
        eg_text_int(t, llround(at * 1e3));
    eg_text_put(t, "}", 1);
}

int eg_step_texts_make(const eg_step_record *r, double at, eg_step_texts *t)
{
    memset(t, 0, sizeof *t);
    t->has_lambda = r->n_lambda > 0 && r->n_lambda <= EG_RECORD_MAX_LAMBDA;
    if (t->has_lambda) put_array(&t->lambda, r->lambda, NULL, r->n_lambda);
    int k = r->k < 0 ? 0 : r->k > EG_RECORD_MAX_K ? EG_RECORD_MAX_K : r->k;
    put_array(&t->w, NULL, r->w, k);
    eg_step_row_put(&t->row, r->step, r->epoch, r->train_loss, r->meta_loss, r->hyper_norm,
                    t->has_lambda ? t->lambda.buf : NULL, r->lambda_norm, t->w.buf, r->step_ms,
                    r->meta_ms, (long long)r->cur_bytes, (long long)r->peak_bytes, at);
    if (!t->lambda.oom && !t->w.oom && !t->row.oom) return 0;
    eg_step_texts_free(t);
    return eg_errorf("store: out of memory");
}

void eg_step_texts_free(eg_step_texts *t)
{
    free(t->lambda.buf);
    free(t->w.buf);
    free(t->row.buf);
    memset(t, 0, sizeof *t);
}

void eg_eval_curve_put(eg_text *t, const eg_eval *ev)
{
    eg_text_puts(t, "{\"loss\":[");
    for (int i = 0; i < EG_VNET_CURVE; i++) {
        if (i) eg_text_put(t, ",", 1);
        eg_text_f64(t, i * EG_VNET_CURVE_STEP);
    }
    eg_text_puts(t, "],\"weight\":[");
    for (int i = 0; i < EG_VNET_CURVE; i++) {
        if (i) eg_text_put(t, ",", 1);
        eg_text_f32(t, ev->vnet_curve[i]);
    }
    eg_text_puts(t, "]}");
}

void eg_step_page_begin(eg_step_page *p)
{
    memset(p, 0, sizeof *p);
    p->last = -1;
    eg_text_puts(&p->t, "{\"steps\":[");
}

int eg_step_page_add(void *ctx, long step, const char *text, size_t len)
{
    eg_step_page *p = ctx;
    if (p->rows++) eg_text_put(&p->t, ",", 1);
    eg_text_put(&p->t, text, len);
    p->last = step;
    return p->t.oom ? -1 : 0;
}

int eg_step_page_end(eg_step_page *p, int rc, int more, char **text, size_t *len)
{
    if (rc == 0) {
        eg_text_puts(&p->t, "],\"next_after\":");
        if (more)
            eg_text_int(&p->t, p->last);
        else
            eg_text_puts(&p->t, "null");
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

long eg_steps_kept_index(long j, long n, long m)
{
    if (m <= 1) return n - 1;
    return (long)((long long)j * (n - 1) / (m - 1));
}

const char *const eg_steps_minmax_cols[EG_STEPS_MINMAX] = {"train_loss",  "meta_loss", "hyper_norm",
                                                           "lambda_norm", "step_ms",   "meta_ms",
                                                           "cur_bytes",   "peak_bytes"};

int eg_steps_parse_columns(const char *by, int cols[EG_STEPS_MINMAX])
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

int eg_minmax_begin(eg_minmax *m, long n, int max_points, int n_cols)
{
    memset(m, 0, sizeof *m);
    m->n = n;
    m->n_cols = n_cols;
    m->buckets = max_points / 2 > 0 ? max_points / 2 : 1;
    if (m->buckets > n) m->buckets = n;
    m->bucket = m->step = -1;
    m->kept = malloc(((size_t)m->buckets * 2 * (size_t)n_cols + 1) * sizeof *m->kept);
    return m->kept ? 0 : eg_errorf("store: out of memory");
}

/* Keeps the extremes of the bucket in hand and starts anew. */
static void close_bucket(eg_minmax *m)
{
    for (int k = 0; k < m->n_cols; k++) {
        if (m->bucket >= 0 && m->ex[k].lo_step >= 0) m->kept[m->n_kept++] = m->ex[k].lo_step;
        if (m->bucket >= 0 && m->ex[k].hi_step >= 0 && m->ex[k].hi_step != m->ex[k].lo_step)
            m->kept[m->n_kept++] = m->ex[k].hi_step;
        m->ex[k].lo_step = m->ex[k].hi_step = -1;
    }
}

void eg_minmax_row(eg_minmax *m, long step, const double *v)
{
    long b = (long)((long long)m->i++ * m->buckets / m->n);
    if (b != m->bucket) close_bucket(m);
    m->bucket = b;
    m->step = step;
    for (int k = 0; k < m->n_cols; k++) {
        if (isnan(v[k])) continue;
        if (m->ex[k].lo_step < 0 || v[k] < m->ex[k].lo) m->ex[k].lo = v[k], m->ex[k].lo_step = step;
        if (m->ex[k].hi_step < 0 || v[k] > m->ex[k].hi) m->ex[k].hi = v[k], m->ex[k].hi_step = step;
    }
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

void eg_minmax_end(eg_minmax *m)
{
    if (m->i == 0) return;
    close_bucket(m);
    m->kept[m->n_kept++] = m->step;
    qsort(m->kept, (size_t)m->n_kept, sizeof *m->kept, cmp_long);
    long j = 0;
    for (long k = 0; k < m->n_kept; k++)
        if (j == 0 || m->kept[k] != m->kept[j - 1]) m->kept[j++] = m->kept[k];
    m->n_kept = j;
}
