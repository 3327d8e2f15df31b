/* Calls to the evograd API: a request, its JSON reply, and the server's
 * error replies ({"error": {"code", "message", "field"}}) turned into one
 * message and an exit status. */
#ifndef CTL_API_H
#define CTL_API_H

#include <jansson.h>

#include "ctl_http.h"

/* Exit statuses of evogradctl. */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAIL = 1,     /* no connection, a server error, an odd reply; a failed job */
    CTL_EXIT_CLIENT = 2,   /* the server refused the request (4xx); a bad command line */
    CTL_EXIT_CANCELED = 3, /* watch: the job was canceled */
};

/* One request (see ctl_http) whose reply should be JSON. Returns 0 for a
 * 2xx reply with *out its JSON value (NULL when the body is empty, as for
 * 204) and *location the Location header (malloc'd, NULL when absent;
 * location may be NULL). Returns -1 with eg_errorf otherwise: no reply
 * (*status 0), an error status (*status, the message from the server's
 * error body) or a 2xx body that is not JSON. */
int ctl_call(ctl_conn *c, const char *method, const char *path, const char *body, size_t len,
             json_t **out, long *status, char **location);

/* GET path whose reply is an object holding an array under key (a page of
 * a listing): 0 with *page the reply (the caller decrefs it) and *items
 * the array within it; otherwise the exit status of the failure, after
 * printing its message (ctl_fail). */
int ctl_get_page(ctl_conn *c, const char *path, const char *key, json_t **page,
                 json_t **items);

/* Writes a one-line message for an error reply with this status and body
 * to buf: the server's message, then field and code where given, then
 * the status; for a body that is not the error object, its first line
 * (control characters replaced). Never fails; truncates. */
void ctl_error_message(long status, const char *body, size_t len, char *buf, size_t size);

/* The exit status for a failed call with this HTTP status (0: no reply). */
int ctl_exit_status(long status);

/* Prints "evogradctl: " and the last error (eg_last_error) to stderr and
 * returns ctl_exit_status(status). */
int ctl_fail(long status);

#endif
