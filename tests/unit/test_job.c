/* Job specs (meta/job.c): defaults per task, the example specs, the round
 * trip through the defaulted JSON, command-line overrides, refusal of bad
 * specs with the field named, and agreement with schema/job.schema.json
 * (checked by tests/parity/validate_schema.py with python3-jsonschema). */
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta/job.h"
#include "tasks/mwn.h"
#include "tasks/toy1d.h"
#include "testutil.h"

/* Parses a spec given as text; fails the test on error. */
static eg_job parse_ok(const char *text)
{
    eg_job j;
    if (eg_job_parse(text, strlen(text), &j) != 0)
        fail_msg("spec %s refused: %s (field \"%s\")", text, eg_last_error(),
                 eg_job_error_field());
    return j;
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

#define FEQ(a, b, field)                                                                   \
    do {                                                                                   \
        if ((a)->field != (b)->field)                                                      \
            fail_msg("field %s differs: %.17g vs %.17g", #field, (double)(a)->field,       \
                     (double)(b)->field);                                                  \
    } while (0)
#define SEQ(a, b, field) assert_string_equal((a)->field, (b)->field)

static void assert_optim_equal(const eg_optim_config *a, const eg_optim_config *b)
{
    FEQ(a, b, kind);
    FEQ(a, b, lr);
    FEQ(a, b, momentum);
    FEQ(a, b, weight_decay);
    FEQ(a, b, beta1);
    FEQ(a, b, beta2);
    FEQ(a, b, eps);
    FEQ(a, b, nesterov);
    FEQ(a, b, n_milestones);
    for (int i = 0; i < a->n_milestones; i++) FEQ(a, b, milestones[i]);
    FEQ(a, b, gamma);
}

/* Every field of eg_job. */
static void assert_job_equal(const eg_job *a, const eg_job *b)
{
    assert_ptr_equal(a->task, b->task);
    FEQ(a, b, method);
    SEQ(a, b, model.name);
    FEQ(a, b, model.width);
    SEQ(a, b, dataset.name);
    SEQ(a, b, dataset.path);
    SEQ(a, b, dataset.noise);
    FEQ(a, b, dataset.noise_rate);
    assert_optim_equal(&a->optimizer, &b->optimizer);
    FEQ(a, b, auto_milestones);
    assert_optim_equal(&a->meta_optimizer, &b->meta_optimizer);
    FEQ(a, b, evograd.k);
    FEQ(a, b, evograd.sigma);
    FEQ(a, b, evograd.tau);
    FEQ(a, b, evograd.antithetic);
    FEQ(a, b, evograd.noise);
    FEQ(a, b, epochs);
    FEQ(a, b, steps);
    FEQ(a, b, batch_size);
    FEQ(a, b, seed);
    SEQ(a, b, device);
    FEQ(a, b, tf32);
    FEQ(a, b, eval_every);
    FEQ(a, b, eval_limit);
    /* The task's own section, as its registry entry writes it. */
    if (a->task->section_keys) {
        json_t *sa = a->task->section_json(a), *sb = b->task->section_json(b);
        assert_true(sa && sb && json_equal(sa, sb));
        json_decref(sa);
        json_decref(sb);
    }
}

/* to_json, then from_json of it, directly and through its text. */
static void assert_round_trip(const eg_job *j)
{
    json_t *spec = eg_job_to_json(j);
    assert_non_null(spec);
    eg_job back;
    if (eg_job_from_json(spec, &back) != 0)
        fail_msg("defaulted spec refused: %s", eg_last_error());
    assert_job_equal(j, &back);
    char *text = json_dumps(spec, JSON_COMPACT);
    assert_non_null(text);
    eg_job again = parse_ok(text);
    assert_job_equal(j, &again);
    free(text);
    json_decref(spec);
}

/* Number field key of the job's own task section, read back from its JSON. */
static double section_number(const eg_job *j, const char *key)
{
    json_t *o = eg_job_to_json(j);
    assert_non_null(o);
    json_t *v = json_object_get(json_object_get(o, j->task->name), key);
    assert_true(json_is_number(v));
    double x = json_number_value(v);
    json_decref(o);
    return x;
}

static void test_defaults(void **state)
{
    (void)state;
    eg_job r = parse_ok("{\"task\": \"rotation\"}");
    assert_ptr_equal(r.task, eg_task_find("rotation"));
    assert_int_equal(r.method, EG_METHOD_EVOGRAD);
    assert_string_equal(r.model.name, "lenet");
    assert_string_equal(r.dataset.name, "fashion-mnist");
    assert_string_equal(r.dataset.path, "");
    assert_string_equal(r.dataset.noise, "none");
    assert_true(r.dataset.noise_rate == 0);
    assert_int_equal(r.optimizer.kind, EG_OPT_ADAM);
    assert_true(r.optimizer.lr == 1e-3f && r.optimizer.beta2 == 0.999f);
    assert_int_equal(r.meta_optimizer.kind, EG_OPT_ADAM);
    assert_true(r.meta_optimizer.lr == 1e-2f);
    assert_int_equal(r.auto_milestones, 0);
    assert_int_equal(r.evograd.k, 4); /* rotation: 4 copies (README) */
    assert_true(r.evograd.sigma == 1e-3f && r.evograd.tau == 0.05f);
    assert_int_equal(r.evograd.noise, EG_NOISE_RADEMACHER);
    assert_int_equal(r.evograd.antithetic, 0);
    assert_int_equal(r.epochs, 5);
    assert_int_equal(r.steps, 0);
    assert_int_equal(r.batch_size, 128);
    assert_int_equal(r.seed, 1);
    assert_string_equal(r.device, "auto");
    assert_true(section_number(&r, "true_angle_deg") == 30);

    eg_job m = parse_ok("{\"task\": \"mwn\"}");
    assert_string_equal(m.model.name, "resnet32");
    assert_int_equal(m.model.width, 1);
    assert_string_equal(m.dataset.noise, "uniform");
    assert_true(m.dataset.noise_rate == 0.4);
    assert_int_equal(m.optimizer.kind, EG_OPT_SGD);
    assert_true(m.optimizer.lr == 0.1f && m.optimizer.momentum == 0.9f &&
                m.optimizer.weight_decay == 5e-4f && m.optimizer.nesterov);
    assert_int_equal(m.optimizer.n_milestones, 0);
    assert_int_equal(m.auto_milestones, 1);
    assert_int_equal(m.meta_optimizer.kind, EG_OPT_SGD);
    assert_true(m.meta_optimizer.lr == 1e-3f && m.meta_optimizer.momentum == 0.9f &&
                m.meta_optimizer.weight_decay == 5e-4f && m.meta_optimizer.nesterov);
    assert_int_equal(m.epochs, 60);
    assert_int_equal(m.batch_size, 100);
    assert_int_equal(EG_JOB_SECTION(&m, eg_mwn_spec)->meta_samples, 1000);
    assert_int_equal(EG_JOB_SECTION(&m, eg_mwn_spec)->vnet_hidden, 100);

    eg_job t = parse_ok("{\"task\": \"toy1d\"}");
    assert_string_equal(t.model.name, "none");
    assert_string_equal(t.dataset.name, "none");
    assert_int_equal(t.optimizer.kind, EG_OPT_SGD);
    assert_true(t.optimizer.lr == 0.1f && t.optimizer.momentum == 0);
    assert_true(t.meta_optimizer.lr == 0.1f);
    assert_int_equal(t.evograd.k, 100);
    assert_true(t.evograd.sigma == 1 && t.evograd.tau == 0.5f);
    assert_int_equal(t.evograd.noise, EG_NOISE_GAUSSIAN);
    assert_int_equal(t.steps, 5);
    assert_int_equal(t.batch_size, 1);
    const eg_toy1d_spec *ts = EG_JOB_SECTION(&t, const eg_toy1d_spec);
    assert_true(ts->x0 == -1.8 && ts->lambda0 == 0.2 && ts->lr == 0.1);
    assert_int_equal(ts->trials, 100);
    assert_int_equal(ts->points, 20);
    assert_int_equal(ts->trajectory_steps, 5);

    /* {"task": X} is exactly eg_job_defaults(X). */
    int n_tasks = 0;
    for (; eg_task_registry[n_tasks]; n_tasks++) {
        const eg_task_def *def = eg_task_registry[n_tasks];
        char text[64];
        snprintf(text, sizeof text, "{\"task\": \"%s\"}", def->name);
        eg_job parsed = parse_ok(text), dj;
        assert_int_equal(eg_job_defaults(def->name, &dj), 0);
        assert_job_equal(&parsed, &dj);
        assert_ptr_equal(eg_task_find(def->name), def);
    }
    assert_true(n_tasks >= 3);
    eg_job none;
    assert_null(eg_task_find("cartpole"));
    assert_int_equal(eg_job_defaults("cartpole", &none), -1);
}

/* Fields given override the task's defaults one by one; naming another
 * optimizer kind starts from that kind's defaults. */
static void test_overrides_in_spec(void **state)
{
    (void)state;
    eg_job j = parse_ok("{\"task\": \"mwn\", \"optimizer\": {\"lr\": 0.05}}");
    assert_true(j.optimizer.lr == 0.05f && j.optimizer.momentum == 0.9f &&
                j.optimizer.nesterov && j.optimizer.weight_decay == 5e-4f);
    j = parse_ok("{\"task\": \"toy1d\", \"model\": {}, \"dataset\": {\"name\": \"none\"}}");
    assert_string_equal(j.model.name, "none");
    j = parse_ok("{\"task\": \"mwn\", \"optimizer\": {\"kind\": \"sgd\", \"nesterov\": true}}");
    assert_true(j.optimizer.nesterov && j.optimizer.momentum == 0.9f);
    j = parse_ok("{\"task\": \"mwn\", \"optimizer\": {\"momentum\": 0}}");
    assert_true(j.optimizer.momentum == 0 && j.optimizer.nesterov == 0);
    j = parse_ok("{\"task\": \"mwn\", \"optimizer\": {\"kind\": \"adam\"}}");
    assert_int_equal(j.optimizer.kind, EG_OPT_ADAM);
    assert_true(j.optimizer.lr == 1e-3f && j.optimizer.weight_decay == 0);
    assert_int_equal(j.auto_milestones, 1);
    j = parse_ok("{\"task\": \"mwn\", \"optimizer\": {\"milestones\": []}}");
    assert_int_equal(j.auto_milestones, 0);
    j = parse_ok("{\"task\": \"mwn\", \"optimizer\": {\"milestones\": [100, 250]}}");
    assert_int_equal(j.auto_milestones, 0);
    assert_int_equal(j.optimizer.n_milestones, 2);
    assert_int_equal(j.optimizer.milestones[1], 250);
    j = parse_ok("{\"task\": \"rotation\", \"optimizer\": {\"kind\": \"sgd\"}}");
    assert_true(j.optimizer.lr == 0.1f && j.optimizer.momentum == 0 && !j.optimizer.nesterov);
    /* JSON Schema counts 10.0 as an integer; so does the parser. */
    j = parse_ok("{\"task\": \"toy1d\", \"steps\": 10.0, \"seed\": 9007199254740991}");
    assert_int_equal(j.steps, 10);
    assert_true(j.seed == 9007199254740991ULL);
    j = parse_ok("{\"task\": \"mwn\", \"dataset\": {\"noise\": {\"kind\": \"none\"}}}");
    assert_string_equal(j.dataset.noise, "none");
    assert_true(j.dataset.noise_rate == 0);
    j = parse_ok("{\"task\": \"mwn\", \"dataset\": {\"noise\": {\"kind\": \"flip\"}}}");
    assert_string_equal(j.dataset.noise, "flip");
    assert_true(j.dataset.noise_rate == 0.4);
    j = parse_ok("{\"task\": \"rotation\", \"device\": \"cuda:12\"}");
    assert_string_equal(j.device, "cuda:12");

    /* The milestones "auto" stands for. */
    eg_optim_config c = j.optimizer;
    eg_job mw = parse_ok("{\"task\": \"mwn\"}");
    eg_job_auto_milestones(&mw, 600, &c);
    assert_int_equal(c.n_milestones, 2);
    assert_int_equal(c.milestones[0], 400);
    assert_int_equal(c.milestones[1], 500);
    assert_int_equal(eg_optim_check(&c), 0);
    eg_job_auto_milestones(&mw, 2, &c);
    assert_int_equal(c.n_milestones, 1);
    assert_int_equal(c.milestones[0], 1);
    c.n_milestones = 0;
    eg_job_auto_milestones(&j, 600, &c); /* rotation: not auto, untouched */
    assert_int_equal(c.n_milestones, 0);
}

static void test_examples(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob("schema/examples/*.json", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 10);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        size_t len;
        const char *text = read_text(g.gl_pathv[i], &len);
        eg_job j;
        if (eg_job_parse(text, len, &j) != 0)
            fail_msg("%s refused: %s", g.gl_pathv[i], eg_last_error());
        /* TASK-METHOD.json holds that task and method. */
        const char *base = strrchr(g.gl_pathv[i], '/') + 1;
        char expect[64];
        snprintf(expect, sizeof expect, "%s-%s.json", j.task->name,
                 eg_method_name(j.method));
        if (strcmp(base, "rotation.json") != 0) assert_string_equal(base, expect);
        assert_round_trip(&j);
    }
    globfree(&g);

    size_t len;
    const char *text = read_text("schema/examples/rotation.json", &len);
    eg_job demo;
    assert_int_equal(eg_job_parse(text, len, &demo), 0);
    assert_ptr_equal(demo.task, eg_task_find("rotation"));
    assert_int_equal(demo.method, EG_METHOD_EVOGRAD);
    assert_int_equal(demo.epochs, 1);
}

