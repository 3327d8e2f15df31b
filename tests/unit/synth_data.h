/* Synthetic datasets in the real on-disk formats, for tests and benchmarks
 * that must run where no dataset is installed (the GPU machine). */
#ifndef EG_SYNTH_DATA_H
#define EG_SYNTH_DATA_H

#include <stdint.h>

/* Writes a CIFAR-10 binary folder under dir: data_batch_1..5.bin with
 * per_file records each and test_batch.bin with test records; pixels and
 * labels uniform, deterministic in seed. 0 on success, -1 with eg_errorf. */
int synth_cifar10(const char *dir, int per_file, int test, uint64_t seed);

#endif
