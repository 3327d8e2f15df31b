/* A network as a list of layers in topological order, functional in its
 * parameters: forward(net, θ, x) and backward(net, θ, dy) -> dθ, dx, so the
 * same network runs at θ, at perturbed copies θ_k and at a merged θ*
 * without copying modules.
 *
 * Parameters live in one flat arena θ described by net->params; BatchNorm
 * running statistics in a separate arena described by net->state (never
 * perturbed, never meta-learned); the meta-parameters of feature-wise
 * transformation layers in a third, net->meta, handed over with
 * eg_net_set_ft. The net owns only activations and their gradients, sized
 * for max_batch, and the FT layers' noise. */
#ifndef EG_NET_H
#define EG_NET_H

#include "backend.h"
#include "layout.h"

typedef enum eg_layer_kind {
    EG_L_INPUT,
    EG_L_CONV,
    EG_L_LINEAR, /* flattens its input */
    EG_L_BN,     /* BatchNorm2d (eps 1e-5, momentum 0.1, affine); without
                    running statistics (state == (size_t)-1) it always
                    normalises with the batch statistics */
    EG_L_RELU,
    EG_L_SIGMOID,
    EG_L_MAXPOOL,
    EG_L_AVGPOOL,  /* global average pool to (C, 1, 1) */
    EG_L_SHORTCUT, /* y = in + option-A shortcut of skip (ResNet) */
    EG_L_FT,       /* feature-wise transformation (eg_net_ft) */
    EG_L_ADD,      /* y = in + skip, equal shapes */
} eg_layer_kind;

typedef enum eg_mode {
    EG_TRAIN, /* batch statistics, running statistics updated */
    EG_PROBE, /* batch statistics, running statistics untouched */
    EG_EVAL,  /* running statistics */
} eg_mode;

typedef struct eg_layer {
    eg_layer_kind kind;
    int in, skip;         /* producer layers; skip only for SHORTCUT, ADD */
    int c, h, w;          /* output shape of one sample */
    int k, stride, pad;   /* CONV: kernel; MAXPOOL: window; LINEAR: k unused */
    size_t weight, bias;  /* offsets into θ; (size_t)-1 when absent */
    size_t state;         /* BN: running mean (c) then var (c) */
    size_t meta;          /* FT: offset of θ_γ (c) then θ_β (c) in the meta
                             arena and in the noise */
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
    eg_layout params, state, meta;
    int max_batch, batch;  /* capacity; batch of the last forward */
    int need_dx;           /* keep a gradient for the input */
    eg_mode last_mode;
    float *last_state; /* state of the last forward (EG_EVAL backward and
                          recomputation read its running statistics) */
    /* Feature-wise transformations (eg_net_set_ft). */
    int n_ft, first_ft;   /* FT layers, the lowest one's index */
    const float *ft_meta; /* (M) device, or NULL: FT layers are identities */
    float *ft_dmeta;      /* (M) device, or NULL */
    uint64_t ft_key, ft_stream;
    float *ft_noise;       /* (M) device: e_j = eg_gaussian(ft_key, ft_stream, j) */
    int ft_drawn;          /* ft_noise holds the draws of (ft_key, ft_stream) */
    const float *fwd_meta; /* the setting the last forward ran with */
    uint64_t fwd_key, fwd_stream;
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
/* BatchNorm that keeps no running statistics and normalises with the batch
 * statistics in every mode (RelationNet's relation module). */
int eg_net_bn_batch(eg_net *net, int in, const char *name);
/* Max pooling over size x size windows, input padded by pad (-inf). */
int eg_net_maxpool(eg_net *net, int in, int size, int stride, int pad);
int eg_net_avgpool(eg_net *net, int in);
int eg_net_shortcut(eg_net *net, int in, int skip, int stride);
/* y = y_a + y_b (shapes equal): a ResNet block's join; returns the index. */
int eg_net_add(eg_net *net, int a, int b);
/* Feature-wise transformation (LFT): y = γ_c x + β_c per channel c, with
 * γ_c = 1 + ε_γc sp(θ_γc), β_c = ε_βc sp(θ_βc), sp the softplus at beta
 * 100, ε standard normal per channel, shared by the batch and every pixel.
 * θ_γ, θ_β are meta-parameters: slices "name.gamma", "name.beta" (c
 * floats each, initialised 0.3 and 0.5) of net->meta. An identity unless
 * eg_net_set_ft gave the net a meta vector. */
int eg_net_ft(eg_net *net, int in, const char *name);

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

/* Sets the feature-wise transformations for the passes that follow (call
 * after eg_net_finish). meta (M = net->meta.total, device) holds the FT
 * meta-parameters, or is NULL to make every FT layer the identity; dmeta
 * (M, device), when not NULL, accumulates (+=) ∂/∂meta in each backward.
 * The noise of meta element j (slice offset + channel) is
 * (float)eg_gaussian(key, stream, j), drawn here into device memory, so a
 * second forward at the same key and stream (a recomputation, a replayed
 * pass) sees the same noise. A backward must run with the meta, key and
 * stream of its forward (only dmeta may change in between). */
int eg_net_set_ft(eg_net *net, const float *meta, float *dmeta, uint64_t key, uint64_t stream);

/* Runs the net on x (batch, c, h, w) at parameters theta (P) and state
 * (S, updated in EG_TRAIN mode). The output is eg_net_output(). */
int eg_net_forward(eg_net *net, const float *theta, float *state,
                   const float *x, int batch, eg_mode mode);

/* Backward of the last forward: dout is the gradient of the output (batch,
 * out); dtheta (P) accumulates (+=), or is NULL to skip parameter
 * gradients; dx (batch, c, h, w) is overwritten when not NULL (needs
 * need_dx); the FT meta-gradient goes to eg_net_set_ft's dmeta. At least
 * one of the three must be asked for. After an EG_EVAL forward the
 * running statistics are constants (the state must be unchanged since);
 * after EG_TRAIN or EG_PROBE the batch statistics are differentiated. */
int eg_net_backward(eg_net *net, const float *theta, const float *dout,
                    float *dtheta, float *dx);

/* (batch, out) output of the last forward, and its width. */
const float *eg_net_output(const eg_net *net);
int eg_net_out_dim(const eg_net *net);

/* Fills host buffers theta (P) and state (S) with a fresh initialisation. */
void eg_net_init_params(const eg_net *net, float *theta, float *state,
                        uint64_t seed);

/* Fills host buffer meta (M) with the FT layers' initial values. */
void eg_net_init_meta(const eg_net *net, float *meta);

/* Frees activations and layouts (not θ or state, which the caller owns). */
void eg_net_free(eg_net *net);

#endif
