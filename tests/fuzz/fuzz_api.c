/* libFuzzer harness: the API behind the HTTP server (daemon/api): path and
 * query decoding, routing, query checks, every handler, and POST bodies
 * through the job input path, on a real store with no workers.
 *
 * The input is "METHOD\nPATH\nQUERY\nCONTENT-TYPE\nBODY": QUERY is
 * "k=v&k=v" as the server hands parameters over, each part %-decoded as
 * the server decodes them. Every answer must be a status in 200..499 (a
 * 5xx would be the daemon's own fault) and every error a JSON body
 * {"error": {"code", "message"}}. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"

static eg_api_ctx ctx;
static eg_data_roots roots;
static const char *const devices[] = {"cpu", NULL};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static char dir[] = "/tmp/evograd-fuzz-api-XXXXXX"; /* the checkpoint folder, for good */
    if (!mkdtemp(dir)) abort();
    char db[600];
    snprintf(db, sizeof db, "%s/db", dir);
    eg_log_set_level(EG_LOG_ERROR);
    if (eg_store_open(db, &ctx.store) != 0) abort();
    eg_data_roots_parse(EG_DEFAULT_DATA_ROOT, &roots); /* none where it is missing */
    ctx.token = "";
    ctx.data_roots = &roots;
    ctx.checkpoint_dir = dir;
    ctx.devices = devices;
    pthread_mutex_init(&ctx.hists.lock, NULL);
    return 0;
}

/* The next '\n'-ended field of [*p, end) as a NUL-terminated copy. */
static char *field(const char **p, const char *end)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *stop = nl ? nl : end;
    char *f = malloc((size_t)(stop - *p) + 1);
    if (!f) abort();
    memcpy(f, *p, (size_t)(stop - *p));
    f[stop - *p] = '\0';
    *p = nl ? nl + 1 : end;
    return f;
}

static void check_reply(const eg_reply *rp)
{
    if (rp->status < 200 || rp->status >= 500) abort();
    if (rp->status >= 400) {
        json_t *err = json_object_get(rp->body, "error");
        if (!json_is_string(json_object_get(err, "code")) ||
            !json_is_string(json_object_get(err, "message")))
            abort();
    }
    if (rp->text && rp->content_type && strcmp(rp->content_type, "application/json") == 0) {
        json_t *j = json_loadb(rp->text, rp->text_len, 0, NULL);
        if (!j) abort();
        json_decref(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    char *method = field(&p, end), *path = field(&p, end), *query = field(&p, end);
    char *type = field(&p, end);
    eg_request rq = {.ctx = &ctx, .method = method, .path = path, .body = p,
                     .body_len = (size_t)(end - p), .content_type = *type ? type : NULL};
    eg_unescape(path);
    /* The server refuses NUL-cut paths and values before dispatch; a
     * decoded field here is text up to its NUL, as MHD hands it over. */
    for (char *q = query; *q;) {
        char *amp = strchr(q, '&');
        if (amp) *amp = '\0';
        char *eq = strchr(q, '=');
        if (eq) *eq = '\0';
        if (rq.query.n == EG_API_MAX_PARAMS) {
            rq.query.too_many = 1;
        } else if (*q) {
            eg_unescape(q);
            if (eq) eg_unescape(eq + 1);
            rq.query.p[rq.query.n].key = q;
            rq.query.p[rq.query.n].value = eq ? eq + 1 : "";
            rq.query.n++;
        }
        if (!amp) break;
        q = amp + 1;
    }
    eg_reply rp = {0};
    eg_api_dispatch(&rq, &rp);
    check_reply(&rp);
    if (rp.stream.read) { /* an event stream: its first pieces */
        char buf[4096];
        for (int i = 0; i < 3; i++) {
            int wait = 0;
            if (rp.stream.read(rp.stream.state, buf, sizeof buf, &wait) < 0) break;
        }
    }
    eg_reply_clear(&rp);
    free(method), free(path), free(query), free(type);
    return 0;
}
