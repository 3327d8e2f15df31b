/* /metrics: Prometheus text format 0.0.4, in base units. Jobs per state,
 * the age of the oldest queued job, step rows logged by this process, HTTP answers by status class,
 * histograms per device of the steps' and meta steps' durations, and for
 * each running job its progress and its last step's memory. */
#include "api/api.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/text.h"

#define MAX_RUNNING 64

/* A number of a JSON value, or NaN when it is not one. */
static double num(const json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : (double)NAN;
}

/* Adds per-job gauges of the running jobs: progress and the last step's
 * time and memory, labelled job_id (Prometheus keeps "job" for the scrape
 * job). 0, or -1 after eg_errorf. */
static int add_running(eg_text *t, eg_store *store)
{
    json_t *page = NULL;
    EG_TRY(eg_store_jobs_list(store, "running", 0, MAX_RUNNING, &page));
    json_t *jobs = json_object_get(page, "jobs"), *job;
    size_t i;
    struct {
        long long id;
        char device[32];
        double done, total, cur, peak;
    } rows[MAX_RUNNING];
    size_t n = 0;
    json_array_foreach (jobs, i, job) {
        if (n == MAX_RUNNING) break;
        rows[n].id = json_integer_value(json_object_get(job, "id"));
        const char *dev = json_string_value(json_object_get(job, "device"));
        snprintf(rows[n].device, sizeof rows[n].device, "%s", dev ? dev : "");
        for (char *c = rows[n].device; *c; c++)
            if (*c == '"' || *c == '\\' || *c == '\n') *c = '_'; /* label value syntax */
        rows[n].done = num(json_object_get(job, "steps_done"));
        rows[n].total = num(json_object_get(job, "total_steps"));
        rows[n].cur = rows[n].peak = NAN;
        json_t *steps = NULL;
        char *page_text = NULL;
        size_t len = 0;
        long after = rows[n].done >= 2 ? (long)rows[n].done - 2 : -1;
        if (rows[n].done >= 1 &&
            eg_store_steps_page(store, rows[n].id, after, 1, 0, &page_text, &len) == 0 &&
            (steps = json_loadb(page_text, len, 0, NULL))) {
            json_t *last = json_array_get(json_object_get(steps, "steps"), 0);
            rows[n].cur = num(json_object_get(last, "cur_bytes"));
            rows[n].peak = num(json_object_get(last, "peak_bytes"));
        }
        json_decref(steps);
        free(page_text);
        n++;
    }
    json_decref(page);
    static const struct {
        const char *name, *help;
        size_t off;
    } gauges[] = {
        {"evograd_job_steps_done", "Steps a running job has logged.", 0},
        {"evograd_job_total_steps", "Steps a running job will run (0: not known yet).", 1},
        {"evograd_job_memory_bytes", "Engine memory of a running job after its last step.", 2},
        {"evograd_job_peak_memory_bytes", "Peak engine memory of a running job.", 3},
    };
    for (size_t g = 0; g < sizeof gauges / sizeof *gauges; g++) {
        eg_text_printf(t, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g].name, gauges[g].help,
                       gauges[g].name);
        for (size_t k = 0; k < n; k++) {
            double v[] = {rows[k].done, rows[k].total, rows[k].cur, rows[k].peak};
            double x = v[gauges[g].off];
            if (isnan(x)) continue; /* not measured yet */
            eg_text_printf(t, "%s{job_id=\"%lld\",device=\"%s\"} %.17g\n", gauges[g].name, rows[k].id,
                           rows[k].device, x);
        }
    }
    return 0;
}

