/* The CPU backend's operations, one file per family; cpu_backend.c puts
 * them in the eg_backend table. Contracts are those of nn/backend.h. */
#ifndef EG_CPU_H
#define EG_CPU_H

#include "nn/backend.h"

/* cpu_gemm.c */
int cpu_gemm(eg_backend *be, int trans_a, int trans_b, int m, int n, int k,
             float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);
int cpu_bias_add(eg_backend *be, int rows, int cols, int inner, float *y,
                 const float *b);
int cpu_bias_grad(eg_backend *be, int rows, int cols, int inner,
                  const float *dy, float *db);

/* cpu_text.c: token encoders */
int cpu_gemm_batched(eg_backend *be, const eg_gemm_batch *gb, int trans_a, int trans_b, int m,
                     int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                     float beta, float *c, int ldc);
int cpu_embed_fwd(eg_backend *be, int n, int d, const int32_t *ids, const float *table, float *y,
                  int acc);
int cpu_embed_bwd(eg_backend *be, int n, int d, const int32_t *ids, int skip, const float *dy,
                  float *dtable);
int cpu_layernorm_fwd(eg_backend *be, int n, int d, const float *x, const float *gamma,
                      const float *beta, float eps, float *y, float *save_mean, float *save_rstd);
int cpu_layernorm_bwd(eg_backend *be, int n, int d, const float *x, const float *dy,
                      const float *gamma, const float *save_mean, const float *save_rstd,
                      float *dx, int acc, float *dgamma, float *dbeta);
int cpu_gelu_fwd(eg_backend *be, size_t n, const float *x, float *y);
int cpu_gelu_bwd(eg_backend *be, size_t n, const float *x, const float *dy, float *dx);
int cpu_softmax_fwd(eg_backend *be, int rows, int cols, int group, const int32_t *lens,
                    const float *x, float *y);
int cpu_softmax_bwd(eg_backend *be, int rows, int cols, const float *y, const float *dy,
                    float *dx);
int cpu_dropout(eg_backend *be, size_t n, float p, uint64_t key, uint64_t stream, const float *x,
                float *y);
int cpu_rtn_gate_fwd(eg_backend *be, int n, int d, const float *h, const float *o, float *y);
int cpu_rtn_gate_bwd(eg_backend *be, int n, int d, const float *o, const float *dy, float *dout);

/* cpu_conv.c */
int cpu_conv_fwd(eg_backend *be, const eg_conv_shape *cs, const float *x,
                 const float *w, float *y);
int cpu_conv_bwd_data(eg_backend *be, const eg_conv_shape *cs, const float *w,
                      const float *dy, float *dx, int acc);
int cpu_conv_bwd_filter(eg_backend *be, const eg_conv_shape *cs,
                        const float *x, const float *dy, float *dw);

/* cpu_norm.c: batch normalisation, feature-wise transformation */
int cpu_bn_fwd_train(eg_backend *be, int n, int c, int hw, const float *x,
                     const float *gamma, const float *beta, float *y,
                     float *run_mean, float *run_var, float momentum,
                     float eps, float *save_mean, float *save_invstd);
int cpu_bn_fwd_eval(eg_backend *be, int n, int c, int hw, const float *x,
                    const float *gamma, const float *beta, float *y,
                    const float *run_mean, const float *run_var, float eps);
int cpu_bn_bwd(eg_backend *be, int n, int c, int hw, const float *x,
               const float *dy, const float *gamma, const float *save_mean,
               const float *save_invstd, float *dx, float *dgamma,
               float *dbeta);
int cpu_bn_bwd_eval(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
                    const float *gamma, const float *run_mean, const float *run_var, float eps,
                    float *dx, float *dgamma, float *dbeta);
int cpu_ft_fwd(eg_backend *be, int n, int c, int hw, const float *x, const float *meta,
               const float *noise, float *y);
int cpu_ft_bwd(eg_backend *be, int n, int c, int hw, const float *x, const float *dy,
               const float *meta, const float *noise, float *dx, int acc, float *dmeta);

