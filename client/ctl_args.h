/* evogradctl's command line: global options (server URL, bearer token)
 * and every subcommand's options, parsed in one pass so that options may
 * come before or after the subcommand. */
#ifndef CTL_ARGS_H
#define CTL_ARGS_H

#define CTL_DEFAULT_URL "http://127.0.0.1:8080"
#define CTL_MAX_OPERANDS 4

/* Bits of ctl_opts.given: the subcommand options that were given. */
enum {
    CTL_OPT_STATE = 1 << 0,
    CTL_OPT_AFTER = 1 << 1,
    CTL_OPT_LIMIT = 1 << 2,
    CTL_OPT_MAX_POINTS = 1 << 3,
    CTL_OPT_CSV = 1 << 4,
    CTL_OPT_INTERVAL = 1 << 5,
    CTL_OPT_QUIET = 1 << 6,
    CTL_OPT_MARKDOWN = 1 << 7,
};

typedef struct ctl_opts {
    const char *url;          /* the server, from --url, $EVOGRAD_URL or the default */
    const char *token;        /* --token or $EVOGRAD_TOKEN; NULL: none */
    const char *token_file;   /* --token-file; NULL: none */
    const char *command;      /* NULL when none was given */
    const char *operands[CTL_MAX_OPERANDS];
    int n_operands;
    const char *state;        /* list --state */
    long long after;          /* --after (-1: not given) */
    long long limit;          /* --limit (0: not given) */
    long long max_points;     /* steps --max-points (0: not given) */
    double interval_s;        /* watch --interval (default 0.5) */
    int csv;                  /* --csv */
    int markdown;             /* sweep show --markdown */
    int quiet;                /* submit -q: print only the id */
    int help, version;
    unsigned given;           /* CTL_OPT_* bits */
} ctl_opts;

/* Parses argv into *o. env_url and env_token are the values of
 * $EVOGRAD_URL and $EVOGRAD_TOKEN (NULL or "" when unset); command-line
 * options win over them. Returns 0, or -1 with eg_errorf for a bad
 * command line (unknown option, a number out of range, --token together
 * with --token-file, too many operands). Does not check which options
 * the subcommand accepts; the subcommands do. */
int ctl_parse_args(int argc, char **argv, const char *env_url, const char *env_token,
                   ctl_opts *o);

/* Reads a bearer token from the first line of path: surrounding blanks
 * and the line end are dropped. Returns a malloc'd string, or NULL with
 * eg_errorf when the file cannot be read or the token is empty or holds
 * characters a header cannot carry. */
char *ctl_read_token_file(const char *path);

/* Whether s can be sent as a bearer token: 1..4096 visible ASCII
 * characters (no blanks, no control characters). */
int ctl_token_ok(const char *s);

#endif
