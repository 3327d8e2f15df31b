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

#include "meta/spec.h"
#include "util/err.h"
#include "util/json_num.h"

/* Largest integer a JSON number holds exactly in every client (2^53 - 1). */
#define MAX_SAFE_INT 9007199254740991LL

static const char *const method_names[] = {"none", "evograd", "t1t2"}; /* eg_method order */
static const char *const opt_names[] = {"sgd", "adam"};                /* eg_opt_kind order */
static const char *const evo_noise_names[] = {"rademacher", "gaussian"}; /* eg_noise order */
static const char *const model_names[] = {"none", "lenet", "mlp", "resnet20",
                                          "resnet32", "resnet44", "resnet56"};
static const char *const dataset_names[] = {"none", "fashion-mnist", "mnist", "idx",
                                            "cifar10", "cifar100"};
static const char *const label_noise_names[] = {"none", "uniform", "flip"};
#define COUNT(a) ((int)(sizeof a / sizeof *a))

/* ---- defaults ---- */

/* The config an optimizer object starts from when it names a kind other
 * than the task's default: PyTorch's defaults, and lr 0.1 for SGD. */
static eg_optim_config generic_optim(eg_opt_kind kind)
{
    return kind == EG_OPT_ADAM ? eg_optim_adam_defaults() : eg_optim_sgd_defaults(0.1f);
}

int eg_job_defaults(const char *task, eg_job *j)
{
    memset(j, 0, sizeof *j);
    const eg_task_def *def = eg_task_find(task);
    if (!def) return eg_errorf("no task \"%.64s\"", task);
    j->task = def;
    j->method = EG_METHOD_EVOGRAD;
    strcpy(j->model.name, (def->flags & EG_TASKF_NO_MODEL) ? "none" : "lenet");
    j->model.width = 1;
    strcpy(j->dataset.name, (def->flags & EG_TASKF_NO_DATASET) ? "none" : "fashion-mnist");
    strcpy(j->dataset.noise, "none");
    j->evograd = (eg_evograd_opts){.k = 2, .sigma = 1e-3f, .tau = 0.05f,
                                   .noise = EG_NOISE_RADEMACHER};
    j->seed = 1;
    strcpy(j->device, "auto");
    /* The paper's rotation protocol on 60000 images: [0, 40000) to train
     * on, [50000, 60000) to validate on; the same shares of any set (2/3
     * and 1/6 to 7 digits, which round to the same sample counts for any
     * set below 15 million images). */
    j->dataset.train = (eg_split){.fraction = 0.6666667};
    j->dataset.validation = (eg_split){.fraction = 0.1666667};
    j->optimizer = eg_optim_adam_defaults();
    j->meta_optimizer = eg_optim_adam_defaults();
    j->epochs = 1;
    j->batch_size = 64;
    def->defaults(j);
    return 0;
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

const char *eg_job_error_field(void) { return eg_spec_error_field(); }

/* ---- the sections of a spec ---- */

/* The generic top-level keys; each task's section adds its name. */
static const char *const generic_keys[] = {
    "task", "method", "model", "dataset", "optimizer", "meta_optimizer", "evograd", "epochs",
    "steps", "batch_size", "seed", "device", "tf32", "eval_every", "eval_limit", NULL};
#define MAX_TOP_KEYS 64

static int read_model(const eg_spec_scope *top, eg_job *j)
{
    static const char *const keys[] = {"name", "width", NULL};
    eg_spec_scope s;
    EG_TRY(eg_spec_open(top, "model", keys, &s));
    if (j->task->flags & EG_TASKF_NO_MODEL) {
        /* A task with a network of its own: only {"name": "none"}. */
        EG_TRY(eg_spec_enum_str(&s, "name", model_names, 0, 1, j->model.name, sizeof j->model.name));
        if (eg_spec_present(&s, "width"))
            return eg_spec_fail(s.path, "width", "%s has no model here (use {\"name\": \"none\"})",
                                j->task->name);
        return 0;
    }
    EG_TRY(eg_spec_enum_str(&s, "name", model_names, 1, COUNT(model_names), j->model.name,
                       sizeof j->model.name));
    return eg_spec_i(&s, "width", 1, 16, &j->model.width);
}

/* A split: a fraction in (0, 1) or a sample range [begin, end). */
static int read_split(const eg_spec_scope *s, const char *key, eg_split *out)
{
    const json_t *v = json_object_get(s->obj, key);
    if (!v) return 0;
    if (json_is_number(v)) {
        double f = json_number_value(v);
        if (!(f > 0 && f < 1))
            return eg_spec_fail(s->path, key, "a fraction of the samples must lie in (0, 1), not %.17g",
                        f);
        *out = (eg_split){.fraction = f};
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) != 2)
        return eg_spec_fail(s->path, key, "must be a fraction in (0, 1) or a sample range [begin, end], "
                    "not %s", eg_spec_type_name(v));
    long long r[2];
    for (int i = 0; i < 2; i++)
        EG_TRY(eg_spec_int_value(json_array_get(v, i), s->path, key, 0, 1000000000LL, &r[i]));
    if (r[1] <= r[0])
        return eg_spec_fail(s->path, key, "the range [%lld, %lld] is empty", r[0], r[1]);
    *out = (eg_split){.begin = (long)r[0], .end = (long)r[1]};
    return 0;
}

