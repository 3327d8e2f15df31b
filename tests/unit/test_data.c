/* The data layer (daemon/data): IDX and CIFAR readers on files written here
 * (raw and gzip, exact pixel and label values), every failure path with a
 * message naming the file, eg_dataset_open's folder layouts, slicing,
 * channel statistics and normalisation, gathering, the seeded resumable
 * batcher, MWN label noise rates and structure, and, where the Debian
 * dataset-fashion-mnist package is installed, the real Fashion-MNIST checked
 * against an independent numpy reader (tests/parity/data_idx_ref.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.h"
#include "nn/rng.h"
#include "synth_data.h"
#include "testutil.h"
#include "util/err.h"

/* ---- scratch files ---------------------------------------------------- */

typedef struct scratch {
    char dir[512];
} scratch;

static void scratch_open(scratch *s)
{
    snprintf(s->dir, sizeof s->dir, "%s", tu_tmpdir());
}

static void scratch_close(scratch *s) { tu_rmtree(s->dir); }

/* Returns dir/name in a rotating set of static buffers. */
static const char *in(const scratch *s, const char *name)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", s->dir, name);
    return b;
}

static void write_gz(const char *path, const void *buf, size_t len)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, buf, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* The byte at pixel (i, r, c) of the synthetic IDX images. */
static unsigned char idx_pixel(int i, int r, int c)
{
    return (unsigned char)((i * 37 + r * 11 + c * 5 + 3) % 256);
}

static int idx_label(int i) { return (i * 7 + 2) % 10; }

/* An IDX image file image of n (rows, cols) images; *len gets its size. */
static unsigned char *idx_images(int n, int rows, int cols, size_t *len)
{
    *len = 16 + (size_t)n * rows * cols;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    put_be32(b, 0x00000803u);
    put_be32(b + 4, (uint32_t)n);
    put_be32(b + 8, (uint32_t)rows);
    put_be32(b + 12, (uint32_t)cols);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                b[16 + ((size_t)i * rows + r) * cols + c] = idx_pixel(i, r, c);
    return b;
}

static unsigned char *idx_labels(int n, size_t *len)
{
    *len = 8 + (size_t)n;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    put_be32(b, 0x00000801u);
    put_be32(b + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) b[8 + i] = (unsigned char)idx_label(i);
    return b;
}

/* Writes name_images / name_labels (raw or gzip) for n images. */
static void write_idx_pair(const char *img_path, const char *lab_path, int n,
                           int rows, int cols, int gz)
{
    size_t li, ll;
    unsigned char *img = idx_images(n, rows, cols, &li);
    unsigned char *lab = idx_labels(n, &ll);
    (gz ? write_gz : tu_write_bytes)(img_path, img, li);
    (gz ? write_gz : tu_write_bytes)(lab_path, lab, ll);
    free(img);
    free(lab);
}

static void check_idx_values(const eg_dataset *d, int n, int rows, int cols)
{
    assert_int_equal(d->n, n);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->h, rows);
    assert_int_equal(d->w, cols);
    assert_int_equal(d->owns, 1);
    int max = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(d->y[i], idx_label(i));
        if (idx_label(i) > max) max = idx_label(i);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                float want = idx_pixel(i, r, c) / 255.0f;
                float got = d->x[((size_t)i * rows + r) * cols + c];
                if (got != want)
                    fail_msg("pixel (%d, %d, %d): %g, expected %g", i, r, c,
                             got, want);
            }
    }
    assert_int_equal(d->classes, max + 1);
}

/* Asserts a load failed with a message mentioning `path` (and `what`, if
 * given) and left the dataset zeroed. */
static void expect_fail(int rc, const eg_dataset *d, const char *path,
                        const char *what)
{
    const char *msg = eg_last_error();
    if (rc != -1) fail_msg("expected failure mentioning %s", path);
    if (!strstr(msg, path)) fail_msg("message '%s' lacks '%s'", msg, path);
    if (what && !strstr(msg, what))
        fail_msg("message '%s' lacks '%s'", msg, what);
    assert_null(d->x);
    assert_null(d->y);
    assert_int_equal(d->n, 0);
}

/* ---- IDX -------------------------------------------------------------- */

static void test_idx_raw_and_gz(void **state)
{
    (void)state;
    scratch s;
    scratch_open(&s);
    const int n = 13, rows = 5, cols = 7;
    write_idx_pair(in(&s, "img"), in(&s, "lab"), n, rows, cols, 0);
    write_idx_pair(in(&s, "img.gz"), in(&s, "lab.gz"), n, rows, cols, 1);

    eg_dataset d;
    if (eg_idx_load(in(&s, "img"), in(&s, "lab"), &d) != 0)
        fail_msg("raw: %s", eg_last_error());
    check_idx_values(&d, n, rows, cols);
    eg_dataset_free(&d);
    assert_null(d.x);

    if (eg_idx_load(in(&s, "img.gz"), in(&s, "lab.gz"), &d) != 0)
        fail_msg("gz: %s", eg_last_error());
    check_idx_values(&d, n, rows, cols);
    eg_dataset_free(&d);

    /* Mixed: gzip images, raw labels. */
    if (eg_idx_load(in(&s, "img.gz"), in(&s, "lab"), &d) != 0)
        fail_msg("mixed: %s", eg_last_error());
    check_idx_values(&d, n, rows, cols);
    eg_dataset_free(&d);
    scratch_close(&s);
}

/* A reading of the good pair with one file replaced by `bytes`. */
static void idx_fail_case(const scratch *s, const char *name,
                          const unsigned char *bytes, size_t len, int gz,
                          int as_images, const char *what)
{
    const char *bad = in(s, name);
    (gz ? write_gz : tu_write_bytes)(bad, bytes, len);
    eg_dataset d;
    int rc = as_images ? eg_idx_load(bad, in(s, "lab"), &d)
                       : eg_idx_load(in(s, "img"), bad, &d);
    expect_fail(rc, &d, bad, what);
}

