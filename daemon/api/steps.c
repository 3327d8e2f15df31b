/* /v1/jobs/{id}/steps: a job's step log, paginated and downsampled. */
#include "api/api.h"

#include <jansson.h>
#include <string.h>

/* Whether by is a comma-separated list of step columns. */
static int columns_ok(const char *by)
{
    char name[32];
    for (const char *p = by;; p++) {
        size_t l = strcspn(p, ",");
        if (l == 0 || l >= sizeof name) return 0;
        memcpy(name, p, l);
        name[l] = '\0';
        if (eg_store_steps_column(name) < 0) return 0;
        p += l;
        if (!*p) return 1;
    }
}

void eg_api_steps_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {"after", "limit", "max_points", "by", NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    const char *by = eg_query_get(&rq->query, "by");
    if (by && !columns_ok(by)) {
        eg_reply_error(rp, 400, "invalid_parameter", "by",
                       "by is a comma-separated list of train_loss, meta_loss, hyper_norm, "
                       "lambda_norm, step_ms, meta_ms, cur_bytes, peak_bytes, not \"%.64s\"", by);
        return;
    }
    long long after, limit, max_points;
    if (eg_query_int(&rq->query, "after", -1, 1000000000000LL, -1, &after, rp) != 0 ||
        eg_query_int(&rq->query, "max_points", by ? 2 : 0, 10000, by ? 1000 : 0, &max_points,
                     rp) != 0 ||
        /* A downsampled page may cover a long range: its rows stay few. */
        eg_query_int(&rq->query, "limit", 1, max_points > 0 ? 100000000 : 10000, 1000, &limit,
                     rp) != 0)
        return;
    char *text = NULL;
    size_t len = 0;
    int rc = by ? eg_store_steps_minmax_page(rq->ctx->store, rq->id, (long)after, (int)limit,
                                             (int)max_points, by, &text, &len)
                : eg_store_steps_page(rq->ctx->store, rq->id, (long)after, (int)limit,
                                      (int)max_points, &text, &len);
    if (rc == 1) {
        eg_reply_error(rp, 404, "not_found", NULL, "no job %lld", (long long)rq->id);
        return;
    }
    if (rc != 0) {
        eg_reply_internal(rp, "reading steps");
        return;
    }
    eg_reply_json_text(rp, 200, text, len);
}
