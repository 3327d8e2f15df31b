/* Few-shot image transforms on float (c, h, w) images in [0, 1], any
 * channel count (1 or 3), as LFT (Tseng et al., ICLR 2020) composes them
 * from torchvision and PIL:
 *
 *   training: RandomResizedCrop(size) -> ImageJitter(Brightness 0.4,
 *             Contrast 0.4, Color 0.4) -> RandomHorizontalFlip(0.5)
 *   test:     Resize(int(1.15 size)) of the shorter side -> CenterCrop(size)
 *
 * followed by eg_image_normalize. Resizing is PIL's bilinear resampling
 * (a triangle filter widened by the scale when shrinking, as torchvision
 * does on PIL images), in float. Every random number of the training
 * transform is draw j of Philox (key, stream), so the same (key, stream)
 * always gives the same output. */
#ifndef EG_IMAGE_XFORM_H
#define EG_IMAGE_XFORM_H

#include <stdint.h>

/* Largest output side the transforms accept. */
#define EG_IMAGE_MAX_OUT 4096

/* ImageNet's per-channel mean and std (RGB), LFT's normalisation. */
extern const float eg_imagenet_mean[3];
extern const float eg_imagenet_std[3];

/* Draw j of the Philox stream (key, stream), uniform in [0, 1) with 53
 * bits: the block at counter (j, tag, stream low, stream high) under key,
 * where tag keeps these draws apart from the Rademacher vectors of the
 * same (key, stream). */
double eg_image_uniform(uint64_t key, uint64_t stream, uint32_t j);

/* A rectangle of an image: rows top .. top + h - 1, columns left ..
 * left + w - 1. */
typedef struct eg_crop_box {
    int top, left, h, w;
} eg_crop_box;

/* The random choices of one training transform. */
typedef struct eg_train_params {
    eg_crop_box box;  /* RandomResizedCrop's box */
    int fallback;     /* 1: all 10 tries failed and box is the centre crop */
    int flip;         /* 1: mirror left-right */
    float brightness; /* ImageJitter factors, each 1 + 0.4 U(-1, 1), */
    float contrast;   /* applied in this order */
    float colour;
} eg_train_params;

/* torchvision's RandomResizedCrop.get_params on an h x w image with scale
 * (0.08, 1) and ratio (3/4, 4/3), Python's rounding (half to even)
 * included, then the flip and jitter draws. Draws: 4t .. 4t + 3 for try t
 * (area, log aspect, top, left), 40 the flip, 41 .. 43 the jitter. */
void eg_image_train_params(int h, int w, uint64_t key, uint64_t stream, eg_train_params *p);

/* PIL's bilinear resize of box of src (c, h, w), the box taken as the whole
 * image (as a crop followed by a resize), into out (c, oh, ow). -1 after
 * eg_errorf() on a bad box or size or when scratch memory runs out. */
int eg_image_resize(const float *src, int c, int h, int w, eg_crop_box box, int oh, int ow,
                    float *out);

/* ImageEnhance's Brightness, Contrast and Color with factor f on x (c, hw)
 * in place, clamped to [0, 1] as PIL's blend does: brightness blends with
 * black, contrast with the mean grey level (PIL's L = 0.299 R + 0.587 G +
 * 0.114 B, its mean rounded to a grey byte), colour with the grey image
 * (no effect when c == 1). */
void eg_image_brightness(float *x, int c, int hw, float f);
void eg_image_contrast(float *x, int c, int hw, float f);
void eg_image_colour(float *x, int c, int hw, float f);

/* Applies p to src (c, h, w): crop and resize to (c, size, size), jitter,
 * flip, into out. Not normalised. -1 after eg_errorf() on a bad size. */
int eg_image_train_apply(const float *src, int c, int h, int w, const eg_train_params *p, int size,
                         float *out);

/* The training transform: eg_image_train_params then
 * eg_image_train_apply. src (c, h, w) in [0, 1], out (c, size, size). */
int eg_image_train_xform(const float *src, int c, int h, int w, uint64_t key, uint64_t stream,
                         int size, float *out);

/* The test transform: the shorter side resized to int(1.15 size) (the
 * longer one to int(1.15 size * long / short), as torchvision's Resize),
 * then the centre size x size (offsets rounded half to even, as
 * CenterCrop). src (c, h, w) in [0, 1], out (c, size, size). */
int eg_image_test_xform(const float *src, int c, int h, int w, int size, float *out);

/* x (c, hw) in place: channel k becomes (x - mean[k]) / std[k]. */
void eg_image_normalize(float *x, int c, int hw, const float *mean, const float *std);

#endif
