/* The daemon's store: jobs, their step log, evaluations, checkpoints and
 * the workers that run them (DESIGN.md §4). One interface, two
 * implementations behind store_ops.h:
 *
 *   - sqlite/: the embedded default for one box (a database file; WAL, one
 *     writer thread, read-only connections for the API's threads);
 *   - postgres/: a PostgreSQL server through libpq, shared by the daemons
 *     of many boxes (db = postgresql://... or a libpq conninfo string):
 *     one queue, one API and one step log for all of them.
 *
 * Every statement is prepared; no SQL is built from input. Each has its
 * numbered migrations (sql/NNN_*.sql, sql/postgres/NNN_*.sql) embedded into
 * the binary and applied at open.
 *
 * Claims and leases: a claim gives the job an attempt number (1, 2, ...)
 * and a lease until the database's clock passes now + lease_s, which its
 * worker renews (eg_store_job_renew). Every write of a running job (state,
 * steps, evaluations, checkpoints) carries the attempt; a write from an
 * attempt that is no longer the job's current one changes nothing and
 * returns EG_STORE_LOST, and its worker stops the job. Any daemon queues
 * jobs whose lease ran out again (eg_store_leases_expire).
 *
 * Job states: "queued", "running", "succeeded", "failed", "canceled".
 * Functions return 0 or -1 with eg_errorf(); a lookup of a missing job
 * returns 1 (not found) so the API can answer 404. */
#ifndef EG_STORE_H
#define EG_STORE_H

#include <stdint.h>

#include "meta/loop.h"

struct json_t;
typedef struct eg_store eg_store;

/* Returned by the writes of a running job when the attempt given is no
 * longer the job's: another worker has it, or it ended. */
#define EG_STORE_LOST 3

/* Opens and migrates the database `db` and starts the writer thread: a
 * PostgreSQL connection URI (postgresql://, postgres://) or conninfo string
 * (key=value ...) opens the shared store; anything else is the path of an
 * SQLite file (created with its folder when missing). */
int eg_store_open(const char *db, eg_store **out);

/* "sqlite" or "postgresql". */
const char *eg_store_kind(const eg_store *s);

/* Whether db names a PostgreSQL database (as eg_store_open reads it). */
int eg_store_db_is_postgres(const char *db);

/* Commits everything queued, stops the writer and closes all connections. */
void eg_store_close(eg_store *s);

/* Whether the last store call of this thread that failed did so because
 * the disk is full. */
int eg_store_failed_full(void);

/* Whether this thread's last store call failed because the database
 * server could not be reached (a shared store that is down or cut off). */
int eg_store_failed_unreachable(void);

/* 1 while the disk holding the database is full: a write found it full
 * and gave back the store's space reserve (a file next to the database,
 * kept so that jobs' ends can still be recorded). Each call tries to take
 * the reserve again and returns 0 once it could. */
int eg_store_out_of_space(eg_store *s);

/* Blocks until every write queued before the call is committed. */
int eg_store_flush(eg_store *s);

/* ---- jobs ---- */

/* Inserts a queued job with its normalised spec (JSON text), its task and
 * method names, device and total steps; *id gets the new id. Synchronous:
 * the row is committed when this returns. */
int eg_store_job_insert(eg_store *s, const char *spec_json, const char *task,
                        const char *method, const char *device, long total_steps,
                        int64_t *id);

/* The job as a JSON object (id, state, task, method, device, spec (object),
 * created_at, started_at, finished_at (ISO 8601 UTC or null), steps_done,
 * total_steps, error (or null), summary (object or null), last step's
 * train_loss / meta_loss / lambda where any). Returns 1 when there is no
 * such job. */
int eg_store_job_get(eg_store *s, int64_t id, struct json_t **out);

/* Jobs ordered by id, after id `after`, at most limit, optionally only
 * those in `state` (NULL: all): {"jobs": [...], "next_after": id|null}. */
int eg_store_jobs_list(eg_store *s, const char *state, int64_t after, int limit,
                       struct json_t **out);

/* Number of jobs in each state, for /metrics and the systemd status. */
int eg_store_job_counts(eg_store *s, long counts[5]);

/* The largest job id there is (0 when there is none). */
int eg_store_newest_job(eg_store *s, int64_t *id);

/* How long the oldest queued job has waited since it was submitted, in
 * seconds (0 when none is queued), for /metrics. */
int eg_store_oldest_queued_age(eg_store *s, double *seconds);

/* A claimed job: its id, attempt, spec (malloc'd JSON text) and the
 * device of the list given that runs it. */
typedef struct eg_claim {
    int64_t id;
    int attempt;
    char *spec;
    char device[32];
} eg_claim;

