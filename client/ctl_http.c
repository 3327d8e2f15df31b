#include "ctl_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"

typedef struct sink {
    ctl_reply *r;
    size_t cap;
    int too_big, no_mem;
} sink;

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    sink *s = ctx;
    ctl_reply *r = s->r;
    size_t add = size * n;
    if (add > CTL_REPLY_MAX - r->len) {
        s->too_big = 1;
        return 0;
    }
    if (r->len + add + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < r->len + add + 1) cap *= 2;
        char *p = realloc(r->body, cap);
        if (!p) {
            s->no_mem = 1;
            return 0;
        }
        r->body = p;
        s->cap = cap;
    }
    memcpy(r->body + r->len, data, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

/* Keeps the Location header's value (the last one, blanks trimmed). */
static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    sink *s = ctx;
    size_t len = size * n;
    static const char name[] = "location:";
    if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        const char *v = data + sizeof name - 1;
        size_t vl = len - (sizeof name - 1);
        while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
        while (vl && strchr(" \t\r\n", v[vl - 1])) vl--;
        char *copy = malloc(vl + 1);
        if (!copy) {
            s->no_mem = 1;
            return 0;
        }
        memcpy(copy, v, vl);
        copy[vl] = '\0';
        free(s->r->location);
        s->r->location = copy;
    }
    return len;
}

int ctl_http(ctl_conn *c, const char *method, const char *path, const char *body, size_t len,
             ctl_reply *r)
{
    *r = (ctl_reply){0};
    eg_clear_error();
    if (!c->curl && !(c->curl = curl_easy_init())) return eg_errorf("cannot start libcurl");
    CURL *h = c->curl;
    curl_easy_reset(h); /* keeps the open connection */

    size_t url_len = strlen(c->base) + strlen(path) + 1;
    char *url = malloc(url_len);
    if (!url) return eg_errorf("out of memory");
    snprintf(url, url_len, "%s%s", c->base, path);

    struct curl_slist *headers = NULL, *tmp;
    char auth[4200];
    int rc = -1;
    sink s = {.r = r};
    char errbuf[CURL_ERROR_SIZE] = "";
    if (!(tmp = curl_slist_append(headers, "Accept: application/json"))) goto done;
    headers = tmp;
    if (body) {
        if (!(tmp = curl_slist_append(headers, "Content-Type: application/json"))) goto done;
        headers = tmp;
    }
    if (c->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        if (!(tmp = curl_slist_append(headers, auth))) goto done;
        headers = tmp;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s > 0 ? c->timeout_s : 30L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "evogradctl");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
    if (body || strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

    CURLcode cc = curl_easy_perform(h);
    if (s.too_big) {
        eg_errorf("%s %s: the reply is larger than %u MiB", method, url, CTL_REPLY_MAX >> 20);
    } else if (s.no_mem) {
        eg_errorf("%s %s: out of memory", method, url);
    } else if (cc != CURLE_OK) {
        eg_errorf("%s %s: %s", method, url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        if (!r->body && !(r->body = calloc(1, 1))) {
            eg_errorf("out of memory");
        } else {
            rc = 0;
        }
    }
done:
    if (rc != 0 && !eg_last_error()[0]) eg_errorf("out of memory");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(headers);
    free(url);
    return rc;
}

void ctl_reply_free(ctl_reply *r)
{
    free(r->body);
    free(r->location);
    *r = (ctl_reply){0};
}

void ctl_conn_close(ctl_conn *c)
{
    if (c->curl) curl_easy_cleanup(c->curl);
    c->curl = NULL;
}
