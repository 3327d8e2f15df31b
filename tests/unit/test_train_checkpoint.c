/* Checkpoints: a run saved after some steps and resumed in a fresh task
 * gives the very losses of an uninterrupted run; a checkpoint of another
 * job, one cut anywhere, one with any flipped byte and a missing one are
 * each refused with the message that names the cause, and the run's state
 * is left as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meta/loop.h"
#include "tasks/mwn.h"
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
    eg_job_defaults("mwn", &job);
    job.method = method;
    snprintf(job.model.name, sizeof job.model.name, "resnet20");
    job.batch_size = 4;
    EG_JOB_SECTION(&job, eg_mwn_spec)->meta_samples = 40;
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

/* A run of job's task, ready to load a checkpoint into. */
typedef struct fresh {
    eg_backend *be;
    eg_task *t;
    eg_run run;
} fresh;

static void fresh_open(fresh *f, const eg_job *job)
{
    f->be = tu_cpu();
    if (eg_task_create(job, f->be, &f->t) != 0) fail_msg("task: %s", eg_last_error());
    eg_loop_config cfg = eg_task_loop_config(job, f->t);
    assert_int_equal(eg_run_init(&f->run, f->t, &cfg), 0);
}

static void fresh_close(fresh *f)
{
    eg_run_free(&f->run);
    eg_task_destroy(f->t);
    f->be->destroy(f->be);
}

/* Loading path into f must fail with a message holding `what`. */
static void refused(fresh *f, const char *path, const char *what)
{
    assert_int_equal(eg_run_load(&f->run, path), -1);
    if (!strstr(eg_last_error(), what) || !strstr(eg_last_error(), path))
        fail_msg("loading %s: \"%s\" does not say \"%s\"", path, eg_last_error(), what);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    fseek(in, 0, SEEK_END);
    *n = (size_t)ftell(in);
    rewind(in);
    char *buf = malloc(*n);
    assert_int_equal(fread(buf, 1, *n, in), *n);
    fclose(in);
    return buf;
}

static void spill(const char *path, const char *buf, size_t n)
{
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(buf, 1, n, out), n);
    assert_int_equal(fclose(out), 0);
}

static void test_refuses_other_jobs(void **s)
{
    eg_job job = small_mwn(EG_METHOD_EVOGRAD);
    char path[600];
    snprintf(path, sizeof path, "%s/run.ckpt", tu_tmpdir());
    losses l;
    run_steps(&job, 0, 1, NULL, path, &l);
    eg_job other = job;
    snprintf(other.model.name, sizeof other.model.name, "mlp");
    fresh f;
    fresh_open(&f, &other);
    refused(&f, path, "where this job has");
    refused(&f, "/nonexistent/x.ckpt", "cannot open");
    fresh_close(&f);
}

/* Cut at many points, the file says it is truncated; with any one of many
 * bytes flipped, that it is corrupted (or, in a header, what it holds). */
static void test_refuses_damaged(void **s)
{
    eg_job job = small_mwn(EG_METHOD_EVOGRAD);
    const char *dir = tu_tmpdir();
    char path[600], bad[600];
    snprintf(path, sizeof path, "%s/whole.ckpt", dir);
    snprintf(bad, sizeof bad, "%s/damaged.ckpt", dir);
    losses l;
    run_steps(&job, 0, 1, NULL, path, &l);
    size_t n;
    char *buf = slurp(path, &n);
    fresh f;
    fresh_open(&f, &job);
    float theta0 = 0;
    assert_int_equal(f.be->download(f.be, &theta0, f.t->theta, sizeof theta0), 0);
    /* Cuts: inside the header, an item's name, its size and its payload. */
    for (size_t cut = 0; cut < n; cut += cut < 256 ? 7 : n / 13) {
        spill(bad, buf, cut);
        refused(&f, bad, "truncated");
    }
    spill(bad, buf, n - 1);
    refused(&f, bad, "truncated");
    /* One flipped bit anywhere past the magic: a payload byte, the
     * checksum itself or a header field. */
    for (size_t at = 8; at < n; at += at < 256 ? 5 : n / 17) {
        buf[at] ^= 0x10;
        spill(bad, buf, n);
        assert_int_equal(eg_run_load(&f.run, bad), -1);
        const char *e = eg_last_error();
        if (!strstr(e, "corrupted") && !strstr(e, "where this job has") &&
            !strstr(e, "truncated") && !strstr(e, "not a checkpoint of this job"))
            fail_msg("flipped byte %zu: \"%s\"", at, e);
        buf[at] ^= 0x10;
    }
    buf[n - 2] ^= 1; /* the checksum */
    spill(bad, buf, n);
    refused(&f, bad, "corrupted");
    buf[n - 2] ^= 1;
    buf[n / 2] ^= 1; /* a payload byte */
    spill(bad, buf, n);
    refused(&f, bad, "corrupted");
    buf[n / 2] ^= 1;
    buf[0] ^= 1;
    spill(bad, buf, n);
    refused(&f, bad, "not a checkpoint");
    buf[0] ^= 1;
    /* Nothing was loaded; the whole file still loads. */
    float theta = 0;
    assert_int_equal(f.be->download(f.be, &theta, f.t->theta, sizeof theta), 0);
    assert_true(theta == theta0);
    assert_int_equal(f.run.step, 0);
    spill(bad, buf, n);
    if (eg_run_load(&f.run, bad) != 0) fail_msg("load: %s", eg_last_error());
    assert_int_equal(f.run.step, 1);
    fresh_close(&f);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_evograd),
        cmocka_unit_test(test_resume_t1t2),
        cmocka_unit_test(test_refuses_other_jobs),
        cmocka_unit_test(test_refuses_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
