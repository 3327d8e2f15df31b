/* Image classification datasets held in host memory: the IDX (MNIST,
 * Fashion-MNIST) and CIFAR binary readers, slicing, per-channel
 * normalisation and gathering of batches. Batching and label noise live in
 * batcher.h and label_noise.h, included here so one header gives the whole
 * data layer.
 *
 * Every loader fills an eg_dataset that owns its buffers, with pixels scaled
 * from bytes to [0, 1]; on failure it returns -1 after eg_errorf() with a
 * message that names the file and what is wrong, and leaves *out zeroed (so
 * eg_dataset_free() on it is harmless). */
#ifndef EG_DATASET_H
#define EG_DATASET_H

#include <stdint.h>

#include "data/batcher.h"
#include "data/label_noise.h"

/* Upper bound on n * c * h * w a loader accepts (8 GiB of floats); a header
 * claiming more is treated as corrupt instead of attempting the allocation. */
#define EG_DATASET_MAX_VALUES ((uint64_t)1 << 31)

typedef struct eg_dataset {
    int n, c, h, w;  /* n samples of (c, h, w) */
    int classes;     /* labels lie in [0, classes) */
    float *x;        // (n, c, h, w)
    int32_t *y;      // (n)
    int owns;        /* 1: x and y are freed by eg_dataset_free */
} eg_dataset;

/* Reads an IDX image file (magic 0x00000803: n, rows, cols, then n*rows*cols
 * bytes) and its IDX label file (magic 0x00000801: n, then n bytes), either
 * raw or gzip-compressed. The result is (n, 1, rows, cols) with classes =
 * max label + 1. Fails on a missing file, bad magic, zero or implausible
 * dimensions, truncated or over-long data, or a count mismatch. */
int eg_idx_load(const char *images_path, const char *labels_path,
                eg_dataset *out);

/* The image count an IDX image file's header announces (the data is not
 * read). */
int eg_idx_count(const char *images_path, long *n);

/* Reads and concatenates CIFAR binary files. classes 10: records of 1 label
 * byte + 3072 pixel bytes; classes 100: 2 label bytes (coarse, fine; the
 * fine label is used) + 3072. Pixels are planar R, G, B of 32x32, giving
 * (n, 3, 32, 32). A file whose size is not a positive multiple of the record
 * size, or a label out of range, is corrupt. */
int eg_cifar_load(const char *const *paths, int n_paths, int classes,
                  eg_dataset *out);

/* Opens a named dataset's training (train != 0) or test split from dir:
 *   "fashion-mnist", "mnist", "idx"
 *           any IDX set: [PREFIX-]train-{images-idx3,labels-idx1}-ubyte and
 *           [PREFIX-]{t10k,test}-{images-idx3,labels-idx1}-ubyte, each
 *           gzip-compressed (.gz, preferred) or raw; PREFIX is anything
 *           ("emnist-letters-"), and a folder holding two sets is refused
 *   "cifar10"  data_batch_1..5.bin or test_batch.bin
 *   "cifar100" train.bin or test.bin
 * CIFAR files are looked for in dir, then in dir/cifar-10-batches-bin or
 * dir/cifar-100-binary. MNIST and Fashion-MNIST have 10 classes, CIFAR 10
 * or 100; an "idx" set's are counted from its labels (max + 1; the caller
 * matches a test split's to its training split's). dir NULL means
 * the default folder, which exists only for fashion-mnist
 * (EG_FASHION_MNIST_DIR, the Debian dataset-fashion-mnist package); the
 * others then fail with an error asking for a folder. */
#define EG_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
int eg_dataset_open(const char *name, const char *dir, int train,
                    eg_dataset *out);

/* 1 when dir holds the training files of dataset `name` (as
 * eg_dataset_open would find them), else 0. */
int eg_dataset_present(const char *name, const char *dir);

/* The number of samples of a split (as eg_dataset_open would load them),
 * from the files' headers or sizes alone. */
int eg_dataset_count(const char *name, const char *dir, int train, long *n);

/* Frees what d owns (nothing for a view) and zeroes *d. NULL is allowed. */
void eg_dataset_free(eg_dataset *d);

/* Makes *view a non-owning view of samples [begin, end) of src; requires
 * 0 <= begin < end <= src->n (empty views are rejected). The view is valid
 * while src's buffers are. */
int eg_dataset_slice(const eg_dataset *src, int begin, int end,
                     eg_dataset *view);

/* Per-channel mean and population standard deviation over all samples and
 * pixels, accumulated in double. mean and std have d->c entries. */
void eg_dataset_channel_stats(const eg_dataset *d, float *mean, float *std);

/* x = (x - mean[c]) / std[c] in place, for every sample and pixel. A channel
 * with std[c] <= 0 (constant) is only centred. Normalising a view changes
 * the samples it shares with its source. */
void eg_dataset_normalize(eg_dataset *d, const float *mean, const float *std);

/* Copies samples idx[0..count) into x and their labels into y (either may be
 * NULL to skip it). Every idx[i] must be < d->n. */
void eg_dataset_gather(const eg_dataset *d, const uint32_t *idx, int count,
                       float *x /* (count, c, h, w) */,
                       int32_t *y /* (count) */);

#endif
