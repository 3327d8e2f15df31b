/* EvoGrad's hypergradient (DESIGN.md §1), under the memory rule: the K
 * perturbations are regenerated from Philox keyed by (seed, step, k) each
 * time they are needed, so one extra parameter vector serves every copy. */
#include <math.h>

#include "meta/method.h"
#include "util/err.h"

/* Noise stream of copy k at a step; k < 2^20, step < 2^43. Antithetic
 * copies share their partner's stream with the opposite sign. */
static uint64_t stream_of(const eg_meta *m, long step, int k)
{
    int base = m->evo.antithetic ? k - (k & 1) : k;
    return ((uint64_t)step << 20) | (uint64_t)base;
}

static float sign_of(const eg_meta *m, int k)
{
    return (m->evo.antithetic && (k & 1)) ? -1.0f : 1.0f;
}

/* y += alpha * noise of copy k. */
static int noise_axpy(eg_meta *m, size_t n, float alpha, long step, int k, float *y)
{
    eg_backend *be = m->be;
    uint64_t s = stream_of(m, step, k);
    alpha *= sign_of(m, k);
    if (m->evo.noise == EG_NOISE_GAUSSIAN) return be->gaussian_axpy(be, n, alpha, m->seed, s, y);
    return be->rademacher_axpy(be, n, alpha, m->seed, s, y);
}

/* *out = g . noise of copy k. */
static int noise_dot(eg_meta *m, size_t n, long step, int k, const float *g, double *out)
{
    eg_backend *be = m->be;
    uint64_t s = stream_of(m, step, k);
    int rc = m->evo.noise == EG_NOISE_GAUSSIAN ? be->gaussian_dot(be, n, m->seed, s, g, out)
                                               : be->rademacher_dot(be, n, m->seed, s, g, out);
    *out *= sign_of(m, k);
    return rc;
}

/* w = softmax(-losses / tau), in double. */
static void copy_weights(const double *losses, int k, double tau, double *w)
{
    double lo = losses[0], sum = 0;
    for (int i = 1; i < k; i++) lo = fmin(lo, losses[i]);
    for (int i = 0; i < k; i++) sum += w[i] = exp(-(losses[i] - lo) / tau);
    for (int i = 0; i < k; i++) w[i] /= sum;
}

int eg_evograd_hypergrad(eg_meta *m, eg_task *t, long step)
{
    eg_backend *be = m->be;
    const int K = m->evo.k;
    const float sigma = m->evo.sigma;
    const size_t P = t->P, H = t->H, bytes = P * sizeof(float);

    /* 1-2: the copies' training losses and their gradients in λ. */
    for (int k = 0; k < K; k++) {
        EG_TRY(be->copy(be, m->buf, t->theta, bytes));
        EG_TRY(noise_axpy(m, P, sigma, step, k, m->buf));
        EG_TRY(t->ops->train_loss(t, m->buf, &m->losses[k], m->dl + (size_t)k * H));
        if (!isfinite(m->losses[k]))
            return eg_errorf("evograd: training loss of copy %d is %g at step %ld", k,
                             m->losses[k], step);
    }
    /* 3-4: weights and the merged parameters θ* = θ + σ Σ w_k r_k. */
    copy_weights(m->losses, K, m->evo.tau, m->w);
    EG_TRY(be->copy(be, m->buf, t->theta, bytes));
    for (int k = 0; k < K; k++) EG_TRY(noise_axpy(m, P, sigma * (float)m->w[k], step, k, m->buf));

    /* 5: g = ∂ℓ_V(θ*)/∂θ*, and the direct term into the hypergradient. */
    EG_TRY(be->fill(be, H, 0.0f, m->hyper));
    EG_TRY(t->ops->val_grad(t, m->buf, &m->val_loss, t->grad, m->hyper));

    /* 6: ∂ℓ_V/∂ℓ_j = -(σ/τ) w_j (g.r_j - Σ_k w_k g.r_k). */
    double mean_dot = 0;
    for (int k = 0; k < K; k++) {
        if (m->evo.antithetic && (k & 1))
            m->dot[k] = -m->dot[k - 1]; /* the partner's noise, negated */
        else
            EG_TRY(noise_dot(m, P, step, k, t->grad, &m->dot[k]));
        mean_dot += m->w[k] * m->dot[k];
    }
    /* 7: the hypergradient Σ_j (∂ℓ_V/∂ℓ_j) ∂ℓ_j/∂λ. */
    for (int k = 0; k < K; k++) {
        double seed = -(double)sigma / m->evo.tau * m->w[k] * (m->dot[k] - mean_dot);
        EG_TRY(be->axpy(be, H, (float)seed, m->dl + (size_t)k * H, m->hyper));
    }
    double sq;
    EG_TRY(be->dot(be, H, m->hyper, m->hyper, &sq));
    m->hyper_norm = sqrt(sq);
    return 0;
}
