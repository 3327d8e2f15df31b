/* Mini-batches of sample indices over epochs, with seeded shuffling.
 *
 * Epoch e visits the permutation of [0, n) given by a Fisher-Yates shuffle
 * with eg_rng_seed(seed, e) (or the identity when shuffling is off), in
 * consecutive batches of `batch` indices; the last batch of an epoch is
 * shorter, or skipped when drop_last is set. The order of epoch e depends
 * only on (seed, e), so the position (epoch, offset) is all a checkpoint
 * needs: writing saved values back into those two fields resumes the same
 * sequence of batches. */
#ifndef EG_BATCHER_H
#define EG_BATCHER_H

#include <stdint.h>

#include "util/ckpt.h"

typedef struct eg_batcher {
    uint32_t n, batch;
    uint64_t seed;
    int shuffle, drop_last;

    /* Position: the next batch starts at perm[offset] of epoch `epoch`.
     * Both may be written directly to restore a saved position. */
    uint64_t epoch;
    uint32_t offset;

    uint32_t *perm;       // (n) order of perm_epoch
    uint64_t perm_epoch;  /* epoch held in perm; perm_valid 0: none */
    int perm_valid;
} eg_batcher;

/* Prepares a batcher over n samples at position (0, 0). Requires n >= 1,
 * batch >= 1 and, with drop_last, batch <= n (otherwise no batch would ever
 * come). */
int eg_batcher_init(eg_batcher *b, int n, int batch, uint64_t seed,
                    int shuffle, int drop_last);

/* Frees the permutation and zeroes *b. NULL is allowed. */
void eg_batcher_free(eg_batcher *b);

/* Points *idx at the next batch's indices (valid until the next call) and
 * sets *count (1..batch), then advances the position; after the last batch
 * of an epoch the position becomes (epoch + 1, 0). Fails only for a restored
 * offset beyond n. */
int eg_batcher_next(eg_batcher *b, const uint32_t **idx, int *count);

/* Appends the position (epoch, offset) as "prefix.epoch", "prefix.offset". */
int eg_batcher_checkpoint_items(eg_batcher *b, const char *prefix, eg_ckpt_list *l);

/* Number of batches per epoch. */
int eg_batcher_batches_per_epoch(const eg_batcher *b);

#endif
