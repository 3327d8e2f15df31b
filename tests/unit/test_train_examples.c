/* Every job spec in schema/examples runs a few steps through
 * `evogradd run` and prints a summary that names its task and method. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>

#include "nn/device.h"
#include "testutil.h"

#define EVOGRADD "build/evogradd"

/* Runs one example for two steps; returns the parsed summary line. */
static json_t *run_example(const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             EVOGRADD " run %s --steps 2 --set eval_limit=200 --set toy1d.trials=10 2>/dev/null",
             path);
    /* toy1d.trials only applies to toy1d specs; the others drop it. */
    if (!strstr(path, "toy1d"))
        snprintf(cmd, sizeof cmd, EVOGRADD " run %s --steps 2 --set eval_limit=200 2>/dev/null",
                 path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[1 << 16] = "";
    size_t n = fread(line, 1, sizeof line - 1, p);
    line[n] = '\0';
    int status = pclose(p);
    if (status != 0) fail_msg("%s: exit status %d", cmd, status);
    json_error_t err;
    json_t *summary = json_loads(line, 0, &err);
    if (!summary) fail_msg("%s: summary is not JSON: %s", path, err.text);
    return summary;
}

static void test_examples_run(void **s)
{
    DIR *d = opendir("schema/examples");
    assert_non_null(d);
    struct dirent *e;
    int ran = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0) continue;
        char path[512];
        snprintf(path, sizeof path, "schema/examples/%s", e->d_name);
        json_error_t err;
        json_t *spec = json_load_file(path, 0, &err);
        assert_non_null(spec);
        json_t *summary = run_example(path);
        const char *task = json_string_value(json_object_get(spec, "task"));
        const char *method = json_string_value(json_object_get(spec, "method"));
        assert_string_equal(json_string_value(json_object_get(summary, "task")), task);
        if (method)
            assert_string_equal(json_string_value(json_object_get(summary, "method")), method);
        assert_int_equal(json_integer_value(json_object_get(summary, "steps")), 2);
        assert_true(json_is_number(json_object_get(summary, "mean_step_ms")));
        assert_true(json_integer_value(json_object_get(summary, "peak_mem_bytes")) > 0);
        if (strcmp(task, "ner") == 0 || strcmp(task, "metaxl") == 0) {
            assert_true(json_is_number(json_object_get(summary, "dev_f1")));
            assert_true(json_is_number(json_object_get(summary, "test_f1")));
        } else if (strcmp(task, "toy1d") != 0) {
            assert_true(json_is_number(json_object_get(summary, "test_acc")));
        }
        fprintf(stderr, "%-24s %s/%s ok\n", e->d_name, task, method ? method : "evograd");
        json_decref(summary);
        json_decref(spec);
        ran++;
    }
    closedir(d);
    assert_true(ran >= 9);
}

/* Runs `evogradd run` on a toy1d spec with --set device=DEVICE; returns
 * the exit status and the output (stdout and stderr) in out. */
static int run_on(const char *device, char *out, size_t len)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             EVOGRADD " run schema/examples/toy1d-evograd.json --steps 2 --set toy1d.trials=10 "
                      "--set device=%s 2>&1", device);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* "auto" runs on a GPU when there is one and else on the CPU, saying so;
 * "cuda" without a GPU fails the job with an error that says why. */
static void test_devices(void **s)
{
    static char out[1 << 16];
    assert_int_equal(run_on("auto", out, sizeof out), 0);
    if (eg_gpu_count() == 0) {
        if (!strstr(out, "device auto: no usable GPU") || !strstr(out, "running on the cpu"))
            fail_msg("no fallback line for device auto:\n%s", out);
        assert_int_equal(run_on("cuda", out, sizeof out), 1);
        if (!strstr(out, "\"cuda\" asked for"))
            fail_msg("device cuda without a GPU:\n%s", out);
    } else {
        assert_int_equal(run_on("cuda", out, sizeof out), 0);
    }
    assert_int_equal(run_on("cpu", out, sizeof out), 0);
    assert_int_equal(run_on("cuda:99", out, sizeof out), 1);
    if (!strstr(out, "cuda:99")) fail_msg("device cuda:99:\n%s", out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_run),
        cmocka_unit_test(test_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
