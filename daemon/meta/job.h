/* A job: one meta-learning run, as described by a JSON job spec
 * (schema/job.schema.json). The foreground runner (`evogradd run`) and the
 * daemon parse specs into this struct, with every default filled in and
 * every field validated. */
#ifndef EG_JOB_H
#define EG_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "meta/method.h"
#include "meta/task_def.h"
#include "nn/optim.h"

/* Bytes of a job's task section (each task's own struct, EG_JOB_SECTION). */
#define EG_JOB_SECTION_BYTES 8192

/* A split of a dataset's training file: a fraction of its samples (the
 * first ones for training, the last ones for validation) when fraction > 0,
 * else the sample range [begin, end). */
typedef struct eg_split {
    double fraction;
    long begin, end;
} eg_split;

typedef struct eg_job {
    const eg_task_def *task;
    eg_method method;
    struct {
        char name[32];      /* lenet, mlp, resnet20/32/44/56 */
        int width;          /* ResNet width multiplier */
    } model;
    struct {
        char name[32];      /* fashion-mnist, mnist, cifar10, cifar100 */
        char path[512];     /* "" = the dataset's default folder */
        char noise[16];     /* none, uniform, flip (mwn) */
        double noise_rate;  /* in [0, 1] */
        eg_split train, validation; /* rotation: the training file's parts */
    } dataset;
    eg_optim_config optimizer;       /* the base model's */
    int auto_milestones;             /* 1: the task sets optimizer's
                                        milestones at 2/3 and 5/6 of the
                                        total steps (mwn's default; spec
                                        "milestones": "auto"), see
                                        eg_job_auto_milestones */
    eg_optim_config meta_optimizer;  /* λ's */
    eg_evograd_opts evograd;
    int epochs;
    long steps;             /* > 0 overrides epochs */
    int batch_size;
    uint64_t seed;
    char device[16];        /* cpu, cuda, cuda:N, auto */
    int tf32;               /* TF32 tensor cores on a GPU: faster convolutions
                               and GEMM at about 1e-3 relative precision */
    long eval_every;        /* steps between evaluations; 0 = each epoch */
    int eval_limit;         /* test samples per evaluation; 0 = all */
    /* The task's own section: the struct its files define, reached with
     * EG_JOB_SECTION. */
    _Alignas(16) unsigned char section[EG_JOB_SECTION_BYTES];
} eg_job;

/* The task section of job j as the task's struct type (whose size its
 * file checks against EG_JOB_SECTION_BYTES). */
#define EG_JOB_SECTION(j, type) ((type *)(void *)(j)->section)

struct json_t;

/* The job with every default of the task named `task` filled in: what a
 * spec holding only {"task": ...} gives; -1 with eg_errorf for a name the
 * registry does not hold. */
int eg_job_defaults(const char *task, eg_job *out);

/* Fills *out from a parsed JSON job spec: the task's defaults, then every
 * field the spec gives, each checked for its JSON type, range and
 * consistency with the rest. Unknown fields are errors. On error returns -1
 * after eg_errorf() with a message that starts with the field's dotted path
 * ("evograd.sigma: ..."), which eg_job_error_field() then returns. *out is
 * always overwritten, and meaningless after an error. */
int eg_job_from_json(const struct json_t *spec, eg_job *out);

/* The dotted path of the field the last failed eg_job_* call of this thread
 * refused ("optimizer.milestones[1]"), or "" when the error was not about one
 * field (malformed JSON, a spec that is not an object). */
const char *eg_job_error_field(void);

/* Parses JSON text (len bytes, no NUL needed, duplicate keys refused) into a
 * new reference to any JSON value (eg_job_from_json refuses what is not a
 * spec); NULL after eg_errorf() naming the line and column of the first
 * syntax error. */
struct json_t *eg_job_json_load(const char *text, size_t len);

/* eg_job_json_load followed by eg_job_from_json. */
int eg_job_parse(const char *text, size_t len, eg_job *out);

/* The fully defaulted spec of a valid job (a new reference, NULL when out
 * of memory): eg_job_from_json of it gives back the same job. */
struct json_t *eg_job_to_json(const eg_job *job);

/* Applies a command-line override "a.b.c=VALUE" to a spec object: VALUE is
 * taken as JSON when it parses as JSON (numbers, true/false, "quoted
 * strings", objects, arrays), else as a plain string; intermediate objects
 * are created as needed. VALUE null removes the field, so that its default
 * applies. Returns -1 with eg_errorf() (and the field recorded for
 * eg_job_error_field) when the assignment is malformed or a path component
 * exists but is not an object. */
int eg_job_set(struct json_t *spec, const char *assignment);

/* The same with the value given: field "a.b.c" of spec gets a copy of
 * value (null: the field is removed). */
int eg_job_set_value(struct json_t *spec, const char *field, struct json_t *value);

/* Whether the job's task splits its training file by dataset.splits
 * (EG_TASKF_SPLITS). */
int eg_job_uses_splits(const eg_job *job);

/* The sample ranges of job's training and validation splits over a
 * training file of n samples: range[0] = [begin, end) of training,
 * range[1] of validation. A fraction f gives round(f n) samples. -1 with
 * eg_errorf ("dataset.splits.train: ...", the field also for
 * eg_job_error_field) when a split is empty, passes n or the two overlap. */
int eg_job_splits_resolve(const eg_job *job, long n, long range[2][2]);

/* The milestones job->auto_milestones stands for, for a run of total_steps
 * steps: 2/3 and 5/6 of it (those that are >= 1 and distinct), written into
 * cfg (the job's optimizer config, whose gamma applies). Leaves cfg alone
 * when job->auto_milestones is 0. */
void eg_job_auto_milestones(const eg_job *job, long total_steps, eg_optim_config *cfg);

#endif