static int read_splits(const eg_spec_scope *ds, eg_job *j)
{
    static const char *const keys[] = {"train", "validation", NULL};
    eg_spec_scope s;
    EG_TRY(eg_spec_open(ds, "splits", keys, &s));
    if (s.obj && !eg_job_uses_splits(j)) {
        char names[256];
        return eg_spec_fail(s.path, NULL, "applies only to task %s, not %s",
                            eg_task_names(EG_TASKF_SPLITS, names, sizeof names), j->task->name);
    }
    EG_TRY(read_split(&s, "train", &j->dataset.train));
    EG_TRY(read_split(&s, "validation", &j->dataset.validation));
    /* What can be checked without the data: fractions and ranges that
     * overlap whatever the size. */
    const eg_split *t = &j->dataset.train, *v = &j->dataset.validation;
    if (t->fraction > 0 && v->fraction > 0 && t->fraction + v->fraction > 1)
        return eg_spec_fail(s.path, "validation", "fractions %g and %g overlap (they add up to more "
                    "than 1)", t->fraction, v->fraction);
    if (!(t->fraction > 0) && !(v->fraction > 0) && t->end > v->begin && v->end > t->begin)
        return eg_spec_fail(s.path, "validation", "[%ld, %ld] overlaps the training range [%ld, %ld]",
                    v->begin, v->end, t->begin, t->end);
    return 0;
}

int eg_job_uses_splits(const eg_job *job) { return (job->task->flags & EG_TASKF_SPLITS) != 0; }

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
                return eg_spec_fail("dataset.splits", names[i], "%g of %ld samples is none",
                            sp[i]->fraction, n);
        } else {
            range[i][0] = sp[i]->begin;
            range[i][1] = sp[i]->end;
            if (sp[i]->end > n)
                return eg_spec_fail("dataset.splits", names[i], "[%ld, %ld] passes the %ld samples of the "
                            "training file", sp[i]->begin, sp[i]->end, n);
        }
    }
    if (range[0][1] > range[1][0] && range[1][1] > range[0][0])
        return eg_spec_fail("dataset.splits", "validation", "[%ld, %ld) overlaps the training samples "
                    "[%ld, %ld) of %ld", range[1][0], range[1][1], range[0][0], range[0][1], n);
    return 0;
}

