/* libFuzzer harness: the IDX reader (raw or gzip), image and label files.
 *
 * The input's first byte splits the rest in two: the image file and the
 * label file. A load either fails with a message naming a file or gives a
 * dataset whose sizes and labels agree with themselves. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "fuzz_file.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t cut = size > 1 ? (size_t)data[0] * (size - 1) / 255 : 0;
    const char *images = fuzz_file("images", data + 1, cut);
    const char *labels = fuzz_file("labels", data + 1 + cut, size - 1 - cut);
    if (!images || !labels) return 0;
    long n = -1;
    if (eg_idx_count(images, &n) == 0 && n < 0) abort();
    eg_dataset d;
    eg_clear_error();
    if (eg_idx_load(images, labels, &d) != 0) {
        if (!strstr(eg_last_error(), "evograd-fuzz-")) abort(); /* names the file */
        if (d.x || d.y || d.n) abort();
        return 0;
    }
    if (d.n < 1 || d.c != 1 || d.h < 1 || d.w < 1 || d.n != n) abort();
    for (int i = 0; i < d.n; i++)
        if (d.y[i] < 0 || d.y[i] >= d.classes) abort();
    float sum = 0;
    for (size_t i = 0; i < (size_t)d.n * d.h * d.w; i++) sum += d.x[i];
    if (!(sum >= 0)) abort();
    eg_dataset_free(&d);
    return 0;
}