static void test_round_trip(void **state)
{
    (void)state;
    for (int k = 0; eg_task_registry[k]; k++) {
        eg_job d;
        assert_int_equal(eg_job_defaults(eg_task_registry[k]->name, &d), 0);
        assert_round_trip(&d);
    }
    const char *full =
        "{\"task\": \"mwn\", \"method\": \"t1t2\", \"model\": {\"name\": \"resnet20\", "
        "\"width\": 2}, \"dataset\": {\"name\": \"cifar10\", \"path\": \"/data/cifar 10\", "
        "\"noise\": {\"kind\": \"flip\", \"rate\": 0.2}}, \"optimizer\": {\"kind\": \"adam\", "
        "\"lr\": 0.003, \"beta1\": 0.8, \"beta2\": 0.99, \"eps\": 1e-7, \"weight_decay\": "
        "1e-4, \"milestones\": [100, 200, 300], \"gamma\": 0.5}, \"meta_optimizer\": "
        "{\"kind\": \"sgd\", \"lr\": 0.01, \"momentum\": 0.5, \"nesterov\": false}, "
        "\"evograd\": {\"k\": 8, \"sigma\": 0.01, \"tau\": 0.1, \"antithetic\": true, "
        "\"noise\": \"gaussian\"}, \"epochs\": 7, \"steps\": 1234, \"batch_size\": 64, "
        "\"seed\": 9007199254740991, \"device\": \"cuda:1\", \"tf32\": true, \"eval_every\": 50, "
        "\"eval_limit\": 500, \"mwn\": {\"meta_samples\": 500, \"vnet_hidden\": 50}}";
    eg_job j = parse_ok(full);
    assert_int_equal(j.method, EG_METHOD_T1T2);
    assert_int_equal(j.model.width, 2);
    assert_string_equal(j.dataset.path, "/data/cifar 10");
    assert_true(j.dataset.noise_rate == 0.2);
    assert_int_equal(j.optimizer.kind, EG_OPT_ADAM);
    assert_true(j.optimizer.beta1 == 0.8f && j.optimizer.eps == 1e-7f);
    assert_int_equal(j.optimizer.n_milestones, 3);
    assert_int_equal(j.auto_milestones, 0);
    assert_true(j.meta_optimizer.momentum == 0.5f && !j.meta_optimizer.nesterov);
    assert_int_equal(j.evograd.k, 8);
    assert_int_equal(j.evograd.antithetic, 1);
    assert_int_equal(j.steps, 1234);
    assert_int_equal(j.eval_limit, 500);
    assert_int_equal(j.tf32, 1);
    assert_int_equal(EG_JOB_SECTION(&j, eg_mwn_spec)->vnet_hidden, 50);
    assert_round_trip(&j);

    /* Floats come back as their short decimals. */
    json_t *spec = eg_job_to_json(&j);
    json_t *lr = json_object_get(json_object_get(spec, "optimizer"), "lr");
    assert_true(json_real_value(lr) == 0.003);
    assert_string_equal(json_string_value(json_object_get(spec, "device")), "cuda:1");
    json_decref(spec);
    j = parse_ok("{\"task\": \"toy1d\", \"toy1d\": {\"x0\": 0.3, \"lambda0\": 1.7, "
                 "\"lr\": 0.05}, \"method\": \"none\"}");
    assert_round_trip(&j);
}

