/* The HTTP server: libmicrohttpd with a pool of threads (epoll) around
 * eg_api_dispatch. This is the only file that speaks libmicrohttpd.
 *
 * Requests: the first call of the access handler refuses what is over a
 * cap as soon as the headers show it (414 for the URL, 413 for a declared
 * body length); bodies are collected up to EG_API_MAX_BODY and dropped
 * beyond it; the last call dispatches.
 *
 * Event streams: a stream with nothing to send suspends its connection
 * (so a pool thread never sleeps in it) and joins the parked list; a
 * ticker thread resumes every parked connection every TICK_MS, and MHD
 * then asks the stream again. Shutdown resumes them all for good before
 * MHD is stopped, as MHD requires. */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/json_num.h"
#include "util/log.h"

#define TICK_MS 200
#define STREAM_BLOCK 16384
#define MAX_CONNECTIONS 512u
#define IDLE_TIMEOUT_S 60u
#define DRAIN_MAX (64ll << 20)   /* bodies over the cap read and dropped up to this */
#define CONN_MEMORY (32u * 1024u) /* above this MHD mmaps each pool: slow */

typedef struct parked parked;

struct eg_api {
    eg_api_ctx *ctx;
    struct MHD_Daemon *mhd;
    int fd;                      /* the listening socket */
    pthread_mutex_t lock;        /* guards parked and ticker_stop */
    pthread_cond_t tick;
    parked *parked;              /* suspended event streams */
    int ticker_stop;
    pthread_t ticker;
    int ticker_started;
};

/* A streamed response: its connection and, while suspended, its place in
 * the parked list. */
struct parked {
    eg_api *api;
    struct MHD_Connection *conn;
    eg_stream stream;
    parked *next;
};

/* What one request has gathered between calls of the access handler. */
typedef struct conn_state {
    char *body;
    size_t len, cap;
    int too_large;               /* the body passed EG_API_MAX_BODY: dropped */
    int answered;                /* a response is queued */
} conn_state;

/* ---- responses ---- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max);
static void stream_free(void *cls);

/* A JSON, text or empty response for rp, NULL when out of memory. */
static struct MHD_Response *body_response(eg_reply *rp)
{
    struct MHD_Response *r;
    if (rp->body) {
        char *json = eg_json_dumps(rp->body, JSON_COMPACT);
        size_t n = json ? strlen(json) : 0;
        char *buf = json ? realloc(json, n + 2) : NULL;
        if (!buf) {
            free(json);
            return NULL;
        }
        buf[n] = '\n';
        buf[n + 1] = '\0';
        r = MHD_create_response_from_buffer(n + 1, buf, MHD_RESPMEM_MUST_FREE);
        if (!r) free(buf);
        else MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        return r;
    }
    if (rp->text) {
        r = MHD_create_response_from_buffer(rp->text_len, rp->text, MHD_RESPMEM_MUST_FREE);
        if (!r) return NULL;
        rp->text = NULL; /* MHD owns it now */
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                rp->content_type ? rp->content_type : "text/plain");
        return r;
    }
    return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

/* An event stream's response; takes rp->stream. */
static struct MHD_Response *stream_response(eg_api *api, struct MHD_Connection *c, eg_reply *rp)
{
    parked *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->api = api;
    p->conn = c;
    p->stream = rp->stream;
    rp->stream = (eg_stream){0};
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
                                                               stream_reader, p, stream_free);
    if (!r) {
        stream_free(p);
        return NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rp->content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    return r;
}

/* Queues rp on c and releases it. */
static enum MHD_Result send_reply(eg_api *api, struct MHD_Connection *c, eg_reply *rp,
                                  const char *method, const char *url)
{
    struct MHD_Response *r = rp->stream.read ? stream_response(api, c, rp) : body_response(rp);
    if (!r) {
        eg_reply_error(rp, 500, "internal", NULL, "out of memory");
        r = body_response(rp);
        if (!r) {
            eg_reply_clear(rp);
            return MHD_NO;
        }
    }
    if (rp->location[0]) MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, rp->location);
    if (rp->allow[0]) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rp->allow);
    if (rp->www_authenticate)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"evograd\"");
    int status = rp->status;
    if (status >= 100 && status < 600) atomic_fetch_add(&api->ctx->answered[status / 100], 1);
    EG_LOG(DEBUG, "api: %.16s %.200s -> %d", method, url, status);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    eg_reply_clear(rp);
    return ok;
}

