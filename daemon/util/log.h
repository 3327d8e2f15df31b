/* One logging macro with levels, written to stderr with a timestamp. */
#ifndef EG_LOG_H
#define EG_LOG_H

#include "err.h"

enum eg_log_level { EG_LOG_DEBUG, EG_LOG_INFO, EG_LOG_WARN, EG_LOG_ERROR };

/* Messages below this level are dropped (default EG_LOG_INFO). */
void eg_log_set_level(enum eg_log_level level);

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int eg_log_parse_level(const char *name, enum eg_log_level *out);

void eg_log_write(enum eg_log_level level, const char *fmt, ...) EG_PRINTF(2, 3);

#define EG_LOG(level, ...) eg_log_write(EG_LOG_##level, __VA_ARGS__)

#endif
