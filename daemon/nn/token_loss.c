#include "token_loss.h"

#include <stdlib.h>

#include "util/err.h"

int eg_token_loss_init(eg_token_loss *t, eg_backend *be, int cap, int classes)
{
    *t = (eg_token_loss){0};
    EG_TRY(eg_xent_init(&t->xe, be, cap, classes));
    t->labels = (int32_t *)eg_alloc_floats(be, (size_t)cap);
    t->weight = eg_alloc_floats(be, (size_t)cap);
    t->host_labels = malloc((size_t)cap * sizeof *t->host_labels);
    t->host_weight = malloc((size_t)cap * sizeof *t->host_weight);
    if (!t->labels || !t->weight || !t->host_labels || !t->host_weight) {
        eg_token_loss_free(t);
        return eg_errorf("token loss: out of memory for %d tokens", cap);
    }
    return 0;
}

int eg_token_loss_set(eg_token_loss *t, const int32_t *labels, int n)
{
    eg_backend *be = t->xe.be;
    if (n < 1 || n > t->xe.max_batch)
        return eg_errorf("token loss: %d tokens outside 1..%d", n, t->xe.max_batch);
    int *dev = malloc((size_t)n * sizeof *dev);
    if (!dev) return eg_errorf("token loss: out of memory");
    t->labelled = 0;
    for (int i = 0; i < n; i++) {
        int y = labels[i];
        if (y != EG_IGNORE_LABEL && (y < 0 || y >= t->xe.classes)) {
            free(dev);
            return eg_errorf("token loss: label %d of token %d outside [0, %d)", y, i,
                             t->xe.classes);
        }
        t->host_labels[i] = y;
        dev[i] = y == EG_IGNORE_LABEL ? 0 : y;
        t->host_weight[i] = y == EG_IGNORE_LABEL ? 0.0f : 1.0f;
        t->labelled += y != EG_IGNORE_LABEL;
    }
    t->n = n;
    int rc = be->upload(be, t->labels, dev, (size_t)n * sizeof *dev);
    free(dev);
    EG_TRY(rc);
    return be->upload(be, t->weight, t->host_weight, (size_t)n * sizeof(float));
}

int eg_token_loss_forward(eg_token_loss *t, const float *logits, double *loss)
{
    EG_TRY(eg_xent_forward(&t->xe, logits, t->labels, t->n, NULL));
    double s = 0;
    for (int i = 0; i < t->n; i++) s += (double)t->host_weight[i] * t->xe.host_loss[i];
    *loss = t->labelled ? s / t->labelled : 0.0;
    return 0;
}

int eg_token_loss_backward(eg_token_loss *t, float scale)
{
    float s = t->labelled ? scale / (float)t->labelled : 0.0f;
    return eg_xent_backward(&t->xe, t->labels, t->weight, s, t->n);
}

int eg_token_loss_predict(eg_token_loss *t, int32_t *pred)
{
    return eg_xent_predict(&t->xe, t->n, pred);
}

void eg_token_loss_free(eg_token_loss *t)
{
    if (t->xe.be) {
        t->xe.be->free(t->xe.be, t->labels);
        t->xe.be->free(t->xe.be, t->weight);
    }
    eg_xent_free(&t->xe);
    free(t->host_labels);
    free(t->host_weight);
    *t = (eg_token_loss){0};
}
