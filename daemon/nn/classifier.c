#include "classifier.h"

#include <stdlib.h>

#include "models.h"
#include "util/err.h"

int eg_classifier_init(eg_classifier *m, eg_backend *be, const char *name,
                       int width, int c, int h, int w, int classes,
                       int max_batch, const eg_optim_config *opt,
                       uint64_t seed, int need_dx)
{
    *m = (eg_classifier){.be = be, .max_batch = max_batch};
    if (eg_model_build(&m->net, be, name, width, c, h, w, classes) != 0) goto fail;
    const eg_layer *in = &m->net.layers[0];
    if (in->c != c || in->h != h || in->w != w || eg_net_out_dim(&m->net) != classes) {
        eg_errorf("model %s maps (%d, %d, %d) to %d outputs, not (%d, %d, %d) images to %d "
                  "classes", name, in->c, in->h, in->w, eg_net_out_dim(&m->net), c, h, w, classes);
        goto fail;
    }
    if (eg_net_finish(&m->net, max_batch, need_dx) != 0) goto fail;
    size_t P = m->net.params.total, S = m->net.state.total;
    eg_dataset shape = {.c = c, .h = h, .w = w};
    if (eg_dev_batch_init(&m->batch, be, max_batch, &shape) != 0) goto fail;
    float *host_theta = malloc(P * sizeof(float));
    float *host_state = malloc((S + 1) * sizeof(float));
    int ok = host_theta && host_state;
    if (ok) eg_net_init_params(&m->net, host_theta, host_state, seed);
    ok = ok && (m->theta = eg_alloc_floats(be, P)) && (m->dtheta = eg_alloc_floats(be, P)) &&
         (m->state = eg_alloc_floats(be, S + 1)) &&
         be->upload(be, m->theta, host_theta, P * sizeof(float)) == 0 &&
         be->upload(be, m->state, host_state, S * sizeof(float)) == 0;
    free(host_theta);
    free(host_state);
    if (!ok) {
        if (!eg_last_error()[0]) eg_errorf("classifier: out of host memory");
        goto fail;
    }
    if (eg_xent_init(&m->xe, be, max_batch, classes) != 0 ||
        eg_optim_init(&m->opt, be, P, opt) != 0)
        goto fail;
    return 0;
fail:
    eg_classifier_free(m);
    return -1;
}

int eg_classifier_load(eg_classifier *m, const eg_dataset *d,
                       const uint32_t *idx, int count)
{
    return eg_dev_batch_load(&m->batch, d, idx, count);
}

int eg_classifier_step(eg_classifier *m, const float *x, const int32_t *y, int count,
                       double *loss)
{
    eg_backend *be = m->be;
    size_t P = m->net.params.total;
    EG_TRY(be->fill(be, P, 0.0f, m->dtheta));
    EG_TRY(eg_net_forward(&m->net, m->theta, m->state, x, count, EG_TRAIN));
    EG_TRY(eg_xent_forward(&m->xe, eg_net_output(&m->net), y, count, loss));
    EG_TRY(eg_xent_backward(&m->xe, y, NULL, 1.0f / count, count));
    EG_TRY(eg_net_backward(&m->net, m->theta, m->xe.dlogits, m->dtheta, NULL));
    return eg_optim_step(&m->opt, m->theta, m->dtheta);
}

int eg_classifier_evaluate(eg_classifier *m, const eg_dataset *d,
                           double *acc, double *loss)
{
    uint32_t *idx = malloc((size_t)m->max_batch * sizeof(uint32_t));
    if (!idx) return eg_errorf("classifier: out of host memory");
    long correct = 0;
    double total = 0;
    int rc = 0;
    for (int b0 = 0; b0 < d->n && rc == 0; b0 += m->max_batch) {
        int count = d->n - b0 < m->max_batch ? d->n - b0 : m->max_batch;
        for (int i = 0; i < count; i++) idx[i] = (uint32_t)(b0 + i);
        double mean = 0;
        rc = eg_classifier_load(m, d, idx, count);
        if (rc == 0) rc = eg_net_forward(&m->net, m->theta, m->state, m->batch.x, count, EG_EVAL);
        if (rc == 0)
            rc = eg_xent_forward(&m->xe, eg_net_output(&m->net), m->batch.y, count, &mean);
        int ok = rc == 0 ? eg_xent_correct(&m->xe, m->batch.host_y, count) : -1;
        if (ok < 0) rc = -1;
        correct += ok;
        total += mean * count;
    }
    free(idx);
    if (rc != 0) return -1;
    if (acc) *acc = (double)correct / d->n;
    if (loss) *loss = total / d->n;
    return 0;
}

int eg_classifier_checkpoint_items(eg_classifier *m, const char *prefix, eg_ckpt_list *l)
{
    EG_TRY(eg_ckpt_add(l, prefix, "theta", m->theta, m->net.params.total * sizeof(float), 1));
    if (m->net.state.total)
        EG_TRY(eg_ckpt_add(l, prefix, "state", m->state, m->net.state.total * sizeof(float), 1));
    return eg_optim_checkpoint_items(&m->opt, prefix, l);
}

void eg_classifier_free(eg_classifier *m)
{
    eg_backend *be = m->be;
    if (!be) return;
    eg_optim_free(&m->opt);
    eg_xent_free(&m->xe);
    be->free(be, m->theta);
    be->free(be, m->dtheta);
    be->free(be, m->state);
    eg_dev_batch_free(&m->batch);
    eg_net_free(&m->net);
    *m = (eg_classifier){0};
}
