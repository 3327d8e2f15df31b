/* Few-shot image transforms (torchvision / PIL semantics, in float); see
 * image_xform.h. */
#include "data/image_xform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/philox.h"
#include "util/err.h"

#define IMAGE_DRAW_TAG 0x494d4147u /* "IMAG": the second counter word */
#define CROP_TRIES 10
#define DRAW_FLIP (4 * CROP_TRIES)
#define DRAW_JITTER (DRAW_FLIP + 1)
#define JITTER_ALPHA 0.4

const float eg_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float eg_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

double eg_image_uniform(uint64_t key, uint64_t stream, uint32_t j)
{
    eg_philox_ctr c = {{j, IMAGE_DRAW_TAG, (uint32_t)stream, (uint32_t)(stream >> 32)}};
    eg_philox_key k = {{(uint32_t)key, (uint32_t)(key >> 32)}};
    eg_philox_ctr r = eg_philox4x32_10(c, k);
    uint64_t bits = ((uint64_t)r.v[0] << 32 | r.v[1]) >> 11;
    return (double)bits * 0x1p-53;
}

/* torch.randint(0, n): an integer uniform in [0, n). */
static int draw_below(uint64_t key, uint64_t stream, uint32_t j, int n)
{
    int v = (int)(eg_image_uniform(key, stream, j) * n);
    return v < n ? v : n - 1;
}

void eg_image_train_params(int h, int w, uint64_t key, uint64_t stream, eg_train_params *p)
{
    memset(p, 0, sizeof *p);
    const double ratio_lo = 3.0 / 4.0, ratio_hi = 4.0 / 3.0;
    const double scale_lo = 0.08, scale_hi = 1.0;
    double area = (double)h * w;
    double log_lo = log(ratio_lo), log_hi = log(ratio_hi);
    int found = 0;
    for (uint32_t t = 0; t < CROP_TRIES && !found; t++) {
        double target =
            area * (scale_lo + (scale_hi - scale_lo) * eg_image_uniform(key, stream, 4 * t));
        double aspect = exp(log_lo + (log_hi - log_lo) * eg_image_uniform(key, stream, 4 * t + 1));
        int cw = (int)nearbyint(sqrt(target * aspect));
        int ch = (int)nearbyint(sqrt(target / aspect));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            p->box.h = ch;
            p->box.w = cw;
            p->box.top = draw_below(key, stream, 4 * t + 2, h - ch + 1);
            p->box.left = draw_below(key, stream, 4 * t + 3, w - cw + 1);
            found = 1;
        }
    }
    if (!found) {
        double in_ratio = (double)w / h;
        p->box.w = w;
        p->box.h = h;
        if (in_ratio < ratio_lo)
            p->box.h = (int)nearbyint(w / ratio_lo);
        else if (in_ratio > ratio_hi)
            p->box.w = (int)nearbyint(h * ratio_hi);
        if (p->box.h > h) p->box.h = h;
        if (p->box.w > w) p->box.w = w;
        p->box.top = (h - p->box.h) / 2;
        p->box.left = (w - p->box.w) / 2;
        p->fallback = 1;
    }
    p->flip = eg_image_uniform(key, stream, DRAW_FLIP) < 0.5;
    float *factor[3] = {&p->brightness, &p->contrast, &p->colour};
    for (uint32_t k = 0; k < 3; k++)
        *factor[k] =
            (float)(1.0 +
                    JITTER_ALPHA * (2.0 * eg_image_uniform(key, stream, DRAW_JITTER + k) - 1.0));
}

/* ---- PIL's bilinear resampling ------------------------------------------- */

/* The taps of outputs o0 .. o0 + n - 1 of a resize from in_size to
 * out_size samples: output o reads inputs first[o] .. first[o] + count[o]
 * - 1 with weight[o * ksize + k] (PIL's precompute_coeffs, bilinear). */
typedef struct taps {
    int ksize;
    int *first, *count; /* (n) */
    float *weight;      /* (n, ksize) */
} taps;

static double triangle(double x)
{
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
}

static void taps_free(taps *t)
{
    free(t->first);
    free(t->count);
    free(t->weight);
}

