/* GET /v1/workers: the daemons that share this daemon's store (just this
 * one with SQLite), with their devices, last heartbeat and running jobs;
 * and the devices a submitted job may ask for. */
#include "api/api.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "sched/sched.h"

void eg_api_workers_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    json_t *out = NULL;
    /* Alive: a heartbeat within a lease (beats come every third of one). */
    if (eg_store_workers(rq->ctx->store, rq->ctx->lease_s, &out) != 0) {
        eg_reply_internal(rp, "listing workers");
        return;
    }
    eg_reply_json(rp, 200, out);
}

/* Adds name to the list unless it is there or the list is full. */
static void add_name(eg_api_devices *out, const char *name)
{
    for (int i = 0; i < out->n; i++)
        if (strcmp(out->names[i], name) == 0) return;
    if (out->n == EG_API_MAX_DEVICES || strlen(name) >= sizeof out->names[0]) return;
    snprintf(out->names[out->n], sizeof out->names[0], "%s", name);
    out->list[out->n] = out->names[out->n];
    out->list[++out->n] = NULL;
}

const char *const *eg_api_devices_all(const eg_api_ctx *ctx, eg_api_devices *out)
{
    out->n = 0;
    out->list[0] = NULL;
    for (const char *const *d = ctx->devices; d && *d; d++) add_name(out, *d);
    if (strcmp(eg_store_kind(ctx->store), "sqlite") == 0) return out->list;
    json_t *ws = NULL;
    if (eg_store_workers(ctx->store, ctx->lease_s, &ws) != 0) return out->list;
    size_t i, j;
    json_t *w, *dev;
    json_array_foreach(json_object_get(ws, "workers"), i, w)
    {
        if (!json_is_true(json_object_get(w, "alive"))) continue;
        json_array_foreach(json_object_get(w, "devices"), j, dev) if (json_is_string(dev))
            add_name(out, json_string_value(dev));
    }
    json_decref(ws);
    return out->list;
}