/* Splits: the default shares, fractions and ranges, resolved over the
 * size of a training file. */
static void test_splits(void **state)
{
    (void)state;
    eg_job j;
    eg_job_defaults("rotation", &j);
    long r[2][2];
    /* The paper's protocol on 60000 images, and the same shares of 7000. */
    assert_int_equal(eg_job_splits_resolve(&j, 60000, r), 0);
    assert_int_equal(r[0][0], 0), assert_int_equal(r[0][1], 40000);
    assert_int_equal(r[1][0], 50000), assert_int_equal(r[1][1], 60000);
    assert_int_equal(eg_job_splits_resolve(&j, 7000, r), 0);
    assert_int_equal(r[0][1], 4667), assert_int_equal(r[1][0], 5833);
    assert_int_equal(eg_job_splits_resolve(&j, 6, r), 0);
    assert_int_equal(r[0][1], 4), assert_int_equal(r[1][0], 5);
    /* Too few samples for a share to hold one. */
    tu_fails_with(eg_job_splits_resolve(&j, 2, r), "dataset.splits.validation");
    assert_string_equal(eg_job_error_field(), "dataset.splits.validation");
    j = parse_ok("{\"task\": \"rotation\", \"dataset\": {\"splits\": {\"train\": [100, 300], "
                 "\"validation\": 0.25}}}");
    assert_int_equal(eg_job_splits_resolve(&j, 1000, r), 0);
    assert_int_equal(r[0][0], 100), assert_int_equal(r[0][1], 300);
    assert_int_equal(r[1][0], 750), assert_int_equal(r[1][1], 1000);
    assert_round_trip(&j);
    tu_fails_with(eg_job_splits_resolve(&j, 299, r), "passes the 299 samples");
    assert_string_equal(eg_job_error_field(), "dataset.splits.train");
    /* A range and a fraction may only clash once the size is known. */
    tu_fails_with(eg_job_splits_resolve(&j, 350, r), "overlaps the training samples");
    assert_string_equal(eg_job_error_field(), "dataset.splits.validation");
    /* The echo holds the splits of rotation only. */
    json_t *spec = eg_job_to_json(&j);
    json_t *sp = json_object_get(json_object_get(spec, "dataset"), "splits");
    assert_true(json_real_value(json_object_get(sp, "validation")) == 0.25);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(sp, "train"), 1)), 300);
    json_decref(spec);
    eg_job_defaults("mwn", &j);
    spec = eg_job_to_json(&j);
    assert_null(json_object_get(json_object_get(spec, "dataset"), "splits"));
    json_decref(spec);
}

