/* Checkpoints: a run saved after some steps and resumed in a fresh task
 * gives the very losses of an uninterrupted run; a checkpoint of another
 * job, or a cut one, is refused with a message. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "meta/loop.h"
#include "tasks/tasks.h"
#include "testutil.h"

#define STEPS 6
#define SPLIT 3

typedef struct losses {
    double train[STEPS], meta[STEPS];
} losses;

static eg_job small_mwn(eg_method method)
{
    eg_job job;
    eg_job_defaults(EG_TASK_MWN, &job);
    job.method = method;
    snprintf(job.model.name, sizeof job.model.name, "resnet20");
    job.batch_size = 4;
    job.mwn.meta_samples = 40;
    job.steps = STEPS;
    return job;
}

/* Runs steps [from, to) of job, loading `load` first and saving `save`
 * after, each when not NULL. */
static void run_steps(const eg_job *job, long from, long to, const char *load,
                      const char *save, losses *out)
{
    eg_backend *be = tu_cpu();
    eg_task *t;
    if (eg_task_create(job, be, &t) != 0) fail_msg("task: %s", eg_last_error());
    eg_loop_config cfg = {.method = job->method, .evo = job->evograd,
                          .meta_opt = job->meta_optimizer, .steps = job->steps,
                          .seed = job->seed};
    eg_run run;
    assert_int_equal(eg_run_init(&run, t, &cfg), 0);
    if (load && eg_run_load(&run, load) != 0) fail_msg("load: %s", eg_last_error());
    assert_int_equal(run.step, from);
    while (run.step < to) {
        eg_step_record r;
        if (eg_run_step(&run, &r) != 0) fail_msg("step: %s", eg_last_error());
        out->train[r.step] = r.train_loss;
        out->meta[r.step] = r.meta_loss;
    }
    if (save) assert_int_equal(eg_run_save(&run, save), 0);
    eg_run_free(&run);
    eg_task_destroy(t);
    be->destroy(be);
}

static void resume_matches(eg_method method)
{
    eg_job job = small_mwn(method);
    char path[600];
    snprintf(path, sizeof path, "%s/run.ckpt", tu_tmpdir());
    losses whole, parts;
    run_steps(&job, 0, STEPS, NULL, NULL, &whole);
    run_steps(&job, 0, SPLIT, NULL, path, &parts);
    run_steps(&job, SPLIT, STEPS, path, NULL, &parts);
    for (int s = 0; s < STEPS; s++) {
        fprintf(stderr, "%s step %d: loss %.9g / %.9g\n", eg_method_name(method), s,
                whole.train[s], parts.train[s]);
        assert_true(whole.train[s] == parts.train[s]);
        if (method != EG_METHOD_NONE) assert_true(whole.meta[s] == parts.meta[s]);
    }
}

static void test_resume_evograd(void **s) { resume_matches(EG_METHOD_EVOGRAD); }

static void test_resume_t1t2(void **s) { resume_matches(EG_METHOD_T1T2); }

static void test_refuses_other_jobs(void **s)
{
    eg_job job = small_mwn(EG_METHOD_EVOGRAD);
    const char *dir = tu_tmpdir();
    char path[600], cut[600];
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    snprintf(cut, sizeof cut, "%s/cut.ckpt", dir);
    losses l;
    run_steps(&job, 0, 1, NULL, path, &l);

    eg_backend *be = tu_cpu();
    eg_task *t;
    eg_job other = job;
    snprintf(other.model.name, sizeof other.model.name, "mlp");
    assert_int_equal(eg_task_create(&other, be, &t), 0);
    eg_loop_config cfg = {.method = other.method, .evo = other.evograd,
                          .meta_opt = other.meta_optimizer, .steps = 2, .seed = 1};
    eg_run run;
    assert_int_equal(eg_run_init(&run, t, &cfg), 0);
    assert_int_equal(eg_run_load(&run, path), -1);
    fprintf(stderr, "%s\n", eg_last_error());
    assert_non_null(strstr(eg_last_error(), "run.ckpt"));

    /* A file cut short is refused too. */
    FILE *in = fopen(path, "rb"), *outf = fopen(cut, "wb");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n / 2, outf);
    fclose(in);
    fclose(outf);
    assert_int_equal(eg_run_load(&run, cut), -1);
    assert_int_equal(eg_run_load(&run, "/nonexistent/x.ckpt"), -1);
    assert_non_null(strstr(eg_last_error(), "/nonexistent/x.ckpt"));
    eg_run_free(&run);
    eg_task_destroy(t);
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_evograd),
        cmocka_unit_test(test_resume_t1t2),
        cmocka_unit_test(test_refuses_other_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
