#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

int eg_errorf(const char *fmt, ...)
{
    /* Formatted aside first: an argument may be eg_last_error() itself
     * (wrapping the previous message), which vsnprintf must not overwrite
     * while it reads it. */
    char msg[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, strlen(msg) + 1);
    return -1;
}

const char *eg_last_error(void) { return last_error; }

void eg_clear_error(void) { last_error[0] = '\0'; }
