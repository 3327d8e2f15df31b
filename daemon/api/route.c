/* The static route table, path matching and dispatch. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

const eg_route eg_routes[] = {
    {"POST", "/v1/jobs", eg_api_jobs_post, 0},
    {"GET", "/v1/jobs", eg_api_jobs_list, 0},
    {"GET", "/v1/jobs/{id}", eg_api_job_get, 0},
    {"DELETE", "/v1/jobs/{id}", eg_api_job_delete, 0},
    {"GET", "/v1/jobs/{id}/steps", eg_api_steps_get, 0},
    {"GET", "/v1/jobs/{id}/evals", eg_api_evals_get, 0},
    {"GET", "/v1/jobs/{id}/events", eg_api_events_get, 0},
    {"POST", "/v1/jobs/{id}/cancel", eg_api_job_cancel, 0},
    {"GET", "/v1/events", eg_api_all_events_get, 0},
    {"POST", "/v1/sweeps", eg_api_sweeps_post, 0},
    {"GET", "/v1/sweeps", eg_api_sweeps_list, 0},
    {"GET", "/v1/sweeps/{id}", eg_api_sweep_get, 0},
    {"DELETE", "/v1/sweeps/{id}", eg_api_sweep_delete, 0},
    {"POST", "/v1/sweeps/{id}/cancel", eg_api_sweep_cancel, 0},
    {"GET", "/v1/devices", eg_api_devices_get, 0},
    {"GET", "/v1/workers", eg_api_workers_get, 0},
    {"GET", "/healthz", eg_api_health_get, EG_ROUTE_PUBLIC},
    {"GET", "/metrics", eg_api_metrics_get, 0},
    {"GET", "/", eg_api_ui_get, EG_ROUTE_PUBLIC},
    {"GET", "/ui/app.js", eg_api_ui_get, EG_ROUTE_PUBLIC},
    {"GET", "/ui/style.css", eg_api_ui_get, EG_ROUTE_PUBLIC},
    {"GET", "/ui/uplot.js", eg_api_ui_get, EG_ROUTE_PUBLIC},
    {"GET", "/ui/uplot.css", eg_api_ui_get, EG_ROUTE_PUBLIC},
    {"GET", "/ui/examples.json", eg_api_ui_get, EG_ROUTE_PUBLIC},
    {NULL, NULL, NULL, 0},
};

/* How a path fits a pattern. */
enum { FIT_NO, FIT_YES, FIT_BAD_ID };

/* Compares path with pattern segment by segment; "{id}" takes one
 * non-empty segment, which must be a job id for FIT_YES. */
static int fit(const char *pattern, const char *path, int64_t *id)
{
    int bad_id = 0;
    const char *a = pattern, *b = path;
    while (*a && *b) {
        if (*a != '/' || *b != '/') return FIT_NO;
        a++, b++;
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        if (la == 4 && memcmp(a, "{id}", 4) == 0) {
            char seg[24];
            if (lb == 0) return FIT_NO;
            if (lb >= sizeof seg) {
                bad_id = 1;
            } else {
                memcpy(seg, b, lb);
                seg[lb] = '\0';
                if (eg_parse_id(seg, id) != 0) bad_id = 1;
            }
        } else if (la != lb || memcmp(a, b, la) != 0) {
            return FIT_NO;
        }
        a += la, b += lb;
    }
    if (*a || *b) return FIT_NO;
    return bad_id ? FIT_BAD_ID : FIT_YES;
}

/* Appends method (and HEAD after GET) to the Allow list unless there. */
static void allow_add(char *allow, size_t cap, const char *method)
{
    const char *names[2] = {method, strcmp(method, "GET") == 0 ? "HEAD" : NULL};
    for (int i = 0; i < 2 && names[i]; i++) {
        size_t n = strlen(allow), m = strlen(names[i]);
        int present = 0;
        for (const char *p = allow; (p = strstr(p, names[i])) != NULL; p += m)
            if ((p == allow || p[-1] == ' ') && (p[m] == ',' || p[m] == '\0')) present = 1;
        if (!present) snprintf(allow + n, cap - n, "%s%s", n ? ", " : "", names[i]);
    }
}

eg_match_kind eg_route_match(const char *method, const char *path, const eg_route **route,
                             int64_t *id, char *allow, size_t cap)
{
    int bad_id = 0;
    if (cap) allow[0] = '\0';
    *route = NULL;
    *id = 0;
    /* HEAD is GET without the body. */
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    for (const eg_route *r = eg_routes; r->method; r++) {
        int64_t got = 0;
        int f = fit(r->pattern, path, &got);
        if (f == FIT_BAD_ID) bad_id = 1;
        if (f != FIT_YES) continue;
        if (strcmp(r->method, want) == 0) {
            *route = r;
            *id = got;
            return EG_MATCH_OK;
        }
        if (cap) allow_add(allow, cap, r->method);
    }
    if (cap && allow[0]) return EG_MATCH_BAD_METHOD;
    return bad_id ? EG_MATCH_BAD_ID : EG_MATCH_NO_ROUTE;
}

void eg_api_dispatch(eg_request *rq, eg_reply *rp)
{
    const eg_route *route;
    char allow[sizeof rp->allow];
    eg_match_kind m = eg_route_match(rq->method, rq->path, &route, &rq->id, allow, sizeof allow);
    int public_route = m == EG_MATCH_OK && (route->flags & EG_ROUTE_PUBLIC);
    if (!public_route && !eg_auth_ok(rq->authorization, rq->ctx->token)) {
        eg_reply_error(rp, 401, "unauthorized", NULL,
                       rq->authorization ? "wrong bearer token"
                                         : "this daemon needs \"Authorization: Bearer TOKEN\"");
        return;
    }
    switch (m) {
    case EG_MATCH_OK:
        route->handler(rq, rp);
        return;
    case EG_MATCH_BAD_METHOD:
        eg_reply_error(rp, 405, "method_not_allowed", NULL, "%.16s %.200s: allowed here: %s",
                       rq->method, rq->path, allow);
        memcpy(rp->allow, allow, sizeof rp->allow);
        return;
    case EG_MATCH_BAD_ID:
        eg_reply_error(rp, 404, "not_found", NULL, "no such %s: %.200s (ids are integers from 1)",
                       strncmp(rq->path, "/v1/sweeps/", 11) == 0 ? "sweep" : "job", rq->path);
        return;
    case EG_MATCH_NO_ROUTE:
        break;
    }
    eg_reply_error(rp, 404, "not_found", NULL, "no such resource: %.200s", rq->path);
}
