/* The ner task (token classification, joint training of a source and a
 * target language):
 *  - its spec section: defaults, and bad fields named;
 *  - bad data: a missing file, a malformed CoNLL file, a missing
 *    checkpoint, each naming what is wrong;
 *  - a short run on CoNLL files written by the synthetic-language
 *    generator logs dev and test F1, and the summary names the best-dev
 *    evaluation;
 *  - a short run of an XLM-R-shaped checkpoint (tests/parity/roberta_ref.py,
 *    F32 weights and a SentencePiece model the test trains);
 *  - a run resumed from a checkpoint ends bit for bit where one run does;
 *  - the linear warm-up / decay schedule and gradient clipping. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/synth_lang.h"
#include "meta/job.h"
#include "meta/loop.h"
#include "nn/optim.h"
#include "tasks/ner.h"
#include "tasks/tasks.h"
#include "task_checks.h"
#include "testutil.h"

static eg_backend *cpu;

static int open_cpu(void **state)
{
    cpu = eg_cpu_backend_create();
    return cpu ? 0 : -1;
}

static int close_cpu(void **state)
{
    cpu->destroy(cpu);
    return 0;
}

/* Appends `"key": value, ` for each default whose key extra does not set. */
static size_t put_defaults(char *buf, size_t cap, const char *const (*d)[2], size_t n,
                           const char *extra)
{
    size_t used = 0;
    char key[48];
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "\"%s\"", d[i][0]);
        if (!strstr(extra, key))
            used += (size_t)snprintf(buf + used, cap - used, "%s: %s, ", key, d[i][1]);
    }
    return used;
}

/* A small ner job: the synthetic languages unless extra (", KEY: VALUE"
 * fields of the ner section) says otherwise; extra's keys replace the
 * defaults below. */
static void tiny_job(const char *extra, eg_job *job)
{
    static const char *const defaults[][2] = {
        {"d", "16"}, {"layers", "1"}, {"heads", "2"}, {"ff", "32"}, {"max_len", "40"}};
    char text[8192], ner[512];
    put_defaults(ner, sizeof ner, defaults, sizeof defaults / sizeof *defaults, extra);
    snprintf(text, sizeof text,
             "{\"task\": \"ner\", \"device\": \"cpu\", \"seed\": 5, \"batch_size\": 6, "
             "\"optimizer\": {\"kind\": \"adam\", \"lr\": 0.003, \"weight_decay\": 0.0005}, "
             "\"ner\": {%s\"warmup\": 0.1%s}}",
             ner, extra);
    if (eg_job_parse(text, strlen(text), job) != 0) fail_msg("spec refused: %s", eg_last_error());
}

static eg_task *make_task(const eg_job *job)
{
    eg_task *t = NULL;
    if (eg_task_create(job, cpu, &t) != 0) fail_msg("ner: %s", eg_last_error());
    return t;
}

