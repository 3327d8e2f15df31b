#include "ctl_args.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define TOKEN_MAX 4096
#define ID_MAX 9007199254740991LL /* 2^53 - 1 */

/* *out = the integer in s, which must be all digits (an optional leading
 * minus sign aside) and lie within [lo, hi]. */
static int parse_ll(const char *name, const char *s, long long lo, long long hi,
                    long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno == ERANGE || v < lo || v > hi)
        return eg_errorf("--%s wants an integer in [%lld, %lld], not \"%s\"", name, lo, hi,
                         s);
    *out = v;
    return 0;
}

static int parse_seconds(const char *name, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi)
        return eg_errorf("--%s wants seconds in [%g, %g], not \"%s\"", name, lo, hi, s);
    *out = v;
    return 0;
}

int ctl_parse_args(int argc, char **argv, const char *env_url, const char *env_token,
                   ctl_opts *o)
{
    enum { O_URL = 256, O_TOKEN, O_TOKEN_FILE, O_STATE, O_AFTER, O_LIMIT, O_MAXP, O_CSV,
           O_INTERVAL, O_VERSION, O_MARKDOWN };
    static const struct option longs[] = {
        {"url", required_argument, 0, O_URL},
        {"token", required_argument, 0, O_TOKEN},
        {"token-file", required_argument, 0, O_TOKEN_FILE},
        {"state", required_argument, 0, O_STATE},
        {"after", required_argument, 0, O_AFTER},
        {"limit", required_argument, 0, O_LIMIT},
        {"max-points", required_argument, 0, O_MAXP},
        {"csv", no_argument, 0, O_CSV},
        {"markdown", no_argument, 0, O_MARKDOWN},
        {"interval", required_argument, 0, O_INTERVAL},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0}};
    *o = (ctl_opts){.url = (env_url && *env_url) ? env_url : CTL_DEFAULT_URL,
                    .token = (env_token && *env_token) ? env_token : NULL,
                    .after = -1,
                    .interval_s = 0.5};
    const char *cli_token = NULL;
    int c;
    opterr = 0;
    optind = 0; /* a full reset of getopt's state: the parser may run more than once */
    while ((c = getopt_long(argc, argv, ":qh", longs, NULL)) != -1) {
        switch (c) {
        case O_URL: o->url = optarg; break;
        case O_TOKEN: cli_token = optarg; break;
        case O_TOKEN_FILE: o->token_file = optarg; break;
        case O_STATE:
            o->given |= CTL_OPT_STATE;
            o->state = optarg;
            break;
        case O_AFTER:
            o->given |= CTL_OPT_AFTER;
            EG_TRY(parse_ll("after", optarg, 0, ID_MAX, &o->after));
            break;
        case O_LIMIT:
            o->given |= CTL_OPT_LIMIT;
            EG_TRY(parse_ll("limit", optarg, 1, 1000000000LL, &o->limit));
            break;
        case O_MAXP:
            o->given |= CTL_OPT_MAX_POINTS;
            EG_TRY(parse_ll("max-points", optarg, 1, 1000000LL, &o->max_points));
            break;
        case O_CSV:
            o->given |= CTL_OPT_CSV;
            o->csv = 1;
            break;
        case O_MARKDOWN:
            o->given |= CTL_OPT_MARKDOWN;
            o->markdown = 1;
            break;
        case O_INTERVAL:
            o->given |= CTL_OPT_INTERVAL;
            EG_TRY(parse_seconds("interval", optarg, 0.05, 60, &o->interval_s));
            break;
        case 'q':
            o->given |= CTL_OPT_QUIET;
            o->quiet = 1;
            break;
        case 'h': o->help = 1; break;
        case O_VERSION: o->version = 1; break;
        case ':': return eg_errorf("option %s needs a value", argv[optind - 1]);
        default:
            if (optopt && optopt < 256) return eg_errorf("unknown option -%c", optopt);
            return eg_errorf("unknown option %s", argv[optind - 1]);
        }
    }
    if (cli_token && o->token_file) return eg_errorf("give --token or --token-file, not both");
    if (cli_token) o->token = cli_token;
    if (o->token_file) o->token = NULL;
    if (!*o->url) return eg_errorf("--url is empty");
    if (o->csv && o->markdown) return eg_errorf("give --csv or --markdown, not both");
    if (o->state && !*o->state) return eg_errorf("--state is empty");
    for (int i = optind; i < argc; i++) {
        if (!o->command) {
            o->command = argv[i];
            continue;
        }
        if (o->n_operands == CTL_MAX_OPERANDS) return eg_errorf("too many arguments");
        o->operands[o->n_operands++] = argv[i];
    }
    return 0;
}

int ctl_token_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TOKEN_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
    return 1;
}

char *ctl_read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        eg_errorf("cannot read the token file %s: %s", path, strerror(errno));
        return NULL;
    }
    char line[TOKEN_MAX + 2];
    char *got = fgets(line, sizeof line, f);
    int err = ferror(f);
    fclose(f);
    if (!got) {
        eg_errorf(err ? "cannot read the token file %s" : "the token file %s is empty", path);
        return NULL;
    }
    size_t n = strlen(line);
    while (n > 0 && strchr(" \t\r\n", line[n - 1])) line[--n] = '\0';
    size_t start = strspn(line, " \t");
    if (!ctl_token_ok(line + start)) {
        eg_errorf("the token in %s is empty, too long or holds blanks or control characters",
                  path);
        return NULL;
    }
    char *tok = strdup(line + start);
    if (!tok) eg_errorf("out of memory");
    return tok;
}
