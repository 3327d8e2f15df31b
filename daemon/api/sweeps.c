/* /v1/sweeps: submit a grid of jobs at once (all validated before any is
 * made), list and read sweeps with their aggregates, cancel and delete a
 * whole sweep. */
#include "api/api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/sweep.h"
#include "util/err.h"
#include "util/json_num.h"
#include "util/log.h"

/* The sweep as the API shows it: the stored one with its state, counts
 * and aggregate; with_jobs 0 leaves out the jobs and the aggregate (the
 * listing). Takes sw. */
static json_t *sweep_view(json_t *sw, int with_jobs)
{
    json_t *jobs = json_object_get(sw, "jobs");
    const char *state;
    json_t *counts = eg_sweep_counts(jobs, &state);
    json_t *aggregate = with_jobs ? eg_sweep_aggregate(jobs) : json_null();
    int bad = !counts || !aggregate;
    bad |= json_object_set_new(sw, "state", json_string(state));
    bad |= json_object_set_new(sw, "counts", counts);
    bad |= json_object_set_new(sw, "jobs_total", json_integer((json_int_t)json_array_size(jobs)));
    if (with_jobs) {
        bad |= json_object_set_new(sw, "aggregate", aggregate);
        size_t i;
        json_t *job;
        json_array_foreach(jobs, i, job) json_object_del(job, "summary");
    } else {
        json_decref(aggregate);
        json_object_del(sw, "jobs");
    }
    if (bad) {
        json_decref(sw);
        return NULL;
    }
    return sw;
}

static void reply_sweep(const eg_request *rq, eg_reply *rp, int64_t id, int status)
{
    json_t *sw = NULL;
    int rc = eg_store_sweep_get(rq->ctx->store, id, &sw);
    if (rc == 1) {
        eg_reply_error(rp, 404, "not_found", NULL, "no sweep %lld", (long long)id);
        return;
    }
    if (rc != 0) {
        eg_reply_internal(rp, "reading the sweep");
        return;
    }
    eg_reply_json(rp, status, sweep_view(sw, 1));
}

/* Turns the 400 that eg_api_job_from_spec left in rp into the sweep's,
 * naming the point (also as the error's "point") and keeping the field. */
static void point_error(eg_reply *rp, const json_t *point, size_t i, size_t n)
{
    json_t *err = json_object_get(rp->body, "error");
    char field[300], message[800], text[300];
    snprintf(field, sizeof field, "%s",
             json_string_value(json_object_get(err, "field")) ?: "");
    snprintf(message, sizeof message, "%s",
             json_string_value(json_object_get(err, "message")) ?: "invalid job");
    int status = rp->status;
    eg_sweep_point_text(point, text, sizeof text);
    eg_reply_error(rp, status, "invalid_sweep", field, "grid point %zu of %zu (%s): %s", i + 1, n,
                   text, message);
    json_object_set(json_object_get(rp->body, "error"), "point", (json_t *)point);
}

/* Validates every point of the request into rows[] (texts[3 i ..] holding
 * each point's spec, point and device as text, which the rows point to);
 * -1 with rp set at the first bad one. */
static int validate_points(const eg_api_ctx *ctx, const json_t *points, eg_store_job_row *rows,
                           char **texts, eg_reply *rp)
{
    size_t n = json_array_size(points), i;
    json_t *p;
    eg_api_devices devs;
    const char *const *devices = eg_api_devices_all(ctx, &devs);
    json_array_foreach((json_t *)points, i, p) {
        eg_job job;
        const json_t *point = json_object_get(p, "point");
        if (eg_api_job_from_spec(json_object_get(p, "spec"), ctx->data_roots, devices, &job,
                                 rp) != 0) {
            point_error(rp, point, i, n);
            return -1;
        }
        if (eg_api_job_row(&job, &rows[i], &texts[3 * i]) != 0 ||
            !(texts[3 * i + 1] = eg_json_dumps(point, JSON_COMPACT)) ||
            !(texts[3 * i + 2] = strdup(job.device))) {
            eg_reply_error(rp, 500, "internal", NULL, "out of memory");
            return -1;
        }
        rows[i].point_json = texts[3 * i + 1];
        rows[i].device = texts[3 * i + 2]; /* job is gone after this turn */
    }
    return 0;
}

/* The request as kept with the sweep: spec, grid and repeats. */
static char *request_text(const json_t *body)
{
    json_t *kept = json_object();
    static const char *const keys[] = {"spec", "grid", "repeats"};
    for (int k = 0; kept && k < 3; k++) {
        json_t *v = json_object_get(body, keys[k]);
        if (v) json_object_set(kept, keys[k], v);
    }
    char *text = kept ? eg_json_dumps(kept, JSON_COMPACT) : NULL;
    json_decref(kept);
    return text;
}

