/* Job specs: defaults per task, validation of every field of a JSON spec
 * into an eg_job, the fully defaulted spec back as JSON, and command-line
 * overrides. The bounds here and in schema/job.schema.json are the same;
 * tests/unit/test_job.c holds the two together. */
#include "meta/job.h"
#include "nn/device.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/json_num.h"

/* Largest integer a JSON number holds exactly in every client (2^53 - 1). */
#define MAX_SAFE_INT 9007199254740991LL

static const char *const task_names[] = {"toy1d", "rotation", "mwn"};
static const char *const method_names[] = {"none", "evograd", "t1t2"}; /* eg_method order */
static const char *const opt_names[] = {"sgd", "adam"};                /* eg_opt_kind order */
static const char *const evo_noise_names[] = {"rademacher", "gaussian"}; /* eg_noise order */
static const char *const model_names[] = {"none", "lenet", "mlp", "resnet20",
                                          "resnet32", "resnet44", "resnet56"};
static const char *const dataset_names[] = {"none", "fashion-mnist", "mnist", "idx",
                                            "cifar10", "cifar100"};
static const char *const label_noise_names[] = {"none", "uniform", "flip"};
#define COUNT(a) ((int)(sizeof a / sizeof *a))

const char *eg_task_name(eg_task_kind k)
{
    return (unsigned)k < 3 ? task_names[k] : "?";
}

int eg_task_parse(const char *name, eg_task_kind *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, task_names[i]) == 0) {
            *out = (eg_task_kind)i;
            return 0;
        }
    return -1;
}

/* ---- defaults ---- */

static eg_optim_config sgd(float lr, float momentum, float wd, int nesterov)
{
    eg_optim_config c = eg_optim_sgd_defaults(lr);
    c.momentum = momentum;
    c.weight_decay = wd;
    c.nesterov = nesterov;
    return c;
}

static eg_optim_config adam(float lr)
{
    eg_optim_config c = eg_optim_adam_defaults();
    c.lr = lr;
    return c;
}

/* The config an optimizer object starts from when it names a kind other
 * than the task's default: PyTorch's defaults, and lr 0.1 for SGD. */
static eg_optim_config generic_optim(eg_opt_kind kind)
{
    return kind == EG_OPT_ADAM ? eg_optim_adam_defaults() : eg_optim_sgd_defaults(0.1f);
}

void eg_job_defaults(eg_task_kind task, eg_job *j)
{
    memset(j, 0, sizeof *j);
    j->task = task;
    j->method = EG_METHOD_EVOGRAD;
    strcpy(j->model.name, "lenet");
    j->model.width = 1;
    strcpy(j->dataset.name, "fashion-mnist");
    strcpy(j->dataset.noise, "none");
    j->evograd = (eg_evograd_opts){.k = 2, .sigma = 1e-3f, .tau = 0.05f,
                                   .noise = EG_NOISE_RADEMACHER};
    j->seed = 1;
    strcpy(j->device, "auto");
    j->rotation.true_angle_deg = 30;
    /* The paper's rotation protocol on 60000 images: [0, 40000) to train
     * on, [50000, 60000) to validate on; the same shares of any set (2/3
     * and 1/6 to 7 digits, which round to the same sample counts for any
     * set below 15 million images). */
    j->dataset.train = (eg_split){.fraction = 0.6666667};
    j->dataset.validation = (eg_split){.fraction = 0.1666667};
    j->mwn.meta_samples = 1000;
    j->mwn.vnet_hidden = 100;
    j->toy1d.x0 = -1.8;
    j->toy1d.lambda0 = 0.2;
    j->toy1d.trials = 100;
    j->toy1d.points = 20;
    j->toy1d.lr = 0.1;
    j->toy1d.trajectory_steps = 5;
    switch (task) {
    case EG_TASK_TOY1D:
        strcpy(j->model.name, "none");
        strcpy(j->dataset.name, "none");
        j->optimizer = sgd(0.1f, 0, 0, 0);
        j->meta_optimizer = sgd(0.1f, 0, 0, 0);
        j->evograd.k = 100;
        j->evograd.sigma = 1;
        j->evograd.tau = 0.5f;
        j->evograd.noise = EG_NOISE_GAUSSIAN;
        j->epochs = 1;
        j->steps = 5;
        j->batch_size = 1;
        break;
    case EG_TASK_ROTATION:
        j->optimizer = adam(1e-3f);
        j->meta_optimizer = adam(1e-2f);
        /* With 2 copies the angle's hypergradient is mostly noise while the
         * model is young, and about one run in four drifts into the
         * mirrored basin (-30° and beyond) and stays: 4 copies (3 noise
         * directions instead of 1) brought every one of 10 seeds to 22-37°
         * (README, "The rotation task"). */
        j->evograd.k = 4;
        j->epochs = 5;
        j->batch_size = 128;
        break;
    case EG_TASK_MWN:
        strcpy(j->model.name, "resnet32");
        strcpy(j->dataset.noise, "uniform");
        j->dataset.noise_rate = 0.4;
        j->optimizer = sgd(0.1f, 0.9f, 5e-4f, 1);
        j->auto_milestones = 1;
        j->meta_optimizer = sgd(1e-3f, 0.9f, 5e-4f, 1);
        j->epochs = 60;
        j->batch_size = 100;
        break;
    }
}