static void test_spec(void **state)
{
    eg_job j;
    assert_int_equal(eg_job_defaults("ner", &j), 0);
    const eg_ner_spec *s = EG_JOB_SECTION(&j, const eg_ner_spec);
    assert_string_equal(s->data, "synthetic");
    assert_int_equal(s->target_size, 100);
    assert_int_equal(s->max_len, 200);
    assert_true(s->warmup == 0.1 && s->clip == 10);
    assert_int_equal(j.batch_size, 12);
    assert_true(j.optimizer.kind == EG_OPT_ADAM && j.optimizer.eps == 1e-8f &&
                j.optimizer.weight_decay == 5e-4f);
    struct { const char *text, *field, *words; } bad[] = {
        {"{\"task\": \"ner\", \"method\": \"evograd\"}", "method", "\"none\""},
        {"{\"task\": \"ner\", \"ner\": {\"data\": \"files\"}}", "ner.source", "required"},
        {"{\"task\": \"ner\", \"ner\": {\"source\": \"/x\"}}", "ner.source", "\"files\""},
        {"{\"task\": \"ner\", \"ner\": {\"model\": \"xlmr\"}}", "ner.checkpoint", "required"},
        {"{\"task\": \"ner\", \"ner\": {\"checkpoint\": \"/x\"}}", "ner.checkpoint", "\"xlmr\""},
        {"{\"task\": \"ner\", \"ner\": {\"d\": 30, \"heads\": 4}}", "ner.heads", "divide"},
        {"{\"task\": \"ner\", \"ner\": {\"max_len\": 2}}", "ner.max_len", "3"},
        {"{\"task\": \"ner\", \"ner\": {\"f1_mode\": \"lenient\"}}", "ner.f1_mode", "strict"},
        {"{\"task\": \"ner\", \"ner\": {\"colour\": 1}}", "ner.colour", "unknown"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        eg_job k;
        eg_clear_error();
        if (eg_job_parse(bad[i].text, strlen(bad[i].text), &k) != -1)
            fail_msg("accepted: %s", bad[i].text);
        if (!strstr(eg_last_error(), bad[i].field) || !strstr(eg_last_error(), bad[i].words))
            fail_msg("%s: got \"%s\", wanted %s ... %s", bad[i].text, eg_last_error(),
                     bad[i].field, bad[i].words);
    }
}

static char synth_dir[600];

/* The synthetic languages as CoNLL files, written once. */
static const char *synth_files(void)
{
    if (!synth_dir[0]) {
        snprintf(synth_dir, sizeof synth_dir, "%s/synth", tu_tmpdir());
        eg_synth_ner_opts o = eg_synth_ner_defaults();
        o.source_train = 300;
        o.target_train = 60;
        o.dev = o.test = 60;
        if (eg_synth_ner_write(synth_dir, &o) != 0) fail_msg("synth: %s", eg_last_error());
    }
    return synth_dir;
}

/* tiny_job on the synthetic languages' CoNLL files. */
static void files_job(const char *extra, eg_job *job)
{
    const char *d = synth_files();
    char paths[4][700];
    static const char *const keys[4] = {"source", "target_train", "target_dev", "target_test"};
    static const char *const files[4] = {"src/train.txt", "tgt/train.txt", "tgt/dev.txt",
                                         "tgt/test.txt"};
    const char *defaults[5][2] = {{"data", "\"files\""}};
    for (int i = 0; i < 4; i++) {
        snprintf(paths[i], sizeof paths[i], "\"%s/%s\"", d, files[i]);
        defaults[i + 1][0] = keys[i];
        defaults[i + 1][1] = paths[i];
    }
    char more[6000];
    size_t n = put_defaults(more + 2, sizeof more - 2, (const char *const (*)[2])defaults, 5, extra);
    more[0] = ',';
    more[1] = ' ';
    snprintf(more + n, sizeof more - n, "%s", extra); /* over the last ", " */
    tiny_job(more, job);
}

static void test_bad_data(void **state)
{
    eg_job job;
    eg_task *t;
    files_job(", \"target_dev\": \"/nonexistent/dev.txt\"", &job);
    tu_fails_with(eg_task_create(&job, cpu, &t), "ner.target_dev: /nonexistent/dev.txt");
    char bad[700];
    snprintf(bad, sizeof bad, "%s/bad.txt", tu_tmpdir());
    FILE *f = fopen(bad, "w");
    fputs("Anna\tB-PER\nwalks\tO\n\nto\tO\nRome\tX-LOC\n", f);
    fclose(f);
    char extra[900];
    snprintf(extra, sizeof extra, ", \"target_test\": \"%s\"", bad);
    files_job(extra, &job);
    tu_fails_with(eg_task_create(&job, cpu, &t), "bad.txt:5: bad tag \"X-LOC\"");
    tiny_job(", \"model\": \"xlmr\", \"checkpoint\": \"/nonexistent/xlmr\"", &job);
    tu_fails_with(eg_task_create(&job, cpu, &t), "/nonexistent/xlmr/config.json");
}

typedef struct evals_seen {
    int n;
    eg_eval first, last;
} evals_seen;

static int on_eval(void *ctx, long step, const eg_eval *ev)
{
    evals_seen *e = ctx;
    if (!e->n) e->first = *ev;
    e->last = *ev;
    e->n++;
    return 0;
}

/* Runs job to its end; its evaluations into *e, the task's report into
 * *report (a new object). */
static void run_job(const eg_job *job, evals_seen *e, json_t **report)
{
    eg_task *t = make_task(job);
    memset(e, 0, sizeof *e);
    eg_loop_sink sink = {.ctx = e, .eval = on_eval};
    eg_loop_config cfg = eg_task_loop_config(job, t);
    eg_loop_result res;
    if (eg_loop_run(t, &cfg, &sink, &res) != 0) fail_msg("run failed: %s", eg_last_error());
    *report = json_object();
    assert_int_equal(t->ops->report(t, *report), 0);
    eg_task_destroy(t);
}

static void test_files_run(void **state)
{
    eg_job job;
    files_job("", &job);
    job.steps = 12;
    job.eval_every = 6;
    evals_seen e;
    json_t *rep;
    run_job(&job, &e, &rep);
    assert_int_equal(e.n, 2);
    assert_true(e.last.dev_f1 >= 0 && e.last.dev_f1 <= 100);
    assert_true(e.last.test_f1 >= 0 && e.last.test_f1 <= 100);
    assert_true(isfinite(e.last.test_loss) && e.last.test_loss > 0);
    assert_true(isnan(e.last.test_acc));
    json_t *n = json_object_get(rep, "ner");
    assert_int_equal(json_integer_value(json_object_get(n, "labels")), 9);
    assert_int_equal(json_integer_value(json_object_get(n, "source_sentences")), 300);
    assert_int_equal(json_integer_value(json_object_get(n, "target_sentences")), 60);
    long best = (long)json_integer_value(json_object_get(n, "best_step"));
    assert_true(best == 6 || best == 12);
    const eg_eval *at = best == 6 ? &e.first : &e.last;
    assert_float_equal(json_number_value(json_object_get(n, "test_f1_at_best_dev")), at->test_f1,
                       1e-4);
    assert_true(at->dev_f1 >= (best == 6 ? e.last.dev_f1 : e.first.dev_f1));
    json_decref(rep);
}

/* An XLM-R-shaped checkpoint with a SentencePiece model: the job loads it
 * (classifier included), tokenises with it and trains. */
static void test_xlmr_run(void **state)
{
    char dir[700], args[2000], text[800];
    snprintf(dir, sizeof dir, "%s/xlmr", tu_tmpdir());
    mkdir(dir, 0755);
    snprintf(args, sizeof args, "make %s F32 7 9 210 60", dir);
    int rc = tu_python("roberta_ref.py", args);
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    /* SentencePiece text: the source language's words, one sentence a line. */
    snprintf(text, sizeof text, "%s/text.txt", dir);
    char src[700];
    snprintf(src, sizeof src, "%s/src/train.txt", synth_files());
    FILE *in = fopen(src, "r"), *out = fopen(text, "w");
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = '\0';
            fprintf(out, "%s ", line);
        } else {
            fputc('\n', out);
        }
    }
    fclose(in);
    fclose(out);
    snprintf(args, sizeof args, "spm %s %s 200", dir, text);
    assert_int_equal(tu_python("roberta_ref.py", args), 0);
    char extra[1200];
    snprintf(extra, sizeof extra, ", \"model\": \"xlmr\", \"checkpoint\": \"%s\", \"max_len\": 50",
             dir);
    eg_job job;
    files_job(extra, &job);
    job.steps = 4;
    evals_seen e;
    json_t *rep;
    run_job(&job, &e, &rep);
    assert_int_equal(e.n, 1);
    assert_true(isfinite(e.last.dev_f1) && isfinite(e.last.test_loss));
    json_t *n = json_object_get(rep, "ner");
    assert_int_equal(json_integer_value(json_object_get(n, "vocab")), 202);
    json_decref(rep);
    /* Positions run out: max_len beyond what the checkpoint's table holds. */
    snprintf(extra, sizeof extra, ", \"model\": \"xlmr\", \"checkpoint\": \"%s\", \"max_len\": 59",
             dir);
    files_job(extra, &job);
    eg_task *t;
    tu_fails_with(eg_task_create(&job, cpu, &t), "ner.max_len: 59 tokens");
}

