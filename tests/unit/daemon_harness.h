/* A real `evogradd serve` for the black-box daemon tests and the API
 * benchmark: started on a free 127.0.0.1 port with its own folder (the
 * database, the checkpoints and the daemon's stderr log), spoken to over
 * HTTP with libcurl (keep-alive, one connection cache per thread), stopped
 * with SIGTERM or SIGKILL.
 *
 * Every daemon dies with the process that started it (PR_SET_PDEATHSIG)
 * and any still running at exit is killed, so a failing test leaves none
 * behind. Nothing here calls cmocka: functions return 0 / -1 (with a line
 * on stderr), so they are safe on any thread. */
#ifndef EG_DAEMON_HARNESS_H
#define EG_DAEMON_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

typedef struct dh_daemon {
    pid_t pid;                 /* 0 when not running */
    int port;
    char dir[512];             /* holds db, checkpoints/ and daemon.log */
    char db[600];              /* the SQLite file, or a PostgreSQL conninfo */
    int postgres;
    char ckpt_dir[600];
    char log[600];             /* the daemon's stdout and stderr */
    char base[64];             /* http://127.0.0.1:PORT */
    char token[128];           /* sent as "Authorization: Bearer" when set */
} dh_daemon;

typedef struct dh_opts {
    long checkpoint_every;     /* --checkpoint-every; 0: the daemon's default */
    const char *token;         /* written to DIR/token for --token-file; NULL: none */
    const char *log_level;     /* --log-level; NULL: info */
    const char *devices;       /* --devices; NULL: cpu, whatever the machine has */
    const char *data_dir;      /* --data-dir; NULL: the daemon's default */
    const char *state_dir;     /* where the db and checkpoints/ go; NULL: dir */
    const char *const *env;    /* "NAME=value" entries set for the daemon, NULL-ended */
    int postgres;              /* the store in PostgreSQL (pg_cluster.h), not SQLite: a
                                  database of the state folder's own (also when
                                  EG_TEST_STORE=postgresql) */
    const char *db;            /* --db as given (a shared database); NULL: as above */
    const char *worker_name;   /* --worker-name; NULL: the daemon's default */
    long lease_seconds;        /* --lease-seconds; 0: the daemon's default */
} dh_opts;

/* The daemon binary: $EG_DAEMON when set, else the evogradd of the build
 * the calling binary belongs to (BUILD/evogradd next to BUILD/tests/ or to
 * BUILD/bench_*), else build/evogradd. */
const char *dh_daemon_path(void);

/* Starts a daemon whose files live in dir (created if needed; an existing
 * database there is reopened, which is how a test restarts a daemon) and
 * waits up to 20 s for GET /healthz to answer 200. The daemon runs with
 * OMP_NUM_THREADS=1 unless the caller's environment sets it. 0, or -1
 * after printing why (the log's tail included). */
int dh_start(dh_daemon *d, const char *dir, const dh_opts *o);

/* Sends sig and waits up to timeout_s for the daemon to exit; *status
 * (when not NULL) gets its exit code, or 128 + the signal that ended it.
 * When it outlives the timeout it is killed with SIGKILL and -1 returned. */
int dh_stop(dh_daemon *d, int sig, double timeout_s, int *status);

/* Whether the daemon's process is still running (reaps it when not). */
int dh_alive(dh_daemon *d);

/* ---- HTTP ---- */

typedef struct dh_req {
    const char *method;        /* GET, HEAD, POST, ... (any token) */
    const char *path;          /* with its query string */
    const char *content_type;  /* NULL: no Content-Type header at all */
    const char *body;          /* NULL: none */
    size_t len;                /* body bytes; 0 with a body: strlen(body) */
    const char *auth;          /* NULL: the daemon's token, if any; "": no header;
                                  else the whole Authorization value */
    int no_expect;             /* suppress "Expect: 100-continue" */
    const char *header;        /* one more header line ("Name: value"), or NULL */
    int raw;                   /* leave the body unparsed (json stays NULL) */
} dh_req;

typedef struct dh_resp {
    long status;               /* 0 when no answer came */
    char *body;                /* NUL-terminated */
    size_t len;
    json_t *json;              /* the body parsed, or NULL when it is not JSON */
    char content_type[128];
    char location[256];
    char allow[128];
    char www_authenticate[128];
} dh_resp;

