/* `evogradd run JOB.json`: one meta-learning job (schema/job.schema.json)
 * in the foreground. Progress goes to stderr (a redrawn bar on a terminal,
 * plain lines otherwise), one JSON summary line to stdout. Exit status: 0
 * when the job ran, 1 when it failed or was interrupted, 2 for a bad
 * command line or job spec. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "meta/job.h"
#include "meta/loop.h"
#include "meta/summary.h"
#include "nn/device.h"
#include "tasks/tasks.h"
#include "util/log.h"
#include "util/json_num.h"

/* Largest job spec read, as the daemon caps request bodies. */
#define SPEC_MAX_BYTES (1 << 20)
#define MAX_SETS 64

typedef struct run_opts {
    const char *spec_path;     /* "-" = stdin */
    const char *sets[MAX_SETS];
    int n_sets;
    const char *steps;         /* --steps, applied after the --set overrides */
} run_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: evogradd run JOB.json [options]\n"
            "  JOB.json            a job spec (schema/job.schema.json); - reads stdin\n"
            "  --set FIELD=VALUE   override a field, e.g. --set evograd.k=4\n"
            "                      --set optimizer.kind=sgd --set dataset.path=/data;\n"
            "                      VALUE is JSON when it parses, else a string;\n"
            "                      null restores the default (repeatable)\n"
            "  --steps N           run N steps (the same as --set steps=N)\n"
            "Progress goes to stderr, one JSON summary line to stdout.\n");
}

/* 1 when --help was asked for, 0 to go on, -1 for a bad command line. */
static int parse_args(int argc, char **argv, run_opts *o)
{
    static const struct option longs[] = {
        {"set", 1, 0, 's'}, {"steps", 1, 0, 'n'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *o = (run_opts){0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 's':
            if (o->n_sets == MAX_SETS) return eg_errorf("at most %d --set overrides", MAX_SETS);
            o->sets[o->n_sets++] = optarg;
            break;
        case 'n': o->steps = optarg; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return eg_errorf("bad command line");
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return eg_errorf("no job spec given");
    }
    if (optind + 1 < argc) return eg_errorf("unexpected argument \"%s\"", argv[optind + 1]);
    o->spec_path = argv[optind];
    return 0;
}

/* Reads all of f (at most SPEC_MAX_BYTES) into a new buffer. */
static char *read_all(FILE *f, const char *name, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        if (cap >= SPEC_MAX_BYTES) {
            free(buf);
            eg_errorf("%s: a job spec is at most %d bytes", name, SPEC_MAX_BYTES);
            return NULL;
        }
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) free(buf);
        buf = bigger;
        cap *= 2;
    }
    if (!buf) {
        eg_errorf("%s: out of memory", name);
        return NULL;
    }
    if (ferror(f)) {
        free(buf);
        eg_errorf("%s: read error", name);
        return NULL;
    }
    *len = n;
    return buf;
}