/* Upper bounds of the histograms' buckets, in seconds (the last is +Inf). */
static const double bounds[EG_HIST_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

static void observe(eg_hist *h, double seconds)
{
    int b = 0;
    while (b < EG_HIST_BUCKETS - 1 && seconds > bounds[b]) b++;
    h->count[b]++;
    h->sum += seconds;
    h->n++;
}

void eg_api_on_sched_step(void *ctx, const char *device, const eg_step_record *r)
{
    eg_step_hists *hs = &((eg_api_ctx *)ctx)->hists;
    pthread_mutex_lock(&hs->lock);
    int i = 0;
    while (i < hs->n && strcmp(hs->dev[i].device, device) != 0) i++;
    if (i == hs->n && hs->n < EG_HIST_DEVICES) {
        snprintf(hs->dev[i].device, sizeof hs->dev[i].device, "%s", device);
        hs->n++;
    }
    if (i < hs->n) {
        if (isfinite(r->step_ms)) observe(&hs->dev[i].step, r->step_ms / 1e3);
        if (!isnan(r->meta_loss) && isfinite(r->meta_ms))
            observe(&hs->dev[i].meta, r->meta_ms / 1e3);
    }
    pthread_mutex_unlock(&hs->lock);
}

/* The two histograms, one series per device that has run a step. */
static void add_histograms(eg_text *t, eg_step_hists *hs)
{
    static const struct {
        const char *name, *help;
        int meta;
    } hists[] = {
        {"evograd_step_duration_seconds",
         "Wall time of a training step, its meta step included, by device.", 0},
        {"evograd_meta_step_duration_seconds",
         "Wall time of the hypergradient and meta-optimiser step within a step, by device.", 1},
    };
    pthread_mutex_lock(&hs->lock);
    for (size_t k = 0; k < sizeof hists / sizeof *hists; k++) {
        eg_text_printf(t, "# HELP %s %s\n# TYPE %s histogram\n", hists[k].name, hists[k].help,
                       hists[k].name);
        for (int i = 0; i < hs->n; i++) {
            const eg_hist *h = hists[k].meta ? &hs->dev[i].meta : &hs->dev[i].step;
            const char *dev = hs->dev[i].device;
            const char *name = hists[k].name;
            unsigned long cum = 0;
            for (int b = 0; b < EG_HIST_BUCKETS; b++) {
                char le[16] = "+Inf";
                if (b < EG_HIST_BUCKETS - 1) snprintf(le, sizeof le, "%g", bounds[b]);
                cum += h->count[b];
                eg_text_printf(t, "%s_bucket{device=\"%s\",le=\"%s\"} %lu\n", name, dev, le, cum);
            }
            eg_text_printf(t, "%s_sum{device=\"%s\"} %.9g\n%s_count{device=\"%s\"} %lu\n", name,
                           dev, h->sum, name, dev, h->n);
        }
    }
    pthread_mutex_unlock(&hs->lock);
}

void eg_api_metrics_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    eg_api_ctx *ctx = rq->ctx;
    static const char *const states[5] = {"queued", "running", "succeeded", "failed", "canceled"};
    long counts[5];
    double waited;
    if (eg_store_job_counts(ctx->store, counts) != 0 ||
        eg_store_oldest_queued_age(ctx->store, &waited) != 0) {
        eg_reply_internal(rp, "counting jobs");
        return;
    }
    eg_text t = {0};
    eg_text_printf(&t, "# HELP evograd_jobs Jobs in each state.\n# TYPE evograd_jobs gauge\n");
    for (int i = 0; i < 5; i++)
        eg_text_printf(&t, "evograd_jobs{state=\"%s\"} %ld\n", states[i], counts[i]);
    eg_text_printf(&t,
                   "# HELP evograd_running_jobs Jobs the workers are running now.\n"
                   "# TYPE evograd_running_jobs gauge\nevograd_running_jobs %d\n",
                   ctx->sched ? eg_sched_running(ctx->sched) : 0);
    eg_text_printf(&t,
                   "# HELP evograd_oldest_queued_job_age_seconds How long the oldest queued "
                   "job has waited since it was submitted (0: none queued).\n"
                   "# TYPE evograd_oldest_queued_job_age_seconds gauge\n"
                   "evograd_oldest_queued_job_age_seconds %.3f\n",
                   waited);
    eg_text_printf(&t,
                   "# HELP evograd_steps_total Step rows logged since the daemon started.\n"
                   "# TYPE evograd_steps_total counter\nevograd_steps_total %ld\n",
                   atomic_load(&ctx->steps_seen));
    eg_text_printf(&t, "# HELP evograd_http_responses_total HTTP responses by status class.\n"
                       "# TYPE evograd_http_responses_total counter\n");
    for (int c = 1; c <= 5; c++)
        eg_text_printf(&t, "evograd_http_responses_total{code=\"%dxx\"} %ld\n", c,
                       atomic_load(&ctx->answered[c]));
    add_histograms(&t, &ctx->hists);
    if (add_running(&t, ctx->store) != 0) {
        free(t.buf);
        eg_reply_internal(rp, "reading running jobs");
        return;
    }
    if (t.oom) {
        free(t.buf);
        eg_reply_error(rp, 500, "internal", NULL, "out of memory");
        return;
    }
    eg_reply_clear(rp);
    rp->status = 200;
    rp->text = t.buf;
    rp->text_len = t.len;
    rp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

void eg_api_on_sched_event(void *ctx, int64_t job, const char *kind)
{
    (void)job;
    if (strcmp(kind, "step") == 0) atomic_fetch_add(&((eg_api_ctx *)ctx)->steps_seen, 1);
}
