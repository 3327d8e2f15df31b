/* Readers of JSON job-spec fields, shared by the generic sections
 * (meta/job.c) and each task's own section (tasks/): every reader takes
 * one key of a scope's object, leaves the default in place when the key is
 * absent, and refuses a wrong JSON type or an out-of-range value with an
 * error that starts with the field's dotted path (recorded for
 * eg_job_error_field). */
#ifndef EG_SPEC_H
#define EG_SPEC_H

#include <stddef.h>

#include "util/err.h"

struct json_t;

/* An object of a spec and its dotted path ("" at the top); obj is NULL
 * when the object is absent, and then every field reads as absent. */
typedef struct eg_spec_scope {
    const struct json_t *obj;
    char path[128];
} eg_spec_scope;

/* Records path.key (or either alone) as the failing field and the message
 * "path.key: MESSAGE"; returns -1. */
int eg_spec_fail(const char *path, const char *key, const char *fmt, ...) EG_PRINTF(3, 4);

/* The field the last failure of this thread named, or "". */
const char *eg_spec_error_field(void);
void eg_spec_clear_error(void);

/* "an object", "a string", ... for messages. */
const char *eg_spec_type_name(const struct json_t *v);

/* The integer v (a JSON integer, or a real with no fraction) in [lo, hi]
 * for field path.key. */
int eg_spec_int_value(const struct json_t *v, const char *path, const char *key, long long lo,
                      long long hi, long long *out);

int eg_spec_int(const eg_spec_scope *s, const char *key, long long lo, long long hi,
                long long *out);
int eg_spec_i(const eg_spec_scope *s, const char *key, int lo, int hi, int *out);
int eg_spec_l(const eg_spec_scope *s, const char *key, long lo, long hi, long *out);
int eg_spec_num(const eg_spec_scope *s, const char *key, double lo, double hi, double *out);
int eg_spec_f(const eg_spec_scope *s, const char *key, double lo, double hi, float *out);
int eg_spec_bool(const eg_spec_scope *s, const char *key, int *out);

/* A string that fits buf (cap bytes with its NUL) whole, without NULs. */
int eg_spec_str(const eg_spec_scope *s, const char *key, char *buf, size_t cap);

/* One of names[first..n) as its index. */
int eg_spec_enum(const eg_spec_scope *s, const char *key, const char *const *names, int first,
                 int n, int *out);

/* An enum field kept as its name in buf. */
int eg_spec_enum_str(const eg_spec_scope *s, const char *key, const char *const *names,
                     int first, int n, char *buf, size_t cap);

int eg_spec_present(const eg_spec_scope *s, const char *key);

/* Refuses keys of obj outside allowed (NULL-terminated), naming the first
 * unknown one and listing the known ones. */
int eg_spec_check_keys(const struct json_t *obj, const char *path, const char *const *allowed);

/* Opens object field key of s as child, refusing keys outside allowed; an
 * absent field gives a child whose obj is NULL. */
int eg_spec_open(const eg_spec_scope *s, const char *key, const char *const *allowed,
                 eg_spec_scope *child);

/* A float field written back as the double nearest its shortest text
 * (0.1f as 0.1). */
double eg_spec_shortest(float f);

#endif
