/* The meta-learning problems: one file (or folder) per task, each an
 * implementation of meta/task.h built from a job, listed in the task
 * registry (tasks/registry.c, meta/task_def.h). */
#ifndef EG_TASKS_H
#define EG_TASKS_H

#include "meta/job.h"
#include "meta/loop.h"
#include "meta/task.h"

/* Builds the job's task on backend be (its registry entry's create):
 * loads and prepares its data, builds and initialises the base model (θ)
 * and the meta-parameters (λ) from job->seed. *out is freed with
 * eg_task_destroy. */
int eg_task_create(const eg_job *job, eg_backend *be, eg_task **out);


/* Total steps of the job: job->steps if set, else epochs x steps per epoch. */
long eg_task_total_steps(const eg_job *job, const eg_task *t);

/* The training loop's configuration for job on its task t: its method,
 * optimisers, seed, eg_task_total_steps steps and evaluations every
 * job->eval_every steps (each epoch when 0); no cancel flag. */
eg_loop_config eg_task_loop_config(const eg_job *job, const eg_task *t);

void eg_task_destroy(eg_task *t);

/* The folders a task may read files from that a job names only
 * indirectly (images listed in a file list): NULL-terminated real paths,
 * or NULL (the default) for anywhere. The daemon sets its data roots once
 * at start; the foreground runner leaves the default. */
void eg_tasks_set_data_roots(const char *const *roots);
const char *const *eg_tasks_data_roots(void);

#endif
