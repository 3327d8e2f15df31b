/* Finding a named dataset's files in a folder and loading them. */
#include "data/dataset.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"

#define PATH_BYTES 4096

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* Writes dir/name, failing if it does not fit. */
static int join(char *out, const char *dir, const char *name)
{
    int len = snprintf(out, PATH_BYTES, "%s/%s", dir, name);
    if (len < 0 || len >= PATH_BYTES)
        return eg_errorf("%s/%s: path too long", dir, name);
    return 0;
}

/* Sets out to dir/base.gz if that exists, else dir/base if that exists;
 * fails naming both otherwise. */
static int find_gz_or_raw(char *out, const char *dir, const char *base)
{
    char name[256];
    snprintf(name, sizeof name, "%s.gz", base);
    EG_TRY(join(out, dir, name));
    if (exists(out)) return 0;
    EG_TRY(join(out, dir, base));
    if (exists(out)) return 0;
    return eg_errorf("%s/%s[.gz]: no such file", dir, base);
}

static int open_idx(const char *dir, int train, eg_dataset *out)
{
    const char *split = train ? "train" : "t10k";
    char images[PATH_BYTES], labels[PATH_BYTES], base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    EG_TRY(find_gz_or_raw(images, dir, base));
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    EG_TRY(find_gz_or_raw(labels, dir, base));
    EG_TRY(eg_idx_load(images, labels, out));
    if (out->classes > 10) {
        int max_label = out->classes - 1;
        eg_dataset_free(out);
        return eg_errorf("%s: corrupt: label %d out of range [0, 10)", labels,
                         max_label);
    }
    out->classes = 10;
    return 0;
}

/* Resolves the CIFAR folder: dir itself if it holds first_file, else
 * dir/sub if that does. */
static int find_cifar_dir(char *out, const char *dir, const char *sub,
                          const char *first_file)
{
    char probe[PATH_BYTES];
    EG_TRY(join(probe, dir, first_file));
    if (exists(probe)) {
        snprintf(out, PATH_BYTES, "%s", dir);
        return 0;
    }
    EG_TRY(join(out, dir, sub));
    char inner[PATH_BYTES];
    EG_TRY(join(inner, out, first_file));
    if (exists(inner)) return 0;
    return eg_errorf("%s: no such file (nor %s)", probe, inner);
}

static int open_cifar(const char *dir, int train, int classes,
                      eg_dataset *out)
{
    static const char *const c10_train[] = {
        "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
        "data_batch_4.bin", "data_batch_5.bin"};
    static const char *const c10_test[] = {"test_batch.bin"};
    static const char *const c100_train[] = {"train.bin"};
    static const char *const c100_test[] = {"test.bin"};
    const char *const *names;
    int count;
    if (classes == 10) {
        names = train ? c10_train : c10_test;
        count = train ? 5 : 1;
    } else {
        names = train ? c100_train : c100_test;
        count = 1;
    }
    char folder[PATH_BYTES];
    EG_TRY(find_cifar_dir(folder, dir,
                          classes == 10 ? "cifar-10-batches-bin"
                                        : "cifar-100-binary",
                          names[0]));
    char paths[5][PATH_BYTES];
    const char *ptrs[5];
    for (int i = 0; i < count; i++) {
        EG_TRY(join(paths[i], folder, names[i]));
        ptrs[i] = paths[i];
    }
    return eg_cifar_load(ptrs, count, classes, out);
}

int eg_dataset_open(const char *name, const char *dir, int train,
                    eg_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (!name) return eg_errorf("dataset name missing");
    int fashion = strcmp(name, "fashion-mnist") == 0;
    int known = fashion || strcmp(name, "mnist") == 0 ||
                strcmp(name, "cifar10") == 0 || strcmp(name, "cifar100") == 0;
    if (!known)
        return eg_errorf("unknown dataset '%s' (expected fashion-mnist, mnist, "
                         "cifar10 or cifar100)", name);
    if (!dir) {
        if (!fashion)
            return eg_errorf("dataset '%s' has no default folder: give the "
                             "folder holding its files", name);
        dir = EG_FASHION_MNIST_DIR;
    }
    if (!exists(dir)) return eg_errorf("%s: no such folder", dir);
    if (strncmp(name, "cifar", 5) == 0)
        return open_cifar(dir, train, strcmp(name, "cifar10") == 0 ? 10 : 100,
                          out);
    return open_idx(dir, train, out);
}