static void test_idx_errors(void **state)
{
    (void)state;
    scratch s;
    scratch_open(&s);
    const int n = 6, rows = 4, cols = 3;
    write_idx_pair(in(&s, "img"), in(&s, "lab"), n, rows, cols, 0);
    size_t li, ll;
    unsigned char *img = idx_images(n, rows, cols, &li);
    unsigned char *lab = idx_labels(n, &ll);
    eg_dataset d;

    /* A header announcing 2^31 pixels (8 GiB of floats) over a few bytes
     * of data (found by fuzz_idx): refused as truncated, without asking
     * for the memory first. */
    unsigned char huge[24] = {0, 0, 8, 3, 0, 0x20, 0, 0, 0, 0, 0, 8, 0, 0, 0, 8};
    tu_write_bytes(in(&s, "huge"), huge, sizeof huge);
    unsigned char many[12] = {0, 0, 8, 1, 0x7f, 0, 0, 0, 1, 2, 3, 4};
    tu_write_bytes(in(&s, "many"), many, sizeof many);
#ifndef __SANITIZE_ADDRESS__
    /* With 1 GiB more address space than now, an up-front allocation of
     * the announced size would fail as "out of memory". */
    struct rlimit keep, cap;
    assert_int_equal(getrlimit(RLIMIT_AS, &keep), 0);
    FILE *st = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    assert_int_equal(fscanf(st, "%lu", &pages), 1);
    fclose(st);
    cap = keep;
    cap.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
    assert_int_equal(setrlimit(RLIMIT_AS, &cap), 0);
#endif
    int rc_huge = eg_idx_load(in(&s, "huge"), in(&s, "lab"), &d);
    char msg_huge[512];
    snprintf(msg_huge, sizeof msg_huge, "%s", eg_last_error());
    int rc_many = eg_idx_load(in(&s, "img"), in(&s, "many"), &d);
    char msg_many[512];
    snprintf(msg_many, sizeof msg_many, "%s", eg_last_error());
#ifndef __SANITIZE_ADDRESS__
    assert_int_equal(setrlimit(RLIMIT_AS, &keep), 0);
#endif
    assert_int_equal(rc_huge, -1);
    assert_non_null(strstr(msg_huge, "truncated"));
    assert_int_equal(rc_many, -1);
    if (!strstr(msg_many, "truncated")) fail_msg("%s", msg_many);

    /* Missing files. */
    expect_fail(eg_idx_load(in(&s, "nope"), in(&s, "lab"), &d), &d,
                in(&s, "nope"), "no such file");
    expect_fail(eg_idx_load(in(&s, "img"), in(&s, "nolab"), &d), &d,
                in(&s, "nolab"), "no such file");

    /* Swapped files: each has the other's magic. */
    expect_fail(eg_idx_load(in(&s, "lab"), in(&s, "lab"), &d), &d,
                in(&s, "lab"), "bad magic 0x00000801");
    expect_fail(eg_idx_load(in(&s, "img"), in(&s, "img"), &d), &d,
                in(&s, "img"), "bad magic 0x00000803");

    /* Bad magic, raw and gzip. */
    unsigned char *b = malloc(li);
    memcpy(b, img, li);
    b[2] = 0x09;
    idx_fail_case(&s, "magic_img", b, li, 0, 1, "bad magic 0x00000903");
    idx_fail_case(&s, "magic_img.gz", b, li, 1, 1, "bad magic");

    /* Short header. */
    idx_fail_case(&s, "short_hdr", img, 10, 0, 1, "truncated");
    idx_fail_case(&s, "short_hdr_lab", lab, 3, 0, 0, "truncated");
    idx_fail_case(&s, "empty", img, 0, 0, 1, "truncated");

    /* Truncated pixel data and labels, raw and gzip: the message gives the
     * expected size. */
    char expect[64];
    snprintf(expect, sizeof expect, "truncated: expected %zu bytes", li);
    idx_fail_case(&s, "trunc_img", img, li - 5, 0, 1, expect);
    idx_fail_case(&s, "trunc_img.gz", img, li - 1, 1, 1, expect);
    snprintf(expect, sizeof expect, "truncated: expected %zu bytes", ll);
    idx_fail_case(&s, "trunc_lab", lab, ll - 2, 0, 0, expect);
    idx_fail_case(&s, "trunc_lab.gz", lab, ll - 2, 1, 0, expect);

    /* A gzip stream cut in the middle. */
    size_t gl;
    write_gz(in(&s, "whole.gz"), img, li);
    unsigned char *gzb = tu_read_all(in(&s, "whole.gz"), &gl);
    idx_fail_case(&s, "cut.gz", gzb, gl / 2, 0, 1, NULL);
    /* A gzip stream with a corrupted body. */
    for (size_t i = 12; i < gl - 8; i++) gzb[i] ^= 0x5a;
    idx_fail_case(&s, "garbled.gz", gzb, gl, 0, 1, NULL);
    free(gzb);

    /* Data past what the header announces. */
    unsigned char *longer = malloc(li + 4);
    memcpy(longer, img, li);
    memset(longer + li, 0, 4);
    idx_fail_case(&s, "long_img", longer, li + 4, 0, 1, "corrupt");
    free(longer);

    /* Zero and absurd dimensions. */
    memcpy(b, img, li);
    put_be32(b + 8, 0);
    idx_fail_case(&s, "zero_rows", b, li, 0, 1, "corrupt");
    memcpy(b, img, li);
    put_be32(b + 4, 0xffffffffu);
    idx_fail_case(&s, "huge_n", b, li, 0, 1, "corrupt");
    memcpy(b, img, li);
    put_be32(b + 4, 100000u);
    put_be32(b + 8, 30000u);
    idx_fail_case(&s, "huge_total", b, li, 0, 1, "corrupt");

    /* Count mismatch: 5 labels for 6 images; both names in the message. */
    size_t ll5;
    unsigned char *lab5 = idx_labels(n - 1, &ll5);
    tu_write_bytes(in(&s, "lab5"), lab5, ll5);
    int rc = eg_idx_load(in(&s, "img"), in(&s, "lab5"), &d);
    expect_fail(rc, &d, in(&s, "lab5"), "count mismatch");
    expect_fail(rc, &d, in(&s, "img"), "6 images but 5 labels");
    free(lab5);

    /* A folder where a file should be. */
    mkdir(in(&s, "adir"), 0700);
    expect_fail(eg_idx_load(in(&s, "adir"), in(&s, "lab"), &d), &d,
                in(&s, "adir"), NULL);

    free(b);
    free(img);
    free(lab);
    scratch_close(&s);
}

/* ---- CIFAR ------------------------------------------------------------ */

static unsigned char cifar_pixel(int i, int ch, int k)
{
    return (unsigned char)((i * 29 + ch * 101 + k * 3 + 1) % 256);
}

/* Writes records [first, first + count) of a synthetic CIFAR set. CIFAR-10
 * labels are (i * 3) % 10; CIFAR-100 fine labels (i * 13) % 100 and coarse
 * labels (i * 7) % 20, so using the wrong byte shows. */
static void write_cifar(const char *path, int first, int count, int classes)
{
    size_t rec = (classes == 10 ? 1 : 2) + 3072;
    unsigned char *b = malloc(rec * count);
    assert_non_null(b);
    for (int j = 0; j < count; j++) {
        int i = first + j;
        unsigned char *r = b + rec * j;
        if (classes == 10) {
            r[0] = (unsigned char)(i * 3 % 10);
        } else {
            r[0] = (unsigned char)(i * 7 % 20);
            r[1] = (unsigned char)(i * 13 % 100);
        }
        unsigned char *px = r + rec - 3072;
        for (int ch = 0; ch < 3; ch++)
            for (int k = 0; k < 1024; k++) px[ch * 1024 + k] = cifar_pixel(i, ch, k);
    }
    tu_write_bytes(path, b, rec * count);
    free(b);
}

