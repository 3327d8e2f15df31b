/* URLs of the evograd API: the server's base URL, job ids, query strings
 * and the Location header of a created job. Pure string functions. */
#ifndef CTL_URL_H
#define CTL_URL_H

#include <stddef.h>

/* The base URL to send requests to: url without trailing slashes, with
 * "http://" in front when it names no scheme. Refuses an empty URL, one
 * holding blanks or control characters, and schemes other than http and
 * https. Returns a malloc'd string, or NULL with eg_errorf. */
char *ctl_url_base(const char *url);

/* *id = the job id in s: decimal digits only, 1 .. 2^53 - 1. Returns 0,
 * or -1 with eg_errorf. */
int ctl_parse_id(const char *s, long long *id);

/* Appends "name=value" to the path or URL in buf (size bytes), after "?"
 * when buf has no query yet and "&" otherwise; value is percent-encoded
 * (everything but unreserved characters, RFC 3986 §2.3). Returns 0, or -1
 * with eg_errorf when the result would not fit (buf is then unchanged). */
int ctl_query_add(char *buf, size_t size, const char *name, const char *value);

/* Same, for an integer value. */
int ctl_query_add_ll(char *buf, size_t size, const char *name, long long value);

/* The absolute URL of a Location header value: returned as it is when it
 * names a scheme; joined to base's scheme and authority when it starts
 * with "/"; otherwise appended to base after a "/". Returns a malloc'd
 * string, or NULL with eg_errorf. */
char *ctl_url_resolve(const char *base, const char *location);

/* Writes collection ("/v1/sweeps"), "/ID" and suffix to buf for the id in
 * id_text (see ctl_parse_id); *id gets the id when id is not NULL.
 * Returns 0, or -1 with eg_errorf. */
int ctl_id_path(char *buf, size_t size, const char *collection, const char *id_text,
                const char *suffix, long long *id);

/* Writes "/v1/jobs/ID" followed by suffix ("" or "/steps", ...) to buf
 * for the job id in id_text (see ctl_parse_id); *id gets the id when id
 * is not NULL. Returns 0, or -1 with eg_errorf. */
int ctl_job_path(char *buf, size_t size, const char *id_text, const char *suffix,
                 long long *id);

#endif
