#include "tasks/task_data.h"

#include <stdio.h>

#include "util/err.h"

int eg_task_open_data(const eg_job *job, eg_dataset *train, eg_dataset *test,
                      float *mean, float *std)
{
    const char *dir = job->dataset.path[0] ? job->dataset.path : NULL;
    EG_TRY(eg_dataset_open(job->dataset.name, dir, 1, train));
    if (eg_dataset_open(job->dataset.name, dir, 0, test) != 0) {
        eg_dataset_free(train);
        return -1;
    }
    const char *why = NULL;
    char msg[256];
    if (train->c > EG_MAX_CHANNELS) {
        snprintf(msg, sizeof msg, "dataset.name: %d channels, at most %d", train->c,
                 EG_MAX_CHANNELS);
        why = msg;
    } else if (test->c != train->c || test->h != train->h || test->w != train->w) {
        snprintf(msg, sizeof msg, "dataset.path: the test images are %dx%dx%d, the training "
                 "images %dx%dx%d", test->c, test->h, test->w, train->c, train->h, train->w);
        why = msg;
    } else if (test->classes > train->classes) {
        snprintf(msg, sizeof msg, "dataset.path: the test labels reach %d, the training set "
                 "has %d classes", test->classes - 1, train->classes);
        why = msg;
    } else if (train->classes < 2) {
        snprintf(msg, sizeof msg, "dataset.path: the training labels hold %d class, at least 2 "
                 "are needed", train->classes);
        why = msg;
    }
    if (why) {
        eg_dataset_free(train);
        eg_dataset_free(test);
        return eg_errorf("%s", why);
    }
    test->classes = train->classes;
    eg_dataset_channel_stats(train, mean, std);
    return 0;
}

int eg_image_base_init(eg_image_base *b, const eg_job *job, eg_backend *be,
                       const eg_dataset *train, const eg_dataset *val,
                       const eg_optim_config *opt, int need_dx)
{
    int B = job->batch_size;
    b->train = train;
    b->val = val;
    EG_TRY(eg_classifier_init(&b->m, be, job->model.name, job->model.width, train->c, train->h,
                              train->w, train->classes, B, opt, job->seed, need_dx));
    EG_TRY(eg_dev_batch_init(&b->valb, be, B, val));
    EG_TRY(eg_batcher_init(&b->train_order, train->n, B, job->seed, 1, 0));
    return eg_batcher_init(&b->val_order, val->n, B, job->seed + 1, 1, 0);
}

int eg_image_base_next(eg_image_base *b)
{
    const uint32_t *idx;
    int count;
    EG_TRY(eg_batcher_next(&b->train_order, &idx, &count));
    EG_TRY(eg_dev_batch_load(&b->m.batch, b->train, idx, count));
    b->train_idx = idx;
    EG_TRY(eg_batcher_next(&b->val_order, &idx, &count));
    b->val_idx = idx;
    return eg_dev_batch_load(&b->valb, b->val, idx, count);
}

int eg_image_base_replay_view(eg_image_base *b, eg_replay_view *view)
{
    if (!b->train_idx) return eg_errorf("replay: no batch drawn yet");
    *view = (eg_replay_view){.net = &b->m.net, .train = b->train, .val = b->val,
                             .train_idx = b->train_idx, .val_idx = b->val_idx,
                             .n_train = b->m.batch.count, .n_val = b->valb.count};
    return 0;
}

int eg_image_base_evaluate(eg_image_base *b, const eg_dataset *test, int limit, eg_eval *ev)
{
    eg_dataset part = *test;
    if (limit > 0 && limit < part.n) part.n = limit;
    double acc;
    EG_TRY(eg_classifier_evaluate(&b->m, &part, &acc, &ev->test_loss));
    ev->test_acc = 100 * acc;
    return 0;
}

int eg_image_base_checkpoint_items(eg_task *t, eg_image_base *b, eg_ckpt_list *l)
{
    EG_TRY(eg_ckpt_add(l, "task", "lambda", t->lambda, t->H * sizeof(float), 1));
    EG_TRY(eg_classifier_checkpoint_items(&b->m, "model", l));
    EG_TRY(eg_batcher_checkpoint_items(&b->train_order, "train_order", l));
    return eg_batcher_checkpoint_items(&b->val_order, "val_order", l);
}

void eg_image_base_free(eg_image_base *b)
{
    eg_classifier_free(&b->m);
    eg_dev_batch_free(&b->valb);
    eg_batcher_free(&b->train_order);
    eg_batcher_free(&b->val_order);
}
