/* /v1/jobs/{id}/evals: a job's evaluations. */
#include "api/api.h"

#include <jansson.h>

void eg_api_evals_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    json_t *out = NULL;
    int rc = eg_store_evals(rq->ctx->store, rq->id, &out);
    if (rc == 1) {
        eg_reply_error(rp, 404, "not_found", NULL, "no job %lld", (long long)rq->id);
        return;
    }
    if (rc != 0) {
        eg_reply_internal(rp, "reading evaluations");
        return;
    }
    eg_reply_json(rp, 200, out);
}
