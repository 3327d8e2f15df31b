/* /healthz: answers while the daemon serves, with the kind of its store;
 * needs no token. */
#include "api/api.h"

#include <jansson.h>

void eg_api_health_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    eg_reply_json(rp, 200, json_pack("{s:s, s:s}", "status", "ok", "store",
                                     eg_store_kind(rq->ctx->store)));
}
