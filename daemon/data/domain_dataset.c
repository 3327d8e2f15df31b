/* Few-shot domains over a dataset held in memory (eg_dataset_open's IDX
 * and CIFAR sets), seen through one of the fixed styles of styles.h. */
#include "data/domain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/image_xform.h"
#include "data/styles.h"
#include "util/err.h"

typedef struct dataset_impl {
    int h, w; /* stored side */
    eg_style style;
    uint8_t *px;         /* (n, c, h, w) the kept samples' bytes */
    int32_t *file_index; /* (n) each kept sample's index in the file: keys
                            the noise of "blur-noise" whatever per_class is */
    float *raw;          /* (c, h, w) the sample being fetched, in [0, 1] */
    float *styled;       /* (c, h, w) raw through the style */
} dataset_impl;

static const float half[3] = {0.5f, 0.5f, 0.5f};

const char *const *eg_domain_styles(void)
{
    return eg_style_names();
}

static int dataset_fetch(eg_domain *d, int i, int train, uint64_t key, uint64_t stream, int size,
                         float *out)
{
    dataset_impl *m = d->impl;
    if (i < 0 || i >= d->n)
        return eg_errorf("domain %s: sample %d outside [0, %d)", d->name, i, d->n);
    if (size < 1) return eg_errorf("domain %s: image size %d: must be at least 1", d->name, size);
    size_t chw = (size_t)d->c * m->h * m->w;
    const uint8_t *b = m->px + (size_t)i * chw;
    for (size_t p = 0; p < chw; p++) m->raw[p] = b[p] / 255.0f;
    eg_style_apply(m->style, m->raw, m->styled, d->c, m->h, m->w, (uint64_t)m->file_index[i]);
    int rc = train ? eg_image_train_xform(m->styled, d->c, m->h, m->w, key, stream, size, out)
                   : eg_image_test_xform(m->styled, d->c, m->h, m->w, size, out);
    if (rc != 0) return eg_errorf("domain %s: sample %d: %s", d->name, i, eg_last_error());
    eg_image_normalize(out, d->c, size * size, half, half);
    return 0;
}

static void dataset_destroy(eg_domain *d)
{
    dataset_impl *m = d->impl;
    if (!m) return;
    free(m->px);
    free(m->file_index);
    free(m->raw);
    free(m->styled);
    free(m);
    d->impl = NULL;
}

static const eg_domain_ops dataset_ops = {dataset_fetch, dataset_destroy};

/* Copies the samples of src to keep (the first per_class of each class in
 * file order; 0: all) into d and m as bytes. */
static int keep_samples(eg_domain *d, dataset_impl *m, const eg_dataset *src, int per_class)
{
    int *seen = calloc((size_t)src->classes, sizeof *seen); /* (classes) kept so far */
    if (!seen) return eg_errorf("domain %s: out of memory", d->name);
    int n = 0;
    for (int i = 0; i < src->n; i++) {
        int32_t y = src->y[i];
        if (y < 0 || y >= src->classes) {
            free(seen);
            return eg_errorf("domain %s: sample %d has label %d outside [0, %d)", d->name, i,
                             (int)y, src->classes);
        }
        if (per_class == 0 || seen[y] < per_class) {
            seen[y]++;
            n++;
        }
    }
    size_t chw = (size_t)src->c * src->h * src->w;
    d->label = malloc(((size_t)n + 1) * sizeof *d->label);
    m->file_index = malloc(((size_t)n + 1) * sizeof *m->file_index);
    m->px = malloc((size_t)n * chw + 1);
    if (!d->label || !m->file_index || !m->px) {
        free(seen);
        return eg_errorf("domain %s: out of memory for %d images", d->name, n);
    }
    memset(seen, 0, (size_t)src->classes * sizeof *seen);
    int k = 0;
    for (int i = 0; i < src->n; i++) {
        int32_t y = src->y[i];
        if (per_class != 0 && seen[y] >= per_class) continue;
        seen[y]++;
        d->label[k] = y;
        m->file_index[k] = i;
        const float *x = src->x + (size_t)i * chw;
        uint8_t *b = m->px + (size_t)k * chw;
        for (size_t p = 0; p < chw; p++) {
            float v = x[p] * 255.0f;
            b[p] = (uint8_t)(v <= 0.0f ? 0 : v >= 255.0f ? 255 : lrintf(v));
        }
        k++;
    }
    free(seen);
    d->n = n;
    return 0;
}

int eg_domain_open_dataset(const char *name, const char *dataset, const char *dir,
                           const char *style, int per_class, eg_domain **out)
{
    *out = NULL;
    eg_style st;
    EG_TRY(eg_style_parse(style, &st));
    if (per_class < 0)
        return eg_errorf("domain %s: per_class %d: must be 0 (all) or more", name, per_class);
    eg_domain *d = calloc(1, sizeof *d);
    dataset_impl *m = calloc(1, sizeof *m);
    if (!d || !m) {
        free(d);
        free(m);
        return eg_errorf("domain %s: out of memory", name);
    }
    d->ops = &dataset_ops;
    d->impl = m;
    m->style = st;
    int len = snprintf(d->name, sizeof d->name, "%s", name);
    if (len < 0 || (size_t)len >= sizeof d->name) {
        eg_domain_free(d);
        return eg_errorf("domain name '%s': longer than %zu bytes", name, sizeof d->name - 1);
    }
    eg_dataset ds;
    if (eg_dataset_open(dataset, dir, 1, &ds) != 0) {
        eg_domain_free(d);
        return eg_errorf("domain %s: %s", name, eg_last_error());
    }
    d->classes = ds.classes;
    d->c = ds.c;
    d->native = ds.h == ds.w ? ds.h : 0;
    m->h = ds.h;
    m->w = ds.w;
    int rc = keep_samples(d, m, &ds, per_class);
    size_t chw = (size_t)ds.c * ds.h * ds.w;
    eg_dataset_free(&ds);
    if (rc != 0) {
        eg_domain_free(d);
        return -1;
    }
    m->raw = malloc(chw * sizeof *m->raw);
    m->styled = malloc(chw * sizeof *m->styled);
    d->split_of = malloc((size_t)d->classes);
    if (!m->raw || !m->styled || !d->split_of) {
        eg_domain_free(d);
        return eg_errorf("domain %s: out of memory", name);
    }
    for (int c = 0; c < d->classes; c++) d->split_of[c] = (uint8_t)eg_class_split_of(c);
    *out = d;
    return 0;
}
