/* Token-level cross-entropy with an ignore index (-100: padding, specials,
 * the later subwords of a word), normalised by the number of labelled
 * tokens as torch.nn.CrossEntropyLoss(ignore_index=-100) does. */
#ifndef EG_TOKEN_LOSS_H
#define EG_TOKEN_LOSS_H

#include <stdint.h>

#include "loss.h"

#define EG_IGNORE_LABEL (-100)

typedef struct eg_token_loss {
    eg_xent xe;
    int32_t *labels;      /* (cap) device: the labels, ignored ones as 0 */
    float *weight;        /* (cap) device: 1 for a labelled token, else 0 */
    int32_t *host_labels; /* (cap) the labels as given */
    float *host_weight;   /* (cap) */
    int n, labelled;      /* tokens of the current batch, labelled ones */
} eg_token_loss;

int eg_token_loss_init(eg_token_loss *t, eg_backend *be, int cap, int classes);

/* Sets the batch's n labels (host; EG_IGNORE_LABEL or 0..classes-1, else
 * an error naming the token) and uploads them. */
int eg_token_loss_set(eg_token_loss *t, const int32_t *labels, int n);

/* The mean loss over the labelled tokens of logits (n, classes) into
 * *loss (0 when none is labelled). */
int eg_token_loss_forward(eg_token_loss *t, const float *logits, double *loss);

/* t->xe.dlogits = scale x the gradient of the last forward's mean loss. */
int eg_token_loss_backward(eg_token_loss *t, float scale);

/* The arg-max class of each of the n tokens of the last forward, into
 * pred (n, host). */
int eg_token_loss_predict(eg_token_loss *t, int32_t *pred);

void eg_token_loss_free(eg_token_loss *t);

#endif
