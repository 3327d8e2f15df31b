/* Uniform and flip label noise (Meta-Weight-Net's corruption matrices). */
#include "data/label_noise.h"

#include <stdlib.h>
#include <string.h>

#include "nn/rng.h"
#include "util/err.h"

int eg_label_noise(int32_t *labels, int n, int classes, const char *kind,
                   float p, uint64_t seed, uint8_t *corrupted)
{
    enum { NONE, UNIFORM, FLIP } k;
    if (!kind) return eg_errorf("label noise: kind missing");
    if (strcmp(kind, "none") == 0) k = NONE;
    else if (strcmp(kind, "uniform") == 0) k = UNIFORM;
    else if (strcmp(kind, "flip") == 0) k = FLIP;
    else
        return eg_errorf("label noise: unknown kind '%s' (expected none, "
                         "uniform or flip)", kind);
    if (!(p >= 0.0f && p <= 1.0f))
        return eg_errorf("label noise: probability %g outside [0, 1]",
                         (double)p);
    if (n < 0) return eg_errorf("label noise: negative count %d", n);
    if (classes < (k == FLIP ? 2 : 1))
        return eg_errorf("label noise: %d classes is too few for '%s'",
                         classes, kind);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return eg_errorf("label noise: label %d at index %d outside "
                             "[0, %d)", (int)labels[i], i, classes);

    int32_t *flip_to = NULL; // (classes) the one other class of each class
    eg_rng r;
    eg_rng_seed(&r, seed, 0);
    if (k == FLIP) {
        flip_to = malloc((size_t)classes * sizeof *flip_to);
        if (!flip_to)
            return eg_errorf("label noise: out of memory for %d classes",
                             classes);
        for (int c = 0; c < classes; c++) {
            int j = (int)eg_rng_below(&r, (uint32_t)classes - 1);
            flip_to[c] = j >= c ? j + 1 : j;
        }
    }
    for (int i = 0; i < n; i++) {
        int32_t orig = labels[i];
        if (k != NONE && eg_rng_uniform(&r) < p)
            labels[i] = k == UNIFORM ? (int32_t)eg_rng_below(&r, (uint32_t)classes)
                                     : flip_to[orig];
        if (corrupted) corrupted[i] = labels[i] != orig;
    }
    free(flip_to);
    return 0;
}