void eg_job_auto_milestones(const eg_job *job, long total_steps, eg_optim_config *cfg)
{
    if (!job->auto_milestones) return;
    long at[2] = {total_steps * 2 / 3, total_steps * 5 / 6};
    cfg->n_milestones = 0;
    for (int i = 0; i < 2; i++) {
        long prev = cfg->n_milestones ? cfg->milestones[cfg->n_milestones - 1] : 0;
        if (at[i] > prev) cfg->milestones[cfg->n_milestones++] = at[i];
    }
}

/* ---- errors ---- */

static _Thread_local char err_field[256];

const char *eg_job_error_field(void) { return err_field; }

/* Records the field path.key (or either alone) as the failing one and the
 * message "path.key: MESSAGE"; returns -1. */
static int fail(const char *path, const char *key, const char *fmt, ...) EG_PRINTF(3, 4);
static int fail(const char *path, const char *key, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    path = path ? path : "";
    key = key ? key : "";
    snprintf(err_field, sizeof err_field, "%s%s%s", path, *path && *key ? "." : "", key);
    if (!*err_field) return eg_errorf("%s", msg);
    return eg_errorf("%s: %s", err_field, msg);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* ---- typed field readers ----
 * Each reads key from the object of a scope. An absent key leaves *out as it
 * is (the default) and returns 0; a present one must have the right JSON
 * type and lie in range, else -1 naming the field. */

typedef struct scope {
    const json_t *obj; /* NULL when the object itself is absent */
    char path[128];    /* dotted path of obj, "" at the top */
} scope;

/* The integer v (a JSON integer, or a real with no fraction, as JSON
 * Schema counts integers) in [lo, hi], for field path.key. */
static int int_value(const json_t *v, const char *path, const char *key, long long lo,
                     long long hi, long long *out)
{
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || d < (double)lo || d > (double)hi)
            return fail(path, key, "must be an integer in [%lld, %lld], not %.17g", lo, hi, d);
        x = (long long)d;
    } else {
        return fail(path, key, "must be an integer in [%lld, %lld], not %s", lo, hi,
                    type_name(v));
    }
    if (x < lo || x > hi)
        return fail(path, key, "must be an integer in [%lld, %lld], not %lld", lo, hi, x);
    *out = x;
    return 0;
}

static int rd_int(const scope *s, const char *key, long long lo, long long hi,
                  long long *out)
{
    const json_t *v = json_object_get(s->obj, key);
    return v ? int_value(v, s->path, key, lo, hi, out) : 0;
}

static int rd_i(const scope *s, const char *key, int lo, int hi, int *out)
{
    long long x = *out;
    EG_TRY(rd_int(s, key, lo, hi, &x));
    *out = (int)x;
    return 0;
}

static int rd_l(const scope *s, const char *key, long lo, long hi, long *out)
{
    long long x = *out;
    EG_TRY(rd_int(s, key, lo, hi, &x));
    *out = (long)x;
    return 0;
}

static int rd_num(const scope *s, const char *key, double lo, double hi, double *out)
{
    const json_t *v = json_object_get(s->obj, key);
    if (!v) return 0;
    if (!json_is_number(v))
        return fail(s->path, key, "must be a number in [%g, %g], not %s", lo, hi, type_name(v));
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return fail(s->path, key, "must be a number in [%g, %g], not %.17g", lo, hi, x);
    *out = x;
    return 0;
}

static int rd_f(const scope *s, const char *key, double lo, double hi, float *out)
{
    double x = *out;
    EG_TRY(rd_num(s, key, lo, hi, &x));
    *out = (float)x;
    return 0;
}

static int rd_bool(const scope *s, const char *key, int *out)
{
    const json_t *v = json_object_get(s->obj, key);
    if (!v) return 0;
    if (!json_is_boolean(v))
        return fail(s->path, key, "must be true or false, not %s", type_name(v));
    *out = json_is_true(v);
    return 0;
}

