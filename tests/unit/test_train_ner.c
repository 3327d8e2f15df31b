/* The ner task learns: joint training on the synthetic source and target
 * languages lifts the target's dev F1 from where the untrained model
 * starts to well above it, and the test F1 follows. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "meta/job.h"
#include "meta/loop.h"
#include "tasks/tasks.h"
#include "testutil.h"

typedef struct f1s {
    int n;
    double dev[16], test[16];
} f1s;

static int on_eval(void *ctx, long step, const eg_eval *ev)
{
    f1s *f = ctx;
    if (f->n < 16) {
        f->dev[f->n] = ev->dev_f1;
        f->test[f->n] = ev->test_f1;
    }
    f->n++;
    return 0;
}

static void test_learns(void **state)
{
    const char *text =
        "{\"task\": \"ner\", \"device\": \"cpu\", \"seed\": 2, \"batch_size\": 12, \"steps\": 240, "
        "\"eval_every\": 40, \"optimizer\": {\"kind\": \"adam\", \"lr\": 0.002}, "
        "\"ner\": {\"source_size\": 1000, \"target_size\": 60, \"eval_size\": 200, \"d\": 32, "
        "\"layers\": 1, \"heads\": 4, \"ff\": 64, \"max_len\": 48}}";
    eg_job job;
    if (eg_job_parse(text, strlen(text), &job) != 0) fail_msg("spec: %s", eg_last_error());
    eg_backend *be = tu_cpu();
    eg_task *t;
    if (eg_task_create(&job, be, &t) != 0) fail_msg("ner: %s", eg_last_error());
    /* The untrained model's F1. */
    eg_eval start = {.dev_f1 = NAN};
    assert_int_equal(t->ops->evaluate(t, &start), 0);
    f1s f = {0};
    eg_loop_sink sink = {.ctx = &f, .eval = on_eval};
    eg_loop_config cfg = eg_task_loop_config(&job, t);
    eg_loop_result res;
    if (eg_loop_run(t, &cfg, &sink, &res) != 0) fail_msg("run: %s", eg_last_error());
    eg_task_destroy(t);
    be->destroy(be);
    fprintf(stderr, "dev F1: start %.2f", start.dev_f1);
    for (int i = 0; i < f.n && i < 16; i++) fprintf(stderr, ", %.2f", f.dev[i]);
    fprintf(stderr, "; test F1 at the end %.2f\n", f.test[f.n - 1]);
    assert_int_equal(f.n, 6);
    double end = f.dev[f.n - 1];
    assert_true(start.dev_f1 < 20);
    assert_true(end > start.dev_f1 + 25);
    assert_true(f.test[f.n - 1] > start.test_f1 + 25);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_learns)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
