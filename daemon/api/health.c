/* /healthz: answers while the daemon serves; needs no token. */
#include "api/api.h"

#include <jansson.h>

void eg_api_health_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    eg_reply_json(rp, 200, json_pack("{s:s}", "status", "ok"));
}