/* A string that fits buf (cap bytes with its NUL) whole. */
static int rd_str(const scope *s, const char *key, char *buf, size_t cap)
{
    const json_t *v = json_object_get(s->obj, key);
    if (!v) return 0;
    if (!json_is_string(v)) return fail(s->path, key, "must be a string, not %s", type_name(v));
    size_t len = json_string_length(v);
    if (memchr(json_string_value(v), '\0', len))
        return fail(s->path, key, "must not contain NUL characters");
    if (len >= cap)
        return fail(s->path, key, "is %zu bytes long, at most %zu allowed", len, cap - 1);
    memcpy(buf, json_string_value(v), len + 1);
    return 0;
}

/* Lists names[0..n) as "\"a\", \"b\"" into buf. */
static const char *name_list(const char *const *names, int n, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s\"%s\"", i ? ", " : "", names[i]);
    return buf;
}

/* One of names[first..n) as its index. */
static int rd_enum(const scope *s, const char *key, const char *const *names, int first,
                   int n, int *out)
{
    const json_t *v = json_object_get(s->obj, key);
    if (!v) return 0;
    char list[256];
    name_list(names + first, n - first, list, sizeof list);
    if (!json_is_string(v))
        return fail(s->path, key, "must be one of %s, not %s", list, type_name(v));
    int whole = strlen(json_string_value(v)) == json_string_length(v); /* no NUL inside */
    for (int i = first; i < n && whole; i++)
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *out = i;
            return 0;
        }
    return fail(s->path, key, "must be one of %s, not \"%.64s\"", list, json_string_value(v));
}

/* An enum field stored as its name in buf (which holds every name). */
static int rd_enum_str(const scope *s, const char *key, const char *const *names, int first,
                       int n, char *buf, size_t cap)
{
    int i = -1;
    EG_TRY(rd_enum(s, key, names, first, n, &i));
    if (i >= 0) snprintf(buf, cap, "%s", names[i]);
    return 0;
}

static int present(const scope *s, const char *key) { return json_object_get(s->obj, key) != NULL; }

/* Refuses keys of obj outside allowed (a NULL-terminated list), naming the
 * first unknown one. */
static int check_keys(const json_t *obj, const char *path, const char *const *allowed)
{
    const char *k;
    const json_t *val;
    json_object_foreach((json_t *)obj, k, val) {
        int known = 0;
        for (int i = 0; allowed[i] && !known; i++) known = strcmp(k, allowed[i]) == 0;
        if (known) continue;
        char list[512];
        size_t used = 0;
        list[0] = '\0';
        for (int i = 0; allowed[i] && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                     allowed[i]);
        return fail(path, k, "unknown field (known here: %s)", list);
    }
    return 0;
}

/* Opens object field key of s as child, refusing keys outside allowed. An
 * absent field gives a child with obj NULL, whose fields all read as
 * absent. */
static int open_obj(const scope *s, const char *key, const char *const *allowed, scope *child)
{
    const json_t *v = json_object_get(s->obj, key);
    int n = snprintf(child->path, sizeof child->path, "%s%s%s", s->path, *s->path ? "." : "",
                     key);
    child->obj = NULL;
    if (n >= (int)sizeof child->path) return fail(s->path, key, "field path too long");
    if (!v) return 0;
    if (!json_is_object(v)) return fail(child->path, NULL, "must be an object, not %s",
                                        type_name(v));
    EG_TRY(check_keys(v, child->path, allowed));
    child->obj = v;
    return 0;
}

/* ---- the sections of a spec ---- */

static const char *const top_keys[] = {
    "task", "method", "model", "dataset", "optimizer", "meta_optimizer", "evograd", "epochs",
    "steps", "batch_size", "seed", "device", "tf32", "eval_every", "eval_limit", "rotation",
    "mwn", "toy1d", NULL};

static int read_model(const scope *top, eg_job *j)
{
    static const char *const keys[] = {"name", "width", NULL};
    scope s;
    EG_TRY(open_obj(top, "model", keys, &s));
    if (j->task == EG_TASK_TOY1D) {
        /* toy1d has no network: only {"name": "none"}. */
        EG_TRY(rd_enum_str(&s, "name", model_names, 0, 1, j->model.name, sizeof j->model.name));
        if (present(&s, "width"))
            return fail(s.path, "width", "toy1d has no model (use {\"name\": \"none\"})");
        return 0;
    }
    EG_TRY(rd_enum_str(&s, "name", model_names, 1, COUNT(model_names), j->model.name,
                       sizeof j->model.name));
    return rd_i(&s, "width", 1, 16, &j->model.width);
}

