/* `evogradctl sweep ...`: submit a sweep (a base spec and a grid), list
 * sweeps, show one's aggregate as the paper's tables give it ("87.74 ±
 * 0.54"; --csv, --markdown), watch one to its end, cancel or delete a whole
 * sweep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_api.h"
#include "ctl_commands.h"
#include "ctl_fmt.h"
#include "ctl_table.h"
#include "ctl_url.h"
#include "util/err.h"

/* /v1/sweeps/ID + suffix; -1 (after eg_errorf) for a bad id. */
static int sweep_path(char *buf, size_t size, const char *id_text, const char *suffix,
                      long long *id)
{
    return ctl_id_path(buf, size, "/v1/sweeps", id_text, suffix, id);
}

static json_t *get_sweep(ctl_conn *c, const char *path, long *status)
{
    json_t *sw = NULL;
    if (ctl_call(c, "GET", path, NULL, 0, &sw, status, NULL) != 0) return NULL;
    if (!json_is_object(sw)) {
        json_decref(sw);
        eg_errorf("GET %s: the server's reply is not a sweep", path);
        *status = 0;
        return NULL;
    }
    return sw;
}

static long long count_of(const json_t *sw, const char *state)
{
    long long n = 0;
    ctl_json_int(json_object_get(sw, "counts"), state, &n);
    return n;
}

/* "12 jobs: 7 succeeded, 1 failed, 2 running, 2 queued" (zeros left out). */
static void counts_text(const json_t *sw, char *out, size_t cap)
{
    static const char *const states[] = {"succeeded", "failed", "canceled", "running",
                                         "queued"};
    long long total = 0;
    ctl_json_int(sw, "jobs_total", &total);
    size_t n = (size_t)snprintf(out, cap, "%lld jobs", total);
    int first = 1;
    for (int i = 0; i < 5 && n < cap; i++) {
        long long k = count_of(sw, states[i]);
        if (k == 0) continue;
        n += (size_t)snprintf(out + n, cap - n, "%s%lld %s", first ? ": " : ", ", k, states[i]);
        first = 0;
    }
}

static int cmd_submit(ctl_conn *c, const ctl_opts *o, const char *name)
{
    size_t len = 0;
    char *body = ctl_read_named(name, &len);
    if (!body) return ctl_fail(400);
    json_t *sw = NULL;
    long status;
    int rc = ctl_call(c, "POST", "/v1/sweeps", body, len, &sw, &status, NULL);
    free(body);
    if (rc != 0) return ctl_fail(status);
    long long id = 0;
    if (!ctl_json_int(sw, "id", &id) || id <= 0) {
        json_decref(sw);
        eg_errorf("the server's reply names no sweep id");
        return ctl_fail(0);
    }
    char counts[256];
    counts_text(sw, counts, sizeof counts);
    if (o->quiet) printf("%lld\n", id);
    else printf("sweep %lld: %s\n", id, counts);
    json_decref(sw);
    return CTL_EXIT_OK;
}

