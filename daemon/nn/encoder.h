/* A token encoder of the RoBERTa / XLM-R family and its linear token
 * classifier, functional in its parameters like nn/net.h: forward(θ,
 * tokens) and backward(θ, dy) -> dθ, so perturbed copies and merged
 * parameters run on the same activations.
 *
 * Embeddings (word + position + token type, LayerNorm, dropout), then
 * `layers` post-LayerNorm transformer layers: x <- LN(x + drop(attn(x))),
 * x <- LN(x + drop(W2 gelu(W1 x)))), attention with a padding mask and
 * dropout on its probabilities. The head is dropout + a linear layer per
 * token. Parameters live in one flat arena θ described by enc->params
 * (the classifier's slices last); every Linear weight is (out, in) as in
 * PyTorch, the query, key and value projections fused into one (3 d, d)
 * slice.
 *
 * Memory: a layer keeps its input, the fused projections, the attention
 * probabilities, the attention context, both LayerNorm inputs and outputs
 * and the feed-forward pre-activation (about 8 d + ff floats per token
 * plus heads x tokens per token); the GELU outputs and the dropped
 * attention probabilities are recomputed in backward, dropout masks are
 * regenerated from Philox, and every gradient of the backward pass lives
 * in a handful of buffers every layer shares. */
#ifndef EG_ENCODER_H
#define EG_ENCODER_H

#include <stdint.h>

#include "backend.h"
#include "layout.h"

typedef struct eg_encoder_cfg {
    int vocab, d, layers, heads, ff;
    int max_pos;       /* rows of the position table */
    int type_vocab;    /* rows of the token-type table (1 for XLM-R) */
    int pad_id;        /* padding_idx of the word and position tables */
    float ln_eps;
    float hidden_drop; /* embeddings, both residual branches, the head */
    float attn_drop;   /* attention probabilities */
    float init_std;    /* N(0, init_std^2) weights (initializer_range) */
    int labels;        /* classifier outputs */
} eg_encoder_cfg;

/* One forward's token batch, in device memory. Sequences are padded to t
 * tokens; position ids follow RoBERTa (pad_id + 1 + index for tokens,
 * pad_id for padding: eg_tokenizer's helper). */
typedef struct eg_tokens {
    int b, t;
    const int32_t *ids;  /* (b, t) */
    const int32_t *pos;  /* (b, t) */
    const int32_t *lens; /* (b) tokens before the padding, 1..t */
} eg_tokens;

/* How a pass runs: dropout on (train) with masks drawn from Philox
 * streams of (key, call), so a pass repeated with the same key and call
 * drops the same units. */
typedef struct eg_enc_pass {
    int train;
    uint64_t key, call;
} eg_enc_pass;

typedef struct eg_enc_layer_off {
    size_t wqkv, bqkv, wo, bo, ln1_g, ln1_b, w1, b1, w2, b2, ln2_g, ln2_b;
} eg_enc_layer_off;

typedef struct eg_enc_layer_acts {
    float *qkv;      /* (N, 3 d) */
    float *p;        /* (b, heads, t, t) attention probabilities */
    float *ctx;      /* (N, d) */
    float *h1, *y1;  /* (N, d) LayerNorm 1 input and output */
    float *f;        /* (N, ff) feed-forward pre-activation */
    float *h2;       /* (N, d) LayerNorm 2 input; its output is the next x */
    float *st1, *st2; /* (2 N) LayerNorm mean then rstd */
} eg_enc_layer_acts;

typedef struct eg_encoder {
    eg_backend *be;
    eg_encoder_cfg cfg;
    eg_layout params;
    size_t word, pos, type, eln_g, eln_b, cls_w, cls_b;
    eg_enc_layer_off *off;      /* (layers) */
    int max_b, max_t;
    /* Activations, sized for max_b x max_t tokens (N). */
    float *emb, *emb_st;        /* (N, d) embedding sum, (2 N) its LN statistics */
    float **x;                  /* (layers + 1) x (N, d): layer inputs, x[layers] the output */
    eg_enc_layer_acts *acts;    /* (layers) */
    float *head_in;             /* (N, d) the classifier's dropped input */
    float *logits;              /* (N, labels) */
    /* Scratch shared by every layer. */
    float *s_tt;                /* (b, heads, t, t) dropped probabilities */
    float *s_ff;                /* (N, ff) GELU outputs, their gradient */
    float *g_a, *g_b, *g_c;     /* (N, d) */
    float *g_qkv;               /* (N, 3 d) */
    float *g_tt;                /* (b, heads, t, t) */
    int32_t *zeros;             /* (N) token-type ids */
    /* The last forward, and the last head forward's tokens and pass. */
    eg_tokens tok;
    eg_enc_pass pass;
    int head_n;
    eg_enc_pass head_pass;
} eg_encoder;

/* Lays out the parameters of cfg and allocates activations for batches of
 * up to max_b sequences of max_t tokens on be. 0, or -1 with eg_errorf
 * naming the bad dimension. */
int eg_encoder_init(eg_encoder *e, eg_backend *be, const eg_encoder_cfg *cfg, int max_b,
                    int max_t);

/* Fills host buffer theta (params.total) as transformers initialises
 * RoBERTa: weights N(0, init_std^2), biases 0, LayerNorm 1 and 0, the
 * padding rows of the word and position tables 0. */
void eg_encoder_init_params(const eg_encoder *e, float *theta, uint64_t seed);

/* Runs the encoder on tok at theta; the output hidden states (tok.b x
 * tok.t, d) are eg_encoder_hidden(). Checks the batch's shape against
 * the capacity (the ids and lengths are the caller's to check). */
int eg_encoder_forward(eg_encoder *e, const float *theta, const eg_tokens *tok,
                       const eg_enc_pass *pass);

/* (N, d) hidden states of the last forward. */
float *eg_encoder_hidden(const eg_encoder *e);

/* The head on h (n, d), n <= max_b x max_t tokens, with the dropout of
 * pass: logits (n, labels) = drop(h) W^T + b, returned in *logits (valid
 * until the next head_forward). h need not come from the last forward
 * (MetaXL runs the head on transformed, cached hidden states). */
int eg_encoder_head_forward(eg_encoder *e, const float *theta, const float *h, int n,
                            const eg_enc_pass *pass, const float **logits);

/* Backward of the last head_forward from dlogits (n, labels): the
 * classifier's gradient into dtheta (+=) when it is not NULL; dh (n, d)
 * overwritten when not NULL. */
int eg_encoder_head_backward(eg_encoder *e, const float *theta, const float *dlogits,
                             float *dtheta, float *dh);

/* Backward of the last eg_encoder_forward from dh (N, d), the gradient of
 * its hidden states: every encoder parameter's gradient into dtheta (+=).
 * dh may be e->g_a, where backward starts (any other buffer is copied
 * there first). */
int eg_encoder_backward(eg_encoder *e, const float *theta, const float *dh, float *dtheta);

void eg_encoder_free(eg_encoder *e);

#endif