/* A split: a fraction in (0, 1) or a sample range [begin, end). */
static int read_split(const scope *s, const char *key, eg_split *out)
{
    const json_t *v = json_object_get(s->obj, key);
    if (!v) return 0;
    if (json_is_number(v)) {
        double f = json_number_value(v);
        if (!(f > 0 && f < 1))
            return fail(s->path, key, "a fraction of the samples must lie in (0, 1), not %.17g",
                        f);
        *out = (eg_split){.fraction = f};
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) != 2)
        return fail(s->path, key, "must be a fraction in (0, 1) or a sample range [begin, end], "
                    "not %s", type_name(v));
    long long r[2];
    for (int i = 0; i < 2; i++)
        EG_TRY(int_value(json_array_get(v, i), s->path, key, 0, 1000000000LL, &r[i]));
    if (r[1] <= r[0])
        return fail(s->path, key, "the range [%lld, %lld] is empty", r[0], r[1]);
    *out = (eg_split){.begin = (long)r[0], .end = (long)r[1]};
    return 0;
}

static int read_splits(const scope *ds, eg_job *j)
{
    static const char *const keys[] = {"train", "validation", NULL};
    scope s;
    EG_TRY(open_obj(ds, "splits", keys, &s));
    if (s.obj && !eg_job_uses_splits(j))
        return fail(s.path, NULL, "applies only to task rotation (mwn draws its validation set "
                    "with mwn.meta_samples)");
    EG_TRY(read_split(&s, "train", &j->dataset.train));
    EG_TRY(read_split(&s, "validation", &j->dataset.validation));
    /* What can be checked without the data: fractions and ranges that
     * overlap whatever the size. */
    const eg_split *t = &j->dataset.train, *v = &j->dataset.validation;
    if (t->fraction > 0 && v->fraction > 0 && t->fraction + v->fraction > 1)
        return fail(s.path, "validation", "fractions %g and %g overlap (they add up to more "
                    "than 1)", t->fraction, v->fraction);
    if (!(t->fraction > 0) && !(v->fraction > 0) && t->end > v->begin && v->end > t->begin)
        return fail(s.path, "validation", "[%ld, %ld] overlaps the training range [%ld, %ld]",
                    v->begin, v->end, t->begin, t->end);
    return 0;
}

int eg_job_uses_splits(const eg_job *job) { return job->task == EG_TASK_ROTATION; }

int eg_job_splits_resolve(const eg_job *job, long n, long range[2][2])
{
    const eg_split *sp[2] = {&job->dataset.train, &job->dataset.validation};
    static const char *const names[2] = {"train", "validation"};
    for (int i = 0; i < 2; i++) {
        if (sp[i]->fraction > 0) {
            long k = lround(sp[i]->fraction * (double)n);
            range[i][0] = i == 0 ? 0 : n - k;
            range[i][1] = i == 0 ? k : n;
            if (k < 1)
                return fail("dataset.splits", names[i], "%g of %ld samples is none",
                            sp[i]->fraction, n);
        } else {
            range[i][0] = sp[i]->begin;
            range[i][1] = sp[i]->end;
            if (sp[i]->end > n)
                return fail("dataset.splits", names[i], "[%ld, %ld] passes the %ld samples of the "
                            "training file", sp[i]->begin, sp[i]->end, n);
        }
    }
    if (range[0][1] > range[1][0] && range[1][1] > range[0][0])
        return fail("dataset.splits", "validation", "[%ld, %ld) overlaps the training samples "
                    "[%ld, %ld) of %ld", range[1][0], range[1][1], range[0][0], range[0][1], n);
    return 0;
}

