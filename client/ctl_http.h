/* HTTP requests to the evograd server with libcurl: one connection kept
 * open between requests, the bearer token on every request, replies read
 * into memory up to a cap. */
#ifndef CTL_HTTP_H
#define CTL_HTTP_H

#include <stddef.h>

/* Largest reply body read; a longer one fails the request. */
#define CTL_REPLY_MAX (64u << 20)

typedef struct ctl_conn {
    char *base;          /* base URL without a trailing slash (ctl_url_base) */
    const char *token;   /* bearer token or NULL */
    long timeout_s;      /* whole request; the connect timeout is 5 s */
    void *curl;          /* the CURL easy handle, made on first use */
} ctl_conn;

typedef struct ctl_reply {
    long status;         /* the HTTP status */
    char *body;          /* NUL-terminated (len bytes before the NUL) */
    size_t len;
    char *location;      /* the Location header, or NULL */
} ctl_reply;

/* Sends `method` to base + path (path starts with "/"), with body (len
 * bytes, sent as application/json) unless body is NULL. Returns 0 when a
 * reply came, whatever its status; -1 with eg_errorf when none did
 * (connection refused, timeout, a reply over CTL_REPLY_MAX). The reply is
 * r's to free with ctl_reply_free, also after a failure. */
int ctl_http(ctl_conn *c, const char *method, const char *path, const char *body, size_t len,
             ctl_reply *r);

void ctl_reply_free(ctl_reply *r);

/* Closes the connection (c->base and c->token are the caller's). */
void ctl_conn_close(ctl_conn *c);

#endif