/* 6 steps straight, and 3, a checkpoint, a new task and 3 more: the same θ. */
static void test_resume(void **state)
{
    eg_job job;
    tiny_job(", \"source_size\": 40, \"target_size\": 10, \"eval_size\": 10", &job);
    job.steps = 6;
    char path[600];
    snprintf(path, sizeof path, "%s/ner.ckpt", tu_tmpdir());
    tu_check_resume(&job, cpu, path);
}

/* get_linear_schedule_with_warmup: 0 at the first step, the peak after
 * warmup_steps, 0 at decay_steps; clip_grad_norm_'s factor. */
static void test_schedule_and_clip(void **state)
{
    eg_optim o;
    eg_optim_config c = eg_optim_adam_defaults();
    c.lr = 1.0f;
    c.warmup_steps = 4;
    c.decay_steps = 10;
    float theta[3] = {0}, g[3] = {3, 0, 4};
    assert_int_equal(eg_optim_init(&o, cpu, 3, &c), 0);
    const float want[] = {0, 0.25f, 0.5f, 0.75f, 1, 5 / 6.0f, 4 / 6.0f, 0.5f, 2 / 6.0f, 1 / 6.0f, 0};
    for (int s = 0; s <= 10; s++) {
        assert_float_equal(eg_optim_lr(&o), want[s], 1e-6);
        assert_int_equal(eg_optim_step(&o, theta, g), 0);
    }
    eg_optim_free(&o);
    c.warmup_steps = 10;
    tu_fails_with(eg_optim_init(&o, cpu, 3, &c), "warmup_steps 10");
    double norm;
    assert_int_equal(eg_clip_grad_norm(cpu, 3, g, 10, &norm), 0);
    assert_float_equal(norm, 5, 1e-9);
    assert_true(g[0] == 3 && g[2] == 4);
    assert_int_equal(eg_clip_grad_norm(cpu, 3, g, 1, &norm), 0);
    assert_float_equal(g[0], 3 / (5 + 1e-6), 1e-6);
    assert_float_equal(g[2], 4 / (5 + 1e-6), 1e-6);
    g[1] = NAN;
    tu_fails_with(eg_clip_grad_norm(cpu, 3, g, 1, &norm), "gradient norm");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec),
        cmocka_unit_test(test_bad_data),
        cmocka_unit_test(test_files_run),
        cmocka_unit_test(test_xlmr_run),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_schedule_and_clip),
    };
    return cmocka_run_group_tests(tests, open_cpu, close_cpu);
}
