/* Image domains: image folders, LFT file lists and LFT split folders,
 * decoded at fetch through a bounded least-recently-used cache; see
 * eg_domain_open_images in domain.h. */
#include "data/domain.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/image_decode.h"
#include "data/image_xform.h"
#include "util/err.h"

#define NO_SPLIT 0xff

/* ---- what an open gathers ------------------------------------------------ */

/* Samples and classes found so far. */
typedef struct builder {
    char **path;    /* (n) image files */
    int32_t *label; /* (n) */
    int n, cap;
    char **class_name; /* (classes) */
    uint8_t *split_of; /* (classes) */
    int classes, class_cap;
} builder;

static void builder_free(builder *b)
{
    for (int i = 0; i < b->n; i++) free(b->path[i]);
    for (int k = 0; k < b->classes; k++) free(b->class_name[k]);
    free(b->path);
    free(b->label);
    free(b->class_name);
    free(b->split_of);
    memset(b, 0, sizeof *b);
}

/* Appends a sample; path is taken over (freed on failure too). */
static int add_sample(builder *b, char *path, int32_t label)
{
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        char **p = realloc(b->path, sizeof *p * cap);
        if (p) b->path = p;
        int32_t *l = p ? realloc(b->label, sizeof *l * cap) : NULL;
        if (l) b->label = l;
        if (!p || !l) {
            free(path);
            return eg_errorf("out of memory for %d image paths", cap);
        }
        b->cap = cap;
    }
    b->path[b->n] = path;
    b->label[b->n++] = label;
    return 0;
}

/* Appends a class of that name and split; its index into *k. */
static int add_class(builder *b, const char *name, uint8_t split, int *k)
{
    if (b->classes == b->class_cap) {
        int cap = b->class_cap ? 2 * b->class_cap : 16;
        char **nm = realloc(b->class_name, sizeof *nm * cap);
        if (nm) b->class_name = nm;
        uint8_t *s = nm ? realloc(b->split_of, cap) : NULL;
        if (s) b->split_of = s;
        if (!nm || !s) return eg_errorf("out of memory for %d classes", cap);
        b->class_cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return eg_errorf("out of memory for class names");
    b->class_name[b->classes] = copy;
    b->split_of[b->classes] = split;
    *k = b->classes++;
    return 0;
}

static char *join(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) return NULL;
    return p;
}

/* ---- image folders ------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && dot != name &&
           (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int is_kind(const char *path, mode_t kind)
{
    struct stat st;
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == kind;
}

/* The names in folder dir, other than hidden ones, for which keep(dir/name)
 * holds, sorted by strcmp, into *names (*count entries, each freed by the
 * caller). */
static int list_folder(const char *dir, int (*keep)(const char *path, const char *name),
                       char ***names, int *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return eg_errorf("%s: cannot read the folder: %s", dir, strerror(errno));
    char **list = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *path = join(dir, e->d_name);
        if (!path) {
            rc = eg_errorf("%s: out of memory", dir);
            break;
        }
        int wanted = keep(path, e->d_name);
        free(path);
        if (!wanted) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(list, sizeof *grown * cap);
            if (!grown) {
                rc = eg_errorf("%s: out of memory for %d names", dir, cap);
                break;
            }
            list = grown;
        }
        if (!(list[n] = strdup(e->d_name)))
            rc = eg_errorf("%s: out of memory", dir);
        else
            n++;
    }
    closedir(d);
    if (rc != 0) {
        for (int i = 0; i < n; i++) free(list[i]);
        free(list);
        return -1;
    }
    if (n > 0) qsort(list, (size_t)n, sizeof *list, by_name);
    *names = list;
    *count = n;
    return 0;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int keep_folder(const char *path, const char *name)
{
    return is_kind(path, S_IFDIR);
}

static int keep_image(const char *path, const char *name)
{
    return is_image_name(name) && is_kind(path, S_IFREG);
}

/* One class of an image folder: the images in dir. */
static int scan_class(builder *b, const char *dir, int32_t label)
{
    char **files;
    int n_files;
    EG_TRY(list_folder(dir, keep_image, &files, &n_files));
    int rc =
        n_files > 0 ? 0 : eg_errorf("%s: class folder holds no .jpg, .jpeg or .png image", dir);
    for (int i = 0; i < n_files && rc == 0; i++) {
        char *path = join(dir, files[i]);
        rc = path ? add_sample(b, path, label) : eg_errorf("%s: out of memory", dir);
    }
    free_names(files, n_files);
    return rc;
}

