/* Recorded network passes (nn/net_replay.c) and shared gradient buffers,
 * on the CPU backend with capture hooks that count what the net asks of
 * them: the first pass of a kind runs eagerly, the second is recorded, the
 * later ones replay; a moved workspace, a failed recording and a full
 * table are handled; every recording is freed. And the gradient buffers
 * of a ResNet do not grow with its depth. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/loss.h"
#include "nn/models.h"
#include "testutil.h"

typedef struct counts {
    int begins, ends, replays, frees, live;
    int fail_next_end; /* capture_end fails once */
} counts;

static counts c;

static int fake_begin(eg_backend *be)
{
    (void)be;
    c.begins++;
    return 0;
}

/* The fake records nothing: the operations issued during the "capture"
 * ran for real, so results stay right; units are counted, not replayed. */
static int fake_end(eg_backend *be, void **unit)
{
    (void)be;
    c.ends++;
    if (c.fail_next_end) {
        c.fail_next_end = 0;
        *unit = NULL;
        return eg_errorf("fake: cannot record");
    }
    *unit = malloc(1);
    c.live++;
    return 0;
}

static int fake_replay(eg_backend *be, void *unit)
{
    (void)be;
    assert_non_null(unit);
    c.replays++;
    return 0;
}

static void fake_free(eg_backend *be, void *unit)
{
    (void)be;
    free(unit);
    c.frees++;
    c.live--;
}

static eg_backend *recording_cpu(void)
{
    eg_backend *be = tu_cpu();
    be->capture_begin = fake_begin;
    be->capture_end = fake_end;
    be->replay = fake_replay;
    be->unit_free = fake_free;
    memset(&c, 0, sizeof c);
    return be;
}

typedef struct small {
    eg_backend *be;
    eg_net net;
    float *theta, *theta2, *state, *x, *dtheta, *dout;
} small;

static void small_make(small *s)
{
    s->be = recording_cpu();
    assert_int_equal(eg_model_lenet(&s->net, s->be, 1, 28, 28, 10), 0);
    assert_int_equal(eg_net_finish(&s->net, 4, 0), 0);
    size_t P = s->net.params.total, S = s->net.state.total;
    s->theta = calloc(P, sizeof(float));
    s->theta2 = calloc(P, sizeof(float));
    s->dtheta = calloc(P, sizeof(float));
    s->state = calloc(S + 1, sizeof(float));
    s->x = calloc(4 * 28 * 28, sizeof(float));
    s->dout = calloc(4 * 10, sizeof(float));
    eg_net_init_params(&s->net, s->theta, s->state, 3);
    memcpy(s->theta2, s->theta, P * sizeof(float));
    tu_fill_uniform(s->x, 4 * 28 * 28, 4, -1, 1);
    tu_fill_uniform(s->dout, 40, 5, -1, 1);
}

static void small_free(small *s)
{
    eg_net_free(&s->net);
    assert_int_equal(c.live, 0); /* every unit made was freed */
    free(s->theta);
    free(s->theta2);
    free(s->dtheta);
    free(s->state);
    free(s->x);
    free(s->dout);
    s->be->destroy(s->be);
}

static void fwd(small *s, const float *theta, eg_mode mode)
{
    if (eg_net_forward(&s->net, theta, s->state, s->x, 4, mode) != 0)
        fail_msg("forward: %s", eg_last_error());
}

