#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum eg_log_level min_level = EG_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void eg_log_set_level(enum eg_log_level level) { min_level = level; }

int eg_log_parse_level(const char *name, enum eg_log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum eg_log_level)i;
            return 0;
        }
    return -1;
}

void eg_log_write(enum eg_log_level level, const char *fmt, ...)
{
    if (level < min_level) return;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %-5s %s\n", stamp, level_names[level], msg);
}
