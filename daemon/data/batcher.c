/* Seeded, resumable mini-batch order. */
#include "data/batcher.h"

#include <stdlib.h>
#include <string.h>

#include "nn/rng.h"
#include "util/err.h"

int eg_batcher_init(eg_batcher *b, int n, int batch, uint64_t seed,
                    int shuffle, int drop_last)
{
    memset(b, 0, sizeof *b);
    if (n < 1) return eg_errorf("batcher: need at least one sample, got %d", n);
    if (batch < 1) return eg_errorf("batcher: batch size %d must be >= 1", batch);
    if (drop_last && batch > n)
        return eg_errorf("batcher: batch size %d exceeds the %d samples and "
                         "drop_last is set, so no batch would ever come",
                         batch, n);
    b->perm = malloc((size_t)n * sizeof *b->perm);
    if (!b->perm)
        return eg_errorf("batcher: out of memory for %d indices", n);
    b->n = (uint32_t)n;
    b->batch = (uint32_t)batch;
    b->seed = seed;
    b->shuffle = shuffle != 0;
    b->drop_last = drop_last != 0;
    return 0;
}

void eg_batcher_free(eg_batcher *b)
{
    if (!b) return;
    free(b->perm);
    memset(b, 0, sizeof *b);
}

int eg_batcher_batches_per_epoch(const eg_batcher *b)
{
    return (int)(b->drop_last ? b->n / b->batch
                              : (b->n + b->batch - 1) / b->batch);
}

/* True when no further batch starts at the current offset in this epoch. */
static int epoch_done(const eg_batcher *b)
{
    uint32_t left = b->n - b->offset;
    return left == 0 || (b->drop_last && left < b->batch);
}

/* Fills perm with the order of the current epoch. */
static void make_order(eg_batcher *b)
{
    for (uint32_t i = 0; i < b->n; i++) b->perm[i] = i;
    if (b->shuffle) {
        eg_rng r;
        eg_rng_seed(&r, b->seed, b->epoch);
        eg_rng_shuffle(&r, b->perm, b->n);
    }
    b->perm_epoch = b->epoch;
    b->perm_valid = 1;
}

int eg_batcher_next(eg_batcher *b, const uint32_t **idx, int *count)
{
    if (b->offset > b->n)
        return eg_errorf("batcher: position offset %u beyond the %u samples",
                         b->offset, b->n);
    if (epoch_done(b)) {
        /* A restored position may sit at the end of an epoch. */
        b->epoch++;
        b->offset = 0;
    }
    if (!b->perm_valid || b->perm_epoch != b->epoch) make_order(b);
    uint32_t left = b->n - b->offset;
    uint32_t take = left < b->batch ? left : b->batch;
    *idx = b->perm + b->offset;
    *count = (int)take;
    b->offset += take;
    if (epoch_done(b)) {
        b->epoch++;
        b->offset = 0;
    }
    return 0;
}

int eg_batcher_checkpoint_items(eg_batcher *b, const char *prefix, eg_ckpt_list *l)
{
    if (eg_ckpt_add(l, prefix, "epoch", &b->epoch, sizeof b->epoch, 0) != 0) return -1;
    return eg_ckpt_add(l, prefix, "offset", &b->offset, sizeof b->offset, 0);
}
