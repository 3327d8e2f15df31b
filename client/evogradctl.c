/* evogradctl: the command-line client of the evograd daemon's HTTP API
 * (DESIGN.md §4). Exit status: 0 ok, 1 no connection / server error /
 * odd reply (and a failed job for watch), 2 a bad command line or a
 * request the server refused (4xx), 3 a canceled job (watch). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_api.h"
#include "ctl_args.h"
#include "ctl_commands.h"
#include "ctl_url.h"
#include "util/err.h"

#define CTL_VERSION "0.1.0"

static const struct {
    const char *name;
    int (*run)(ctl_conn *c, const ctl_opts *o);
    int operands;       /* operands the command takes (-1: it counts them) */
    unsigned options;   /* CTL_OPT_* bits it accepts */
    const char *args, *help;
} commands[] = {
    {"submit", ctl_cmd_submit, 1, CTL_OPT_QUIET, "FILE|- [-q]",
     "submit a job spec; prints the job's id and URL (-q: the id only)"},
    {"list", ctl_cmd_list, 0, CTL_OPT_STATE | CTL_OPT_AFTER | CTL_OPT_LIMIT | CTL_OPT_CSV,
     "[--state S] [--after ID] [--limit N] [--csv]", "list jobs"},
    {"show", ctl_cmd_show, 1, 0, "ID", "print a job as JSON"},
    {"watch", ctl_cmd_watch, 1, CTL_OPT_INTERVAL, "ID [--interval S]",
     "follow a job to its end; exit 0 succeeded, 1 failed, 3 canceled"},
    {"steps", ctl_cmd_steps, 1, CTL_OPT_AFTER | CTL_OPT_LIMIT | CTL_OPT_MAX_POINTS | CTL_OPT_CSV,
     "ID [--after N] [--limit N] [--max-points N] [--csv]", "print a job's step log"},
    {"cancel", ctl_cmd_cancel, 1, 0, "ID", "cancel a queued or running job"},
    {"delete", ctl_cmd_delete, 1, 0, "ID", "delete a job that is not running"},
    {"devices", ctl_cmd_devices, 0, CTL_OPT_CSV, "[--csv]",
     "list the daemon's devices (GPUs with their memory)"},
    {"workers", ctl_cmd_workers, 0, CTL_OPT_CSV, "[--csv]",
     "list the daemons sharing the store: devices, alive, last heartbeat, running jobs"},
    {"sweep", ctl_cmd_sweep, -1,
     CTL_OPT_QUIET | CTL_OPT_AFTER | CTL_OPT_LIMIT | CTL_OPT_CSV | CTL_OPT_MARKDOWN |
         CTL_OPT_INTERVAL,
     "submit FILE|- [-q] | list | show ID [--csv|--markdown] | watch ID | cancel ID | delete ID",
     "sweeps of jobs over a grid: submit one ({\"spec\", \"grid\"}), list them, show a\n"
     "         sweep's mean ± std per grid point, follow one to its end, cancel or delete one"},
};
#define N_COMMANDS (sizeof commands / sizeof *commands)

static void usage(FILE *f)
{
    fprintf(f, "usage: evogradctl [--url URL] [--token TOKEN | --token-file FILE] COMMAND ...\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-6s %s\n         %s\n", commands[i].name, commands[i].args,
                commands[i].help);
    fprintf(f, "\noptions:\n"
               "  --url URL          the server (default $EVOGRAD_URL or %s)\n"
               "  --token TOKEN      bearer token (default $EVOGRAD_TOKEN)\n"
               "  --token-file FILE  read the bearer token from FILE's first line\n"
               "  -h, --help         this help; --version: the version\n"
               "\nexit status: 0 ok, 1 connection or server failure (watch: job failed),\n"
               "2 bad command line or request refused (4xx), 3 job canceled (watch)\n",
            CTL_DEFAULT_URL);
}

/* The options named by bits, for a message. */
static const char *option_name(unsigned bit)
{
    switch (bit) {
    case CTL_OPT_STATE: return "--state";
    case CTL_OPT_AFTER: return "--after";
    case CTL_OPT_LIMIT: return "--limit";
    case CTL_OPT_MAX_POINTS: return "--max-points";
    case CTL_OPT_CSV: return "--csv";
    case CTL_OPT_INTERVAL: return "--interval";
    case CTL_OPT_MARKDOWN: return "--markdown";
    default: return "-q";
    }
}

int main(int argc, char **argv)
{
    ctl_opts o;
    if (ctl_parse_args(argc, argv, getenv("EVOGRAD_URL"), getenv("EVOGRAD_TOKEN"), &o) != 0) {
        fprintf(stderr, "evogradctl: %s (see evogradctl --help)\n", eg_last_error());
        return CTL_EXIT_CLIENT;
    }
    if (o.version) {
        printf("evogradctl %s\n", CTL_VERSION);
        return CTL_EXIT_OK;
    }
    if (o.help || !o.command) {
        usage(o.help ? stdout : stderr);
        return o.help ? CTL_EXIT_OK : CTL_EXIT_CLIENT;
    }
    size_t k = 0;
    while (k < N_COMMANDS && strcmp(commands[k].name, o.command) != 0) k++;
    if (k == N_COMMANDS) {
        fprintf(stderr, "evogradctl: unknown command \"%s\" (see evogradctl --help)\n",
                o.command);
        return CTL_EXIT_CLIENT;
    }
    if (commands[k].operands >= 0 && o.n_operands != commands[k].operands) {
        fprintf(stderr, "usage: evogradctl %s %s\n", commands[k].name, commands[k].args);
        return CTL_EXIT_CLIENT;
    }
    unsigned extra = o.given & ~commands[k].options;
    if (extra) {
        fprintf(stderr, "evogradctl: %s does not take %s\n", commands[k].name,
                option_name(extra & (~extra + 1u)));
        return CTL_EXIT_CLIENT;
    }

    char *token = NULL;
    if (o.token_file && !(token = ctl_read_token_file(o.token_file))) {
        fprintf(stderr, "evogradctl: %s\n", eg_last_error());
        return CTL_EXIT_CLIENT;
    }
    if (o.token && !ctl_token_ok(o.token)) {
        fprintf(stderr, "evogradctl: the token is empty or holds blanks or control characters\n");
        return CTL_EXIT_CLIENT;
    }
    ctl_conn conn = {.token = token ? token : o.token, .timeout_s = 30};
    if (!(conn.base = ctl_url_base(o.url))) {
        fprintf(stderr, "evogradctl: %s\n", eg_last_error());
        free(token);
        return CTL_EXIT_CLIENT;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "evogradctl: cannot start libcurl\n");
        free(conn.base);
        free(token);
        return CTL_EXIT_FAIL;
    }
    int rc = commands[k].run(&conn, &o);
    ctl_conn_close(&conn);
    curl_global_cleanup();
    free(conn.base);
    free(token);
    return rc;
}
