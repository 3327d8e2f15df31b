/* JPEG and PNG decoding to 8-bit RGB; see image_decode.h. */
#include "data/image_decode.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "util/err.h"

/* A progressive JPEG may hold any number of scans, each a full pass over
 * the image; more than this is treated as corrupt (libjpeg-turbo's own
 * advice against denial of service). */
#define JPEG_MAX_SCANS 500

static int too_large(const char *name, uint64_t w, uint64_t h)
{
    if (w == 0 || h == 0)
        return eg_errorf("%s: image of %llux%llu pixels is empty", name, (unsigned long long)w,
                         (unsigned long long)h);
    if (w > EG_IMAGE_MAX_SIDE || h > EG_IMAGE_MAX_SIDE || w * h > EG_IMAGE_MAX_PIXELS)
        return eg_errorf("%s: image of %llux%llu pixels is too large (at most %d a side, "
                         "%llu pixels)",
                         name, (unsigned long long)w, (unsigned long long)h, EG_IMAGE_MAX_SIDE,
                         (unsigned long long)EG_IMAGE_MAX_PIXELS);
    return 0;
}

/* A file of len bytes that announces more pixels (or raw bytes) than
 * per_byte for each of its bytes, plus some slack, cannot hold them: it
 * is refused as truncated before the pixels are allocated. */
static int too_short(const char *name, uint64_t w, uint64_t h, uint64_t need, size_t len,
                     uint64_t per_byte)
{
    if (need <= per_byte * len + ((uint64_t)1 << 20)) return 0;
    return eg_errorf("%s: truncated: an image of %llux%llu pixels cannot fit in %zu bytes", name,
                     (unsigned long long)w, (unsigned long long)h, len);
}

/* ---- JPEG ---------------------------------------------------------------- */

/* Huffman coding spends at least one bit on each 8x8 block of every scan,
 * and a scan covers at least the blocks of a component subsampled by 4
 * each way: one byte holds at most 8 * 64 * 16 pixels. */
#define JPEG_PIXELS_PER_BYTE 8192

/* One JPEG decode. Everything that must be freed after a longjmp lives
 * here, outside the frame that called setjmp. */
typedef struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX + 64];
    const char *name;
    size_t len;   /* of the file */
    uint8_t *rgb; /* (h, w, 3) */
    uint8_t *row; /* (w, 4) one scanline as libjpeg writes it */
    int h, w;
} jpeg_job;

static void jpeg_fail(j_common_ptr cinfo)
{
    jpeg_job *j = (jpeg_job *)cinfo->client_data;
    cinfo->err->format_message(cinfo, j->msg);
    longjmp(j->jump, 1);
}

/* Trace messages and most warnings are dropped (real data sets hold JPEGs
 * with stray bytes that PIL reads too); data ending early is fatal, since
 * libjpeg would fill the rest of the image with grey. */
static void jpeg_message(j_common_ptr cinfo, int level)
{
    if (level >= 0) return;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(cinfo);
    cinfo->err->num_warnings++;
}

static void jpeg_scan_limit(j_common_ptr cinfo)
{
    jpeg_job *j = (jpeg_job *)cinfo->client_data;
    if (j->cinfo.input_scan_number > JPEG_MAX_SCANS) {
        snprintf(j->msg, sizeof j->msg, "more than %d scans", JPEG_MAX_SCANS);
        longjmp(j->jump, 1);
    }
}

/* CMYK as libjpeg gives it to RGB as PIL converts it: R = (255 - C) *
 * (255 - K) / 255, where Adobe's files store every ink inverted. */
static void cmyk_to_rgb(const uint8_t *cmyk, int w, int inverted, uint8_t *rgb)
{
    for (int x = 0; x < w; x++) {
        unsigned k = inverted ? cmyk[4 * x + 3] : 255u - cmyk[4 * x + 3];
        for (int ch = 0; ch < 3; ch++) {
            unsigned ink = inverted ? cmyk[4 * x + ch] : 255u - cmyk[4 * x + ch];
            rgb[3 * x + ch] = (uint8_t)((ink * k + 127u) / 255u);
        }
    }
}

/* Decodes into j->rgb; 0, or -1 with j->msg set (or eg_errorf() called
 * for a refused size, j->msg then empty). */