/* The spec file with the command line's overrides, validated into *job. */
static int load_job(const run_opts *o, eg_job *job)
{
    int from_stdin = strcmp(o->spec_path, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(o->spec_path, "rb");
    if (!f) return eg_errorf("%s: cannot open", o->spec_path);
    size_t len = 0;
    char *text = read_all(f, from_stdin ? "stdin" : o->spec_path, &len);
    if (!from_stdin) fclose(f);
    if (!text) return -1;
    json_t *spec = eg_job_json_load(text, len);
    free(text);
    if (!spec) {
        char why[512];
        snprintf(why, sizeof why, "%s", eg_last_error());
        return eg_errorf("%s: %s", from_stdin ? "stdin" : o->spec_path, why);
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < o->n_sets; i++) rc = eg_job_set(spec, o->sets[i]);
    if (rc == 0 && o->steps) {
        char set[64];
        snprintf(set, sizeof set, "steps=%.40s", o->steps);
        rc = eg_job_set(spec, set);
    }
    if (rc == 0) rc = eg_job_from_json(spec, job);
    json_decref(spec);
    return rc;
}

/* ---- progress ---- */

typedef struct progress {
    long total;
    int tty;
    long every;             /* plain lines: one per `every` steps */
    double last_draw_ms;
    eg_step_record last;    /* the last step's record */
    int have_last;
} progress;

static void lambda_text(const eg_step_record *r, char *buf, size_t cap)
{
    if (r->n_lambda == 1) snprintf(buf, cap, "lambda %.5g", (double)r->lambda[0]);
    else snprintf(buf, cap, "|lambda| %.5g", r->lambda_norm);
}

static int on_step(void *ctx, const eg_step_record *r)
{
    progress *p = ctx;
    p->last = *r;
    p->have_last = 1;
    long done = r->step + 1;
    int last = done == p->total;
    char lam[64], meta[48] = "";
    lambda_text(r, lam, sizeof lam);
    if (!isnan(r->meta_loss)) snprintf(meta, sizeof meta, "  meta %.4f", r->meta_loss);
    if (p->tty) {
        double now = eg_now_ms();
        if (!last && now - p->last_draw_ms < 100) return 0;
        p->last_draw_ms = now;
        enum { WIDTH = 24 };
        char bar[WIDTH + 1];
        int fill = (int)((double)WIDTH * done / p->total);
        for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
        bar[WIDTH] = '\0';
        fprintf(stderr, "\r\033[K[%s] %ld/%ld  loss %.4f%s  %s  %.1f ms/step", bar, done,
                p->total, r->train_loss, meta, lam, r->step_ms);
        if (last) fputc('\n', stderr);
    } else if (done % p->every == 0 || last) {
        fprintf(stderr, "step %ld/%ld epoch %ld loss %.4f%s %s %.1f ms/step\n", done, p->total,
                r->epoch + 1, r->train_loss, meta, lam, r->step_ms);
    }
    return 0;
}

static int on_eval(void *ctx, long step, const eg_eval *ev)
{
    progress *p = ctx;
    char line[256];
    int n = snprintf(line, sizeof line, "eval at step %ld/%ld:", step + 1, p->total);
    struct { const char *fmt; double v; } parts[] = {
        {" test_acc %.2f%%", ev->test_acc},       {" ± %.2f", ev->test_acc_ci95},
        {" test_loss %.4f", ev->test_loss},        {" dev_f1 %.2f", ev->dev_f1},
        {" test_f1 %.2f", ev->test_f1},
        {" angle %.3f deg", ev->angle_deg},        {" w_corrupted %.4f", ev->w_corrupted},
        {" w_clean %.4f", ev->w_clean},
    };
    for (size_t i = 0; i < sizeof parts / sizeof *parts && n < (int)sizeof line; i++)
        if (!isnan(parts[i].v))
            n += snprintf(line + n, sizeof line - n, parts[i].fmt, parts[i].v);
    fprintf(stderr, "%s%s\n", p->tty ? "\r\033[K" : "", line);
    return 0;
}

/* ---- the run ---- */

static volatile int cancel_requested; /* set by SIGINT / SIGTERM */

static void on_signal(int sig)
{
    (void)sig;
    cancel_requested = 1;
}

/* Prints the summary line; -1 when it cannot be built or the task's report
 * fails. */
static int print_summary(const eg_job *job, eg_task *t, const progress *p,
                         const eg_loop_result *res, double wall_ms)
{
    eg_summary_input in = {
        .job = job, .t = t, .last = p->have_last ? &p->last : NULL, .ev = &res->last_eval,
        .steps = res->steps, .canceled = res->canceled, .mean_step_ms = res->mean_step_ms,
        .mean_meta_ms = res->mean_meta_ms, .peak_bytes = res->peak_bytes, .wall_ms = wall_ms,
    };
    json_t *s = eg_summary(&in);
    if (!s) return -1;
    char *text = eg_json_dumps(s, JSON_COMPACT);
    json_decref(s);
    if (!text) return eg_errorf("summary: out of memory");
    puts(text);
    fflush(stdout);
    free(text);
    return 0;
}

/* Runs the job; 0 when every step ran and the summary was printed. */
static int run_job(eg_job *job, eg_backend *be)
{
    double t0 = eg_now_ms();
    eg_task *t = NULL;
    if (eg_task_create(job, be, &t) != 0) return -1;
    long total = eg_task_total_steps(job, t);
    int rc = -1;
    if (total <= 0) {
        eg_errorf("the job has no steps (epochs %d x %ld steps per epoch)", job->epochs,
                  t->steps_per_epoch);
        goto out;
    }
    progress p = {.total = total, .tty = isatty(STDERR_FILENO)};
    p.every = total / 20 > 0 ? total / 20 : 1;
    eg_loop_sink sink = {.step = on_step, .eval = on_eval, .ctx = &p};
    eg_loop_config cfg = eg_task_loop_config(job, t);
    cfg.cancel = &cancel_requested;
    EG_LOG(INFO, "run: %s with %s on %s: %ld steps, %zu parameters, %zu meta-parameters",
           job->task->name, eg_method_name(job->method), job->device, total, t->P,
           t->H);
    eg_loop_result res;
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    cancel_requested = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    rc = eg_loop_run(t, &cfg, &sink, &res);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (p.tty && p.have_last && p.last.step + 1 < total) fputc('\n', stderr);
    if (rc != 0) goto out;
    if (print_summary(job, t, &p, &res, eg_now_ms() - t0) != 0) {
        rc = -1;
        goto out;
    }
    if (res.canceled) rc = eg_errorf("interrupted after %ld of %ld steps", res.steps, total);
out:
    eg_task_destroy(t);
    return rc;
}

int eg_cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc > 0) return 0;
    eg_job job;
    if (rc != 0 || load_job(&o, &job) != 0) {
        EG_LOG(ERROR, "run: %s", eg_last_error());
        return 2;
    }
    eg_backend *be = eg_device_open(job.device, &(eg_device_options){.tf32 = job.tf32},
                                    job.device, sizeof job.device);
    if (!be) {
        EG_LOG(ERROR, "run: job failed: %s", eg_last_error());
        return 1;
    }
    rc = run_job(&job, be);
    if (rc != 0) EG_LOG(ERROR, "run: job failed: %s", eg_last_error());
    be->destroy(be);
    return rc == 0 ? 0 : 1;
}
