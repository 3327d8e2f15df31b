#include "meta/summary.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>

#include "util/err.h"
#include "util/json_num.h"

/* An engine figure (float32 precision) or null where it does not apply. */
static json_t *num_or_null(double x) { return eg_json_f32((float)x); }

json_t *eg_summary(const eg_summary_input *in)
{
    const eg_job *job = in->job;
    const eg_step_record *last = in->last;
    const eg_eval *ev = in->ev;
    json_t *lambda = json_null(); /* λ too large to list, or no step ran */
    if (last && last->n_lambda <= EG_RECORD_MAX_LAMBDA) {
        json_decref(lambda);
        lambda = json_array();
        for (int i = 0; lambda && i < last->n_lambda; i++)
            json_array_append_new(lambda, eg_json_f32(last->lambda[i]));
    }
    json_t *s = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
        "s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:I, s:o}",
        "task", job->task->name, "method", eg_method_name(job->method), "model",
        job->model.name, "dataset", job->dataset.name, "device", job->device, "seed",
        (json_int_t)job->seed, "steps", (json_int_t)in->steps, "steps_per_epoch",
        (json_int_t)in->t->steps_per_epoch, "canceled", in->canceled, "train_loss",
        num_or_null(last ? last->train_loss : NAN), "meta_loss",
        num_or_null(last ? last->meta_loss : NAN), "test_acc", num_or_null(ev->test_acc),
        "test_acc_ci95", num_or_null(ev->test_acc_ci95), "dev_f1", num_or_null(ev->dev_f1),
        "test_f1", num_or_null(ev->test_f1),
        "test_loss", num_or_null(ev->test_loss), "angle_deg", num_or_null(ev->angle_deg),
        "w_corrupted", num_or_null(ev->w_corrupted), "w_clean", num_or_null(ev->w_clean),
        "lambda", lambda, "n_lambda", (json_int_t)in->t->H, "lambda_norm",
        num_or_null(last ? last->lambda_norm : NAN), "mean_step_ms", num_or_null(in->mean_step_ms),
        "mean_meta_ms", num_or_null(in->mean_meta_ms), "peak_mem_bytes",
        (json_int_t)in->peak_bytes, "wall_s", num_or_null(in->wall_ms / 1e3));
    if (!s) {
        eg_errorf("summary: out of memory");
        return NULL;
    }
    if (in->t->ops->report && in->t->ops->report(in->t, s) != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", eg_last_error());
        json_decref(s);
        eg_errorf("summary: the task's report failed: %s", why);
        return NULL;
    }
    return s;
}
