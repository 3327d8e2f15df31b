#include "rtn.h"

#include <math.h>
#include <string.h>

#include "util/err.h"

int eg_rtn_init(eg_rtn *r, eg_backend *be, int d, int b, int cap)
{
    memset(r, 0, sizeof *r);
    if (d < 1 || b < 1 || cap < 1) return eg_errorf("rtn: width %d, bottleneck %d, %d rows", d, b, cap);
    r->be = be;
    r->d = d;
    r->b = b;
    r->cap = cap;
    eg_layout *l = &r->params;
    float s1 = (float)sqrt(2.0 / (d + b)), s2 = (float)sqrt(2.0 / (b + d + 1));
    if ((r->w1 = eg_layout_add_normal(l, "rtn.w1", (size_t)b * d, s1)) == (size_t)-1 ||
        (r->b1 = eg_layout_add(l, "rtn.b1", (size_t)b, EG_INIT_ZEROS, 0)) == (size_t)-1 ||
        (r->w2 = eg_layout_add_normal(l, "rtn.w2", (size_t)(d + 1) * b, s2)) == (size_t)-1 ||
        (r->b2 = eg_layout_add(l, "rtn.b2", (size_t)d + 1, EG_INIT_ZEROS, 0)) == (size_t)-1 ||
        !(r->a = eg_alloc_floats(be, (size_t)cap * b)) ||
        !(r->o = eg_alloc_floats(be, (size_t)cap * (d + 1))) ||
        !(r->da = eg_alloc_floats(be, (size_t)cap * b)) ||
        !(r->dout = eg_alloc_floats(be, (size_t)cap * (d + 1)))) {
        eg_rtn_free(r);
        return -1;
    }
    return 0;
}

void eg_rtn_init_params(const eg_rtn *r, float *lambda, uint64_t seed)
{
    eg_layout_init(&r->params, lambda, seed);
}

int eg_rtn_forward(eg_rtn *r, const float *lambda, const float *h, int n, float *y)
{
    eg_backend *be = r->be;
    int d = r->d, b = r->b;
    if (n < 1 || n > r->cap) return eg_errorf("rtn: %d rows outside 1..%d", n, r->cap);
    r->h = h;
    r->n = n;
    EG_TRY(be->gemm(be, 0, 1, n, b, d, 1.0f, h, d, lambda + r->w1, d, 0.0f, r->a, b));
    EG_TRY(be->bias_add(be, n, b, 1, r->a, lambda + r->b1));
    EG_TRY(be->relu_fwd(be, (size_t)n * b, r->a, r->a));
    EG_TRY(be->gemm(be, 0, 1, n, d + 1, b, 1.0f, r->a, b, lambda + r->w2, b, 0.0f, r->o, d + 1));
    EG_TRY(be->bias_add(be, n, d + 1, 1, r->o, lambda + r->b2));
    return be->rtn_gate_fwd(be, n, d, h, r->o, y);
}

int eg_rtn_backward(eg_rtn *r, const float *lambda, const float *dy, float *dlambda)
{
    eg_backend *be = r->be;
    int n = r->n, d = r->d, b = r->b;
    EG_TRY(be->rtn_gate_bwd(be, n, d, r->o, dy, r->dout));
    /* o = a W2^T + b2 */
    EG_TRY(be->gemm(be, 1, 0, d + 1, b, n, 1.0f, r->dout, d + 1, r->a, b, 1.0f, dlambda + r->w2, b));
    EG_TRY(be->bias_grad(be, n, d + 1, 1, r->dout, dlambda + r->b2));
    EG_TRY(be->gemm(be, 0, 0, n, b, d + 1, 1.0f, r->dout, d + 1, lambda + r->w2, b, 0.0f, r->da, b));
    EG_TRY(be->relu_bwd(be, (size_t)n * b, r->a, r->da, r->da));
    /* a = relu(h W1^T + b1) */
    EG_TRY(be->gemm(be, 1, 0, b, d, n, 1.0f, r->da, b, r->h, d, 1.0f, dlambda + r->w1, d));
    return be->bias_grad(be, n, b, 1, r->da, dlambda + r->b1);
}

void eg_rtn_free(eg_rtn *r)
{
    if (r->be) {
        r->be->free(r->be, r->a);
        r->be->free(r->be, r->o);
        r->be->free(r->be, r->da);
        r->be->free(r->be, r->dout);
    }
    eg_layout_free(&r->params);
    memset(r, 0, sizeof *r);
}
