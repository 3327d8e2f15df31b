/* The CIFAR-10 / CIFAR-100 binary reader. */
#include "data/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/err.h"

#define CIFAR_PIXELS 3072 /* 3 x 32 x 32, planar R, G, B */
#define CIFAR_CHUNK 512   /* records read per fread */

/* Opens path and returns its record count in *records; NULL after
 * eg_errorf() if it is missing, unreadable or not a whole number of
 * records. */
static FILE *cifar_open(const char *path, size_t record, size_t *records)
{
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) eg_errorf("%s: no such file", path);
        else eg_errorf("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        eg_errorf("%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if (st.st_size == 0 || (size_t)st.st_size % record != 0) {
        eg_errorf("%s: corrupt: size %lld bytes is not a positive multiple of "
                  "the %zu-byte record", path, (long long)st.st_size, record);
        fclose(f);
        return NULL;
    }
    *records = (size_t)st.st_size / record;
    return f;
}

/* Reads `records` records of f into x (records, 3, 32, 32) and y. */
static int cifar_read(FILE *f, const char *path, size_t records, int classes,
                      size_t record, unsigned char *buf, float *x, int32_t *y)
{
    size_t label_bytes = record - CIFAR_PIXELS;
    for (size_t done = 0; done < records;) {
        size_t want = records - done < CIFAR_CHUNK ? records - done : CIFAR_CHUNK;
        size_t got = fread(buf, record, want, f);
        if (got < want) {
            if (ferror(f)) return eg_errorf("%s: read error: %s", path,
                                            strerror(errno));
            return eg_errorf("%s: truncated: expected %zu bytes, got %zu", path,
                             records * record, (done + got) * record);
        }
        for (size_t i = 0; i < want; i++) {
            const unsigned char *rec = buf + i * record;
            /* CIFAR-100 records are (coarse, fine): the fine label is last. */
            int label = rec[label_bytes - 1];
            if (label >= classes)
                return eg_errorf("%s: corrupt: record %zu has label %d, not in "
                                 "[0, %d)", path, done + i, label, classes);
            y[done + i] = label;
            float *xi = x + (done + i) * CIFAR_PIXELS;
            for (int k = 0; k < CIFAR_PIXELS; k++)
                xi[k] = rec[label_bytes + k] / 255.0f;
        }
        done += want;
    }
    return 0;
}

int eg_cifar_load(const char *const *paths, int n_paths, int classes,
                  eg_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (classes != 10 && classes != 100)
        return eg_errorf("CIFAR: classes must be 10 or 100, not %d", classes);
    if (!paths || n_paths < 1) return eg_errorf("CIFAR: no files given");
    size_t record = (classes == 10 ? 1 : 2) + CIFAR_PIXELS;

    /* First pass: validate sizes, so the arrays are allocated once. */
    size_t total = 0;
    for (int i = 0; i < n_paths; i++) {
        size_t records;
        FILE *f = cifar_open(paths[i], record, &records);
        if (!f) return -1;
        fclose(f);
        total += records;
    }
    if (total > EG_DATASET_MAX_VALUES / CIFAR_PIXELS)
        return eg_errorf("%s: too many records in total (%zu)", paths[0], total);

    float *x = malloc(total * CIFAR_PIXELS * sizeof *x);
    int32_t *y = malloc(total * sizeof *y);
    unsigned char *buf = malloc(CIFAR_CHUNK * record);
    if (!x || !y || !buf) {
        eg_errorf("%s: out of memory for %zu CIFAR images", paths[0], total);
        goto fail;
    }
    size_t at = 0;
    for (int i = 0; i < n_paths; i++) {
        size_t records;
        FILE *f = cifar_open(paths[i], record, &records);
        if (!f) goto fail;
        /* The file may have changed since the first pass. */
        int rc = records > total - at
                     ? eg_errorf("%s: changed while being read", paths[i])
                     : cifar_read(f, paths[i], records, classes, record, buf,
                                  x + at * CIFAR_PIXELS, y + at);
        fclose(f);
        if (rc != 0) goto fail;
        at += records;
    }
    if (at != total) {
        eg_errorf("%s: changed while being read", paths[n_paths - 1]);
        goto fail;
    }
    free(buf);
    *out = (eg_dataset){.n = (int)total, .c = 3, .h = 32, .w = 32,
                        .classes = classes, .x = x, .y = y, .owns = 1};
    return 0;
fail:
    free(buf);
    free(x);
    free(y);
    return -1;
}
