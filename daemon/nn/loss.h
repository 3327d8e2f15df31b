/* Softmax cross-entropy over a batch of logits, with per-sample losses and
 * per-sample weights in backward (Meta-Weight-Net weights samples). */
#ifndef EG_LOSS_H
#define EG_LOSS_H

#include "backend.h"

typedef struct eg_xent {
    eg_backend *be;
    int max_batch, classes;
    float *loss;      /* (max_batch) per-sample losses, device */
    float *probs;     /* (max_batch, classes) softmax, device */
    float *dlogits;   /* (max_batch, classes) gradient, device */
    float *host_loss; /* (max_batch) per-sample losses, host copy */
    float *host_probs;/* (max_batch, classes) host copy, for accuracy */
    int32_t *host_pred; /* (max_batch) arg-max classes, for accuracy */
} eg_xent;

int eg_xent_init(eg_xent *x, eg_backend *be, int max_batch, int classes);

/* Per-sample losses of logits (batch, classes) against device labels
 * (batch); copies them to x->host_loss and returns their mean in *mean
 * (may be NULL). */
int eg_xent_forward(eg_xent *x, const float *logits, const int32_t *labels,
                    int batch, double *mean);

/* x->dlogits = scale * weight[i] * d loss_i / d logits (weight may be
 * NULL); scale 1/batch gives the gradient of the mean loss. */
int eg_xent_backward(eg_xent *x, const int32_t *labels, const float *weight,
                     float scale, int batch);

/* The arg-max class of each of the first batch samples of the last
 * forward into pred (batch, host). */
int eg_xent_predict(eg_xent *x, int batch, int32_t *pred);

/* Number of samples whose largest probability is at their host label
 * (uses the probabilities of the last forward). */
int eg_xent_correct(eg_xent *x, const int32_t *host_labels, int batch);

void eg_xent_free(eg_xent *x);

#endif
