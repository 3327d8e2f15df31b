/* The IDX reader (MNIST, Fashion-MNIST), raw or gzip through zlib. */
#include "data/dataset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/err.h"

#define IDX_IMAGES_MAGIC 0x00000803u /* unsigned byte, 3 dimensions */
#define IDX_LABELS_MAGIC 0x00000801u /* unsigned byte, 1 dimension */

/* Opens path for reading with zlib (gzip or raw); NULL after eg_errorf(). */
static gzFile idx_open(const char *path)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) eg_errorf("%s: no such file", path);
        else eg_errorf("%s: cannot open: %s", path,
                       errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    gzbuffer(f, 1 << 17);
    return f;
}

/* Reads up to len bytes; returns the count read (short only at end of
 * data) or -1 after eg_errorf() on a read or decompression error. */
static int64_t idx_read(gzFile f, const char *path, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        size_t want = len - got;
        if (want > (1u << 30)) want = 1u << 30;
        int r = gzread(f, (unsigned char *)buf + got, (unsigned)want);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            return eg_errorf("%s: read error: %s", path,
                             zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    /* A gzip stream that ends early reads short and flags Z_BUF_ERROR. */
    int zerr;
    const char *msg = gzerror(f, &zerr);
    if (zerr != Z_OK && zerr != Z_BUF_ERROR)
        return eg_errorf("%s: read error: %s", path, msg);
    return (int64_t)got;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/* Reads the header of an IDX file: the magic, then ndim big-endian sizes.
 * Fails with a message naming path if it is short or the magic differs. */
static int idx_header(gzFile f, const char *path, uint32_t magic,
                      uint32_t *dims, int ndim)
{
    unsigned char h[16];
    size_t len = 4 + 4 * (size_t)ndim;
    int64_t got = idx_read(f, path, h, len);
    if (got < 0) return -1;
    if (got >= 4 && be32(h) != magic)
        return eg_errorf("%s: bad magic 0x%08x (expected 0x%08x)", path,
                         be32(h), magic);
    if ((size_t)got < len)
        return eg_errorf("%s: truncated: expected %zu bytes of header, got %lld",
                         path, len, (long long)got);
    for (int i = 0; i < ndim; i++) dims[i] = be32(h + 4 + 4 * i);
    return 0;
}

/* Checks that nothing follows the data the header announced. */
static int idx_expect_end(gzFile f, const char *path, size_t expected)
{
    unsigned char extra;
    int64_t got = idx_read(f, path, &extra, 1);
    if (got < 0) return -1;
    if (got > 0)
        return eg_errorf("%s: corrupt: data continues past the %zu bytes the "
                         "header announces", path, expected);
    return 0;
}

/* Makes room in *a (elements of `size` bytes) for `need` of them, growing
 * geometrically, so that a header announcing more data than the file has
 * costs memory only for what arrives. -1 when out of memory. */
static int grow(void **a, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 1 << 16;
    while (c < need) c *= 2;
    void *bigger = realloc(*a, c * size);
    if (!bigger) return -1;
    *a = bigger;
    *cap = c;
    return 0;
}

/* Reads the image file into a fresh (n, 1, rows, cols) float array. */
static int idx_read_images(const char *path, eg_dataset *d)
{
    gzFile f = idx_open(path);
    if (!f) return -1;
    uint32_t dims[3];
    unsigned char *buf = NULL;
    float *x = NULL;
    if (idx_header(f, path, IDX_IMAGES_MAGIC, dims, 3) != 0) goto fail;
    uint64_t count = (uint64_t)dims[0] * dims[1] * dims[2];
    if (dims[0] == 0 || dims[1] == 0 || dims[2] == 0) {
        eg_errorf("%s: corrupt: empty dimensions %u x %u x %u", path, dims[0],
                  dims[1], dims[2]);
        goto fail;
    }
    if (dims[0] > INT32_MAX || dims[1] > 65536 || dims[2] > 65536 ||
        count > EG_DATASET_MAX_VALUES) {
        eg_errorf("%s: corrupt: implausible dimensions %u x %u x %u", path,
                  dims[0], dims[1], dims[2]);
        goto fail;
    }
    size_t total = 16 + (size_t)count, cap = 0;
    buf = malloc(1 << 16);
    if (!buf) {
        eg_errorf("%s: out of memory", path);
        goto fail;
    }
    for (size_t done = 0; done < count;) {
        size_t want = count - done < (1 << 16) ? count - done : (1 << 16);
        if (grow((void **)&x, &cap, done + want, sizeof *x) != 0) {
            eg_errorf("%s: out of memory for %llu pixels", path, (unsigned long long)count);
            goto fail;
        }
        int64_t got = idx_read(f, path, buf, want);
        if (got < 0) goto fail;
        for (int64_t i = 0; i < got; i++) x[done + i] = buf[i] / 255.0f;
        done += (size_t)got;
        if ((size_t)got < want) {
            eg_errorf("%s: truncated: expected %zu bytes, got %zu", path,
                      total, 16 + done);
            goto fail;
        }
    }
    if (idx_expect_end(f, path, total) != 0) goto fail;
    free(buf);
    gzclose(f);
    d->n = (int)dims[0];
    d->c = 1;
    d->h = (int)dims[1];
    d->w = (int)dims[2];
    d->x = x;
    return 0;
fail:
    free(buf);
    free(x);
    gzclose(f);
    return -1;
}

/* Reads the label file into a fresh (n) array; sets *n and the classes. */
static int idx_read_labels(const char *path, eg_dataset *d, int *n)
{
    gzFile f = idx_open(path);
    if (!f) return -1;
    uint32_t dims[1];
    unsigned char *buf = NULL;
    int32_t *y = NULL;
    if (idx_header(f, path, IDX_LABELS_MAGIC, dims, 1) != 0) goto fail;
    if (dims[0] == 0 || dims[0] > INT32_MAX) {
        eg_errorf("%s: corrupt: implausible label count %u", path, dims[0]);
        goto fail;
    }
    size_t count = dims[0], total = 8 + count, cap = 0;
    int max = 0;
    buf = malloc(1 << 16);
    if (!buf) {
        eg_errorf("%s: out of memory", path);
        goto fail;
    }
    for (size_t done = 0; done < count;) {
        size_t want = count - done < (1 << 16) ? count - done : (1 << 16);
        if (grow((void **)&y, &cap, done + want, sizeof *y) != 0) {
            eg_errorf("%s: out of memory for %zu labels", path, count);
            goto fail;
        }
        int64_t got = idx_read(f, path, buf, want);
        if (got < 0) goto fail;
        for (int64_t i = 0; i < got; i++) {
            y[done + i] = buf[i];
            if (buf[i] > max) max = buf[i];
        }
        done += (size_t)got;
        if ((size_t)got < want) {
            eg_errorf("%s: truncated: expected %zu bytes, got %zu", path, total, 8 + done);
            goto fail;
        }
    }
    if (idx_expect_end(f, path, total) != 0) goto fail;
    free(buf);
    gzclose(f);
    d->y = y;
    d->classes = max + 1;
    *n = (int)count;
    return 0;
fail:
    free(buf);
    free(y);
    gzclose(f);
    return -1;
}

int eg_idx_count(const char *images_path, long *n)
{
    gzFile f = idx_open(images_path);
    if (!f) return -1;
    uint32_t dims[3];
    int rc = idx_header(f, images_path, IDX_IMAGES_MAGIC, dims, 3);
    gzclose(f);
    if (rc == 0) *n = (long)dims[0];
    return rc;
}

int eg_idx_load(const char *images_path, const char *labels_path,
                eg_dataset *out)
{
    memset(out, 0, sizeof *out);
    eg_dataset d = {0};
    int n_labels = 0;
    if (idx_read_images(images_path, &d) != 0) return -1;
    if (idx_read_labels(labels_path, &d, &n_labels) != 0) {
        free(d.x);
        return -1;
    }
    if (n_labels != d.n) {
        eg_errorf("%s, %s: count mismatch: %d images but %d labels",
                  images_path, labels_path, d.n, n_labels);
        free(d.x);
        free(d.y);
        return -1;
    }
    d.owns = 1;
    *out = d;
    return 0;
}
