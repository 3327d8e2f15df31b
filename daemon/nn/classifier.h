/* A classifier being trained: a network with its parameters, gradients,
 * BatchNorm state, loss and optimiser on one backend, and the device
 * buffers for a batch. The plain training loop, the benchmarks and the
 * meta-learning tasks' base models are built on it. */
#ifndef EG_CLASSIFIER_H
#define EG_CLASSIFIER_H

#include "data/dataset.h"
#include "dev_batch.h"
#include "loss.h"
#include "net.h"
#include "optim.h"

typedef struct eg_classifier {
    eg_backend *be;
    eg_net net;
    eg_xent xe;
    eg_optim opt;
    float *theta;   /* (P) parameters, device */
    float *dtheta;  /* (P) gradient, device */
    float *state;   /* (S) BatchNorm running statistics, device */
    eg_dev_batch batch; /* the current batch */
    int max_batch;
} eg_classifier;

/* Builds model `name` (eg_model_build) for (c, h, w) inputs, initialises
 * it from seed, and prepares the optimiser; need_dx keeps the gradient
 * with respect to the input (eg_net_finish). */
int eg_classifier_init(eg_classifier *m, eg_backend *be, const char *name,
                       int width, int c, int h, int w, int classes,
                       int max_batch, const eg_optim_config *opt,
                       uint64_t seed, int need_dx);

/* Uploads samples idx[0..count) of d as the current batch. */
int eg_classifier_load(eg_classifier *m, const eg_dataset *d,
                       const uint32_t *idx, int count);

/* One training step on inputs x (count, c, h, w) with labels y, both
 * device memory (usually m->batch's): forward in training mode, mean
 * cross-entropy, backward, optimiser step. *loss gets the batch's mean
 * loss (may be NULL). */
int eg_classifier_step(eg_classifier *m, const float *x, const int32_t *y, int count,
                       double *loss);

/* Accuracy (fraction correct) and mean loss over all of d, in evaluation
 * mode, in batches of at most max_batch. */
int eg_classifier_evaluate(eg_classifier *m, const eg_dataset *d,
                           double *acc, double *loss);

/* Appends θ, the BatchNorm state and the optimiser's state as
 * "prefix.theta" etc. */
int eg_classifier_checkpoint_items(eg_classifier *m, const char *prefix, eg_ckpt_list *l);

void eg_classifier_free(eg_classifier *m);

#endif