static int read_dataset(const scope *top, eg_job *j)
{
    static const char *const keys[] = {"name", "path", "noise", "splits", NULL};
    static const char *const noise_keys[] = {"kind", "rate", NULL};
    scope s, n;
    EG_TRY(open_obj(top, "dataset", keys, &s));
    if (j->task == EG_TASK_TOY1D) {
        EG_TRY(rd_enum_str(&s, "name", dataset_names, 0, 1, j->dataset.name,
                           sizeof j->dataset.name));
        const char *extra = present(&s, "path")     ? "path"
                            : present(&s, "noise")  ? "noise"
                            : present(&s, "splits") ? "splits"
                                                    : NULL;
        if (extra) return fail(s.path, extra, "toy1d has no dataset (use {\"name\": \"none\"})");
        return 0;
    }
    EG_TRY(rd_enum_str(&s, "name", dataset_names, 1, COUNT(dataset_names), j->dataset.name,
                       sizeof j->dataset.name));
    EG_TRY(rd_str(&s, "path", j->dataset.path, sizeof j->dataset.path));
    EG_TRY(read_splits(&s, j));
    EG_TRY(open_obj(&s, "noise", noise_keys, &n));
    if (j->task != EG_TASK_MWN) {
        /* Label noise belongs to the mwn task; elsewhere only "none", 0. */
        EG_TRY(rd_enum_str(&n, "kind", label_noise_names, 0, 1, j->dataset.noise,
                           sizeof j->dataset.noise));
        EG_TRY(rd_num(&n, "rate", 0, 1, &j->dataset.noise_rate));
        if (j->dataset.noise_rate != 0)
            return fail(n.path, "rate", "label noise applies only to task mwn; must be 0 here");
        return 0;
    }
    EG_TRY(rd_enum_str(&n, "kind", label_noise_names, 0, COUNT(label_noise_names),
                       j->dataset.noise, sizeof j->dataset.noise));
    if (strcmp(j->dataset.noise, "none") == 0) j->dataset.noise_rate = 0;
    EG_TRY(rd_num(&n, "rate", 0, 1, &j->dataset.noise_rate));
    if (strcmp(j->dataset.noise, "none") == 0 && j->dataset.noise_rate != 0)
        return fail(n.path, "rate", "must be 0 when kind is \"none\", not %g",
                    j->dataset.noise_rate);
    return 0;
}

static int read_milestones(const scope *s, eg_optim_config *c, int allow_auto, int *auto_ms)
{
    const json_t *v = json_object_get(s->obj, "milestones");
    if (!v) return 0;
    if (allow_auto && json_is_string(v) && strcmp(json_string_value(v), "auto") == 0) {
        c->n_milestones = 0;
        *auto_ms = 1;
        return 0;
    }
    if (!json_is_array(v))
        return fail(s->path, "milestones", "must be an array of step counts%s, not %s",
                    allow_auto ? " or \"auto\"" : "", type_name(v));
    size_t n = json_array_size(v);
    if (n > EG_OPTIM_MAX_MILESTONES)
        return fail(s->path, "milestones", "%zu milestones, at most %d allowed", n,
                    EG_OPTIM_MAX_MILESTONES);
    for (size_t i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "milestones[%zu]", i);
        long long m = 0, prev = i ? c->milestones[i - 1] : 0;
        EG_TRY(int_value(json_array_get(v, i), s->path, key, 1, 1000000000LL, &m));
        if (m <= prev)
            return fail(s->path, key, "%lld must be > %lld (milestones strictly increase)", m,
                        prev);
        c->milestones[i] = (long)m;
    }
    c->n_milestones = (int)n;
    *auto_ms = 0;
    return 0;
}

/* An optimizer object over the task's default def. A kind other than the
 * default's starts from generic_optim. auto_ms is NULL where "auto"
 * milestones are not allowed. */
static int read_optim(const scope *top, const char *key, const eg_optim_config *def,
                      eg_optim_config *out, int *auto_ms)
{
    static const char *const keys[] = {"kind", "lr", "momentum", "weight_decay", "nesterov",
                                       "beta1", "beta2", "eps", "milestones", "gamma", NULL};
    scope s;
    EG_TRY(open_obj(top, key, keys, &s));
    int kind = def->kind, unused = 0;
    EG_TRY(rd_enum(&s, "kind", opt_names, 0, COUNT(opt_names), &kind));
    eg_optim_config c = kind == (int)def->kind ? *def : generic_optim((eg_opt_kind)kind);
    EG_TRY(rd_f(&s, "lr", 1e-10, 10, &c.lr));
    EG_TRY(rd_f(&s, "weight_decay", 0, 1, &c.weight_decay));
    EG_TRY(rd_f(&s, "gamma", 1e-6, 1, &c.gamma));
    EG_TRY(read_milestones(&s, &c, auto_ms != NULL, auto_ms ? auto_ms : &unused));
    if (c.kind == EG_OPT_SGD) {
        static const char *const adam_only[] = {"beta1", "beta2", "eps"};
        for (int i = 0; i < 3; i++)
            if (present(&s, adam_only[i]))
                return fail(s.path, adam_only[i], "applies only to kind \"adam\"");
        EG_TRY(rd_f(&s, "momentum", 0, 0.99999, &c.momentum));
        if (c.momentum == 0 && !present(&s, "nesterov")) c.nesterov = 0;
        EG_TRY(rd_bool(&s, "nesterov", &c.nesterov));
        if (c.nesterov && !(c.momentum > 0))
            return fail(s.path, "nesterov", "needs momentum > 0");
    } else {
        static const char *const sgd_only[] = {"momentum", "nesterov"};
        for (int i = 0; i < 2; i++)
            if (present(&s, sgd_only[i]))
                return fail(s.path, sgd_only[i], "applies only to kind \"sgd\"");
        EG_TRY(rd_f(&s, "beta1", 0, 0.99999, &c.beta1));
        EG_TRY(rd_f(&s, "beta2", 0, 0.99999, &c.beta2));
        EG_TRY(rd_f(&s, "eps", 1e-12, 1, &c.eps));
    }
    if (eg_optim_check(&c) != 0) return fail(s.path, NULL, "%s", eg_last_error());
    *out = c;
    return 0;
}