static int cmd_list(ctl_conn *c, const ctl_opts *o)
{
    enum { NCOLS = 7 };
    static const char *const head[NCOLS] = {"ID",     "NAME",   "STATE",   "JOBS",
                                            "SUCCEEDED", "FAILED", "CREATED"};
    ctl_table t;
    if (ctl_table_init(&t, stdout, o->markdown ? CTL_TABLE_MARKDOWN : o->csv, NCOLS, head) != 0)
        return ctl_fail(0);
    long long after = o->after >= 0 ? o->after : 0, shown = 0;
    int rc = CTL_EXIT_OK;
    for (;;) {
        char path[128];
        snprintf(path, sizeof path, "/v1/sweeps?after=%lld&limit=%lld", after,
                 o->limit > 0 && o->limit - shown < 1000 ? o->limit - shown : 1000);
        json_t *page, *items;
        if ((rc = ctl_get_page(c, path, "sweeps", &page, &items)) != CTL_EXIT_OK) break;
        size_t i;
        json_t *sw;
        json_array_foreach(items, i, sw) {
            char cells[NCOLS][128];
            long long id = 0, total = 0;
            ctl_json_int(sw, "id", &id);
            ctl_json_int(sw, "jobs_total", &total);
            snprintf(cells[0], sizeof cells[0], "%lld", id);
            const char *name = ctl_json_str(sw, "name", "-");
            ctl_sanitize(name, strlen(name), cells[1], sizeof cells[1]);
            const char *state = ctl_json_str(sw, "state", "-");
            ctl_sanitize(state, strlen(state), cells[2], sizeof cells[2]);
            snprintf(cells[3], sizeof cells[3], "%lld", total);
            snprintf(cells[4], sizeof cells[4], "%lld", count_of(sw, "succeeded"));
            snprintf(cells[5], sizeof cells[5], "%lld", count_of(sw, "failed"));
            const char *created = ctl_json_str(sw, "created_at", "-");
            ctl_sanitize(created, strlen(created), cells[6], sizeof cells[6]);
            const char *row[NCOLS];
            for (int k = 0; k < NCOLS; k++) row[k] = cells[k];
            ctl_table_row(&t, row);
            shown++;
        }
        json_t *next = json_object_get(page, "next_after");
        int more = json_is_integer(next) && (o->limit <= 0 || shown < o->limit);
        if (more) after = json_integer_value(next);
        json_decref(page);
        if (!more) break;
    }
    if (ctl_table_finish(&t, rc == CTL_EXIT_OK) != 0 && rc == CTL_EXIT_OK) rc = ctl_fail(0);
    return rc;
}

/* Metrics in the order a reader looks for them; others follow as the
 * aggregate lists them. */
static const char *const preferred[] = {"test_acc", "angle_deg", "w_corrupted", "w_clean",
                                        "mean_step_ms", "mean_meta_ms", "peak_mem_bytes"};
#define N_PREFERRED (sizeof preferred / sizeof *preferred)

/* The column names: the grid's keys (seed left out), then "n", then the
 * metrics any entry has. */
static int columns_of(const json_t *agg, const char **keys, int *n_keys, const char **metrics,
                      int *n_metrics, int cap)
{
    *n_keys = *n_metrics = 0;
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)agg, i, e) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(e, "point"), k, v) {
            int seen = 0;
            for (int j = 0; j < *n_keys; j++) seen |= strcmp(keys[j], k) == 0;
            if (!seen && *n_keys < cap) keys[(*n_keys)++] = k;
        }
    }
    for (int pass = 0; pass < 2; pass++)
        json_array_foreach((json_t *)agg, i, e) {
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(e, "metrics"), k, v) {
                int pref = 0, seen = 0;
                for (size_t j = 0; j < N_PREFERRED; j++) pref |= strcmp(preferred[j], k) == 0;
                if (pref != (pass == 0)) continue;
                for (int j = 0; j < *n_metrics; j++) seen |= strcmp(metrics[j], k) == 0;
                if (!seen && *n_metrics < cap) metrics[(*n_metrics)++] = k;
            }
        }
    /* The preferred ones in their own order. */
    int m = 0;
    for (size_t j = 0; j < N_PREFERRED; j++)
        for (int k = m; k < *n_metrics; k++)
            if (strcmp(metrics[k], preferred[j]) == 0) {
                const char *tmp = metrics[m];
                metrics[m++] = metrics[k];
                metrics[k] = tmp;
            }
    return 0;
}

