/* The job's "ner" section: defaults (synthetic languages, a small encoder
 * trained from scratch), reader, JSON and data paths, shared with
 * metaxl's section (tasks/ner.h), and the ner task's registry entry. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "meta/spec.h"
#include "tasks/ner.h"
#include "tasks/tasks.h"

_Static_assert(sizeof(eg_ner_spec) <= EG_JOB_SECTION_BYTES, "ner section too big");

int eg_ner_create(const eg_job *job, eg_backend *be, eg_task **out);

static const char *const data_names[] = {"synthetic", "files"};
static const char *const model_names[] = {"scratch", "xlmr"};
static const char *const f1_names[] = {"default", "strict"};
#define COUNT(a) ((int)(sizeof a / sizeof *a))

void eg_ner_spec_defaults(eg_job *j, eg_ner_spec *s)
{
    j->optimizer = eg_optim_adam_defaults();
    j->optimizer.weight_decay = 5e-4f;
    j->epochs = 20;
    j->batch_size = 12;
    strcpy(s->data, "synthetic");
    s->source_size = 5000;
    s->target_size = 100;
    s->eval_size = 500;
    s->synth_seed = 1;
    s->synth_remap = 0.5;
    strcpy(s->model, "scratch");
    s->d = 64;
    s->layers = 2;
    s->heads = 4;
    s->ff = 128;
    s->dropout = 0.1;
    s->max_len = 200;
    s->warmup = 0.1;
    s->clip = 10;
    strcpy(s->f1_mode, "default");
}

int eg_ner_spec_read(const eg_spec_scope *s, eg_job *j, eg_ner_spec *n)
{
    EG_TRY(eg_spec_enum_str(s, "data", data_names, 0, COUNT(data_names), n->data,
                            sizeof n->data));
    EG_TRY(eg_spec_str(s, "source", n->source, sizeof n->source));
    EG_TRY(eg_spec_str(s, "target_train", n->target_train, sizeof n->target_train));
    EG_TRY(eg_spec_str(s, "target_dev", n->target_dev, sizeof n->target_dev));
    EG_TRY(eg_spec_str(s, "target_test", n->target_test, sizeof n->target_test));
    int files = strcmp(n->data, "files") == 0;
    const char *need[] = {"source", "target_train", "target_dev", "target_test"};
    const char *have[] = {n->source, n->target_train, n->target_dev, n->target_test};
    for (int i = 0; i < 4; i++) {
        if (files && !have[i][0])
            return eg_spec_fail(s->path, need[i], "is required with data \"files\" (a CoNLL "
                                "file: token<TAB>tag lines, blank lines between sentences)");
        if (!files && have[i][0])
            return eg_spec_fail(s->path, need[i], "applies only to data \"files\"");
    }
    if (files) n->source_size = n->eval_size = 0; /* every sentence unless the job says */
    EG_TRY(eg_spec_i(s, "source_size", 0, 10000000, &n->source_size));
    EG_TRY(eg_spec_i(s, "target_size", 0, 10000000, &n->target_size));
    EG_TRY(eg_spec_i(s, "eval_size", 0, 10000000, &n->eval_size));
    if (!files && (n->source_size < 1 || n->target_size < 1 || n->eval_size < 1))
        return eg_spec_fail(s->path, "source_size", "synthetic languages need source_size, "
                            "target_size and eval_size >= 1");
    EG_TRY(eg_spec_l(s, "synth_seed", 0, 1L << 53, &n->synth_seed));
    EG_TRY(eg_spec_num(s, "synth_remap", 0, 1, &n->synth_remap));
    EG_TRY(eg_spec_enum_str(s, "model", model_names, 0, COUNT(model_names), n->model,
                            sizeof n->model));
    EG_TRY(eg_spec_str(s, "checkpoint", n->checkpoint, sizeof n->checkpoint));
    int xlmr = strcmp(n->model, "xlmr") == 0;
    if (xlmr && !n->checkpoint[0])
        return eg_spec_fail(s->path, "checkpoint", "is required for model \"xlmr\" (a folder "
                            "with config.json, model.safetensors and sentencepiece.bpe.model)");
    if (!xlmr && n->checkpoint[0])
        return eg_spec_fail(s->path, "checkpoint", "applies only to model \"xlmr\"");
    EG_TRY(eg_spec_i(s, "d", 1, 4096, &n->d));
    EG_TRY(eg_spec_i(s, "layers", 1, 48, &n->layers));
    EG_TRY(eg_spec_i(s, "heads", 1, 64, &n->heads));
    EG_TRY(eg_spec_i(s, "ff", 1, 16384, &n->ff));
    if (n->d % n->heads)
        return eg_spec_fail(s->path, "heads", "%d does not divide d = %d", n->heads, n->d);
    EG_TRY(eg_spec_num(s, "dropout", 0, 0.9, &n->dropout));
    EG_TRY(eg_spec_i(s, "max_len", 3, 4096, &n->max_len));
    EG_TRY(eg_spec_num(s, "warmup", 0, 0.99, &n->warmup));
    EG_TRY(eg_spec_num(s, "clip", 0, 1e6, &n->clip));
    EG_TRY(eg_spec_enum_str(s, "f1_mode", f1_names, 0, COUNT(f1_names), n->f1_mode,
                            sizeof n->f1_mode));
    if (j->batch_size < 1 || j->batch_size > 1024)
        return eg_spec_fail(NULL, "batch_size", "%d sentences a language must lie in 1..1024",
                            j->batch_size);
    return 0;
}

