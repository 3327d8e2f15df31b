/* GET / and /ui/...: the web page's embedded files. They are public (the
 * page asks for the bearer token itself and sends it with its API calls). */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/ui.h"

void eg_api_ui_get(const eg_request *rq, eg_reply *rp)
{
    static const char *const known[] = {NULL};
    if (eg_query_check(&rq->query, known, rp) != 0) return;
    for (const eg_ui_asset *a = eg_ui_assets; a->path; a++) {
        if (strcmp(a->path, rq->path) != 0) continue;
        char *copy = malloc(a->len + 1);
        if (!copy) {
            eg_reply_error(rp, 500, "internal", NULL, "out of memory");
            return;
        }
        memcpy(copy, a->data, a->len);
        copy[a->len] = '\0';
        eg_reply_clear(rp);
        rp->status = 200;
        rp->text = copy;
        rp->text_len = a->len;
        rp->content_type = a->content_type;
        return;
    }
    eg_reply_error(rp, 404, "not_found", NULL, "no such resource: %.200s", rq->path);
}
