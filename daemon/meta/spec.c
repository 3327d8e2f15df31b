/* Readers of JSON job-spec fields (meta/spec.h). */
#include "meta/spec.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_num.h"

/* ---- errors ---- */

static _Thread_local char err_field[256];

const char *eg_spec_error_field(void) { return err_field; }

void eg_spec_clear_error(void) { err_field[0] = '\0'; }

/* Records the field path.key (or either alone) as the failing one and the
 * message "path.key: MESSAGE"; returns -1. */
int eg_spec_fail(const char *path, const char *key, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    path = path ? path : "";
    key = key ? key : "";
    snprintf(err_field, sizeof err_field, "%s%s%s", path, *path && *key ? "." : "", key);
    if (!*err_field) return eg_errorf("%s", msg);
    return eg_errorf("%s: %s", err_field, msg);
}

const char *eg_spec_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* ---- typed field readers ----
 * Each reads key from the object of a eg_spec_scope. An absent key leaves *out as it
 * is (the default) and returns 0; a present one must have the right JSON
 * type and lie in range, else -1 naming the field. */


/* The integer v (a JSON integer, or a real with no fraction, as JSON
 * Schema counts integers) in [lo, hi], for field path.key. */
int eg_spec_int_value(const json_t *v, const char *path, const char *key, long long lo,
                     long long hi, long long *out)
{
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || d < (double)lo || d > (double)hi)
            return eg_spec_fail(path, key, "must be an integer in [%lld, %lld], not %.17g", lo, hi, d);
        x = (long long)d;
    } else {
        return eg_spec_fail(path, key, "must be an integer in [%lld, %lld], not %s", lo, hi,
                    eg_spec_type_name(v));
    }
    if (x < lo || x > hi)
        return eg_spec_fail(path, key, "must be an integer in [%lld, %lld], not %lld", lo, hi, x);
    *out = x;
    return 0;
}

int eg_spec_int(const eg_spec_scope *s, const char *key, long long lo, long long hi,
                  long long *out)
{
    const json_t *v = json_object_get(s->obj, key);
    return v ? eg_spec_int_value(v, s->path, key, lo, hi, out) : 0;
}

int eg_spec_i(const eg_spec_scope *s, const char *key, int lo, int hi, int *out)
{
    long long x = *out;
    EG_TRY(eg_spec_int(s, key, lo, hi, &x));
    *out = (int)x;
    return 0;
}

int eg_spec_l(const eg_spec_scope *s, const char *key, long lo, long hi, long *out)
{
    long long x = *out;
    EG_TRY(eg_spec_int(s, key, lo, hi, &x));
    *out = (long)x;
    return 0;
}

int eg_spec_num(const eg_spec_scope *s, const char *key, double lo, double hi, double *out)
{
    const json_t *v = json_object_get(s->obj, key);
    if (!v) return 0;
    if (!json_is_number(v))
        return eg_spec_fail(s->path, key, "must be a number in [%g, %g], not %s", lo, hi, eg_spec_type_name(v));
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return eg_spec_fail(s->path, key, "must be a number in [%g, %g], not %.17g", lo, hi, x);
    *out = x;
    return 0;
}

int eg_spec_f(const eg_spec_scope *s, const char *key, double lo, double hi, float *out)
{
    double x = *out;
    EG_TRY(eg_spec_num(s, key, lo, hi, &x));
    *out = (float)x;
    return 0;
}

int eg_spec_bool(const eg_spec_scope *s, const char *key, int *out)
{
    const json_t *v = json_object_get(s->obj, key);
    if (!v) return 0;
    if (!json_is_boolean(v))
        return eg_spec_fail(s->path, key, "must be true or false, not %s", eg_spec_type_name(v));
    *out = json_is_true(v);
    return 0;
}