void eg_api_sweeps_post(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    eg_api_ctx *ctx = rq->ctx;
    if (eg_reply_unless_room(ctx->store, rp, "sweeps") != 0 ||
        eg_reply_unless_json(rq->content_type, rp, "a sweep") != 0)
        return;
    json_error_t je;
    json_t *body = json_loadb(rq->body ? rq->body : "", rq->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!body) {
        eg_reply_error(rp, 400, "invalid_sweep", NULL, "the body is not JSON: %s (line %d)",
                       je.text, je.line);
        return;
    }
    json_t *points = NULL;
    if (eg_sweep_expand(body, &points) != 0) {
        eg_reply_error(rp, 400, "invalid_sweep", eg_sweep_error_field(), "%s", eg_last_error());
        json_decref(body);
        return;
    }
    size_t n = json_array_size(points);
    eg_store_job_row *rows = calloc(n, sizeof *rows);
    char **texts = calloc(3 * n, sizeof *texts), *request = request_text(body);
    const char *name = json_string_value(json_object_get(body, "name"));
    int64_t id = 0;
    int rc = 0;
    if (!rows || !texts || !request) {
        eg_reply_error(rp, 500, "internal", NULL, "out of memory");
        rc = -1;
    }
    if (rc == 0) rc = validate_points(ctx, points, rows, texts, rp);
    if (rc == 0 && eg_store_sweep_insert(ctx->store, name, request, rows, (int)n, &id) != 0) {
        eg_reply_internal(rp, "storing the sweep");
        rc = -1;
    }
    for (size_t i = 0; texts && i < 3 * n; i++) free(texts[i]);
    free(texts);
    free(rows);
    free(request);
    json_decref(points);
    json_decref(body);
    if (rc != 0) return;
    EG_LOG(INFO, "api: sweep %lld queued: %zu jobs", (long long)id, n);
    if (ctx->sched) eg_sched_poke(ctx->sched);
    reply_sweep(rq, rp, id, 201);
    if (rp->status == 201)
        snprintf(rp->location, sizeof rp->location, "/v1/sweeps/%lld", (long long)id);
}

void eg_api_sweeps_list(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {"after", "limit", NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    long long after, limit;
    if (eg_query_int(&rq->query, "after", 0, INT64_MAX, 0, &after, rp) != 0) return;
    if (eg_query_int(&rq->query, "limit", 1, 1000, 100, &limit, rp) != 0) return;
    json_t *out = NULL;
    if (eg_store_sweeps_list(rq->ctx->store, after, (int)limit, &out) != 0) {
        eg_reply_internal(rp, "listing sweeps");
        return;
    }
    json_t *list = json_object_get(out, "sweeps"), *views = json_array();
    size_t i;
    json_t *sw;
    int bad = !views;
    json_array_foreach(list, i, sw) {
        json_t *v = sweep_view(json_incref(sw), 0);
        bad |= !v || json_array_append_new(views, v) != 0;
    }
    bad |= json_object_set_new(out, "sweeps", views) != 0;
    if (bad) {
        json_decref(out);
        out = NULL;
    }
    eg_reply_json(rp, 200, out);
}

void eg_api_sweep_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    reply_sweep(rq, rp, rq->id, 200);
}

void eg_api_sweep_cancel(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    int n = 0, rc = eg_store_sweep_cancel(rq->ctx->store, rq->id, &n);
    if (rc == 1) {
        eg_reply_error(rp, 404, "not_found", NULL, "no sweep %lld", (long long)rq->id);
    } else if (rc == 2) {
        eg_reply_error(rp, 409, "conflict", NULL, "every job of sweep %lld has already ended",
                       (long long)rq->id);
    } else if (rc != 0) {
        eg_reply_internal(rp, "canceling the sweep");
    } else {
        EG_LOG(INFO, "api: sweep %lld: cancel requested for %d jobs", (long long)rq->id, n);
        reply_sweep(rq, rp, rq->id, 202);
    }
}

void eg_api_sweep_delete(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    int64_t *ids = NULL;
    int n = 0, rc = eg_store_sweep_delete(rq->ctx->store, rq->id, &ids, &n);
    if (rc == 1) {
        eg_reply_error(rp, 404, "not_found", NULL, "no sweep %lld", (long long)rq->id);
    } else if (rc == 2) {
        eg_reply_error(rp, 409, "conflict", NULL,
                       "sweep %lld has running jobs; cancel it first (POST /v1/sweeps/%lld/cancel)",
                       (long long)rq->id, (long long)rq->id);
    } else if (rc != 0) {
        eg_reply_internal(rp, "deleting the sweep");
    } else {
        for (int i = 0; i < n; i++) eg_api_remove_checkpoint(rq->ctx, ids[i]);
        EG_LOG(INFO, "api: sweep %lld deleted with its %d jobs", (long long)rq->id, n);
        eg_reply_clear(rp);
        rp->status = 204;
    }
    free(ids);
}