/* ---- event streams ---- */

/* Suspends p's connection until the next tick; 0 at shutdown (the stream
 * ends instead). Called from the content reader, as MHD allows. */
static int park(parked *p)
{
    eg_api *api = p->api;
    pthread_mutex_lock(&api->lock);
    int ok = !atomic_load(&api->ctx->stopping);
    if (ok) {
        MHD_suspend_connection(p->conn);
        p->next = api->parked;
        api->parked = p;
    }
    pthread_mutex_unlock(&api->lock);
    return ok;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    parked *p = cls;
    int wait = 0;
    ssize_t n = p->stream.read(p->stream.state, buf, max, &wait);
    if (n > 0) return n;
    if (n == 0 && wait && park(p)) return 0;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls)
{
    parked *p = cls;
    if (p->stream.free) p->stream.free(p->stream.state);
    free(p);
}

/* Resumes every parked connection. A resumed stream may end and be freed
 * at once, so next is read before the resume. */
static void resume_all(eg_api *api)
{
    pthread_mutex_lock(&api->lock);
    parked *p = api->parked;
    api->parked = NULL;
    pthread_mutex_unlock(&api->lock);
    while (p) {
        parked *next = p->next;
        MHD_resume_connection(p->conn);
        p = next;
    }
}

static void *ticker_main(void *arg)
{
    eg_api *api = arg;
    pthread_mutex_lock(&api->lock);
    while (!api->ticker_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&api->tick, &api->lock, &until);
        pthread_mutex_unlock(&api->lock);
        resume_all(api);
        pthread_mutex_lock(&api->lock);
    }
    pthread_mutex_unlock(&api->lock);
    return NULL;
}

/* ---- requests ---- */

typedef struct query_size {
    size_t bytes;
} query_size;

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    query_size *q = cls;
    q->bytes += strlen(key) + (value ? strlen(value) : 0) + 2;
    return MHD_YES;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    eg_query *q = cls;
    if (q->n == EG_API_MAX_PARAMS) {
        q->too_many = 1;
        return MHD_NO;
    }
    q->p[q->n].key = key;
    q->p[q->n].value = value ? value : "";
    q->n++;
    return MHD_YES;
}

/* The refusals the headers alone decide: an over-long URL (414) and a
 * declared body over the cap (413). 1 when rp holds one. A client that
 * sends its body without waiting (no "Expect: 100-continue") gets its 413
 * after the body, which is read and dropped, unless it declares more than
 * DRAIN_MAX: answering early means closing the connection on unread data,
 * and such a client may then never see the answer. */
static int early_refusal(struct MHD_Connection *c, const char *url, eg_reply *rp,
                         conn_state *cs)
{
    query_size qs = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, count_arg, &qs);
    if (strlen(url) > EG_API_MAX_PATH || qs.bytes > EG_API_MAX_QUERY) {
        eg_reply_error(rp, 414, "uri_too_long", NULL,
                       "the path is at most %d bytes and the query %d", EG_API_MAX_PATH,
                       EG_API_MAX_QUERY);
        return 1;
    }
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long long declared;
    if (cl && eg_parse_int(cl, 0, 0x7fffffffffffffffLL, &declared) == 0 &&
        declared > (long long)EG_API_MAX_BODY) {
        const char *expect =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
        if (!expect && declared <= DRAIN_MAX) {
            cs->too_large = 1; /* nothing of it is kept */
            return 0;
        }
        eg_reply_error(rp, 413, "payload_too_large", NULL,
                       "a request body is at most %u bytes; this one declares %lld",
                       EG_API_MAX_BODY, declared);
        return 1;
    }
    return 0;
}

