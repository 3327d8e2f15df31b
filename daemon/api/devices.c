/* /v1/devices: the devices this daemon runs jobs on. */
#include "api/api.h"

#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <unistd.h>

#include "nn/device.h"

/* Total RAM in bytes, 0 when unknown. */
static long long total_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (long long)pages * size : 0;
}

/* One device's entry: the CPU with its threads and RAM, a GPU with its
 * model, compute capability and memory (total and free now). */
static json_t *device_json(const char *name)
{
    int ordinal;
    if (eg_device_parse(name, &ordinal) != 0 || ordinal < 0)
        return json_pack("{s:s, s:s, s:i, s:I}", "name", name, "kind", "cpu", "threads",
                         omp_get_max_threads(), "memory_bytes", (json_int_t)total_memory());
    eg_gpu_info info;
    if (eg_gpu_info_get(ordinal, &info) != 0)
        return json_pack("{s:s, s:s, s:s}", "name", name, "kind", "cuda", "error",
                         eg_last_error());
    char cc[16];
    snprintf(cc, sizeof cc, "%d.%d", info.major, info.minor);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "name", name, "kind", "cuda", "model",
                     info.name, "compute_capability", cc, "memory_bytes",
                     (json_int_t)info.total_bytes, "free_bytes", (json_int_t)info.free_bytes);
}

void eg_api_devices_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    json_t *list = json_array();
    for (const char *const *d = rq->ctx->devices; list && d && *d; d++) {
        json_t *dev = device_json(*d);
        if (!dev || json_array_append_new(list, dev) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    eg_reply_json(rp, 200, list);
}
