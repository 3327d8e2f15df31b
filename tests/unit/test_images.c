/* Image domains (daemon/data): JPEG and PNG decoding of files written here
 * by libjpeg and libpng (every PNG colour type, exact pixels; JPEG within
 * a tolerance of flat colours), corrupt and oversized inputs, image
 * folders, LFT file lists and split folders with their labels and class
 * splits, data roots, the test and training transforms (crop values on a
 * known image, RandomResizedCrop's box by its properties, flips, jitter,
 * determinism in (key, stream)), normalisation and the decoded-image
 * cache. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <jpeglib.h>
#include <png.h>

#include "data/domain.h"
#include "data/image_decode.h"
#include "data/image_xform.h"
#include "testutil.h"
#include "util/err.h"

/* ---- scratch files ------------------------------------------------------- */

/* dir/name in a rotating set of static buffers. */
static void write_text(const char *path, const char *text)
{
    tu_write_bytes(path, text, strlen(text));
}

static void make_dir(const char *path)
{
    assert_int_equal(mkdir(path, 0755), 0);
}

/* A JPEG of (h, w, components) bytes at quality 95, in memory. */
static unsigned char *jpeg_bytes(const unsigned char *px, int w, int h, int components,
                                 unsigned long *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    *len = 0;
    jpeg_mem_dest(&c, &buf, len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = components;
    c.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * components);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return buf;
}

static void write_jpeg(const char *path, const unsigned char *px, int w, int h, int components)
{
    unsigned long len;
    unsigned char *buf = jpeg_bytes(px, w, h, components, &len);
    tu_write_bytes(path, buf, len);
    free(buf);
}

/* A flat JPEG of w x h in colour rgb (components 3) or grey rgb[0]. */
static void write_flat_jpeg(const char *path, int w, int h, int components,
                            const unsigned char rgb[3])
{
    unsigned char *px = malloc((size_t)w * h * components);
    assert_non_null(px);
    for (int p = 0; p < w * h; p++)
        for (int k = 0; k < components; k++) px[p * components + k] = rgb[k];
    write_jpeg(path, px, w, h, components);
    free(px);
}

/* A PNG of rows (h, w * samples) as libpng takes them (16-bit samples big
 * endian), with an optional palette and tRNS. */
static void write_png(const char *path, int w, int h, int type, int depth,
                      const unsigned char *rows, size_t row_bytes, const png_color *palette,
                      int n_palette, const unsigned char *trns, int n_trns)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng could not write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, n_palette);
    if (trns) png_set_tRNS(png, info, trns, n_trns, NULL);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, rows + (size_t)y * row_bytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    assert_int_equal(fclose(f), 0);
}

/* The byte of channel k at pixel (y, x) of the test pattern. */
static unsigned char pattern(int y, int x, int k)
{
    return (unsigned char)((y * 29 + x * 13 + k * 71 + 5) % 256);
}

/* An 8-bit RGB PNG of the pattern. */
static void write_pattern_png(const char *path, int w, int h)
{
    unsigned char *rows = malloc((size_t)w * h * 3);
    assert_non_null(rows);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < 3; k++) rows[(y * w + x) * 3 + k] = pattern(y, x, k);
    write_png(path, w, h, PNG_COLOR_TYPE_RGB, 8, rows, (size_t)w * 3, NULL, 0, NULL, 0);
    free(rows);
}

/* A flat 8-bit RGB PNG. */
static void write_flat_png(const char *path, int w, int h, const unsigned char rgb[3])
{
    unsigned char *rows = malloc((size_t)w * h * 3);
    assert_non_null(rows);
    for (int p = 0; p < w * h; p++) memcpy(rows + 3 * p, rgb, 3);
    write_png(path, w, h, PNG_COLOR_TYPE_RGB, 8, rows, (size_t)w * 3, NULL, 0, NULL, 0);
    free(rows);
}

static void expect_pixel(const eg_image8 *im, int y, int x, int r, int g, int b)
{
    const unsigned char *p = im->rgb + ((size_t)y * im->w + x) * 3;
    if (p[0] != r || p[1] != g || p[2] != b)
        fail_msg("pixel (%d, %d): (%d, %d, %d), expected (%d, %d, %d)", y, x, p[0], p[1], p[2], r,
                 g, b);
}

static void decode_ok(const char *path, eg_image8 *im, int w, int h)
{
    eg_clear_error();
    if (eg_image_decode_file(path, im) != 0) fail_msg("%s: %s", path, eg_last_error());
    assert_int_equal(im->w, w);
    assert_int_equal(im->h, h);
}

/* ---- decoding ------------------------------------------------------------ */

static void test_png_colour_types(void **state)
{
    const char *dir = tu_tmpdir();
    const int w = 7, h = 5;
    eg_image8 im;

    write_pattern_png(tu_path(dir, "rgb.png"), w, h);
    decode_ok(tu_path(dir, "rgb.png"), &im, w, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            expect_pixel(&im, y, x, pattern(y, x, 0), pattern(y, x, 1), pattern(y, x, 2));
    eg_image8_free(&im);

    unsigned char grey[5 * 7], grey_alpha[5 * 7 * 2], rgba[5 * 7 * 4], rgb16[5 * 7 * 6];
    unsigned char index[5 * 7];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int p = y * w + x;
            grey[p] = pattern(y, x, 0);
            grey_alpha[2 * p] = pattern(y, x, 1);
            grey_alpha[2 * p + 1] = (unsigned char)(p * 7);
            for (int k = 0; k < 3; k++) {
                rgba[4 * p + k] = pattern(y, x, k);
                rgb16[6 * p + 2 * k] = pattern(y, x, k);             /* high byte */
                rgb16[6 * p + 2 * k + 1] = (unsigned char)(255 - k); /* low byte */
            }
            rgba[4 * p + 3] = (unsigned char)(p * 5);
            index[p] = (unsigned char)(p % 4);
        }
    write_png(tu_path(dir, "grey.png"), w, h, PNG_COLOR_TYPE_GRAY, 8, grey, w, NULL, 0, NULL, 0);
    write_png(tu_path(dir, "ga.png"), w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, grey_alpha, 2 * w, NULL, 0,
              NULL, 0);
    write_png(tu_path(dir, "rgba.png"), w, h, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba, 4 * w, NULL, 0, NULL,
              0);
    write_png(tu_path(dir, "rgb16.png"), w, h, PNG_COLOR_TYPE_RGB, 16, rgb16, 6 * w, NULL, 0, NULL, 0);
    const png_color palette[4] = {{10, 20, 30}, {200, 0, 100}, {0, 255, 1}, {77, 88, 99}};
    const unsigned char trns[4] = {0, 128, 255, 3};
    write_png(tu_path(dir, "pal.png"), w, h, PNG_COLOR_TYPE_PALETTE, 8, index, w, palette, 4, NULL, 0);
    write_png(tu_path(dir, "pal_trns.png"), w, h, PNG_COLOR_TYPE_PALETTE, 8, index, w, palette, 4, trns,
              4);

    eg_image8 g, ga, a, s, pal, pal_t;
    decode_ok(tu_path(dir, "grey.png"), &g, w, h);
    decode_ok(tu_path(dir, "ga.png"), &ga, w, h);
    decode_ok(tu_path(dir, "rgba.png"), &a, w, h);
    decode_ok(tu_path(dir, "rgb16.png"), &s, w, h);
    decode_ok(tu_path(dir, "pal.png"), &pal, w, h);
    decode_ok(tu_path(dir, "pal_trns.png"), &pal_t, w, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int p = y * w + x;
            unsigned char v = pattern(y, x, 0), v1 = pattern(y, x, 1);
            expect_pixel(&g, y, x, v, v, v);
            expect_pixel(&ga, y, x, v1, v1, v1);
            expect_pixel(&a, y, x, pattern(y, x, 0), pattern(y, x, 1), pattern(y, x, 2));
            expect_pixel(&s, y, x, pattern(y, x, 0), pattern(y, x, 1), pattern(y, x, 2));
            const png_color *c = &palette[p % 4];
            expect_pixel(&pal, y, x, c->red, c->green, c->blue);
            expect_pixel(&pal_t, y, x, c->red, c->green, c->blue);
        }
    eg_image8_free(&g);
    eg_image8_free(&ga);
    eg_image8_free(&a);
    eg_image8_free(&s);
    eg_image8_free(&pal);
    eg_image8_free(&pal_t);
    assert_null(pal_t.rgb);
    tu_rmtree(dir);
}

