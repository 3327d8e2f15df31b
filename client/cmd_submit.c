/* `evogradctl submit FILE|-`: POST a job spec to /v1/jobs and print the
 * new job's id and URL. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_api.h"
#include "ctl_commands.h"
#include "ctl_fmt.h"
#include "ctl_url.h"
#include "util/err.h"

char *ctl_read_body(FILE *f, const char *name, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (ferror(f)) {
            eg_errorf("cannot read %s: %s", name, strerror(errno));
            break;
        }
        if (feof(f)) {
            buf[n] = '\0';
            *len = n;
            return buf;
        }
        if (cap > CTL_SPEC_MAX) {
            eg_errorf("%s is larger than %u KiB", name, CTL_SPEC_MAX >> 10);
            break;
        }
        char *p = realloc(buf, 2 * cap);
        if (!p) break;
        buf = p;
        cap *= 2;
    }
    if (!eg_last_error()[0]) eg_errorf("out of memory");
    free(buf);
    return NULL;
}

/* The job id of a 201 reply: the body's "id", else the last segment of
 * the Location header. */
static int created_id(const json_t *job, const char *location, long long *id)
{
    if (ctl_json_int(job, "id", id) && *id > 0) return 0;
    const char *slash = location ? strrchr(location, '/') : NULL;
    if (slash && ctl_parse_id(slash + 1, id) == 0) return 0;
    return eg_errorf("the server's reply names no job id");
}

char *ctl_read_named(const char *name, size_t *len)
{
    int from_stdin = strcmp(name, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(name, "rb");
    if (!f) {
        eg_errorf("cannot open %s: %s", name, strerror(errno));
        return NULL;
    }
    eg_clear_error();
    char *body = ctl_read_body(f, from_stdin ? "stdin" : name, len);
    if (!from_stdin) fclose(f);
    return body;
}

int ctl_cmd_submit(ctl_conn *c, const ctl_opts *o)
{
    const char *name = o->operands[0];
    int from_stdin = strcmp(name, "-") == 0;
    size_t len = 0;
    char *spec = ctl_read_named(name, &len);
    if (!spec) return ctl_fail(400);

    /* A spec that is not a JSON object never reaches the server. */
    json_error_t jerr;
    json_t *parsed = json_loadb(spec, len, 0, &jerr);
    if (!parsed || !json_is_object(parsed)) {
        if (parsed)
            eg_errorf("%s: a job spec is a JSON object", from_stdin ? "stdin" : name);
        else
            eg_errorf("%s:%d:%d: %s", from_stdin ? "stdin" : name, jerr.line, jerr.column,
                      jerr.text);
        json_decref(parsed);
        free(spec);
        return ctl_fail(400);
    }
    json_decref(parsed);

    json_t *job = NULL;
    long status;
    char *location = NULL;
    int rc = ctl_call(c, "POST", "/v1/jobs", spec, len, &job, &status, &location);
    free(spec);
    if (rc != 0) return ctl_fail(status);

    long long id;
    char *url = NULL;
    int exit_status = CTL_EXIT_OK;
    if (created_id(job, location, &id) != 0) {
        exit_status = ctl_fail(0);
    } else {
        char path[64];
        snprintf(path, sizeof path, "/v1/jobs/%lld", id);
        url = ctl_url_resolve(c->base, location ? location : path);
        char shown[1024];
        const char *u = url ? url : path;
        ctl_sanitize(u, strlen(u), shown, sizeof shown);
        if (o->quiet)
            printf("%lld\n", id);
        else
            printf("%lld %s\n", id, shown);
    }
    free(url);
    free(location);
    json_decref(job);
    return exit_status;
}
