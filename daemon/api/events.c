/* Server-sent events.
 *
 * /v1/jobs/{id}/events, of one job:
 *   event: state   data: the job object; first on connecting, then on
 *                  every change of state
 *   event: step    data: a step row (as in /steps); id: the step, so a
 *                  reconnecting client resumes after it (Last-Event-ID)
 * It polls the store every POLL_MS and ends once the job has finished and
 * its last step rows are sent, when the job is deleted, or at shutdown.
 *
 * /v1/events, of every job (the newest ALL_JOBS of them), for a live list:
 *   event: job     data: the job object; each job on connecting, then
 *                  whenever its state, steps or cancel flag changed
 *   event: deleted data: {"id": ID}
 * It polls every ALL_POLL_MS until shutdown.
 *
 * Both send ": keepalive" after 15 s of silence. */
#include "api/api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/loop.h"
#include "util/json_num.h"
#include "util/log.h"

#define POLL_MS 200.0
#define KEEPALIVE_MS 15000.0
#define PAGE_ROWS 256
#define ALL_JOBS 1000
#define ALL_POLL_MS 1000.0

/* What the all-jobs stream last sent of a job. */
typedef struct seen_job {
    int64_t id;
    uint64_t sig; /* hash of its state, steps_done and cancel flag */
} seen_job;

typedef struct events {
    eg_api_ctx *ctx;
    int64_t job;          /* 0: every job (/v1/events) */
    seen_job *seen;       /* every job: what was sent, by id */
    size_t n_seen;
    long after;           /* the last step sent */
    char state[16];       /* the last state sent, "" before the first */
    int done;             /* ends once out is drained */
    char *out;            /* pending text: out[pos..len) */
    size_t len, pos, cap;
    double next_poll_ms, last_sent_ms;
} events;

/* Appends n bytes to the pending text; -1 when out of memory. */
static int put(events *e, const char *s, size_t n)
{
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 4096;
        while (cap < e->len + n) cap *= 2;
        char *bigger = realloc(e->out, cap);
        if (!bigger) return -1;
        e->out = bigger;
        e->cap = cap;
    }
    memcpy(e->out + e->len, s, n);
    e->len += n;
    return 0;
}

/* Appends one event: "id: ID\n" when id >= 0, "event: NAME\n", "data:
 * TEXT\n\n" (text: one line of JSON, len bytes). */
static int put_event_text(events *e, const char *name, long id, const char *text, size_t len)
{
    char head[96];
    int n = id >= 0 ? snprintf(head, sizeof head, "id: %ld\nevent: %s\ndata: ", id, name)
                    : snprintf(head, sizeof head, "event: %s\ndata: ", name);
    return put(e, head, (size_t)n) || put(e, text, len) || put(e, "\n\n", 2) ? -1 : 0;
}

static int put_event(events *e, const char *name, long id, const json_t *data)
{
    char *json = eg_json_dumps(data, JSON_COMPACT);
    if (!json) return -1;
    int rc = put_event_text(e, name, id, json, strlen(json));
    free(json);
    return rc;
}

/* A step row as an event: the same text as /steps serves. */
static int put_step(void *ctx, long step, const char *text, size_t len)
{
    events *e = ctx;
    if (put_event_text(e, "step", step, text, len) != 0) return -1;
    e->after = step;
    return 0;
}

static int is_final(const char *state)
{
    return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "canceled") == 0;
}

/* One look at the store: new steps, then the state when it changed. The
 * state is read before the steps: the store commits a job's steps before
 * it records its end, so every step of a finished job is in the page read
 * after. -1 ends the stream. */
static int poll_store(events *e)
{
    json_t *job = NULL;
    int rc = eg_store_job_get(e->ctx->store, e->job, &job);
    if (rc != 0) {
        if (rc < 0) EG_LOG(WARN, "api: events of job %lld: %s", (long long)e->job, eg_last_error());
        return -1; /* gone (deleted) or unreadable */
    }
    char state[16];
    const char *s = json_string_value(json_object_get(job, "state"));
    snprintf(state, sizeof state, "%s", s ? s : "");
    /* The first state goes before any step; later ones after the steps
     * that led to them. */
    if (e->state[0] == '\0') {
        if (put_event(e, "state", -1, job) != 0) {
            json_decref(job);
            return -1;
        }
        snprintf(e->state, sizeof e->state, "%s", state);
    }
    int more = 0;
    rc = eg_store_steps_read(e->ctx->store, e->job, e->after, PAGE_ROWS, 0, put_step, e, &more);
    if (rc != 0) {
        if (rc < 0) EG_LOG(WARN, "api: events of job %lld: %s", (long long)e->job, eg_last_error());
        json_decref(job);
        return -1;
    }
    if (strcmp(state, e->state) != 0) {
        if (put_event(e, "state", -1, job) != 0) rc = -1;
        snprintf(e->state, sizeof e->state, "%s", state);
    }
    json_decref(job);
    if (rc != 0) return -1;
    if (is_final(state) && !more) e->done = 1;
    /* A full page: look again at once, the log has more. */
    e->next_poll_ms = eg_now_ms() + (more ? 0 : POLL_MS);
    return 0;
}