static int read_evograd(const scope *top, eg_job *j)
{
    static const char *const keys[] = {"k", "sigma", "tau", "antithetic", "noise", NULL};
    scope s;
    EG_TRY(open_obj(top, "evograd", keys, &s));
    eg_evograd_opts *e = &j->evograd;
    int noise = e->noise;
    EG_TRY(rd_i(&s, "k", 2, 4096, &e->k));
    EG_TRY(rd_f(&s, "sigma", 1e-8, 10, &e->sigma));
    EG_TRY(rd_f(&s, "tau", 1e-6, 1000, &e->tau));
    EG_TRY(rd_bool(&s, "antithetic", &e->antithetic));
    EG_TRY(rd_enum(&s, "noise", evo_noise_names, 0, COUNT(evo_noise_names), &noise));
    e->noise = (eg_noise)noise;
    if (e->antithetic && e->k % 2)
        return fail(s.path, "k", "antithetic pairs need an even number of copies, not %d", e->k);
    if (eg_evograd_check(e) != 0) return fail(s.path, NULL, "%s", eg_last_error());
    return 0;
}

/* The field "cpu", "auto", "cuda" or "cuda:N" (N of one or two digits). */
static int read_device(const scope *top, eg_job *j)
{
    EG_TRY(rd_str(top, "device", j->device, sizeof j->device));
    int ordinal;
    if (eg_device_parse(j->device, &ordinal) != 0) return fail("", "device", "%s", eg_last_error());
    return 0;
}

/* The task-specific section `name`: allowed only for its own task. */
static int open_task_section(const scope *top, eg_job *j, eg_task_kind kind,
                             const char *const *keys, scope *s)
{
    EG_TRY(open_obj(top, task_names[kind], keys, s));
    if (s->obj && j->task != kind)
        return fail(s->path, NULL, "applies only to task \"%s\", this job's task is \"%s\"",
                    task_names[kind], task_names[j->task]);
    return 0;
}

static int read_task_sections(const scope *top, eg_job *j)
{
    static const char *const rot_keys[] = {"true_angle_deg", NULL};
    static const char *const mwn_keys[] = {"meta_samples", "vnet_hidden", NULL};
    static const char *const toy_keys[] = {"x0", "lambda0", "trials", "points", "lr",
                                           "trajectory_steps", NULL};
    scope s;
    EG_TRY(open_task_section(top, j, EG_TASK_ROTATION, rot_keys, &s));
    EG_TRY(rd_num(&s, "true_angle_deg", -180, 180, &j->rotation.true_angle_deg));
    EG_TRY(open_task_section(top, j, EG_TASK_MWN, mwn_keys, &s));
    EG_TRY(rd_i(&s, "meta_samples", 1, 50000, &j->mwn.meta_samples));
    EG_TRY(rd_i(&s, "vnet_hidden", 1, 4096, &j->mwn.vnet_hidden));
    EG_TRY(open_task_section(top, j, EG_TASK_TOY1D, toy_keys, &s));
    EG_TRY(rd_num(&s, "x0", -100, 100, &j->toy1d.x0));
    EG_TRY(rd_num(&s, "lambda0", 0, 100, &j->toy1d.lambda0));
    EG_TRY(rd_i(&s, "trials", 1, 100000, &j->toy1d.trials));
    EG_TRY(rd_i(&s, "points", 1, 1000, &j->toy1d.points));
    EG_TRY(rd_num(&s, "lr", 1e-10, 10, &j->toy1d.lr));
    return rd_i(&s, "trajectory_steps", 1, 100000, &j->toy1d.trajectory_steps);
}

