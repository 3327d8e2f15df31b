/* `evogradctl devices [--csv]`: the devices the daemon runs jobs on, with
 * each GPU's model, compute capability and memory (total and free now, in
 * MiB), or the CPU's threads and RAM. */
#include <stdio.h>

#include "ctl_api.h"
#include "ctl_commands.h"
#include "ctl_fmt.h"
#include "ctl_table.h"

static const char *const head[] = {"NAME", "KIND", "MODEL", "CC", "THREADS", "MEMORY_MIB",
                                   "FREE_MIB"};
#define NCOLS (int)(sizeof head / sizeof *head)

/* obj[key] (bytes) in MiB into out; absent: "-" ("" in CSV). */
static void mib(const json_t *obj, const char *key, int csv, char *out, size_t size)
{
    double bytes;
    if (ctl_json_num(obj, key, &bytes)) snprintf(out, size, "%.0f", bytes / 1048576.0);
    else snprintf(out, size, "%s", csv ? "" : "-");
}

int ctl_cmd_devices(ctl_conn *c, const ctl_opts *o)
{
    json_t *list = NULL;
    long status = 0;
    if (ctl_call(c, "GET", "/v1/devices", NULL, 0, &list, &status, NULL) != 0)
        return ctl_fail(status);
    ctl_table t;
    if (ctl_table_init(&t, stdout, o->csv, NCOLS, head) != 0) {
        json_decref(list);
        return ctl_fail(0);
    }
    size_t i;
    json_t *dev;
    json_array_foreach(list, i, dev) {
        if (!json_is_object(dev)) continue;
        char cells[NCOLS][128];
        const char *row[NCOLS];
        static const char *const keys[] = {"name", "kind", "model", "compute_capability",
                                           "threads"};
        for (int k = 0; k < 5; k++)
            ctl_fmt_cell(json_object_get(dev, keys[k]), o->csv, cells[k], sizeof cells[k]);
        mib(dev, "memory_bytes", o->csv, cells[5], sizeof cells[5]);
        mib(dev, "free_bytes", o->csv, cells[6], sizeof cells[6]);
        for (int k = 0; k < NCOLS; k++) row[k] = cells[k];
        if (ctl_table_row(&t, row) != 0) break;
    }
    json_decref(list);
    return ctl_table_finish(&t, 1) == 0 ? CTL_EXIT_OK : ctl_fail(0);
}
