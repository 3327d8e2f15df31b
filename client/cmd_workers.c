/* `evogradctl workers [--csv]`: the daemons that run jobs from the
 * daemon's store (every box's, with a shared PostgreSQL store), with their
 * devices, whether they are alive, their last heartbeat and the jobs they
 * run now. */
#include <stdio.h>
#include <string.h>

#include "ctl_api.h"
#include "ctl_commands.h"
#include "ctl_fmt.h"
#include "ctl_table.h"

static const char *const head[] = {"NAME",  "HOST",           "LISTEN", "DEVICES",
                                   "ALIVE", "LAST_HEARTBEAT", "RUNNING"};
#define NCOLS (int)(sizeof head / sizeof *head)

/* The array's items as cells joined by sep ("-" or "" when empty). */
static void join(const json_t *arr, const char *sep, int csv, char *out, size_t size)
{
    size_t n = 0, i;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        char cell[64];
        ctl_fmt_cell(v, csv, cell, sizeof cell);
        int m = snprintf(out + n, size - n, "%s%s", i ? sep : "", cell);
        if (m < 0 || (size_t)m >= size - n) break;
        n += (size_t)m;
    }
    if (!out[0]) snprintf(out, size, "%s", csv ? "" : "-");
}

int ctl_cmd_workers(ctl_conn *c, const ctl_opts *o)
{
    json_t *body = NULL;
    long status = 0;
    if (ctl_call(c, "GET", "/v1/workers", NULL, 0, &body, &status, NULL) != 0)
        return ctl_fail(status);
    ctl_table t;
    if (ctl_table_init(&t, stdout, o->csv, NCOLS, head) != 0) {
        json_decref(body);
        return ctl_fail(0);
    }
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(body, "workers"), i, w)
    {
        if (!json_is_object(w)) continue;
        char cells[NCOLS][256];
        const char *row[NCOLS];
        ctl_fmt_cell(json_object_get(w, "name"), o->csv, cells[0], sizeof cells[0]);
        ctl_fmt_cell(json_object_get(w, "host"), o->csv, cells[1], sizeof cells[1]);
        ctl_fmt_cell(json_object_get(w, "listen"), o->csv, cells[2], sizeof cells[2]);
        join(json_object_get(w, "devices"), o->csv ? ";" : ",", o->csv, cells[3], sizeof cells[3]);
        snprintf(cells[4], sizeof cells[4], "%s",
                 json_is_true(json_object_get(w, "alive")) ? "yes" : "no");
        ctl_fmt_cell(json_object_get(w, "last_heartbeat"), o->csv, cells[5], sizeof cells[5]);
        join(json_object_get(w, "running"), o->csv ? ";" : ",", o->csv, cells[6], sizeof cells[6]);
        for (int k = 0; k < NCOLS; k++) row[k] = cells[k];
        if (ctl_table_row(&t, row) != 0) break;
    }
    json_decref(body);
    return ctl_table_finish(&t, 1) == 0 ? CTL_EXIT_OK : ctl_fail(0);
}
