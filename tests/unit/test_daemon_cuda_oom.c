/* A job that needs more GPU memory than the GPU has fails alone: a daemon
 * on cuda:0 gets a Meta-Weight-Net job far too large for any GPU
 * (ResNet-56 at width 16, batch 16384, 32x32x3: even keeping only its
 * blocks' outputs, about 300 GB of activations), then a small one. The first must fail with an error that
 * says it ran out of GPU memory, the second must succeed, and the daemon
 * must keep serving. Skips where there is no usable GPU. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "daemon_harness.h"
#include "nn/device.h"
#include "synth_data.h"
#include "testutil.h"

#define WAIT_S 300.0

static char *spec(const char *dir, const char *model, int width, int batch)
{
    static char text[1024];
    snprintf(text, sizeof text,
             "{\"task\": \"mwn\", \"method\": \"evograd\", \"device\": \"cuda:0\", "
             "\"model\": {\"name\": \"%s\", \"width\": %d}, "
             "\"dataset\": {\"name\": \"cifar10\", \"path\": \"%s\"}, "
             "\"mwn\": {\"meta_samples\": 100}, \"batch_size\": %d, \"steps\": 2, "
             "\"eval_limit\": 100}",
             model, width, dir, batch);
    return text;
}

static void test_oom_fails_alone(void **state)
{
    (void)state;
    if (eg_gpu_count() == 0) {
        fprintf(stderr, "test_daemon_cuda_oom: no usable GPU (no CUDA backend in this build, "
                        "or no driver or device): skipped\n");
        skip();
    }
    char data[512], dir[512];
    snprintf(data, sizeof data, "%s/cifar", tu_tmpdir());
    snprintf(dir, sizeof dir, "%s/daemon", tu_tmpdir());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", data);
    assert_int_equal(system(cmd), 0);
    if (synth_cifar10(data, 3400, 100, 3) != 0) fail_msg("%s", eg_last_error());

    dh_daemon d;
    dh_opts o = {.devices = "cuda:0", .data_dir = data};
    if (dh_start(&d, dir, &o) != 0) fail_msg("cannot start a daemon on cuda:0");
    int64_t big = dh_submit(&d, spec(data, "resnet56", 16, 16384));
    int64_t small = dh_submit(&d, spec(data, "resnet32", 1, 32));
    assert_true(big > 0);
    assert_true(small > 0);

    json_t *job = NULL;
    if (dh_wait_job(&d, big, "succeeded|failed|canceled", 0, WAIT_S, &job) != 0)
        fail_msg("the oversized job did not end");
    const char *st = json_string_value(json_object_get(job, "state"));
    const char *err = json_string_value(json_object_get(job, "error"));
    fprintf(stderr, "oversized job: %s: %s\n", st, err ? err : "(no error)");
    assert_string_equal(st, "failed");
    if (!err || !strstr(err, "out of GPU memory"))
        fail_msg("the error does not say the GPU ran out of memory: %s", err ? err : "(none)");
    json_decref(job);

    if (dh_wait_job(&d, small, "succeeded|failed|canceled", 0, WAIT_S, &job) != 0)
        fail_msg("the next job did not end");
    st = json_string_value(json_object_get(job, "state"));
    err = json_string_value(json_object_get(job, "error"));
    if (strcmp(st, "succeeded") != 0) fail_msg("the next job %s: %s", st, err ? err : "");
    json_decref(job);

    dh_resp r;
    assert_int_equal(dh_get(&d, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    dh_resp_free(&r);
    int status;
    assert_int_equal(dh_stop(&d, SIGTERM, 30, &status), 0);
    assert_int_equal(status, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oom_fails_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
