#include "util/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the NUL; 0, or -1 with oom set. */
static int reserve(eg_text *t, size_t n)
{
    if (t->oom) return -1;
    if (t->len + n + 1 <= t->cap) return 0;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + n + 1) cap *= 2;
    char *bigger = realloc(t->buf, cap);
    if (!bigger) {
        t->oom = 1;
        return -1;
    }
    t->buf = bigger;
    t->cap = cap;
    return 0;
}

void eg_text_put(eg_text *t, const char *s, size_t n)
{
    if (reserve(t, n) != 0) return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void eg_text_puts(eg_text *t, const char *s) { eg_text_put(t, s, strlen(s)); }

void eg_text_int(eg_text *t, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", v);
    eg_text_put(t, b, (size_t)n);
}

void eg_text_printf(eg_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->oom = 1;
        return;
    }
    if (reserve(t, (size_t)n) != 0) return;
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}
