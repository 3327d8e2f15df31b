#include "sched/sched.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meta/ckpt_file.h"
#include "meta/job.h"
#include "meta/summary.h"
#include "nn/device.h"
#include "tasks/tasks.h"
#include "util/err.h"
#include "util/log.h"
#include "util/json_num.h"

#define MAX_WORKERS 16

typedef struct worker {
    eg_sched *s;
    pthread_t thread;
    char device[32];
    int started;
} worker;

struct eg_sched {
    eg_store *store;
    eg_sched_config cfg;
    char *checkpoint_dir;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping, pokes, running;
    worker workers[MAX_WORKERS];
    int n_workers;
};

char *eg_sched_checkpoint_path(const char *dir, int64_t job)
{
    size_t n = strlen(dir) + 48;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/job-%lld.ckpt", dir, (long long)job);
    return p;
}

static int stopping(eg_sched *s)
{
    pthread_mutex_lock(&s->lock);
    int v = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return v;
}

static void notify(eg_sched *s, int64_t job, const char *kind)
{
    if (s->cfg.listener) s->cfg.listener(s->cfg.listener_ctx, job, kind);
}

/* Commits the step log, writes the checkpoint and records it, in that
 * order: a checkpoint never runs ahead of the logged steps. */
static int checkpoint(eg_sched *s, int64_t id, eg_run *run, const char *path)
{
    EG_TRY(eg_store_flush(s->store));
    EG_TRY(eg_run_save(run, path));
    return eg_store_checkpoint_record(s->store, id, run->step, path);
}

typedef enum { OUT_SUCCEEDED, OUT_FAILED, OUT_CANCELED, OUT_REQUEUED } outcome;

/* Runs job `id` from its spec on this worker's device until it ends or
 * the scheduler stops; *summary gets the final summary (JSON text) when
 * the job succeeded. */