static void check_cifar_values(const eg_dataset *d, int n, int classes)
{
    assert_int_equal(d->n, n);
    assert_int_equal(d->c, 3);
    assert_int_equal(d->h, 32);
    assert_int_equal(d->w, 32);
    assert_int_equal(d->classes, classes);
    for (int i = 0; i < n; i++) {
        int want = classes == 10 ? i * 3 % 10 : i * 13 % 100;
        assert_int_equal(d->y[i], want);
        for (int ch = 0; ch < 3; ch++)
            for (int k = 0; k < 1024; k++) {
                float got = d->x[((size_t)i * 3 + ch) * 1024 + k];
                float exp = cifar_pixel(i, ch, k) / 255.0f;
                if (got != exp)
                    fail_msg("sample %d channel %d pixel %d: %g, expected %g",
                             i, ch, k, got, exp);
            }
    }
}

static void test_cifar10_concat(void **state)
{
    (void)state;
    scratch s;
    scratch_open(&s);
    write_cifar(in(&s, "a.bin"), 0, 3, 10);
    write_cifar(in(&s, "b.bin"), 3, 2, 10);
    const char *paths[] = {in(&s, "a.bin"), in(&s, "b.bin")};
    eg_dataset d;
    if (eg_cifar_load(paths, 2, 10, &d) != 0) fail_msg("%s", eg_last_error());
    check_cifar_values(&d, 5, 10);
    eg_dataset_free(&d);
    scratch_close(&s);
}

static void test_cifar100_fine(void **state)
{
    (void)state;
    scratch s;
    scratch_open(&s);
    write_cifar(in(&s, "train.bin"), 0, 9, 100);
    const char *paths[] = {in(&s, "train.bin")};
    eg_dataset d;
    if (eg_cifar_load(paths, 1, 100, &d) != 0) fail_msg("%s", eg_last_error());
    check_cifar_values(&d, 9, 100);
    eg_dataset_free(&d);
    scratch_close(&s);
}

static void test_cifar_errors(void **state)
{
    (void)state;
    scratch s;
    scratch_open(&s);
    eg_dataset d;
    write_cifar(in(&s, "good.bin"), 0, 2, 10);

    /* Missing file, also when it is the second of two. */
    const char *p1[] = {in(&s, "good.bin"), in(&s, "missing.bin")};
    expect_fail(eg_cifar_load(p1, 2, 10, &d), &d, in(&s, "missing.bin"),
                "no such file");

    /* Size not a multiple of the record: a CIFAR-10 file read as
     * CIFAR-100, and a cut file. */
    const char *p2[] = {in(&s, "good.bin")};
    expect_fail(eg_cifar_load(p2, 1, 100, &d), &d, in(&s, "good.bin"),
                "not a positive multiple of the 3074-byte record");
    size_t len;
    unsigned char *b = tu_read_all(in(&s, "good.bin"), &len);
    tu_write_bytes(in(&s, "cut.bin"), b, len - 100);
    const char *p3[] = {in(&s, "good.bin"), in(&s, "cut.bin")};
    expect_fail(eg_cifar_load(p3, 2, 10, &d), &d, in(&s, "cut.bin"),
                "3073-byte record");

    /* Empty file. */
    tu_write_bytes(in(&s, "empty.bin"), b, 0);
    const char *p4[] = {in(&s, "empty.bin")};
    expect_fail(eg_cifar_load(p4, 1, 10, &d), &d, in(&s, "empty.bin"),
                "corrupt");

    /* Label out of range in the second record. */
    b[3073] = 10;
    tu_write_bytes(in(&s, "badlabel.bin"), b, len);
    const char *p5[] = {in(&s, "badlabel.bin")};
    expect_fail(eg_cifar_load(p5, 1, 10, &d), &d, in(&s, "badlabel.bin"),
                "record 1 has label 10");
    free(b);

    /* Bad arguments. */
    assert_int_equal(eg_cifar_load(p2, 1, 20, &d), -1);
    assert_non_null(strstr(eg_last_error(), "10 or 100"));
    tu_fails_with(eg_cifar_load(p2, 0, 10, &d), "CIFAR: no files given");
    scratch_close(&s);
}

/* ---- eg_dataset_open ------------------------------------------------------ */

