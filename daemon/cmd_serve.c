/* `evogradd serve`: the daemon. Opens the store, requeues jobs a previous
 * run left running, starts one worker per device and the HTTP API, and
 * tells systemd (when it runs us) that it is ready and what it is doing.
 * SIGTERM / SIGINT: stop accepting, checkpoint running jobs back to the
 * queue, close the store, exit 0. Exit status 2 for bad options, 1 when
 * the store, the workers or the listening socket cannot start. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "tasks/tasks.h"
#include "commands.h"
#include "util/log.h"

#define STATUS_EVERY_S 3

/* Tells systemd the queue depth and the running jobs (a no-op when not
 * run by systemd). */
static void notify_status(eg_store *store, eg_sched *sched, const char *listen)
{
    long counts[5];
    if (eg_store_job_counts(store, counts) != 0) {
        sd_notifyf(0, "STATUS=serving on %s; the store cannot be read: %s", listen,
                   eg_last_error());
        return;
    }
    sd_notifyf(0, "STATUS=serving on %s: %ld queued, %d running", listen, counts[0],
               eg_sched_running(sched));
}

/* Waits for SIGTERM or SIGINT (blocked in every thread), refreshing the
 * status every few seconds. */
static void wait_for_stop(const sigset_t *sigs, eg_store *store, eg_sched *sched,
                          const char *listen)
{
    for (;;) {
        struct timespec every = {STATUS_EVERY_S, 0};
        int sig = sigtimedwait(sigs, NULL, &every);
        if (sig == SIGTERM || sig == SIGINT) {
            EG_LOG(INFO, "serve: %s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return;
        }
        if (sig == SIGHUP) EG_LOG(INFO, "serve: SIGHUP ignored (restart to change options)");
        notify_status(store, sched, listen);
    }
}

int eg_cmd_serve(int argc, char **argv)
{
    static eg_serve_opts o; /* large, and points into itself */
    int rc = eg_serve_opts_parse(&o, argc, argv);
    if (rc > 0) {
        eg_serve_opts_usage(stdout);
        return 0;
    }
    if (rc != 0) {
        EG_LOG(ERROR, "serve: %s", eg_last_error());
        fprintf(stderr, "'evogradd serve --help' lists the options.\n");
        return 2;
    }
    eg_log_set_level(o.level);

    /* Signals are taken by wait_for_stop alone: block them before any
     * thread starts so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    eg_store *store = NULL;
    if (eg_store_open(o.db, &store) != 0) {
        EG_LOG(ERROR, "serve: db: %s", eg_last_error());
        return 1;
    }
    int requeued = eg_store_requeue_running(store, o.worker_name);
    if (requeued < 0) EG_LOG(ERROR, "serve: requeueing interrupted jobs: %s", eg_last_error());
    else if (requeued > 0) EG_LOG(INFO, "serve: %d interrupted job(s) queued again", requeued);

    static eg_api_ctx ctx; /* outlives every thread that reads it */
    ctx.store = store;
    pthread_mutex_init(&ctx.hists.lock, NULL);
    ctx.token = o.token;
    ctx.data_roots = &o.data_roots;
    /* Images a job's file lists name lie in the data roots too. */
    static const char *roots[EG_MAX_DATA_ROOTS + 1];
    for (int i = 0; i < o.data_roots.n; i++) roots[i] = o.data_roots.path[i];
    roots[o.data_roots.n] = NULL;
    eg_tasks_set_data_roots(roots);
    ctx.checkpoint_dir = o.checkpoint_dir;
    ctx.devices = o.device_list;
    ctx.lease_s = (double)o.lease_seconds;
    char host[256] = "localhost", devices_json[EG_OPT_MAX_DEVICES * 20] = "[";
    gethostname(host, sizeof host - 1);
    for (int i = 0; o.device_list[i]; i++)
        snprintf(devices_json + strlen(devices_json), sizeof devices_json - strlen(devices_json),
                 "%s\"%s\"", i ? "," : "", o.device_list[i]);
    strcat(devices_json, "]");
    eg_sched_config sc = {
        .devices = o.device_list,
        .worker = o.worker_name,
        .host = host,
        .listen = o.listen,
        .devices_json = devices_json,
        .lease_s = (double)o.lease_seconds,
        .max_lost = (int)o.max_lost_leases,
        .checkpoint_dir = o.checkpoint_dir,
        .checkpoint_every = o.checkpoint_every,
        .listener = eg_api_on_sched_event,
        .step_listener = eg_api_on_sched_step,
        .listener_ctx = &ctx,
    };
    eg_sched *sched = NULL;
    if (eg_sched_start(store, &sc, &sched) != 0) {
        EG_LOG(ERROR, "serve: %s", eg_last_error());
        eg_store_close(store);
        return 1;
    }
    ctx.sched = sched;
    eg_api *api = NULL;
    if (eg_api_start(&ctx, (const struct sockaddr *)&o.addr, o.addr_len, &api) != 0) {
        EG_LOG(ERROR, "serve: %s: %s", o.listen, eg_last_error());
        eg_sched_stop(sched);
        eg_store_close(store);
        return 1;
    }
    /* A conninfo may hold a password: only an SQLite path is shown. */
    int shared = strcmp(eg_store_kind(store), "sqlite") != 0;
    EG_LOG(INFO, "serve: listening on http://%s as worker %s (db %s, devices %s, checkpoints "
                 "in %s%s)", o.listen, o.worker_name, shared ? "postgresql (shared)" : o.db,
           o.devices, o.checkpoint_dir, o.token[0] ? ", bearer token required" : "");
    sd_notify(0, "READY=1");
    notify_status(store, sched, o.listen);

    wait_for_stop(&sigs, store, sched, o.listen);

    sd_notify(0, "STOPPING=1\nSTATUS=stopping: running jobs checkpoint and go back to the queue");
    eg_api_stop(api);
    eg_sched_stop(sched);
    eg_store_close(store);
    EG_LOG(INFO, "serve: stopped");
    return 0;
}
