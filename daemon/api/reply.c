/* Filling replies: the one JSON error helper and plain JSON answers. */
#include "api/api.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

void eg_reply_clear(eg_reply *rp)
{
    json_decref(rp->body);
    free(rp->text);
    if (rp->stream.read && rp->stream.free) rp->stream.free(rp->stream.state);
    memset(rp, 0, sizeof *rp);
}

/* A last-resort body when even the error object cannot be built. */
static void reply_oom(eg_reply *rp)
{
    static const char text[] =
        "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n";
    eg_reply_clear(rp);
    rp->status = 500;
    rp->text = strdup(text);
    rp->text_len = rp->text ? sizeof text - 1 : 0;
    rp->content_type = "application/json";
}

/* A JSON string of s; bytes that are not printable ASCII become '?' when s
 * is not valid UTF-8 (messages quote paths and parameters as sent). */
static json_t *safe_string(const char *s)
{
    json_t *j = json_string(s);
    if (j) return j;
    char copy[1024];
    size_t n = 0;
    for (; s[n] && n + 1 < sizeof copy; n++)
        copy[n] = (unsigned char)s[n] >= 0x20 && (unsigned char)s[n] < 0x7f ? s[n] : '?';
    copy[n] = '\0';
    return json_string(copy);
}

void eg_reply_error(eg_reply *rp, int status, const char *code, const char *field,
                    const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    eg_reply_clear(rp);
    json_t *err = json_pack("{s:s, s:o}", "code", code, "message", safe_string(message));
    if (err && field && *field && json_object_set_new(err, "field", safe_string(field)) != 0) {
        json_decref(err);
        err = NULL;
    }
    json_t *body = err ? json_pack("{s:o}", "error", err) : NULL;
    if (!body) {
        reply_oom(rp);
        return;
    }
    rp->status = status;
    rp->body = body;
    if (status == 401) rp->www_authenticate = 1;
}

void eg_reply_json(eg_reply *rp, int status, json_t *body)
{
    if (!body) {
        eg_reply_error(rp, 500, "internal", NULL, "out of memory");
        return;
    }
    eg_reply_clear(rp);
    rp->status = status;
    rp->body = body;
}

void eg_reply_json_text(eg_reply *rp, int status, char *text, size_t len)
{
    char *with_end = text ? realloc(text, len + 2) : NULL;
    if (!with_end) {
        free(text);
        eg_reply_error(rp, 500, "internal", NULL, "out of memory");
        return;
    }
    with_end[len] = '\n';
    with_end[len + 1] = '\0';
    eg_reply_clear(rp);
    rp->status = status;
    rp->text = with_end;
    rp->text_len = len + 1;
    rp->content_type = "application/json";
}

void eg_reply_internal(eg_reply *rp, const char *what)
{
    if (eg_store_failed_full()) {
        EG_LOG(ERROR, "api: %s: %s", what, eg_last_error());
        eg_reply_error(rp, 507, "insufficient_storage", NULL,
                       "%s failed: the disk holding the database is full (%s)", what,
                       eg_last_error());
        return;
    }
    if (eg_store_failed_unreachable()) {
        EG_LOG(WARN, "api: %s: %s", what, eg_last_error());
        eg_reply_error(rp, 503, "store_unavailable", NULL,
                       "%s failed: the database cannot be reached (%s); try again", what,
                       eg_last_error());
        return;
    }
    EG_LOG(ERROR, "api: %s: %s", what, eg_last_error());
    eg_reply_error(rp, 500, "internal", NULL, "%s failed: %s", what, eg_last_error());
}

int eg_reply_unless_room(eg_store *store, eg_reply *rp, const char *what)
{
    if (!eg_store_out_of_space(store)) return 0;
    eg_reply_error(rp, 507, "insufficient_storage", NULL,
                   "the disk holding the database is full: no new %s until there is room again",
                   what);
    return -1;
}

int eg_reply_unless_json(const char *content_type, eg_reply *rp, const char *what)
{
    if (eg_is_json_type(content_type)) return 0;
    eg_reply_error(rp, 415, "unsupported_media_type", NULL,
                   "%s is sent as Content-Type: application/json, not %.64s", what,
                   content_type ? content_type : "(none)");
    return -1;
}