static void test_jpeg_rgb_and_grey(void **state)
{
    const char *dir = tu_tmpdir();
    const unsigned char colour[3] = {200, 100, 50}, grey[3] = {77, 0, 0};
    write_flat_jpeg(tu_path(dir, "rgb.jpg"), 24, 16, 3, colour);
    write_flat_jpeg(tu_path(dir, "grey.JPEG"), 9, 13, 1, grey);
    eg_image8 a, b;
    decode_ok(tu_path(dir, "rgb.jpg"), &a, 24, 16);
    decode_ok(tu_path(dir, "grey.JPEG"), &b, 9, 13);
    for (int p = 0; p < 24 * 16; p++)
        for (int k = 0; k < 3; k++)
            if (abs(a.rgb[3 * p + k] - colour[k]) > 3)
                fail_msg("rgb.jpg pixel %d channel %d: %d, expected about %d", p, k,
                         a.rgb[3 * p + k], colour[k]);
    for (int p = 0; p < 9 * 13; p++)
        for (int k = 0; k < 3; k++)
            if (abs(b.rgb[3 * p + k] - 77) > 1)
                fail_msg("grey.JPEG pixel %d channel %d: %d, expected about 77", p, k,
                         b.rgb[3 * p + k]);
    float *f = malloc(sizeof *f * 3 * 24 * 16);
    assert_non_null(f);
    eg_image8_to_float(&a, f);
    assert_float_equal(f[5], a.rgb[3 * 5] / 255.0f, 1e-7);
    assert_float_equal(f[24 * 16 * 2 + 7], a.rgb[3 * 7 + 2] / 255.0f, 1e-7);
    free(f);
    eg_image8_free(&a);
    eg_image8_free(&b);
    tu_rmtree(dir);
}

/* A PNG of a signature, an IHDR announcing w x h and an empty IDAT, its
 * image data missing. */
static size_t png_header_only(unsigned char *buf, uint32_t w, uint32_t h)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(buf, sig, 8);
    unsigned char *c = buf + 8;
    const unsigned char ihdr[21] = {0,
                                    0,
                                    0,
                                    13,
                                    'I',
                                    'H',
                                    'D',
                                    'R',
                                    (unsigned char)(w >> 24),
                                    (unsigned char)(w >> 16),
                                    (unsigned char)(w >> 8),
                                    (unsigned char)w,
                                    (unsigned char)(h >> 24),
                                    (unsigned char)(h >> 16),
                                    (unsigned char)(h >> 8),
                                    (unsigned char)h,
                                    8,
                                    2,
                                    0,
                                    0,
                                    0};
    memcpy(c, ihdr, 21);
    uLong crc = crc32(0, c + 4, 17);
    c[21] = (unsigned char)(crc >> 24);
    c[22] = (unsigned char)(crc >> 16);
    c[23] = (unsigned char)(crc >> 8);
    c[24] = (unsigned char)crc;
    memcpy(c + 25, "\0\0\0\0IDAT", 8);
    crc = crc32(0, c + 29, 4);
    c[33] = (unsigned char)(crc >> 24);
    c[34] = (unsigned char)(crc >> 16);
    c[35] = (unsigned char)(crc >> 8);
    c[36] = (unsigned char)crc;
    return 8 + 25 + 12;
}

