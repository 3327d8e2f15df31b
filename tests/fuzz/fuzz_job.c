/* libFuzzer harness: job specs and `--set` assignments (meta/job.c).
 *
 * The input is a spec, or "ASSIGNMENT\nSPEC": the assignment is applied to
 * the spec as `evogradd run --set` does. Whatever parses must give back
 * the same job through its defaulted spec (eg_job_to_json), and a refusal
 * must name its field in its message. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meta/job.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    char set[512] = "";
    if (nl && nl - text < (long)sizeof set && memchr(text, '=', (size_t)(nl - text))) {
        memcpy(set, text, (size_t)(nl - text));
        set[nl - text] = '\0';
        size -= (size_t)(nl - text) + 1;
        text = nl + 1;
    }
    json_t *spec = eg_job_json_load(text, size);
    if (!spec) return 0;
    if (set[0] && !memchr(set, '\0', strlen(set)) && eg_job_set(spec, set) != 0) {
        json_decref(spec);
        return 0;
    }
    eg_job job;
    if (eg_job_from_json(spec, &job) != 0) {
        const char *field = eg_job_error_field();
        if (*field && strncmp(eg_last_error(), field, strlen(field)) != 0) abort();
        json_decref(spec);
        return 0;
    }
    json_decref(spec);
    /* The defaulted spec reads back as the same job. */
    json_t *back = eg_job_to_json(&job);
    if (!back) abort();
    eg_job again;
    if (eg_job_from_json(back, &again) != 0) abort();
    json_t *back2 = eg_job_to_json(&again);
    if (!back2 || !json_equal(back, back2)) abort();
    json_decref(back);
    json_decref(back2);
    return 0;
}