static void test_set(void **state)
{
    (void)state;
    json_t *spec = json_pack("{s:s}", "task", "rotation");
    assert_int_equal(eg_job_set(spec, "evograd.k=4"), 0);
    assert_int_equal(eg_job_set(spec, "evograd.antithetic=true"), 0);
    assert_int_equal(eg_job_set(spec, "evograd.sigma=0.002"), 0);
    assert_int_equal(eg_job_set(spec, "optimizer.kind=sgd"), 0);        /* plain string */
    assert_int_equal(eg_job_set(spec, "optimizer.momentum=0.8"), 0);
    assert_int_equal(eg_job_set(spec, "optimizer.nesterov=true"), 0);
    assert_int_equal(eg_job_set(spec, "optimizer.milestones=[10, 20]"), 0);
    assert_int_equal(eg_job_set(spec, "model.name=\"mlp\""), 0);         /* quoted string */
    assert_int_equal(eg_job_set(spec, "dataset.path=/srv/data=x y"), 0); /* '=' in value */
    assert_int_equal(eg_job_set(spec, "device=cuda:0"), 0);
    assert_int_equal(eg_job_set(spec, "rotation={\"true_angle_deg\": -45}"), 0);
    assert_int_equal(eg_job_set(spec, "seed=7"), 0);
    assert_int_equal(eg_job_set(spec, "epochs=3"), 0);
    assert_int_equal(eg_job_set(spec, "epochs=null"), 0); /* back to the default */
    assert_int_equal(eg_job_set(spec, "eval_limit=null"), 0); /* absent: no-op */
    eg_job j;
    if (eg_job_from_json(spec, &j) != 0) fail_msg("%s", eg_last_error());
    assert_int_equal(j.evograd.k, 4);
    assert_int_equal(j.evograd.antithetic, 1);
    assert_true(j.evograd.sigma == 0.002f);
    assert_int_equal(j.optimizer.kind, EG_OPT_SGD);
    assert_true(j.optimizer.momentum == 0.8f && j.optimizer.nesterov);
    assert_int_equal(j.optimizer.n_milestones, 2);
    assert_int_equal(j.optimizer.milestones[1], 20);
    assert_string_equal(j.model.name, "mlp");
    assert_string_equal(j.dataset.path, "/srv/data=x y");
    assert_string_equal(j.device, "cuda:0");
    assert_true(section_number(&j, "true_angle_deg") == -45);
    assert_int_equal(j.seed, 7);
    assert_int_equal(j.epochs, 5);

    /* A value of the wrong type reaches the validator, which names it. */
    assert_int_equal(eg_job_set(spec, "batch_size=lots"), 0);
    assert_int_equal(eg_job_from_json(spec, &j), -1);
    assert_string_equal(eg_job_error_field(), "batch_size");
    assert_non_null(strstr(eg_last_error(), "not a string"));

    /* Malformed assignments. */
    assert_int_equal(eg_job_set(spec, "evograd.k"), -1);
    assert_non_null(strstr(eg_last_error(), "FIELD=VALUE"));
    tu_fails_with(eg_job_set(spec, "=3"), "\"=3\" is not FIELD=VALUE");
    tu_fails_with(eg_job_set(spec, "evograd..k=3"), "evograd..k: empty component");
    assert_string_equal(eg_job_error_field(), "evograd..k");
    tu_fails_with(eg_job_set(spec, "evograd.k.=3"),
                  "not an object, so \"evograd.k.\" cannot be set");
    assert_int_equal(eg_job_set(spec, "task.name=x"), -1); /* task is a string */
    assert_string_equal(eg_job_error_field(), "task");
    assert_non_null(strstr(eg_last_error(), "not an object"));
    assert_string_equal(json_string_value(json_object_get(spec, "task")), "rotation");
    json_decref(spec);
}

