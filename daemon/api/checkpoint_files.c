/* Checkpoint files of deleted jobs (a job's, or a whole sweep's). */
#include "api/api.h"

#include <stdlib.h>

#include "meta/ckpt_file.h"
#include "util/err.h"
#include "util/log.h"

void eg_api_remove_checkpoint(const eg_api_ctx *ctx, int64_t id)
{
    if (eg_sched_checkpoints_remove(ctx->checkpoint_dir, id) != 0)
        EG_LOG(WARN, "api: job %lld: %s", (long long)id, eg_last_error());
}