static int scan_image_folder(builder *b, const char *dir)
{
    char **classes;
    int n_classes;
    EG_TRY(list_folder(dir, keep_folder, &classes, &n_classes));
    int rc = n_classes > 0 ? 0 : eg_errorf("%s: no class folders", dir);
    for (int k = 0; k < n_classes && rc == 0; k++) {
        int index;
        rc = add_class(b, classes[k], (uint8_t)eg_class_split_of(k), &index);
        char *sub = rc == 0 ? join(dir, classes[k]) : NULL;
        if (rc == 0 && !sub) rc = eg_errorf("%s: out of memory", dir);
        if (rc == 0) rc = scan_class(b, sub, index);
        free(sub);
    }
    free_names(classes, n_classes);
    return rc;
}

/* ---- LFT file lists ------------------------------------------------------ */

/* Field of root: a non-empty JSON array whose every entry passes is_type
 * (one such entry named `one`, several `many`), into *out; or -1. */
static int json_array_of(const char *file, const json_t *root, const char *field,
                         int (*is_type)(const json_t *), const char *one, const char *many,
                         const json_t **out)
{
    const json_t *a = json_object_get(root, field);
    if (!json_is_array(a)) return eg_errorf("%s: %s must be an array of %s", file, field, many);
    if (json_array_size(a) == 0) return eg_errorf("%s: %s is empty", file, field);
    if (json_array_size(a) > INT_MAX / 2) return eg_errorf("%s: %s is too long", file, field);
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!is_type(json_array_get(a, i)))
            return eg_errorf("%s: %s[%zu] is not %s", file, field, i, one);
    *out = a;
    return 0;
}

static int is_string(const json_t *v)
{
    return json_is_string(v);
}

static int is_integer(const json_t *v)
{
    return json_is_integer(v);
}

static int find_class(const builder *b, const char *name)
{
    for (int k = 0; k < b->classes; k++)
        if (!strcmp(b->class_name[k], name)) return k;
    return -1;
}

/* The samples of the parsed file list root (read from file, its images
 * relative to dir). split < 0: a list of its own, its classes split by
 * the paper's rule; otherwise one of LFT's split files, its classes
 * merged with those seen before by name, each used class put in split. */
static int parse_list(builder *b, const char *file, const char *dir, const json_t *root, int split)
{
    if (!json_is_object(root)) return eg_errorf("%s: not a JSON object", file);
    const json_t *names, *images, *labels;
    EG_TRY(json_array_of(file, root, "label_names", is_string, "a string", "strings", &names));
    EG_TRY(json_array_of(file, root, "image_names", is_string, "a string", "strings", &images));
    EG_TRY(
        json_array_of(file, root, "image_labels", is_integer, "an integer", "integers", &labels));
    size_t n = json_array_size(images), n_classes = json_array_size(names);
    if (json_array_size(labels) != n)
        return eg_errorf("%s: image_names has %zu entries but image_labels %zu", file, n,
                         json_array_size(labels));
    int *global = malloc(sizeof *global * n_classes); /* (n_classes) class in b */
    if (!global) return eg_errorf("%s: out of memory", file);
    int rc = 0;
    for (size_t k = 0; k < n_classes && rc == 0; k++) {
        const char *name = json_string_value(json_array_get(names, k));
        global[k] = split < 0 ? -1 : find_class(b, name);
        uint8_t s = split < 0 ? (uint8_t)eg_class_split_of(b->classes) : NO_SPLIT;
        if (global[k] < 0) rc = add_class(b, name, s, &global[k]);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_int_t label = json_integer_value(json_array_get(labels, i));
        const char *name = json_string_value(json_array_get(images, i));
        if (label < 0 || (size_t)label >= n_classes) {
            rc = eg_errorf("%s: image_labels[%zu] = %lld out of range [0, %zu)", file, i,
                           (long long)label, n_classes);
            break;
        }
        if (!name[0]) {
            rc = eg_errorf("%s: image_names[%zu] is empty", file, i);
            break;
        }
        int k = global[label];
        if (split >= 0 && b->split_of[k] != NO_SPLIT && b->split_of[k] != split) {
            rc = eg_errorf("%s: class %s is already in another split", file, b->class_name[k]);
            break;
        }
        if (split >= 0) b->split_of[k] = (uint8_t)split;
        char *path = name[0] == '/' ? strdup(name) : join(dir, name);
        rc = path ? add_sample(b, path, k) : eg_errorf("%s: out of memory", file);
    }
    free(global);
    return rc;
}

static int read_list(builder *b, const char *file, int split)
{
    json_error_t jerr;
    json_t *root = json_load_file(file, 0, &jerr);
    if (!root) {
        if (access(file, F_OK) != 0) return eg_errorf("%s: no such file", file);
        return eg_errorf("%s: line %d: %s", file, jerr.line, jerr.text);
    }
    /* The list's folder as a real path, so that its relative image paths
     * stay right whatever the working directory is at fetch. */
    char *real = realpath(file, NULL);
    int rc = real ? 0 : eg_errorf("%s: %s", file, strerror(errno));
    if (rc == 0) {
        char *slash = strrchr(real, '/');
        if (slash == real)
            slash[1] = '\0';
        else
            *slash = '\0';
        rc = parse_list(b, file, real, root, split);
    }
    free(real);
    json_decref(root);
    return rc;
}

