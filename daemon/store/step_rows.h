/* What both stores share about step and evaluation rows: the JSON texts a
 * row is logged with (the one serialiser of steps), pages of rows, and the
 * choice of rows a downsampled page keeps. */
#ifndef EG_STORE_STEP_ROWS_H
#define EG_STORE_STEP_ROWS_H

#include <stddef.h>

#include "meta/loop.h"
#include "util/text.h"

/* A step record's texts: λ as a JSON array (NULL when λ has more values
 * than a row keeps), the copy weights w, and the whole row as the API
 * serves it; at is the Unix time it was logged, in seconds. */
typedef struct eg_step_texts {
    eg_text lambda, w, row;
    int has_lambda;
} eg_step_texts;

/* 0, or -1 after eg_errorf when out of memory (t freed). */
int eg_step_texts_make(const eg_step_record *r, double at, eg_step_texts *t);
void eg_step_texts_free(eg_step_texts *t);

/* A row from its columns, for rows logged before rows kept their text:
 * the figures are float32 engine values written as their shortest text;
 * lambda and w are arrays' text (NULL: null and []); at NaN: null. */
void eg_step_row_put(eg_text *t, long step, long epoch, double train_loss, double meta_loss,
                     double hyper_norm, const char *lambda, double lambda_norm, const char *w,
                     double step_ms, double meta_ms, long long cur, long long peak, double at);

/* An evaluation's VNet curve {"loss": [...], "weight": [...]} into t. */
void eg_eval_curve_put(eg_text *t, const eg_eval *ev);

/* A page {"steps": [rows], "next_after": step|null} being built. */
typedef struct eg_step_page {
    eg_text t;
    int rows;
    long last;
} eg_step_page;

void eg_step_page_begin(eg_step_page *p);

/* An eg_step_row_fn: appends a row to the page (ctx). */
int eg_step_page_add(void *ctx, long step, const char *text, size_t len);

/* Closes a page read with result rc: its next_after (the last row's step
 * when more follow), and the text handed to the caller (freed when rc or
 * this fails). Returns rc, or -1 when out of memory. */
int eg_step_page_end(eg_step_page *p, int rc, int more, char **text, size_t *len);

/* Index of the j-th kept row of n when m are kept: evenly spaced, the
 * first and the last included (only the last when m == 1). */
long eg_steps_kept_index(long j, long n, long m);

/* The columns a min/max page may follow, in eg_store_steps_column's
 * order. */
#define EG_STEPS_MINMAX 8
extern const char *const eg_steps_minmax_cols[EG_STEPS_MINMAX];

/* The columns of a comma-separated list into cols[] (each once); their
 * count, or -1 with eg_errorf for a name that is not one. */
int eg_steps_parse_columns(const char *by, int cols[EG_STEPS_MINMAX]);

/* Pass 1 of a min/max page, fed the page's n rows in step order: of
 * buckets of consecutive rows, each bucket's rows at the minimum and the
 * maximum of each column, and the last row. */
typedef struct eg_minmax {
    long n, buckets, i, bucket, step;
    int n_cols;
    struct {
        double lo, hi;
        long lo_step, hi_step; /* -1: none yet in this bucket */
    } ex[EG_STEPS_MINMAX];
    long *kept, n_kept;
} eg_minmax;

/* For n rows downsampled to max_points x n_cols + 1: -1 when out of
 * memory. */
int eg_minmax_begin(eg_minmax *m, long n, int max_points, int n_cols);

/* One row: its step and its n_cols values (NaN for null). */
void eg_minmax_row(eg_minmax *m, long step, const double *v);

/* The kept steps, ascending and distinct (m->kept, m->n_kept; the caller
 * frees m->kept). */
void eg_minmax_end(eg_minmax *m);

#endif
