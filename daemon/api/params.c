/* Path ids and query parameters: strict parsing, 400s that name the
 * parameter. */
#include "api/api.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

int eg_parse_int(const char *text, long long lo, long long hi, long long *out)
{
    if (!text) return -1;
    const char *p = text;
    int neg = *p == '-';
    if (neg) p++;
    if (*p < '0' || *p > '9') return -1;
    /* Accumulate negatively so that LLONG_MIN fits. */
    long long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (v < (LLONG_MIN + d) / 10) return -1;
        v = v * 10 - d;
    }
    if (*p) return -1;
    if (!neg) {
        if (v == LLONG_MIN) return -1;
        v = -v;
    }
    if (v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int eg_parse_id(const char *text, int64_t *out)
{
    if (!text || !*text || strlen(text) > 19 || *text == '-') return -1;
    long long v;
    if (eg_parse_int(text, 1, INT64_MAX, &v) != 0) return -1;
    *out = v;
    return 0;
}

const char *eg_query_get(const eg_query *q, const char *key)
{
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->p[i].key, key) == 0) return q->p[i].value ? q->p[i].value : "";
    return NULL;
}

int eg_query_check(const eg_query *q, const char *const *known, eg_reply *rp)
{
    if (q->too_many) {
        eg_reply_error(rp, 400, "invalid_parameter", NULL, "at most %d query parameters",
                       EG_API_MAX_PARAMS);
        return -1;
    }
    for (int i = 0; i < q->n; i++) {
        const char *key = q->p[i].key;
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++) ok = strcmp(*k, key) == 0;
        if (!ok) {
            char list[256] = "";
            size_t n = 0;
            for (const char *const *k = known; *k && n < sizeof list; k++)
                n += snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *k);
            eg_reply_error(rp, 400, "invalid_parameter", key,
                           "unknown query parameter \"%.64s\" (known here: %s)", key,
                           *list ? list : "none");
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(q->p[j].key, key) == 0) {
                eg_reply_error(rp, 400, "invalid_parameter", key,
                               "query parameter \"%s\" given twice", key);
                return -1;
            }
    }
    return 0;
}

int eg_query_int(const eg_query *q, const char *key, long long lo, long long hi,
                 long long def, long long *out, eg_reply *rp)
{
    const char *v = eg_query_get(q, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (eg_parse_int(v, lo, hi, out) != 0) {
        eg_reply_error(rp, 400, "invalid_parameter", key,
                       "%s must be an integer in [%lld, %lld], not \"%.64s\"", key, lo, hi, v);
        return -1;
    }
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t eg_unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        int hi = r[0] == '%' ? hex_digit(r[1]) : -1, lo = hi >= 0 ? hex_digit(r[2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}