/* One request on this thread's connection to d. 0 when an answer came
 * (whatever its status), -1 on a transport failure. r is reset first. */
int dh_do(const dh_daemon *d, const dh_req *rq, dh_resp *r);

/* GET path / POST json to path (Content-Type: application/json). */
int dh_get(const dh_daemon *d, const char *path, dh_resp *r);
int dh_post_json(const dh_daemon *d, const char *path, const char *json, dh_resp *r);

void dh_resp_free(dh_resp *r);

/* Releases this thread's libcurl handle (call at the end of a thread). */
void dh_thread_end(void);

/* The error body's code, field and message; NULL when absent. */
const char *dh_err_code(const dh_resp *r);
const char *dh_err_field(const dh_resp *r);
const char *dh_err_message(const dh_resp *r);

/* Sends raw bytes on a fresh connection, reads the answer until the server
 * closes or timeout_s passes, and returns its status code (0 when none);
 * the answer's text goes to out (cap bytes, NUL-terminated) when not NULL;
 * at most 16 KiB, or cap bytes when that is more, are read. */
int dh_raw(const dh_daemon *d, const char *bytes, size_t n, double timeout_s, char *out,
           size_t cap);

/* ---- the database ---- */

/* Whether the database at path passes PRAGMA integrity_check (read-only);
 * 0 after printing what it said. */
int dh_db_whole(const char *path);

/* ---- jobs ---- */

/* POSTs spec; the new job's id when the answer is 201, else -1. */
int64_t dh_submit(const dh_daemon *d, const char *spec);

/* Polls GET /v1/jobs/{id} every few milliseconds until its state is one of
 * the "|"-separated states (e.g. "succeeded|failed|canceled") or, when
 * min_steps > 0, its steps_done reaches min_steps; at most timeout_s. 0
 * with *job (when not NULL) the last job object read, -1 on timeout or an
 * answer other than 200. */
int dh_wait_job(const dh_daemon *d, int64_t id, const char *states, long min_steps,
                double timeout_s, json_t **job);

/* Every step row of the job, paging through /steps with page rows a
 * request (following next_after, at most 100000 pages); NULL on error. */
json_t *dh_steps_all(const dh_daemon *d, int64_t id, int page);

/* dh_steps_all, when the rows are exactly the steps 0 .. steps - 1 in
 * order (no gap, no duplicate); else NULL after printing what was found. */
json_t *dh_steps_whole(const dh_daemon *d, int64_t id, int page, long steps);

/* The step the daemon last said it resumed job id at ("job ID: resumed
 * from ... at step N" in its log); -1 when it did not. */
long dh_resumed_at(const dh_daemon *d, int64_t id);

/* Whether two JSON numbers agree: |a - b| <= tol x max(1, |b|) (tol 0:
 * equal), or both null. */
int dh_same_number(const json_t *a, const json_t *b, double tol);

/* Whether the step rows equal those of a reference run (the same count;
 * each row's train_loss, meta_loss, hyper_norm, lambda_norm, epoch and
 * every value of lambda, by dh_same_number with tol); 0, or -1 after
 * printing the first difference, named by what. */
int dh_rows_match(const json_t *rows, const json_t *ref, double tol, const char *what);

/* ---- files ---- */

/* Whether the file holds needle. */
int dh_file_contains(const char *path, const char *needle);

/* How many times needle occurs in the file at path (-1 when unreadable). */
long dh_file_count(const char *path, const char *needle);

/* Whether the daemon's log is free of errors: no line logged at level
 * error, no "database is locked", no sanitizer report. 1 when clean, else
 * 0 after printing what was found. */
int dh_log_clean(const dh_daemon *d);

/* Keeps a response body for validate_api.py: dir/SCHEMA/NNNNN.json where
 * SCHEMA names schema/api/SCHEMA.schema.json. 0 or -1. */
int dh_save_body(const char *dir, const char *schema, const dh_resp *r);

/* Runs tests/parity/validate_api.py on dir; its exit status (0 = valid). */
int dh_validate_bodies(const char *dir);

/* Milliseconds of a monotonic clock. */
double dh_now_ms(void);

/* Sleeps ms milliseconds. */
void dh_sleep_ms(double ms);

#endif
