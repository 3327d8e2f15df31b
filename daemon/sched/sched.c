#include "sched/sched.h"

#include <dirent.h>
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
    /* The job in hand (id 0: none) and whether the heartbeat found that
     * its attempt is no longer the job's; under the scheduler's lock. */
    int64_t job;
    int attempt, lost;
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
    pthread_t heart;
    pthread_cond_t heart_wake; /* the stop, to the heartbeat */
    int heart_started;
};

char *eg_sched_checkpoint_path(const char *dir, int64_t job, int attempt)
{
    size_t n = strlen(dir) + 64;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/job-%lld.%d.ckpt", dir, (long long)job, attempt);
    return p;
}

/* Whether the directory entry name belongs to one of job's checkpoint
 * files: job-ID.ckpt (before attempts were named), job-ID.N.ckpt, or what
 * a write of one left beside it (its name and a suffix); *stem gets the
 * length of the checkpoint's own name. */
static int job_checkpoint_of(const char *name, int64_t job, size_t *stem)
{
    char prefix[40];
    int n = snprintf(prefix, sizeof prefix, "job-%lld.", (long long)job);
    if (strncmp(name, prefix, (size_t)n) != 0) return 0;
    const char *p = name + n;
    while (*p >= '0' && *p <= '9') p++;
    if (p > name + n && *p++ != '.') return 0;
    if (strncmp(p, "ckpt", 4) != 0 || (p[4] != '\0' && p[4] != '.')) return 0;
    *stem = (size_t)(p + 4 - name);
    return 1;
}

int eg_sched_checkpoints_remove(const char *dir, int64_t job)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : eg_errorf("checkpoint: cannot read %s: %s", dir,
                                                   strerror(errno));
    char first[1024] = "";
    struct dirent *e;
    size_t stem;
    while ((e = readdir(d))) {
        if (!job_checkpoint_of(e->d_name, job, &stem)) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)stem, e->d_name);
        if (eg_ckpt_file_remove(path) != 0 && !first[0])
            snprintf(first, sizeof first, "%s", eg_last_error());
    }
    closedir(d);
    return first[0] ? eg_errorf("%s", first) : 0;
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

/* Whether the heartbeat found that w's job is no longer its. */
static int lost(worker *w)
{
    pthread_mutex_lock(&w->s->lock);
    int v = w->lost;
    pthread_mutex_unlock(&w->s->lock);
    return v;
}

/* Commits the step log, writes the checkpoint of the claim's attempt and
 * records it, in that order: a checkpoint never runs ahead of the logged
 * steps. Before the file is written the lease is renewed, which also
 * tells whether the job is still this attempt's: EG_STORE_LOST when not.
 * A renewal that could not be written is no reason to stop (the record is
 * guarded by the attempt all the same). */
static int checkpoint(worker *w, const eg_claim *c, eg_run *run, const char *path)
{
    eg_sched *s = w->s;
    EG_TRY(eg_store_flush(s->store));
    int rc = eg_store_job_renew(s->store, c->id, c->attempt, s->cfg.lease_s);
    if (rc == EG_STORE_LOST) return rc;
    if (rc != 0)
        EG_LOG(WARN, "job %lld: renewing its lease: %s", (long long)c->id, eg_last_error());
    EG_TRY(eg_run_save(run, path));
    return eg_store_checkpoint_record(s->store, c->id, c->attempt, run->step, path);
}

/* Whether a checkpoint file holding the state after `step` may resume a
 * job whose store recorded it at `at`: the file is written before its
 * record (checkpoint above), so a worker killed in between leaves a file
 * one checkpoint ahead; it is good when every step before it is in the
 * step log (checkpoint flushes the log before writing the file). */
static int checkpoint_ahead_ok(eg_sched *s, int64_t id, long step, long at)
{
    json_t *j = NULL;
    if (step < at || eg_store_job_get(s->store, id, &j) != 0) return 0;
    json_int_t done = json_integer_value(json_object_get(j, "steps_done"));
    json_decref(j);
    if (done < step) return 0;
    EG_LOG(INFO, "job %lld: its checkpoint holds step %ld, one the store had not recorded yet "
                 "(at %ld); every step before it is logged", (long long)id, step, at);
    return 1;
}

typedef enum { OUT_SUCCEEDED, OUT_FAILED, OUT_CANCELED, OUT_REQUEUED, OUT_LOST } outcome;

/* The outcome of a store write's result rc in run_job: on (0), lost, or
 * failed. */
#define STORE_OK(call)                                                                       \
    do {                                                                                     \
        int src_ = (call);                                                                   \
        if (src_ == EG_STORE_LOST) {                                                         \
            out = OUT_LOST;                                                                  \
            goto done;                                                                       \
        }                                                                                    \
        if (src_ != 0) goto done;                                                            \
    } while (0)

