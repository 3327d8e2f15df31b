#include "loss.h"

#include <stdlib.h>

#include "util/err.h"

int eg_xent_init(eg_xent *x, eg_backend *be, int max_batch, int classes)
{
    *x = (eg_xent){.be = be, .max_batch = max_batch, .classes = classes};
    size_t n = (size_t)max_batch * classes;
    x->loss = eg_alloc_floats(be, max_batch);
    x->probs = eg_alloc_floats(be, n);
    x->dlogits = eg_alloc_floats(be, n);
    x->host_loss = malloc((size_t)max_batch * sizeof(float));
    x->host_probs = malloc(n * sizeof(float));
    x->host_pred = malloc((size_t)max_batch * sizeof(int32_t));
    if (!x->loss || !x->probs || !x->dlogits || !x->host_loss || !x->host_probs || !x->host_pred) {
        eg_xent_free(x);
        return eg_errorf("cross-entropy: out of memory for batch %d", max_batch);
    }
    return 0;
}

int eg_xent_forward(eg_xent *x, const float *logits, const int32_t *labels,
                    int batch, double *mean)
{
    eg_backend *be = x->be;
    if (batch < 1 || batch > x->max_batch)
        return eg_errorf("cross-entropy: batch %d outside 1..%d", batch, x->max_batch);
    EG_TRY(be->xent_fwd(be, batch, x->classes, logits, labels, x->loss, x->probs));
    EG_TRY(be->download(be, x->host_loss, x->loss, (size_t)batch * sizeof(float)));
    if (mean) {
        double s = 0;
        for (int i = 0; i < batch; i++) s += x->host_loss[i];
        *mean = s / batch;
    }
    return 0;
}

int eg_xent_backward(eg_xent *x, const int32_t *labels, const float *weight,
                     float scale, int batch)
{
    return x->be->xent_bwd(x->be, batch, x->classes, x->probs, labels, weight, scale,
                           x->dlogits);
}

int eg_xent_predict(eg_xent *x, int batch, int32_t *pred)
{
    EG_TRY(x->be->download(x->be, x->host_probs, x->probs,
                           (size_t)batch * x->classes * sizeof(float)));
    for (int i = 0; i < batch; i++) {
        const float *p = x->host_probs + (size_t)i * x->classes; // (classes)
        int best = 0;
        for (int j = 1; j < x->classes; j++)
            if (p[j] > p[best]) best = j;
        pred[i] = best;
    }
    return 0;
}

int eg_xent_correct(eg_xent *x, const int32_t *host_labels, int batch)
{
    EG_TRY(eg_xent_predict(x, batch, x->host_pred));
    int correct = 0;
    for (int i = 0; i < batch; i++) correct += x->host_pred[i] == host_labels[i];
    return correct;
}

void eg_xent_free(eg_xent *x)
{
    if (x->be) {
        x->be->free(x->be, x->loss);
        x->be->free(x->be, x->probs);
        x->be->free(x->be, x->dlogits);
    }
    free(x->host_loss);
    free(x->host_probs);
    free(x->host_pred);
    *x = (eg_xent){0};
}