static void test_open_layouts(void **state)
{
    (void)state;
    scratch s;
    scratch_open(&s);
    eg_dataset d;

    /* mnist, raw files. */
    mkdir(in(&s, "mnist"), 0700);
    write_idx_pair(in(&s, "mnist/train-images-idx3-ubyte"),
                   in(&s, "mnist/train-labels-idx1-ubyte"), 11, 4, 4, 0);
    write_idx_pair(in(&s, "mnist/t10k-images-idx3-ubyte"),
                   in(&s, "mnist/t10k-labels-idx1-ubyte"), 1, 4, 4, 0);
    if (eg_dataset_open("mnist", in(&s, "mnist"), 1, &d) != 0)
        fail_msg("%s", eg_last_error());
    check_idx_values(&d, 11, 4, 4);
    assert_int_equal(d.classes, 10);
    eg_dataset_free(&d);
    /* The one test label is 2: the set still has 10 classes, where the
     * bare IDX reader reports max label + 1. */
    if (eg_dataset_open("mnist", in(&s, "mnist"), 0, &d) != 0)
        fail_msg("%s", eg_last_error());
    assert_int_equal(d.n, 1);
    assert_int_equal(d.y[0], 2);
    assert_int_equal(d.classes, 10);
    eg_dataset_free(&d);
    assert_int_equal(eg_idx_load(in(&s, "mnist/t10k-images-idx3-ubyte"),
                                 in(&s, "mnist/t10k-labels-idx1-ubyte"), &d), 0);
    assert_int_equal(d.classes, 3);
    eg_dataset_free(&d);

    /* fashion-mnist: .gz preferred over a raw file of another size. */
    mkdir(in(&s, "fm"), 0700);
    write_idx_pair(in(&s, "fm/train-images-idx3-ubyte.gz"),
                   in(&s, "fm/train-labels-idx1-ubyte.gz"), 7, 2, 3, 1);
    write_idx_pair(in(&s, "fm/train-images-idx3-ubyte"),
                   in(&s, "fm/train-labels-idx1-ubyte"), 4, 2, 3, 0);
    if (eg_dataset_open("fashion-mnist", in(&s, "fm"), 1, &d) != 0)
        fail_msg("%s", eg_last_error());
    assert_int_equal(d.n, 7);
    assert_int_equal(d.classes, 10);
    eg_dataset_free(&d);
    /* No test split there. */
    expect_fail(eg_dataset_open("fashion-mnist", in(&s, "fm"), 0, &d), &d,
                in(&s, "fm/t10k-images-idx3-ubyte"), "no such file");

    /* A label >= 10 in an IDX set that must have 10 classes. */
    mkdir(in(&s, "m11"), 0700);
    size_t li, ll;
    unsigned char *img = idx_images(2, 2, 2, &li);
    unsigned char *lab = idx_labels(2, &ll);
    lab[9] = 10;
    tu_write_bytes(in(&s, "m11/t10k-images-idx3-ubyte"), img, li);
    tu_write_bytes(in(&s, "m11/t10k-labels-idx1-ubyte"), lab, ll);
    free(img);
    free(lab);
    expect_fail(eg_dataset_open("mnist", in(&s, "m11"), 0, &d), &d,
                in(&s, "m11/t10k-labels-idx1-ubyte"), "label 10");

    /* cifar10 inside its archive's subfolder; five training batches. */
    mkdir(in(&s, "c10"), 0700);
    mkdir(in(&s, "c10/cifar-10-batches-bin"), 0700);
    for (int k = 1; k <= 5; k++) {
        char name[64];
        snprintf(name, sizeof name, "c10/cifar-10-batches-bin/data_batch_%d.bin", k);
        write_cifar(in(&s, name), (k - 1) * 2, 2, 10);
    }
    write_cifar(in(&s, "c10/cifar-10-batches-bin/test_batch.bin"), 0, 3, 10);
    if (eg_dataset_open("cifar10", in(&s, "c10"), 1, &d) != 0)
        fail_msg("%s", eg_last_error());
    check_cifar_values(&d, 10, 10);
    eg_dataset_free(&d);
    if (eg_dataset_open("cifar10", in(&s, "c10"), 0, &d) != 0)
        fail_msg("%s", eg_last_error());
    check_cifar_values(&d, 3, 10);
    eg_dataset_free(&d);
    /* A missing middle batch is named. */
    remove(in(&s, "c10/cifar-10-batches-bin/data_batch_3.bin"));
    expect_fail(eg_dataset_open("cifar10", in(&s, "c10"), 1, &d), &d,
                "data_batch_3.bin", "no such file");

    /* cifar100 directly in the folder. */
    mkdir(in(&s, "c100"), 0700);
    write_cifar(in(&s, "c100/train.bin"), 0, 4, 100);
    write_cifar(in(&s, "c100/test.bin"), 0, 2, 100);
    if (eg_dataset_open("cifar100", in(&s, "c100"), 1, &d) != 0)
        fail_msg("%s", eg_last_error());
    check_cifar_values(&d, 4, 100);
    eg_dataset_free(&d);
    if (eg_dataset_open("cifar100", in(&s, "c100"), 0, &d) != 0)
        fail_msg("%s", eg_last_error());
    check_cifar_values(&d, 2, 100);
    eg_dataset_free(&d);
    /* Nothing in an empty folder; the message names both places. */
    mkdir(in(&s, "none"), 0700);
    expect_fail(eg_dataset_open("cifar100", in(&s, "none"), 1, &d), &d,
                in(&s, "none/cifar-100-binary/train.bin"), "no such file");

    /* Bad names and folders. */
    assert_int_equal(eg_dataset_open("imagenet", in(&s, "c100"), 1, &d), -1);
    assert_non_null(strstr(eg_last_error(), "unknown dataset 'imagenet'"));
    assert_int_equal(eg_dataset_open("cifar10", NULL, 1, &d), -1);
    assert_non_null(strstr(eg_last_error(), "cifar10"));
    assert_non_null(strstr(eg_last_error(), "folder"));
    tu_fails_with(eg_dataset_open("mnist", NULL, 1, &d), "dataset 'mnist' has no default folder");
    expect_fail(eg_dataset_open("mnist", in(&s, "absent"), 1, &d), &d,
                in(&s, "absent"), "no such folder");
    scratch_close(&s);
}

/* Any IDX set through "idx": MNIST's own names or PREFIX- names (EMNIST's),
 * t10k- or test- test files, classes counted from the labels; a folder
 * with two sets is refused; counts come from the headers alone. */
