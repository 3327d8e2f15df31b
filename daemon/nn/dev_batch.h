/* A batch of labelled samples on the device, with its host staging. */
#ifndef EG_DEV_BATCH_H
#define EG_DEV_BATCH_H

#include "data/dataset.h"
#include "nn/backend.h"

/* A batch on the device with its host staging. */
typedef struct eg_dev_batch {
    eg_backend *be;
    int max, count;
    size_t sample;   /* floats per sample */
    float *x;        /* (max, c, h, w) device */
    int32_t *y;      /* (max) device */
    float *host_x;   /* (max, c, h, w) */
    int32_t *host_y; /* (max) */
} eg_dev_batch;

int eg_dev_batch_init(eg_dev_batch *b, eg_backend *be, int max, const eg_dataset *like);

/* Gathers samples idx[0..count) of d and uploads them. */
int eg_dev_batch_load(eg_dev_batch *b, const eg_dataset *d, const uint32_t *idx, int count);

void eg_dev_batch_free(eg_dev_batch *b);

#endif
