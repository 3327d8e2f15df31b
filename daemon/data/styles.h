/* Fixed image styles that make new few-shot domains of one dataset's
 * images (the CPU-sized cross-domain protocol). A style maps a float
 * (c, h, w) image in [0, 1] to another image of the same shape in [0, 1];
 * it is deterministic and fixed per sample (the only randomness, the
 * noise of "blur-noise", is keyed by the sample), so a styled dataset is a
 * fixed dataset, never an augmentation. Every channel is styled alike.
 *
 *   "original"    x
 *   "inverted"    1 - x
 *   "edges"       Sobel gradient magnitude sqrt(gx^2 + gy^2) of each
 *                 channel, gx with [-1 0 1; -2 0 2; -1 0 1] (correlation,
 *                 x to the right), gy its transpose (y downwards), pixels
 *                 outside the image 0; then divided by the largest
 *                 magnitude over the whole image when that is > 0
 *   "blur-noise"  3x3 Gaussian blur [1 2 1]^T [1 2 1] / 16 with the
 *                 nearest edge pixel standing in for pixels outside the
 *                 image, plus 0.1 * eg_gaussian(EG_STYLE_NOISE_KEY, sample,
 *                 p) at flat pixel p = (ch * h + y) * w + x, clamped to
 *                 [0, 1]
 *   "contrast"    sqrt(x) (gamma 0.5: dark tones lifted)
 *   "solarize"    x below 0.5, 1 - x from 0.5 up (bright tones inverted,
 *                 dark kept: a partial inversion unlike "inverted")
 *   "stripes"     x times 1 on rows y with (y / 2) even and 0.5 on the
 *                 others: horizontal bands two pixels high multiplied in
 */
#ifndef EG_STYLES_H
#define EG_STYLES_H

#include <stdint.h>

typedef enum eg_style {
    EG_STYLE_ORIGINAL,
    EG_STYLE_INVERTED,
    EG_STYLE_EDGES,
    EG_STYLE_BLUR_NOISE,
    EG_STYLE_CONTRAST,
    EG_STYLE_SOLARIZE,
    EG_STYLE_STRIPES,
    EG_STYLE_COUNT,
} eg_style;

/* The Philox key of the "blur-noise" noise (its stream is the sample). */
#define EG_STYLE_NOISE_KEY 0x626c75722d6e6f69ull

/* The names above, in eg_style order, NULL-terminated. */
const char *const *eg_style_names(void);

/* Looks up a style by name; NULL is "original". -1 with eg_errorf listing
 * the known names when there is no such style. */
int eg_style_parse(const char *name, eg_style *out);

/* Writes style s of src into dst, both (c, h, w) and distinct; sample
 * keys the noise of "blur-noise" (the same sample gives the same noise)
 * and is unused by the other styles. */
void eg_style_apply(eg_style s, const float *src /* (c, h, w) */, float *dst /* (c, h, w) */, int c,
                    int h, int w, uint64_t sample);

#endif