static void test_idx_any_set(void **state)
{
    (void)state;
    scratch s;
    scratch_open(&s);
    eg_dataset d;
    mkdir(in(&s, "k"), 0700);
    if (synth_idx(in(&s, "k"), "", 120, 30, 28, 28, 0, 10, 3) != 0)
        fail_msg("%s", eg_last_error());
    if (eg_dataset_open("idx", in(&s, "k"), 1, &d) != 0) fail_msg("%s", eg_last_error());
    assert_int_equal(d.n, 120);
    int max = 0;
    for (int i = 0; i < d.n; i++) max = d.y[i] > max ? d.y[i] : max;
    assert_int_equal(d.classes, max + 1);
    eg_dataset_free(&d);
    long n = 0;
    assert_int_equal(eg_dataset_count("idx", in(&s, "k"), 1, &n), 0);
    assert_int_equal(n, 120);
    assert_int_equal(eg_dataset_count("mnist", in(&s, "k"), 0, &n), 0);
    assert_int_equal(n, 30);
    assert_true(eg_dataset_present("idx", in(&s, "k")));
    assert_false(eg_dataset_present("cifar10", in(&s, "k")));

    /* EMNIST letters: labels 1..26, prefixed names, "test" for the test
     * files; 27 classes (label 0 unused), where mnist would refuse them. */
    mkdir(in(&s, "e"), 0700);
    if (synth_idx(in(&s, "e"), "emnist-letters-", 400, 52, 28, 28, 1, 26, 4) != 0)
        fail_msg("%s", eg_last_error());
    assert_int_equal(rename(in(&s, "e/emnist-letters-t10k-images-idx3-ubyte.gz"),
                            in(&s, "e/emnist-letters-test-images-idx3-ubyte.gz")), 0);
    assert_int_equal(rename(in(&s, "e/emnist-letters-t10k-labels-idx1-ubyte.gz"),
                            in(&s, "e/emnist-letters-test-labels-idx1-ubyte.gz")), 0);
    if (eg_dataset_open("idx", in(&s, "e"), 1, &d) != 0) fail_msg("%s", eg_last_error());
    assert_int_equal(d.n, 400);
    assert_int_equal(d.classes, 27);
    eg_dataset_free(&d);
    if (eg_dataset_open("idx", in(&s, "e"), 0, &d) != 0) fail_msg("%s", eg_last_error());
    assert_int_equal(d.n, 52);
    eg_dataset_free(&d);
    expect_fail(eg_dataset_open("mnist", in(&s, "e"), 1, &d), &d, "emnist-letters-train-labels",
                "out of range [0, 10)");

    /* Two sets in one folder. */
    if (synth_idx(in(&s, "e"), "emnist-digits-", 20, 5, 28, 28, 0, 10, 5) != 0)
        fail_msg("%s", eg_last_error());
    expect_fail(eg_dataset_open("idx", in(&s, "e"), 1, &d), &d, in(&s, "e"),
                "several IDX sets");
    assert_false(eg_dataset_present("idx", in(&s, "e")));

    /* CIFAR counts from file sizes; a torn file is named. */
    mkdir(in(&s, "c"), 0700);
    if (synth_cifar10(in(&s, "c"), 7, 3, 6) != 0) fail_msg("%s", eg_last_error());
    assert_int_equal(eg_dataset_count("cifar10", in(&s, "c"), 1, &n), 0);
    assert_int_equal(n, 35);
    assert_int_equal(eg_dataset_count("cifar10", in(&s, "c"), 0, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(truncate(in(&s, "c/test_batch.bin"), 3073 * 2 + 10), 0);
    tu_fails_with(eg_dataset_count("cifar10", in(&s, "c"), 0, &n), "whole number");
    tu_fails_with(eg_dataset_count("idx", in(&s, "c"), 1, &n), "no such file");
    scratch_close(&s);
}

/* ---- slicing, statistics, gathering ----------------------------------- */

/* n samples of (c, h, w) with x[k] = k * 0.01 and y[i] = i % classes. */
static eg_dataset make_synthetic(int n, int c, int h, int w, int classes)
{
    eg_dataset d = {.n = n, .c = c, .h = h, .w = w, .classes = classes,
                    .owns = 1};
    size_t count = (size_t)n * c * h * w;
    d.x = malloc(count * sizeof *d.x);
    d.y = malloc((size_t)n * sizeof *d.y);
    assert_non_null(d.x);
    assert_non_null(d.y);
    for (size_t k = 0; k < count; k++) d.x[k] = (float)k * 0.01f;
    for (int i = 0; i < n; i++) d.y[i] = i % classes;
    return d;
}

static void test_slice(void **state)
{
    (void)state;
    eg_dataset d = make_synthetic(10, 2, 3, 3, 4);
    eg_dataset v;
    assert_int_equal(eg_dataset_slice(&d, 3, 7, &v), 0);
    assert_int_equal(v.n, 4);
    assert_int_equal(v.c, 2);
    assert_int_equal(v.h, 3);
    assert_int_equal(v.w, 3);
    assert_int_equal(v.classes, 4);
    assert_int_equal(v.owns, 0);
    assert_ptr_equal(v.x, d.x + 3 * 18);
    assert_ptr_equal(v.y, d.y + 3);
    for (int i = 0; i < 4; i++) assert_int_equal(v.y[i], (3 + i) % 4);

    /* A slice of a slice. */
    eg_dataset vv;
    assert_int_equal(eg_dataset_slice(&v, 1, 4, &vv), 0);
    assert_int_equal(vv.n, 3);
    assert_ptr_equal(vv.x, d.x + 4 * 18);

    /* Freeing a view frees nothing (ASan would report a double free). */
    eg_dataset_free(&v);
    assert_null(v.x);
    eg_dataset_free(NULL);

    assert_int_equal(eg_dataset_slice(&d, 0, 10, &v), 0);
    assert_int_equal(v.n, 10);
    assert_int_equal(eg_dataset_slice(&d, -1, 3, &v), -1);
    assert_non_null(strstr(eg_last_error(), "out of range"));
    tu_fails_with(eg_dataset_slice(&d, 2, 11, &v), "slice [2, 11) out of range");
    tu_fails_with(eg_dataset_slice(&d, 5, 5, &v), "slice [5, 5) out of range");
    tu_fails_with(eg_dataset_slice(&d, 6, 5, &v), "slice [6, 5) out of range");
    eg_dataset_free(&d);
}

static void test_stats_normalize(void **state)
{
    (void)state;
    /* 2 samples, 3 channels, 1x2: channel 0 holds 1, 2, 3, 4 (mean 2.5,
     * variance 1.25), channel 1 holds 0, 0, 0, 8 (mean 2, variance 12),
     * channel 2 is constant 0.5. */
    float x[] = {1, 2, 0, 0, 0.5f, 0.5f, 3, 4, 0, 8, 0.5f, 0.5f};
    int32_t y[] = {0, 1};
    eg_dataset d = {.n = 2, .c = 3, .h = 1, .w = 2, .classes = 2, .x = x,
                    .y = y};
    float mean[3], std[3];
    eg_dataset_channel_stats(&d, mean, std);
    assert_float_equal(mean[0], 2.5f, 1e-6);
    assert_float_equal(std[0], sqrtf(1.25f), 1e-6);
    assert_float_equal(mean[1], 2.0f, 1e-6);
    assert_float_equal(std[1], sqrtf(12.0f), 1e-6);
    assert_float_equal(mean[2], 0.5f, 1e-6);
    assert_float_equal(std[2], 0.0f, 1e-6);

    eg_dataset_normalize(&d, mean, std);
    float want[12];
    float orig[] = {1, 2, 0, 0, 0.5f, 0.5f, 3, 4, 0, 8, 0.5f, 0.5f};
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 2; k++) {
                int at = (i * 3 + c) * 2 + k;
                want[at] = c == 2 ? orig[at] - mean[c]
                                  : (orig[at] - mean[c]) / std[c];
            }
    for (int k = 0; k < 12; k++) assert_float_equal(x[k], want[k], 1e-6);

    /* Stats of normalised random data: mean 0, std 1. */
    eg_dataset r = make_synthetic(50, 3, 4, 5, 10);
    tu_fill_uniform(r.x, 50 * 3 * 20, 5, -3.0f, 7.0f);
    eg_dataset_channel_stats(&r, mean, std);
    for (int c = 0; c < 3; c++) {
        assert_true(fabsf(mean[c] - 2.0f) < 0.5f);
        assert_true(fabsf(std[c] - 10.0f / sqrtf(12.0f)) < 0.3f);
    }
    eg_dataset_normalize(&r, mean, std);
    eg_dataset_channel_stats(&r, mean, std);
    for (int c = 0; c < 3; c++) {
        assert_float_equal(mean[c], 0.0f, 1e-5);
        assert_float_equal(std[c], 1.0f, 1e-5);
    }
    eg_dataset_free(&r);
}

static void test_gather(void **state)
{
    (void)state;
    eg_dataset d = make_synthetic(8, 2, 2, 3, 5);
    const uint32_t idx[] = {7, 0, 3, 3};
    float x[4 * 12];
    int32_t y[4];
    eg_dataset_gather(&d, idx, 4, x, y);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(y[i], (int)idx[i] % 5);
        for (int k = 0; k < 12; k++)
            assert_true(x[i * 12 + k] == d.x[idx[i] * 12 + k]);
    }
    /* Labels only. */
    int32_t y2[4] = {-1, -1, -1, -1};
    eg_dataset_gather(&d, idx, 4, NULL, y2);
    assert_memory_equal(y, y2, sizeof y);
    eg_dataset_free(&d);
}

