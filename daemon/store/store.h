/* The daemon's SQLite store: jobs, their step log, evaluations and
 * checkpoints (DESIGN.md §4).
 *
 * One writer thread owns the write connection and commits queued writes in
 * batches (WAL mode, busy timeout, synchronous=NORMAL); readers (the API's
 * threads) use read-only connections, one per thread, opened on first use.
 * Every statement is prepared; no SQL is built from input. Migrations in
 * sql/NNN_*.sql are embedded into the binary and applied at open, the
 * schema version kept in PRAGMA user_version.
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

/* Opens (creating it and its folder if needed) and migrates the database
 * at path, and starts the writer thread. */
int eg_store_open(const char *path, eg_store **out);

/* Commits everything queued, stops the writer and closes all connections. */
void eg_store_close(eg_store *s);

/* Whether the last store call of this thread that failed did so because
 * the disk is full. */
int eg_store_failed_full(void);

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

/* Claims the oldest queued job whose device is one of `devices` (a
 * NULL-terminated list of names like "cpu"; jobs asking "auto" fit any):
 * marks it running with this device and returns its id and spec (malloc'd
 * JSON text) and 0, or 1 when none is queued. */
int eg_store_job_claim(eg_store *s, const char *const *devices, int64_t *id,
                       char **spec_json, char *device, size_t device_len);

/* Records a job's total steps once its task knows them (jobs given in
 * epochs). */
int eg_store_job_set_total(eg_store *s, int64_t id, long total_steps);

/* Moves a job to a final state ("succeeded", "failed", "canceled") with an
 * optional error message and summary (JSON text); or back to "queued"
 * (state "queued": for a job interrupted by shutdown). Synchronous. */
int eg_store_job_finish(eg_store *s, int64_t id, const char *state, const char *error,
                        const char *summary_json);

/* Requests cancellation: a queued job becomes canceled at once (returns
 * 0); a running one is flagged (its worker sees it within a step) and 0;
 * a finished one returns 2 (conflict); a missing one 1. */
int eg_store_job_cancel(eg_store *s, int64_t id);

/* Whether a running job has been asked to cancel. */
int eg_store_job_cancel_requested(eg_store *s, int64_t id);

/* Deletes a job that is not running, with its steps, evals and checkpoint
 * rows (returns 2 when it is running, 1 when missing). The caller removes
 * checkpoint files. */
int eg_store_job_delete(eg_store *s, int64_t id);

/* At start: every job found "running" goes back to "queued"; returns how
 * many did. */
int eg_store_requeue_running(eg_store *s);

/* ---- the step log ---- */

/* Queues one step row for the writer (primary key (job, step): a step
 * logged again after a resume replaces the earlier row). Never blocks on
 * the database. */
int eg_store_step_append(eg_store *s, int64_t job, const eg_step_record *r);

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

int eg_store_eval_append(eg_store *s, int64_t job, long step, const eg_eval *ev);

/* {"evals": [{step, test_acc, test_loss, angle_deg, w_corrupted, w_clean}]}
 * (NaN fields as null); 1 when the job is missing. */
int eg_store_evals(eg_store *s, int64_t job, struct json_t **out);

/* Records that a checkpoint of `job` after `step` steps was written at
 * path (after the file's atomic rename; synchronous). */
int eg_store_checkpoint_record(eg_store *s, int64_t job, long step, const char *path);

/* The latest checkpoint of a job: 0 with its path (malloc'd) and step, or
 * 1 when it has none. */
int eg_store_checkpoint_latest(eg_store *s, int64_t job, char **path, long *step);

#endif
