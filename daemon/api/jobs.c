/* /v1/jobs: submit, list, read, cancel and delete jobs. */
#include "api/api.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/json_num.h"

static const char *const job_states[] = {"queued", "running", "succeeded", "failed",
                                         "canceled"};

/* Answers with job id as stored (status 200/201/202), or 404 / 500. */
static void reply_job(const eg_request *rq, eg_reply *rp, int64_t id, int status)
{
    json_t *job = NULL;
    int rc = eg_store_job_get(rq->ctx->store, id, &job);
    if (rc == 1) {
        eg_reply_error(rp, 404, "not_found", NULL, "no job %lld", (long long)id);
        return;
    }
    if (rc != 0) {
        eg_reply_internal(rp, "reading the job");
        return;
    }
    eg_reply_json(rp, status, job);
}

void eg_api_jobs_post(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    eg_api_ctx *ctx = rq->ctx;
    if (eg_reply_unless_room(ctx->store, rp, "jobs") != 0) return;
    eg_job job;
    eg_api_devices devs;
    if (eg_api_job_from_body(rq->content_type, rq->body, rq->body_len, ctx->data_roots,
                             eg_api_devices_all(ctx, &devs), &job, rp) != 0)
        return;
    eg_store_job_row row;
    char *text;
    if (eg_api_job_row(&job, &row, &text) != 0) {
        eg_reply_error(rp, 500, "internal", NULL, "out of memory");
        return;
    }
    int64_t id = 0;
    int rc = eg_store_job_insert(ctx->store, row.spec_json, row.task, row.method, row.device,
                                 row.total_steps, &id);
    free(text);
    if (rc != 0) {
        eg_reply_internal(rp, "storing the job");
        return;
    }
    EG_LOG(INFO, "api: job %lld queued: %s with %s on %s", (long long)id, job.task->name,
           eg_method_name(job.method), job.device);
    if (ctx->sched) eg_sched_poke(ctx->sched);
    reply_job(rq, rp, id, 201);
    if (rp->status == 201)
        snprintf(rp->location, sizeof rp->location, "/v1/jobs/%lld", (long long)id);
}

void eg_api_jobs_list(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {"state", "after", "limit", NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    const char *state = eg_query_get(&rq->query, "state");
    if (state) {
        int ok = 0;
        for (size_t i = 0; i < sizeof job_states / sizeof *job_states; i++)
            ok |= strcmp(state, job_states[i]) == 0;
        if (!ok) {
            eg_reply_error(rp, 400, "invalid_parameter", "state",
                           "state must be one of queued, running, succeeded, failed, "
                           "canceled, not \"%.64s\"", state);
            return;
        }
    }
    long long after, limit;
    if (eg_query_int(&rq->query, "after", 0, INT64_MAX, 0, &after, rp) != 0) return;
    if (eg_query_int(&rq->query, "limit", 1, 1000, 100, &limit, rp) != 0) return;
    json_t *out = NULL;
    if (eg_store_jobs_list(rq->ctx->store, state, after, (int)limit, &out) != 0) {
        eg_reply_internal(rp, "listing jobs");
        return;
    }
    eg_reply_json(rp, 200, out);
}

void eg_api_job_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    reply_job(rq, rp, rq->id, 200);
}

void eg_api_job_cancel(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    int rc = eg_store_job_cancel(rq->ctx->store, rq->id);
    if (rc == 1) {
        eg_reply_error(rp, 404, "not_found", NULL, "no job %lld", (long long)rq->id);
    } else if (rc == 2) {
        eg_reply_error(rp, 409, "conflict", NULL, "job %lld has already finished",
                       (long long)rq->id);
    } else if (rc != 0) {
        eg_reply_internal(rp, "canceling the job");
    } else {
        EG_LOG(INFO, "api: job %lld: cancel requested", (long long)rq->id);
        reply_job(rq, rp, rq->id, 202);
    }
}

void eg_api_job_delete(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    int rc = eg_store_job_delete(rq->ctx->store, rq->id);
    if (rc == 1) {
        eg_reply_error(rp, 404, "not_found", NULL, "no job %lld", (long long)rq->id);
    } else if (rc == 2) {
        eg_reply_error(rp, 409, "conflict", NULL,
                       "job %lld is running; cancel it first (POST /v1/jobs/%lld/cancel)",
                       (long long)rq->id, (long long)rq->id);
    } else if (rc != 0) {
        eg_reply_internal(rp, "deleting the job");
    } else {
        eg_api_remove_checkpoint(rq->ctx, rq->id);
        EG_LOG(INFO, "api: job %lld deleted", (long long)rq->id);
        eg_reply_clear(rp);
        rp->status = 204;
    }
}
