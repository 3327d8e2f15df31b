#include "util/json_num.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* v with p significant digits, laid out as Python's repr does: plain
 * decimals for exponents -5..16 (with ".0" where it would read as an
 * integer, as jansson writes reals), else the exponent form ("1e+20",
 * "1e-8"). The
 * plain form is built from the rounded digits, so it holds no others. */
static int layout(double v, int p, char *buf, size_t cap)
{
    char e[40];
    snprintf(e, sizeof e, "%.*e", p - 1, v);
    char *x = strchr(e, 'e');
    int exp10 = atoi(x + 1);
    if (exp10 < -5 || exp10 > 16) { /* the exponent without leading zeros, as jansson */
        *x = '\0';
        int len = snprintf(buf, cap, "%se%s%d", e, exp10 < 0 ? "-" : "+", abs(exp10));
        return len < 0 || (size_t)len >= cap ? -1 : len;
    }
    char digits[24];
    int nd = 0;
    for (const char *q = e; q < x; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    char out[64];
    int o = 0;
    if (e[0] == '-') out[o++] = '-';
    if (exp10 < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int z = 0; z < -exp10 - 1; z++) out[o++] = '0';
        for (int d = 0; d < nd; d++) out[o++] = digits[d];
    } else {
        for (int d = 0; d <= exp10; d++) out[o++] = d < nd ? digits[d] : '0';
        out[o++] = '.';
        if (nd > exp10 + 1)
            for (int d = exp10 + 1; d < nd; d++) out[o++] = digits[d];
        else
            out[o++] = '0';
    }
    if ((size_t)o >= cap) return -1;
    memcpy(buf, out, (size_t)o);
    buf[o] = '\0';
    return o;
}

int eg_fmt_double(double v, char *buf, size_t cap)
{
    if (!isfinite(v)) return -1;
    char t[40];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(t, sizeof t, "%.*e", p - 1, v);
        if (strtod(t, NULL) == v) break;
    }
    return layout(v, p, buf, cap);
}

int eg_fmt_float(float v, char *buf, size_t cap)
{
    if (!isfinite(v)) return -1;
    char t[40];
    int p = 1;
    for (; p < 9; p++) {
        snprintf(t, sizeof t, "%.*e", p - 1, (double)v);
        if (strtof(t, NULL) == v) break;
    }
    return layout(v, p, buf, cap);
}

json_t *eg_json_f32(float v)
{
    char text[32];
    if (eg_fmt_float(v, text, sizeof text) < 0) return json_null();
    return json_real(strtod(text, NULL));
}

json_t *eg_json_f64(double v) { return isfinite(v) ? json_real(v) : json_null(); }

char *eg_json_dumps(const json_t *j, size_t flags)
{
    char *raw = json_dumps(j, flags | JSON_REAL_PRECISION(17));
    if (!raw) return NULL;
    /* A shortest text is never longer than jansson's 17-digit one. */
    char *out = malloc(strlen(raw) + 1);
    if (!out) {
        free(raw);
        return NULL;
    }
    size_t o = 0;
    int in_string = 0;
    for (const char *p = raw; *p;) {
        char c = *p;
        if (in_string) {
            out[o++] = c;
            p++;
            if (c == '\\' && *p) out[o++] = *p++;
            else if (c == '"') in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
            out[o++] = *p++;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t n = strspn(p, "-+.0123456789eE");
            if (memchr(p, '.', n) || memchr(p, 'e', n) || memchr(p, 'E', n)) {
                char text[32];
                int len = eg_fmt_double(strtod(p, NULL), text, sizeof text);
                if (len > 0 && (size_t)len <= n) {
                    memcpy(out + o, text, (size_t)len);
                    o += (size_t)len;
                    p += n;
                    continue;
                }
            }
            memcpy(out + o, p, n);
            o += n;
            p += n;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
    free(raw);
    return out;
}

void eg_text_f32(eg_text *t, double v)
{
    char b[40];
    int n = isfinite(v) ? eg_fmt_float((float)v, b, sizeof b) : -1;
    if (n < 0) eg_text_put(t, "null", 4);
    else eg_text_put(t, b, (size_t)n);
}

void eg_text_f64(eg_text *t, double v)
{
    char b[40];
    int n = eg_fmt_double(v, b, sizeof b);
    if (n < 0) eg_text_put(t, "null", 4);
    else eg_text_put(t, b, (size_t)n);
}
