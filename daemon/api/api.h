/* The daemon's HTTP API (DESIGN.md §4): JSON under /v1 on libmicrohttpd.
 *
 * A static route table (route.c) maps (method, path pattern) to one handler
 * per endpoint, one file per resource (jobs.c, steps.c, evals.c, events.c,
 * devices.c, health.c, metrics.c). Handlers see a plain eg_request and fill
 * an eg_reply; server.c is the only file that speaks libmicrohttpd. Every
 * error goes through eg_reply_error: {"error": {"code", "message",
 * "field"?}}. Bodies, paths and query strings have hard caps.
 *
 * The options of `evogradd serve` are a table too (serve_options.c), so
 * that the command line, the config file and the tests share one list of
 * names, defaults, bounds and validators. */
#ifndef EG_API_H
#define EG_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "meta/job.h"
#include "sched/sched.h"
#include "store/store.h"
#include "util/log.h"

struct json_t;

/* ---- caps ---- */

#define EG_API_MAX_BODY (1u << 20)   /* request body bytes: 413 above */
#define EG_API_MAX_PATH 1024         /* path bytes: 414 above */
#define EG_API_MAX_QUERY 2048        /* query bytes (keys + values): 414 above */
#define EG_API_MAX_PARAMS 16         /* query parameters: 400 above */

/* ---- data roots (data_roots.c) ---- */

#define EG_MAX_DATA_ROOTS 8
#define EG_DEFAULT_DATA_ROOT "/usr/share/datasets" /* Debian's dataset packages */

/* The folders jobs may read data from, each resolved (no "..", no links). */
typedef struct eg_data_roots {
    int n;
    char path[EG_MAX_DATA_ROOTS][512];
} eg_data_roots;

/* Parses a ':'-separated list of folders (empty parts skipped); each must
 * exist. -1 with eg_errorf naming the bad one. */
int eg_data_roots_parse(const char *list, eg_data_roots *out);

/* Resolves job->dataset.path, and the task's own data paths (its registry
 * entry's paths), in place against the roots, the way a job submitted to
 * the daemon must: an absolute path as it is, a relative one under each
 * root in turn (the first that exists); with no path, the first root
 * holding the dataset in a subfolder named after it, or in itself. The
 * result must exist, be a folder (a dataset's) and lie inside a root once
 * ".." and symbolic links are resolved; it is stored fully resolved. Jobs
 * without data (toy1d) pass untouched. -1 with eg_errorf (a message that
 * starts with the field's name, which *field then holds) otherwise. */
int eg_data_roots_resolve(const eg_data_roots *r, eg_job *job, const char **field);

/* ---- step-time histograms (metrics.c) ---- */

#define EG_HIST_BUCKETS 16
#define EG_HIST_DEVICES 9

/* Durations observed per device: counts per upper bound (seconds, the
 * last +Inf), their sum and count. */
typedef struct eg_hist {
    unsigned long count[EG_HIST_BUCKETS];
    double sum;
    unsigned long n;
} eg_hist;

typedef struct eg_step_hists {
    pthread_mutex_t lock;
    int n;
    struct {
        char device[16];
        eg_hist step, meta;       /* whole steps; their meta steps */
    } dev[EG_HIST_DEVICES];
} eg_step_hists;

/* ---- what handlers see ---- */

/* The daemon's store, scheduler and settings, owned by `evogradd serve`,
 * shared by every request. */
typedef struct eg_api_ctx {
    eg_store *store;
    eg_sched *sched;
    const char *token;             /* bearer token; "" = no authentication */
    const eg_data_roots *data_roots; /* where jobs may read data */
    const char *checkpoint_dir;
    const char *const *devices;    /* NULL-terminated: "cpu", ... */
    double lease_s;                /* the claims' lease: a worker is alive within it */
    atomic_int stopping;           /* set at shutdown: event streams end */
    atomic_long answered[6];       /* responses by status class, [1] = 1xx .. [5] = 5xx */
    atomic_long steps_seen;        /* step rows announced by the scheduler */
    eg_step_hists hists;           /* step times; lock initialised by the owner */
} eg_api_ctx;

/* Query parameters in the order given (a key without '=' has value ""). */
typedef struct eg_query {
    int n;
    int too_many;                  /* more than EG_API_MAX_PARAMS were given */
    struct { const char *key, *value; } p[EG_API_MAX_PARAMS];
} eg_query;