static uint64_t job_sig(const json_t *job)
{
    const char *st = json_string_value(json_object_get(job, "state"));
    uint64_t h = 1469598103934665603ull;
    for (const char *c = st ? st : ""; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    h = (h ^ (uint64_t)json_integer_value(json_object_get(job, "steps_done"))) * 1099511628211ull;
    return (h ^ (uint64_t)json_is_true(json_object_get(job, "cancel_requested"))) *
           1099511628211ull;
}

/* An "event: deleted" of job id. */
static int put_deleted(events *e, int64_t id)
{
    char gone[48];
    int len = snprintf(gone, sizeof gone, "{\"id\":%lld}", (long long)id);
    return put_event_text(e, "deleted", -1, gone, (size_t)len);
}

/* One look at the newest ALL_JOBS jobs: an event for each that is new or
 * changed since the last look, and for each that is gone. -1 ends the
 * stream. */
static int poll_all(events *e)
{
    int64_t newest = 0;
    json_t *page = NULL;
    /* The newest id first, then the page of jobs up to it. */
    if (eg_store_newest_job(e->ctx->store, &newest) != 0) {
        EG_LOG(WARN, "api: events of every job: %s", eg_last_error());
        return -1;
    }
    int64_t floor = newest > ALL_JOBS ? newest - ALL_JOBS : 0; /* ids <= floor: out of view */
    if (eg_store_jobs_list(e->ctx->store, NULL, floor, ALL_JOBS, &page) != 0) {
        EG_LOG(WARN, "api: events of every job: %s", eg_last_error());
        return -1;
    }
    json_t *jobs = json_object_get(page, "jobs");
    size_t n = json_array_size(jobs), k = 0;
    seen_job *now = malloc((n + 1) * sizeof *now);
    int rc = now ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *job = json_array_get(jobs, i);
        now[i] = (seen_job){json_integer_value(json_object_get(job, "id")), job_sig(job)};
        /* Both lists ascend by id: what was seen before this one is gone. */
        for (; k < e->n_seen && e->seen[k].id < now[i].id && rc == 0; k++) {
            if (e->seen[k].id <= floor) continue;
            rc = put_deleted(e, e->seen[k].id);
        }
        int same = k < e->n_seen && e->seen[k].id == now[i].id && e->seen[k].sig == now[i].sig;
        if (k < e->n_seen && e->seen[k].id == now[i].id) k++;
        if (rc == 0 && !same) rc = put_event(e, "job", -1, job);
    }
    /* Jobs past the newest listed are gone too (ids never come back). */
    for (; rc == 0 && k < e->n_seen; k++) {
        if (e->seen[k].id <= floor) continue;
        rc = put_deleted(e, e->seen[k].id);
    }
    json_decref(page);
    if (rc != 0) {
        free(now);
        return -1;
    }
    free(e->seen);
    e->seen = now;
    e->n_seen = n;
    e->next_poll_ms = eg_now_ms() + ALL_POLL_MS;
    return 0;
}

static ssize_t events_read(void *state, char *buf, size_t max, int *wait)
{
    events *e = state;
    *wait = 0;
    if (e->pos == e->len) {
        e->pos = e->len = 0;
        if (e->done || atomic_load(&e->ctx->stopping)) return -1;
        double now = eg_now_ms();
        if (now < e->next_poll_ms) {
            *wait = 1;
            return 0;
        }
        if ((e->job ? poll_store(e) : poll_all(e)) != 0) return -1;
        if (e->len == 0 && now - e->last_sent_ms >= KEEPALIVE_MS &&
            put(e, ": keepalive\n\n", 13) != 0)
            return -1;
        if (e->len == 0) {
            if (e->done) return -1;
            *wait = 1;
            return 0;
        }
    }
    size_t n = e->len - e->pos < max ? e->len - e->pos : max;
    memcpy(buf, e->out + e->pos, n);
    e->pos += n;
    e->last_sent_ms = eg_now_ms();
    return (ssize_t)n;
}

static void events_free(void *state)
{
    events *e = state;
    if (!e) return;
    free(e->seen);
    free(e->out);
    free(e);
}

void eg_api_events_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {"after", NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    long long after = -1;
    /* A reconnecting EventSource sends the last step it saw. */
    if (rq->last_event_id && eg_parse_int(rq->last_event_id, -1, 1000000000000LL, &after) != 0)
        after = -1;
    if (eg_query_int(&rq->query, "after", -1, 1000000000000LL, after, &after, rp) != 0) return;
    json_t *job = NULL;
    int rc = eg_store_job_get(rq->ctx->store, rq->id, &job);
    json_decref(job);
    if (rc == 1) {
        eg_reply_error(rp, 404, "not_found", NULL, "no job %lld", (long long)rq->id);
        return;
    }
    if (rc != 0) {
        eg_reply_internal(rp, "reading the job");
        return;
    }
    events *e = calloc(1, sizeof *e);
    if (!e) {
        eg_reply_error(rp, 500, "internal", NULL, "out of memory");
        return;
    }
    e->ctx = rq->ctx;
    e->job = rq->id;
    e->after = (long)after;
    e->last_sent_ms = eg_now_ms();
    eg_reply_clear(rp);
    rp->status = 200;
    rp->content_type = "text/event-stream";
    rp->stream = (eg_stream){.read = events_read, .free = events_free, .state = e};
}

void eg_api_all_events_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    events *e = calloc(1, sizeof *e);
    if (!e) {
        eg_reply_error(rp, 500, "internal", NULL, "out of memory");
        return;
    }
    e->ctx = rq->ctx;
    e->last_sent_ms = eg_now_ms();
    eg_reply_clear(rp);
    rp->status = 200;
    rp->content_type = "text/event-stream";
    rp->stream = (eg_stream){.read = events_read, .free = events_free, .state = e};
}