/* One bad spec: the field it must be refused for, a piece of the message,
 * and whether the schema can see the fault too (some faults need the
 * task's defaults or byte counts, which a JSON Schema cannot express). */
typedef struct bad_spec {
    const char *text, *field, *words;
    int schema;
} bad_spec;

static const bad_spec bad_specs[] = {
    {"{}", "task", "is required", 1},
    {"[]", "", "must be a JSON object", 1},
    {"\"rotation\"", "", "must be a JSON object", 1},
    {"{\"task\": \"cartpole\"}", "task", "must be one of", 1},
    {"{\"task\": 3}", "task", "not an integer", 1},
    {"{\"task\": \"rotation\", \"method\": \"maml\"}", "method", "\"maml\"", 1},
    {"{\"task\": \"rotation\", \"colour\": \"blue\"}", "colour", "unknown field", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"lr\": 0.1, \"speed\": 2}}", "optimizer.speed",
     "unknown field", 1},
    {"{\"task\": \"rotation\", \"evograd\": {\"sigma\": 0}}", "evograd.sigma",
     "must be a number in", 1},
    {"{\"task\": \"rotation\", \"evograd\": {\"sigma\": -0.001}}", "evograd.sigma", "-0.001", 1},
    {"{\"task\": \"rotation\", \"evograd\": {\"sigma\": \"small\"}}", "evograd.sigma",
     "not a string", 1},
    {"{\"task\": \"rotation\", \"evograd\": {\"tau\": 1e9}}", "evograd.tau", "[1e-06, 1000]", 1},
    {"{\"task\": \"rotation\", \"evograd\": {\"k\": 1}}", "evograd.k", "[2, 4096]", 1},
    {"{\"task\": \"rotation\", \"evograd\": {\"k\": 5000}}", "evograd.k", "5000", 1},
    {"{\"task\": \"rotation\", \"evograd\": {\"k\": 3, \"antithetic\": true}}", "evograd.k",
     "even", 1},
    {"{\"task\": \"toy1d\", \"evograd\": {\"k\": 99, \"antithetic\": true}}", "evograd.k",
     "even", 1},
    {"{\"task\": \"rotation\", \"evograd\": {\"antithetic\": 1}}", "evograd.antithetic",
     "true or false", 1},
    {"{\"task\": \"rotation\", \"evograd\": {\"noise\": \"uniform\"}}", "evograd.noise",
     "\"rademacher\", \"gaussian\"", 1},
    {"{\"task\": \"rotation\", \"method\": \"none\\u0000x\"}", "method", "must be one of", 0},
    {"{\"task\": \"rotation\", \"evograd\": []}", "evograd", "must be an object", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"lr\": 11}}", "optimizer.lr", "11", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"lr\": 0}}", "optimizer.lr", "[1e-10, 10]", 1},
    {"{\"task\": \"rotation\", \"meta_optimizer\": {\"lr\": null}}", "meta_optimizer.lr",
     "not null", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"momentum\": 0.9}}", "optimizer.momentum",
     "applies only to kind \"sgd\"", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"kind\": \"sgd\", \"momentum\": 1}}",
     "optimizer.momentum", "[0, 0.99999]", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"kind\": \"sgd\", \"beta1\": 0.9}}",
     "optimizer.beta1", "applies only to kind \"adam\"", 1},
    {"{\"task\": \"mwn\", \"optimizer\": {\"eps\": 1e-8}}", "optimizer.eps",
     "applies only to kind \"adam\"", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"kind\": \"sgd\", \"nesterov\": true}}",
     "optimizer.nesterov", "momentum > 0", 1},
    {"{\"task\": \"toy1d\", \"meta_optimizer\": {\"nesterov\": true}}",
     "meta_optimizer.nesterov", "momentum > 0", 1},
    {"{\"task\": \"mwn\", \"optimizer\": {\"momentum\": 0, \"nesterov\": true}}",
     "optimizer.nesterov", "momentum > 0", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"milestones\": [10, 5]}}",
     "optimizer.milestones[1]", "strictly increase", 0},
    {"{\"task\": \"rotation\", \"optimizer\": {\"milestones\": [10, 10]}}",
     "optimizer.milestones[1]", "strictly increase", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"milestones\": [0]}}", "optimizer.milestones[0]",
     "[1, 1000000000]", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"milestones\": [5, \"x\"]}}",
     "optimizer.milestones[1]", "not a string", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"milestones\": [1,2,3,4,5,6,7,8,9]}}",
     "optimizer.milestones", "at most 8", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"milestones\": \"auto\"}}",
     "optimizer.milestones", "array", 1},
    {"{\"task\": \"mwn\", \"meta_optimizer\": {\"milestones\": \"auto\"}}",
     "meta_optimizer.milestones", "array", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"kind\": \"rmsprop\"}}", "optimizer.kind",
     "\"sgd\", \"adam\"", 1},
    {"{\"task\": \"rotation\", \"optimizer\": {\"gamma\": 2}}", "optimizer.gamma", "[1e-06, 1]",
     1},
    {"{\"task\": \"rotation\", \"optimizer\": 0.1}", "optimizer", "must be an object", 1},
    {"{\"task\": \"rotation\", \"dataset\": {\"noise\": {\"kind\": \"uniform\", \"rate\": 0.4}}}",
     "dataset.noise.kind", "\"none\"", 1},
    {"{\"task\": \"rotation\", \"dataset\": {\"noise\": {\"rate\": 0.2}}}", "dataset.noise.rate",
     "only to task \"mwn\"", 1},
    {"{\"task\": \"mwn\", \"dataset\": {\"noise\": {\"kind\": \"none\", \"rate\": 0.4}}}",
     "dataset.noise.rate", "must be 0", 1},
    {"{\"task\": \"mwn\", \"dataset\": {\"noise\": {\"rate\": 1.5}}}", "dataset.noise.rate",
     "[0, 1]", 1},
    {"{\"task\": \"mwn\", \"dataset\": {\"noise\": {\"kind\": \"uniform\", \"level\": 1}}}",
     "dataset.noise.level", "unknown field", 1},
    {"{\"task\": \"mwn\", \"dataset\": {\"name\": \"imagenet\"}}", "dataset.name", "cifar10", 1},
    {"{\"task\": \"mwn\", \"dataset\": {\"path\": 5}}", "dataset.path", "must be a string", 1},
    {"{\"task\": \"mwn\", \"dataset\": {\"path\": \"/a\\u0000b\"}}", "dataset.path", "NUL", 0},
    {"{\"task\": \"mwn\", \"model\": {\"name\": \"vgg\"}}", "model.name", "\"resnet32\"", 1},
    {"{\"task\": \"mwn\", \"model\": {\"name\": \"none\"}}", "model.name", "\"lenet\"", 1},
    {"{\"task\": \"mwn\", \"model\": {\"width\": 0}}", "model.width", "[1, 16]", 1},
    {"{\"task\": \"mwn\", \"model\": {\"width\": 17}}", "model.width", "[1, 16]", 1},
    {"{\"task\": \"mwn\", \"model\": {\"width\": 1.5}}", "model.width", "integer", 1},
    {"{\"task\": \"toy1d\", \"model\": {\"name\": \"lenet\"}}", "model.name", "\"none\"", 1},
    {"{\"task\": \"toy1d\", \"model\": {\"name\": \"none\", \"width\": 2}}", "model.width",
     "toy1d has no model", 1},
    {"{\"task\": \"toy1d\", \"dataset\": {\"name\": \"mnist\"}}", "dataset.name", "\"none\"", 1},
    {"{\"task\": \"toy1d\", \"dataset\": {\"path\": \"/x\"}}", "dataset.path",
     "toy1d has no dataset", 1},
    {"{\"task\": \"rotation\", \"dataset\": {\"splits\": {\"train\": 0}}}",
     "dataset.splits.train", "(0, 1)", 1},
    {"{\"task\": \"rotation\", \"dataset\": {\"splits\": {\"train\": 1}}}",
     "dataset.splits.train", "(0, 1)", 1},
    {"{\"task\": \"rotation\", \"dataset\": {\"splits\": {\"validation\": [5, 5]}}}",
     "dataset.splits.validation", "[5, 5] is empty", 0},
    {"{\"task\": \"rotation\", \"dataset\": {\"splits\": {\"validation\": [5]}}}",
     "dataset.splits.validation", "sample range", 1},
    {"{\"task\": \"rotation\", \"dataset\": {\"splits\": {\"train\": [-1, 5]}}}",
     "dataset.splits.train", "[0, 1000000000]", 1},
    {"{\"task\": \"rotation\", \"dataset\": {\"splits\": {\"train\": \"half\"}}}",
     "dataset.splits.train", "not a string", 1},
    {"{\"task\": \"rotation\", \"dataset\": {\"splits\": {\"train\": 0.7, "
     "\"validation\": 0.4}}}", "dataset.splits.validation", "overlap", 0},
    {"{\"task\": \"rotation\", \"dataset\": {\"splits\": {\"train\": [0, 100], "
     "\"validation\": [99, 200]}}}", "dataset.splits.validation", "overlaps", 0},
    {"{\"task\": \"rotation\", \"dataset\": {\"splits\": {\"test\": 0.1}}}",
     "dataset.splits.test", "unknown field", 1},
    {"{\"task\": \"mwn\", \"dataset\": {\"splits\": {\"train\": 0.5}}}", "dataset.splits",
     "applies only to task \"rotation\", not mwn", 1},
    {"{\"task\": \"toy1d\", \"dataset\": {\"splits\": {}}}", "dataset.splits",
     "toy1d has no dataset", 0},
    {"{\"task\": \"mwn\", \"rotation\": {\"true_angle_deg\": 10}}", "rotation",
     "applies only to task \"rotation\"", 1},
    {"{\"task\": \"rotation\", \"toy1d\": {}}", "toy1d", "applies only to task \"toy1d\"", 1},
    {"{\"task\": \"rotation\", \"lft\": {}}", "lft", "applies only to task \"lft\"", 1},
    {"{\"task\": \"lft\", \"lft\": {\"n_way\": 1}}", "lft.n_way", "[2, 64]", 1},
    {"{\"task\": \"lft\", \"lft\": {\"seen\": [{}]}}", "lft.seen", "2 to 8 domains", 1},
    {"{\"task\": \"lft\", \"lft\": {\"unseen\": {\"dataset\": \"images\"}}}", "lft.unseen.path",
     "required", 1},
    {"{\"task\": \"lft\", \"lft\": {\"metric\": \"matchingnet\"}}", "lft.metric", "protonet", 1},
    {"{\"task\": \"lft\", \"model\": {\"name\": \"lenet\"}}", "model.name", "\"none\"", 1},
    {"{\"task\": \"rotation\", \"rotation\": {\"true_angle_deg\": 200}}",
     "rotation.true_angle_deg", "[-180, 180]", 1},
    {"{\"task\": \"rotation\", \"rotation\": {\"angle\": 20}}", "rotation.angle",
     "true_angle_deg", 1},
    {"{\"task\": \"mwn\", \"mwn\": {\"meta_samples\": 0}}", "mwn.meta_samples", "[1, 50000]", 1},
    {"{\"task\": \"mwn\", \"mwn\": {\"meta_samples\": 60000}}", "mwn.meta_samples", "60000", 1},
    {"{\"task\": \"mwn\", \"mwn\": {\"vnet_hidden\": false}}", "mwn.vnet_hidden", "not false", 1},
    {"{\"task\": \"toy1d\", \"toy1d\": {\"trials\": 0}}", "toy1d.trials", "[1, 100000]", 1},
    {"{\"task\": \"toy1d\", \"toy1d\": {\"lambda0\": -1}}", "toy1d.lambda0", "[0, 100]", 1},
    {"{\"task\": \"toy1d\", \"epochs\": 0}", "epochs", "[1, 10000]", 1},
    {"{\"task\": \"toy1d\", \"epochs\": 2.5}", "epochs", "2.5", 1},
    {"{\"task\": \"toy1d\", \"steps\": -1}", "steps", "[0, 1000000000]", 1},
    {"{\"task\": \"toy1d\", \"steps\": 2000000000}", "steps", "2000000000", 1},
    {"{\"task\": \"toy1d\", \"batch_size\": 70000}", "batch_size", "[1, 65536]", 1},
    {"{\"task\": \"toy1d\", \"seed\": -1}", "seed", "[0, 9007199254740991]", 1},
    {"{\"task\": \"toy1d\", \"seed\": 9007199254740992}", "seed", "9007199254740992", 1},
    {"{\"task\": \"toy1d\", \"seed\": \"1\"}", "seed", "not a string", 1},
    {"{\"task\": \"toy1d\", \"device\": \"gpu\"}", "device", "\"cuda:N\"", 1},
    {"{\"task\": \"toy1d\", \"device\": \"cuda:123\"}", "device", "\"cuda:123\"", 1},
    {"{\"task\": \"toy1d\", \"device\": \"cuda:\"}", "device", "\"cuda:\"", 1},
    {"{\"task\": \"toy1d\", \"device\": \"a-very-long-device-name\"}", "device", "at most 15", 1},
    {"{\"task\": \"toy1d\", \"tf32\": 1}", "tf32", "true or false", 1},
    {"{\"task\": \"toy1d\", \"eval_every\": -5}", "eval_every", "[0, 1000000000]", 1},
    {"{\"task\": \"toy1d\", \"eval_limit\": true}", "eval_limit", "not true", 1},
    /* Not JSON at all: no field, the place of the fault. */
    {"{\"task\": \"toy1d\",", "", "line 1", 0},
    {"{\"task\": \"toy1d\"}\n}", "", "line 2", 0},
    {"", "", "line", 0},
    {"{\"task\": \"toy1d\", \"task\": \"mwn\"}", "", "duplicate", 0},
    {"{\"task\": \"toy1d\", \"steps\": 1e400}", "", "line 1", 0},
    {"{\"task\": \"toy1d\", \"steps\": 99999999999999999999}", "", "line 1", 0},
};

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_specs / sizeof *bad_specs; i++) {
        const bad_spec *b = &bad_specs[i];
        eg_job j;
        eg_clear_error();
        if (eg_job_parse(b->text, strlen(b->text), &j) != -1)
            fail_msg("spec %s was accepted", b->text);
        const char *msg = eg_last_error();
        if (strcmp(eg_job_error_field(), b->field) != 0)
            fail_msg("spec %s: field \"%s\", expected \"%s\" (%s)", b->text,
                     eg_job_error_field(), b->field, msg);
        size_t n = strlen(b->field);
        if (n && (strncmp(msg, b->field, n) != 0 || strncmp(msg + n, ": ", 2) != 0))
            fail_msg("spec %s: message \"%s\" does not start with \"%s: \"", b->text, msg,
                     b->field);
        if (!strstr(msg, b->words))
            fail_msg("spec %s: message \"%s\" lacks \"%s\"", b->text, msg, b->words);
    }
    /* A path of 511 bytes fits dataset.path (512 with its NUL). */
    char text[1024], path[513];
    memset(path, 'p', 511);
    path[511] = '\0';
    snprintf(text, sizeof text, "{\"task\": \"rotation\", \"dataset\": {\"path\": \"%s\"}}",
             path);
    eg_job j = parse_ok(text);
    assert_int_equal(strlen(j.dataset.path), 511);
    path[511] = 'p';
    path[512] = '\0';
    snprintf(text, sizeof text, "{\"task\": \"rotation\", \"dataset\": {\"path\": \"%s\"}}",
             path);
    assert_int_equal(eg_job_parse(text, strlen(text), &j), -1);
    assert_string_equal(eg_job_error_field(), "dataset.path");
    assert_non_null(strstr(eg_last_error(), "at most 511"));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) fail_msg("cannot write %s", path);
}