static void test_decode_errors(void **state)
{
    const char *dir = tu_tmpdir();
    eg_image8 im;
    const unsigned char colour[3] = {10, 200, 30};

    write_flat_jpeg(tu_path(dir, "whole.jpg"), 32, 32, 3, colour);
    size_t len;
    unsigned char *jpg = tu_read_all(tu_path(dir, "whole.jpg"), &len);
    tu_write_bytes(tu_path(dir, "cut.jpg"), jpg, len / 2);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "cut.jpg"), &im), tu_path(dir, "cut.jpg"));
    tu_fails_with(eg_image_decode_file(tu_path(dir, "cut.jpg"), &im), "corrupt JPEG");
    assert_null(im.rgb);
    tu_write_bytes(tu_path(dir, "head.jpg"), jpg, 40);
    /* Cut inside the scan data: libjpeg alone would fill the rest with grey. */
    unsigned char px[64 * 64 * 3];
    for (int p = 0; p < 64 * 64 * 3; p++) px[p] = pattern(p / 192, p / 3 % 64, p % 3);
    unsigned long busy_len;
    unsigned char *busy = jpeg_bytes(px, 64, 64, 3, &busy_len);
    assert_true(busy_len > 4000);
    tu_write_bytes(tu_path(dir, "tail.jpg"), busy, busy_len - 1000);
    free(busy);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "tail.jpg"), &im),
                  "tail.jpg: corrupt JPEG: Premature end");
    tu_fails_with(eg_image_decode_file(tu_path(dir, "head.jpg"), &im), tu_path(dir, "head.jpg"));
    /* The frame header's height and width patched to 60000 x 60000. */
    for (size_t i = 0; i + 9 < len; i++)
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
            jpg[i + 5] = jpg[i + 7] = 0xea;
            jpg[i + 6] = jpg[i + 8] = 0x60;
            break;
        }
    tu_write_bytes(tu_path(dir, "huge.jpg"), jpg, len);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "huge.jpg"), &im),
                  "60000x60000 pixels is too large");
    /* 4000 x 4000 is within the caps but cannot fit in about 700 bytes. */
    for (size_t i = 0; i + 9 < len; i++)
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
            jpg[i + 5] = jpg[i + 7] = 0x0f;
            jpg[i + 6] = jpg[i + 8] = 0xa0;
            break;
        }
    tu_write_bytes(tu_path(dir, "short.jpg"), jpg, len);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "short.jpg"), &im),
                  "short.jpg: truncated: an image of 4000x4000 pixels cannot fit");
    free(jpg);

    unsigned char noise[300];
    for (int i = 0; i < 300; i++) noise[i] = (unsigned char)(i * 97 + 13);
    tu_write_bytes(tu_path(dir, "noise.png"), noise, sizeof noise);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "noise.png"), &im), tu_path(dir, "noise.png"));
    tu_fails_with(eg_image_decode_file(tu_path(dir, "noise.png"), &im), "not a JPEG or PNG");
    tu_write_bytes(tu_path(dir, "empty.jpg"), "", 0);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "empty.jpg"), &im), "empty.jpg: empty file");
    tu_fails_with(eg_image_decode_file(tu_path(dir, "none.png"), &im), "none.png: no such file");

    write_pattern_png(tu_path(dir, "whole.png"), 40, 30);
    unsigned char *png = tu_read_all(tu_path(dir, "whole.png"), &len);
    tu_write_bytes(tu_path(dir, "cut.png"), png, len * 2 / 3);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "cut.png"), &im), tu_path(dir, "cut.png"));
    tu_fails_with(eg_image_decode_file(tu_path(dir, "cut.png"), &im), "truncated: the chunk at byte");
    /* A cut just past a whole chunk reaches libpng, which finds the rest missing. */
    size_t whole = 8;
    while (whole + 12 +
               ((size_t)png[whole] << 24 | png[whole + 1] << 16 | png[whole + 2] << 8 |
                png[whole + 3]) <
           len * 2 / 3)
        whole += 12 + ((size_t)png[whole] << 24 | png[whole + 1] << 16 | png[whole + 2] << 8 |
                       png[whole + 3]);
    tu_write_bytes(tu_path(dir, "cut2.png"), png, whole);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "cut2.png"), &im), "cut2.png: corrupt PNG");
    png[len / 2] ^= 0x55; /* inside the image data: its CRC fails */
    tu_write_bytes(tu_path(dir, "flipped.png"), png, len);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "flipped.png"), &im), tu_path(dir, "flipped.png"));
    free(png);

    unsigned char hdr[64];
    size_t n = png_header_only(hdr, 20000, 10);
    tu_write_bytes(tu_path(dir, "wide.png"), hdr, n);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "wide.png"), &im), "20000x10 pixels is too large");
    n = png_header_only(hdr, 10000, 10000);
    tu_write_bytes(tu_path(dir, "big.png"), hdr, n);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "big.png"), &im), "10000x10000 pixels is too large");
    n = png_header_only(hdr, 4000, 4000);
    tu_write_bytes(tu_path(dir, "short.png"), hdr, n);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "short.png"), &im),
                  "short.png: truncated: an image of 4000x4000 pixels cannot fit");
    n = png_header_only(hdr, 3, 2);
    tu_write_bytes(tu_path(dir, "nodata.png"), hdr, n);
    tu_fails_with(eg_image_decode_file(tu_path(dir, "nodata.png"), &im), "nodata.png: corrupt PNG");
    assert_null(im.rgb);
    tu_rmtree(dir);
}

/* ---- opening domains ----------------------------------------------------- */

/* The colour of image j of class k in the folder tests. */
static void class_colour(int k, int j, unsigned char rgb[3])
{
    rgb[0] = (unsigned char)(40 + 60 * k);
    rgb[1] = (unsigned char)(20 + 100 * j);
    rgb[2] = (unsigned char)(250 - 30 * k - 10 * j);
}

/* Fetches sample i with the test transform and checks it is the flat
 * colour rgb after normalisation. */
static void expect_flat(eg_domain *d, int i, const unsigned char rgb[3], float tol)
{
    const int size = 8;
    float out[3 * 8 * 8];
    eg_clear_error();
    if (d->ops->fetch(d, i, 0, 0, 0, size, out) != 0) fail_msg("fetch %d: %s", i, eg_last_error());
    for (int k = 0; k < 3; k++) {
        float want = (rgb[k] / 255.0f - eg_imagenet_mean[k]) / eg_imagenet_std[k];
        for (int p = 0; p < size * size; p++)
            if (fabsf(out[k * size * size + p] - want) > tol)
                fail_msg("sample %d channel %d pixel %d: %g, expected %g", i, k, p,
                         out[k * size * size + p], want);
    }
}

static void test_split_rule(void **state)
{
    const int want[8] = {EG_SPLIT_BASE, EG_SPLIT_VAL, EG_SPLIT_BASE, EG_SPLIT_NOVEL,
                         EG_SPLIT_BASE, EG_SPLIT_VAL, EG_SPLIT_BASE, EG_SPLIT_NOVEL};
    for (int k = 0; k < 8; k++) assert_int_equal(eg_class_split_of(k), want[k]);
    assert_int_equal(eg_class_split_of(-1), 0xff);
}