static outcome run_job(worker *w, int64_t id, const char *spec, char **summary)
{
    eg_sched *s = w->s;
    eg_job job;
    eg_backend *be = NULL;
    eg_task *t = NULL;
    eg_run run = {0};
    char *ckpt = NULL, *latest = NULL;
    outcome out = OUT_FAILED;
    double t0 = eg_now_ms();
    if (eg_job_parse(spec, strlen(spec), &job) != 0) goto done;
    if (!(be = eg_device_open(w->device, &(eg_device_options){.tf32 = job.tf32}, NULL, 0))) goto done;
    if (eg_task_create(&job, be, &t) != 0) goto done;
    long total = eg_task_total_steps(&job, t);
    if (total <= 0) {
        eg_errorf("the job has no steps");
        goto done;
    }
    if (eg_store_job_set_total(s->store, id, total) != 0) goto done;
    eg_loop_config cfg = eg_task_loop_config(&job, t);
    if (eg_run_init(&run, t, &cfg) != 0) goto done;
    if (!(ckpt = eg_sched_checkpoint_path(s->checkpoint_dir, id))) {
        eg_errorf("out of memory");
        goto done;
    }
    long at;
    if (eg_store_checkpoint_latest(s->store, id, &latest, &at) == 0) {
        if (eg_run_load(&run, latest) != 0) goto done;
        EG_LOG(INFO, "job %lld: resumed from %s at step %ld", (long long)id, latest, run.step);
    }
    eg_step_record last = {0};
    eg_eval ev = {.test_acc = NAN, .test_loss = NAN, .angle_deg = NAN, .w_corrupted = NAN,
                  .w_clean = NAN};
    int have_last = 0;
    while (run.step < total) {
        if (stopping(s)) {
            if (checkpoint(s, id, &run, ckpt) != 0) goto done;
            out = OUT_REQUEUED;
            goto done;
        }
        if (eg_store_job_cancel_requested(s->store, id) == 1) {
            out = OUT_CANCELED;
            goto done;
        }
        if (eg_run_step(&run, &last) != 0) goto done;
        have_last = 1;
        if (eg_store_step_append(s->store, id, &last) != 0) goto done;
        if (eg_run_eval_due(&run)) {
            if (eg_run_evaluate(&run, &ev) != 0) goto done;
            if (eg_store_eval_append(s->store, id, last.step, &ev) != 0) goto done;
        }
        notify(s, id, "step");
        if (s->cfg.step_listener) s->cfg.step_listener(s->cfg.listener_ctx, w->device, &last);
        int epoch_end = t->steps_per_epoch > 0 && run.step % t->steps_per_epoch == 0;
        if (run.step < total && (run.step % s->cfg.checkpoint_every == 0 || epoch_end) &&
            checkpoint(s, id, &run, ckpt) != 0)
            goto done;
    }
    eg_summary_input in = {
        .job = &job, .t = t, .last = have_last ? &last : NULL, .ev = &ev, .steps = run.step,
        .mean_step_ms = run.timed_steps ? run.sum_step_ms / run.timed_steps : 0,
        .mean_meta_ms = run.timed_steps ? run.sum_meta_ms / run.timed_steps : 0,
        .peak_bytes = be->peak_bytes, .wall_ms = eg_now_ms() - t0,
    };
    json_t *js = eg_summary(&in);
    if (!js) goto done;
    *summary = eg_json_dumps(js, JSON_COMPACT);
    json_decref(js);
    if (!*summary) {
        eg_errorf("summary: out of memory");
        goto done;
    }
    if (eg_store_flush(s->store) != 0) goto done;
    out = OUT_SUCCEEDED;
done:
    if ((out == OUT_SUCCEEDED || out == OUT_CANCELED) && ckpt && eg_ckpt_file_remove(ckpt) != 0)
        EG_LOG(WARN, "job %lld: %s", (long long)id, eg_last_error());
    free(latest);
    free(ckpt);
    eg_run_free(&run);
    eg_task_destroy(t);
    if (be) be->destroy(be);
    return out;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    eg_sched *s = w->s;
    const char *devices[] = {w->device, NULL};
    char name[16]; /* "eg-cpu", "eg-cuda:0": what ps -L and gdb show */
    snprintf(name, sizeof name, "eg-%.12s", w->device);
    pthread_setname_np(pthread_self(), name);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!s->stopping && s->pokes == 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1; /* also look now and then without a poke */
            if (pthread_cond_timedwait(&s->wake, &s->lock, &until) != 0) break;
        }
        if (s->pokes > 0) s->pokes--;
        int stop = s->stopping;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;

        int64_t id;
        char *spec = NULL, device[32];
        int rc = eg_store_job_claim(s->store, devices, &id, &spec, device, sizeof device);
        if (rc < 0) EG_LOG(ERROR, "worker %s: claiming a job: %s", w->device, eg_last_error());
        if (rc != 0) continue;
        pthread_mutex_lock(&s->lock);
        s->running++;
        s->pokes++; /* after this job, look for the next one at once */
        pthread_mutex_unlock(&s->lock);
        notify(s, id, "state");
        EG_LOG(INFO, "job %lld: running on %s", (long long)id, w->device);
        char *summary = NULL;
        eg_clear_error();
        outcome out = run_job(w, id, spec, &summary);
        static const char *const states[] = {"succeeded", "failed", "canceled", "queued"};
        const char *error = out == OUT_FAILED ? eg_last_error() : NULL;
        if (out == OUT_FAILED) EG_LOG(WARN, "job %lld: failed: %s", (long long)id, error);
        else EG_LOG(INFO, "job %lld: %s", (long long)id, states[out]);
        if (eg_store_job_finish(s->store, id, states[out], error, summary) != 0)
            EG_LOG(ERROR, "job %lld: recording its end: %s", (long long)id, eg_last_error());
        free(summary);
        free(spec);
        pthread_mutex_lock(&s->lock);
        s->running--;
        pthread_mutex_unlock(&s->lock);
        notify(s, id, "state");
    }
    return NULL;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return eg_errorf("checkpoint-dir: path too long");
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return eg_errorf("checkpoint-dir: cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return eg_errorf("checkpoint-dir: cannot create %s: %s", buf, strerror(errno));
    return 0;
}

int eg_sched_start(eg_store *store, const eg_sched_config *cfg, eg_sched **out)
{
    EG_TRY(make_dirs(cfg->checkpoint_dir));
    eg_sched *s = calloc(1, sizeof *s);
    if (!s) return eg_errorf("scheduler: out of memory");
    s->store = store;
    s->cfg = *cfg;
    if (s->cfg.checkpoint_every < 1) s->cfg.checkpoint_every = 200;
    s->checkpoint_dir = strdup(cfg->checkpoint_dir);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->pokes = 1; /* look for queued jobs at once */
    for (int i = 0; cfg->devices[i] && i < MAX_WORKERS; i++) {
        worker *w = &s->workers[s->n_workers];
        w->s = s;
        snprintf(w->device, sizeof w->device, "%s", cfg->devices[i]);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            eg_sched_stop(s);
            return eg_errorf("scheduler: cannot start the worker for %s", cfg->devices[i]);
        }
        w->started = 1;
        s->n_workers++;
    }
    *out = s;
    return 0;
}

void eg_sched_poke(eg_sched *s)
{
    pthread_mutex_lock(&s->lock);
    s->pokes += s->n_workers;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

int eg_sched_running(eg_sched *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->running;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void eg_sched_stop(eg_sched *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < s->n_workers; i++)
        if (s->workers[i].started) pthread_join(s->workers[i].thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s->checkpoint_dir);
    free(s);
}