/* The schema accepts every example and the defaulted spec of each, and
 * refuses the bad specs it can see. */
static void test_schema(void **state)
{
    (void)state;
    const char *tmp = tu_tmpdir();
    char valid[600], invalid[600], path[700];
    snprintf(valid, sizeof valid, "%s/valid", tmp);
    snprintf(invalid, sizeof invalid, "%s/invalid", tmp);
    assert_int_equal(mkdir(valid, 0700), 0);
    assert_int_equal(mkdir(invalid, 0700), 0);

    glob_t g;
    assert_int_equal(glob("schema/examples/*.json", 0, NULL, &g), 0);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        size_t len;
        const char *text = read_text(g.gl_pathv[i], &len);
        eg_job j;
        assert_int_equal(eg_job_parse(text, len, &j), 0);
        json_t *spec = eg_job_to_json(&j);
        char *out = json_dumps(spec, JSON_INDENT(2));
        snprintf(path, sizeof path, "%s/defaulted-%s", valid, strrchr(g.gl_pathv[i], '/') + 1);
        write_file(path, out);
        free(out);
        json_decref(spec);
    }
    globfree(&g);
    /* Every task's defaults. */
    for (int k = 0; eg_task_registry[k]; k++) {
        eg_job j;
        assert_int_equal(eg_job_defaults(eg_task_registry[k]->name, &j), 0);
        json_t *spec = eg_job_to_json(&j);
        char *out = json_dumps(spec, JSON_INDENT(2));
        snprintf(path, sizeof path, "%s/defaults-%s.json", valid, eg_task_registry[k]->name);
        write_file(path, out);
        free(out);
        json_decref(spec);
    }
    int n_invalid = 0;
    for (size_t i = 0; i < sizeof bad_specs / sizeof *bad_specs; i++) {
        if (!bad_specs[i].schema) continue;
        snprintf(path, sizeof path, "%s/bad-%02zu.json", invalid, i);
        write_file(path, bad_specs[i].text);
        n_invalid++;
    }
    assert_true(n_invalid > 50);
    char args[1400];
    snprintf(args, sizeof args, "--valid %s --invalid %s", valid, invalid);
    int rc = tu_python("validate_schema.py", args);
    if (rc != 0)
        fail_msg("validate_schema.py failed (exit %d; see its output above; a missing "
                 "jsonschema module is a failure: install python3-jsonschema)", rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),  cmocka_unit_test(test_overrides_in_spec),
        cmocka_unit_test(test_examples),  cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_splits),
        cmocka_unit_test(test_set),       cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