/* ---- batcher ---------------------------------------------------------- */

static void next_ok(eg_batcher *b, const uint32_t **idx, int *count)
{
    if (eg_batcher_next(b, idx, count) != 0)
        fail_msg("batcher: %s", eg_last_error());
}

/* Runs one epoch, checking batch sizes, that no index repeats and that the
 * epoch ends where expected; writes the epoch's order to order. */
static void one_epoch(eg_batcher *b, int n, int batch, int drop_last,
                      uint32_t *order)
{
    uint64_t epoch = b->epoch;
    assert_int_equal(b->offset, 0);
    int full = n / batch, rest = n % batch;
    int batches = full + (!drop_last && rest);
    assert_int_equal(eg_batcher_batches_per_epoch(b), batches);
    char *seen = calloc((size_t)n, 1);
    int at = 0;
    for (int k = 0; k < batches; k++) {
        const uint32_t *idx;
        int count;
        assert_true(b->epoch == epoch);
        next_ok(b, &idx, &count);
        assert_int_equal(count, k < full ? batch : rest);
        for (int i = 0; i < count; i++) {
            assert_true(idx[i] < (uint32_t)n);
            assert_int_equal(seen[idx[i]], 0);
            seen[idx[i]] = 1;
            order[at++] = idx[i];
        }
    }
    assert_int_equal(at, drop_last ? full * batch : n);
    /* The epoch ended exactly here. */
    assert_true(b->epoch == epoch + 1);
    assert_int_equal(b->offset, 0);
    free(seen);
}

static void test_batcher_epochs(void **state)
{
    (void)state;
    enum { N = 103, B = 10 };
    uint32_t e0[N], e1[N], again[N], ref[N];
    eg_batcher b, c;
    assert_int_equal(eg_batcher_init(&b, N, B, 42, 1, 0), 0);
    one_epoch(&b, N, B, 0, e0);
    one_epoch(&b, N, B, 0, e1);
    assert_true(memcmp(e0, e1, sizeof e0) != 0);

    /* Each epoch is the project RNG's Fisher-Yates of (seed, epoch). */
    for (int e = 0; e < 2; e++) {
        eg_rng r;
        for (uint32_t i = 0; i < N; i++) ref[i] = i;
        eg_rng_seed(&r, 42, (uint64_t)e);
        eg_rng_shuffle(&r, ref, N);
        assert_memory_equal(e ? e1 : e0, ref, sizeof ref);
    }

    /* Same seed, same orders; another seed, another order. */
    assert_int_equal(eg_batcher_init(&c, N, B, 42, 1, 0), 0);
    one_epoch(&c, N, B, 0, again);
    assert_memory_equal(e0, again, sizeof e0);
    eg_batcher_free(&c);
    assert_int_equal(eg_batcher_init(&c, N, B, 43, 1, 0), 0);
    one_epoch(&c, N, B, 0, again);
    assert_true(memcmp(e0, again, sizeof e0) != 0);
    eg_batcher_free(&c);

    /* Without shuffling: the identity, every epoch. */
    assert_int_equal(eg_batcher_init(&c, N, B, 42, 0, 0), 0);
    for (int e = 0; e < 2; e++) {
        one_epoch(&c, N, B, 0, again);
        for (uint32_t i = 0; i < N; i++) assert_int_equal(again[i], i);
    }
    eg_batcher_free(&c);
    eg_batcher_free(&b);
    eg_batcher_free(NULL);
}

static void test_batcher_drop_last(void **state)
{
    (void)state;
    uint32_t order[64];
    eg_batcher b;
    /* 23 = 3 * 7 + 2: the short batch of 2 is dropped; which 2 indices are
     * left out changes from epoch to epoch. */
    assert_int_equal(eg_batcher_init(&b, 23, 7, 9, 1, 1), 0);
    int left_out_differs = 0;
    uint32_t prev_sum = 0;
    for (int e = 0; e < 6; e++) {
        one_epoch(&b, 23, 7, 1, order);
        uint32_t sum = 0;
        for (int i = 0; i < 21; i++) sum += order[i];
        if (e > 0 && sum != prev_sum) left_out_differs = 1;
        prev_sum = sum;
    }
    assert_true(left_out_differs);
    eg_batcher_free(&b);

    /* Exact division: nothing is dropped. */
    assert_int_equal(eg_batcher_init(&b, 21, 7, 9, 1, 1), 0);
    one_epoch(&b, 21, 7, 1, order);
    eg_batcher_free(&b);

    /* batch == n with drop_last: one batch per epoch. */
    assert_int_equal(eg_batcher_init(&b, 5, 5, 1, 1, 1), 0);
    one_epoch(&b, 5, 5, 1, order);
    one_epoch(&b, 5, 5, 1, order);
    eg_batcher_free(&b);

    /* A batch larger than n without drop_last: one short batch. */
    assert_int_equal(eg_batcher_init(&b, 5, 8, 1, 1, 0), 0);
    one_epoch(&b, 5, 8, 0, order);
    eg_batcher_free(&b);

    /* Refused configurations. */
    assert_int_equal(eg_batcher_init(&b, 5, 6, 1, 1, 1), -1);
    assert_non_null(strstr(eg_last_error(), "drop_last"));
    assert_null(b.perm);
    tu_fails_with(eg_batcher_init(&b, 0, 6, 1, 1, 0), "need at least one sample, got 0");
    tu_fails_with(eg_batcher_init(&b, 5, 0, 1, 1, 0), "batch size 0 must be >= 1");
}

/* Appends the next k batches of b to out, sizes to sizes. */
static void take(eg_batcher *b, int k, uint32_t *out, int *sizes)
{
    int at = 0;
    for (int j = 0; j < k; j++) {
        const uint32_t *idx;
        int count;
        next_ok(b, &idx, &count);
        sizes[j] = count;
        memcpy(out + at, idx, (size_t)count * sizeof *idx);
        at += count;
    }
}