int eg_job_from_json(const json_t *spec, eg_job *out)
{
    err_field[0] = '\0';
    memset(out, 0, sizeof *out);
    if (!spec || !json_is_object(spec))
        return fail("", NULL, "a job spec must be a JSON object, not %s",
                    spec ? type_name(spec) : "nothing");
    scope top = {.obj = spec, .path = ""};
    EG_TRY(check_keys(spec, "", top_keys));

    if (!present(&top, "task"))
        return fail("", "task", "is required: one of \"toy1d\", \"rotation\", \"mwn\"");
    int task = 0, method = EG_METHOD_EVOGRAD;
    EG_TRY(rd_enum(&top, "task", task_names, 0, COUNT(task_names), &task));
    eg_job_defaults((eg_task_kind)task, out);
    EG_TRY(rd_enum(&top, "method", method_names, 0, COUNT(method_names), &method));
    out->method = (eg_method)method;
    EG_TRY(read_model(&top, out));
    EG_TRY(read_dataset(&top, out));
    eg_optim_config def = out->optimizer;
    EG_TRY(read_optim(&top, "optimizer", &def, &out->optimizer,
                      out->task == EG_TASK_MWN ? &out->auto_milestones : NULL));
    def = out->meta_optimizer;
    EG_TRY(read_optim(&top, "meta_optimizer", &def, &out->meta_optimizer, NULL));
    EG_TRY(read_evograd(&top, out));
    EG_TRY(rd_i(&top, "epochs", 1, 10000, &out->epochs));
    EG_TRY(rd_l(&top, "steps", 0, 1000000000L, &out->steps));
    EG_TRY(rd_i(&top, "batch_size", 1, 65536, &out->batch_size));
    long long seed = (long long)out->seed;
    EG_TRY(rd_int(&top, "seed", 0, MAX_SAFE_INT, &seed));
    out->seed = (uint64_t)seed;
    EG_TRY(read_device(&top, out));
    EG_TRY(rd_bool(&top, "tf32", &out->tf32));
    EG_TRY(rd_l(&top, "eval_every", 0, 1000000000L, &out->eval_every));
    EG_TRY(rd_i(&top, "eval_limit", 0, 10000000, &out->eval_limit));
    return read_task_sections(&top, out);
}

json_t *eg_job_json_load(const char *text, size_t len)
{
    json_error_t e;
    err_field[0] = '\0';
    /* Any value and NUL in strings are let through, to be refused by
     * eg_job_from_json naming the field. */
    json_t *root =
        json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    if (!root) eg_errorf("job spec is not valid JSON: line %d, column %d: %s", e.line, e.column,
                         e.text);
    return root;
}

int eg_job_parse(const char *text, size_t len, eg_job *out)
{
    json_t *root = eg_job_json_load(text, len);
    if (!root) return -1;
    int rc = eg_job_from_json(root, out);
    json_decref(root);
    return rc;
}

/* ---- the defaulted spec as JSON ---- */

/* A float32 field as the double nearest its shortest text, so that 0.1f
 * is written 0.1 rather than 0.10000000149011612. */
static double shortest(float f)
{
    char b[40];
    return eg_fmt_float(f, b, sizeof b) < 0 ? (double)f : strtod(b, NULL);
}

