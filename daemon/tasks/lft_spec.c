/* The job's "lft" section: its defaults (the CPU-sized cross-domain
 * protocol built from Fashion-MNIST styles), reader, JSON and data paths,
 * and the task's registry entry. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "data/domain.h"
#include "meta/spec.h"
#include "tasks/lft.h"
#include "tasks/tasks.h"

_Static_assert(sizeof(eg_lft_spec) <= EG_JOB_SECTION_BYTES, "lft section too big");

int eg_lft_create(const eg_job *job, eg_backend *be, eg_task **out);

static const char *const dataset_names[] = {"fashion-mnist", "mnist", "idx", "cifar10",
                                            "cifar100", "images"};
static const char *const backbone_names[] = {"resnet10", "resnet18", "resnet34"};
static const char *const metric_names[] = {"relationnet", "protonet"};
static const char *const split_names[] = {"base", "val", "novel"};
#define COUNT(a) ((int)(sizeof a / sizeof *a))

static eg_lft_domain_spec styled(const char *style)
{
    eg_lft_domain_spec d = {.per_class = 0};
    snprintf(d.name, sizeof d.name, "fashion-mnist-%s", style);
    strcpy(d.dataset, "fashion-mnist");
    snprintf(d.style, sizeof d.style, "%s", style);
    return d;
}

static void lft_defaults(eg_job *j)
{
    eg_lft_spec *s = EG_JOB_SECTION(j, eg_lft_spec);
    j->optimizer = eg_optim_adam_defaults();
    j->meta_optimizer = eg_optim_adam_defaults();
    j->meta_optimizer.weight_decay = 1e-8f;
    j->epochs = 10;
    j->batch_size = 64; /* pre-training */
    s->n_seen = 3;
    s->seen[0] = styled("original");
    s->seen[1] = styled("inverted");
    s->seen[2] = styled("edges");
    s->unseen = styled("blur-noise");
    s->n_way = 5;
    s->n_shot = 5;
    s->n_query = 16;
    s->test_query = 15;
    s->episodes_per_epoch = 100;
    s->test_episodes = 1000;
    strcpy(s->backbone, "resnet10");
    s->width = 64;
    strcpy(s->metric, "relationnet");
    s->image_size = 28;
    s->cache_mb = 512;
    /* Fashion-MNIST has 10 classes: the paper's rule would leave 2 novel
     * ones, too few for 5-way test episodes. */
    s->split_count[0] = s->split_count[2] = 5;
    for (int i = 0; i < 5; i++) s->split[0][i] = i, s->split[2][i] = 5 + i;
}

/* A domain object at field path key (a member of "seen" or "unseen"). */
static int read_domain(const json_t *v, const char *path, eg_lft_domain_spec *d)
{
    static const char *const keys[] = {"name", "dataset", "path", "style", "per_class", NULL};
    if (!json_is_object(v))
        return eg_spec_fail(path, NULL, "must be an object, not %s", eg_spec_type_name(v));
    EG_TRY(eg_spec_check_keys(v, path, keys));
    eg_spec_scope s = {.obj = v};
    snprintf(s.path, sizeof s.path, "%s", path);
    *d = (eg_lft_domain_spec){.per_class = 0};
    strcpy(d->dataset, "fashion-mnist");
    strcpy(d->style, "original");
    EG_TRY(eg_spec_enum_str(&s, "dataset", dataset_names, 0, COUNT(dataset_names), d->dataset,
                            sizeof d->dataset));
    EG_TRY(eg_spec_str(&s, "path", d->path, sizeof d->path));
    int images = strcmp(d->dataset, "images") == 0;
    if (images && !d->path[0])
        return eg_spec_fail(path, "path", "is required for \"images\" (an image folder, an LFT "
                            "file list or a folder of base/val/novel.json)");
    if (images && eg_spec_present(&s, "style"))
        return eg_spec_fail(path, "style", "applies only to domains made of a dataset");
    const char *const *styles = eg_domain_styles();
    int n_styles = 0;
    while (styles[n_styles]) n_styles++;
    EG_TRY(eg_spec_enum_str(&s, "style", styles, 0, n_styles, d->style, sizeof d->style));
    if (images) d->style[0] = '\0';
    EG_TRY(eg_spec_i(&s, "per_class", 0, 1000000, &d->per_class));
    if (images) {
        const char *base = strrchr(d->path, '/');
        snprintf(d->name, sizeof d->name, "%.31s", base && base[1] ? base + 1 : d->path);
    } else {
        snprintf(d->name, sizeof d->name, "%.14s-%.16s", d->dataset, d->style);
    }
    return eg_spec_str(&s, "name", d->name, sizeof d->name);
}