static int cmd_show(ctl_conn *c, const ctl_opts *o, const char *id_text)
{
    char path[128];
    long long id;
    if (sweep_path(path, sizeof path, id_text, "", &id) != 0) return ctl_fail(400);
    long status;
    json_t *sw = get_sweep(c, path, &status);
    if (!sw) return ctl_fail(status);
    if (!o->csv) {
        char counts[256], name[256] = "";
        counts_text(sw, counts, sizeof counts);
        const char *nm = ctl_json_str(sw, "name", NULL);
        if (nm) ctl_sanitize(nm, strlen(nm), name, sizeof name);
        char state[32];
        const char *st = ctl_json_str(sw, "state", "?");
        ctl_sanitize(st, strlen(st), state, sizeof state);
        const char *bold = o->markdown ? "**" : "";
        printf("%ssweep %lld%s%s%s: %s, %s\n\n", bold, id, *name ? " " : "", name, bold, state,
               counts);
    }
    const json_t *agg = json_object_get(sw, "aggregate");
    enum { CAP = 24 };
    const char *keys[CAP], *metrics[CAP];
    int nk, nm;
    columns_of(agg, keys, &nk, metrics, &nm, CAP);
    if (nk + 1 + nm * (o->csv ? 2 : 1) > CTL_TABLE_MAX_COLS) nm = (CTL_TABLE_MAX_COLS - nk - 1) / (o->csv ? 2 : 1);
    const char *head[CTL_TABLE_MAX_COLS];
    char names[CTL_TABLE_MAX_COLS][80];
    int nc = 0;
    for (int i = 0; i < nk; i++) head[nc++] = keys[i];
    head[nc++] = "n";
    for (int i = 0; i < nm; i++) {
        if (o->csv) {
            snprintf(names[nc], sizeof names[nc], "%s_mean", metrics[i]);
            head[nc] = names[nc];
            nc++;
            snprintf(names[nc], sizeof names[nc], "%s_std", metrics[i]);
            head[nc] = names[nc];
            nc++;
        } else {
            head[nc++] = metrics[i];
        }
    }
    ctl_table t;
    if (ctl_table_init(&t, stdout, o->markdown ? CTL_TABLE_MARKDOWN : o->csv, nc, head) != 0) {
        json_decref(sw);
        return ctl_fail(0);
    }
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)agg, i, e) {
        char cells[CTL_TABLE_MAX_COLS][96];
        const char *row[CTL_TABLE_MAX_COLS];
        int k = 0;
        for (int j = 0; j < nk; j++, k++) {
            json_t *v = json_object_get(json_object_get(e, "point"), keys[j]);
            if (json_is_string(v))
                ctl_sanitize(json_string_value(v), json_string_length(v), cells[k],
                             sizeof cells[k]);
            else
                ctl_fmt_cell(v, 1, cells[k], sizeof cells[k]);
        }
        long long ok = 0, jobs = 0;
        ctl_json_int(e, "succeeded", &ok);
        ctl_json_int(e, "jobs", &jobs);
        if (o->csv || ok == jobs) snprintf(cells[k++], sizeof cells[0], "%lld", ok);
        else snprintf(cells[k++], sizeof cells[0], "%lld/%lld", ok, jobs);
        for (int j = 0; j < nm; j++) {
            const json_t *m = json_object_get(json_object_get(e, "metrics"), metrics[j]);
            double mean, std;
            int have = ctl_json_num(m, "mean", &mean) && ctl_json_num(m, "std", &std);
            if (o->csv) {
                ctl_fmt_cell(have ? json_object_get(m, "mean") : NULL, 1, cells[k], 96);
                k++;
                ctl_fmt_cell(have ? json_object_get(m, "std") : NULL, 1, cells[k], 96);
                k++;
            } else if (have) {
                ctl_fmt_mean_std(mean, std, cells[k++], 96);
            } else {
                snprintf(cells[k++], 96, "-");
            }
        }
        for (int j = 0; j < nc; j++) row[j] = cells[j];
        ctl_table_row(&t, row);
    }
    int rc = ctl_table_finish(&t, 1) == 0 ? CTL_EXIT_OK : ctl_fail(0);
    json_decref(sw);
    return rc;
}