static json_t *optim_to_json(const eg_optim_config *c, int auto_ms)
{
    json_t *o = json_pack("{s:s, s:f, s:f, s:f}", "kind", opt_names[c->kind], "lr",
                          shortest(c->lr), "weight_decay", shortest(c->weight_decay), "gamma",
                          shortest(c->gamma));
    if (!o) return NULL;
    int rc = 0;
    if (c->kind == EG_OPT_SGD) {
        rc |= json_object_set_new(o, "momentum", json_real(shortest(c->momentum)));
        rc |= json_object_set_new(o, "nesterov", json_boolean(c->nesterov));
    } else {
        rc |= json_object_set_new(o, "beta1", json_real(shortest(c->beta1)));
        rc |= json_object_set_new(o, "beta2", json_real(shortest(c->beta2)));
        rc |= json_object_set_new(o, "eps", json_real(shortest(c->eps)));
    }
    json_t *ms = auto_ms ? json_string("auto") : json_array();
    for (int i = 0; !auto_ms && ms && i < c->n_milestones; i++)
        rc |= json_array_append_new(ms, json_integer(c->milestones[i]));
    rc |= json_object_set_new(o, "milestones", ms);
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *split_to_json(const eg_split *sp)
{
    if (sp->fraction > 0) return json_real(sp->fraction);
    return json_pack("[I, I]", (json_int_t)sp->begin, (json_int_t)sp->end);
}

static json_t *task_section(const eg_job *j)
{
    switch (j->task) {
    case EG_TASK_ROTATION:
        return json_pack("{s:f}", "true_angle_deg", j->rotation.true_angle_deg);
    case EG_TASK_MWN:
        return json_pack("{s:i, s:i}", "meta_samples", j->mwn.meta_samples, "vnet_hidden",
                         j->mwn.vnet_hidden);
    case EG_TASK_TOY1D:
        return json_pack("{s:f, s:f, s:i, s:i, s:f, s:i}", "x0", j->toy1d.x0, "lambda0",
                         j->toy1d.lambda0, "trials", j->toy1d.trials, "points",
                         j->toy1d.points, "lr", j->toy1d.lr, "trajectory_steps",
                         j->toy1d.trajectory_steps);
    }
    return NULL;
}

json_t *eg_job_to_json(const eg_job *j)
{
    json_t *model, *dataset;
    if (j->task == EG_TASK_TOY1D) {
        model = json_pack("{s:s}", "name", "none");
        dataset = json_pack("{s:s}", "name", "none");
    } else {
        model = json_pack("{s:s, s:i}", "name", j->model.name, "width", j->model.width);
        dataset = json_pack("{s:s, s:s, s:{s:s, s:f}}", "name", j->dataset.name, "path",
                            j->dataset.path, "noise", "kind", j->dataset.noise, "rate",
                            j->dataset.noise_rate);
        if (dataset && eg_job_uses_splits(j))
            json_object_set_new(dataset, "splits",
                                json_pack("{s:o, s:o}", "train", split_to_json(&j->dataset.train),
                                          "validation", split_to_json(&j->dataset.validation)));
    }
    /* "o" steals each reference, also when the pack fails. */
    json_t *o = json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o, s:{s:i, s:f, s:f, s:b, s:s}, s:i, s:I, s:i, s:I, "
        "s:s, s:b, s:I, s:i, s:o}",
        "task", task_names[j->task], "method", method_names[j->method], "model", model,
        "dataset", dataset, "optimizer", optim_to_json(&j->optimizer, j->auto_milestones),
        "meta_optimizer", optim_to_json(&j->meta_optimizer, 0), "evograd", "k", j->evograd.k,
        "sigma", shortest(j->evograd.sigma), "tau", shortest(j->evograd.tau), "antithetic",
        j->evograd.antithetic, "noise", evo_noise_names[j->evograd.noise], "epochs", j->epochs,
        "steps", (json_int_t)j->steps, "batch_size", j->batch_size, "seed",
        (json_int_t)j->seed, "device", j->device, "tf32", j->tf32, "eval_every", (json_int_t)j->eval_every,
        "eval_limit", j->eval_limit, task_names[j->task], task_section(j));
    return o;
}

/* ---- command-line overrides ---- */

int eg_job_set_value(json_t *spec, const char *field, json_t *value)
{
    err_field[0] = '\0';
    char key[256];
    if (snprintf(key, sizeof key, "%s", field) >= (int)sizeof key)
        return fail("", NULL, "override field name is too long");
    if (!*key) return fail("", NULL, "empty field name");
    if (!json_is_object(spec)) return fail(key, NULL, "the spec is not a JSON object");
    json_t *cur = spec;
    char *part = key;
    for (;;) {
        char *dot = strchr(part, '.');
        if (dot) *dot = '\0';
        if (*part == '\0') {
            if (dot) *dot = '.';
            return fail(key, NULL, "empty component in the field name");
        }
        if (!dot) break;
        json_t *next = json_object_get(cur, part);
        if (!next) {
            next = json_object();
            if (!next || json_object_set_new(cur, part, next) != 0) {
                *dot = '.';
                return fail(key, NULL, "out of memory");
            }
        } else if (!json_is_object(next)) {
            char prefix[256];
            snprintf(prefix, sizeof prefix, "%s", key);
            *dot = '.';
            return fail(prefix, NULL, "is %s, not an object, so \"%s\" cannot be set",
                        type_name(next), key);
        }
        *dot = '.';
        cur = next;
        part = dot + 1;
    }
    int rc = json_is_null(value) ? (json_object_del(cur, part), 0)
                                 : json_object_set_new(cur, part, json_deep_copy(value));
    if (rc != 0) return fail(key, NULL, "cannot set the field");
    return 0;
}

int eg_job_set(json_t *spec, const char *assignment)
{
    err_field[0] = '\0';
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return fail("", NULL, "override \"%.200s\" is not FIELD=VALUE", assignment);
    char key[256];
    size_t klen = (size_t)(eq - assignment);
    if (klen >= sizeof key) return fail("", NULL, "override field name is too long");
    memcpy(key, assignment, klen);
    key[klen] = '\0';
    const char *text = eq + 1;
    json_error_t e;
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!value) value = json_string(text);
    if (!value) return fail(key, NULL, "value is not valid UTF-8");
    int rc = eg_job_set_value(spec, key, value);
    json_decref(value);
    return rc;
}
