/* Finding a named dataset's files in a folder and loading them: one row per
 * kind of dataset in the table below. */
#include "data/dataset.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

#define PATH_BYTES 4096

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* Writes dir/name, failing if it does not fit. */
static int join(char *out, const char *dir, const char *name)
{
    int len = snprintf(out, PATH_BYTES, "%s/%s", dir, name);
    if (len < 0 || len >= PATH_BYTES) return eg_errorf("%s/%s: path too long", dir, name);
    return 0;
}

/* ---- IDX sets: MNIST, Fashion-MNIST, KMNIST, EMNIST, ... ---- */

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

/* Finds the one file of dir named PREFIX + stem (+ ".gz"), where stem is
 * one of stems (NULL-terminated) and PREFIX anything ("" for MNIST's own
 * names, "emnist-letters-" for EMNIST's); a gzip file is preferred to the
 * raw one of the same name. Fails naming what is missing or ambiguous;
 * quiet sets no message (for eg_dataset_present). */
static int find_idx_file(char *out, const char *dir, const char *const *stems, int quiet)
{
    DIR *d = opendir(dir);
    if (!d) return quiet ? -1 : eg_errorf("%s: no such folder", dir);
    char best[256] = "", other[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        for (const char *const *s = stems; *s; s++) {
            char gz[64];
            snprintf(gz, sizeof gz, "%s.gz", *s);
            int is_gz = ends_with(n, gz);
            if (!is_gz && !ends_with(n, *s)) continue;
            size_t stem_at = strlen(n) - strlen(is_gz ? gz : *s);
            if (stem_at > 0 && n[stem_at - 1] != '-') continue;
            if (strlen(n) >= sizeof best) continue;
            /* The same set as best (its other compression) or another? */
            size_t a = strcspn(best, "."), b = strcspn(n, ".");
            if (!best[0] || (a == b && strncmp(best, n, a) == 0)) {
                if (!best[0] || is_gz) snprintf(best, sizeof best, "%s", n);
            } else if (!other[0]) {
                snprintf(other, sizeof other, "%s", n);
            }
        }
    }
    closedir(d);
    if (!best[0]) {
        if (quiet) return -1;
        return eg_errorf("%s/%s[.gz]: no such file (nor PREFIX-%s[.gz])", dir, stems[0],
                         stems[0]);
    }
    if (other[0]) {
        if (quiet) return -1;
        return eg_errorf("%s: holds several IDX sets (%s, %s): give the folder of one", dir, best,
                         other);
    }
    return join(out, dir, best);
}

static const char *const train_images[] = {"train-images-idx3-ubyte", NULL};
static const char *const train_labels[] = {"train-labels-idx1-ubyte", NULL};
static const char *const test_images[] = {"t10k-images-idx3-ubyte", "test-images-idx3-ubyte",
                                          NULL};
static const char *const test_labels[] = {"t10k-labels-idx1-ubyte", "test-labels-idx1-ubyte",
                                          NULL};

/* Any IDX set: its classes counted from the labels. */
static int idx_open(const char *dir, int train, eg_dataset *out)
{
    char images[PATH_BYTES], labels[PATH_BYTES];
    EG_TRY(find_idx_file(images, dir, train ? train_images : test_images, 0));
    EG_TRY(find_idx_file(labels, dir, train ? train_labels : test_labels, 0));
    return eg_idx_load(images, labels, out);
}

/* MNIST and Fashion-MNIST: ten classes, whatever labels a split holds. */
static int idx10_open(const char *dir, int train, eg_dataset *out)
{
    EG_TRY(idx_open(dir, train, out));
    if (out->classes > 10) {
        int max_label = out->classes - 1;
        eg_dataset_free(out);
        char labels[PATH_BYTES];
        find_idx_file(labels, dir, train ? train_labels : test_labels, 1);
        return eg_errorf("%s: corrupt: label %d out of range [0, 10)", labels, max_label);
    }
    out->classes = 10;
    return 0;
}

static int idx_count(const char *dir, int train, long *n)
{
    char images[PATH_BYTES];
    EG_TRY(find_idx_file(images, dir, train ? train_images : test_images, 0));
    return eg_idx_count(images, n);
}

static int idx_present(const char *dir)
{
    char p[PATH_BYTES];
    return find_idx_file(p, dir, train_images, 1) == 0 &&
           find_idx_file(p, dir, train_labels, 1) == 0;
}

/* ---- CIFAR-10 and CIFAR-100 binaries ---- */

typedef struct cifar_files {
    int classes;
    const char *sub;                 /* the archive's own folder name */
    const char *train[5], *test[1];
} cifar_files;

static const cifar_files cifar10 = {
    10, "cifar-10-batches-bin",
    {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
     "data_batch_5.bin"},
    {"test_batch.bin"}};
static const cifar_files cifar100 = {100, "cifar-100-binary", {"train.bin"}, {"test.bin"}};

/* The CIFAR folder: dir itself if it holds first_file, else dir/sub if
 * that does; quiet sets no message. */
