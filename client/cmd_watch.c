/* `evogradctl watch ID [--interval S]`: follows a job until it ends,
 * polling GET /v1/jobs/ID and /v1/jobs/ID/steps?after=... every interval
 * (0.5 s by default), with a one-line progress display on stderr (redrawn
 * on a terminal, a line per tenth of the run otherwise), then prints the
 * outcome on stdout. Exit status: 0 succeeded, 1 failed, 3 canceled (2 or
 * 1 when the job or the server went away, 130 on Ctrl-C). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ctl_api.h"
#include "ctl_commands.h"
#include "ctl_fmt.h"
#include "ctl_url.h"
#include "util/err.h"

/* Connection failures in a row tolerated (a restarting server). */
#define MAX_CONN_FAILURES 20
/* Step pages fetched per poll while catching up. */
#define MAX_STEP_PAGES 8
/* Seconds between progress lines when stderr is not a terminal. */
#define PLAIN_EVERY_S 15.0

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct watch {
    ctl_conn *c;
    char job_path[128], steps_path[128];
    long long id;
    long long last_step;      /* last step row seen (-1: none) */
    ctl_progress p;
    char state[32];
    double t0;                /* when the rate's first sample was taken */
    long long step0;
    int tty, drawn;           /* a line is on the terminal, not ended */
    int last_tenth;
    char last_state[32];
    double last_line;         /* when the last plain line was written */
} watch;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sleeps s seconds unless interrupted. */
static void pause_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (!interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Takes a step row's values into the progress display. */
static void take_step(watch *w, const json_t *s)
{
    long long step;
    if (!json_is_object(s) || !ctl_json_int(s, "step", &step)) return;
    if (step > w->last_step) w->last_step = step;
    double v;
    w->p.train_loss = ctl_json_num(s, "train_loss", &v) ? v : NAN;
    w->p.meta_loss = ctl_json_num(s, "meta_loss", &v) ? v : NAN;
    w->p.lambda_norm = ctl_json_num(s, "lambda_norm", &v) ? v : NAN;
    const json_t *lambda = json_object_get(s, "lambda");
    w->p.n_lambda = 0;
    if (json_is_array(lambda) && json_array_size(lambda) <= 4) {
        size_t i;
        json_t *e;
        json_array_foreach(lambda, i, e) {
            if (!json_is_number(e)) {
                w->p.n_lambda = 0;
                break;
            }
            w->p.lambda[w->p.n_lambda++] = json_number_value(e);
        }
    }
}

/* Fetches the newest step rows (downsampled to the last one per page).
 * Failures leave the display as it was. */
static void poll_steps(watch *w)
{
    for (int page = 0; page < MAX_STEP_PAGES; page++) {
        char path[256];
        snprintf(path, sizeof path, "%s", w->steps_path);
        if ((w->last_step >= 0 &&
             ctl_query_add_ll(path, sizeof path, "after", w->last_step) != 0) ||
            ctl_query_add_ll(path, sizeof path, "max_points", 1) != 0)
            return;
        json_t *reply;
        long status;
        if (ctl_call(w->c, "GET", path, NULL, 0, &reply, &status, NULL) != 0) return;
        const json_t *steps = json_object_get(reply, "steps");
        size_t n = json_is_array(steps) ? json_array_size(steps) : 0;
        long long before = w->last_step, next;
        if (n) take_step(w, json_array_get(steps, n - 1));
        int more = ctl_json_int(reply, "next_after", &next) && w->last_step > before;
        json_decref(reply);
        if (!more) return;
    }
}

/* The job's state and progress, and its last step's losses where the
 * step log gave none. */
static void take_job(watch *w, const json_t *job)
{
    const char *state = ctl_json_str(job, "state", "?");
    ctl_sanitize(state, strlen(state), w->state, sizeof w->state);
    /* Shown as "canceling" until the worker sees the request. */
    if (strcmp(state, "running") == 0 && json_is_true(json_object_get(job, "cancel_requested")))
        snprintf(w->state, sizeof w->state, "canceling");
    w->p.state = w->state;
    long long v;
    if (ctl_json_int(job, "steps_done", &v))
        w->p.step = v;
    else if (w->last_step >= 0)
        w->p.step = w->last_step + 1;
    w->p.total = ctl_json_int(job, "total_steps", &v) ? v : 0;
    double x;
    if (!isfinite(w->p.train_loss) && ctl_json_num(job, "train_loss", &x)) w->p.train_loss = x;
    if (!isfinite(w->p.meta_loss) && ctl_json_num(job, "meta_loss", &x)) w->p.meta_loss = x;
}

static void update_rate(watch *w)
{
    double t = now_s();
    if (w->t0 == 0 || w->p.step < w->step0) {
        w->t0 = t;
        w->step0 = w->p.step;
        w->p.rate = NAN;
    } else if (t - w->t0 >= 1.0 && w->p.step > w->step0) {
        w->p.rate = (double)(w->p.step - w->step0) / (t - w->t0);
    }
}

static int term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

/* Shows the progress: redrawn in place on a terminal; otherwise a new
 * line when the state changes, at every tenth of the run, every
 * PLAIN_EVERY_S seconds, and when final. */
static void draw(watch *w, int final)
{
    char line[512];
    if (w->tty) {
        ctl_progress_line(&w->p, term_width(), line, sizeof line);
        fprintf(stderr, "\r%s\033[K", line);
        w->drawn = 1;
    } else {
        int tenth = w->p.total > 0 ? (int)(w->p.step * 10 / w->p.total) : -1;
        double t = now_s();
        if (!final && tenth == w->last_tenth && strcmp(w->state, w->last_state) == 0 &&
            t - w->last_line < PLAIN_EVERY_S)
            return;
        w->last_tenth = tenth;
        w->last_line = t;
        snprintf(w->last_state, sizeof w->last_state, "%s", w->state);
        ctl_progress_line(&w->p, 100, line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

static void end_line(watch *w)
{
    if (w->drawn) fputc('\n', stderr);
    w->drawn = 0;
}

/* The last evaluation, for a summary that lacks test figures. */
static json_t *last_eval(watch *w)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%lld/evals", w->id);
    json_t *reply;
    long status;
    if (ctl_call(w->c, "GET", path, NULL, 0, &reply, &status, NULL) != 0) return NULL;
    json_t *evals = json_object_get(reply, "evals");
    size_t n = json_is_array(evals) ? json_array_size(evals) : 0;
    json_t *ev = n ? json_incref(json_array_get(evals, n - 1)) : NULL;
    json_decref(reply);
    return ev;
}

/* Prints the outcome of a finished job. */
static void print_outcome(watch *w, const json_t *job)
{
    const json_t *sum = json_object_get(job, "summary");
    char buf[512], a[32], b[32];
    double x, y;
    long long steps = w->p.step;
    if (ctl_json_num(sum, "steps", &x)) steps = (long long)x;
    printf("job %lld %s after %lld step%s", w->id, w->state, steps, steps == 1 ? "" : "s");
    if (ctl_json_num(sum, "wall_s", &x)) {
        ctl_fmt_duration(x, a, sizeof a);
        printf(" in %s", a);
    }
    printf("\n");
    const char *err = ctl_json_str(job, "error", NULL);
    if (err && *err) {
        ctl_sanitize(err, strlen(err), buf, sizeof buf);
        printf("error: %s\n", buf);
    }
    json_t *ev = NULL;
    const json_t *figures = sum;
    if (!ctl_json_num(sum, "test_acc", &x) && !ctl_json_num(sum, "angle_deg", &x)) {
        ev = last_eval(w);
        figures = ev;
    }
    if (ctl_json_num(figures, "test_acc", &x)) printf("test accuracy: %.2f %%\n", x);
    if (ctl_json_num(figures, "test_loss", &x)) printf("test loss: %.4f\n", x);
    if (ctl_json_num(figures, "angle_deg", &x)) {
        printf("learned angle: %.2f°", x);
        if (ctl_json_num(sum, "true_angle_deg", &y)) printf(" (true %g°)", y);
        printf("\n");
    }
    if (ctl_json_num(figures, "w_clean", &x) && ctl_json_num(figures, "w_corrupted", &y))
        printf("mean sample weight: clean %.4f, corrupted %.4f\n", x, y);
    json_decref(ev);
    const json_t *lambda = json_object_get(sum, "lambda");
    if (json_is_array(lambda) && json_array_size(lambda) > 0 && json_array_size(lambda) <= 8 &&
        !ctl_json_num(sum, "angle_deg", &x)) {
        ctl_fmt_cell(lambda, 0, buf, sizeof buf);
        printf("lambda: %s\n", buf);
    }
    if (ctl_json_num(sum, "mean_step_ms", &x)) {
        ctl_fmt_num(x, a, sizeof a);
        printf("mean step: %s ms", a);
        if (ctl_json_num(sum, "mean_meta_ms", &y) && y > 0) {
            ctl_fmt_num(y, b, sizeof b);
            printf(" (meta %s ms)", b);
        }
        if (ctl_json_num(sum, "peak_mem_bytes", &y)) printf(", peak memory %.1f MiB",
                                                            y / (1024.0 * 1024.0));
        printf("\n");
    }
    fflush(stdout);
}

static int outcome_status(const char *state)
{
    if (strcmp(state, "succeeded") == 0) return CTL_EXIT_OK;
    if (strcmp(state, "canceled") == 0) return CTL_EXIT_CANCELED;
    return CTL_EXIT_FAIL;
}

static int finished(const char *state)
{
    return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "canceled") == 0;
}

/* The polling loop; returns the exit status. */
static int follow(watch *w, double interval)
{
    int conn_failures = 0;
    for (;;) {
        if (interrupted) {
            end_line(w);
            return 130;
        }
        json_t *job;
        long status;
        if (ctl_call(w->c, "GET", w->job_path, NULL, 0, &job, &status, NULL) != 0) {
            if (status == 0 && ++conn_failures <= MAX_CONN_FAILURES) {
                pause_s(interval);
                continue;
            }
            end_line(w);
            return ctl_fail(status);
        }
        conn_failures = 0;
        if (!json_is_object(job) || !ctl_json_str(job, "state", NULL)) {
            json_decref(job);
            end_line(w);
            eg_errorf("GET %s: the reply is not a job object with a state", w->job_path);
            return ctl_fail(0);
        }
        long long done;
        if (!ctl_json_int(job, "steps_done", &done) || done > w->last_step + 1) poll_steps(w);
        take_job(w, job);
        update_rate(w);
        int over = finished(w->state);
        draw(w, over);
        if (over) {
            end_line(w);
            print_outcome(w, job);
            json_decref(job);
            return outcome_status(w->state);
        }
        json_decref(job);
        pause_s(interval);
    }
}

int ctl_cmd_watch(ctl_conn *c, const ctl_opts *o)
{
    watch w = {.c = c, .last_step = -1, .last_tenth = -2, .tty = isatty(STDERR_FILENO)};
    w.p.train_loss = w.p.meta_loss = w.p.lambda_norm = w.p.rate = NAN;
    if (ctl_job_path(w.job_path, sizeof w.job_path, o->operands[0], "", &w.id) != 0 ||
        ctl_job_path(w.steps_path, sizeof w.steps_path, o->operands[0], "/steps", NULL) != 0)
        return ctl_fail(400);
    struct sigaction sa = {.sa_handler = on_interrupt}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int rc = follow(&w, o->interval_s > 0 ? o->interval_s : 0.5);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}
