/* The fixed styles of styles.h, one function each, written for clarity at
 * the 28-32 pixel sizes they are applied at. */
#include "data/styles.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "nn/philox.h"
#include "util/err.h"

static const char *const style_names[EG_STYLE_COUNT + 1] = {
    "original", "inverted", "edges", "blur-noise", "contrast", "solarize", "stripes", NULL,
};

const char *const *eg_style_names(void)
{
    return style_names;
}

int eg_style_parse(const char *name, eg_style *out)
{
    if (!name) name = "original";
    for (int s = 0; s < EG_STYLE_COUNT; s++) {
        if (strcmp(name, style_names[s]) == 0) {
            *out = (eg_style)s;
            return 0;
        }
    }
    char known[256] = "";
    size_t at = 0;
    for (int s = 0; s < EG_STYLE_COUNT && at < sizeof known; s++)
        at +=
            (size_t)snprintf(known + at, sizeof known - at, "%s%s", s ? ", " : "", style_names[s]);
    return eg_errorf("style '%s': unknown (one of %s)", name, known);
}

/* Pixel (y, x) of plane p (h, w), 0 outside the image. */
static float at_zero(const float *p, int h, int w, int y, int x)
{
    return (y < 0 || y >= h || x < 0 || x >= w) ? 0.0f : p[(size_t)y * w + x];
}

/* Pixel (y, x) of plane p (h, w), the nearest edge pixel outside it. */
static float at_clamp(const float *p, int h, int w, int y, int x)
{
    y = y < 0 ? 0 : y >= h ? h - 1 : y;
    x = x < 0 ? 0 : x >= w ? w - 1 : x;
    return p[(size_t)y * w + x];
}

static void edges(const float *src, float *dst, int c, int h, int w)
{
    float max = 0.0f;
    for (int ch = 0; ch < c; ch++) {
        const float *p = src + (size_t)ch * h * w;
        float *q = dst + (size_t)ch * h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float a = at_zero(p, h, w, y - 1, x - 1), b = at_zero(p, h, w, y - 1, x),
                      cc = at_zero(p, h, w, y - 1, x + 1), d = at_zero(p, h, w, y, x - 1),
                      f = at_zero(p, h, w, y, x + 1), g = at_zero(p, h, w, y + 1, x - 1),
                      k = at_zero(p, h, w, y + 1, x), l = at_zero(p, h, w, y + 1, x + 1);
                float gx = (cc + 2.0f * f + l) - (a + 2.0f * d + g);
                float gy = (g + 2.0f * k + l) - (a + 2.0f * b + cc);
                float m = sqrtf(gx * gx + gy * gy);
                q[(size_t)y * w + x] = m;
                if (m > max) max = m;
            }
    }
    if (max > 0.0f)
        for (size_t i = 0; i < (size_t)c * h * w; i++) dst[i] /= max;
}

static void blur_noise(const float *src, float *dst, int c, int h, int w, uint64_t sample)
{
    static const float k[3] = {1.0f, 2.0f, 1.0f};
    for (int ch = 0; ch < c; ch++) {
        const float *p = src + (size_t)ch * h * w;
        float *q = dst + (size_t)ch * h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float s = 0.0f;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                        s += k[dy + 1] * k[dx + 1] * at_clamp(p, h, w, y + dy, x + dx);
                size_t i = ((size_t)ch * h + y) * w + x;
                float v = s / 16.0f + 0.1f * (float)eg_gaussian(EG_STYLE_NOISE_KEY, sample, i);
                q[(size_t)y * w + x] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            }
    }
}

void eg_style_apply(eg_style s, const float *src, float *dst, int c, int h, int w, uint64_t sample)
{
    size_t n = (size_t)c * h * w;
    switch (s) {
    case EG_STYLE_INVERTED:
        for (size_t i = 0; i < n; i++) dst[i] = 1.0f - src[i];
        return;
    case EG_STYLE_EDGES:
        edges(src, dst, c, h, w);
        return;
    case EG_STYLE_BLUR_NOISE:
        blur_noise(src, dst, c, h, w, sample);
        return;
    case EG_STYLE_CONTRAST:
        for (size_t i = 0; i < n; i++) dst[i] = sqrtf(src[i]);
        return;
    case EG_STYLE_SOLARIZE:
        for (size_t i = 0; i < n; i++) dst[i] = src[i] < 0.5f ? src[i] : 1.0f - src[i];
        return;
    case EG_STYLE_STRIPES:
        for (size_t i = 0; i < n; i++) {
            int y = (int)((i / (size_t)w) % (size_t)h);
            dst[i] = ((y / 2) % 2) ? 0.5f * src[i] : src[i];
        }
        return;
    case EG_STYLE_ORIGINAL:
    case EG_STYLE_COUNT:
        break;
    }
    memcpy(dst, src, n * sizeof *dst);
}
