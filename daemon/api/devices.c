/* /v1/devices: the devices this daemon runs jobs on. */
#include "api/api.h"

#include <jansson.h>
#include <omp.h>
#include <string.h>
#include <unistd.h>

/* Total RAM in bytes, 0 when unknown. */
static long long total_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (long long)pages * size : 0;
}

void eg_api_devices_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    json_t *list = json_array();
    for (const char *const *d = rq->ctx->devices; list && d && *d; d++) {
        if (strcmp(*d, "cpu") != 0) continue; /* the only kind a daemon runs so far */
        json_t *dev = json_pack("{s:s, s:s, s:i, s:I}", "name", *d, "kind", "cpu", "threads",
                                omp_get_max_threads(), "memory_bytes", (json_int_t)total_memory());
        if (!dev || json_array_append_new(list, dev) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    eg_reply_json(rp, 200, list);
}