static void test_batcher_resume(void **state)
{
    (void)state;
    enum { N = 50, B = 8, K = 30 };
    for (int drop = 0; drop <= 1; drop++) {
        for (int skip = 0; skip < 16; skip += 5) {
            eg_batcher a, b;
            assert_int_equal(eg_batcher_init(&a, N, B, 77, 1, drop), 0);
            uint32_t junk[16 * B], want[K * B], got[K * B];
            int sizes_a[K], sizes_b[K];
            take(&a, skip, junk, sizes_a);
            /* A checkpoint saves the position... */
            uint64_t epoch = a.epoch;
            uint32_t offset = a.offset;
            take(&a, K, want, sizes_a);
            /* ...and a fresh process restores it. */
            assert_int_equal(eg_batcher_init(&b, N, B, 77, 1, drop), 0);
            b.epoch = epoch;
            b.offset = offset;
            take(&b, K, got, sizes_b);
            assert_memory_equal(sizes_a, sizes_b, sizeof sizes_a);
            int total = 0;
            for (int j = 0; j < K; j++) total += sizes_a[j];
            assert_memory_equal(want, got, (size_t)total * sizeof *want);
            /* Both end at the same position. */
            assert_true(a.epoch == b.epoch);
            assert_int_equal(a.offset, b.offset);
            eg_batcher_free(&a);
            eg_batcher_free(&b);
        }
    }

    /* Jumping straight to epoch 3 gives what running through gives. */
    eg_batcher a, b;
    uint32_t order[N], skipped[N];
    assert_int_equal(eg_batcher_init(&a, N, B, 5, 1, 0), 0);
    for (int e = 0; e < 3; e++) one_epoch(&a, N, B, 0, order);
    one_epoch(&a, N, B, 0, order);
    assert_int_equal(eg_batcher_init(&b, N, B, 5, 1, 0), 0);
    b.epoch = 3;
    one_epoch(&b, N, B, 0, skipped);
    assert_memory_equal(order, skipped, sizeof order);

    /* Going back within a batcher that already holds a later epoch. */
    b.epoch = 3;
    b.offset = 0;
    one_epoch(&b, N, B, 0, skipped);
    assert_memory_equal(order, skipped, sizeof order);

    /* A position at the very end of an epoch rolls over. */
    const uint32_t *idx;
    int count;
    b.epoch = 2;
    b.offset = N;
    next_ok(&b, &idx, &count);
    assert_true(b.epoch == 3);
    assert_int_equal(b.offset, B);
    assert_int_equal(count, B);
    assert_memory_equal(idx, order, B * sizeof *idx);

    /* A corrupt position is an error. */
    b.offset = N + 1;
    assert_int_equal(eg_batcher_next(&b, &idx, &count), -1);
    assert_non_null(strstr(eg_last_error(), "offset"));
    eg_batcher_free(&a);
    eg_batcher_free(&b);
}

/* ---- label noise ------------------------------------------------------ */

enum { NOISE_N = 100000 };

static int32_t *noise_labels(int classes)
{
    int32_t *y = malloc(NOISE_N * sizeof *y);
    assert_non_null(y);
    for (int i = 0; i < NOISE_N; i++) y[i] = (i * 7919) % classes;
    return y;
}

/* Asserts |rate - expect| is within 5 standard errors of a binomial rate. */
static void assert_rate(double rate, double expect)
{
    double se = sqrt(expect * (1.0 - expect) / NOISE_N) + 1e-12;
    if (fabs(rate - expect) > 5.0 * se)
        fail_msg("rate %.5f, expected %.5f (se %.5f)", rate, expect, se);
}

/* Counts changed labels and checks the mask matches. */
static int changed(const int32_t *orig, const int32_t *y, const uint8_t *mask)
{
    int count = 0;
    for (int i = 0; i < NOISE_N; i++) {
        int diff = orig[i] != y[i];
        if (mask) assert_int_equal(mask[i], diff);
        count += diff;
    }
    return count;
}

static void test_noise_uniform(void **state)
{
    (void)state;
    const int classes = 10;
    int32_t *orig = noise_labels(classes), *y = noise_labels(classes);
    uint8_t *mask = malloc(NOISE_N);
    const float ps[] = {0.2f, 0.4f, 0.8f, 1.0f};
    for (int t = 0; t < 4; t++) {
        memcpy(y, orig, NOISE_N * sizeof *y);
        memset(mask, 7, NOISE_N);
        assert_int_equal(eg_label_noise(y, NOISE_N, classes, "uniform", ps[t],
                                        1000 + t, mask), 0);
        int ch = changed(orig, y, mask);
        assert_rate((double)ch / NOISE_N, ps[t] * (1.0 - 1.0 / classes));
        /* New labels of changed class-0 samples spread over classes 1..9. */
        int hist[10] = {0}, from0 = 0;
        for (int i = 0; i < NOISE_N; i++) {
            assert_true(y[i] >= 0 && y[i] < classes);
            if (orig[i] == 0 && y[i] != 0) {
                hist[y[i]]++;
                from0++;
            }
        }
        for (int c = 1; c < classes; c++) {
            double f = (double)hist[c] / from0, se = sqrt(f * (1 - f) / from0);
            assert_true(fabs(f - 1.0 / 9.0) < 5 * se + 1e-3);
        }
    }

    /* Same seed, same labels; another seed, other labels. */
    int32_t *y2 = noise_labels(classes);
    memcpy(y, orig, NOISE_N * sizeof *y);
    assert_int_equal(eg_label_noise(y, NOISE_N, classes, "uniform", 0.4f, 3, NULL), 0);
    assert_int_equal(eg_label_noise(y2, NOISE_N, classes, "uniform", 0.4f, 3, NULL), 0);
    assert_memory_equal(y, y2, NOISE_N * sizeof *y);
    memcpy(y2, orig, NOISE_N * sizeof *y);
    assert_int_equal(eg_label_noise(y2, NOISE_N, classes, "uniform", 0.4f, 4, NULL), 0);
    assert_true(memcmp(y, y2, NOISE_N * sizeof *y) != 0);
    free(y2);

    /* p = 0 and "none" change nothing and clear the mask. */
    const char *kinds[] = {"uniform", "flip", "none"};
    for (int k = 0; k < 3; k++) {
        memcpy(y, orig, NOISE_N * sizeof *y);
        memset(mask, 1, NOISE_N);
        assert_int_equal(eg_label_noise(y, NOISE_N, classes, kinds[k],
                                        k == 2 ? 0.7f : 0.0f, 1, mask), 0);
        assert_memory_equal(y, orig, NOISE_N * sizeof *y);
        for (int i = 0; i < NOISE_N; i++) assert_int_equal(mask[i], 0);
    }
    free(orig);
    free(y);
    free(mask);
}