static int jpeg_run(jpeg_job *j, const uint8_t *buf, size_t len)
{
    if (setjmp(j->jump)) return -1;
    jpeg_create_decompress(&j->cinfo);
    j->cinfo.client_data = j;
    j->progress.progress_monitor = jpeg_scan_limit;
    j->cinfo.progress = &j->progress;
    jpeg_mem_src(&j->cinfo, buf, (unsigned long)len);
    jpeg_read_header(&j->cinfo, TRUE);
    uint64_t iw = j->cinfo.image_width, ih = j->cinfo.image_height;
    if (too_large(j->name, iw, ih) != 0) return -1;
    if (!j->cinfo.arith_code &&
        too_short(j->name, iw, ih, iw * ih, j->len, JPEG_PIXELS_PER_BYTE) != 0)
        return -1;
    J_COLOR_SPACE space = j->cinfo.jpeg_color_space;
    int cmyk = space == JCS_CMYK || space == JCS_YCCK;
    j->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&j->cinfo);
    int w = (int)j->cinfo.output_width, h = (int)j->cinfo.output_height; /* no scaling */
    if (j->cinfo.output_components != (cmyk ? 4 : 3)) {
        snprintf(j->msg, sizeof j->msg, "%d output components", j->cinfo.output_components);
        return -1;
    }
    j->rgb = malloc((size_t)w * h * 3);
    j->row = malloc((size_t)w * 4);
    if (!j->rgb || !j->row) {
        snprintf(j->msg, sizeof j->msg, "out of memory for %dx%d pixels", w, h);
        return -1;
    }
    j->w = w;
    j->h = h;
    while (j->cinfo.output_scanline < j->cinfo.output_height) {
        uint8_t *dst = j->rgb + (size_t)j->cinfo.output_scanline * w * 3;
        JSAMPROW row = cmyk ? j->row : dst;
        if (jpeg_read_scanlines(&j->cinfo, &row, 1) != 1) {
            snprintf(j->msg, sizeof j->msg, "no scanline read");
            return -1;
        }
        if (cmyk) cmyk_to_rgb(j->row, w, j->cinfo.saw_Adobe_marker, dst);
    }
    jpeg_finish_decompress(&j->cinfo);
    return 0;
}

static int decode_jpeg(const char *name, const uint8_t *buf, size_t len, eg_image8 *out)
{
    jpeg_job *j = calloc(1, sizeof *j);
    if (!j) return eg_errorf("%s: out of memory", name);
    j->name = name;
    j->len = len;
    j->cinfo.err = jpeg_std_error(&j->err);
    j->err.error_exit = jpeg_fail;
    j->err.emit_message = jpeg_message;
    j->cinfo.client_data = j;
    int rc = jpeg_run(j, buf, len);
    jpeg_destroy_decompress(&j->cinfo);
    free(j->row);
    if (rc == 0) {
        out->rgb = j->rgb;
        out->w = j->w;
        out->h = j->h;
    } else {
        free(j->rgb);
        if (j->msg[0]) eg_errorf("%s: corrupt JPEG: %s", name, j->msg);
    }
    free(j);
    return rc;
}

/* ---- PNG ----------------------------------------------------------------- */

/* Deflate expands a byte to at most 1032 (runs of 258 bytes in 2 bits). */
#define PNG_RAW_PER_BYTE 1032

/* Largest ancillary chunk (or decompressed text or ICC profile) and most
 * ancillary chunks libpng keeps, its own defaults where it sets any. */
#define PNG_CHUNK_MAX (8u << 20)
#define PNG_CHUNKS_MAX 1000

typedef struct png_job {
    const uint8_t *buf;
    size_t len, pos;
    char msg[256];
    const char *name;
    png_structp png;
    png_infop info;
    uint8_t *pixels; /* (h, w, 3) */
    png_bytep *rows; /* (h) */
    int h, w;
} png_job;

static void png_fail(png_structp png, png_const_charp msg)
{
    png_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep dst, size_t n)
{
    png_job *j = png_get_io_ptr(png);
    if (n > j->len - j->pos) png_error(png, "truncated");
    memcpy(dst, j->buf + j->pos, n);
    j->pos += n;
}

/* Checks that every chunk before IEND lies within the file: libpng
 * allocates a chunk's announced length before reading its data. */
static int png_chunks_fit(const char *name, const uint8_t *buf, size_t len)
{
    size_t pos = 8;
    while (pos + 8 <= len) {
        uint64_t chunk =
            (uint64_t)buf[pos] << 24 | buf[pos + 1] << 16 | buf[pos + 2] << 8 | buf[pos + 3];
        if (chunk + 12 > len - pos)
            return eg_errorf("%s: truncated: the chunk at byte %zu announces %llu bytes, past "
                             "the end of the file",
                             name, pos, (unsigned long long)chunk);
        if (!memcmp(buf + pos + 4, "IEND", 4)) return 0;
        pos += (size_t)chunk + 12;
    }
    return 0;
}

/* Decodes into j->pixels; 0, or -1
 * with j->msg set (or eg_errorf() called, j->msg then empty). */
