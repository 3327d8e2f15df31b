/* Synthetic label noise as in the Meta-Weight-Net experiments (Shu et al.,
 * 2019, load_corrupted_data.py): each label is redrawn from row
 * `label` of a corruption matrix C.
 *   "uniform"  C = p * (1/classes) + (1 - p) * I: with probability p the
 *              label is redrawn uniformly over all classes (it may stay the
 *              same, so the expected fraction changed is p (1 - 1/classes)).
 *   "flip"     each class i is given once one other class j_i != i; C has
 *              1 - p on the diagonal and p at (i, j_i).
 *   "none"     labels are left unchanged. */
#ifndef EG_LABEL_NOISE_H
#define EG_LABEL_NOISE_H

#include <stdint.h>

/* Corrupts labels[0..n) in place, deterministically in seed. corrupted, if
 * not NULL, receives 1 where the final label differs from the original and
 * 0 elsewhere. Fails, changing nothing, on an unknown kind, p outside
 * [0, 1], classes < 1 (< 2 for "flip") or a label outside [0, classes). */
int eg_label_noise(int32_t *labels, int n, int classes, const char *kind,
                   float p, uint64_t seed, uint8_t *corrupted /* (n) */);

#endif
