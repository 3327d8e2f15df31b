/* The final summary of a run, as one JSON object: what `evogradd run`
 * prints and what the daemon stores with a finished job. */
#ifndef EG_SUMMARY_H
#define EG_SUMMARY_H

#include "meta/job.h"
#include "meta/loop.h"

struct json_t;

/* What the summary is made of. last is the last step's record (NULL when
 * no step ran); ev the last evaluation (NaN fields where none). */
typedef struct eg_summary_input {
    const eg_job *job;
    eg_task *t;
    const eg_step_record *last;
    const eg_eval *ev;
    long steps;
    int canceled;
    double mean_step_ms, mean_meta_ms;
    size_t peak_bytes;
    double wall_ms;
} eg_summary_input;

/* Builds the summary, the task's report hook included; NULL with
 * eg_errorf when it cannot. Fields that do not apply are null. */
struct json_t *eg_summary(const eg_summary_input *in);

#endif
