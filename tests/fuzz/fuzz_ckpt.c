/* libFuzzer harness: the checkpoint reader (meta/ckpt_file.c) on the items
 * of a small run: the input is the file. A read either fails with a
 * message naming the file, leaving the items as they were, or fills them
 * from a file whose checksum held. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "meta/ckpt_file.h"
#include "util/err.h"

static uint64_t step;
static float theta[6], moments[12];
static int32_t order[2];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const eg_ckpt_item items[] = {
        {"run.step", &step, sizeof step, 0},
        {"model.theta", theta, sizeof theta, 0},
        {"model.optimizer.m", moments, sizeof moments, 0},
        {"train_order.epoch", order, sizeof order, 0},
    };
    const char *path = fuzz_file("ckpt", data, size);
    if (!path) return 0;
    memset(theta, 0x5a, sizeof theta);
    eg_clear_error();
    if (eg_ckpt_file_read(NULL, path, items, 4) != 0) {
        if (!strstr(eg_last_error(), "evograd-fuzz-")) abort();
        for (size_t i = 0; i < sizeof theta; i++)
            if (((uint8_t *)theta)[i] != 0x5a) abort(); /* nothing loaded */
        return 0;
    }
    return 0;
}
