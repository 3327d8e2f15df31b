/* GET /v1/workers: the daemons that share this daemon's store (just this
 * one with SQLite), with their devices, last heartbeat and running jobs. */
#include "api/api.h"

#include <jansson.h>

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