/* Claims the oldest queued job whose device is one of `devices` (a
 * NULL-terminated list of names like "cpu"; which requests a device takes
 * is util/placement.h's rule) for `worker`, with a lease of lease_s
 * seconds: marks it running with its device, the next attempt number and
 * the worker's name, and returns 0; 1 when none is queued. Concurrent
 * claims from many daemons never take the same job. */
int eg_store_job_claim(eg_store *s, const char *const *devices, const char *worker,
                       double lease_s, eg_claim *c);

/* Renews the lease of a running job's attempt to now + lease_s: 0, or
 * EG_STORE_LOST when the attempt is no longer the job's. */
int eg_store_job_renew(eg_store *s, int64_t id, int attempt, double lease_s);

/* Queues again every running job whose lease has run out (its worker
 * died, stalled or lost the database), except those whose lease had run
 * out max_lost times already: they fail with an error saying so. *requeued
 * and *failed get the counts (either may be NULL). */
int eg_store_leases_expire(eg_store *s, int max_lost, int *requeued, int *failed);

/* Records a job's total steps once its task knows them (jobs given in
 * epochs); EG_STORE_LOST when the attempt is not the job's. */
int eg_store_job_set_total(eg_store *s, int64_t id, int attempt, long total_steps);

/* Moves a running job's attempt to a final state ("succeeded", "failed",
 * "canceled") with an optional error message and summary (JSON text); or
 * back to "queued" (state "queued": for a job interrupted by shutdown).
 * Synchronous. EG_STORE_LOST when the attempt is no longer the job's (the
 * job is left as it is). */
int eg_store_job_finish(eg_store *s, int64_t id, int attempt, const char *state,
                        const char *error, const char *summary_json);

/* Requests cancellation: a queued job becomes canceled at once (returns
 * 0); a running one is flagged (its worker sees it within a step) and 0;
 * a finished one returns 2 (conflict); a missing one 1. */
int eg_store_job_cancel(eg_store *s, int64_t id);

/* Whether a running job's attempt goes on: 0 yes, 1 when it has been
 * asked to cancel, EG_STORE_LOST when the attempt is no longer the job's,
 * -1 when the store cannot tell (an error). */
int eg_store_job_cancel_requested(eg_store *s, int64_t id, int attempt);

/* Deletes a job that is not running, with its steps, evals and checkpoint
 * rows (returns 2 when it is running, 1 when missing). The caller removes
 * checkpoint files. */
int eg_store_job_delete(eg_store *s, int64_t id);

/* At start: every job found "running" on `worker` (this daemon, before it
 * was restarted) or on no named worker goes back to "queued" (canceled
 * when a cancel was asked); returns how many were queued. Other workers'
 * jobs are left to their leases. A store only one daemon uses (SQLite)
 * takes every running job for this daemon's, whatever its name was. */
int eg_store_requeue_running(eg_store *s, const char *worker);

/* ---- workers ---- */

/* A daemon as GET /v1/workers shows it. */
typedef struct eg_store_worker {
    const char *name;         /* unique: host:port unless configured */
    const char *host;
    const char *devices_json; /* JSON array of its device names */
    const char *listen;       /* its API's address */
} eg_store_worker;

/* Records that the worker is alive now (the database's clock), and
 * forgets the workers not heard from for a day. */
int eg_store_worker_beat(eg_store *s, const eg_store_worker *w);

/* {"workers": [{name, host, listen, devices, started_at, last_heartbeat,
 * alive, running: [job ids]}]} by name; alive: a heartbeat within
 * alive_s seconds. */
int eg_store_workers(eg_store *s, double alive_s, struct json_t **out);

/* Calls wake(ctx) from another thread whenever another daemon queues a
 * job (PostgreSQL's LISTEN/NOTIFY); a no-op for a store only one daemon
 * uses. wake NULL stops the calls: when this returns, none is under way
 * (so ctx may go). */
int eg_store_set_wake(eg_store *s, void (*wake)(void *ctx), void *ctx);

/* ---- the step log ---- */

/* Queues one step row of a job's attempt for the writer (primary key
 * (job, step): a step logged again after a resume replaces the earlier
 * row; rows of an attempt that is no longer the job's are dropped). Never
 * blocks on the database. */
int eg_store_step_append(eg_store *s, int64_t job, int attempt, const eg_step_record *r);

/* Called with each step row read: its step and its JSON text
 * {step, epoch, train_loss, meta_loss, hyper_norm, lambda (array or null),
 * lambda_norm, w (array), step_ms, meta_ms, cur_bytes, peak_bytes}, not
 * NUL-terminated; a non-zero return stops the read (an error). */