static int read_dataset(const eg_spec_scope *top, eg_job *j)
{
    static const char *const keys[] = {"name", "path", "noise", "splits", NULL};
    static const char *const noise_keys[] = {"kind", "rate", NULL};
    eg_spec_scope s, n;
    EG_TRY(eg_spec_open(top, "dataset", keys, &s));
    if (j->task->flags & EG_TASKF_NO_DATASET) {
        EG_TRY(eg_spec_enum_str(&s, "name", dataset_names, 0, 1, j->dataset.name,
                           sizeof j->dataset.name));
        const char *extra = eg_spec_present(&s, "path")     ? "path"
                            : eg_spec_present(&s, "noise")  ? "noise"
                            : eg_spec_present(&s, "splits") ? "splits"
                                                    : NULL;
        if (extra)
            return eg_spec_fail(s.path, extra, "%s has no dataset here (use {\"name\": \"none\"})",
                                j->task->name);
        return 0;
    }
    EG_TRY(eg_spec_enum_str(&s, "name", dataset_names, 1, COUNT(dataset_names), j->dataset.name,
                       sizeof j->dataset.name));
    EG_TRY(eg_spec_str(&s, "path", j->dataset.path, sizeof j->dataset.path));
    EG_TRY(read_splits(&s, j));
    EG_TRY(eg_spec_open(&s, "noise", noise_keys, &n));
    if (!(j->task->flags & EG_TASKF_LABEL_NOISE)) {
        /* Label noise belongs to the tasks that take it; elsewhere only
         * "none", 0. */
        EG_TRY(eg_spec_enum_str(&n, "kind", label_noise_names, 0, 1, j->dataset.noise,
                           sizeof j->dataset.noise));
        EG_TRY(eg_spec_num(&n, "rate", 0, 1, &j->dataset.noise_rate));
        if (j->dataset.noise_rate != 0) {
            char names[256];
            return eg_spec_fail(n.path, "rate", "label noise applies only to task %s; must be 0 here",
                                eg_task_names(EG_TASKF_LABEL_NOISE, names, sizeof names));
        }
        return 0;
    }
    EG_TRY(eg_spec_enum_str(&n, "kind", label_noise_names, 0, COUNT(label_noise_names),
                       j->dataset.noise, sizeof j->dataset.noise));
    if (strcmp(j->dataset.noise, "none") == 0) j->dataset.noise_rate = 0;
    EG_TRY(eg_spec_num(&n, "rate", 0, 1, &j->dataset.noise_rate));
    if (strcmp(j->dataset.noise, "none") == 0 && j->dataset.noise_rate != 0)
        return eg_spec_fail(n.path, "rate", "must be 0 when kind is \"none\", not %g",
                    j->dataset.noise_rate);
    return 0;
}

