#include "meta/sweep.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "meta/job.h"
#include "util/err.h"
#include "util/json_num.h"

static _Thread_local char err_field[300];

const char *eg_sweep_error_field(void) { return err_field; }

static int fail(const char *field, const char *fmt, ...) EG_PRINTF(2, 3);
static int fail(const char *field, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err_field, sizeof err_field, "%s", field);
    return eg_errorf("%s%s%s", field, *field ? ": " : "", msg);
}

/* The request's members: each known, of the right type. */
static int check_request(const json_t *rq, const json_t **spec, const json_t **grid,
                         long *repeats)
{
    if (!json_is_object(rq)) return fail("", "a sweep is a JSON object {\"spec\", \"grid\"}");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)rq, key, v) {
        if (strcmp(key, "spec") && strcmp(key, "grid") && strcmp(key, "repeats") &&
            strcmp(key, "name"))
            return fail(key, "unknown member (a sweep has spec, grid, repeats and name)");
    }
    *spec = json_object_get(rq, "spec");
    if (!json_is_object(*spec)) return fail("spec", "the base job spec, an object, is required");
    *grid = json_object_get(rq, "grid");
    if (*grid && !json_is_object(*grid))
        return fail("grid", "an object of field paths to arrays of values");
    const json_t *name = json_object_get(rq, "name");
    if (name && !json_is_null(name) &&
        (!json_is_string(name) || json_string_length(name) == 0 ||
         json_string_length(name) > 200))
        return fail("name", "a string of 1 to 200 characters");
    const json_t *r = json_object_get(rq, "repeats");
    *repeats = 0;
    if (r) {
        if (!json_is_integer(r) || json_integer_value(r) < 1 ||
            json_integer_value(r) > EG_SWEEP_MAX_REPEATS)
            return fail("repeats", "an integer from 1 to %d", EG_SWEEP_MAX_REPEATS);
        if (*grid && json_object_get(*grid, "seed"))
            return fail("repeats", "give either repeats or a grid of seeds, not both");
        *repeats = (long)json_integer_value(r);
    }
    return 0;
}

/* The grid as parallel arrays of keys and value lists, "repeats" turned
 * into a seed list; n_points gets the size of the product. */
typedef struct axes {
    const char *key[64];
    json_t *values[64];
    int n;
    long n_points;
    json_t *seeds; /* owned: the seeds of "repeats" */
} axes;

static int build_axes(const json_t *spec, const json_t *grid, long repeats, axes *a)
{
    memset(a, 0, sizeof *a);
    a->n_points = 1;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)grid, key, v) {
        char field[300];
        snprintf(field, sizeof field, "grid.%s", key);
        if (a->n == 63) return fail("grid", "at most 63 keys");
        if (!json_is_array(v) || json_array_size(v) == 0)
            return fail(field, "a non-empty array of the values to run");
        a->key[a->n] = key;
        a->values[a->n++] = v;
        if ((a->n_points *= (long)json_array_size(v)) > EG_SWEEP_MAX_POINTS)
            return fail("grid", "more than %d points", EG_SWEEP_MAX_POINTS);
    }
    if (repeats > 0) {
        const json_t *s0 = json_object_get(spec, "seed");
        if (s0 && !json_is_integer(s0))
            return fail("spec.seed", "an integer, the first seed of the repeats");
        json_int_t first = s0 ? json_integer_value(s0) : 1;
        if (!(a->seeds = json_array())) return fail("", "out of memory");
        for (long i = 0; i < repeats; i++)
            json_array_append_new(a->seeds, json_integer(first + i));
        a->key[a->n] = "seed";
        a->values[a->n++] = a->seeds;
        if ((a->n_points *= repeats) > EG_SWEEP_MAX_POINTS)
            return fail("repeats", "more than %d points with the grid", EG_SWEEP_MAX_POINTS);
    }
    return 0;
}

int eg_sweep_expand(const json_t *request, json_t **points)
{
    err_field[0] = '\0';
    *points = NULL;
    const json_t *spec = NULL, *grid = NULL;
    long repeats = 0;
    EG_TRY(check_request(request, &spec, &grid, &repeats));
    axes a;
    if (build_axes(spec, grid, repeats, &a) != 0) {
        json_decref(a.seeds);
        return -1;
    }
    json_t *out = json_array();
    int rc = out ? 0 : fail("", "out of memory");
    for (long p = 0; rc == 0 && p < a.n_points; p++) {
        json_t *point = json_object(), *job = json_deep_copy(spec);
        if (!point || !job || json_array_append_new(out, json_pack("{s:o, s:o}", "point", point,
                                                                   "spec", job)) != 0) {
            rc = fail("", "out of memory");
            break;
        }
        /* Mixed radix, the last key fastest. */
        long rest = p;
        size_t idx[64];
        for (int k = a.n - 1; k >= 0; k--) {
            size_t m = json_array_size(a.values[k]);
            idx[k] = (size_t)(rest % (long)m);
            rest /= (long)m;
        }
        for (int k = 0; k < a.n && rc == 0; k++) {
            json_t *v = json_array_get(a.values[k], idx[k]);
            json_object_set(point, a.key[k], v);
            if (eg_job_set_value(job, a.key[k], v) != 0) {
                char field[300];
                snprintf(field, sizeof field, "grid.%s", a.key[k]);
                rc = fail(field, "%s", eg_last_error());
            }
        }
    }
    json_decref(a.seeds);
    if (rc != 0) {
        json_decref(out);
        return -1;
    }
    *points = out;
    return 0;
}