static int find_cifar_dir(char *out, const char *dir, const cifar_files *f, int quiet)
{
    char probe[PATH_BYTES], inner[PATH_BYTES];
    EG_TRY(join(probe, dir, f->train[0]));
    if (exists(probe)) {
        snprintf(out, PATH_BYTES, "%s", dir);
        return 0;
    }
    EG_TRY(join(out, dir, f->sub));
    EG_TRY(join(inner, out, f->train[0]));
    if (exists(inner)) return 0;
    return quiet ? -1 : eg_errorf("%s: no such file (nor %s)", probe, inner);
}

static int cifar_open(const cifar_files *f, const char *dir, int train, eg_dataset *out)
{
    const char *const *names = train ? f->train : f->test;
    int count = 0;
    while (count < (train ? 5 : 1) && names[count]) count++;
    char folder[PATH_BYTES], paths[5][PATH_BYTES];
    const char *ptrs[5];
    EG_TRY(find_cifar_dir(folder, dir, f, 0));
    for (int i = 0; i < count; i++) {
        EG_TRY(join(paths[i], folder, names[i]));
        ptrs[i] = paths[i];
    }
    return eg_cifar_load(ptrs, count, f->classes, out);
}

/* Records from the files' sizes: 1 label byte (2 for CIFAR-100) and 3072
 * pixel bytes each. */
static int cifar_count(const cifar_files *f, const char *dir, int train, long *n)
{
    const char *const *names = train ? f->train : f->test;
    char folder[PATH_BYTES], path[PATH_BYTES];
    EG_TRY(find_cifar_dir(folder, dir, f, 0));
    long record = (f->classes == 10 ? 1 : 2) + 3072, total = 0;
    for (int i = 0; i < (train ? 5 : 1) && names[i]; i++) {
        EG_TRY(join(path, folder, names[i]));
        struct stat st;
        if (stat(path, &st) != 0) return eg_errorf("%s: no such file", path);
        if (st.st_size % record)
            return eg_errorf("%s: corrupt: %lld bytes is not a whole number of %ld-byte records",
                             path, (long long)st.st_size, record);
        total += (long)(st.st_size / record);
    }
    *n = total;
    return 0;
}

static int cifar10_count(const char *dir, int train, long *n)
{
    return cifar_count(&cifar10, dir, train, n);
}

static int cifar100_count(const char *dir, int train, long *n)
{
    return cifar_count(&cifar100, dir, train, n);
}

static int cifar10_open(const char *dir, int train, eg_dataset *out)
{
    return cifar_open(&cifar10, dir, train, out);
}

static int cifar100_open(const char *dir, int train, eg_dataset *out)
{
    return cifar_open(&cifar100, dir, train, out);
}

static int cifar10_present(const char *dir)
{
    char p[PATH_BYTES];
    return find_cifar_dir(p, dir, &cifar10, 1) == 0;
}

static int cifar100_present(const char *dir)
{
    char p[PATH_BYTES];
    return find_cifar_dir(p, dir, &cifar100, 1) == 0;
}

/* ---- the table ---- */

typedef struct dataset_kind {
    const char *name;
    const char *default_dir;  /* NULL: a folder must be given */
    int (*open)(const char *dir, int train, eg_dataset *out);
    int (*count)(const char *dir, int train, long *n);
    int (*present)(const char *dir);
} dataset_kind;

static const dataset_kind kinds[] = {
    {"fashion-mnist", EG_FASHION_MNIST_DIR, idx10_open, idx_count, idx_present},
    {"mnist", NULL, idx10_open, idx_count, idx_present},
    {"idx", NULL, idx_open, idx_count, idx_present},
    {"cifar10", NULL, cifar10_open, cifar10_count, cifar10_present},
    {"cifar100", NULL, cifar100_open, cifar100_count, cifar100_present},
};

static const dataset_kind *kind_of(const char *name)
{
    for (size_t i = 0; name && i < sizeof kinds / sizeof *kinds; i++)
        if (strcmp(kinds[i].name, name) == 0) return &kinds[i];
    return NULL;
}

/* The kind of dataset `name` and its folder (dir, or the default). */
static const dataset_kind *find_kind(const char *name, const char **dir)
{
    if (!name) {
        eg_errorf("dataset name missing");
        return NULL;
    }
    const dataset_kind *k = kind_of(name);
    if (!k) {
        eg_errorf("unknown dataset '%s' (expected fashion-mnist, mnist, idx, cifar10 or "
                  "cifar100)", name);
        return NULL;
    }
    if (!*dir) {
        if (!k->default_dir) {
            eg_errorf("dataset '%s' has no default folder: give the folder holding its files",
                      name);
            return NULL;
        }
        *dir = k->default_dir;
    }
    if (!exists(*dir)) {
        eg_errorf("%s: no such folder", *dir);
        return NULL;
    }
    return k;
}

int eg_dataset_open(const char *name, const char *dir, int train, eg_dataset *out)
{
    memset(out, 0, sizeof *out);
    const dataset_kind *k = find_kind(name, &dir);
    return k ? k->open(dir, train, out) : -1;
}

int eg_dataset_count(const char *name, const char *dir, int train, long *n)
{
    const dataset_kind *k = find_kind(name, &dir);
    return k ? k->count(dir, train, n) : -1;
}

int eg_dataset_present(const char *name, const char *dir)
{
    const dataset_kind *k = kind_of(name);
    return k && dir && k->present(dir);
}
