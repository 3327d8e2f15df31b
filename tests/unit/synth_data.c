#include "synth_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <zlib.h>

#include "nn/rng.h"
#include "util/err.h"

/* One CIFAR-10 file of `records` records: a label byte, then 3072 pixels. */
static int write_file(const char *path, int records, eg_rng *rng)
{
    FILE *f = fopen(path, "wb");
    if (!f) return eg_errorf("%s: cannot create", path);
    unsigned char rec[1 + 3072];
    for (int r = 0; r < records; r++) {
        rec[0] = (unsigned char)eg_rng_below(rng, 10);
        for (int i = 1; i < (int)sizeof rec; i++) rec[i] = (unsigned char)eg_rng_u32(rng);
        if (fwrite(rec, sizeof rec, 1, f) != 1) {
            fclose(f);
            return eg_errorf("%s: write failed", path);
        }
    }
    if (fclose(f) != 0) return eg_errorf("%s: write failed", path);
    return 0;
}

int synth_cifar10(const char *dir, int per_file, int test, uint64_t seed)
{
    eg_rng rng;
    eg_rng_seed(&rng, seed, 0);
    char path[1024];
    for (int b = 1; b <= 5; b++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
        EG_TRY(write_file(path, per_file, &rng));
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    return write_file(path, test, &rng);
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* One split: its image and label files. */
static int write_idx_split(const char *dir, const char *prefix, const char *split, int n,
                           int rows, int cols, int first_label, int classes, eg_rng *rng)
{
    char ipath[1024], lpath[1024];
    snprintf(ipath, sizeof ipath, "%s/%s%s-images-idx3-ubyte.gz", dir, prefix, split);
    snprintf(lpath, sizeof lpath, "%s/%s%s-labels-idx1-ubyte.gz", dir, prefix, split);
    gzFile fi = gzopen(ipath, "wb1"), fl = gzopen(lpath, "wb1");
    unsigned char *img = malloc((size_t)rows * cols);
    int ok = fi && fl && img;
    unsigned char h[16];
    be32(h, 0x803), be32(h + 4, (uint32_t)n), be32(h + 8, (uint32_t)rows);
    be32(h + 12, (uint32_t)cols);
    ok = ok && gzwrite(fi, h, 16) == 16;
    be32(h, 0x801), be32(h + 4, (uint32_t)n);
    ok = ok && gzwrite(fl, h, 8) == 8;
    for (int i = 0; ok && i < n; i++) {
        int label = (int)eg_rng_below(rng, (uint32_t)classes);
        unsigned char lb = (unsigned char)(first_label + label);
        /* A bright blob off-centre, at an angle given by the label. */
        double a = 6.283185307179586 * label / classes;
        double cy = rows / 2.0 + rows / 4.0 * sin(a), cx = cols / 2.0 + cols / 4.0 * cos(a);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                double d2 = (r - cy) * (r - cy) + (c - cx) * (c - cx);
                double v = 230.0 * exp(-d2 / (rows * cols / 40.0)) + eg_rng_below(rng, 25);
                img[r * cols + c] = (unsigned char)(v > 255 ? 255 : v);
            }
        ok = gzwrite(fi, img, (unsigned)(rows * cols)) == rows * cols && gzwrite(fl, &lb, 1) == 1;
    }
    free(img);
    int closed = (fi ? gzclose(fi) == Z_OK : 0) & (fl ? gzclose(fl) == Z_OK : 0);
    if (!ok || !closed) return eg_errorf("%s: cannot write the IDX set", dir);
    return 0;
}

int synth_idx(const char *dir, const char *prefix, int n_train, int n_test, int rows, int cols,
              int first_label, int classes, uint64_t seed)
{
    eg_rng rng;
    eg_rng_seed(&rng, seed, 0);
    EG_TRY(write_idx_split(dir, prefix, "train", n_train, rows, cols, first_label, classes,
                           &rng));
    return write_idx_split(dir, prefix, "t10k", n_test, rows, cols, first_label, classes, &rng);
}