static void test_eager_record_replay(void **state)
{
    (void)state;
    small s;
    small_make(&s);
    fwd(&s, s.theta, EG_PROBE); /* eager */
    assert_int_equal(c.begins, 0);
    float first[40];
    memcpy(first, eg_net_output(&s.net), sizeof first);
    fwd(&s, s.theta, EG_PROBE); /* recorded, then replayed once */
    assert_int_equal(c.begins, 1);
    assert_int_equal(c.ends, 1);
    assert_int_equal(c.replays, 1);
    assert_memory_equal(first, eg_net_output(&s.net), sizeof first);
    for (int i = 0; i < 3; i++) fwd(&s, s.theta, EG_PROBE);
    assert_int_equal(c.begins, 1);
    assert_int_equal(c.replays, 4);
    /* The backend's pass counts say the same. */
    assert_int_equal(s.be->passes.eager, 1);
    assert_int_equal(s.be->passes.recorded, 1);
    assert_int_equal(s.be->passes.replayed, 3);
    assert_int_equal(s.be->passes.failed, 0);

    /* Another parameter pointer or mode is another pass. */
    fwd(&s, s.theta2, EG_PROBE);
    fwd(&s, s.theta, EG_TRAIN);
    assert_int_equal(c.begins, 1);
    assert_int_equal(c.replays, 4);
    fwd(&s, s.theta2, EG_PROBE);
    assert_int_equal(c.begins, 2);
    assert_int_equal(c.replays, 5);

    /* Backward: the same pattern, keyed apart from forward. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(eg_net_backward(&s.net, s.theta2, s.dout, s.dtheta, NULL), 0);
    assert_int_equal(c.begins, 3);
    assert_int_equal(c.replays, 7);
    small_free(&s);
    assert_int_equal(c.frees, 3);
}

static void test_epoch_and_failure(void **state)
{
    (void)state;
    small s;
    small_make(&s);
    fwd(&s, s.theta, EG_PROBE);
    fwd(&s, s.theta, EG_PROBE);
    assert_int_equal(c.ends, 1);
    /* A moved workspace drops the unit: eager once more, then recorded. */
    s.be->capture_epoch++;
    fwd(&s, s.theta, EG_PROBE);
    assert_int_equal(c.frees, 1);
    assert_int_equal(c.begins, 1);
    fwd(&s, s.theta, EG_PROBE);
    assert_int_equal(c.begins, 2);
    assert_int_equal(c.replays, 2);

    /* A pass that cannot be recorded runs eagerly from then on, right. */
    float want[40];
    fwd(&s, s.theta2, EG_EVAL);
    memcpy(want, eg_net_output(&s.net), sizeof want);
    memset((void *)eg_net_output(&s.net), 0, sizeof want);
    c.fail_next_end = 1;
    fwd(&s, s.theta2, EG_EVAL);
    assert_int_equal(c.begins, 3);
    assert_memory_equal(want, eg_net_output(&s.net), sizeof want);
    int replays = c.replays;
    unsigned long eager = s.be->passes.eager;
    for (int i = 0; i < 3; i++) fwd(&s, s.theta2, EG_EVAL);
    assert_int_equal(c.begins, 3);
    assert_int_equal(c.replays, replays);
    assert_int_equal(s.be->passes.failed, 1);
    assert_int_equal(s.be->passes.eager, eager + 3);
    small_free(&s);
}

static void test_table_full(void **state)
{
    (void)state;
    small s;
    small_make(&s);
    /* 4 batch sizes x 2 parameter vectors x 3 modes: 24 passes, each run
     * twice (eagerly, then recorded); the table keeps 16 recordings. */
    for (int batch = 1; batch <= 4; batch++)
        for (int t = 0; t < 2; t++)
            for (int m = 0; m < 3; m++)
                for (int rep = 0; rep < 2; rep++)
                    if (eg_net_forward(&s.net, t ? s.theta2 : s.theta, s.state, s.x, batch,
                                       (eg_mode)m) != 0)
                        fail_msg("%s", eg_last_error());
    assert_int_equal(c.ends, 24);
    assert_int_equal(c.live, 16);
    assert_int_equal(c.frees, 8);
    small_free(&s);
}

/* A ResNet's gradients share a few buffers, however deep it is. */
static void test_grad_buffers_depth_free(void **state)
{
    (void)state;
    eg_backend *be = tu_cpu();
    int n[2];
    const char *names[2] = {"resnet20", "resnet56"};
    for (int i = 0; i < 2; i++) {
        eg_net net;
        assert_int_equal(eg_model_build(&net, be, names[i], 1, 3, 32, 32, 10), 0);
        assert_int_equal(eg_net_finish(&net, 2, 1), 0);
        n[i] = net.n_grads;
        fprintf(stderr, "%s: %d layers, %d gradient buffers\n", names[i], net.n_layers, n[i]);
        eg_net_free(&net);
    }
    assert_int_equal(n[0], n[1]);
    assert_true(n[0] <= 5);
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eager_record_replay),
        cmocka_unit_test(test_epoch_and_failure),
        cmocka_unit_test(test_table_full),
        cmocka_unit_test(test_grad_buffers_depth_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
