/* Few-shot domains: labelled images grouped by class, fetched one at a
 * time at a job's size with the training or the test transform, and the
 * base / val / novel class splits of cross-domain few-shot learning.
 *
 * A domain is opened from an image folder (one sub-folder per class), an
 * LFT file-list JSON, or a dataset held in memory (IDX, CIFAR) with an
 * optional fixed style; every kind serves the same eg_domain_ops. */
#ifndef EG_DOMAIN_H
#define EG_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

/* Which classes of a domain an episode draws from. */
typedef enum eg_class_split {
    EG_SPLIT_BASE,  /* meta-training (and pre-training) */
    EG_SPLIT_VAL,
    EG_SPLIT_NOVEL, /* testing */
    EG_SPLIT_ALL,
} eg_class_split;

typedef struct eg_domain eg_domain;

typedef struct eg_domain_ops {
    /* Writes sample i (0 <= i < d->n) as (d->c, size, size) floats into
     * out, normalised as the domain's kind says. train != 0: the training
     * transform (random resized crop, horizontal flip, colour jitter),
     * its randomness drawn from Philox (key, stream), so the same
     * (key, stream) gives the same image; train == 0: the test transform
     * (resize the shorter side to 1.15 x size, centre crop), key and
     * stream unused. -1 with eg_errorf naming the file when an image
     * cannot be read or decoded. Safe to call from one thread at a time. */
    int (*fetch)(eg_domain *d, int i, int train, uint64_t key, uint64_t stream, int size,
                 float *out);
    /* Frees d->impl only; eg_domain_free frees the rest. */
    void (*destroy)(eg_domain *d);
} eg_domain_ops;

struct eg_domain {
    const eg_domain_ops *ops;
    char name[64];     /* as the job names it */
    int n;             /* samples */
    int classes;       /* labels lie in [0, classes) */
    int c;             /* channels of fetched images: 1 (grey sets) or 3 */
    int native;        /* side of the stored images (0 when they differ) */
    int32_t *label;    /* (n) class of each sample */
    uint8_t *split_of; /* (classes) EG_SPLIT_BASE / VAL / NOVEL of each
                          class, or 0xff for a class in no split */
    void *impl;
};

/* The paper's rule for a set that names no splits: class i is base when
 * i % 2 == 0, val when i % 4 == 1, novel when i % 4 == 3. */
eg_class_split eg_class_split_of(int class_index);

/* The classes of d in split s, ascending, into out (d->classes entries at
 * most); returns their count. EG_SPLIT_ALL gives every class. */
int eg_domain_classes(const eg_domain *d, eg_class_split s, int *out);

void eg_domain_free(eg_domain *d);

/* Opens an image domain at path, one of:
 *   - an image folder: one sub-folder per class (classes in byte order of
 *     their names), images *.jpg, *.jpeg, *.png (any case) in byte order,
 *     other files ignored; no splits of its own (the paper's rule);
 *   - an LFT file list: a .json file with label_names (C strings),
 *     image_names and image_labels (equal lengths, labels in [0, C));
 *     image paths relative to the JSON file's folder or absolute; no
 *     splits of its own;
 *   - a folder holding LFT's base.json, val.json and novel.json (at least
 *     one): their union, each file's classes in its split.
 * Images are decoded (libjpeg-turbo, libpng) to RGB (grey images
 * replicated), so c = 3, and normalised with ImageNet's mean and std.
 * Decoded images are kept in memory up to cache_bytes (0: none), least
 * recently used dropped first. roots (NULL-terminated real folder paths,
 * or NULL for any) bounds where images may lie: an image outside every
 * root is an error naming it. Errors name the file and what is wrong; a
 * missing or undecodable image is found when it is fetched. */
int eg_domain_open_images(const char *name, const char *path, size_t cache_bytes,
                          const char *const *roots, eg_domain **out);

/* Fixed styles that make new domains of a dataset's images (the CPU-sized
 * cross-domain protocol): "original", "inverted" (1 - x), "edges" (Sobel
 * magnitude, scaled to [0, 1]), "blur-noise" (3x3 Gaussian blur plus
 * fixed Gaussian noise of std 0.1 drawn per sample from Philox, clamped to
 * [0, 1]), "contrast" (x^0.5), and the others data/styles.h lists: the
 * NULL-terminated list of their names. */
const char *const *eg_domain_styles(void);

/* Opens a domain over a dataset held in memory: dataset `dataset` (as
 * eg_dataset_open names them) from folder dir (NULL: its default), its
 * training file, seen through `style` (one of eg_domain_styles(); NULL is
 * "original"), at most per_class samples of each class (0: all, the first
 * ones in file order). Pixels are stored as bytes; the style is applied
 * at fetch, then the transform, then normalisation to mean 0.5 and std
 * 0.5 per channel. c is the dataset's (1 for IDX sets, 3 for CIFAR);
 * splits by the paper's rule. */
int eg_domain_open_dataset(const char *name, const char *dataset, const char *dir,
                           const char *style, int per_class, eg_domain **out);

#endif
