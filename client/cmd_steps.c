/* `evogradctl steps ID [--after N] [--limit N] [--max-points N] [--csv]`:
 * a job's step log as a table or CSV. Without --max-points every page is
 * followed (next_after) up to --limit rows; with it, the one downsampled
 * page the server returns is shown. */
#include <stdio.h>
#include <string.h>

#include "ctl_api.h"
#include "ctl_commands.h"
#include "ctl_fmt.h"
#include "ctl_table.h"
#include "ctl_url.h"
#include "util/err.h"

#define PAGE 1000

static const char *const table_head[] = {"STEP",   "EPOCH",   "TRAIN_LOSS", "META_LOSS",
                                         "HYPER_NORM", "LAMBDA", "|LAMBDA|", "STEP_MS",
                                         "META_MS", "PEAK_MIB"};
static const char *const csv_head[] = {"step",        "epoch",   "train_loss", "meta_loss",
                                       "hyper_norm",  "lambda",  "lambda_norm", "w",
                                       "step_ms",     "meta_ms", "cur_bytes",  "peak_bytes"};
#define TABLE_COLS (int)(sizeof table_head / sizeof *table_head)
#define CSV_COLS (int)(sizeof csv_head / sizeof *csv_head)

static int add_csv_row(ctl_table *t, const json_t *s)
{
    char cells[CSV_COLS][512];
    const char *row[CSV_COLS];
    for (int i = 0; i < CSV_COLS; i++) {
        ctl_fmt_cell(json_object_get(s, csv_head[i]), 1, cells[i], sizeof cells[i]);
        row[i] = cells[i];
    }
    return ctl_table_row(t, row);
}

static int add_table_row(ctl_table *t, const json_t *s)
{
    static const char *const keys[] = {"step",   "epoch",  "train_loss", "meta_loss",
                                       "hyper_norm", NULL, "lambda_norm", "step_ms",
                                       "meta_ms", NULL};
    char cells[TABLE_COLS][128];
    const char *row[TABLE_COLS];
    for (int i = 0; i < TABLE_COLS; i++) {
        if (keys[i]) ctl_fmt_cell(json_object_get(s, keys[i]), 0, cells[i], sizeof cells[i]);
        row[i] = cells[i];
    }
    /* λ itself when it is short, else its size (the norm has a column). */
    const json_t *lambda = json_object_get(s, "lambda");
    if (json_is_array(lambda) && json_array_size(lambda) > 4)
        snprintf(cells[5], sizeof cells[5], "(%zu values)", json_array_size(lambda));
    else
        ctl_fmt_cell(lambda, 0, cells[5], sizeof cells[5]);
    double peak;
    if (ctl_json_num(s, "peak_bytes", &peak))
        snprintf(cells[9], sizeof cells[9], "%.1f", peak / (1024.0 * 1024.0));
    else
        snprintf(cells[9], sizeof cells[9], "-");
    return ctl_table_row(t, row);
}

int ctl_cmd_steps(ctl_conn *c, const ctl_opts *o)
{
    char base[128];
    if (ctl_job_path(base, sizeof base, o->operands[0], "/steps", NULL) != 0)
        return ctl_fail(400);
    ctl_table t;
    if (ctl_table_init(&t, stdout, o->csv, o->csv ? CSV_COLS : TABLE_COLS,
                       o->csv ? csv_head : table_head) != 0)
        return ctl_fail(0);
    long long after = o->after, shown = 0;
    int rc = CTL_EXIT_OK;
    for (;;) {
        char path[256];
        long long want = o->limit > 0 ? o->limit - shown : PAGE;
        snprintf(path, sizeof path, "%s", base);
        if ((after >= 0 && ctl_query_add_ll(path, sizeof path, "after", after) != 0) ||
            ctl_query_add_ll(path, sizeof path, "limit", want < PAGE ? want : PAGE) != 0 ||
            (o->max_points > 0 &&
             ctl_query_add_ll(path, sizeof path, "max_points", o->max_points) != 0)) {
            rc = ctl_fail(400);
            break;
        }
        json_t *page, *steps;
        if ((rc = ctl_get_page(c, path, "steps", &page, &steps)) != 0) break;
        size_t i;
        json_t *s;
        json_array_foreach(steps, i, s) {
            if (o->limit > 0 && shown >= o->limit) break;
            if (!json_is_object(s)) continue;
            if ((o->csv ? add_csv_row(&t, s) : add_table_row(&t, s)) != 0) break;
            shown++;
        }
        long long next;
        int more = o->max_points == 0 && ctl_json_int(page, "next_after", &next) &&
                   next > after && json_array_size(steps) > 0 &&
                   !(o->limit > 0 && shown >= o->limit);
        json_decref(page);
        if (!more) break;
        after = next;
    }
    int print = rc == CTL_EXIT_OK || shown > 0;
    if (ctl_table_finish(&t, print) != 0 && rc == CTL_EXIT_OK) rc = ctl_fail(0);
    return rc;
}