static int cmd_watch(ctl_conn *c, const ctl_opts *o, const char *id_text)
{
    char path[128];
    long long id;
    if (sweep_path(path, sizeof path, id_text, "", &id) != 0) return ctl_fail(400);
    char last[300] = "";
    for (;;) {
        long status;
        json_t *sw = get_sweep(c, path, &status);
        if (!sw) return ctl_fail(status);
        char counts[256], line[300];
        counts_text(sw, counts, sizeof counts);
        const char *state = ctl_json_str(sw, "state", "?");
        char st[32];
        ctl_sanitize(state, strlen(state), st, sizeof st);
        snprintf(line, sizeof line, "sweep %lld %s: %s", id, st, counts);
        if (strcmp(line, last) != 0) {
            printf("%s\n", line);
            fflush(stdout);
            snprintf(last, sizeof last, "%s", line);
        }
        int done = strcmp(st, "succeeded") == 0 ? CTL_EXIT_OK
                   : strcmp(st, "failed") == 0  ? CTL_EXIT_FAIL
                   : strcmp(st, "canceled") == 0 ? CTL_EXIT_CANCELED
                                                 : -1;
        json_decref(sw);
        if (done >= 0) return done;
        usleep((useconds_t)(o->interval_s * 1e6));
    }
}

static int cmd_cancel_delete(ctl_conn *c, const char *id_text, int delete)
{
    char path[128];
    long long id;
    if (sweep_path(path, sizeof path, id_text, delete ? "" : "/cancel", &id) != 0)
        return ctl_fail(400);
    json_t *reply = NULL;
    long status;
    if (ctl_call(c, delete ? "DELETE" : "POST", path, NULL, 0, &reply, &status, NULL) != 0)
        return ctl_fail(status);
    if (delete) {
        printf("sweep %lld deleted with its jobs\n", id);
    } else {
        char counts[256];
        counts_text(reply, counts, sizeof counts);
        printf("sweep %lld: cancel requested (%s)\n", id, counts);
    }
    json_decref(reply);
    return CTL_EXIT_OK;
}

int ctl_cmd_sweep(ctl_conn *c, const ctl_opts *o)
{
    static const struct {
        const char *name;
        int operands;
        unsigned options;
    } subs[] = {
        {"submit", 1, CTL_OPT_QUIET},
        {"list", 0, CTL_OPT_AFTER | CTL_OPT_LIMIT | CTL_OPT_CSV | CTL_OPT_MARKDOWN},
        {"show", 1, CTL_OPT_CSV | CTL_OPT_MARKDOWN},
        {"watch", 1, CTL_OPT_INTERVAL},
        {"cancel", 1, 0},
        {"delete", 1, 0},
    };
    const char *sub = o->n_operands > 0 ? o->operands[0] : "";
    size_t k = 0;
    while (k < sizeof subs / sizeof *subs && strcmp(subs[k].name, sub) != 0) k++;
    if (k == sizeof subs / sizeof *subs || o->n_operands != subs[k].operands + 1) {
        fprintf(stderr, "usage: evogradctl sweep submit FILE|- [-q] | list [--csv|--markdown] | "
                        "show ID [--csv|--markdown] | watch ID | cancel ID | delete ID\n");
        return CTL_EXIT_CLIENT;
    }
    if (o->given & ~subs[k].options) {
        fprintf(stderr, "evogradctl: sweep %s does not take one of the options given\n", sub);
        return CTL_EXIT_CLIENT;
    }
    const char *arg = o->n_operands > 1 ? o->operands[1] : NULL;
    switch (k) {
    case 0: return cmd_submit(c, o, arg);
    case 1: return cmd_list(c, o);
    case 2: return cmd_show(c, o, arg);
    case 3: return cmd_watch(c, o, arg);
    default: return cmd_cancel_delete(c, arg, k == 5);
    }
}