/* cpu_fewshot.c: strided block sums, squared distances */
int cpu_block_sum(eg_backend *be, const eg_blocks *bs, float alpha, const float *x, float *y,
                  int acc);
int cpu_sqdist_fwd(eg_backend *be, int m, int n, int d, const float *a, int group, int gstride,
                   const float *b, float *out);
int cpu_sqdist_bwd(eg_backend *be, int m, int n, int d, const float *a, int group, int gstride,
                   const float *b, const float *dout, float *da, float *db, int acc);

/* cpu_act.c: activations and the loss */
int cpu_relu_fwd(eg_backend *be, size_t n, const float *x, float *y);
int cpu_relu_bwd(eg_backend *be, size_t n, const float *y, const float *dy,
                 float *dx);
int cpu_sigmoid_fwd(eg_backend *be, size_t n, const float *x, float *y);
int cpu_sigmoid_bwd(eg_backend *be, size_t n, const float *y, const float *dy,
                    float *dx);
int cpu_xent_fwd(eg_backend *be, int n, int classes, const float *logits,
                 const int32_t *labels, float *loss, float *probs);
int cpu_xent_bwd(eg_backend *be, int n, int classes, const float *probs,
                 const int32_t *labels, const float *weight, float scale,
                 float *dlogits);

/* cpu_pool.c: pooling and the ResNet shortcut */
int cpu_maxpool_fwd(eg_backend *be, const eg_pool_shape *ps, const float *x,
                    float *y);
int cpu_maxpool_bwd(eg_backend *be, const eg_pool_shape *ps, const float *x,
                    const float *y, const float *dy, float *dx);
int cpu_avgpool_fwd(eg_backend *be, int n, int c, int hw, const float *x,
                    float *y);
int cpu_avgpool_bwd(eg_backend *be, int n, int c, int hw, const float *dy,
                    float *dx, int acc);
int cpu_shortcut_fwd(eg_backend *be, int n, int ci, int h, int w, int co,
                     int stride, const float *x, float *y);
int cpu_shortcut_bwd(eg_backend *be, int n, int ci, int h, int w, int co,
                     int stride, const float *dy, float *dx, int acc);

/* cpu_rotate.c */
int cpu_rotate_fwd(eg_backend *be, int n, int c, int h, int w,
                   const float *angle, const float *x, float *y);
int cpu_rotate_bwd(eg_backend *be, int n, int c, int h, int w,
                   const float *angle, const float *x, const float *dy,
                   float *dx, float *dangle);

/* cpu_vec.c: flat vectors, Rademacher noise, optimiser steps */
int cpu_fill(eg_backend *be, size_t n, float value, float *x);
int cpu_axpy(eg_backend *be, size_t n, float alpha, const float *x, float *y);
int cpu_scale(eg_backend *be, size_t n, float alpha, float *x);
int cpu_dot(eg_backend *be, size_t n, const float *x, const float *y,
            double *out);
int cpu_noise_combine(eg_backend *be, size_t n, int gaussian, uint64_t key, int k,
                      const uint64_t *streams, const float *alpha, const float *x, float *y);
int cpu_noise_dots(eg_backend *be, size_t n, int gaussian, uint64_t key, int k,
                   const uint64_t *streams, const float *g, double *out);
int cpu_sgd_step(eg_backend *be, size_t n, float *theta, const float *grad,
                 float *buf, float lr, float momentum, float wd, int nesterov,
                 int first);
int cpu_adam_step(eg_backend *be, size_t n, float *theta, const float *grad,
                  float *m, float *v, float lr, float beta1, float beta2,
                  float eps, float wd, int t);

/* Scratch memory of the CPU backend (convolution reorders and oneDNN's
 * scratchpad): at least `bytes`, grown on demand, counted by the
 * allocator; NULL when out of memory. */
float *cpu_scratch(eg_backend *be, size_t bytes);

#endif
