/* The engine's own rotation runs replayed step for step in float64 PyTorch
 * (tests/parity/replay_rotation.py, on a trace written by trace.c): from
 * the engine's θ, λ, batches and noise at every step, the copies' losses,
 * weights, ∂ℓ_k/∂λ, the validation loss, the hypergradient, λ after the
 * meta-optimiser's step and every figure of the step record must agree,
 * for EvoGrad (plain and antithetic) and for T1−T2 (its central
 * difference). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta/job.h"
#include "testutil.h"
#include "trace.h"

#define STEPS 30

/* Traces the rotation example with the overrides and replays it. */
static void replay(const char *name, const char *const *sets)
{
    const char *spec = "{\"task\": \"rotation\", \"method\": \"evograd\", \"seed\": 2}";
    json_t *j = eg_job_json_load(spec, strlen(spec));
    assert_non_null(j);
    for (int i = 0; sets[i]; i++) assert_int_equal(eg_job_set(j, sets[i]), 0);
    eg_job job;
    if (eg_job_from_json(j, &job) != 0) fail_msg("job: %s", eg_last_error());
    json_decref(j);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", tu_tmpdir(), name);
    assert_int_equal(mkdir(dir, 0755), 0);
    if (tr_trace_job(&job, STEPS, dir) != 0) fail_msg("trace: %s", eg_last_error());
    fprintf(stderr, "replay of %s:\n", name);
    int rc = tu_python("replay_rotation.py", dir);
    if (rc != 0)
        fail_msg("%s: the float64 replay disagrees with the engine (exit %d; /usr/bin/python3 "
                 "with torch, Debian's python3-torch, is required)", name, rc);
}

static void test_evograd(void **state)
{
    replay("evograd", (const char *const[]){NULL});
}

static void test_evograd_antithetic(void **state)
{
    replay("antithetic", (const char *const[]){"evograd.antithetic=true", "evograd.k=4", NULL});
}

static void test_t1t2(void **state)
{
    replay("t1t2", (const char *const[]){"method=t1t2", NULL});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evograd),
        cmocka_unit_test(test_evograd_antithetic),
        cmocka_unit_test(test_t1t2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
