/* Checkpoint files of deleted jobs (a job's, or a whole sweep's). */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"

void eg_api_remove_checkpoint(const eg_api_ctx *ctx, int64_t id)
{
    char *path = eg_sched_checkpoint_path(ctx->checkpoint_dir, id);
    if (!path) {
        EG_LOG(WARN, "api: job %lld: no checkpoint path: %s", (long long)id, eg_last_error());
        return;
    }
    size_t n = strlen(path);
    char *tmp = malloc(n + 5);
    const char *paths[2] = {path, tmp};
    if (tmp) snprintf(tmp, n + 5, "%s.tmp", path);
    for (int i = 0; i < 2; i++)
        if (paths[i] && unlink(paths[i]) != 0 && errno != ENOENT)
            EG_LOG(WARN, "api: job %lld: cannot remove %s: %s", (long long)id, paths[i],
                   strerror(errno));
    free(tmp);
    free(path);
}