static const char *const split_files[3] = {"base.json", "val.json", "novel.json"};

/* 1 when folder dir holds any of LFT's split files. */
static int is_split_folder(const char *dir)
{
    for (int s = 0; s < 3; s++) {
        char *p = join(dir, split_files[s]);
        int found = p && is_kind(p, S_IFREG);
        free(p);
        if (found) return 1;
    }
    return 0;
}

static int read_split_folder(builder *b, const char *dir)
{
    static const int split_of_file[3] = {EG_SPLIT_BASE, EG_SPLIT_VAL, EG_SPLIT_NOVEL};
    for (int s = 0; s < 3; s++) {
        char *p = join(dir, split_files[s]);
        if (!p) return eg_errorf("%s: out of memory", dir);
        int rc = is_kind(p, S_IFREG) ? read_list(b, p, split_of_file[s]) : 0;
        free(p);
        EG_TRY(rc);
    }
    return 0;
}

/* ---- data roots ---------------------------------------------------------- */

static int under_root(const char *real, const char *root)
{
    size_t n = strlen(root);
    while (n > 0 && root[n - 1] == '/') n--;
    return strncmp(real, root, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/* Replaces every sample's path by its real path, refusing one outside
 * every root. */
static int check_roots(builder *b, const char *const *roots)
{
    for (int i = 0; i < b->n; i++) {
        char *real = realpath(b->path[i], NULL);
        if (!real) {
            if (errno == ENOENT || errno == ENOTDIR)
                return eg_errorf("%s: no such file", b->path[i]);
            return eg_errorf("%s: %s", b->path[i], strerror(errno));
        }
        int inside = 0;
        for (const char *const *r = roots; *r && !inside; r++) inside = under_root(real, *r);
        if (!inside) {
            eg_errorf("%s: outside the data roots (it is %s)", b->path[i], real);
            free(real);
            return -1;
        }
        free(b->path[i]);
        b->path[i] = real;
    }
    return 0;
}

/* ---- the decoded-image cache --------------------------------------------- */

/* Decoded images by sample, at most cap bytes of pixels (3 a pixel), in a
 * list from the most recently used (head) to the least (tail). */
typedef struct image_cache {
    size_t cap, bytes;
    eg_image8 *held;  /* (n) an image with rgb NULL is not held */
    int *prev, *next; /* (n) list links, -1 at the ends */
    int head, tail;
} image_cache;

static size_t image_bytes(const eg_image8 *im)
{
    return (size_t)im->h * im->w * 3;
}

static void cache_unlink(image_cache *c, int i)
{
    if (c->prev[i] >= 0)
        c->next[c->prev[i]] = c->next[i];
    else
        c->head = c->next[i];
    if (c->next[i] >= 0)
        c->prev[c->next[i]] = c->prev[i];
    else
        c->tail = c->prev[i];
    c->prev[i] = c->next[i] = -1;
}

static void cache_push_front(image_cache *c, int i)
{
    c->prev[i] = -1;
    c->next[i] = c->head;
    if (c->head >= 0) c->prev[c->head] = i;
    c->head = i;
    if (c->tail < 0) c->tail = i;
}

/* Sample i's image if held (now the most recently used), else NULL. */
static const eg_image8 *cache_get(image_cache *c, int i)
{
    if (!c->held || !c->held[i].rgb) return NULL;
    cache_unlink(c, i);
    cache_push_front(c, i);
    return &c->held[i];
}

/* Takes over *im for sample i, dropping the least recently used images
 * to stay within cap; returns 0 (and leaves *im to the caller) when im
 * alone exceeds cap. */
static int cache_put(image_cache *c, int i, eg_image8 *im)
{
    size_t bytes = image_bytes(im);
    if (!c->held || bytes > c->cap) return 0;
    while (c->bytes + bytes > c->cap && c->tail >= 0) {
        int old = c->tail;
        cache_unlink(c, old);
        c->bytes -= image_bytes(&c->held[old]);
        eg_image8_free(&c->held[old]);
    }
    c->held[i] = *im;
    memset(im, 0, sizeof *im);
    c->bytes += bytes;
    cache_push_front(c, i);
    return 1;
}

static int cache_init(image_cache *c, int n, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->cap = cap;
    c->head = c->tail = -1;
    if (cap == 0) return 0;
    c->held = calloc((size_t)n, sizeof *c->held);
    c->prev = malloc(sizeof *c->prev * n);
    c->next = malloc(sizeof *c->next * n);
    if (!c->held || !c->prev || !c->next) return eg_errorf("out of memory for an image cache");
    for (int i = 0; i < n; i++) c->prev[i] = c->next[i] = -1;
    return 0;
}

static void cache_free(image_cache *c, int n)
{
    if (c->held)
        for (int i = 0; i < n; i++) eg_image8_free(&c->held[i]);
    free(c->held);
    free(c->prev);
    free(c->next);
}

/* ---- the domain ---------------------------------------------------------- */

typedef struct image_domain {
    char **path; /* (n) image files */
    image_cache cache;
    float *pixels;     /* (3, h, w) scratch of the image being transformed */
    size_t pixels_cap; /* floats */
} image_domain;

static int images_fetch(eg_domain *d, int i, int train, uint64_t key, uint64_t stream, int size,
                        float *out)
{
    image_domain *m = d->impl;
    if (i < 0 || i >= d->n)
        return eg_errorf("domain %s: sample %d out of range [0, %d)", d->name, i, d->n);
    if (size < 1 || size > EG_IMAGE_MAX_OUT)
        return eg_errorf("domain %s: size %d out of range [1, %d]", d->name, size,
                         EG_IMAGE_MAX_OUT);
    eg_image8 decoded = {0};
    const eg_image8 *im = cache_get(&m->cache, i);
    if (!im) {
        EG_TRY(eg_image_decode_file(m->path[i], &decoded));
        im = cache_put(&m->cache, i, &decoded) ? cache_get(&m->cache, i) : &decoded;
    }
    size_t want = (size_t)3 * im->h * im->w;
    if (want > m->pixels_cap) {
        float *grown = realloc(m->pixels, sizeof *grown * want);
        if (!grown) {
            eg_image8_free(&decoded);
            return eg_errorf("%s: out of memory for %zu floats", m->path[i], want);
        }
        m->pixels = grown;
        m->pixels_cap = want;
    }
    eg_image8_to_float(im, m->pixels);
    int rc = train ? eg_image_train_xform(m->pixels, 3, im->h, im->w, key, stream, size, out)
                   : eg_image_test_xform(m->pixels, 3, im->h, im->w, size, out);
    eg_image8_free(&decoded);
    EG_TRY(rc);
    eg_image_normalize(out, 3, size * size, eg_imagenet_mean, eg_imagenet_std);
    return 0;
}

static void images_destroy(eg_domain *d)
{
    image_domain *m = d->impl;
    if (!m) return;
    for (int i = 0; i < d->n; i++) free(m->path[i]);
    free(m->path);
    cache_free(&m->cache, d->n);
    free(m->pixels);
    free(m);
    d->impl = NULL;
}

static const eg_domain_ops images_ops = {images_fetch, images_destroy};

/* Moves what b gathered into a new domain. */
static int make_domain(const char *name, builder *b, size_t cache_bytes, eg_domain **out)
{
    eg_domain *d = calloc(1, sizeof *d);
    image_domain *m = calloc(1, sizeof *m);
    if (!d || !m) {
        free(d);
        free(m);
        return eg_errorf("domain %s: out of memory", name);
    }
    snprintf(d->name, sizeof d->name, "%s", name);
    d->ops = &images_ops;
    d->impl = m;
    d->n = b->n;
    d->classes = b->classes;
    d->c = 3;
    d->native = 0;
    d->label = b->label;
    d->split_of = b->split_of;
    m->path = b->path;
    b->label = NULL;
    b->split_of = NULL;
    b->path = NULL;
    b->n = 0;
    if (cache_init(&m->cache, d->n, cache_bytes) != 0) {
        eg_domain_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

int eg_domain_open_images(const char *name, const char *path, size_t cache_bytes,
                          const char *const *roots, eg_domain **out)
{
    *out = NULL;
    if (!name) name = "";
    if (strlen(name) >= sizeof(((eg_domain *)0)->name))
        return eg_errorf("domain name %.32s... is too long", name);
    struct stat st;
    if (stat(path, &st) != 0) return eg_errorf("%s: no such file or folder", path);
    builder b = {0};
    int rc;
    if (S_ISDIR(st.st_mode))
        rc = is_split_folder(path) ? read_split_folder(&b, path) : scan_image_folder(&b, path);
    else {
        size_t len = strlen(path);
        if (len >= 5 && !strcasecmp(path + len - 5, ".json"))
            rc = read_list(&b, path, -1);
        else
            rc = eg_errorf("%s: neither a folder nor a .json file list", path);
    }
    if (rc == 0 && b.n == 0) rc = eg_errorf("%s: no images", path);
    if (rc == 0 && roots) rc = check_roots(&b, roots);
    if (rc == 0) rc = make_domain(name, &b, cache_bytes, out);
    builder_free(&b);
    return rc;
}
