#include "naive_evograd.h"

#include <math.h>
#include <stdlib.h>

#include "util/err.h"

int naive_evograd(eg_task *t, const eg_evograd_opts *o, uint64_t seed, long step,
                  float *hyper, double *val_loss)
{
    eg_backend *be = t->be;
    const int K = o->k;
    const size_t P = t->P, H = t->H;
    float *copies = eg_alloc_floats(be, (size_t)K * P); // (K, P)
    float *star = eg_alloc_floats(be, P), *dl = eg_alloc_floats(be, (size_t)K * H);
    float *host_dl = malloc((size_t)K * H * sizeof(float));
    double *loss = malloc(2 * (size_t)K * sizeof(double)), *w = loss + K, lo = INFINITY, sum = 0;
    int rc = -1;
    if (!copies || !star || !dl || !host_dl || !loss) {
        eg_errorf("naive evograd: out of memory");
        goto out;
    }
    for (int k = 0; k < K; k++) {
        float *c = copies + (size_t)k * P;
        uint64_t stream = ((uint64_t)step << 20) | (uint64_t)k;
        if (be->noise_combine(be, P, 0, seed, 1, &stream, &o->sigma, t->theta, c) ||
            t->ops->train_loss(t, c, &loss[k], dl + (size_t)k * H))
            goto out;
        lo = fmin(lo, loss[k]);
    }
    for (int k = 0; k < K; k++) sum += w[k] = exp(-(loss[k] - lo) / o->tau);
    if (be->fill(be, P, 0.0f, star)) goto out;
    for (int k = 0; k < K; k++)
        if (be->axpy(be, P, (float)(w[k] /= sum), copies + (size_t)k * P, star)) goto out;
    if (t->ops->val_grad(t, star, val_loss, t->grad, NULL)) goto out;
    double gstar;
    if (be->dot(be, P, t->grad, star, &gstar) ||
        be->download(be, host_dl, dl, (size_t)K * H * sizeof(float)))
        goto out;
    for (size_t h = 0; h < H; h++) hyper[h] = 0;
    for (int j = 0; j < K; j++) { /* dθ* / dℓ_j = -(w_j / τ)(θ_j - θ*) */
        double gj;
        if (be->dot(be, P, t->grad, copies + (size_t)j * P, &gj)) goto out;
        double seed_j = -(w[j] / o->tau) * (gj - gstar);
        for (size_t h = 0; h < H; h++) hyper[h] += (float)(seed_j * host_dl[(size_t)j * H + h]);
    }
    rc = 0;
out:
    be->free(be, copies);
    be->free(be, star);
    be->free(be, dl);
    free(host_dl);
    free(loss);
    return rc;
}
