/* `evogradctl list [--state S] [--after ID] [--limit N] [--csv]`: the
 * jobs as a table, following the server's pages (next_after). */
#include <stdio.h>
#include <string.h>

#include "ctl_api.h"
#include "ctl_commands.h"
#include "ctl_fmt.h"
#include "ctl_table.h"
#include "ctl_url.h"
#include "util/err.h"

#define PAGE 100

static const char *const head[] = {"ID",    "STATE",   "TASK",    "METHOD",
                                   "DEVICE", "STEPS", "CREATED", "FINISHED"};
#define NCOLS (int)(sizeof head / sizeof *head)

/* Adds one job object as a row. */
static int add_job(ctl_table *t, const json_t *job, int csv)
{
    static const char *const keys[] = {"id",   "state", "task", "method", "device", NULL,
                                       "created_at", "finished_at"};
    char cells[NCOLS][128];
    const char *row[NCOLS];
    for (int i = 0; i < NCOLS; i++) {
        if (keys[i])
            ctl_fmt_cell(json_object_get(job, keys[i]), csv, cells[i], sizeof cells[i]);
        row[i] = cells[i];
    }
    char done[48], total[48];
    ctl_fmt_cell(json_object_get(job, "steps_done"), 0, done, sizeof done);
    /* A total of 0 means not known yet. */
    long long n;
    if (ctl_json_int(job, "total_steps", &n) && n <= 0)
        snprintf(total, sizeof total, "-");
    else
        ctl_fmt_cell(json_object_get(job, "total_steps"), 0, total, sizeof total);
    snprintf(cells[5], sizeof cells[5], "%s/%s", done, total);
    return ctl_table_row(t, row);
}

int ctl_cmd_list(ctl_conn *c, const ctl_opts *o)
{
    ctl_table t;
    if (ctl_table_init(&t, stdout, o->csv, NCOLS, head) != 0) return ctl_fail(0);
    long long after = o->after, shown = 0;
    int rc = CTL_EXIT_OK;
    for (;;) {
        long long want = o->limit > 0 ? o->limit - shown : PAGE;
        char path[256] = "/v1/jobs";
        if ((o->state && ctl_query_add(path, sizeof path, "state", o->state) != 0) ||
            (after >= 0 && ctl_query_add_ll(path, sizeof path, "after", after) != 0) ||
            ctl_query_add_ll(path, sizeof path, "limit", want < PAGE ? want : PAGE) != 0) {
            rc = ctl_fail(400);
            break;
        }
        json_t *page, *jobs;
        if ((rc = ctl_get_page(c, path, "jobs", &page, &jobs)) != 0) break;
        size_t i;
        json_t *job;
        json_array_foreach(jobs, i, job) {
            if (o->limit > 0 && shown >= o->limit) break;
            if (!json_is_object(job)) continue;
            if (add_job(&t, job, o->csv) != 0) break;
            shown++;
        }
        /* Follow the next page only while it moves forward. */
        long long next;
        int more = ctl_json_int(page, "next_after", &next) && next > after &&
                   json_array_size(jobs) > 0 && !(o->limit > 0 && shown >= o->limit);
        json_decref(page);
        if (!more) break;
        after = next;
    }
    int print = rc == CTL_EXIT_OK || shown > 0;
    if (ctl_table_finish(&t, print) != 0 && rc == CTL_EXIT_OK) rc = ctl_fail(0);
    return rc;
}