static void test_image_folder(void **state)
{
    const char *dir = tu_tmpdir();
    const char *classes[3] = {"b_dog", "a_cat", "c_eel"}; /* sorted: a_cat, b_dog, c_eel */
    const int sorted_index[3] = {1, 0, 2};
    for (int c = 0; c < 3; c++) {
        make_dir(tu_path(dir, classes[c]));
        int k = sorted_index[c];
        for (int j = 0; j < 2; j++) {
            /* Written in the reverse of byte order: img1.png, then img0.PNG. */
            char name[64];
            unsigned char rgb[3];
            snprintf(name, sizeof name, "%s/img%d.%s", classes[c], 1 - j, j ? "PNG" : "png");
            class_colour(k, 1 - j, rgb);
            write_flat_png(tu_path(dir, name), 5 + j, 6, rgb);
        }
    }
    write_text(tu_path(dir, "a_cat/notes.txt"), "not an image");
    make_dir(tu_path(dir, ".hidden"));
    make_dir(tu_path(dir, "a_cat/sub.png"));

    eg_domain *d = NULL;
    eg_clear_error();
    if (eg_domain_open_images("cub", dir, 0, NULL, &d) != 0) fail_msg("%s", eg_last_error());
    assert_string_equal(d->name, "cub");
    assert_int_equal(d->n, 6);
    assert_int_equal(d->classes, 3);
    assert_int_equal(d->c, 3);
    for (int i = 0; i < 6; i++) assert_int_equal(d->label[i], i / 2);
    assert_int_equal(d->split_of[0], EG_SPLIT_BASE);
    assert_int_equal(d->split_of[1], EG_SPLIT_VAL);
    assert_int_equal(d->split_of[2], EG_SPLIT_BASE);
    int got[3];
    assert_int_equal(eg_domain_classes(d, EG_SPLIT_BASE, got), 2);
    assert_int_equal(got[0], 0);
    assert_int_equal(got[1], 2);
    assert_int_equal(eg_domain_classes(d, EG_SPLIT_VAL, got), 1);
    assert_int_equal(got[0], 1);
    assert_int_equal(eg_domain_classes(d, EG_SPLIT_NOVEL, got), 0);
    assert_int_equal(eg_domain_classes(d, EG_SPLIT_ALL, got), 3);
    for (int i = 0; i < 6; i++) {
        unsigned char rgb[3];
        class_colour(i / 2, i % 2, rgb);
        expect_flat(d, i, rgb, 1e-5f);
    }
    float out[3 * 8 * 8];
    tu_fails_with(d->ops->fetch(d, 6, 0, 0, 0, 8, out), "sample 6 out of range");
    tu_fails_with(d->ops->fetch(d, 0, 0, 0, 0, 0, out), "size 0 out of range");
    eg_domain_free(d);

    make_dir(tu_path(dir, "d_empty"));
    tu_fails_with(eg_domain_open_images("x", dir, 0, NULL, &d), "d_empty: class folder holds no");
    assert_null(d);
    tu_fails_with(eg_domain_open_images("x", tu_path(dir, "d_empty"), 0, NULL, &d), "no class folders");
    tu_fails_with(eg_domain_open_images("x", tu_path(dir, "gone"), 0, NULL, &d), "gone: no such file");
    tu_fails_with(eg_domain_open_images("x", tu_path(dir, "a_cat/notes.txt"), 0, NULL, &d),
                  "neither a folder nor a .json");
    tu_rmtree(dir);
}

static void test_file_list(void **state)
{
    const char *dir = tu_tmpdir();
    make_dir(tu_path(dir, "lists"));
    make_dir(tu_path(dir, "lists/imgs"));
    unsigned char c0[3] = {255, 0, 0}, c1[3] = {0, 255, 0}, c2[3] = {0, 0, 255};
    write_flat_png(tu_path(dir, "lists/imgs/r.png"), 4, 4, c0);
    write_flat_png(tu_path(dir, "lists/imgs/g.png"), 4, 4, c1);
    write_flat_jpeg(tu_path(dir, "b.jpg"), 16, 16, 3, c2);
    char json[2048];
    snprintf(json, sizeof json,
             "{\"label_names\": [\"red\", \"green\", \"blue\", \"unused\"],\n"
             " \"image_names\": [\"imgs/g.png\", \"%s/b.jpg\", \"imgs/r.png\", \"imgs/g.png\"],\n"
             " \"image_labels\": [1, 2, 0, 1]}",
             dir);
    write_text(tu_path(dir, "lists/all.json"), json);
    eg_domain *d = NULL;
    eg_clear_error();
    if (eg_domain_open_images("list", tu_path(dir, "lists/all.json"), 1 << 20, NULL, &d) != 0)
        fail_msg("%s", eg_last_error());
    assert_int_equal(d->n, 4);
    assert_int_equal(d->classes, 4);
    const int labels[4] = {1, 2, 0, 1};
    for (int i = 0; i < 4; i++) assert_int_equal(d->label[i], labels[i]);
    for (int k = 0; k < 4; k++) assert_int_equal(d->split_of[k], eg_class_split_of(k));
    expect_flat(d, 0, c1, 1e-5f);
    expect_flat(d, 1, c2, 0.1f);
    expect_flat(d, 2, c0, 1e-5f);
    eg_domain_free(d);

    /* A list named relative to the working directory. */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tu_path(dir, "lists")), 0);
    int rc = eg_domain_open_images("list", "all.json", 0, NULL, &d);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    expect_flat(d, 2, c0, 1e-5f);
    eg_domain_free(d);
    tu_rmtree(dir);
}

static void test_split_folder(void **state)
{
    const char *dir = tu_tmpdir();
    unsigned char c[6][3];
    for (int k = 0; k < 6; k++) {
        char name[32];
        c[k][0] = (unsigned char)(30 * k);
        c[k][1] = (unsigned char)(200 - 20 * k);
        c[k][2] = 90;
        snprintf(name, sizeof name, "%d.png", k);
        write_flat_png(tu_path(dir, name), 3, 3, c[k]);
    }
    /* base.json names every class with global labels (LFT's CUB lists);
     * novel.json only its own, labels from 0 (its mini-ImageNet lists). */
    write_text(tu_path(dir, "base.json"),
               "{\"label_names\": [\"A\", \"B\", \"C\", \"D\"],"
               " \"image_names\": [\"0.png\", \"2.png\", \"0.png\"], \"image_labels\": [0, 2, 0]}");
    write_text(tu_path(dir, "novel.json"),
               "{\"label_names\": [\"E\", \"F\"],"
               " \"image_names\": [\"5.png\", \"4.png\"], \"image_labels\": [1, 0]}");
    eg_domain *d = NULL;
    eg_clear_error();
    if (eg_domain_open_images("splits", dir, 0, NULL, &d) != 0) fail_msg("%s", eg_last_error());
    assert_int_equal(d->n, 5);
    assert_int_equal(d->classes, 6);
    const int labels[5] = {0, 2, 0, 5, 4};
    for (int i = 0; i < 5; i++) assert_int_equal(d->label[i], labels[i]);
    const int splits[6] = {EG_SPLIT_BASE, 0xff,           EG_SPLIT_BASE,
                           0xff,          EG_SPLIT_NOVEL, EG_SPLIT_NOVEL};
    for (int k = 0; k < 6; k++) assert_int_equal(d->split_of[k], splits[k]);
    int got[6];
    assert_int_equal(eg_domain_classes(d, EG_SPLIT_BASE, got), 2);
    assert_int_equal(eg_domain_classes(d, EG_SPLIT_VAL, got), 0);
    assert_int_equal(eg_domain_classes(d, EG_SPLIT_NOVEL, got), 2);
    assert_int_equal(got[0], 4);
    assert_int_equal(got[1], 5);
    expect_flat(d, 1, c[2], 1e-5f);
    expect_flat(d, 3, c[5], 1e-5f);
    eg_domain_free(d);

    /* A class used by two splits is refused. */
    write_text(tu_path(dir, "val.json"),
               "{\"label_names\": [\"C\"], \"image_names\": [\"1.png\"], \"image_labels\": [0]}");
    tu_fails_with(eg_domain_open_images("splits", dir, 0, NULL, &d),
                  "val.json: class C is already in another split");
    tu_rmtree(dir);
}

