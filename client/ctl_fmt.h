/* Reading the server's JSON defensively and writing values for people:
 * typed field accessors that tolerate any shape, sanitised strings,
 * compact numbers, and the one-line progress display of `watch`. */
#ifndef CTL_FMT_H
#define CTL_FMT_H

#include <jansson.h>
#include <stddef.h>

/* obj[key] when obj is an object and the value a string, else dflt. */
const char *ctl_json_str(const json_t *obj, const char *key, const char *dflt);

/* 1 with *out = obj[key] when that is a number (integer or real), else 0. */
int ctl_json_num(const json_t *obj, const char *key, double *out);

/* 1 with *out = obj[key] when that is an integer, else 0. */
int ctl_json_int(const json_t *obj, const char *key, long long *out);

/* Copies the first len bytes of s to out (size bytes, always
 * NUL-terminated), each control character (a terminal escape included)
 * replaced by '?'; truncated to fit. */
void ctl_sanitize(const char *s, size_t len, char *out, size_t size);

/* x in at most 5 significant digits ("0.0123", "1.235e+04"), or "-" for
 * NaN or infinity. */
void ctl_fmt_num(double x, char *out, size_t size);

/* A JSON value as a table cell: numbers by ctl_fmt_num (precise: by
 * "%.9g"), strings sanitised, null or absent as "-" ("" when precise),
 * arrays of numbers joined by ";", anything else as "?". */
void ctl_fmt_cell(const json_t *v, int precise, char *out, size_t size);

/* A mean and standard deviation as the paper's tables give them,
 * "87.74 ± 0.54": two decimals, more (up to six) where the spread needs
 * them to show two significant digits (or the mean three, when the spread
 * is 0). */
void ctl_fmt_mean_std(double mean, double std, char *out, size_t size);

/* Seconds as "1:23", "12:03:05" (or "-" when negative or not finite). */
void ctl_fmt_duration(double seconds, char *out, size_t size);

/* What `watch` shows of a job. NaN marks a value not known. */
typedef struct ctl_progress {
    const char *state;     /* "running", ...; NULL: unknown */
    long long step;        /* steps done */
    long long total;       /* total steps (<= 0: unknown) */
    double train_loss, meta_loss;
    int n_lambda;          /* values in lambda[] (at most 4 shown) */
    double lambda[4];
    double lambda_norm;
    double rate;           /* steps per second */
} ctl_progress;

/* Writes the progress line of p to out, at most width - 1 visible
 * characters (a bar fills what the numbers leave, and is dropped on a
 * narrow terminal): "running [#####.....] 120/469 26% loss 0.512 meta
 * 0.498 λ 0.213 3.1 it/s ETA 1:53" (the ETA only while running). Pure;
 * out gets the line without a line end. */
void ctl_progress_line(const ctl_progress *p, int width, char *out, size_t size);

#endif
