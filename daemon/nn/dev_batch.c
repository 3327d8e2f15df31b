#include "nn/dev_batch.h"

#include <stdlib.h>

#include "util/err.h"

int eg_dev_batch_init(eg_dev_batch *b, eg_backend *be, int max, const eg_dataset *like)
{
    *b = (eg_dev_batch){.be = be, .max = max};
    b->sample = (size_t)like->c * like->h * like->w;
    b->x = eg_alloc_floats(be, (size_t)max * b->sample);
    b->y = be->alloc(be, (size_t)max * sizeof(int32_t));
    b->host_x = malloc((size_t)max * b->sample * sizeof(float));
    b->host_y = malloc((size_t)max * sizeof(int32_t));
    if (!b->x || !b->y || !b->host_x || !b->host_y) {
        eg_dev_batch_free(b);
        return eg_errorf("batch: out of memory for %d samples", max);
    }
    return 0;
}

int eg_dev_batch_load(eg_dev_batch *b, const eg_dataset *d, const uint32_t *idx, int count)
{
    if (count < 1 || count > b->max)
        return eg_errorf("batch: %d samples outside 1..%d", count, b->max);
    eg_dataset_gather(d, idx, count, b->host_x, b->host_y);
    EG_TRY(b->be->upload(b->be, b->x, b->host_x, count * b->sample * sizeof(float)));
    EG_TRY(b->be->upload(b->be, b->y, b->host_y, (size_t)count * sizeof(int32_t)));
    b->count = count;
    return 0;
}

void eg_dev_batch_free(eg_dev_batch *b)
{
    if (b->be) {
        b->be->free(b->be, b->x);
        b->be->free(b->be, b->y);
    }
    free(b->host_x);
    free(b->host_y);
    *b = (eg_dev_batch){0};
}