static void test_list_errors(void **state)
{
    char *dir = realpath(tu_tmpdir(), NULL); /* roots are real paths */
    assert_non_null(dir);
    unsigned char c0[3] = {1, 2, 3};
    write_flat_png(tu_path(dir, "a.png"), 2, 2, c0);
    eg_domain *d = NULL;
    struct {
        const char *name, *text, *what;
    } bad[] = {
        {"lengths.json",
         "{\"label_names\": [\"x\"], \"image_names\": [\"a.png\", \"a.png\"],"
         " \"image_labels\": [0]}",
         "lengths.json: image_names has 2 entries but image_labels 1"},
        {"range.json",
         "{\"label_names\": [\"x\", \"y\"], \"image_names\": [\"a.png\", \"a.png\"],"
         " \"image_labels\": [1, 2]}",
         "range.json: image_labels[1] = 2 out of range [0, 2)"},
        {"negative.json",
         "{\"label_names\": [\"x\"], \"image_names\": [\"a.png\"], \"image_labels\": [-1]}",
         "negative.json: image_labels[0] = -1 out of range"},
        {"names.json",
         "{\"label_names\": [\"x\", 3], \"image_names\": [\"a.png\"], \"image_labels\": [0]}",
         "names.json: label_names[1] is not a string"},
        {"float.json",
         "{\"label_names\": [\"x\"], \"image_names\": [\"a.png\"], \"image_labels\": [0.5]}",
         "float.json: image_labels[0] is not an integer"},
        {"paths.json", "{\"label_names\": [\"x\"], \"image_names\": [7], \"image_labels\": [0]}",
         "paths.json: image_names[0] is not a string"},
        {"nolabels.json", "{\"label_names\": [\"x\"], \"image_names\": [\"a.png\"]}",
         "nolabels.json: image_labels must be an array of integers"},
        {"none.json", "{\"label_names\": [\"x\"], \"image_names\": [], \"image_labels\": []}",
         "none.json: image_names is empty"},
        {"blank.json", "{\"label_names\": [\"x\"], \"image_names\": [\"\"], \"image_labels\": [0]}",
         "blank.json: image_names[0] is empty"},
        {"array.json", "[1, 2]", "array.json: not a JSON object"},
        {"broken.json", "{\"label_names\": [", "broken.json: line 1"},
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        write_text(tu_path(dir, bad[t].name), bad[t].text);
        tu_fails_with(eg_domain_open_images("bad", tu_path(dir, bad[t].name), 0, NULL, &d), bad[t].what);
        assert_null(d);
    }
    tu_fails_with(eg_domain_open_images("bad", tu_path(dir, "absent.json"), 0, NULL, &d),
                  "absent.json: no such file");

    /* A missing image: found at open when roots are given, else at fetch. */
    write_text(tu_path(dir, "missing.json"),
               "{\"label_names\": [\"x\"], \"image_names\": [\"a.png\", \"gone.png\"],"
               " \"image_labels\": [0, 0]}");
    const char *roots[] = {dir, NULL};
    tu_fails_with(eg_domain_open_images("m", tu_path(dir, "missing.json"), 0, roots, &d),
                  "gone.png: no such file");
    assert_int_equal(eg_domain_open_images("m", tu_path(dir, "missing.json"), 0, NULL, &d), 0);
    float out[3 * 4 * 4];
    assert_int_equal(d->ops->fetch(d, 0, 0, 0, 0, 4, out), 0);
    tu_fails_with(d->ops->fetch(d, 1, 1, 5, 6, 4, out), "gone.png: no such file");
    /* An undecodable image named .png: also found at fetch. */
    write_text(tu_path(dir, "text.png"), "plain text, not an image at all");
    write_text(
        tu_path(dir, "text.json"),
        "{\"label_names\": [\"x\"], \"image_names\": [\"text.png\"], \"image_labels\": [0]}");
    eg_domain *t = NULL;
    assert_int_equal(eg_domain_open_images("t", tu_path(dir, "text.json"), 1 << 20, roots, &t), 0);
    tu_fails_with(t->ops->fetch(t, 0, 0, 0, 0, 4, out), "text.png: not a JPEG or PNG image");
    eg_domain_free(t);
    eg_domain_free(d);
    tu_rmtree(dir);
    free(dir);
}

static void test_roots(void **state)
{
    char *base = realpath(tu_tmpdir(), NULL);
    assert_non_null(base);
    char inside[1024], outside[1024];
    snprintf(inside, sizeof inside, "%s/data", base);
    snprintf(outside, sizeof outside, "%s/dataset-private", base); /* a prefix of no root */
    make_dir(inside);
    make_dir(outside);
    unsigned char c0[3] = {9, 8, 7};
    make_dir(tu_path(inside, "cls"));
    write_flat_png(tu_path(inside, "cls/in.png"), 2, 2, c0);
    write_flat_png(tu_path(outside, "out.png"), 2, 2, c0);
    const char *roots[] = {"/nonexistent-root", inside, NULL};
    eg_domain *d = NULL;
    assert_int_equal(eg_domain_open_images("ok", inside, 0, roots, &d), 0);
    assert_int_equal(d->n, 1);
    eg_domain_free(d);

    char json[2048];
    snprintf(json, sizeof json,
             "{\"label_names\": [\"x\"], \"image_names\": [\"cls/in.png\", \"%s/out.png\"],"
             " \"image_labels\": [0, 0]}",
             outside);
    write_text(tu_path(inside, "list.json"), json);
    tu_fails_with(eg_domain_open_images("x", tu_path(inside, "list.json"), 0, roots, &d),
                  "out.png: outside the data roots");
    /* A link inside the root to a file outside it is outside. */
    assert_int_equal(symlink(tu_path(outside, "out.png"), tu_path(inside, "cls/link.png")), 0);
    tu_fails_with(eg_domain_open_images("x", inside, 0, roots, &d),
                  "cls/link.png: outside the data roots");
    /* A relative path climbing out of the root is outside. */
    write_text(tu_path(inside, "climb.json"),
               "{\"label_names\": [\"x\"], \"image_names\": [\"../dataset-private/out.png\"],"
               " \"image_labels\": [0]}");
    tu_fails_with(eg_domain_open_images("x", tu_path(inside, "climb.json"), 0, roots, &d),
                  "outside the data roots");
    const char *both[] = {inside, outside, NULL};
    assert_int_equal(eg_domain_open_images("x", tu_path(inside, "climb.json"), 0, both, &d), 0);
    eg_domain_free(d);
    tu_rmtree(base);
    free(base);
}

