/* Synthetic datasets in the real on-disk formats, for tests and benchmarks
 * that must run where no dataset is installed (the GPU machine). */
#ifndef EG_SYNTH_DATA_H
#define EG_SYNTH_DATA_H

#include <stdint.h>

/* Writes a CIFAR-10 binary folder under dir: data_batch_1..5.bin with
 * per_file records each and test_batch.bin with test records; pixels and
 * labels uniform, deterministic in seed. 0 on success, -1 with eg_errorf. */
int synth_cifar10(const char *dir, int per_file, int test, uint64_t seed);

/* Writes an IDX set into dir: PREFIX{train,t10k}-{images-idx3,labels-idx1}-
 * ubyte.gz with n_train and n_test images of rows x cols, labels uniform
 * over [first_label, first_label + classes), pixels a blob whose place
 * depends on the label (so a net can learn it) plus noise; deterministic
 * in seed. 0, or -1 with eg_errorf. */
int synth_idx(const char *dir, const char *prefix, int n_train, int n_test, int rows, int cols,
              int first_label, int classes, uint64_t seed);

#endif