static int png_run(png_job *j)
{
    if (setjmp(png_jmpbuf(j->png))) return -1;
    png_set_read_fn(j->png, j, png_read_mem);
    /* libpng allocates a chunk's announced length before reading it. */
    png_set_chunk_malloc_max(j->png, PNG_CHUNK_MAX);
    png_set_chunk_cache_max(j->png, PNG_CHUNKS_MAX);
    png_read_info(j->png, j->info);
    png_uint_32 w = png_get_image_width(j->png, j->info);
    png_uint_32 h = png_get_image_height(j->png, j->info);
    if (too_large(j->name, w, h) != 0) return -1;
    int type = png_get_color_type(j->png, j->info);
    int depth = png_get_bit_depth(j->png, j->info);
    uint64_t raw =
        (uint64_t)h * (1 + ((uint64_t)w * png_get_channels(j->png, j->info) * depth + 7) / 8);
    if (too_short(j->name, w, h, raw, j->len, PNG_RAW_PER_BYTE) != 0) return -1;
    if (depth == 16) png_set_strip_16(j->png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(j->png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(j->png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(j->png);
    png_set_strip_alpha(j->png);
    png_set_interlace_handling(j->png);
    png_read_update_info(j->png, j->info);
    int channels = png_get_channels(j->png, j->info);
    size_t rowbytes = png_get_rowbytes(j->png, j->info);
    if (channels != 3 || rowbytes != (size_t)w * 3) {
        snprintf(j->msg, sizeof j->msg, "unexpected layout of %d channels, %zu bytes a row",
                 channels, rowbytes);
        return -1;
    }
    j->pixels = malloc(rowbytes * h);
    j->rows = malloc(sizeof *j->rows * h);
    if (!j->pixels || !j->rows) {
        snprintf(j->msg, sizeof j->msg, "out of memory for %ux%u pixels", (unsigned)w, (unsigned)h);
        return -1;
    }
    for (png_uint_32 y = 0; y < h; y++) j->rows[y] = j->pixels + rowbytes * y;
    png_read_image(j->png, j->rows);
    j->w = (int)w;
    j->h = (int)h;
    return 0;
}

static int decode_png(const char *name, const uint8_t *buf, size_t len, eg_image8 *out)
{
    png_job *j = calloc(1, sizeof *j);
    if (!j) return eg_errorf("%s: out of memory", name);
    j->buf = buf;
    j->len = len;
    j->name = name;
    j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, png_fail, png_warn);
    j->info = j->png ? png_create_info_struct(j->png) : NULL;
    int rc = png_chunks_fit(name, buf, len);
    if (rc == 0 && !j->info) rc = eg_errorf("%s: out of memory", name);
    if (rc == 0) rc = png_run(j);
    if (j->png) png_destroy_read_struct(&j->png, j->info ? &j->info : NULL, NULL);
    free(j->rows);
    if (rc == 0) {
        out->rgb = j->pixels;
        out->w = j->w;
        out->h = j->h;
    } else {
        free(j->pixels);
        if (j->msg[0]) eg_errorf("%s: corrupt PNG: %s", name, j->msg);
    }
    free(j);
    return rc;
}

/* ---- files --------------------------------------------------------------- */

int eg_image_decode_mem(const char *name, const uint8_t *buf, size_t len, eg_image8 *out)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(out, 0, sizeof *out);
    if (len == 0) return eg_errorf("%s: empty file", name);
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return decode_jpeg(name, buf, len, out);
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0) return decode_png(name, buf, len, out);
    return eg_errorf("%s: not a JPEG or PNG image", name);
}

int eg_image_decode_file(const char *path, eg_image8 *out)
{
    memset(out, 0, sizeof *out);
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return eg_errorf("%s: no such file", path);
        return eg_errorf("%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return eg_errorf("%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > EG_IMAGE_MAX_FILE) {
        fclose(f);
        return eg_errorf("%s: file of %lld bytes is too large for an image", path,
                         (long long)st.st_size);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return eg_errorf("%s: out of memory for %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    int read_failed = ferror(f);
    fclose(f);
    int rc;
    if (read_failed || got != len)
        rc = eg_errorf("%s: read error", path);
    else
        rc = eg_image_decode_mem(path, buf, len, out);
    free(buf);
    return rc;
}

void eg_image8_free(eg_image8 *im)
{
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

void eg_image8_to_float(const eg_image8 *im, float *out)
{
    size_t hw = (size_t)im->h * im->w;
    for (size_t p = 0; p < hw; p++)
        for (int ch = 0; ch < 3; ch++) out[ch * hw + p] = im->rgb[3 * p + ch] / 255.0f;
}