/* ---- transforms ---------------------------------------------------------- */

/* f(r, c) = (c + 2 r) / 30 on channel 0, and 1 - f on channel 1: linear,
 * so bilinear upsampling gives its value at the sample's centre. */
static float ramp(int k, double r, double c)
{
    double f = (c + 2 * r) / 30.0;
    return (float)(k == 0 ? f : 1 - f);
}

static void check_test_crop(int h, int w, int size)
{
    float *src = malloc(sizeof *src * 2 * h * w),
          *out = malloc(sizeof *out * (2 * size * size + 1));
    assert_non_null(src);
    assert_non_null(out);
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < h; r++)
            for (int c = 0; c < w; c++) src[(k * h + r) * w + c] = ramp(k, r, c);
    out[2 * size * size] = 12345.0f;
    assert_int_equal(eg_image_test_xform(src, 2, h, w, size, out), 0);
    assert_float_equal(out[2 * size * size], 12345.0f, 0); /* nothing past (2, size, size) */
    int target = (int)(size * 1.15);
    int oh = w <= h ? (int)((double)target * h / w) : target;
    int ow = w <= h ? target : (int)((double)target * w / h);
    double top = nearbyint((oh - size) / 2.0), left = nearbyint((ow - size) / 2.0);
    /* Upsampling interpolates between the two nearest pixels, clamped at
     * the edges. */
    for (int k = 0; k < 2; k++)
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) {
                double r = (y + top + 0.5) * h / oh - 0.5, c = (x + left + 0.5) * w / ow - 0.5;
                r = r < 0 ? 0 : r > h - 1 ? h - 1 : r;
                c = c < 0 ? 0 : c > w - 1 ? w - 1 : c;
                float want = ramp(k, r, c), v = out[(k * size + y) * size + x];
                if (fabsf(v - want) > 1e-5f)
                    fail_msg("%dx%d to %d: channel %d (%d, %d) = %g, expected %g", h, w, size, k, y,
                             x, v, want);
            }
    free(src);
    free(out);
}

static void test_test_xform(void **state)
{
    check_test_crop(8, 10, 16); /* landscape: 18 x 22, crop at (1, 3) */
    check_test_crop(10, 8, 16); /* portrait */
    check_test_crop(6, 6, 10);  /* square: 11 x 11, crop at (0, 0) (0.5 to even) */
    check_test_crop(9, 9, 14);  /* 16 x 16, crop at (1, 1) */

    /* Shrinking keeps a flat image flat and a ramp close to linear. */
    const int h = 90, w = 120, size = 20;
    float *src = malloc(sizeof *src * 3 * h * w), out[3 * 20 * 20];
    assert_non_null(src);
    for (int k = 0; k < 3; k++)
        for (int r = 0; r < h; r++)
            for (int c = 0; c < w; c++)
                src[(k * h + r) * w + c] = k == 0   ? 0.3f
                                           : k == 1 ? (float)c / (w - 1)
                                                    : (float)(c % 3 == 0);
    assert_int_equal(eg_image_test_xform(src, 3, h, w, size, out), 0);
    /* 23 x 30, crop at (2, 5): column x samples source column (x + 5.5) * 4 - 0.5,
     * and stripes of period 3 average to about 1/3 under the widened
     * triangle (0 or 1/2 with a plain bilinear of two taps). */
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            assert_float_equal(out[y * size + x], 0.3f, 1e-6);
            float want = (float)(((x + 5.5) * 4.0 - 0.5) / (w - 1));
            assert_float_equal(out[(size + y) * size + x], want, 1e-5);
            assert_float_equal(out[(2 * size + y) * size + x], 1 / 3.0, 0.05);
        }
    free(src);
    float one = 0.5f;
    tu_fails_with(eg_image_test_xform(&one, 1, 1, 1, 0, out), "size 0 out of range");
    tu_fails_with(eg_image_test_xform(&one, 0, 1, 1, 4, out), "bad image shape");
}

static void fill_pattern(float *x, int c, int h, int w)
{
    for (int k = 0; k < c; k++)
        for (int r = 0; r < h; r++)
            for (int q = 0; q < w; q++) x[(k * h + r) * w + q] = pattern(r, q, k) / 255.0f;
}

