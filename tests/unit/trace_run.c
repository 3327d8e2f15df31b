/* trace_run JOB.json STEPS DIR [FIELD=VALUE ...]: traces the first STEPS
 * steps of a job (with the overrides applied as `evogradd run --set` does)
 * into DIR for tests/parity/replay_rotation.py; see trace.h. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "meta/job.h"
#include "trace.h"
#include "util/err.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: trace_run JOB.json STEPS DIR [FIELD=VALUE ...]\n");
        return 2;
    }
    json_error_t jerr;
    json_t *spec = json_load_file(argv[1], JSON_REJECT_DUPLICATES, &jerr);
    if (!spec) {
        fprintf(stderr, "trace_run: %s: %s\n", argv[1], jerr.text);
        return 2;
    }
    eg_job job;
    int rc = 0;
    for (int i = 4; rc == 0 && i < argc; i++) rc = eg_job_set(spec, argv[i]);
    if (rc == 0) rc = eg_job_from_json(spec, &job);
    json_decref(spec);
    long steps = atol(argv[2]);
    if (rc == 0 && steps < 1) rc = eg_errorf("STEPS: %s, must be a positive number", argv[2]);
    if (rc == 0 && mkdir(argv[3], 0755) != 0 && errno != EEXIST)
        rc = eg_errorf("DIR: cannot create %s", argv[3]);
    if (rc == 0) rc = tr_trace_job(&job, steps, argv[3]);
    if (rc != 0) {
        fprintf(stderr, "trace_run: %s\n", eg_last_error());
        return 1;
    }
    return 0;
}
