/* Numbers in JSON as the shortest text that reads back to the same value:
 * a double as strtod gives it back (at most 17 significant digits), a
 * float32 engine value as strtof gives it back (at most 9), so 0.1 prints
 * as 0.1, not 0.10000000000000001, and a float loss has no digits below
 * float precision. */
#ifndef EG_JSON_NUM_H
#define EG_JSON_NUM_H

#include <stddef.h>

#include "util/text.h"

struct json_t;

/* Writes the shortest text of v that strtod reads back to v, with ".0"
 * added where it would read as an integer ("3.0", "1e+20" stays); returns
 * its length, or -1 for NaN and infinities (which JSON cannot hold) or
 * when cap is too small (32 always suffices). */
int eg_fmt_double(double v, char *buf, size_t cap);

/* The same for a float32 value, read back by strtof. */
int eg_fmt_float(float v, char *buf, size_t cap);

/* A JSON real for a float32 value: the double nearest its shortest text,
 * so that eg_json_dumps prints that text. json_null() for NaN and
 * infinities; NULL only when out of memory. */
struct json_t *eg_json_f32(float v);

/* A JSON real for a double, json_null() for NaN and infinities. */
struct json_t *eg_json_f64(double v);

/* json_dumps(j, flags) with every real written by eg_fmt_double; flags
 * must not hold JSON_REAL_PRECISION. NULL when out of memory. */
char *eg_json_dumps(const struct json_t *j, size_t flags);

/* Writes a float32 value by eg_fmt_float, a double by eg_fmt_double;
 * null for NaN and infinities. */
void eg_text_f32(eg_text *t, double v);
void eg_text_f64(eg_text *t, double v);

#endif