static void test_train_deterministic(void **state)
{
    const int c = 3, h = 50, w = 40, size = 24;
    float src[3 * 50 * 40], a[3 * 24 * 24], b[3 * 24 * 24];
    fill_pattern(src, c, h, w);
    assert_int_equal(eg_image_train_xform(src, c, h, w, 7, 100, size, a), 0);
    assert_int_equal(eg_image_train_xform(src, c, h, w, 7, 100, size, b), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(eg_image_train_xform(src, c, h, w, 7, 101, size, b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    assert_int_equal(eg_image_train_xform(src, c, h, w, 8, 100, size, b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) assert_true(a[i] >= 0 && a[i] <= 1);

    /* Draws are fixed by (key, stream, j) and spread over [0, 1). */
    double u = eg_image_uniform(3, 4, 5), lo = 1, hi = 0, sum = 0;
    assert_true(u == eg_image_uniform(3, 4, 5));
    assert_true(u != eg_image_uniform(3, 4, 6) && u != eg_image_uniform(3, 5, 5) &&
                u != eg_image_uniform(4, 4, 5));
    for (uint32_t j = 0; j < 10000; j++) {
        double v = eg_image_uniform(1, 2, j);
        assert_true(v >= 0 && v < 1);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
    }
    assert_true(lo < 0.001 && hi > 0.999);
    assert_float_equal(sum / 10000, 0.5, 0.01);
}

static void test_random_resized_crop(void **state)
{
    const int h = 60, w = 80, tries = 3000;
    double min_frac = 1, max_frac = 0, min_ratio = 10, max_ratio = 0, sum_frac = 0;
    int fallbacks = 0, max_top = 0, max_left = 0;
    for (int s = 0; s < tries; s++) {
        eg_train_params p;
        eg_image_train_params(h, w, 11, (uint64_t)s, &p);
        eg_crop_box b = p.box;
        assert_true(b.h >= 1 && b.w >= 1 && b.top >= 0 && b.left >= 0);
        assert_true(b.top + b.h <= h && b.left + b.w <= w);
        if (p.fallback) {
            fallbacks++;
            continue;
        }
        /* The box's sides are rounded, so its area and aspect may stray by
         * half a pixel a side from the drawn ones. */
        double frac = (double)b.h * b.w / (h * w), ratio = (double)b.w / b.h;
        double least = 0.08 * h * w;
        double frac_lo = (sqrt(least * 4 / 3) - 0.5) * (sqrt(least * 3 / 4) - 0.5) / (h * w);
        assert_true(frac >= frac_lo && frac <= 1);
        assert_true((b.w + 0.5) / (b.h - 0.5) >= 0.75 && (b.w - 0.5) / (b.h + 0.5) <= 4.0 / 3);
        min_frac = frac < min_frac ? frac : min_frac;
        max_frac = frac > max_frac ? frac : max_frac;
        min_ratio = ratio < min_ratio ? ratio : min_ratio;
        max_ratio = ratio > max_ratio ? ratio : max_ratio;
        sum_frac += frac;
        max_top = b.top > max_top ? b.top : max_top;
        max_left = b.left > max_left ? b.left : max_left;
    }
    assert_true(fallbacks < tries / 100);
    assert_true(min_frac < 0.1 && max_frac > 0.9);
    assert_true(min_ratio < 0.8 && max_ratio > 1.25);
    assert_true(max_top > h / 2 && max_left > w / 2);
    /* The first try that fits is kept: a scale uniform in (0.08, 1) less
     * the large boxes of extreme aspect that do not fit, whose mean area
     * fraction on 60 x 80 a simulation of torchvision's loop puts at 0.439
     * (this mean's std is 0.005 here). */
    double mean = sum_frac / (tries - fallbacks);
    if (!(mean > 0.42 && mean < 0.46)) fail_msg("mean area fraction %g", mean);

    /* No box of area >= 8% fits a 1 x 100 image: the centre crop of aspect
     * 4/3 at most, rounded. */
    eg_train_params p;
    eg_image_train_params(1, 100, 1, 2, &p);
    assert_int_equal(p.fallback, 1);
    assert_int_equal(p.box.h, 1);
    assert_int_equal(p.box.w, 1);
    assert_int_equal(p.box.top, 0);
    assert_int_equal(p.box.left, 49);
    eg_image_train_params(100, 3, 1, 2, &p); /* 4 rows of 3 columns, centred */
    assert_int_equal(p.fallback, 1);
    assert_int_equal(p.box.h, 4);
    assert_int_equal(p.box.w, 3);
    assert_int_equal(p.box.top, 48);
    assert_int_equal(p.box.left, 0);

    /* The output is the box resized. */
    const int c = 3, ih = 30, iw = 20, size = 12;
    float src[3 * 30 * 20], got[3 * 12 * 12], want[3 * 12 * 12];
    fill_pattern(src, c, ih, iw);
    eg_train_params q = {.box = {3, 5, 17, 11}, .brightness = 1, .contrast = 1, .colour = 1};
    assert_int_equal(eg_image_train_apply(src, c, ih, iw, &q, size, got), 0);
    assert_int_equal(eg_image_resize(src, c, ih, iw, q.box, size, size, want), 0);
    for (int i = 0; i < c * size * size; i++) assert_float_equal(got[i], want[i], 1e-6);
    eg_crop_box outside = {25, 0, 6, 20};
    tu_fails_with(eg_image_resize(src, c, ih, iw, outside, size, size, want), "outside a 30x20");
}

static void test_flip(void **state)
{
    const int c = 3, h = 16, w = 16, size = 16;
    int flips = 0, n = 4000;
    for (int s = 0; s < n; s++) {
        eg_train_params p;
        eg_image_train_params(h, w, 99, (uint64_t)s, &p);
        flips += p.flip;
    }
    assert_true(abs(flips - n / 2) < n / 25);

    float src[3 * 16 * 16], plain[3 * 16 * 16], mirrored[3 * 16 * 16];
    fill_pattern(src, c, h, w);
    eg_train_params p = {.box = {0, 0, h, w}, .brightness = 1, .contrast = 1, .colour = 1};
    assert_int_equal(eg_image_train_apply(src, c, h, w, &p, size, plain), 0);
    for (int i = 0; i < c * h * w; i++) /* whole box, same size: the image */
        assert_float_equal(plain[i], src[i], 1e-6);
    p.flip = 1;
    assert_int_equal(eg_image_train_apply(src, c, h, w, &p, size, mirrored), 0);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                assert_float_equal(mirrored[(k * size + y) * size + x],
                                   plain[(k * size + y) * size + size - 1 - x], 0);
}

static void test_jitter(void **state)
{
    /* Factors: 1 + 0.4 U(-1, 1), spread over [0.6, 1.4]. */
    float lo = 2, hi = 0;
    for (int s = 0; s < 2000; s++) {
        eg_train_params p;
        eg_image_train_params(8, 8, 5, (uint64_t)s, &p);
        float f[3] = {p.brightness, p.contrast, p.colour};
        for (int k = 0; k < 3; k++) {
            assert_true(f[k] >= 0.6f && f[k] <= 1.4f);
            lo = f[k] < lo ? f[k] : lo;
            hi = f[k] > hi ? f[k] : hi;
        }
        assert_true(p.brightness != p.contrast);
    }
    assert_true(lo < 0.61f && hi > 1.39f);

    /* Pixels: (0.2, 0.4, 0.8) and (0.6, 0.6, 0.6); grey of the first
     * 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.8 = 0.3858. */
    float x[6] = {0.2f, 0.6f, 0.4f, 0.6f, 0.8f, 0.6f}; /* (3, 2) */
    float y[6];
    memcpy(y, x, sizeof x);
    eg_image_brightness(y, 3, 2, 0.5f);
    for (int i = 0; i < 6; i++) assert_float_equal(y[i], x[i] * 0.5f, 1e-7);
    memcpy(y, x, sizeof x);
    eg_image_brightness(y, 3, 2, 1.4f);
    assert_float_equal(y[4], 1.0f, 0); /* clamped */
    memcpy(y, x, sizeof x);
    eg_image_colour(y, 3, 2, 0.0f);
    assert_float_equal(y[0], 0.3858f, 1e-6);
    assert_float_equal(y[2], 0.3858f, 1e-6);
    assert_float_equal(y[4], 0.3858f, 1e-6);
    assert_float_equal(y[1], 0.6f, 1e-6);
    memcpy(y, x, sizeof x);
    eg_image_colour(y, 3, 2, 1.25f);
    assert_float_equal(y[0], 0.3858f + 1.25f * (0.2f - 0.3858f), 1e-6);
    /* Contrast: the mean grey (0.3858 + 0.6) / 2 = 0.4929, as a byte 126. */
    memcpy(y, x, sizeof x);
    eg_image_contrast(y, 3, 2, 0.0f);
    for (int i = 0; i < 6; i++) assert_float_equal(y[i], 126 / 255.0f, 1e-6);
    memcpy(y, x, sizeof x);
    eg_image_contrast(y, 3, 2, 1.2f);
    assert_float_equal(y[0], 126 / 255.0f + 1.2f * (0.2f - 126 / 255.0f), 1e-6);
    /* Grey images: colour has no effect, contrast blends with their mean. */
    float g[4] = {0.1f, 0.3f, 0.5f, 0.9f}, g2[4];
    memcpy(g2, g, sizeof g);
    eg_image_colour(g2, 1, 4, 0.0f);
    assert_memory_equal(g, g2, sizeof g);
    eg_image_contrast(g2, 1, 4, 0.0f);
    for (int i = 0; i < 4; i++) assert_float_equal(g2[i], 115 / 255.0f, 1e-6); /* 0.45 */
    float grey_img[64], out[4 * 4];
    for (int i = 0; i < 64; i++) grey_img[i] = (float)i / 63;
    assert_int_equal(eg_image_train_xform(grey_img, 1, 8, 8, 1, 1, 4, out), 0);
    for (int i = 0; i < 16; i++) assert_true(out[i] >= 0 && out[i] <= 1);
}

static void test_normalize(void **state)
{
    float x[6] = {0.485f, 1.0f, 0.456f, 0.0f, 0.406f, 0.5f}; /* (3, 2) */
    eg_image_normalize(x, 3, 2, eg_imagenet_mean, eg_imagenet_std);
    assert_float_equal(x[0], 0, 1e-6);
    assert_float_equal(x[1], (1 - 0.485f) / 0.229f, 1e-5);
    assert_float_equal(x[2], 0, 1e-6);
    assert_float_equal(x[3], -0.456f / 0.224f, 1e-5);
    assert_float_equal(x[4], 0, 1e-6);
    assert_float_equal(x[5], (0.5f - 0.406f) / 0.225f, 1e-5);
    const float m = 0.5f, s = 0.5f;
    float g[2] = {0, 1};
    eg_image_normalize(g, 1, 2, &m, &s);
    assert_float_equal(g[0], -1, 0);
    assert_float_equal(g[1], 1, 0);
}

/* ---- the cache ----------------------------------------------------------- */

/* Opens dir's image folder of n 8 x 8 images in one class. */
static eg_domain *open_cached(const char *dir, size_t cache_bytes)
{
    eg_domain *d = NULL;
    eg_clear_error();
    if (eg_domain_open_images("cache", dir, cache_bytes, NULL, &d) != 0)
        fail_msg("%s", eg_last_error());
    return d;
}

static void test_cache(void **state)
{
    const char *dir = tu_tmpdir();
    make_dir(tu_path(dir, "k"));
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "k/%d.png", i);
        write_pattern_png(tu_path(dir, name), 8, 8);
    }
    write_pattern_png(tu_path(dir, "k/4.png"), 20, 20); /* larger than the cache */
    const size_t one = 8 * 8 * 3;
    float a[3 * 16 * 16], b[3 * 16 * 16];

    /* Identical outputs with and without caching, fetched twice. */
    eg_domain *plain = open_cached(dir, 0), *cached = open_cached(dir, 1 << 20);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 5; i++)
            for (int train = 0; train < 2; train++) {
                assert_int_equal(plain->ops->fetch(plain, i, train, 3, (uint64_t)i, 16, a), 0);
                assert_int_equal(cached->ops->fetch(cached, i, train, 3, (uint64_t)i, 16, b), 0);
                assert_memory_equal(a, b, sizeof a);
            }
    eg_domain_free(cached);

    /* Room for two: fetch 0, 1, 0, then remove the files; 0 and 1 are held.
     * Fetching 2 (restored) drops 1, the least recently used. */
    eg_domain *d = open_cached(dir, 2 * one);
    for (int i = 0; i < 3; i++)
        assert_int_equal(d->ops->fetch(d, i == 2 ? 0 : i, 0, 0, 0, 16, a), 0);
    assert_int_equal(unlink(tu_path(dir, "k/0.png")), 0);
    assert_int_equal(unlink(tu_path(dir, "k/1.png")), 0);
    assert_int_equal(d->ops->fetch(d, 0, 0, 0, 0, 16, b), 0);
    assert_int_equal(plain->ops->fetch(plain, 2, 0, 0, 0, 16, a), 0);
    assert_memory_equal(a, b, sizeof a); /* 0 and 2 hold the same pattern */
    assert_int_equal(d->ops->fetch(d, 1, 1, 4, 4, 16, b), 0);
    assert_int_equal(d->ops->fetch(d, 2, 0, 0, 0, 16, b), 0); /* drops 0 (1 was used later) */
    tu_fails_with(d->ops->fetch(d, 0, 0, 0, 0, 16, b), "k/0.png: no such file");
    assert_int_equal(d->ops->fetch(d, 1, 0, 0, 0, 16, b), 0);
    assert_int_equal(d->ops->fetch(d, 3, 0, 0, 0, 16, b), 0); /* drops 2 */
    assert_int_equal(unlink(tu_path(dir, "k/2.png")), 0);
    tu_fails_with(d->ops->fetch(d, 2, 0, 0, 0, 16, b), "k/2.png: no such file");
    assert_int_equal(d->ops->fetch(d, 1, 0, 0, 0, 16, b), 0);
    /* An image larger than the whole cache is decoded each time, keeping
     * what is held. */
    assert_int_equal(d->ops->fetch(d, 4, 0, 0, 0, 16, b), 0);
    assert_int_equal(d->ops->fetch(d, 1, 0, 0, 0, 16, b), 0);
    assert_int_equal(unlink(tu_path(dir, "k/4.png")), 0);
    tu_fails_with(d->ops->fetch(d, 4, 0, 0, 0, 16, b), "k/4.png: no such file");
    assert_int_equal(d->ops->fetch(d, 3, 0, 0, 0, 16, b), 0);
    eg_domain_free(d);

    /* No cache: a removed file fails at once. */
    assert_int_equal(plain->ops->fetch(plain, 3, 0, 0, 0, 16, a), 0);
    assert_int_equal(unlink(tu_path(dir, "k/3.png")), 0);
    tu_fails_with(plain->ops->fetch(plain, 3, 0, 0, 0, 16, a), "k/3.png: no such file");
    eg_domain_free(plain);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_colour_types),
        cmocka_unit_test(test_jpeg_rgb_and_grey),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_split_rule),
        cmocka_unit_test(test_image_folder),
        cmocka_unit_test(test_file_list),
        cmocka_unit_test(test_split_folder),
        cmocka_unit_test(test_list_errors),
        cmocka_unit_test(test_roots),
        cmocka_unit_test(test_test_xform),
        cmocka_unit_test(test_train_deterministic),
        cmocka_unit_test(test_random_resized_crop),
        cmocka_unit_test(test_flip),
        cmocka_unit_test(test_jitter),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
