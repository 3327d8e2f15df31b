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

/* y = x + Σ_j scale w_j s_j r_j over copies j = first .. first + count - 1
 * (r_j copy j's noise, s_j its sign, w_j = 1 when w is NULL), in groups of
 * EG_NOISE_MAX added onto y; y may alias x. */
static int combine(eg_meta *m, size_t n, long step, int first, int count, float scale,
                   const double *w, const float *x, float *y)
{
    eg_backend *be = m->be;
    for (int j0 = 0; j0 < count; j0 += EG_NOISE_MAX) {
        int g = count - j0 < EG_NOISE_MAX ? count - j0 : EG_NOISE_MAX;
        uint64_t streams[EG_NOISE_MAX];
        float a[EG_NOISE_MAX];
        for (int i = 0; i < g; i++) {
            int j = first + j0 + i;
            streams[i] = stream_of(m, step, j);
            a[i] = scale * (w ? (float)w[j] : 1.0f) * sign_of(m, j);
        }
        EG_TRY(be->noise_combine(be, n, m->evo.noise == EG_NOISE_GAUSSIAN, m->seed, g, streams,
                                 a, j0 ? y : x, y));
    }
    return 0;
}

/* dot[j] = g . noise of copy j for j < k; an antithetic copy's is its
 * partner's negated, so only the partners' are computed. */
static int noise_dots(eg_meta *m, size_t n, long step, int k, const float *g, double *dot)
{
    eg_backend *be = m->be;
    int stride = m->evo.antithetic ? 2 : 1;
    for (int j0 = 0; j0 < k; j0 += stride * EG_NOISE_MAX) {
        uint64_t streams[EG_NOISE_MAX];
        double out[EG_NOISE_MAX];
        int cnt = 0;
        for (int j = j0; j < k && cnt < EG_NOISE_MAX; j += stride)
            streams[cnt++] = stream_of(m, step, j);
        EG_TRY(be->noise_dots(be, n, m->evo.noise == EG_NOISE_GAUSSIAN, m->seed, cnt, streams, g,
                              out));
        for (int c = 0; c < cnt; c++) {
            int j = j0 + c * stride;
            dot[j] = out[c];
            if (stride == 2 && j + 1 < k) dot[j + 1] = -out[c];
        }
    }
    return 0;
}

/* w = softmax(-losses / tau), in double. */
static void copy_weights(const double *losses, int k, double tau, double *w)
{
    double lo = losses[0], sum = 0;
    for (int i = 1; i < k; i++) lo = fmin(lo, losses[i]);
    for (int i = 0; i < k; i++) sum += w[i] = exp(-(losses[i] - lo) / tau);
    for (int i = 0; i < k; i++) w[i] /= sum;
}

/* Steps 1-5 below: the copies' losses and λ-gradients, the weights, θ*
 * and g = ∇ℓ_V(θ*). Each θ_k and θ* is formed in `at` (P floats) from the
 * scope's values `base` (n floats at off): m->buf and θ itself, or, for a
 * scoped task, θ perturbed in place from the saved scope in m->buf. */
static int copies_and_merge(eg_meta *m, eg_task *t, long step, size_t off, size_t n,
                            const float *base, float *at)
{
    eg_backend *be = m->be;
    const int K = m->evo.k;
    const float sigma = m->evo.sigma;
    const size_t H = t->H;
    /* 1-2: the copies' training losses and their gradients in λ. */
    for (int k = 0; k < K; k++) {
        EG_TRY(combine(m, n, step, k, 1, sigma, NULL, base, at + off)); /* θ + σ r_k */
        EG_TRY(t->ops->train_loss(t, at, &m->losses[k], m->dl + (size_t)k * H));
        if (!isfinite(m->losses[k]))
            return eg_errorf("evograd: training loss of copy %d is %g at step %ld", k,
                             m->losses[k], step);
    }
    /* 3-4: weights and the merged parameters θ* = θ + σ Σ w_k r_k. */
    copy_weights(m->losses, K, m->evo.tau, m->w);
    EG_TRY(combine(m, n, step, 0, K, sigma, m->w, base, at + off));

    /* 5: g = ∂ℓ_V(θ*)/∂θ*, and the direct term into the hypergradient. */
    EG_TRY(be->fill(be, H, 0.0f, m->hyper));
    return t->ops->val_grad(t, at, &m->val_loss, t->grad, m->hyper);
}

int eg_evograd_hypergrad(eg_meta *m, eg_task *t, long step)
{
    eg_backend *be = m->be;
    const int K = m->evo.k;
    const float sigma = m->evo.sigma;
    const size_t H = t->H;
    /* The scope the copies perturb: [off, off + n) of θ. */
    const size_t off = t->scope_n ? t->scope_off : 0, n = t->scope_n ? t->scope_n : t->P;
    if (off + n > t->P)
        return eg_errorf("evograd: perturbation scope [%zu, %zu) outside θ's %zu", off, off + n,
                         t->P);
    int rc;
    if (n < t->P) {
        /* Scoped: θ's scope is perturbed in place and restored. */
        const size_t bytes = n * sizeof(float);
        EG_TRY(be->copy(be, m->buf, t->theta + off, bytes));
        t->scoped = 1;
        rc = copies_and_merge(m, t, step, off, n, m->buf, t->theta);
        t->scoped = 0;
        int rc2 = be->copy(be, t->theta + off, m->buf, bytes);
        rc = rc ? rc : rc2;
    } else {
        rc = copies_and_merge(m, t, step, 0, n, t->theta, m->buf);
    }
    EG_TRY(rc);

    /* 6: ∂ℓ_V/∂ℓ_j = -(σ/τ) w_j (g.r_j - Σ_k w_k g.r_k). */
    EG_TRY(noise_dots(m, n, step, K, t->grad + off, m->dot));
    double mean_dot = 0;
    for (int k = 0; k < K; k++) mean_dot += m->w[k] * m->dot[k];
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
