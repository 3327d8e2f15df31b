/* libFuzzer harness: the CIFAR-10/100 binary reader. The input's first
 * byte picks CIFAR-10 or CIFAR-100; the rest is the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "fuzz_file.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int classes = data[0] & 1 ? 100 : 10;
    const char *path = fuzz_file("cifar", data + 1, size - 1);
    if (!path) return 0;
    eg_dataset d;
    eg_clear_error();
    if (eg_cifar_load(&path, 1, classes, &d) != 0) {
        if (!strstr(eg_last_error(), "evograd-fuzz-")) abort();
        return 0;
    }
    if (d.n < 1 || d.c != 3 || d.h != 32 || d.w != 32 || d.classes != classes) abort();
    for (int i = 0; i < d.n; i++)
        if (d.y[i] < 0 || d.y[i] >= classes) abort();
    eg_dataset_free(&d);
    return 0;
}