void eg_sweep_point_text(const json_t *point, char *out, unsigned long cap)
{
    size_t n = 0;
    out[0] = '\0';
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)point, key, v) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%s=%s", n ? ", " : "", key,
                                  text ? text : "?");
        free(text);
    }
    if (n == 0) snprintf(out, cap, "the base spec");
}

/* Summary fields that say what ran, not how it went. */
static int is_metric(const char *key)
{
    static const char *const not_metrics[] = {"seed", "steps", "steps_per_epoch", "n_lambda"};
    for (size_t i = 0; i < sizeof not_metrics / sizeof *not_metrics; i++)
        if (strcmp(key, not_metrics[i]) == 0) return 0;
    return 1;
}

/* The point without its seed (a new object). */
static json_t *group_of(const json_t *point)
{
    json_t *g = json_is_object(point) ? json_copy((json_t *)point) : json_object();
    if (g) json_object_del(g, "seed");
    return g;
}

/* Adds a succeeded job's numbers to its group's values: per metric, the
 * array of what each job gave. */
static int add_summary(json_t *values, const json_t *summary)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)summary, key, v) {
        if (!json_is_number(v) || !is_metric(key)) continue;
        json_t *xs = json_object_get(values, key);
        if (!xs && (json_object_set_new(values, key, xs = json_array()) != 0 || !xs)) return -1;
        if (json_array_append_new(xs, json_real(json_number_value(v))) != 0) return -1;
    }
    return 0;
}

static json_t *stats_of(const json_t *xs)
{
    size_t n = json_array_size(xs), i;
    json_t *x;
    double sum = 0, ss = 0;
    json_array_foreach((json_t *)xs, i, x) sum += json_real_value(x);
    double mean = sum / (double)n;
    json_array_foreach((json_t *)xs, i, x) {
        double d = json_real_value(x) - mean;
        ss += d * d;
    }
    return json_pack("{s:o, s:o, s:I}", "mean", eg_json_f64(mean), "std",
                     eg_json_f64(sqrt(ss / (double)n)), "n", (json_int_t)n);
}

json_t *eg_sweep_aggregate(const json_t *jobs)
{
    json_t *groups = json_array(), *values = json_array(); /* parallel */
    if (!groups || !values) goto oom;
    size_t i;
    json_t *job;
    json_array_foreach((json_t *)jobs, i, job) {
        json_t *g = group_of(json_object_get(job, "point"));
        if (!g) goto oom;
        json_t *entry = NULL, *vals = NULL;
        for (size_t k = 0; k < json_array_size(groups) && !entry; k++)
            if (json_equal(json_object_get(json_array_get(groups, k), "point"), g)) {
                entry = json_array_get(groups, k);
                vals = json_array_get(values, k);
            }
        if (!entry) {
            entry = json_pack("{s:o, s:I, s:I}", "point", g, "jobs", (json_int_t)0, "succeeded",
                              (json_int_t)0);
            vals = json_object();
            if (!entry || !vals || json_array_append_new(groups, entry) != 0 ||
                json_array_append_new(values, vals) != 0)
                goto oom;
        } else {
            json_decref(g);
        }
        json_object_set_new(entry, "jobs",
                            json_integer(json_integer_value(json_object_get(entry, "jobs")) + 1));
        const char *state = json_string_value(json_object_get(job, "state"));
        const json_t *summary = json_object_get(job, "summary");
        if (!state || strcmp(state, "succeeded") != 0 || !json_is_object(summary)) continue;
        json_object_set_new(
            entry, "succeeded",
            json_integer(json_integer_value(json_object_get(entry, "succeeded")) + 1));
        if (add_summary(vals, summary) != 0) goto oom;
    }
    json_t *entry;
    json_array_foreach(groups, i, entry) {
        json_t *metrics = json_object(), *xs;
        const char *key;
        if (!metrics || json_object_set_new(entry, "metrics", metrics) != 0) goto oom;
        json_object_foreach(json_array_get(values, i), key, xs) {
            if (json_object_set_new(metrics, key, stats_of(xs)) != 0) goto oom;
        }
    }
    json_decref(values);
    return groups;
oom:
    json_decref(groups);
    json_decref(values);
    eg_errorf("sweep: out of memory");
    return NULL;
}

json_t *eg_sweep_counts(const json_t *jobs, const char **state)
{
    static const char *const states[] = {"queued", "running", "succeeded", "failed",
                                         "canceled"};
    long n[5] = {0};
    size_t i;
    json_t *job;
    json_array_foreach((json_t *)jobs, i, job) {
        const char *s = json_string_value(json_object_get(job, "state"));
        for (int k = 0; s && k < 5; k++)
            if (strcmp(s, states[k]) == 0) n[k]++;
    }
    long total = (long)json_array_size(jobs);
    if (n[0] == total) *state = "queued";
    else if (n[0] + n[1] > 0) *state = "running";
    else if (n[3] > 0) *state = "failed";
    else if (n[4] > 0) *state = "canceled";
    else *state = "succeeded";
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "queued", (json_int_t)n[0], "running",
                     (json_int_t)n[1], "succeeded", (json_int_t)n[2], "failed", (json_int_t)n[3],
                     "canceled", (json_int_t)n[4]);
}