typedef struct eg_request {
    eg_api_ctx *ctx;
    const char *method;            /* "GET", "HEAD", "POST", "DELETE", ... */
    const char *path;              /* without the query string */
    int64_t id;                    /* the {id} of the path, 0 when it has none */
    eg_query query;
    const char *content_type;      /* request headers; NULL when absent */
    const char *authorization;
    const char *last_event_id;
    const char *body;              /* the request body (not NUL-terminated) */
    size_t body_len;
} eg_request;

/* A response body produced piece by piece (server-sent events). read()
 * copies up to max bytes into buf and returns how many; 0 with *wait set
 * means "nothing yet, call again in a while"; -1 ends the stream. */
typedef struct eg_stream {
    ssize_t (*read)(void *state, char *buf, size_t max, int *wait);
    void (*free)(void *state);
    void *state;
} eg_stream;

typedef struct eg_reply {
    int status;
    struct json_t *body;           /* JSON body (owned), or NULL */
    char *text;                    /* or a text body (malloc'd, owned) */
    size_t text_len;
    const char *content_type;      /* of text or stream */
    eg_stream stream;              /* or a stream, when stream.read is set */
    char location[64];             /* Location header when non-empty */
    char allow[48];                /* Allow header (405) when non-empty */
    int www_authenticate;          /* 401: WWW-Authenticate: Bearer */
} eg_reply;

typedef void (*eg_handler)(const eg_request *rq, eg_reply *rp);

/* ---- replies (reply.c) ---- */

/* Sets rp to `status` with {"error": {"code": code, "message": ..., "field":
 * field}}, field left out when NULL or "". Anything rp held is released. */
void eg_reply_error(eg_reply *rp, int status, const char *code, const char *field,
                    const char *fmt, ...) EG_PRINTF(5, 6);

/* Sets rp to `status` with the JSON body (a reference is stolen; NULL
 * gives a 500). */
void eg_reply_json(eg_reply *rp, int status, struct json_t *body);

/* Sets rp to `status` with JSON text already written (malloc'd, len bytes,
 * taken over; NULL gives a 500); a line end is added. */
void eg_reply_json_text(eg_reply *rp, int status, char *text, size_t len);

/* The answer for a store call that failed: 507 insufficient_storage when
 * the disk is full, else 500; logs eg_last_error(). */
void eg_reply_internal(eg_reply *rp, const char *what);

/* The 507 for a submission while the disk is full ("no new WHAT until
 * there is room again"): -1 with rp set, or 0 when there is room. */
int eg_reply_unless_room(eg_store *store, eg_reply *rp, const char *what);

/* The 415 for a body that is not sent as JSON ("WHAT is sent as
 * Content-Type: application/json"): -1 with rp set, or 0 when it is. */
int eg_reply_unless_json(const char *content_type, eg_reply *rp, const char *what);

/* Releases what rp holds (body, text, stream) and zeroes it. */
void eg_reply_clear(eg_reply *rp);

/* ---- routes (route.c) ---- */

enum {
    EG_ROUTE_PUBLIC = 1,           /* served without the bearer token */
};

typedef struct eg_route {
    const char *method;            /* GET also answers HEAD */
    const char *pattern;           /* segments; "{id}" matches a job id */
    eg_handler handler;
    unsigned flags;
} eg_route;

/* The table, ending with a zeroed entry. */
extern const eg_route eg_routes[];

typedef enum eg_match_kind {
    EG_MATCH_OK,                   /* *route and *id set */
    EG_MATCH_NO_ROUTE,             /* 404 */
    EG_MATCH_BAD_ID,               /* a route's shape, but {id} is no job id: 404 */
    EG_MATCH_BAD_METHOD,           /* 405; allow lists the methods of the path */
} eg_match_kind;

/* Finds the route of (method, path). For EG_MATCH_BAD_METHOD, allow gets
 * "GET, HEAD, POST" style text (cap bytes, NUL-terminated). */
eg_match_kind eg_route_match(const char *method, const char *path, const eg_route **route,
                             int64_t *id, char *allow, size_t cap);

/* Answers a request: routing (404, 405), authentication (401 unless the
 * route is public), then the route's handler. */
void eg_api_dispatch(eg_request *rq, eg_reply *rp);

/* ---- request checks (params.c, auth.c) ---- */

/* Parses a job id: 1 to 19 decimal digits, value in [1, INT64_MAX]; -1 for
 * anything else (signs, spaces, junk, overflow). No message. */
int eg_parse_id(const char *text, int64_t *out);

/* Parses a decimal integer (optional '-', no spaces) in [lo, hi]; -1 for
 * anything else. No message. */
int eg_parse_int(const char *text, long long lo, long long hi, long long *out);

