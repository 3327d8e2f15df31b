/* libFuzzer harness: the JPEG and PNG decoders, then the transforms.
 *
 * The input is an image file. A decode either fails with a message naming
 * the file and leaves no pixels, or gives an image within the size caps
 * whose test and training transforms are finite and in [0, 1]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_decode.h"
#include "data/image_xform.h"
#include "fuzz_file.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("image", data, size);
    if (!path) return 0;
    eg_image8 im;
    eg_clear_error();
    if (eg_image_decode_file(path, &im) != 0) {
        if (!strstr(eg_last_error(), "evograd-fuzz-")) abort(); /* names the file */
        if (im.rgb || im.h || im.w) abort();
        return 0;
    }
    if (im.h < 1 || im.w < 1 || im.h > EG_IMAGE_MAX_SIDE || im.w > EG_IMAGE_MAX_SIDE) abort();
    if ((uint64_t)im.h * im.w > EG_IMAGE_MAX_PIXELS) abort();
    if ((size_t)im.h * im.w <= (1u << 20)) {
        enum { SIDE = 8 };
        float *x = malloc(sizeof *x * 3 * im.h * im.w); /* (3, h, w) */
        float out[3 * SIDE * SIDE];
        if (!x) abort();
        eg_image8_to_float(&im, x);
        for (int train = 0; train < 2; train++) {
            int rc = train ? eg_image_train_xform(x, 3, im.h, im.w, 1, (uint64_t)size, SIDE, out)
                           : eg_image_test_xform(x, 3, im.h, im.w, SIDE, out);
            if (rc != 0) abort();
            for (int i = 0; i < 3 * SIDE * SIDE; i++)
                if (!(out[i] >= -1e-5f && out[i] <= 1 + 1e-5f)) abort();
        }
        free(x);
    }
    eg_image8_free(&im);
    return 0;
}
