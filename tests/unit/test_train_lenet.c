/* A real training run: LeNet on Fashion-MNIST (Debian's
 * dataset-fashion-mnist) with Adam 1e-3 at batch 128. PyTorch's own LeNet
 * with this protocol ends its first epoch at 82-84% test accuracy (seeds
 * 0-2), so the first epoch must reach 80% and the second 85%. */
#include <stdio.h>
#include <time.h>

#include "data/dataset.h"
#include "nn/classifier.h"
#include "testutil.h"

static void test_lenet_fashion_mnist(void **s)
{
    eg_dataset train, test;
    if (eg_dataset_open("fashion-mnist", NULL, 1, &train) != 0 ||
        eg_dataset_open("fashion-mnist", NULL, 0, &test) != 0)
        fail_msg("%s (make deps installs dataset-fashion-mnist)", eg_last_error());
    float mean, std;
    eg_dataset_channel_stats(&train, &mean, &std);
    eg_dataset_normalize(&train, &mean, &std);
    eg_dataset_normalize(&test, &mean, &std);

    eg_backend *be = tu_cpu();
    eg_classifier m;
    eg_optim_config adam = eg_optim_adam_defaults();
    assert_int_equal(eg_classifier_init(&m, be, "lenet", 1, 1, 28, 28, 10, 128, &adam, 1, 0), 0);
    eg_batcher b;
    assert_int_equal(eg_batcher_init(&b, train.n, 128, 1, 1, 0), 0);
    int steps = eg_batcher_batches_per_epoch(&b);
    assert_int_equal(steps, 469);
    const double goal[2] = {0.80, 0.85};
    for (int epoch = 0; epoch < 2; epoch++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        double first = 0, loss = 0;
        for (int i = 0; i < steps; i++) {
            const uint32_t *idx;
            int count;
            assert_int_equal(eg_batcher_next(&b, &idx, &count), 0);
            assert_int_equal(eg_classifier_load(&m, &train, idx, count), 0);
            assert_int_equal(eg_classifier_step(&m, m.batch.x, m.batch.y, count, &loss), 0);
            if (i == 0) first = loss;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double acc, test_loss;
        assert_int_equal(eg_classifier_evaluate(&m, &test, &acc, &test_loss), 0);
        double secs = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
        fprintf(stderr, "lenet fashion-mnist epoch %d: %d steps in %.1f s, loss %.3f -> %.3f, "
                "test loss %.3f, test accuracy %.2f%%\n", epoch + 1, steps, secs, first, loss,
                test_loss, 100 * acc);
        assert_true(acc >= goal[epoch]);
    }
    eg_batcher_free(&b);
    eg_classifier_free(&m);
    be->destroy(be);
    eg_dataset_free(&train);
    eg_dataset_free(&test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
