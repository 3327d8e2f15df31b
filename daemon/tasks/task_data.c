#include "tasks/task_data.h"

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
    if (train->c > EG_MAX_CHANNELS) {
        eg_dataset_free(train);
        eg_dataset_free(test);
        return eg_errorf("dataset.name: %d channels, at most %d", train->c, EG_MAX_CHANNELS);
    }
    eg_dataset_channel_stats(train, mean, std);
    return 0;
}
