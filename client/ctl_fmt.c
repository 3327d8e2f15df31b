#include "ctl_fmt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

const char *ctl_json_str(const json_t *obj, const char *key, const char *dflt)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : dflt;
}

int ctl_json_num(const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!json_is_number(v)) return 0;
    *out = json_number_value(v);
    return 1;
}

int ctl_json_int(const json_t *obj, const char *key, long long *out)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!json_is_integer(v)) return 0;
    *out = (long long)json_integer_value(v);
    return 1;
}

void ctl_sanitize(const char *s, size_t len, char *out, size_t size)
{
    if (size == 0) return;
    size_t n = len < size - 1 ? len : size - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[n] = '\0';
}

void ctl_fmt_num(double x, char *out, size_t size)
{
    if (!isfinite(x))
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%.4g", x);
}

void ctl_fmt_cell(const json_t *v, int precise, char *out, size_t size)
{
    if (size == 0) return;
    out[0] = '\0';
    if (!v || json_is_null(v)) {
        snprintf(out, size, "%s", precise ? "" : "-");
    } else if (json_is_integer(v)) {
        snprintf(out, size, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        if (precise)
            snprintf(out, size, "%.9g", json_real_value(v));
        else
            ctl_fmt_num(json_real_value(v), out, size);
    } else if (json_is_string(v)) {
        ctl_sanitize(json_string_value(v), json_string_length(v), out, size);
    } else if (json_is_boolean(v)) {
        snprintf(out, size, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_array(v)) {
        size_t i, used = 0;
        json_t *e;
        json_array_foreach(v, i, e) {
            char num[40];
            if (json_is_number(e)) {
                if (precise)
                    snprintf(num, sizeof num, "%.9g", json_number_value(e));
                else
                    ctl_fmt_num(json_number_value(e), num, sizeof num);
            } else {
                snprintf(num, sizeof num, json_is_null(e) ? "-" : "?");
            }
            int w = snprintf(out + used, size - used, "%s%s", i ? ";" : "", num);
            if (w < 0 || (size_t)w >= size - used) break;
            used += (size_t)w;
        }
    } else {
        snprintf(out, size, "?");
    }
}

void ctl_fmt_duration(double s, char *out, size_t size)
{
    if (!isfinite(s) || s < 0 || s > 1e9) {
        snprintf(out, size, "-");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, size, "%ld:%02ld", t / 60, t % 60);
}

/* Appends printf output to out at *used, keeping the string terminated. */
static void append(char *out, size_t size, size_t *used, const char *fmt, ...)
    EG_PRINTF(4, 5);
static void append(char *out, size_t size, size_t *used, const char *fmt, ...)
{
    if (*used + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *used, size - *used, fmt, ap);
    va_end(ap);
    if (w < 0) return;
    *used += (size_t)w < size - *used ? (size_t)w : size - *used - 1;
}

/* The numbers part of the progress line (everything after the bar). */
static void progress_numbers(const ctl_progress *p, char *out, size_t size)
{
    size_t used = 0;
    char a[32], b[32];
    out[0] = '\0';
    if (p->total > 0) {
        long long pct = p->step >= p->total ? 100 : (p->step > 0 ? p->step * 100 / p->total : 0);
        append(out, size, &used, "%lld/%lld %lld%%", p->step, p->total, pct);
    } else {
        append(out, size, &used, "step %lld", p->step);
    }
    if (isfinite(p->train_loss)) {
        ctl_fmt_num(p->train_loss, a, sizeof a);
        append(out, size, &used, " loss %s", a);
    }
    if (isfinite(p->meta_loss)) {
        ctl_fmt_num(p->meta_loss, a, sizeof a);
        append(out, size, &used, " meta %s", a);
    }
    int shown = p->n_lambda < 4 ? p->n_lambda : 4;
    if (p->n_lambda == 1) {
        ctl_fmt_num(p->lambda[0], a, sizeof a);
        append(out, size, &used, " λ %s", a);
    } else if (p->n_lambda > 1 && p->n_lambda <= 4) {
        append(out, size, &used, " λ [");
        for (int i = 0; i < shown; i++) {
            ctl_fmt_num(p->lambda[i], a, sizeof a);
            append(out, size, &used, "%s%s", i ? " " : "", a);
        }
        append(out, size, &used, "]");
    } else if (isfinite(p->lambda_norm)) {
        ctl_fmt_num(p->lambda_norm, a, sizeof a);
        append(out, size, &used, " |λ| %s", a);
    }
    if (isfinite(p->rate) && p->rate > 0) {
        ctl_fmt_num(p->rate, a, sizeof a);
        append(out, size, &used, " %s it/s", a);
        int running = p->state && strcmp(p->state, "running") == 0;
        if (running && p->total > 0 && p->step < p->total) {
            ctl_fmt_duration((double)(p->total - p->step) / p->rate, b, sizeof b);
            append(out, size, &used, " ETA %s", b);
        }
    }
}

/* Visible width of a UTF-8 string (one column per code point). */
static size_t columns(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* Cuts a UTF-8 string to at most max columns, on a code point boundary. */
static void cut_columns(char *s, size_t max)
{
    size_t n = 0;
    for (char *q = s; *q; q++) {
        if (((unsigned char)*q & 0xC0) != 0x80) {
            if (n == max) {
                *q = '\0';
                return;
            }
            n++;
        }
    }
}

void ctl_progress_line(const ctl_progress *p, int width, char *out, size_t size)
{
    if (size == 0) return;
    char state[24], nums[256];
    ctl_sanitize(p->state ? p->state : "?", p->state ? strlen(p->state) : 1, state,
                 sizeof state);
    progress_numbers(p, nums, sizeof nums);
    size_t max = width > 1 ? (size_t)width - 1 : 0;
    size_t state_w = strlen(state) > 9 ? strlen(state) : 9;
    size_t fixed = state_w + 1 + columns(nums);
    size_t used = 0;
    out[0] = '\0';
    append(out, size, &used, "%-9s ", state);
    /* The bar, "[###...] ", takes what the rest leaves: 10 to 40 cells. */
    size_t room = max > fixed ? max - fixed : 0;
    if (p->total > 0 && room >= 13) {
        size_t cells = room - 3 < 40 ? room - 3 : 40;
        long long step = p->step < 0 ? 0 : (p->step > p->total ? p->total : p->step);
        size_t full = (size_t)((double)step / (double)p->total * (double)cells);
        append(out, size, &used, "[");
        for (size_t i = 0; i < cells; i++) append(out, size, &used, "%c", i < full ? '#' : '.');
        append(out, size, &used, "] ");
    }
    append(out, size, &used, "%s", nums);
    cut_columns(out, max);
}

void ctl_fmt_mean_std(double mean, double std, char *out, size_t cap)
{
    int d = 2;
    double ref = std > 0 ? std : fabs(mean);
    if (ref > 0 && isfinite(ref)) {
        int want = (std > 0 ? 1 : 2) - (int)floor(log10(ref));
        d = want < 2 ? 2 : want > 6 ? 6 : want;
    }
    snprintf(out, cap, "%.*f ± %.*f", d, mean, d, std);
}
