/* The task registry: what meta/job.c, the API and the runners know of a
 * task. A task is its own files under tasks/ plus one entry in
 * tasks/registry.c; nothing else names its fields. */
#ifndef EG_TASK_DEF_H
#define EG_TASK_DEF_H

#include <stddef.h>

#include "meta/spec.h"

struct eg_job;
struct eg_task;
struct eg_backend;
struct json_t;

/* Which generic sections of a spec a task takes. */
enum {
    EG_TASKF_NO_MODEL = 1 << 0,        /* model is {"name": "none"} */
    EG_TASKF_NO_DATASET = 1 << 1,      /* dataset is {"name": "none"} */
    EG_TASKF_SPLITS = 1 << 2,          /* dataset.splits divides the training file */
    EG_TASKF_LABEL_NOISE = 1 << 3,     /* dataset.noise corrupts training labels */
    EG_TASKF_AUTO_MILESTONES = 1 << 4, /* optimizer.milestones may be "auto" */
};

/* Resolves one data path of a job in place (path holds cap bytes; field
 * is its dotted name, for messages): with dataset (a name as
 * eg_dataset_open takes it) the folder of that dataset, found in the data
 * roots when path is empty; with dataset NULL a file or folder that must
 * exist. 0, or -1 with eg_errorf naming field. */
typedef int (*eg_path_resolve_fn)(void *ctx, const char *field, const char *dataset, char *path,
                                  size_t cap);

typedef struct eg_task_def {
    const char *name;
    unsigned flags;
    /* Keys of the task's own section, the spec's object named after the
     * task; NULL when it has none. */
    const char *const *section_keys;
    /* Sets the task's defaults over the generic ones (and its section's). */
    void (*defaults)(struct eg_job *j);
    /* Reads the task's section (its obj NULL when absent) into j, after
     * every generic field is read, and checks what depends on both. */
    int (*read)(const eg_spec_scope *section, struct eg_job *j);
    /* The section, fully defaulted, as a new JSON object. */
    struct json_t *(*section_json)(const struct eg_job *j);
    /* Resolves the data paths of the task's section through resolve; NULL
     * when the task reads only dataset.path. */
    int (*paths)(struct eg_job *j, eg_path_resolve_fn resolve, void *ctx);
    /* The perturbation scopes EvoGrad's copies may take (evograd.perturb),
     * NULL-terminated, "all" first; NULL when the task has only "all". The
     * task maps the job's choice to eg_task.scope_off / scope_n. */
    const char *const *perturb_scopes;
    /* Builds the job's task on a backend (tasks/tasks.h). */
    int (*create)(const struct eg_job *job, struct eg_backend *be, struct eg_task **out);
} eg_task_def;

/* Every task, NULL-terminated (tasks/registry.c). */
extern const eg_task_def *const eg_task_registry[];

/* The task named name, or NULL. */
const eg_task_def *eg_task_find(const char *name);

/* The names of the tasks whose flags include flag (every task when flag is
 * 0) as "\"a\", \"b\"" into buf. */
const char *eg_task_names(unsigned flag, char *buf, size_t cap);

#endif