/* A string that fits buf (cap bytes with its NUL) whole. */
int eg_spec_str(const eg_spec_scope *s, const char *key, char *buf, size_t cap)
{
    const json_t *v = json_object_get(s->obj, key);
    if (!v) return 0;
    if (!json_is_string(v)) return eg_spec_fail(s->path, key, "must be a string, not %s", eg_spec_type_name(v));
    size_t len = json_string_length(v);
    if (memchr(json_string_value(v), '\0', len))
        return eg_spec_fail(s->path, key, "must not contain NUL characters");
    if (len >= cap)
        return eg_spec_fail(s->path, key, "is %zu bytes long, at most %zu allowed", len, cap - 1);
    memcpy(buf, json_string_value(v), len + 1);
    return 0;
}

/* Lists names[0..n) as "\"a\", \"b\"" into buf. */
static const char *name_list(const char *const *names, int n, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s\"%s\"", i ? ", " : "", names[i]);
    return buf;
}

/* One of names[first..n) as its index. */
int eg_spec_enum(const eg_spec_scope *s, const char *key, const char *const *names, int first,
                   int n, int *out)
{
    const json_t *v = json_object_get(s->obj, key);
    if (!v) return 0;
    char list[256];
    name_list(names + first, n - first, list, sizeof list);
    if (!json_is_string(v))
        return eg_spec_fail(s->path, key, "must be one of %s, not %s", list, eg_spec_type_name(v));
    int whole = strlen(json_string_value(v)) == json_string_length(v); /* no NUL inside */
    for (int i = first; i < n && whole; i++)
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *out = i;
            return 0;
        }
    return eg_spec_fail(s->path, key, "must be one of %s, not \"%.64s\"", list, json_string_value(v));
}

/* An enum field stored as its name in buf (which holds every name). */
int eg_spec_enum_str(const eg_spec_scope *s, const char *key, const char *const *names, int first,
                       int n, char *buf, size_t cap)
{
    int i = -1;
    EG_TRY(eg_spec_enum(s, key, names, first, n, &i));
    if (i >= 0) snprintf(buf, cap, "%s", names[i]);
    return 0;
}

int eg_spec_present(const eg_spec_scope *s, const char *key) { return json_object_get(s->obj, key) != NULL; }

/* Refuses keys of obj outside allowed (a NULL-terminated list), naming the
 * first unknown one. */
int eg_spec_check_keys(const json_t *obj, const char *path, const char *const *allowed)
{
    const char *k;
    const json_t *val;
    json_object_foreach((json_t *)obj, k, val) {
        int known = 0;
        for (int i = 0; allowed[i] && !known; i++) known = strcmp(k, allowed[i]) == 0;
        if (known) continue;
        char list[512];
        size_t used = 0;
        list[0] = '\0';
        for (int i = 0; allowed[i] && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                     allowed[i]);
        return eg_spec_fail(path, k, "unknown field (known here: %s)", list);
    }
    return 0;
}

/* Opens object field key of s as child, refusing keys outside allowed. An
 * absent field gives a child with obj NULL, whose fields all read as
 * absent. */
int eg_spec_open(const eg_spec_scope *s, const char *key, const char *const *allowed, eg_spec_scope *child)
{
    const json_t *v = json_object_get(s->obj, key);
    int n = snprintf(child->path, sizeof child->path, "%s%s%s", s->path, *s->path ? "." : "",
                     key);
    child->obj = NULL;
    if (n >= (int)sizeof child->path) return eg_spec_fail(s->path, key, "field path too long");
    if (!v) return 0;
    if (!json_is_object(v)) return eg_spec_fail(child->path, NULL, "must be an object, not %s",
                                        eg_spec_type_name(v));
    EG_TRY(eg_spec_check_keys(v, child->path, allowed));
    child->obj = v;
    return 0;
}

/* A float32 field as the double nearest its shortest text, so that 0.1f
 * is written 0.1 rather than 0.10000000149011612. */
double eg_spec_shortest(float f)
{
    char b[40];
    return eg_fmt_float(f, b, sizeof b) < 0 ? (double)f : strtod(b, NULL);
}

