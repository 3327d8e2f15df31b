/* The one-request commands on a single job: `show ID` (the job object as
 * indented JSON), `cancel ID` and `delete ID`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_api.h"
#include "ctl_commands.h"
#include "ctl_fmt.h"
#include "ctl_url.h"
#include "util/err.h"

int ctl_cmd_show(ctl_conn *c, const ctl_opts *o)
{
    char path[128];
    if (ctl_job_path(path, sizeof path, o->operands[0], "", NULL) != 0) return ctl_fail(400);
    json_t *job;
    long status;
    if (ctl_call(c, "GET", path, NULL, 0, &job, &status, NULL) != 0) return ctl_fail(status);
    if (!job) {
        eg_errorf("GET %s: the server's reply is empty", path);
        return ctl_fail(0);
    }
    /* jansson escapes control characters, so the dump is safe to print. */
    int rc = json_dumpf(job, stdout, JSON_INDENT(2)) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    putchar('\n');
    json_decref(job);
    return rc;
}

int ctl_cmd_cancel(ctl_conn *c, const ctl_opts *o)
{
    char path[128];
    long long id;
    if (ctl_job_path(path, sizeof path, o->operands[0], "/cancel", &id) != 0)
        return ctl_fail(400);
    json_t *reply;
    long status;
    if (ctl_call(c, "POST", path, NULL, 0, &reply, &status, NULL) != 0) return ctl_fail(status);
    const char *state = ctl_json_str(reply, "state", NULL);
    char shown[32];
    if (state) ctl_sanitize(state, strlen(state), shown, sizeof shown);
    if (state)
        printf("job %lld: cancel requested (now %s)\n", id, shown);
    else
        printf("job %lld: cancel requested\n", id);
    json_decref(reply);
    return CTL_EXIT_OK;
}

int ctl_cmd_delete(ctl_conn *c, const ctl_opts *o)
{
    char path[128];
    long long id;
    if (ctl_job_path(path, sizeof path, o->operands[0], "", &id) != 0) return ctl_fail(400);
    json_t *reply;
    long status;
    if (ctl_call(c, "DELETE", path, NULL, 0, &reply, &status, NULL) != 0)
        return ctl_fail(status);
    json_decref(reply);
    printf("job %lld deleted\n", id);
    return CTL_EXIT_OK;
}
