/* MetaXL's representation transformation network (Xia et al. 2021): on
 * hidden states h (n, d), h' = h + RTN(h) with RTN(h) = sigmoid(o_d) o_0..d-1,
 * o = W2 relu(W1 h + b1) + b2 of d + 1 outputs; h enters detached (no
 * gradient flows back through the RTN into h). Functional in its
 * parameters λ (one arena, params): W1 (b, d), b1 (b), W2 (d + 1, b), b2
 * (d + 1), Xavier-normal weights and zero biases at the start. */
#ifndef EG_RTN_H
#define EG_RTN_H

#include "backend.h"
#include "layout.h"

typedef struct eg_rtn {
    eg_backend *be;
    int d, b, cap;
    eg_layout params;
    size_t w1, b1, w2, b2;
    float *a;    /* (cap, b) relu(W1 h + b1) */
    float *o;    /* (cap, d + 1) */
    float *da;   /* (cap, b) */
    float *dout; /* (cap, d + 1) */
    const float *h; /* the last forward's input */
    int n;
} eg_rtn;

/* An RTN over width d with bottleneck b for up to cap rows; 0 or -1 with
 * eg_errorf. */
int eg_rtn_init(eg_rtn *r, eg_backend *be, int d, int b, int cap);

/* Fills host buffer lambda (params.total) with the initialisation. */
void eg_rtn_init_params(const eg_rtn *r, float *lambda, uint64_t seed);

/* y (n, d) = h + RTN(h) at lambda; y may not alias h, which must stay
 * unchanged until the backward. */
int eg_rtn_forward(eg_rtn *r, const float *lambda, const float *h, int n, float *y);

/* Backward of the last forward from dy (n, d): dlambda += ∂/∂λ. */
int eg_rtn_backward(eg_rtn *r, const float *lambda, const float *dy, float *dlambda);

void eg_rtn_free(eg_rtn *r);

#endif
