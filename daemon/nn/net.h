/* A network as a list of layers in topological order, functional in its
 * parameters: forward(net, θ, x) and backward(net, θ, dy) -> dθ, dx, so the
 * same network runs at θ, at perturbed copies θ_k and at a merged θ*
 * without copying modules.
 *
 * Parameters live in one flat arena θ described by net->params; BatchNorm
 * running statistics in a separate arena described by net->state (never
 * perturbed, never meta-learned). The net owns only activations and their
 * gradients, sized for max_batch. */
#ifndef EG_NET_H
#define EG_NET_H

#include "backend.h"
#include "layout.h"

typedef enum eg_layer_kind {
    EG_L_INPUT,
    EG_L_CONV,
    EG_L_LINEAR,   /* flattens its input */
    EG_L_BN,       /* BatchNorm2d (eps 1e-5, momentum 0.1, affine) */
    EG_L_RELU,
    EG_L_SIGMOID,
    EG_L_MAXPOOL,
    EG_L_AVGPOOL,  /* global average pool to (C, 1, 1) */
    EG_L_SHORTCUT, /* y = in + option-A shortcut of skip (ResNet) */
} eg_layer_kind;

typedef enum eg_mode {
    EG_TRAIN, /* batch statistics, running statistics updated */
    EG_PROBE, /* batch statistics, running statistics untouched */
    EG_EVAL,  /* running statistics */
} eg_mode;

typedef struct eg_layer {
    eg_layer_kind kind;
    int in, skip;         /* producer layers; skip only for SHORTCUT */
    int c, h, w;          /* output shape of one sample */
    int k, stride, pad;   /* CONV: kernel; MAXPOOL: window; LINEAR: k unused */
    size_t weight, bias;  /* offsets into θ; (size_t)-1 when absent */
    size_t state;         /* BN: running mean (c) then var (c) */
    int consumers;        /* layers reading this one's output */
    int in_place;         /* output and its gradient alias the input's */
    int written;          /* backward: dy holds a value (else overwrite) */
    int transient;        /* recomputing nets: y is recomputed in backward */
    int seg;              /* recomputing nets: the layer's segment */
    float *y;             /* (max_batch, c, h, w) */
    float *dy;            /* (max_batch, c, h, w) */
    float *aux;           /* BN: batch mean (c), 1/std (c), scratch (2c) */
} eg_layer;

typedef struct eg_net {
    eg_backend *be;
    eg_layer *layers;
    int n_layers, cap;
    eg_layout params, state;
    int max_batch, batch;  /* capacity; batch of the last forward */
    int need_dx;           /* keep a gradient for the input */
    eg_mode last_mode;
    float **grads;         /* the gradient buffers the layers' dy share */
    int n_grads;
    int recompute;         /* transient activations, recomputed in backward */
    float **acts;          /* the buffers transient activations share */
    int n_acts;
    struct eg_net_unit *units; /* recorded passes (net_replay.c) */
    int n_units;
    unsigned long unit_clock;
} eg_net;

/* Starts a net whose input is (c, h, w) per sample; layer 0 is the input. */
int eg_net_init(eg_net *net, eg_backend *be, int c, int h, int w);

/* Builders: each appends one layer reading layer `in` and returns its index,
 * or -1 with eg_errorf. `name` prefixes the parameter slices. */
int eg_net_conv(eg_net *net, int in, const char *name, int k, int size,
                int stride, int pad, int bias, eg_init weight_init);
int eg_net_linear(eg_net *net, int in, const char *name, int out, int bias,
                  eg_init weight_init);
int eg_net_bn(eg_net *net, int in, const char *name);
int eg_net_relu(eg_net *net, int in);
int eg_net_sigmoid(eg_net *net, int in);
int eg_net_maxpool(eg_net *net, int in, int size, int stride);
int eg_net_avgpool(eg_net *net, int in);
int eg_net_shortcut(eg_net *net, int in, int skip, int stride);

/* Allocates activations for batches up to max_batch; need_dx keeps the
 * gradient with respect to the input. Call once, after the builders.
 *
 * On a backend with `recompute` set, a net made of several blocks keeps
 * only the outputs of layers read by more than one layer (a ResNet block's
 * input), the input and the output; the layers between two kept outputs
 * form a segment whose activations share a few buffers with every other
 * segment's, and backward recomputes a segment's activations (batch
 * statistics, running statistics untouched) before going through it. */
int eg_net_finish(eg_net *net, int max_batch, int need_dx);

/* Runs the net on x (batch, c, h, w) at parameters theta (P) and state
 * (S, updated in EG_TRAIN mode). The output is eg_net_output(). */
int eg_net_forward(eg_net *net, const float *theta, float *state,
                   const float *x, int batch, eg_mode mode);

/* Backward of the last forward (which must not be EG_EVAL): dout is the
 * gradient of the output (batch, out); dtheta (P) accumulates (+=), or is
 * NULL to skip parameter gradients (only dx wanted); dx (batch, c, h, w) is
 * overwritten when not NULL (needs need_dx). */
int eg_net_backward(eg_net *net, const float *theta, const float *dout,
                    float *dtheta, float *dx);

/* (batch, out) output of the last forward, and its width. */
const float *eg_net_output(const eg_net *net);
int eg_net_out_dim(const eg_net *net);

/* Fills host buffers theta (P) and state (S) with a fresh initialisation. */
void eg_net_init_params(const eg_net *net, float *theta, float *state,
                        uint64_t seed);

/* Frees activations and layouts (not θ or state, which the caller owns). */
void eg_net_free(eg_net *net);

#endif