typedef int (*eg_step_row_fn)(void *ctx, long step, const char *text, size_t len);

/* Steps of a job with step > after, ascending, at most limit rows; when
 * max_points > 0 the selected range is downsampled server-side to at most
 * max_points rows (evenly spaced, always keeping the last). *more tells
 * whether rows past the page remain. 1 when the job is missing. */
int eg_store_steps_read(eg_store *s, int64_t job, long after, int limit, int max_points,
                        eg_step_row_fn fn, void *ctx, int *more);

/* The same page as the text {"steps": [rows], "next_after": step|null}
 * (malloc'd, *len bytes, NUL-terminated). */
int eg_store_steps_page(eg_store *s, int64_t job, long after, int limit, int max_points,
                        char **text, size_t *len);

/* The index of a step column a min/max page can follow (train_loss,
 * meta_loss, hyper_norm, lambda_norm, step_ms, meta_ms, cur_bytes,
 * peak_bytes), or -1. */
int eg_store_steps_column(const char *name);

/* A page like eg_store_steps_page, downsampled for charts of the columns
 * named in by (a comma-separated list of those eg_store_steps_column
 * knows): the rows after `after` (at most limit) are split into
 * max_points / 2 buckets of consecutive rows, and each bucket gives its
 * rows at the minimum and at the maximum of each column (one when they
 * are the same row), in step order, read in one scan; the page's last row
 * is always kept. So at most max_points x columns + 1 rows, and no peak or
 * dip of a column is lost. 1 when the job is missing. */
int eg_store_steps_minmax_page(eg_store *s, int64_t job, long after, int limit, int max_points,
                               const char *by, char **text, size_t *len);

/* ---- sweeps ---- */

/* One job of a sweep, as eg_store_job_insert takes it, with its point:
 * the grid's assignments for it (a JSON object, text). */
typedef struct eg_store_job_row {
    const char *spec_json, *task, *method, *device, *point_json;
    long total_steps;
} eg_store_job_row;

/* Inserts a sweep (name may be NULL; request_json: what it was made from)
 * and its n queued jobs in one transaction: all of them or none. *id gets
 * the sweep's id. Synchronous. */
int eg_store_sweep_insert(eg_store *s, const char *name, const char *request_json,
                          const eg_store_job_row *rows, int n, int64_t *id);

/* The sweep {id, name (or null), request (object), created_at, jobs: [{id,
 * point, state, steps_done, total_steps, error, summary, created_at,
 * started_at, finished_at}] in id order}, read in one transaction. 1 when
 * there is no such sweep. */
int eg_store_sweep_get(eg_store *s, int64_t id, struct json_t **out);

/* Sweeps ordered by id, after id `after`, at most limit, each as
 * eg_store_sweep_get gives it but with the jobs' summaries null:
 * {"sweeps": [...], "next_after": id|null}. */
int eg_store_sweeps_list(eg_store *s, int64_t after, int limit, struct json_t **out);

/* Cancels the sweep's jobs that have not ended (queued ones at once,
 * running ones flagged, as eg_store_job_cancel does); *n gets how many.
 * 1 when there is no such sweep, 2 when none was left to cancel. */
int eg_store_sweep_cancel(eg_store *s, int64_t id, int *n);

/* Deletes the sweep with its jobs (and their steps, evaluations and
 * checkpoint rows) unless one of them is running (2); 1 when missing.
 * *ids (malloc'd) and *n get the deleted jobs, whose checkpoint files the
 * caller removes. */
int eg_store_sweep_delete(eg_store *s, int64_t id, int64_t **ids, int *n);

/* ---- evaluations and checkpoints ---- */

/* Queues an evaluation of a job's attempt, as eg_store_step_append. */
int eg_store_eval_append(eg_store *s, int64_t job, int attempt, long step, const eg_eval *ev);

/* {"evals": [{step, test_acc, test_loss, angle_deg, w_corrupted, w_clean}]}
 * (NaN fields as null); 1 when the job is missing. */
int eg_store_evals(eg_store *s, int64_t job, struct json_t **out);

/* Records that a checkpoint of `job`'s attempt after `step` steps was
 * written at path (after the file's atomic rename; synchronous), once the
 * queued steps are committed. 1 when the job is missing, EG_STORE_LOST
 * when the attempt is no longer the job's. */
int eg_store_checkpoint_record(eg_store *s, int64_t job, int attempt, long step,
                               const char *path);

/* The latest checkpoint of a job: 0 with its path (malloc'd) and step, or
 * 1 when it has none. */
int eg_store_checkpoint_latest(eg_store *s, int64_t job, char **path, long *step);

#endif