/* "splits": "own", or {"base": [...], "val": [...], "novel": [...]}. */
static int read_splits(const eg_spec_scope *s, eg_lft_spec *l)
{
    const json_t *v = json_object_get(s->obj, "splits");
    if (!v) return 0;
    char path[160];
    snprintf(path, sizeof path, "%s.splits", s->path);
    if (json_is_string(v) && strcmp(json_string_value(v), "own") == 0) {
        l->own_splits = 1;
        memset(l->split_count, 0, sizeof l->split_count);
        return 0;
    }
    if (!json_is_object(v))
        return eg_spec_fail(path, NULL, "must be \"own\" or an object of class lists "
                            "{\"base\", \"val\", \"novel\"}, not %s", eg_spec_type_name(v));
    static const char *const keys[] = {"base", "val", "novel", NULL};
    EG_TRY(eg_spec_check_keys(v, path, keys));
    l->own_splits = 0;
    for (int k = 0; k < 3; k++) {
        const json_t *list = json_object_get(v, split_names[k]);
        l->split_count[k] = 0;
        if (!list) continue;
        if (!json_is_array(list) || json_array_size(list) > EG_LFT_MAX_CLASSES)
            return eg_spec_fail(path, split_names[k], "must be an array of at most %d class "
                                "indices", EG_LFT_MAX_CLASSES);
        for (size_t i = 0; i < json_array_size(list); i++) {
            char key[32];
            snprintf(key, sizeof key, "%s[%zu]", split_names[k], i);
            long long c;
            EG_TRY(eg_spec_int_value(json_array_get(list, i), path, key, 0, 100000, &c));
            for (int k2 = 0; k2 <= k; k2++)
                for (int j = 0; j < (k2 == k ? (int)i : l->split_count[k2]); j++)
                    if (l->split[k2][j] == c)
                        return eg_spec_fail(path, key, "class %lld is already in %s", c,
                                            split_names[k2]);
            l->split[k][i] = (int)c;
        }
        l->split_count[k] = (int)json_array_size(list);
    }
    if (!l->split_count[0] || !l->split_count[2])
        return eg_spec_fail(path, NULL, "needs base and novel classes");
    return 0;
}

static int lft_read(const eg_spec_scope *s, eg_job *j)
{
    eg_lft_spec *l = EG_JOB_SECTION(j, eg_lft_spec);
    const json_t *seen = json_object_get(s->obj, "seen");
    char path[160];
    if (seen) {
        snprintf(path, sizeof path, "%s.seen", s->path);
        if (!json_is_array(seen) || json_array_size(seen) < 2 ||
            json_array_size(seen) > EG_LFT_MAX_SEEN)
            return eg_spec_fail(path, NULL, "must be an array of 2 to %d domains (one "
                                "pseudo-seen and one pseudo-unseen are drawn each epoch)",
                                EG_LFT_MAX_SEEN);
        l->n_seen = (int)json_array_size(seen);
        for (int i = 0; i < l->n_seen; i++) {
            snprintf(path, sizeof path, "%s.seen[%d]", s->path, i);
            EG_TRY(read_domain(json_array_get(seen, (size_t)i), path, &l->seen[i]));
        }
    }
    const json_t *unseen = json_object_get(s->obj, "unseen");
    if (unseen) {
        snprintf(path, sizeof path, "%s.unseen", s->path);
        EG_TRY(read_domain(unseen, path, &l->unseen));
    }
    for (int i = 0; i <= l->n_seen; i++) {
        const char *name = i < l->n_seen ? l->seen[i].name : l->unseen.name;
        for (int k = 0; k < i; k++)
            if (strcmp(l->seen[k].name, name) == 0) {
                snprintf(path, sizeof path, "%s.%s", s->path, i < l->n_seen ? "seen" : "unseen");
                return eg_spec_fail(path, NULL, "two domains are named \"%s\"", name);
            }
    }
    EG_TRY(eg_spec_i(s, "n_way", 2, 64, &l->n_way));
    EG_TRY(eg_spec_i(s, "n_shot", 1, 100, &l->n_shot));
    EG_TRY(eg_spec_i(s, "n_query", 1, 100, &l->n_query));
    EG_TRY(eg_spec_i(s, "test_query", 1, 100, &l->test_query));
    EG_TRY(eg_spec_i(s, "episodes_per_epoch", 1, 1000000, &l->episodes_per_epoch));
    EG_TRY(eg_spec_i(s, "test_episodes", 1, 100000, &l->test_episodes));
    EG_TRY(eg_spec_enum_str(s, "backbone", backbone_names, 0, COUNT(backbone_names), l->backbone,
                            sizeof l->backbone));
    EG_TRY(eg_spec_i(s, "width", 1, 512, &l->width));
    EG_TRY(eg_spec_enum_str(s, "metric", metric_names, 0, COUNT(metric_names), l->metric,
                            sizeof l->metric));
    EG_TRY(eg_spec_i(s, "image_size", 8, 512, &l->image_size));
    EG_TRY(eg_spec_bool(s, "fixed_ft", &l->fixed_ft));
    if (l->fixed_ft && j->method != EG_METHOD_NONE)
        return eg_spec_fail(s->path, "fixed_ft", "applies only to method \"none\" (the other "
                            "methods learn the FT parameters)");
    EG_TRY(eg_spec_l(s, "pretrain_steps", 0, 100000000L, &l->pretrain_steps));
    EG_TRY(eg_spec_i(s, "cache_mb", 0, 1 << 20, &l->cache_mb));
    EG_TRY(read_splits(s, l));
    if (!l->own_splits && (l->split_count[0] < l->n_way || l->split_count[2] < l->n_way))
        return eg_spec_fail(s->path, "splits", "%d base and %d novel classes, but n_way is %d",
                            l->split_count[0], l->split_count[2], l->n_way);
    return 0;
}