/* Decodes the %HH escapes of a path or query value in place, except %00:
 * a NUL would cut the text short where the handlers read it, so that
 * "/v1/jobs/1%00/steps" would be answered as "/v1/jobs/1" and "limit=1%00x"
 * as "limit=1". Left as the three characters, it is refused like any other
 * bad id or value. Returns the new length. */
size_t eg_unescape(char *s);

/* The value of query parameter key, or NULL when absent (the first when
 * repeated). */
const char *eg_query_get(const eg_query *q, const char *key);

/* Checks that every parameter of q is one of `known` (NULL-terminated),
 * none repeated, and that there are not too many; else a 400 into rp
 * naming the parameter, and -1. */
int eg_query_check(const eg_query *q, const char *const *known, eg_reply *rp);

/* The integer parameter key in [lo, hi] (def when absent) into *out; a 400
 * naming it and -1 when it is malformed or out of range. */
int eg_query_int(const eg_query *q, const char *key, long long lo, long long hi,
                 long long def, long long *out, eg_reply *rp);

/* Whether an Authorization header value carries the bearer token; the
 * comparison takes the same time wherever the first difference is. */
int eg_auth_ok(const char *authorization, const char *token);

/* Compares a (alen bytes) with b (blen bytes) in time that depends only on
 * blen; 1 when equal. */
int eg_const_time_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Whether a Content-Type header names application/json (parameters such
 * as charset allowed, case-insensitive). */
int eg_is_json_type(const char *content_type);

/* ---- job specs from POST bodies (job_input.c) ---- */

/* Turns a POST /v1/jobs body into a validated job: 415 unless JSON,
 * 400 invalid_job (field from eg_job_error_field) when it does not parse or
 * validate, 400 on device when the job asks for a device this daemon does
 * not run, 400 on dataset.path when its data is not inside the daemon's
 * data roots (eg_data_roots_resolve, which also fills in the resolved
 * folder). 0 when *job is good, else -1 with rp set. */
int eg_api_job_from_body(const char *content_type, const char *body, size_t len,
                         const eg_data_roots *roots, const char *const *devices, eg_job *job,
                         eg_reply *rp);

/* The same checks on a spec already parsed. */
int eg_api_job_from_spec(const struct json_t *spec, const eg_data_roots *roots,
                         const char *const *devices, eg_job *job, eg_reply *rp);

/* The stored form of a validated job: its normalised spec as text
 * (*spec_text, malloc'd, which row->spec_json points to), task, method,
 * device (pointing into job) and steps. 0, or -1 with eg_errorf when out of memory. */
int eg_api_job_row(const eg_job *job, eg_store_job_row *row, char **spec_text);

/* Removes a deleted job's checkpoint file and its temporary sibling
 * (jobs.c). */
void eg_api_remove_checkpoint(const eg_api_ctx *ctx, int64_t id);

/* ---- handlers (one file per resource) ---- */

void eg_api_jobs_post(const eg_request *rq, eg_reply *rp);    /* jobs.c */
void eg_api_jobs_list(const eg_request *rq, eg_reply *rp);
void eg_api_job_get(const eg_request *rq, eg_reply *rp);
void eg_api_job_cancel(const eg_request *rq, eg_reply *rp);
void eg_api_job_delete(const eg_request *rq, eg_reply *rp);
void eg_api_steps_get(const eg_request *rq, eg_reply *rp);    /* steps.c */
void eg_api_evals_get(const eg_request *rq, eg_reply *rp);    /* evals.c */
void eg_api_events_get(const eg_request *rq, eg_reply *rp);   /* events.c */
void eg_api_all_events_get(const eg_request *rq, eg_reply *rp);
void eg_api_sweeps_post(const eg_request *rq, eg_reply *rp);  /* sweeps.c */
void eg_api_sweeps_list(const eg_request *rq, eg_reply *rp);
void eg_api_sweep_get(const eg_request *rq, eg_reply *rp);
void eg_api_sweep_cancel(const eg_request *rq, eg_reply *rp);
void eg_api_sweep_delete(const eg_request *rq, eg_reply *rp);
void eg_api_devices_get(const eg_request *rq, eg_reply *rp);  /* devices.c */
void eg_api_workers_get(const eg_request *rq, eg_reply *rp);  /* workers.c */

/* The devices jobs submitted here may ask for: this daemon's, and with a
 * shared store those of every daemon alive on it (workers.c); NULL-ended
 * in out->list. */
