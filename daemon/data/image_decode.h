/* JPEG (libjpeg-turbo) and PNG (libpng) decoding to 8-bit RGB.
 *
 * Every colour type ends as three bytes a pixel: grey is replicated, CMYK
 * is converted as PIL does, a palette is expanded, 16-bit samples keep
 * their high byte and alpha (or a tRNS chunk) is dropped. A corrupt,
 * truncated or absurdly large image is an error naming it, never an exit;
 * so is a file too short to hold the pixels its header announces, found
 * before they are allocated. */
#ifndef EG_IMAGE_DECODE_H
#define EG_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* Largest side and pixel count a decoder accepts; bigger headers are
 * refused before anything is allocated for the pixels. */
#define EG_IMAGE_MAX_SIDE 16384
#define EG_IMAGE_MAX_PIXELS ((uint64_t)1 << 26)

/* Largest image file read (bytes). */
#define EG_IMAGE_MAX_FILE ((size_t)1 << 28)

typedef struct eg_image8 {
    int h, w;
    uint8_t *rgb; /* (h, w, 3) */
} eg_image8;

/* Decodes an in-memory JPEG or PNG (told apart by their signatures) into
 * *out, owned by the caller (eg_image8_free). name is what error messages
 * call the image. On failure returns -1 after eg_errorf() and leaves *out
 * zeroed. */
int eg_image_decode_mem(const char *name, const uint8_t *buf, size_t len, eg_image8 *out);

/* Reads and decodes the image file at path, as eg_image_decode_mem. */
int eg_image_decode_file(const char *path, eg_image8 *out);

/* Frees the pixels and zeroes *im; harmless on a zeroed image. */
void eg_image8_free(eg_image8 *im);

/* Writes im as (3, h, w) floats in [0, 1] (byte / 255) into out. */
void eg_image8_to_float(const eg_image8 *im, float *out);

#endif
