/* POST /v1/jobs bodies into validated jobs, with the daemon's own rules
 * on top of the spec's: the devices it runs and its data roots. */
#include "api/api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "nn/device.h"
#include "util/err.h"
#include "util/json_num.h"
#include "util/placement.h"

/* 0 when one of the devices (this daemon's, or those of every daemon on a
 * shared store) runs jobs asking for `device`. */
static int check_device(const char *device, const char *const *devices, eg_reply *rp)
{
    char list[128] = "";
    size_t n = 0;
    for (const char *const *d = devices; d && *d; d++) {
        if (eg_device_fits(device, *d)) return 0;
        if (n < sizeof list) n += snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *d);
    }
    eg_reply_error(rp, 400, "invalid_job", "device",
                   "device: no daemon here runs jobs on \"%s\" (the devices: %s; or \"auto\")",
                   device, *list ? list : "none");
    return -1;
}

int eg_api_job_from_body(const char *content_type, const char *body, size_t len,
                         const eg_data_roots *roots, const char *const *devices, eg_job *job,
                         eg_reply *rp)
{
    if (eg_reply_unless_json(content_type, rp, "a job spec") != 0) return -1;
    json_t *spec = eg_job_json_load(body ? body : "", len);
    if (!spec) {
        eg_reply_error(rp, 400, "invalid_job", eg_job_error_field(), "%s", eg_last_error());
        return -1;
    }
    int rc = eg_api_job_from_spec(spec, roots, devices, job, rp);
    json_decref(spec);
    return rc;
}

int eg_api_job_from_spec(const json_t *spec, const eg_data_roots *roots,
                         const char *const *devices, eg_job *job, eg_reply *rp)
{
    if (eg_job_from_json(spec, job) != 0) {
        eg_reply_error(rp, 400, "invalid_job", eg_job_error_field(), "%s", eg_last_error());
        return -1;
    }
    if (check_device(job->device, devices, rp) != 0) return -1;
    const char *field;
    if (roots && eg_data_roots_resolve(roots, job, &field) != 0) {
        eg_reply_error(rp, 400, "invalid_job", field, "%s", eg_last_error());
        return -1;
    }
    /* Splits against the data's size, when its files tell it (a job whose
     * files cannot be read fails when it runs, with the reader's error). */
    long n, range[2][2];
    if (eg_job_uses_splits(job) &&
        eg_dataset_count(job->dataset.name, job->dataset.path[0] ? job->dataset.path : NULL, 1,
                         &n) == 0 &&
        eg_job_splits_resolve(job, n, range) != 0) {
        eg_reply_error(rp, 400, "invalid_job", eg_job_error_field(), "%s", eg_last_error());
        return -1;
    }
    return 0;
}

int eg_api_job_row(const eg_job *job, eg_store_job_row *row, char **spec_text)
{
    json_t *spec = eg_job_to_json(job);
    *spec_text = spec ? eg_json_dumps(spec, JSON_COMPACT) : NULL;
    json_decref(spec);
    if (!*spec_text) return eg_errorf("out of memory");
    *row = (eg_store_job_row){.spec_json = *spec_text, .task = job->task->name,
                              .method = eg_method_name(job->method), .device = job->device,
                              .total_steps = job->steps > 0 ? job->steps : 0};
    return 0;
}