static json_t *domain_json(const eg_lft_domain_spec *d)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "name", d->name, "dataset", d->dataset, "path",
                          d->path, "per_class", d->per_class);
    if (o && d->style[0]) json_object_set_new(o, "style", json_string(d->style));
    return o;
}

static json_t *lft_json(const eg_job *j)
{
    const eg_lft_spec *l = EG_JOB_SECTION(j, const eg_lft_spec);
    json_t *seen = json_array(), *splits;
    for (int i = 0; seen && i < l->n_seen; i++) json_array_append_new(seen, domain_json(&l->seen[i]));
    if (l->own_splits) {
        splits = json_string("own");
    } else {
        splits = json_object();
        for (int k = 0; splits && k < 3; k++) {
            json_t *list = json_array();
            for (int i = 0; list && i < l->split_count[k]; i++)
                json_array_append_new(list, json_integer(l->split[k][i]));
            json_object_set_new(splits, split_names[k], list);
        }
    }
    return json_pack("{s:o, s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:i, s:b, s:I, "
                     "s:i, s:o}",
                     "seen", seen, "unseen", domain_json(&l->unseen), "n_way", l->n_way,
                     "n_shot", l->n_shot, "n_query", l->n_query, "test_query", l->test_query,
                     "episodes_per_epoch", l->episodes_per_epoch, "test_episodes",
                     l->test_episodes, "backbone", l->backbone, "width", l->width, "metric",
                     l->metric, "image_size", l->image_size, "fixed_ft", l->fixed_ft,
                     "pretrain_steps", (json_int_t)l->pretrain_steps, "cache_mb", l->cache_mb,
                     "splits", splits);
}

static int lft_paths(eg_job *j, eg_path_resolve_fn resolve, void *ctx)
{
    eg_lft_spec *l = EG_JOB_SECTION(j, eg_lft_spec);
    for (int i = 0; i <= l->n_seen; i++) {
        eg_lft_domain_spec *d = i < l->n_seen ? &l->seen[i] : &l->unseen;
        char field[64];
        if (i < l->n_seen)
            snprintf(field, sizeof field, "lft.seen[%d].path", i);
        else
            snprintf(field, sizeof field, "lft.unseen.path");
        int images = strcmp(d->dataset, "images") == 0;
        EG_TRY(resolve(ctx, field, images ? NULL : d->dataset, d->path, sizeof d->path));
    }
    return 0;
}

static const char *const lft_keys[] = {
    "seen", "unseen", "n_way", "n_shot", "n_query", "test_query", "episodes_per_epoch",
    "test_episodes", "backbone", "width", "metric", "image_size", "fixed_ft", "pretrain_steps",
    "cache_mb", "splits", NULL};

const eg_task_def eg_lft_def = {
    .name = "lft",
    .flags = EG_TASKF_NO_MODEL | EG_TASKF_NO_DATASET,
    .section_keys = lft_keys,
    .defaults = lft_defaults,
    .read = lft_read,
    .section_json = lft_json,
    .paths = lft_paths,
    .create = eg_lft_create,
};
