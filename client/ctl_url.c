#include "ctl_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"

#define ID_MAX 9007199254740991LL /* 2^53 - 1: exact in a JSON number */

/* RFC 3986's unreserved characters, sent as they are in a query. */
static int unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* Length of the "scheme://" prefix of s, or 0 when it has none. */
static size_t scheme_len(const char *s)
{
    const char *p = strstr(s, "://");
    if (!p || p == s) return 0;
    for (const char *q = s; q < p; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
              (q > s && ((*q >= '0' && *q <= '9') || *q == '+' || *q == '-' || *q == '.'))))
            return 0;
    return (size_t)(p - s) + 3;
}

char *ctl_url_base(const char *url)
{
    size_t n = strlen(url);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] == 0x7f) {
            eg_errorf("the server URL \"%s\" holds blanks or control characters", url);
            return NULL;
        }
    size_t sl = scheme_len(url);
    if (sl && !(sl == 7 && strncasecmp(url, "http", 4) == 0) &&
        !(sl == 8 && strncasecmp(url, "https", 5) == 0)) {
        eg_errorf("the server URL \"%s\" is neither http:// nor https://", url);
        return NULL;
    }
    while (n > sl && url[n - 1] == '/') n--;
    if (n == sl) {
        eg_errorf("the server URL \"%s\" names no host", url);
        return NULL;
    }
    const char *prefix = sl ? "" : "http://";
    size_t len = strlen(prefix) + n + 1;
    char *out = malloc(len);
    if (!out) {
        eg_errorf("out of memory");
        return NULL;
    }
    snprintf(out, len, "%s%.*s", prefix, (int)n, url);
    return out;
}

int ctl_parse_id(const char *s, long long *id)
{
    long long v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 16) return eg_errorf("\"%s\" is not a job id (a positive integer)", s);
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return eg_errorf("\"%s\" is not a job id (a positive integer)", s);
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > ID_MAX) return eg_errorf("job id %s is out of range", s);
    *id = v;
    return 0;
}

int ctl_query_add(char *buf, size_t size, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(buf);
    size_t need = len + 1 + strlen(name) + 1;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        need += unreserved(*p) ? 1 : 3;
    if (need + 1 > size) return eg_errorf("request URL too long");
    char *w = buf + len;
    *w++ = strchr(buf, '?') ? '&' : '?';
    for (const char *p = name; *p; p++) *w++ = *p;
    *w++ = '=';
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (unreserved(*p)) {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = '\0';
    return 0;
}

int ctl_query_add_ll(char *buf, size_t size, const char *name, long long value)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", value);
    return ctl_query_add(buf, size, name, v);
}

char *ctl_url_resolve(const char *base, const char *location)
{
    const char *head = base, *tail = location;
    size_t head_len = strlen(base);
    const char *sep = "/";
    if (scheme_len(location)) {
        head_len = 0;
        sep = "";
    } else if (location[0] == '/') {
        size_t sl = scheme_len(base);
        const char *path = strchr(base + sl, '/');
        head_len = path ? (size_t)(path - base) : strlen(base);
        sep = "";
    }
    size_t len = head_len + strlen(sep) + strlen(tail) + 1;
    char *out = malloc(len);
    if (!out) {
        eg_errorf("out of memory");
        return NULL;
    }
    snprintf(out, len, "%.*s%s%s", (int)head_len, head, sep, tail);
    return out;
}

int ctl_id_path(char *buf, size_t size, const char *collection, const char *id_text,
                const char *suffix, long long *id)
{
    long long v;
    EG_TRY(ctl_parse_id(id_text, &v));
    int w = snprintf(buf, size, "%s/%lld%s", collection, v, suffix);
    if (w < 0 || (size_t)w >= size) return eg_errorf("request URL too long");
    if (id) *id = v;
    return 0;
}

int ctl_job_path(char *buf, size_t size, const char *id_text, const char *suffix,
                 long long *id)
{
    return ctl_id_path(buf, size, "/v1/jobs", id_text, suffix, id);
}
