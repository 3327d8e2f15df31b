/* Data shared by the image tasks: a dataset's two splits with the
 * training split's per-channel statistics, and batches on the device. */
#ifndef EG_TASK_DATA_H
#define EG_TASK_DATA_H

#include "data/dataset.h"
#include "meta/job.h"
#include "nn/dev_batch.h"

#define EG_MAX_CHANNELS 3

/* Opens job->dataset's training and test splits (pixels in [0, 1]) and
 * the training split's per-channel mean and std (EG_MAX_CHANNELS each). */
int eg_task_open_data(const eg_job *job, eg_dataset *train, eg_dataset *test,
                      float *mean, float *std);

#endif