static int read_milestones(const eg_spec_scope *s, eg_optim_config *c, int allow_auto, int *auto_ms)
{
    const json_t *v = json_object_get(s->obj, "milestones");
    if (!v) return 0;
    if (allow_auto && json_is_string(v) && strcmp(json_string_value(v), "auto") == 0) {
        c->n_milestones = 0;
        *auto_ms = 1;
        return 0;
    }
    if (!json_is_array(v))
        return eg_spec_fail(s->path, "milestones", "must be an array of step counts%s, not %s",
                    allow_auto ? " or \"auto\"" : "", eg_spec_type_name(v));
    size_t n = json_array_size(v);
    if (n > EG_OPTIM_MAX_MILESTONES)
        return eg_spec_fail(s->path, "milestones", "%zu milestones, at most %d allowed", n,
                    EG_OPTIM_MAX_MILESTONES);
    for (size_t i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "milestones[%zu]", i);
        long long m = 0, prev = i ? c->milestones[i - 1] : 0;
        EG_TRY(eg_spec_int_value(json_array_get(v, i), s->path, key, 1, 1000000000LL, &m));
        if (m <= prev)
            return eg_spec_fail(s->path, key, "%lld must be > %lld (milestones strictly increase)", m,
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
static int read_optim(const eg_spec_scope *top, const char *key, const eg_optim_config *def,
                      eg_optim_config *out, int *auto_ms)
{
    static const char *const keys[] = {"kind", "lr", "momentum", "weight_decay", "nesterov",
                                       "beta1", "beta2", "eps", "milestones", "gamma", NULL};
    eg_spec_scope s;
    EG_TRY(eg_spec_open(top, key, keys, &s));
    int kind = def->kind, unused = 0;
    EG_TRY(eg_spec_enum(&s, "kind", opt_names, 0, COUNT(opt_names), &kind));
    eg_optim_config c = kind == (int)def->kind ? *def : generic_optim((eg_opt_kind)kind);
    EG_TRY(eg_spec_f(&s, "lr", 1e-10, 10, &c.lr));
    EG_TRY(eg_spec_f(&s, "weight_decay", 0, 1, &c.weight_decay));
    EG_TRY(eg_spec_f(&s, "gamma", 1e-6, 1, &c.gamma));
    EG_TRY(read_milestones(&s, &c, auto_ms != NULL, auto_ms ? auto_ms : &unused));
    if (c.kind == EG_OPT_SGD) {
        static const char *const adam_only[] = {"beta1", "beta2", "eps"};
        for (int i = 0; i < 3; i++)
            if (eg_spec_present(&s, adam_only[i]))
                return eg_spec_fail(s.path, adam_only[i], "applies only to kind \"adam\"");
        EG_TRY(eg_spec_f(&s, "momentum", 0, 0.99999, &c.momentum));
        if (c.momentum == 0 && !eg_spec_present(&s, "nesterov")) c.nesterov = 0;
        EG_TRY(eg_spec_bool(&s, "nesterov", &c.nesterov));
        if (c.nesterov && !(c.momentum > 0))
            return eg_spec_fail(s.path, "nesterov", "needs momentum > 0");
    } else {
        static const char *const sgd_only[] = {"momentum", "nesterov"};
        for (int i = 0; i < 2; i++)
            if (eg_spec_present(&s, sgd_only[i]))
                return eg_spec_fail(s.path, sgd_only[i], "applies only to kind \"sgd\"");
        EG_TRY(eg_spec_f(&s, "beta1", 0, 0.99999, &c.beta1));
        EG_TRY(eg_spec_f(&s, "beta2", 0, 0.99999, &c.beta2));
        EG_TRY(eg_spec_f(&s, "eps", 1e-12, 1, &c.eps));
    }
    if (eg_optim_check(&c) != 0) return eg_spec_fail(s.path, NULL, "%s", eg_last_error());
    *out = c;
    return 0;
}

static int read_evograd(const eg_spec_scope *top, eg_job *j)
{
    static const char *const keys[] = {"k", "sigma", "tau", "antithetic", "noise", "perturb",
                                       NULL};
    static const char *const only_all[] = {"all", NULL};
    eg_spec_scope s;
    EG_TRY(eg_spec_open(top, "evograd", keys, &s));
    eg_evograd_opts *e = &j->evograd;
    int noise = e->noise;
    EG_TRY(eg_spec_i(&s, "k", 2, 4096, &e->k));
    EG_TRY(eg_spec_f(&s, "sigma", 1e-8, 10, &e->sigma));
    EG_TRY(eg_spec_f(&s, "tau", 1e-6, 1000, &e->tau));
    EG_TRY(eg_spec_bool(&s, "antithetic", &e->antithetic));
    EG_TRY(eg_spec_enum(&s, "noise", evo_noise_names, 0, COUNT(evo_noise_names), &noise));
    e->noise = (eg_noise)noise;
    const char *const *scopes = j->task->perturb_scopes ? j->task->perturb_scopes : only_all;
    int n_scopes = 0;
    while (scopes[n_scopes]) n_scopes++;
    EG_TRY(eg_spec_enum(&s, "perturb", scopes, 0, n_scopes, &e->perturb));
    if (e->antithetic && e->k % 2)
        return eg_spec_fail(s.path, "k", "antithetic pairs need an even number of copies, not %d", e->k);
    if (eg_evograd_check(e) != 0) return eg_spec_fail(s.path, NULL, "%s", eg_last_error());
    return 0;
}

/* The field "cpu", "auto", "cuda" or "cuda:N" (N of one or two digits). */
static int read_device(const eg_spec_scope *top, eg_job *j)
{
    EG_TRY(eg_spec_str(top, "device", j->device, sizeof j->device));
    int ordinal;
    if (eg_device_parse(j->device, &ordinal) != 0) return eg_spec_fail("", "device", "%s", eg_last_error());
    return 0;
}

/* Every task's section: allowed only for its own task, whose reader then
 * takes it (also when absent, for its cross-field checks). */
static int read_task_sections(const eg_spec_scope *top, eg_job *j)
{
    for (int i = 0; eg_task_registry[i]; i++) {
        const eg_task_def *def = eg_task_registry[i];
        if (!def->section_keys) continue;
        eg_spec_scope s;
        EG_TRY(eg_spec_open(top, def->name, def->section_keys, &s));
        if (s.obj && j->task != def)
            return eg_spec_fail(s.path, NULL, "applies only to task \"%s\", this job's task is \"%s\"",
                                def->name, j->task->name);
        if (j->task == def) EG_TRY(def->read(&s, j));
    }
    return 0;
}

/* The generic keys and every task's section name, NULL-terminated. */
static void top_keys(const char **keys)
{
    int n = 0;
    for (int i = 0; generic_keys[i]; i++) keys[n++] = generic_keys[i];
    for (int i = 0; eg_task_registry[i] && n < MAX_TOP_KEYS - 1; i++)
        if (eg_task_registry[i]->section_keys) keys[n++] = eg_task_registry[i]->name;
    keys[n] = NULL;
}

int eg_job_from_json(const json_t *spec, eg_job *out)
{
    eg_spec_clear_error();
    memset(out, 0, sizeof *out);
    if (!spec || !json_is_object(spec))
        return eg_spec_fail("", NULL, "a job spec must be a JSON object, not %s",
                    spec ? eg_spec_type_name(spec) : "nothing");
    eg_spec_scope top = {.obj = spec, .path = ""};
    const char *keys[MAX_TOP_KEYS];
    top_keys(keys);
    EG_TRY(eg_spec_check_keys(spec, "", keys));

    const char *names[MAX_TOP_KEYS];
    int n_tasks = 0;
    while (n_tasks < MAX_TOP_KEYS && eg_task_registry[n_tasks])
        names[n_tasks] = eg_task_registry[n_tasks]->name, n_tasks++;
    if (!eg_spec_present(&top, "task")) {
        char list[256];
        return eg_spec_fail("", "task", "is required: one of %s",
                            eg_task_names(0, list, sizeof list));
    }
    int task = 0, method;
    EG_TRY(eg_spec_enum(&top, "task", names, 0, n_tasks, &task));
    EG_TRY(eg_job_defaults(names[task], out));
    method = (int)out->method; /* the task's default */
    EG_TRY(eg_spec_enum(&top, "method", method_names, 0, COUNT(method_names), &method));
    out->method = (eg_method)method;
    EG_TRY(read_model(&top, out));
    EG_TRY(read_dataset(&top, out));
    eg_optim_config def = out->optimizer;
    EG_TRY(read_optim(&top, "optimizer", &def, &out->optimizer,
                      (out->task->flags & EG_TASKF_AUTO_MILESTONES) ? &out->auto_milestones
                                                                     : NULL));
    def = out->meta_optimizer;
    EG_TRY(read_optim(&top, "meta_optimizer", &def, &out->meta_optimizer, NULL));
    EG_TRY(read_evograd(&top, out));
    EG_TRY(eg_spec_i(&top, "epochs", 1, 10000, &out->epochs));
    EG_TRY(eg_spec_l(&top, "steps", 0, 1000000000L, &out->steps));
    EG_TRY(eg_spec_i(&top, "batch_size", 1, 65536, &out->batch_size));
    long long seed = (long long)out->seed;
    EG_TRY(eg_spec_int(&top, "seed", 0, MAX_SAFE_INT, &seed));
    out->seed = (uint64_t)seed;
    EG_TRY(read_device(&top, out));
    EG_TRY(eg_spec_bool(&top, "tf32", &out->tf32));
    EG_TRY(eg_spec_l(&top, "eval_every", 0, 1000000000L, &out->eval_every));
    EG_TRY(eg_spec_i(&top, "eval_limit", 0, 10000000, &out->eval_limit));
    return read_task_sections(&top, out);
}

json_t *eg_job_json_load(const char *text, size_t len)
{
    json_error_t e;
    eg_spec_clear_error();
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

static json_t *optim_to_json(const eg_optim_config *c, int auto_ms)
{
    json_t *o = json_pack("{s:s, s:f, s:f, s:f}", "kind", opt_names[c->kind], "lr",
                          eg_spec_shortest(c->lr), "weight_decay", eg_spec_shortest(c->weight_decay), "gamma",
                          eg_spec_shortest(c->gamma));
    if (!o) return NULL;
    int rc = 0;
    if (c->kind == EG_OPT_SGD) {
        rc |= json_object_set_new(o, "momentum", json_real(eg_spec_shortest(c->momentum)));
        rc |= json_object_set_new(o, "nesterov", json_boolean(c->nesterov));
    } else {
        rc |= json_object_set_new(o, "beta1", json_real(eg_spec_shortest(c->beta1)));
        rc |= json_object_set_new(o, "beta2", json_real(eg_spec_shortest(c->beta2)));
        rc |= json_object_set_new(o, "eps", json_real(eg_spec_shortest(c->eps)));
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

json_t *eg_job_to_json(const eg_job *j)
{
    json_t *model, *dataset;
    if (j->task->flags & EG_TASKF_NO_MODEL)
        model = json_pack("{s:s}", "name", "none");
    else
        model = json_pack("{s:s, s:i}", "name", j->model.name, "width", j->model.width);
    if (j->task->flags & EG_TASKF_NO_DATASET) {
        dataset = json_pack("{s:s}", "name", "none");
    } else {
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
        "{s:s, s:s, s:o, s:o, s:o, s:o, s:{s:i, s:f, s:f, s:b, s:s, s:s}, s:i, s:I, s:i, s:I, "
        "s:s, s:b, s:I, s:i}",
        "task", j->task->name, "method", method_names[j->method], "model", model,
        "dataset", dataset, "optimizer", optim_to_json(&j->optimizer, j->auto_milestones),
        "meta_optimizer", optim_to_json(&j->meta_optimizer, 0), "evograd", "k", j->evograd.k,
        "sigma", eg_spec_shortest(j->evograd.sigma), "tau", eg_spec_shortest(j->evograd.tau), "antithetic",
        j->evograd.antithetic, "noise", evo_noise_names[j->evograd.noise], "perturb",
        j->task->perturb_scopes ? j->task->perturb_scopes[j->evograd.perturb] : "all", "epochs",
        j->epochs,
        "steps", (json_int_t)j->steps, "batch_size", j->batch_size, "seed",
        (json_int_t)j->seed, "device", j->device, "tf32", j->tf32, "eval_every", (json_int_t)j->eval_every,
        "eval_limit", j->eval_limit);
    if (o && j->task->section_keys) {
        json_t *sec = j->task->section_json(j);
        if (!sec || json_object_set_new(o, j->task->name, sec) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* ---- command-line overrides ---- */

int eg_job_set_value(json_t *spec, const char *field, json_t *value)
{
    eg_spec_clear_error();
    char key[256];
    if (snprintf(key, sizeof key, "%s", field) >= (int)sizeof key)
        return eg_spec_fail("", NULL, "override field name is too long");
    if (!*key) return eg_spec_fail("", NULL, "empty field name");
    if (!json_is_object(spec)) return eg_spec_fail(key, NULL, "the spec is not a JSON object");
    json_t *cur = spec;
    char *part = key;
    for (;;) {
        char *dot = strchr(part, '.');
        if (dot) *dot = '\0';
        if (*part == '\0') {
            if (dot) *dot = '.';
            return eg_spec_fail(key, NULL, "empty component in the field name");
        }
        if (!dot) break;
        json_t *next = json_object_get(cur, part);
        if (!next) {
            next = json_object();
            if (!next || json_object_set_new(cur, part, next) != 0) {
                *dot = '.';
                return eg_spec_fail(key, NULL, "out of memory");
            }
        } else if (!json_is_object(next)) {
            char prefix[256];
            snprintf(prefix, sizeof prefix, "%s", key);
            *dot = '.';
            return eg_spec_fail(prefix, NULL, "is %s, not an object, so \"%s\" cannot be set",
                        eg_spec_type_name(next), key);
        }
        *dot = '.';
        cur = next;
        part = dot + 1;
    }
    int rc = json_is_null(value) ? (json_object_del(cur, part), 0)
                                 : json_object_set_new(cur, part, json_deep_copy(value));
    if (rc != 0) return eg_spec_fail(key, NULL, "cannot set the field");
    return 0;
}

int eg_job_set(json_t *spec, const char *assignment)
{
    eg_spec_clear_error();
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return eg_spec_fail("", NULL, "override \"%.200s\" is not FIELD=VALUE", assignment);
    char key[256];
    size_t klen = (size_t)(eq - assignment);
    if (klen >= sizeof key) return eg_spec_fail("", NULL, "override field name is too long");
    memcpy(key, assignment, klen);
    key[klen] = '\0';
    const char *text = eq + 1;
    json_error_t e;
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!value) value = json_string(text);
    if (!value) return eg_spec_fail(key, NULL, "value is not valid UTF-8");
    int rc = eg_job_set_value(spec, key, value);
    json_decref(value);
    return rc;
}
