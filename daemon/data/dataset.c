/* Operations on a loaded dataset: free, slice, statistics, normalisation,
 * gathering. */
#include "data/dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void eg_dataset_free(eg_dataset *d)
{
    if (!d) return;
    if (d->owns) {
        free(d->x);
        free(d->y);
    }
    memset(d, 0, sizeof *d);
}

int eg_dataset_slice(const eg_dataset *src, int begin, int end,
                     eg_dataset *view)
{
    if (begin < 0 || end > src->n || begin >= end)
        return eg_errorf("dataset slice [%d, %d) out of range for %d samples",
                         begin, end, src->n);
    size_t sample = (size_t)src->c * src->h * src->w;
    *view = *src;
    view->n = end - begin;
    view->x = src->x + (size_t)begin * sample;
    view->y = src->y + begin;
    view->owns = 0;
    return 0;
}

void eg_dataset_channel_stats(const eg_dataset *d, float *mean, float *std)
{
    size_t plane = (size_t)d->h * d->w;
    size_t count = (size_t)d->n * plane;
    for (int c = 0; c < d->c; c++) {
        /* Two passes: the mean, then squared deviations from it. */
        double sum = 0.0;
        for (int i = 0; i < d->n; i++) {
            const float *p = d->x + ((size_t)i * d->c + c) * plane;
            for (size_t k = 0; k < plane; k++) sum += p[k];
        }
        double m = count ? sum / (double)count : 0.0;
        double ss = 0.0;
        for (int i = 0; i < d->n; i++) {
            const float *p = d->x + ((size_t)i * d->c + c) * plane;
            for (size_t k = 0; k < plane; k++) {
                double e = p[k] - m;
                ss += e * e;
            }
        }
        mean[c] = (float)m;
        std[c] = count ? (float)sqrt(ss / (double)count) : 0.0f;
    }
}

void eg_dataset_normalize(eg_dataset *d, const float *mean, const float *std)
{
    size_t plane = (size_t)d->h * d->w;
    for (int i = 0; i < d->n; i++) {
        for (int c = 0; c < d->c; c++) {
            float *p = d->x + ((size_t)i * d->c + c) * plane;
            float m = mean[c];
            float s = std[c] > 0.0f ? std[c] : 1.0f;
            for (size_t k = 0; k < plane; k++) p[k] = (p[k] - m) / s;
        }
    }
}

void eg_dataset_gather(const eg_dataset *d, const uint32_t *idx, int count,
                       float *x, int32_t *y)
{
    size_t sample = (size_t)d->c * d->h * d->w;
    for (int i = 0; i < count; i++) {
        if (x) memcpy(x + (size_t)i * sample, d->x + (size_t)idx[i] * sample,
                      sample * sizeof *x);
        if (y) y[i] = d->y[idx[i]];
    }
}