static void test_noise_flip(void **state)
{
    (void)state;
    const int classes = 10;
    int32_t *orig = noise_labels(classes), *y = noise_labels(classes);
    uint8_t *mask = malloc(NOISE_N);
    int differ_maps = 0, first_map[10];
    const float ps[] = {0.2f, 0.45f, 1.0f};
    for (int t = 0; t < 3; t++) {
        memcpy(y, orig, NOISE_N * sizeof *y);
        assert_int_equal(eg_label_noise(y, NOISE_N, classes, "flip", ps[t],
                                        50 + t, mask), 0);
        int ch = changed(orig, y, mask);
        assert_rate((double)ch / NOISE_N, ps[t]);
        /* Every class goes to exactly one other class. */
        int map[10];
        for (int c = 0; c < classes; c++) map[c] = -1;
        for (int i = 0; i < NOISE_N; i++) {
            if (y[i] == orig[i]) continue;
            int *m = &map[orig[i]];
            if (*m < 0) *m = y[i];
            if (*m != y[i])
                fail_msg("class %d goes to %d and %d", orig[i], *m, y[i]);
        }
        for (int c = 0; c < classes; c++) {
            assert_true(map[c] >= 0 && map[c] < classes && map[c] != c);
            if (t == 0) first_map[c] = map[c];
            else if (map[c] != first_map[c]) differ_maps = 1;
        }
        /* The per-class rate is p as well. */
        if (ps[t] == 1.0f) assert_int_equal(ch, NOISE_N);
    }
    /* The flip targets depend on the seed. */
    assert_true(differ_maps);

    /* Two classes: the only other class. */
    int32_t two[6] = {0, 1, 0, 1, 1, 0};
    assert_int_equal(eg_label_noise(two, 6, 2, "flip", 1.0f, 8, NULL), 0);
    const int32_t flipped[6] = {1, 0, 1, 0, 0, 1};
    assert_memory_equal(two, flipped, sizeof two);
    free(orig);
    free(y);
    free(mask);
}

static void test_noise_errors(void **state)
{
    (void)state;
    int32_t y[4] = {0, 1, 2, 3};
    const int32_t keep[4] = {0, 1, 2, 3};
    assert_int_equal(eg_label_noise(y, 4, 4, "pairflip", 0.2f, 1, NULL), -1);
    assert_non_null(strstr(eg_last_error(), "unknown kind 'pairflip'"));
    tu_fails_with(eg_label_noise(y, 4, 4, NULL, 0.2f, 1, NULL), "kind missing");
    assert_int_equal(eg_label_noise(y, 4, 4, "uniform", -0.1f, 1, NULL), -1);
    assert_non_null(strstr(eg_last_error(), "[0, 1]"));
    tu_fails_with(eg_label_noise(y, 4, 4, "flip", 1.5f, 1, NULL), "probability 1.5 outside");
    tu_fails_with(eg_label_noise(y, 4, 4, "flip", NAN, 1, NULL), "probability nan outside");
    tu_fails_with(eg_label_noise(y, 4, 1, "flip", 0.5f, 1, NULL),
                  "1 classes is too few for 'flip'");
    /* A label out of range: nothing changes. */
    y[3] = 4;
    assert_int_equal(eg_label_noise(y, 4, 4, "uniform", 1.0f, 1, NULL), -1);
    assert_non_null(strstr(eg_last_error(), "index 3"));
    y[3] = 3;
    assert_memory_equal(y, keep, sizeof y);
    y[0] = -1;
    tu_fails_with(eg_label_noise(y, 4, 4, "flip", 1.0f, 1, NULL), "label -1 at index 0");
}

/* ---- the installed Fashion-MNIST -------------------------------------- */

static void test_fashion_mnist_installed(void **state)
{
    (void)state;
    if (access(EG_FASHION_MNIST_DIR "/train-labels-idx1-ubyte.gz", R_OK) != 0 &&
        access(EG_FASHION_MNIST_DIR "/train-labels-idx1-ubyte", R_OK) != 0) {
        skip();
        return;
    }
    eg_dataset tr, te;
    if (eg_dataset_open("fashion-mnist", NULL, 1, &tr) != 0)
        fail_msg("train: %s", eg_last_error());
    if (eg_dataset_open("fashion-mnist", NULL, 0, &te) != 0)
        fail_msg("test: %s", eg_last_error());
    assert_int_equal(tr.n, 60000);
    assert_int_equal(te.n, 10000);
    const eg_dataset *both[] = {&tr, &te};
    for (int s = 0; s < 2; s++) {
        const eg_dataset *d = both[s];
        assert_int_equal(d->c, 1);
        assert_int_equal(d->h, 28);
        assert_int_equal(d->w, 28);
        assert_int_equal(d->classes, 10);
        int counts[10] = {0};
        for (int i = 0; i < d->n; i++) {
            assert_true(d->y[i] >= 0 && d->y[i] < 10);
            counts[d->y[i]]++;
        }
        for (int c = 0; c < 10; c++) assert_int_equal(counts[c], d->n / 10);
        size_t count = (size_t)d->n * 784;
        for (size_t k = 0; k < count; k++)
            if (!(d->x[k] >= 0.0f && d->x[k] <= 1.0f))
                fail_msg("pixel %zu = %g outside [0, 1]", k, d->x[k]);
    }

    /* An independent numpy reader: statistics, first images, labels. */
    scratch sc;
    scratch_open(&sc);
    char args[1200];
    snprintf(args, sizeof args, "%s %s", EG_FASHION_MNIST_DIR, sc.dir);
    assert_int_equal(tu_python("data_idx_ref.py", args), 0);
    float ref[2 + 3 * 784 + 100], mean, std;
    if (tu_read_f32(in(&sc, "ref.f32"), ref, sizeof ref / sizeof *ref) != 0)
        fail_msg("cannot read %s", in(&sc, "ref.f32"));
    eg_dataset_channel_stats(&tr, &mean, &std);
    assert_float_equal(mean, ref[0], 1e-5);
    assert_float_equal(std, ref[1], 1e-5);
    /* Training images 0 and 59999, test image 9999, exactly. */
    const float *want[3] = {tr.x, tr.x + (size_t)59999 * 784,
                            te.x + (size_t)9999 * 784};
    for (int j = 0; j < 3; j++)
        for (int k = 0; k < 784; k++)
            if (want[j][k] != ref[2 + j * 784 + k])
                fail_msg("image %d pixel %d: %g, numpy %g", j, k, want[j][k],
                         ref[2 + j * 784 + k]);
    for (int i = 0; i < 100; i++)
        assert_int_equal(tr.y[i], (int)ref[2 + 3 * 784 + i]);
    scratch_close(&sc);
    eg_dataset_free(&tr);
    eg_dataset_free(&te);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_raw_and_gz),
        cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_cifar10_concat),
        cmocka_unit_test(test_cifar100_fine),
        cmocka_unit_test(test_cifar_errors),
        cmocka_unit_test(test_open_layouts),
        cmocka_unit_test(test_idx_any_set),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_stats_normalize),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_batcher_epochs),
        cmocka_unit_test(test_batcher_drop_last),
        cmocka_unit_test(test_batcher_resume),
        cmocka_unit_test(test_noise_uniform),
        cmocka_unit_test(test_noise_flip),
        cmocka_unit_test(test_noise_errors),
        cmocka_unit_test(test_fashion_mnist_installed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