/* Adds upload data to the body, dropping it all once past the cap. */
static void take_upload(conn_state *cs, const char *data, size_t n)
{
    if (cs->too_large) return;
    if (n > EG_API_MAX_BODY - cs->len) {
        cs->too_large = 1;
        free(cs->body);
        cs->body = NULL;
        cs->len = cs->cap = 0;
        return;
    }
    if (cs->len + n > cs->cap) {
        size_t cap = cs->cap ? cs->cap : 4096;
        while (cap < cs->len + n) cap *= 2;
        if (cap > EG_API_MAX_BODY) cap = EG_API_MAX_BODY;
        char *bigger = realloc(cs->body, cap);
        if (!bigger) {
            /* Answered as too large: the body cannot be kept. */
            cs->too_large = 1;
            free(cs->body);
            cs->body = NULL;
            cs->len = cs->cap = 0;
            return;
        }
        cs->body = bigger;
        cs->cap = cap;
    }
    memcpy(cs->body + cs->len, data, n);
    cs->len += n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)version;
    eg_api *api = cls;
    conn_state *cs = *req_cls;
    eg_reply rp = {0};
    if (!cs) {
        if (!(cs = calloc(1, sizeof *cs))) return MHD_NO;
        *req_cls = cs;
        if (!early_refusal(c, url, &rp, cs)) return MHD_YES;
        cs->answered = 1;
        return send_reply(api, c, &rp, method, url);
    }
    if (*upload_data_size) {
        if (!cs->answered) take_upload(cs, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (cs->answered) return MHD_YES;
    cs->answered = 1;
    if (cs->too_large) {
        eg_reply_error(&rp, 413, "payload_too_large", NULL, "a request body is at most %u bytes",
                       EG_API_MAX_BODY);
        return send_reply(api, c, &rp, method, url);
    }
    eg_request rq = {
        .ctx = api->ctx,
        .method = method,
        .path = url,
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE),
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_AUTHORIZATION),
        .last_event_id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID"),
        .body = cs->body,
        .body_len = cs->len,
    };
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &rq.query);
    eg_api_dispatch(&rq, &rp);
    return send_reply(api, c, &rp, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)c, (void)why;
    conn_state *cs = *req_cls;
    if (!cs) return;
    free(cs->body);
    free(cs);
    *req_cls = NULL;
}

/* MHD's unescape hook: eg_unescape. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    return eg_unescape(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    /* About single connections (malformed requests, clients that left):
     * failures of the server itself come back from MHD's calls. */
    EG_LOG(DEBUG, "api: microhttpd: %s", msg);
}

/* ---- start and stop ---- */

/* A bound, listening, non-blocking socket on addr; -1 after eg_errorf. */
static int listen_on(const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return eg_errorf("listen: socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, addr, len) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        return eg_errorf("listen: %s", strerror(e));
    }
    return fd;
}

/* Threads of the pool: requests may wait on the store's write lock, so a
 * few more than the cores. */
static unsigned pool_size(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long n = cores > 0 ? 2 * cores : 4;
    return (unsigned)(n < 4 ? 4 : n > 16 ? 16 : n);
}

int eg_api_start(eg_api_ctx *ctx, const struct sockaddr *addr, socklen_t addr_len,
                 eg_api **out)
{
    *out = NULL;
    eg_api *api = calloc(1, sizeof *api);
    if (!api) return eg_errorf("api: out of memory");
    api->ctx = ctx;
    pthread_mutex_init(&api->lock, NULL);
    pthread_cond_init(&api->tick, NULL);
    if ((api->fd = listen_on(addr, addr_len)) < 0) goto fail;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (addr->sa_family == AF_INET6) flags |= MHD_USE_IPv6;
    api->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)api->fd,
        MHD_OPTION_THREAD_POOL_SIZE, pool_size(), MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed, api, MHD_OPTION_END);
    if (!api->mhd) {
        eg_errorf("api: libmicrohttpd did not start");
        goto fail;
    }
    if (pthread_create(&api->ticker, NULL, ticker_main, api) != 0) {
        eg_errorf("api: cannot start the event stream ticker");
        goto fail;
    }
    api->ticker_started = 1;
    *out = api;
    return 0;
fail:
    if (api->mhd) MHD_stop_daemon(api->mhd); /* closes the socket too */
    else if (api->fd >= 0) close(api->fd);
    pthread_mutex_destroy(&api->lock);
    pthread_cond_destroy(&api->tick);
    free(api);
    return -1;
}

void eg_api_stop(eg_api *api)
{
    if (!api) return;
    MHD_socket fd = MHD_quiesce_daemon(api->mhd);
    /* From here no stream parks again; the ticker's last pass and the
     * resume_all below wake the parked ones, which then end. */
    pthread_mutex_lock(&api->lock);
    atomic_store(&api->ctx->stopping, 1);
    api->ticker_stop = 1;
    pthread_cond_signal(&api->tick);
    pthread_mutex_unlock(&api->lock);
    if (api->ticker_started) pthread_join(api->ticker, NULL);
    resume_all(api);
    MHD_stop_daemon(api->mhd);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    pthread_mutex_destroy(&api->lock);
    pthread_cond_destroy(&api->tick);
    free(api);
}
