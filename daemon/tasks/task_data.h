/* Data shared by the image tasks: a dataset's two splits with the
 * training split's per-channel statistics, and batches on the device. */
#ifndef EG_TASK_DATA_H
#define EG_TASK_DATA_H

#include "data/dataset.h"
#include "meta/job.h"
#include "meta/task.h"
#include "nn/classifier.h"
#include "nn/dev_batch.h"

#define EG_MAX_CHANNELS 3

/* Opens job->dataset's training and test splits (pixels in [0, 1]) and
 * the training split's per-channel mean and std (EG_MAX_CHANNELS each). */
int eg_task_open_data(const eg_job *job, eg_dataset *train, eg_dataset *test,
                      float *mean, float *std);

/* What the image tasks share: the base classifier (its batch holds the
 * training batch), the validation batch, and the seeded orders of the
 * training and validation samples. */
typedef struct eg_image_base {
    eg_classifier m;
    eg_dev_batch valb;
    eg_batcher train_order, val_order;
    const eg_dataset *train, *val;   /* what the orders index; owned by the task */
    const uint32_t *train_idx, *val_idx; /* the current batches' indices */
} eg_image_base;

/* Builds job->model for train's images with optimiser opt and batch
 * job->batch_size, and the two orders (seeded from job->seed). */
int eg_image_base_init(eg_image_base *b, const eg_job *job, eg_backend *be,
                       const eg_dataset *train, const eg_dataset *val,
                       const eg_optim_config *opt, int need_dx);

/* Loads the next training batch into b->m.batch and validation batch into
 * b->valb. */
int eg_image_base_next(eg_image_base *b);

/* Accuracy (percent) and mean loss of the base model on the first `limit`
 * samples of test (all when limit <= 0). */
int eg_image_base_evaluate(eg_image_base *b, const eg_dataset *test, int limit, eg_eval *ev);

/* The base network and the current batches' samples. */
int eg_image_base_replay_view(eg_image_base *b, eg_replay_view *view);

/* The checkpoint of an image task t built on b: its λ, the model's state
 * and both orders' positions. */
int eg_image_base_checkpoint_items(eg_task *t, eg_image_base *b, eg_ckpt_list *l);

void eg_image_base_free(eg_image_base *b);

#endif
