#include "ctl_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_fmt.h"
#include "util/err.h"

void ctl_error_message(long status, const char *body, size_t len, char *buf, size_t size)
{
    json_error_t jerr;
    json_t *root = body && len ? json_loadb(body, len, 0, &jerr) : NULL;
    json_t *e = json_object_get(root, "error");
    const char *msg = ctl_json_str(e, "message", NULL);
    const char *code = ctl_json_str(e, "code", NULL);
    const char *field = ctl_json_str(e, "field", NULL);
    if (!msg && json_is_string(e)) msg = json_string_value(e);
    char m[512], f[256], c[128];
    if (msg) {
        ctl_sanitize(msg, strlen(msg), m, sizeof m);
        ctl_sanitize(field ? field : "", field ? strlen(field) : 0, f, sizeof f);
        ctl_sanitize(code ? code : "", code ? strlen(code) : 0, c, sizeof c);
        snprintf(buf, size, "%s%s%s%s (HTTP %ld%s%s)", m, field ? " (field " : "", f,
                 field ? ")" : "", status, code ? ", " : "", c);
    } else {
        size_t line = 0;
        while (body && line < len && body[line] != '\n' && body[line] != '\r') line++;
        ctl_sanitize(body ? body : "", line, m, sizeof m);
        snprintf(buf, size, "the server answered HTTP %ld%s%s", status, line ? ": " : "", m);
    }
    json_decref(root);
}

int ctl_exit_status(long status)
{
    return status >= 400 && status < 500 ? CTL_EXIT_CLIENT : CTL_EXIT_FAIL;
}

int ctl_fail(long status)
{
    fprintf(stderr, "evogradctl: %s\n", eg_last_error());
    return ctl_exit_status(status);
}

int ctl_call(ctl_conn *c, const char *method, const char *path, const char *body, size_t len,
             json_t **out, long *status, char **location)
{
    *out = NULL;
    *status = 0;
    if (location) *location = NULL;
    ctl_reply r;
    if (ctl_http(c, method, path, body, len, &r) != 0) {
        ctl_reply_free(&r);
        return -1;
    }
    *status = r.status;
    int rc = -1;
    if (r.status < 200 || r.status > 299) {
        char msg[900];
        ctl_error_message(r.status, r.body, r.len, msg, sizeof msg);
        eg_errorf("%s", msg);
    } else if (r.len == 0 || strspn(r.body, " \t\r\n") == r.len) {
        rc = 0;
    } else {
        json_error_t jerr;
        *out = json_loadb(r.body, r.len, 0, &jerr);
        if (*out) {
            rc = 0;
        } else {
            char why[200];
            ctl_sanitize(jerr.text, strlen(jerr.text), why, sizeof why);
            eg_errorf("%s %s: the server's reply (HTTP %ld) is not JSON: %s", method, path,
                      r.status, why);
        }
    }
    if (rc == 0 && location) {
        *location = r.location;
        r.location = NULL;
    }
    ctl_reply_free(&r);
    return rc;
}

int ctl_get_page(ctl_conn *c, const char *path, const char *key, json_t **page,
                 json_t **items)
{
    long status;
    if (ctl_call(c, "GET", path, NULL, 0, page, &status, NULL) != 0) return ctl_fail(status);
    *items = json_object_get(*page, key);
    if (!json_is_array(*items)) {
        json_decref(*page);
        *page = NULL;
        eg_errorf("GET %s: the reply holds no \"%s\" array", path, key);
        return ctl_fail(0);
    }
    return 0;
}