static int taps_make(int in_size, int out_size, int o0, int n, taps *t)
{
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1 ? 1 : scale;
    double support = 1.0 * filterscale;
    t->ksize = (int)ceil(support) * 2 + 1;
    t->first = malloc(sizeof *t->first * n);
    t->count = malloc(sizeof *t->count * n);
    t->weight = malloc(sizeof *t->weight * (size_t)n * t->ksize);
    if (!t->first || !t->count || !t->weight) {
        taps_free(t);
        return eg_errorf("out of memory for resize taps (%d to %d)", in_size, out_size);
    }
    for (int i = 0; i < n; i++) {
        double center = (o0 + i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int count = hi - lo;
        float *dst = t->weight + (size_t)i * t->ksize;
        double sum = 0;
        for (int k = 0; k < count; k++) sum += triangle((k + lo - center + 0.5) / filterscale);
        for (int k = 0; k < count; k++)
            dst[k] = (float)(sum != 0 ? triangle((k + lo - center + 0.5) / filterscale) / sum : 0);
        t->first[i] = lo;
        t->count[i] = count;
    }
    return 0;
}

/* Rows o_top .. o_top + o_h - 1 and columns o_left .. o_left + o_w - 1 of
 * the resize of box of src (c, h, w) to (oh, ow), into out (c, o_h, o_w):
 * the horizontal pass first, then the vertical one, as PIL. */
static int resize_window(const float *src, int c, int h, int w, eg_crop_box box, int oh, int ow,
                         int o_top, int o_left, int o_h, int o_w, float *out)
{
    taps tx = {0}, ty = {0};
    EG_TRY(taps_make(box.w, ow, o_left, o_w, &tx));
    if (taps_make(box.h, oh, o_top, o_h, &ty) != 0) {
        taps_free(&tx);
        return -1;
    }
    /* Only the box rows the vertical taps read go through the first pass. */
    int r0 = ty.first[0], r1 = ty.first[o_h - 1] + ty.count[o_h - 1];
    for (int i = 0; i < o_h; i++) {
        if (ty.first[i] < r0) r0 = ty.first[i];
        if (ty.first[i] + ty.count[i] > r1) r1 = ty.first[i] + ty.count[i];
    }
    int rows = r1 - r0;
    float *mid = malloc(sizeof *mid * (size_t)c * (rows > 0 ? rows : 1) * o_w); /* (c, rows, o_w) */
    if (!mid) {
        taps_free(&tx);
        taps_free(&ty);
        return eg_errorf("out of memory for a %dx%d resize", o_h, o_w);
    }
    for (int ch = 0; ch < c; ch++)
        for (int r = 0; r < rows; r++) {
            const float *in = src + ((size_t)ch * h + box.top + r0 + r) * w + box.left;
            float *dst = mid + ((size_t)ch * rows + r) * o_w;
            for (int x = 0; x < o_w; x++) {
                const float *wk = tx.weight + (size_t)x * tx.ksize;
                const float *p = in + tx.first[x];
                float acc = 0;
                for (int k = 0; k < tx.count[x]; k++) acc += wk[k] * p[k];
                dst[x] = acc;
            }
        }
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < o_h; y++) {
            const float *wk = ty.weight + (size_t)y * ty.ksize;
            const float *in = mid + ((size_t)ch * rows + ty.first[y] - r0) * o_w;
            float *dst = out + ((size_t)ch * o_h + y) * o_w;
            for (int x = 0; x < o_w; x++) dst[x] = 0;
            for (int k = 0; k < ty.count[y]; k++)
                for (int x = 0; x < o_w; x++) dst[x] += wk[k] * in[(size_t)k * o_w + x];
        }
    free(mid);
    taps_free(&tx);
    taps_free(&ty);
    return 0;
}

static int check_image(int c, int h, int w, int size)
{
    if (c < 1 || c > 4 || h < 1 || w < 1)
        return eg_errorf("image transform: bad image shape (%d, %d, %d)", c, h, w);
    if (size < 1 || size > EG_IMAGE_MAX_OUT)
        return eg_errorf("image transform: size %d out of range [1, %d]", size, EG_IMAGE_MAX_OUT);
    return 0;
}