#define EG_API_MAX_DEVICES 64
typedef struct eg_api_devices {
    char names[EG_API_MAX_DEVICES][32];
    const char *list[EG_API_MAX_DEVICES + 1];
    int n;
} eg_api_devices;
const char *const *eg_api_devices_all(const eg_api_ctx *ctx, eg_api_devices *out);
void eg_api_ui_get(const eg_request *rq, eg_reply *rp);       /* ui.c: the page's files */
void eg_api_health_get(const eg_request *rq, eg_reply *rp);   /* health.c */
void eg_api_metrics_get(const eg_request *rq, eg_reply *rp);  /* metrics.c */

/* The scheduler's listener: counts step rows for /metrics. ctx is the
 * eg_api_ctx. */
void eg_api_on_sched_event(void *ctx, int64_t job, const char *kind);

/* The scheduler's step listener: adds the step's duration (and its meta
 * step's, where one ran) to the device's histograms. ctx is the eg_api_ctx. */
void eg_api_on_sched_step(void *ctx, const char *device, const eg_step_record *r);

/* ---- the server (server.c) ---- */

typedef struct eg_api eg_api;

/* Listens on addr and serves ctx's API from a pool of threads. ctx must
 * outlive the server. -1 with eg_errorf when the address cannot be bound. */
int eg_api_start(eg_api_ctx *ctx, const struct sockaddr *addr, socklen_t addr_len,
                 eg_api **out);

/* Stops accepting connections, ends event streams, closes every connection
 * and joins the threads. */
void eg_api_stop(eg_api *api);

/* ---- `evogradd serve` options (serve_options.c) ---- */

#define EG_OPT_PATH 512
#define EG_OPT_MAX_DEVICES 8

typedef struct eg_serve_opts {
    char listen[128];
    struct sockaddr_storage addr;  /* listen, parsed */
    socklen_t addr_len;
    char db[EG_OPT_PATH];
    char data_dir[EG_OPT_PATH * 4];  /* the data roots as given, ':'-separated */
    eg_data_roots data_roots;       /* ... resolved */
    int data_dir_set;               /* given (possibly empty: no roots at all) */
    char devices[128];
    char device_names[EG_OPT_MAX_DEVICES][16];
    const char *device_list[EG_OPT_MAX_DEVICES + 1];  /* NULL-terminated */
    char token_file[EG_OPT_PATH];
    char token[512];               /* the token file's first line */
    char checkpoint_dir[EG_OPT_PATH];
    long checkpoint_every;
    char worker_name[EG_OPT_PATH];
    long lease_seconds, max_lost_leases;
    char log_level[8];
    enum eg_log_level level;
    char config[EG_OPT_PATH];      /* the --config file, "" when none */
} eg_serve_opts;

typedef struct eg_option {
    const char *name;
    const char *def;               /* default as text; NULL: none or computed */
    long long lo, hi;              /* bounds of integer options */
    size_t offset, size;           /* the field of eg_serve_opts it sets */
    /* Parses and checks value, storing it into o; -1 with eg_errorf (the
     * message without the option's name, which eg_serve_opts_set adds). */
    int (*set)(const struct eg_option *opt, const char *value, eg_serve_opts *o);
    const char *help;
} eg_option;

/* The table, ending with a zeroed entry. */
extern const eg_option eg_serve_options[];

/* Every option at its default (the computed ones left for
 * eg_serve_opts_finish). */
void eg_serve_opts_init(eg_serve_opts *o);

/* Sets one option by name; -1 with a message that starts with the name. */
int eg_serve_opts_set(eg_serve_opts *o, const char *name, const char *value);

/* Applies a config file: lines "name = value", blank lines and lines whose
 * first non-blank character is '#' ignored; a value may be "quoted". -1
 * with "FILE:LINE: name: ..." on the first bad line. */
int eg_serve_opts_load_file(eg_serve_opts *o, const char *path);

/* The whole command line (argv[0] is the command name): --config FILE
 * first, then every --name=value / --name value over it. 1 when --help
 * was given, 0 when the options are good, -1 with eg_errorf otherwise.
 * Runs eg_serve_opts_finish. */
int eg_serve_opts_parse(eg_serve_opts *o, int argc, char **argv);

/* Fills the computed defaults: db = $STATE_DIRECTORY/evograd.db when that
 * is set (its first folder), else ./var/evograd.db; checkpoint-dir = the
 * folder "checkpoints" next to the db. */
int eg_serve_opts_finish(eg_serve_opts *o);

/* Prints the options with their defaults and help. */
void eg_serve_opts_usage(FILE *f);

#endif
