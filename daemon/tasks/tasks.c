#include "tasks/tasks.h"

#include "util/err.h"

int eg_task_create(const eg_job *job, eg_backend *be, eg_task **out)
{
    *out = NULL;
    if (!job->task) return eg_errorf("task: the job names none");
    return job->task->create(job, be, out);
}

long eg_task_total_steps(const eg_job *job, const eg_task *t)
{
    return job->steps > 0 ? job->steps : (long)job->epochs * t->steps_per_epoch;
}

eg_loop_config eg_task_loop_config(const eg_job *job, const eg_task *t)
{
    return (eg_loop_config){
        .method = job->method,
        .evo = job->evograd,
        .meta_opt = t->meta_opt ? *t->meta_opt : job->meta_optimizer,
        .steps = eg_task_total_steps(job, t),
        .eval_every = job->eval_every > 0 ? job->eval_every : t->steps_per_epoch,
        .seed = job->seed,
    };
}

void eg_task_destroy(eg_task *t)
{
    if (t) t->ops->destroy(t);
}

static const char *const *data_roots;

void eg_tasks_set_data_roots(const char *const *roots) { data_roots = roots; }

const char *const *eg_tasks_data_roots(void) { return data_roots; }
