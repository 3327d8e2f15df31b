/* The second-order T1−T2 baseline (DESIGN.md §1): a one-step lookahead
 * θ' = θ - α∇_θℓ_T(θ, λ) with the base learning rate α, v = ∇ℓ_V(θ'), and
 * the mixed derivative -α ∂²ℓ_T/∂λ∂θ v by a central difference of ∇_λℓ_T at
 * θ ± εv, ε = 0.01/‖v‖ (as DARTS does), plus any direct term. */
#include <math.h>

#include "meta/method.h"
#include "util/err.h"

int eg_t1t2_hypergrad(eg_meta *m, eg_task *t)
{
    eg_backend *be = m->be;
    const size_t P = t->P, H = t->H, bytes = P * sizeof(float);
    float alpha = t->ops->base_lr(t);
    double loss;
    float *v = t->grad, *dl_plus = m->dl, *dl_minus = m->dl + H;

    /* θ' = θ - α ∇_θ ℓ_T(θ, λ) */
    EG_TRY(t->ops->train_grad(t, t->theta, &loss, t->grad));
    EG_TRY(be->copy(be, m->buf, t->theta, bytes));
    EG_TRY(be->axpy(be, P, -alpha, t->grad, m->buf));
    m->losses[0] = m->losses[1] = loss;

    /* v = ∇ℓ_V(θ'), direct term into the hypergradient */
    EG_TRY(be->fill(be, H, 0.0f, m->hyper));
    EG_TRY(t->ops->val_grad(t, m->buf, &m->val_loss, v, m->hyper));
    double vv;
    EG_TRY(be->dot(be, P, v, v, &vv));
    if (!(vv > 0) || !isfinite(vv))
        return eg_errorf("t1t2: validation gradient has norm %g", sqrt(vv));
    float eps = (float)(0.01 / sqrt(vv));

    /* ∇_λ ℓ_T at θ + εv and θ - εv */
    EG_TRY(be->copy(be, m->buf, t->theta, bytes));
    EG_TRY(be->axpy(be, P, eps, v, m->buf));
    EG_TRY(t->ops->train_loss(t, m->buf, &loss, dl_plus));
    EG_TRY(be->copy(be, m->buf, t->theta, bytes));
    EG_TRY(be->axpy(be, P, -eps, v, m->buf));
    EG_TRY(t->ops->train_loss(t, m->buf, &loss, dl_minus));

    /* hyper += -α (dl+ - dl-) / 2ε */
    float c = -alpha / (2.0f * eps);
    EG_TRY(be->axpy(be, H, c, dl_plus, m->hyper));
    EG_TRY(be->axpy(be, H, -c, dl_minus, m->hyper));
    m->w[0] = m->w[1] = 0.5;
    double sq;
    EG_TRY(be->dot(be, H, m->hyper, m->hyper, &sq));
    m->hyper_norm = sqrt(sq);
    return 0;
}
