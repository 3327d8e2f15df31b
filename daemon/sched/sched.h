/* The scheduler: one worker thread per device claims queued jobs from the
 * store and runs them (meta/loop.h's eg_run), logging every step and
 * evaluation, checking for cancellation every step and checkpointing every
 * checkpoint_every steps and at epoch ends (atomic rename). A job found
 * with a checkpoint resumes from it. A job that fails — bad data, a
 * non-finite loss, out of memory — fails alone with its error recorded.
 *
 * A heartbeat thread keeps the claims' leases (store.h): every third of a
 * lease it records the daemon as alive, renews its running jobs' leases
 * and queues again any daemon's jobs whose lease ran out. A job whose
 * attempt is found to be no longer this worker's (a write or the renewal
 * says EG_STORE_LOST) is stopped at once and nothing more is written for
 * it. Checkpoint files are named by job and attempt (DIR/job-ID.N.ckpt):
 * with the folder shared by all boxes (the PostgreSQL store), another box
 * resumes a job from the file its last attempt recorded.
 *
 * Shutdown (eg_sched_stop): workers stop taking jobs, each running job
 * takes a checkpoint after its current step and goes back to "queued", and
 * the threads are joined. */
#ifndef EG_SCHED_H
#define EG_SCHED_H

#include "store/store.h"

typedef struct eg_sched eg_sched;

/* Notified (from worker threads) when a job changes state or logs steps;
 * the API's event stream listens here. kind: "state" or "step". */
typedef void (*eg_sched_listener)(void *ctx, int64_t job, const char *kind);

/* Notified (from the worker's thread) of every step a worker ran, with the
 * worker's device; the API's metrics listen here. */
typedef void (*eg_sched_step_listener)(void *ctx, const char *device, const eg_step_record *r);

#define EG_SCHED_LEASE_S 30.0 /* default lease of a claim, seconds */
#define EG_SCHED_MAX_LOST 3    /* default lost leases before a job fails */

typedef struct eg_sched_config {
    const char *const *devices;  /* NULL-terminated: "cpu", "cuda:0", ... */
    const char *worker;          /* this daemon's name in the store (unique) */
    const char *host, *listen;   /* for GET /v1/workers */
    const char *devices_json;    /* the devices as a JSON array */
    double lease_s;              /* the lease of a claim (EG_SCHED_LEASE_S) */
    int max_lost;                /* EG_SCHED_MAX_LOST */
    const char *checkpoint_dir;  /* checkpoint files: DIR/job-ID.ckpt */
    long checkpoint_every;       /* steps (default 200) */
    eg_sched_listener listener;
    eg_sched_step_listener step_listener;
    void *listener_ctx;          /* passed to both */
} eg_sched_config;

int eg_sched_start(eg_store *store, const eg_sched_config *cfg, eg_sched **out);

/* Wakes the workers (a job was queued). */
void eg_sched_poke(eg_sched *s);

/* Jobs running now (for status lines and metrics). */
int eg_sched_running(eg_sched *s);

/* Stops as described above and frees the scheduler. */
void eg_sched_stop(eg_sched *s);

/* Path of the checkpoint file of a job's attempt under dir (malloc'd). */
char *eg_sched_checkpoint_path(const char *dir, int64_t job, int attempt);

/* Removes every checkpoint file of a job under dir (all attempts', and
 * any .tmp left): 0, or -1 with eg_errorf naming one that stayed. */
int eg_sched_checkpoints_remove(const char *dir, int64_t job);

#endif
