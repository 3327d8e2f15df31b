/* The job's "metaxl" section: ner's keys (tasks/ner_spec.c) and the RTN's
 * bottleneck; MetaXL's defaults (EvoGrad perturbing the classifier only,
 * the RTN's Adam at 1e-6); the task's registry entry. */
#include <jansson.h>
#include <string.h>

#include "meta/spec.h"
#include "tasks/metaxl.h"
#include "tasks/tasks.h"

_Static_assert(sizeof(eg_metaxl_spec) <= EG_JOB_SECTION_BYTES, "metaxl section too big");

int eg_metaxl_create(const eg_job *job, eg_backend *be, eg_task **out);

/* EvoGrad's scopes: every parameter, or the token classifier only. */
static const char *const perturb_scopes[] = {"all", "classifier", NULL};

static void metaxl_defaults(eg_job *j)
{
    eg_metaxl_spec *s = EG_JOB_SECTION(j, eg_metaxl_spec);
    eg_ner_spec_defaults(j, &s->ner);
    j->method = EG_METHOD_EVOGRAD;
    j->evograd.perturb = 1; /* the classifier, as the official code perturbs it */
    j->meta_optimizer = eg_optim_adam_defaults();
    j->meta_optimizer.lr = 1e-6f;
    j->meta_optimizer.weight_decay = 5e-4f;
}

static int metaxl_read(const eg_spec_scope *s, eg_job *j)
{
    eg_metaxl_spec *m = EG_JOB_SECTION(j, eg_metaxl_spec);
    EG_TRY(eg_ner_spec_read(s, j, &m->ner));
    EG_TRY(eg_spec_i(s, "bottleneck", 0, 65536, &m->bottleneck));
    if (j->batch_size < 2)
        return eg_spec_fail(NULL, "batch_size", "%d: the target batch is split in two halves "
                            "(inner and outer), so it needs at least 2", j->batch_size);
    return 0;
}

static json_t *metaxl_json(const eg_job *j)
{
    const eg_metaxl_spec *m = EG_JOB_SECTION(j, const eg_metaxl_spec);
    json_t *o = eg_ner_spec_json(&m->ner);
    if (o) json_object_set_new(o, "bottleneck", json_integer(m->bottleneck));
    return o;
}

static int metaxl_paths(eg_job *j, eg_path_resolve_fn resolve, void *ctx)
{
    return eg_ner_spec_paths(&EG_JOB_SECTION(j, eg_metaxl_spec)->ner, "metaxl", resolve, ctx);
}

static const char *const metaxl_keys[] = {EG_NER_KEYS, "bottleneck", NULL};

const eg_task_def eg_metaxl_def = {
    .name = "metaxl",
    .flags = EG_TASKF_NO_MODEL | EG_TASKF_NO_DATASET,
    .section_keys = metaxl_keys,
    .defaults = metaxl_defaults,
    .read = metaxl_read,
    .section_json = metaxl_json,
    .paths = metaxl_paths,
    .perturb_scopes = perturb_scopes,
    .create = eg_metaxl_create,
};
