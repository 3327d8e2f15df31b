/* The table of operations each store implements (sqlite/, postgres/):
 * the functions of store.h, dispatched through eg_store's ops. A store
 * embeds eg_store as its first member. Optional entries may be NULL:
 * out_of_space (0: never), set_wake (no other daemon to hear from). */
#ifndef EG_STORE_OPS_H
#define EG_STORE_OPS_H

#include <stddef.h>

#include "store/step_rows.h"
#include "store/store.h"

typedef struct eg_store_ops {
    const char *kind;
    void (*close)(eg_store *s);
    int (*out_of_space)(eg_store *s);
    int (*flush)(eg_store *s);
    int (*job_insert)(eg_store *s, const char *spec_json, const char *task, const char *method,
                      const char *device, long total_steps, int64_t *id);
    int (*job_get)(eg_store *s, int64_t id, struct json_t **out);
    int (*jobs_list)(eg_store *s, const char *state, int64_t after, int limit, struct json_t **out);
    int (*job_counts)(eg_store *s, long counts[5]);
    int (*newest_job)(eg_store *s, int64_t *id);
    int (*oldest_queued_age)(eg_store *s, double *seconds);
    int (*job_claim)(eg_store *s, const char *const *devices, const char *worker, double lease_s,
                     eg_claim *c);
    int (*job_renew)(eg_store *s, int64_t id, int attempt, double lease_s);
    int (*leases_expire)(eg_store *s, int max_lost, int *requeued, int *failed);
    int (*job_set_total)(eg_store *s, int64_t id, int attempt, long total_steps);
    int (*job_finish)(eg_store *s, int64_t id, int attempt, const char *state, const char *error,
                      const char *summary_json);
    int (*job_cancel)(eg_store *s, int64_t id);
    int (*job_cancel_requested)(eg_store *s, int64_t id, int attempt);
    int (*job_delete)(eg_store *s, int64_t id);
    int (*requeue_running)(eg_store *s, const char *worker);
    int (*worker_beat)(eg_store *s, const eg_store_worker *w);
    int (*workers)(eg_store *s, double alive_s, struct json_t **out);
    int (*set_wake)(eg_store *s, void (*wake)(void *ctx), void *ctx);
    int (*step_append)(eg_store *s, int64_t job, int attempt, const eg_step_record *r);
    int (*steps_read)(eg_store *s, int64_t job, long after, int limit, int max_points,
                      eg_step_row_fn fn, void *ctx, int *more);
    /* Appends the rows of a min/max page following cols[0..n_cols) (of
     * eg_steps_minmax_cols) to page, begun and checked by store.c. */
    int (*steps_minmax)(eg_store *s, int64_t job, long after, int limit, int max_points,
                        const int *cols, int n_cols, eg_step_page *page, int *more);
    int (*sweep_insert)(eg_store *s, const char *name, const char *request_json,
                        const eg_store_job_row *rows, int n, int64_t *id);
    int (*sweep_get)(eg_store *s, int64_t id, struct json_t **out);
    int (*sweeps_list)(eg_store *s, int64_t after, int limit, struct json_t **out);
    int (*sweep_cancel)(eg_store *s, int64_t id, int *n);
    int (*sweep_delete)(eg_store *s, int64_t id, int64_t **ids, int *n);
    int (*eval_append)(eg_store *s, int64_t job, int attempt, long step, const eg_eval *ev);
    int (*evals)(eg_store *s, int64_t job, struct json_t **out);
    int (*checkpoint_record)(eg_store *s, int64_t job, int attempt, long step, const char *path);
    int (*checkpoint_latest)(eg_store *s, int64_t job, char **path, long *step);
} eg_store_ops;

struct eg_store {
    const eg_store_ops *ops;
};

/* Records whether this thread's last store failure was a full disk
 * (store.c; eg_store_failed_full reads it). */
void eg_store_note_failure(int full);

/* Records whether this thread's last store call failed because the
 * database server could not be reached (eg_store_failed_unreachable). */
void eg_store_note_unreachable(int unreachable);

/* The job states in the order of eg_store_job_counts, a state's index
 * there (-1: not one), and whether text is JSON of any kind (store.c). */
extern const char *const eg_store_states[5];
int eg_store_state_index(const char *state);
int eg_store_is_json(const char *text);

/* The two implementations' openers. */
int eg_sqlite_open(const char *path, eg_store **out);
int eg_pg_open(const char *conninfo, eg_store **out);

#endif