/* Runs the claimed job from its spec on this worker's device until it
 * ends, the scheduler stops or the job is found to be another attempt's;
 * *summary gets the final summary (JSON text) when the job succeeded. */
static outcome run_job(worker *w, const eg_claim *c, char **summary)
{
    int64_t id = c->id;
    const char *spec = c->spec;
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
    STORE_OK(eg_store_job_set_total(s->store, id, c->attempt, total));
    eg_loop_config cfg = eg_task_loop_config(&job, t);
    if (eg_run_init(&run, t, &cfg) != 0) goto done;
    if (!(ckpt = eg_sched_checkpoint_path(s->checkpoint_dir, id, c->attempt))) {
        eg_errorf("out of memory");
        goto done;
    }
    long at;
    if (eg_store_checkpoint_latest(s->store, id, &latest, &at) == 0) {
        if (eg_run_load(&run, latest) != 0) goto done;
        if (run.step != at && !checkpoint_ahead_ok(s, id, run.step, at)) {
            eg_errorf("checkpoint: %s holds the state after step %ld where the store "
                      "recorded %ld", latest, run.step, at);
            goto done;
        }
        EG_LOG(INFO, "job %lld: resumed from %s at step %ld", (long long)id, latest, run.step);
    }
    eg_step_record last = {0};
    eg_eval ev = {.test_acc = NAN, .test_acc_ci95 = NAN, .test_loss = NAN, .angle_deg = NAN, .w_corrupted = NAN,
                  .w_clean = NAN, .dev_f1 = NAN, .test_f1 = NAN};
    int have_last = 0;
    while (run.step < total) {
        if (lost(w)) {
            out = OUT_LOST;
            goto done;
        }
        if (stopping(s)) {
            STORE_OK(checkpoint(w, c, &run, ckpt));
            out = OUT_REQUEUED;
            goto done;
        }
        int go_on = eg_store_job_cancel_requested(s->store, id, c->attempt);
        if (go_on == 1) {
            out = OUT_CANCELED;
            goto done;
        }
        if (go_on == EG_STORE_LOST) {
            out = OUT_LOST;
            goto done;
        }
        if (eg_run_step(&run, &last) != 0) goto done;
        have_last = 1;
        if (eg_store_step_append(s->store, id, c->attempt, &last) != 0) goto done;
        if (eg_run_eval_due(&run)) {
            if (eg_run_evaluate(&run, &ev) != 0) goto done;
            if (eg_store_eval_append(s->store, id, c->attempt, last.step, &ev) != 0) goto done;
        }
        notify(s, id, "step");
        if (s->cfg.step_listener) s->cfg.step_listener(s->cfg.listener_ctx, w->device, &last);
        int epoch_end = t->steps_per_epoch > 0 && run.step % t->steps_per_epoch == 0;
        if (run.step < total && (run.step % s->cfg.checkpoint_every == 0 || epoch_end))
            STORE_OK(checkpoint(w, c, &run, ckpt));
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

        eg_claim c;
        int rc = eg_store_job_claim(s->store, devices, s->cfg.worker, s->cfg.lease_s, &c);
        if (rc < 0) EG_LOG(ERROR, "worker %s: claiming a job: %s", w->device, eg_last_error());
        if (rc != 0) continue;
        int64_t id = c.id;
        pthread_mutex_lock(&s->lock);
        s->running++;
        s->pokes++; /* after this job, look for the next one at once */
        w->job = id;
        w->attempt = c.attempt;
        w->lost = 0;
        pthread_mutex_unlock(&s->lock);
        notify(s, id, "state");
        EG_LOG(INFO, "job %lld: running on %s (attempt %d)", (long long)id, w->device,
               c.attempt);
        char *summary = NULL;
        eg_clear_error();
        outcome out = run_job(w, &c, &summary);
        static const char *const states[] = {"succeeded", "failed", "canceled", "queued"};
        const char *error = out == OUT_FAILED ? eg_last_error() : NULL;
        if (out == OUT_FAILED) EG_LOG(WARN, "job %lld: failed: %s", (long long)id, error);
        else if (out == OUT_LOST)
            EG_LOG(WARN, "job %lld: attempt %d stopped: the job is no longer this worker's "
                         "(its lease ran out, or it was deleted)", (long long)id, c.attempt);
        else EG_LOG(INFO, "job %lld: %s", (long long)id, states[out]);
        if (out != OUT_LOST) {
            rc = eg_store_job_finish(s->store, id, c.attempt, states[out], error, summary);
            /* The files of every attempt go once the job's end is
             * recorded (a lost job's belong to its new attempt; a failed
             * one's stay to be looked at). */
            if (rc == 0 && (out == OUT_SUCCEEDED || out == OUT_CANCELED) &&
                eg_sched_checkpoints_remove(s->checkpoint_dir, id) != 0)
                EG_LOG(WARN, "job %lld: %s", (long long)id, eg_last_error());
            if (rc == EG_STORE_LOST)
                EG_LOG(WARN, "job %lld: attempt %d ended, but the job is no longer this "
                             "worker's: its end is not recorded", (long long)id, c.attempt);
            else if (rc != 0)
                EG_LOG(ERROR, "job %lld: recording its end: %s", (long long)id,
                       eg_last_error());
        }
        free(summary);
        free(c.spec);
        pthread_mutex_lock(&s->lock);
        s->running--;
        w->job = 0;
        pthread_mutex_unlock(&s->lock);
        notify(s, id, "state");
    }
    return NULL;
}

