/* Text written piece by piece into a growing buffer (JSON bodies, step
 * rows, Prometheus pages). After an allocation fails nothing more is
 * written and oom stays set. */
#ifndef EG_TEXT_H
#define EG_TEXT_H

#include <stddef.h>

#include "util/err.h"

typedef struct eg_text {
    char *buf;   /* NUL-terminated once anything was written; the caller frees it */
    size_t len, cap;
    int oom;
} eg_text;

void eg_text_put(eg_text *t, const char *s, size_t n);
void eg_text_puts(eg_text *t, const char *s);
void eg_text_int(eg_text *t, long long v);
void eg_text_printf(eg_text *t, const char *fmt, ...) EG_PRINTF(2, 3);

#endif