int eg_image_resize(const float *src, int c, int h, int w, eg_crop_box box, int oh, int ow,
                    float *out)
{
    EG_TRY(check_image(c, h, w, 1));
    if (box.top < 0 || box.left < 0 || box.h < 1 || box.w < 1 || box.top + box.h > h ||
        box.left + box.w > w)
        return eg_errorf("image resize: box (%d, %d, %d, %d) outside a %dx%d image", box.top,
                         box.left, box.h, box.w, h, w);
    if (oh < 1 || ow < 1 || oh > EG_IMAGE_MAX_OUT || ow > EG_IMAGE_MAX_OUT)
        return eg_errorf("image resize: output %dx%d out of range", oh, ow);
    return resize_window(src, c, h, w, box, oh, ow, 0, 0, oh, ow, out);
}

/* ---- PIL's ImageEnhance -------------------------------------------------- */

static float clamp01(float v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

/* PIL's L of pixel p of x (c, hw). */
static float grey_at(const float *x, int c, int hw, int p)
{
    if (c < 3) return x[p];
    return 0.299f * x[p] + 0.587f * x[hw + p] + 0.114f * x[2 * hw + p];
}

void eg_image_brightness(float *x, int c, int hw, float f)
{
    for (size_t i = 0; i < (size_t)c * hw; i++) x[i] = clamp01(f * x[i]);
}

void eg_image_contrast(float *x, int c, int hw, float f)
{
    double sum = 0;
    for (int p = 0; p < hw; p++) sum += grey_at(x, c, hw, p);
    float mean = (float)(floor(sum / hw * 255.0 + 0.5) / 255.0);
    for (size_t i = 0; i < (size_t)c * hw; i++) x[i] = clamp01(mean + f * (x[i] - mean));
}

void eg_image_colour(float *x, int c, int hw, float f)
{
    if (c < 3) return;
    for (int p = 0; p < hw; p++) {
        float grey = grey_at(x, c, hw, p);
        for (int ch = 0; ch < 3; ch++) {
            float *v = x + (size_t)ch * hw + p;
            *v = clamp01(grey + f * (*v - grey));
        }
    }
}

/* ---- the transforms ------------------------------------------------------ */

int eg_image_train_apply(const float *src, int c, int h, int w, const eg_train_params *p, int size,
                         float *out)
{
    EG_TRY(check_image(c, h, w, size));
    EG_TRY(eg_image_resize(src, c, h, w, p->box, size, size, out));
    int hw = size * size;
    eg_image_brightness(out, c, hw, p->brightness);
    eg_image_contrast(out, c, hw, p->contrast);
    eg_image_colour(out, c, hw, p->colour);
    if (p->flip)
        for (int r = 0; r < c * size; r++) {
            float *row = out + (size_t)r * size;
            for (int x = 0; x < size / 2; x++) {
                float t = row[x];
                row[x] = row[size - 1 - x];
                row[size - 1 - x] = t;
            }
        }
    return 0;
}

int eg_image_train_xform(const float *src, int c, int h, int w, uint64_t key, uint64_t stream,
                         int size, float *out)
{
    EG_TRY(check_image(c, h, w, size));
    eg_train_params p;
    eg_image_train_params(h, w, key, stream, &p);
    return eg_image_train_apply(src, c, h, w, &p, size, out);
}

int eg_image_test_xform(const float *src, int c, int h, int w, int size, float *out)
{
    EG_TRY(check_image(c, h, w, size));
    int target = (int)(size * 1.15);
    double oh, ow;
    if (w <= h) {
        ow = target;
        oh = floor((double)target * h / w);
    } else {
        oh = target;
        ow = floor((double)target * w / h);
    }
    if (oh > 1 << 30 || ow > 1 << 30)
        return eg_errorf("image transform: a %dx%d image is too elongated", h, w);
    int top = (int)nearbyint((oh - size) / 2.0), left = (int)nearbyint((ow - size) / 2.0);
    eg_crop_box whole = {0, 0, h, w};
    return resize_window(src, c, h, w, whole, (int)oh, (int)ow, top, left, size, size, out);
}

void eg_image_normalize(float *x, int c, int hw, const float *mean, const float *std)
{
    for (int ch = 0; ch < c; ch++) {
        float *v = x + (size_t)ch * hw;
        for (int p = 0; p < hw; p++) v[p] = (v[p] - mean[ch]) / std[ch];
    }
}