json_t *eg_ner_spec_json(const eg_ner_spec *n)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:f, s:s, s:s, s:i, s:i, s:i, "
                     "s:i, s:f, s:i, s:f, s:f, s:s}",
                     "data", n->data, "source", n->source, "target_train", n->target_train,
                     "target_dev", n->target_dev, "target_test", n->target_test, "source_size",
                     n->source_size, "target_size", n->target_size, "eval_size", n->eval_size,
                     "synth_seed", (json_int_t)n->synth_seed, "synth_remap", n->synth_remap,
                     "model", n->model, "checkpoint", n->checkpoint, "d", n->d, "layers",
                     n->layers, "heads", n->heads, "ff", n->ff, "dropout", n->dropout, "max_len",
                     n->max_len, "warmup", n->warmup, "clip", n->clip, "f1_mode", n->f1_mode);
}

int eg_ner_spec_paths(eg_ner_spec *n, const char *section, eg_path_resolve_fn resolve, void *ctx)
{
    struct { const char *key; char *path; } p[] = {
        {"source", n->source},         {"target_train", n->target_train},
        {"target_dev", n->target_dev}, {"target_test", n->target_test},
        {"checkpoint", n->checkpoint},
    };
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) {
        char field[64];
        snprintf(field, sizeof field, "%s.%s", section, p[i].key);
        if (p[i].path[0]) EG_TRY(resolve(ctx, field, NULL, p[i].path, sizeof n->source));
    }
    return 0;
}

static void ner_defaults(eg_job *j)
{
    j->method = EG_METHOD_NONE;
    eg_ner_spec_defaults(j, EG_JOB_SECTION(j, eg_ner_spec));
}

static int ner_read(const eg_spec_scope *s, eg_job *j)
{
    if (j->method != EG_METHOD_NONE)
        return eg_spec_fail(NULL, "method", "task ner trains with method \"none\" (joint "
                            "training of the source and target languages; task metaxl "
                            "meta-learns)");
    return eg_ner_spec_read(s, j, EG_JOB_SECTION(j, eg_ner_spec));
}

static json_t *ner_json(const eg_job *j)
{
    return eg_ner_spec_json(EG_JOB_SECTION(j, const eg_ner_spec));
}

static int ner_paths(eg_job *j, eg_path_resolve_fn resolve, void *ctx)
{
    return eg_ner_spec_paths(EG_JOB_SECTION(j, eg_ner_spec), "ner", resolve, ctx);
}

static const char *const ner_keys[] = {EG_NER_KEYS, NULL};

const eg_task_def eg_ner_def = {
    .name = "ner",
    .flags = EG_TASKF_NO_MODEL | EG_TASKF_NO_DATASET,
    .section_keys = ner_keys,
    .defaults = ner_defaults,
    .read = ner_read,
    .section_json = ner_json,
    .paths = ner_paths,
    .create = eg_ner_create,
};