/* Waits up to ms for the scheduler to stop; 1 when it did. */
static int wait_stop(eg_sched *s, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping && pthread_cond_timedwait(&s->heart_wake, &s->lock, &until) == 0) {
    }
    int v = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return v;
}

/* The heartbeat: every third of a lease, records that this daemon is
 * alive, renews the leases of its running jobs (flagging a job whose
 * attempt is no longer its, so that its worker stops at once) and queues
 * again the jobs of any daemon whose lease ran out. */
static void *heart_main(void *arg)
{
    eg_sched *s = arg;
    pthread_setname_np(pthread_self(), "eg-heartbeat");
    long every_ms = (long)(s->cfg.lease_s * 1000 / 3);
    if (every_ms < 100) every_ms = 100;
    eg_store_worker me = {.name = s->cfg.worker, .host = s->cfg.host,
                          .devices_json = s->cfg.devices_json, .listen = s->cfg.listen};
    do {
        if (eg_store_worker_beat(s->store, &me) != 0)
            EG_LOG(WARN, "heartbeat: %s", eg_last_error());
        for (int i = 0; i < s->n_workers; i++) {
            worker *w = &s->workers[i];
            pthread_mutex_lock(&s->lock);
            int64_t job = w->job;
            int attempt = w->attempt;
            pthread_mutex_unlock(&s->lock);
            if (!job) continue;
            int rc = eg_store_job_renew(s->store, job, attempt, s->cfg.lease_s);
            if (rc < 0) EG_LOG(WARN, "heartbeat: job %lld: %s", (long long)job, eg_last_error());
            if (rc != EG_STORE_LOST) continue;
            pthread_mutex_lock(&s->lock);
            if (w->job == job && w->attempt == attempt) w->lost = 1;
            pthread_mutex_unlock(&s->lock);
        }
        int requeued = 0, failed = 0;
        if (eg_store_leases_expire(s->store, s->cfg.max_lost, &requeued, &failed) != 0)
            EG_LOG(WARN, "heartbeat: expiring leases: %s", eg_last_error());
        if (requeued > 0)
            EG_LOG(WARN, "heartbeat: %d job(s) whose lease ran out queued again", requeued);
        if (failed > 0)
            EG_LOG(WARN, "heartbeat: %d job(s) whose lease ran out %d times failed", failed,
                   s->cfg.max_lost);
        if (requeued > 0) eg_sched_poke(s);
    } while (!wait_stop(s, every_ms));
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

static void poke_from_store(void *ctx) { eg_sched_poke(ctx); }

int eg_sched_start(eg_store *store, const eg_sched_config *cfg, eg_sched **out)
{
    EG_TRY(make_dirs(cfg->checkpoint_dir));
    eg_sched *s = calloc(1, sizeof *s);
    if (!s) return eg_errorf("scheduler: out of memory");
    s->store = store;
    s->cfg = *cfg;
    if (s->cfg.checkpoint_every < 1) s->cfg.checkpoint_every = 200;
    if (!(s->cfg.lease_s > 0)) s->cfg.lease_s = EG_SCHED_LEASE_S;
    if (s->cfg.max_lost < 1) s->cfg.max_lost = EG_SCHED_MAX_LOST;
    if (!s->cfg.worker) s->cfg.worker = "local";
    if (!s->cfg.host) s->cfg.host = s->cfg.worker;
    if (!s->cfg.devices_json) s->cfg.devices_json = "[]";
    s->checkpoint_dir = strdup(cfg->checkpoint_dir);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->heart_wake, NULL);
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
    if (pthread_create(&s->heart, NULL, heart_main, s) != 0) {
        eg_sched_stop(s);
        return eg_errorf("scheduler: cannot start the heartbeat");
    }
    s->heart_started = 1;
    if (eg_store_set_wake(store, poke_from_store, s) != 0)
        EG_LOG(WARN, "scheduler: %s (idle workers look for jobs every second instead)",
               eg_last_error());
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
    eg_store_set_wake(s->store, NULL, NULL); /* no more pokes from the store */
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_cond_broadcast(&s->heart_wake);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < s->n_workers; i++)
        if (s->workers[i].started) pthread_join(s->workers[i].thread, NULL);
    if (s->heart_started) pthread_join(s->heart, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->heart_wake);
    free(s->checkpoint_dir);
    free(s);
}
