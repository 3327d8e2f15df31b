/* The RoBERTa / XLM-R token encoder on the backend's operations. */
#include "encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Dropout streams of one pass: call x SITES + site. */
#define SITES 4096
#define SITE_EMB 0
#define SITE_HEAD (SITES - 1)
static uint64_t site_attn(int l) { return 1 + 3 * (uint64_t)l; }
static uint64_t site_out(int l) { return 2 + 3 * (uint64_t)l; }
static uint64_t site_ffn(int l) { return 3 + 3 * (uint64_t)l; }

static int cfg_check(const eg_encoder_cfg *c)
{
    struct { const char *name; int v, lo, hi; } dims[] = {
        {"vocab", c->vocab, 1, 1 << 22},  {"d", c->d, 1, 1 << 16},
        {"layers", c->layers, 1, 256},    {"heads", c->heads, 1, 1024},
        {"ff", c->ff, 1, 1 << 18},        {"max_pos", c->max_pos, 2, 1 << 20},
        {"type_vocab", c->type_vocab, 1, 1024}, {"labels", c->labels, 1, 4096},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < dims[i].lo || dims[i].v > dims[i].hi)
            return eg_errorf("encoder: %s = %d outside [%d, %d]", dims[i].name, dims[i].v,
                             dims[i].lo, dims[i].hi);
    if (c->d % c->heads)
        return eg_errorf("encoder: d = %d is not a multiple of heads = %d", c->d, c->heads);
    if (c->pad_id < 0 || c->pad_id >= c->vocab || c->pad_id >= c->max_pos)
        return eg_errorf("encoder: pad_id = %d outside the word and position tables", c->pad_id);
    if (!(c->ln_eps > 0)) return eg_errorf("encoder: ln_eps = %g must be > 0", c->ln_eps);
    if (!(c->hidden_drop >= 0 && c->hidden_drop < 1) || !(c->attn_drop >= 0 && c->attn_drop < 1))
        return eg_errorf("encoder: dropout rates must lie in [0, 1)");
    if (!(c->init_std > 0)) return eg_errorf("encoder: init_std = %g must be > 0", c->init_std);
    if (c->layers >= (SITES - 2) / 3) return eg_errorf("encoder: too many layers");
    return 0;
}

/* Appends one slice; -1 leaves the layout's error. */
static int add(eg_layout *l, size_t *off, const char *name, size_t count, eg_init init,
               float std)
{
    *off = init == EG_INIT_NORMAL ? eg_layout_add_normal(l, name, count, std)
                                  : eg_layout_add(l, name, count, init, 0);
    return *off == (size_t)-1 ? -1 : 0;
}

static int layout(eg_encoder *e)
{
    const eg_encoder_cfg *c = &e->cfg;
    eg_layout *l = &e->params;
    size_t d = (size_t)c->d, ff = (size_t)c->ff;
    float sd = c->init_std;
    EG_TRY(add(l, &e->word, "emb.word", (size_t)c->vocab * d, EG_INIT_NORMAL, sd));
    EG_TRY(add(l, &e->pos, "emb.pos", (size_t)c->max_pos * d, EG_INIT_NORMAL, sd));
    EG_TRY(add(l, &e->type, "emb.type", (size_t)c->type_vocab * d, EG_INIT_NORMAL, sd));
    EG_TRY(add(l, &e->eln_g, "emb.ln.g", d, EG_INIT_ONES, 0));
    EG_TRY(add(l, &e->eln_b, "emb.ln.b", d, EG_INIT_ZEROS, 0));
    for (int i = 0; i < c->layers; i++) {
        eg_enc_layer_off *o = &e->off[i];
        char n[40];
#define SLICE(field, suffix, count, init)                                                 \
    snprintf(n, sizeof n, "l%d.%s", i, suffix);                                           \
    EG_TRY(add(l, &o->field, n, count, init, sd))
        SLICE(wqkv, "qkv.w", 3 * d * d, EG_INIT_NORMAL);
        SLICE(bqkv, "qkv.b", 3 * d, EG_INIT_ZEROS);
        SLICE(wo, "attn_out.w", d * d, EG_INIT_NORMAL);
        SLICE(bo, "attn_out.b", d, EG_INIT_ZEROS);
        SLICE(ln1_g, "ln1.g", d, EG_INIT_ONES);
        SLICE(ln1_b, "ln1.b", d, EG_INIT_ZEROS);
        SLICE(w1, "ffn1.w", ff * d, EG_INIT_NORMAL);
        SLICE(b1, "ffn1.b", ff, EG_INIT_ZEROS);
        SLICE(w2, "ffn2.w", d * ff, EG_INIT_NORMAL);
        SLICE(b2, "ffn2.b", d, EG_INIT_ZEROS);
        SLICE(ln2_g, "ln2.g", d, EG_INIT_ONES);
        SLICE(ln2_b, "ln2.b", d, EG_INIT_ZEROS);
#undef SLICE
    }
    EG_TRY(add(l, &e->cls_w, "cls.w", (size_t)c->labels * d, EG_INIT_NORMAL, sd));
    EG_TRY(add(l, &e->cls_b, "cls.b", (size_t)c->labels, EG_INIT_ZEROS, 0));
    return 0;
}

/* Allocates n floats into *p, counted against failure. */
static int need(eg_backend *be, float **p, size_t n)
{
    *p = eg_alloc_floats(be, n);
    return *p ? 0 : -1;
}

int eg_encoder_init(eg_encoder *e, eg_backend *be, const eg_encoder_cfg *cfg, int max_b,
                    int max_t)
{
    memset(e, 0, sizeof *e);
    e->be = be;
    e->cfg = *cfg;
    EG_TRY(cfg_check(cfg));
    if (max_b < 1 || max_t < 1 || max_t > cfg->max_pos - cfg->pad_id - 1)
        return eg_errorf("encoder: capacity %d x %d tokens (at most %d tokens a sequence)",
                         max_b, max_t, cfg->max_pos - cfg->pad_id - 1);
    e->max_b = max_b;
    e->max_t = max_t;
    int L = cfg->layers;
    e->off = calloc((size_t)L, sizeof *e->off);
    e->acts = calloc((size_t)L, sizeof *e->acts);
    e->x = calloc((size_t)L + 1, sizeof *e->x);
    if (!e->off || !e->acts || !e->x) {
        eg_encoder_free(e);
        return eg_errorf("encoder: out of memory");
    }
    if (layout(e) != 0) {
        eg_encoder_free(e);
        return -1;
    }
    size_t N = (size_t)max_b * max_t, d = (size_t)cfg->d, ff = (size_t)cfg->ff;
    size_t tt = (size_t)max_b * cfg->heads * max_t * max_t;
    int rc = need(be, &e->emb, N * d) || need(be, &e->emb_st, 2 * N);
    for (int i = 0; i <= L && !rc; i++) rc = need(be, &e->x[i], N * d);
    for (int i = 0; i < L && !rc; i++) {
        eg_enc_layer_acts *a = &e->acts[i];
        rc = need(be, &a->qkv, 3 * N * d) || need(be, &a->p, tt) || need(be, &a->ctx, N * d) ||
             need(be, &a->h1, N * d) || need(be, &a->y1, N * d) || need(be, &a->f, N * ff) ||
             need(be, &a->h2, N * d) || need(be, &a->st1, 2 * N) || need(be, &a->st2, 2 * N);
    }
    rc = rc || need(be, &e->head_in, N * d) || need(be, &e->logits, N * cfg->labels) ||
         need(be, &e->s_tt, tt) || need(be, &e->s_ff, N * ff) || need(be, &e->g_a, N * d) ||
         need(be, &e->g_b, N * d) || need(be, &e->g_c, N * d) || need(be, &e->g_qkv, 3 * N * d) ||
         need(be, &e->g_tt, tt) || need(be, (float **)&e->zeros, N);
    if (rc) {
        eg_encoder_free(e);
        return -1;
    }
    return 0;
}

void eg_encoder_init_params(const eg_encoder *e, float *theta, uint64_t seed)
{
    eg_layout_init(&e->params, theta, seed);
    size_t d = (size_t)e->cfg.d;
    memset(theta + e->word + (size_t)e->cfg.pad_id * d, 0, d * sizeof(float));
    memset(theta + e->pos + (size_t)e->cfg.pad_id * d, 0, d * sizeof(float));
}

float *eg_encoder_hidden(const eg_encoder *e) { return e->x[e->cfg.layers]; }

/* y (N, out) = x (N, in) W^T + b, W (out, in). */
static int linear_fwd(eg_backend *be, int N, int in, int out, const float *x, const float *w,
                      const float *b, float *y)
{
    EG_TRY(be->gemm(be, 0, 1, N, out, in, 1.0f, x, in, w, in, 0.0f, y, out));
    return be->bias_add(be, N, out, 1, y, b);
}

/* dW += dy^T x, db += sum dy (skipped when dw is NULL); dx (N, in) = dy W
 * when dx is not NULL. */
static int linear_bwd(eg_backend *be, int N, int in, int out, const float *x, const float *w,
                      const float *dy, float *dw, float *db, float *dx)
{
    if (dw) {
        EG_TRY(be->gemm(be, 1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in));
        EG_TRY(be->bias_grad(be, N, out, 1, dy, db));
    }
    if (dx) EG_TRY(be->gemm(be, 0, 0, N, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in));
    return 0;
}

/* y = dropout(x) at the site of pass, or x copied when the pass keeps
 * every unit (y == x: nothing to do). */
static int drop_pass(eg_encoder *e, const eg_enc_pass *pass, float p, uint64_t site, size_t n,
                     const float *x, float *y)
{
    eg_backend *be = e->be;
    if (pass->train && p > 0)
        return be->dropout(be, n, p, pass->key, pass->call * SITES + site, x, y);
    return x == y ? 0 : be->copy(be, y, x, n * sizeof(float));
}

/* The same for the last encoder forward's pass. */
static int drop(eg_encoder *e, float p, uint64_t site, size_t n, const float *x, float *y)
{
    return drop_pass(e, &e->pass, p, site, n, x, y);
}

/* The attention shapes of the current batch. */
typedef struct attn_dims {
    int b, t, h, dh, d;
    float scale;
    eg_gemm_batch qk, pv;
} attn_dims;

static attn_dims attn_of(const eg_encoder *e)
{
    attn_dims a;
    a.b = e->tok.b;
    a.t = e->tok.t;
    a.h = e->cfg.heads;
    a.d = e->cfg.d;
    a.dh = a.d / a.h;
    a.scale = (float)(1.0 / sqrt((double)a.dh));
    size_t seq3 = (size_t)a.t * 3 * a.d, tt = (size_t)a.t * a.t;
    /* S_ij (t, t) = Q_ij K_ij^T: Q, K head j of sequence i in the fused rows. */
    a.qk = (eg_gemm_batch){a.b, a.h, seq3, (size_t)a.dh, seq3, (size_t)a.dh, a.h * tt, tt};
    /* ctx_ij (t, dh) = P_ij V_ij, written into head j's columns of ctx. */
    a.pv = (eg_gemm_batch){a.b, a.h, a.h * tt, tt, seq3, (size_t)a.dh, (size_t)a.t * a.d,
                           (size_t)a.dh};
    return a;
}

static int layer_fwd(eg_encoder *e, const float *theta, int l)
{
    eg_backend *be = e->be;
    const eg_encoder_cfg *c = &e->cfg;
    const eg_enc_layer_off *o = &e->off[l];
    eg_enc_layer_acts *a = &e->acts[l];
    attn_dims A = attn_of(e);
    int N = A.b * A.t, d = c->d, ff = c->ff;
    const float *x = e->x[l];
    size_t ntt = (size_t)A.b * A.h * A.t * A.t;

    EG_TRY(linear_fwd(be, N, d, 3 * d, x, theta + o->wqkv, theta + o->bqkv, a->qkv));
    EG_TRY(be->gemm_batched(be, &A.qk, 0, 1, A.t, A.t, A.dh, A.scale, a->qkv, 3 * d,
                            a->qkv + d, 3 * d, 0.0f, a->p, A.t));
    EG_TRY(be->softmax_fwd(be, A.b * A.h * A.t, A.t, A.h * A.t, e->tok.lens, a->p, a->p));
    const float *pd = a->p;
    if (e->pass.train && c->attn_drop > 0) {
        EG_TRY(drop(e, c->attn_drop, site_attn(l), ntt, a->p, e->s_tt));
        pd = e->s_tt;
    }
    EG_TRY(be->gemm_batched(be, &A.pv, 0, 0, A.t, A.dh, A.t, 1.0f, pd, A.t, a->qkv + 2 * d,
                            3 * d, 0.0f, a->ctx, d));
    EG_TRY(linear_fwd(be, N, d, d, a->ctx, theta + o->wo, theta + o->bo, a->h1));
    EG_TRY(drop(e, c->hidden_drop, site_out(l), (size_t)N * d, a->h1, a->h1));
    EG_TRY(be->axpy(be, (size_t)N * d, 1.0f, x, a->h1));
    EG_TRY(be->layernorm_fwd(be, N, d, a->h1, theta + o->ln1_g, theta + o->ln1_b, c->ln_eps, a->y1,
                             a->st1, a->st1 + N));
    EG_TRY(linear_fwd(be, N, d, ff, a->y1, theta + o->w1, theta + o->b1, a->f));
    EG_TRY(be->gelu_fwd(be, (size_t)N * ff, a->f, e->s_ff));
    EG_TRY(linear_fwd(be, N, ff, d, e->s_ff, theta + o->w2, theta + o->b2, a->h2));
    EG_TRY(drop(e, c->hidden_drop, site_ffn(l), (size_t)N * d, a->h2, a->h2));
    EG_TRY(be->axpy(be, (size_t)N * d, 1.0f, a->y1, a->h2));
    return be->layernorm_fwd(be, N, d, a->h2, theta + o->ln2_g, theta + o->ln2_b, c->ln_eps,
                             e->x[l + 1], a->st2, a->st2 + N);
}

int eg_encoder_forward(eg_encoder *e, const float *theta, const eg_tokens *tok,
                       const eg_enc_pass *pass)
{
    if (tok->b < 1 || tok->b > e->max_b || tok->t < 1 || tok->t > e->max_t)
        return eg_errorf("encoder: batch %d x %d tokens exceeds the capacity %d x %d", tok->b,
                         tok->t, e->max_b, e->max_t);
    eg_backend *be = e->be;
    const eg_encoder_cfg *c = &e->cfg;
    e->tok = *tok;
    e->pass = *pass;
    int N = tok->b * tok->t, d = c->d;
    EG_TRY(be->embed_fwd(be, N, d, tok->ids, theta + e->word, e->emb, 0));
    EG_TRY(be->embed_fwd(be, N, d, tok->pos, theta + e->pos, e->emb, 1));
    EG_TRY(be->embed_fwd(be, N, d, e->zeros, theta + e->type, e->emb, 1));
    EG_TRY(be->layernorm_fwd(be, N, d, e->emb, theta + e->eln_g, theta + e->eln_b, c->ln_eps,
                             e->x[0], e->emb_st, e->emb_st + N));
    EG_TRY(drop(e, c->hidden_drop, SITE_EMB, (size_t)N * d, e->x[0], e->x[0]));
    for (int l = 0; l < c->layers; l++) EG_TRY(layer_fwd(e, theta, l));
    return 0;
}

int eg_encoder_head_forward(eg_encoder *e, const float *theta, const float *h, int n,
                            const eg_enc_pass *pass, const float **logits)
{
    if (n < 1 || n > e->max_b * e->max_t)
        return eg_errorf("encoder: head on %d tokens outside 1..%d", n, e->max_b * e->max_t);
    int d = e->cfg.d;
    e->head_n = n;
    e->head_pass = *pass;
    EG_TRY(drop_pass(e, pass, e->cfg.hidden_drop, SITE_HEAD, (size_t)n * d, h, e->head_in));
    EG_TRY(linear_fwd(e->be, n, d, e->cfg.labels, e->head_in, theta + e->cls_w, theta + e->cls_b,
                      e->logits));
    *logits = e->logits;
    return 0;
}

int eg_encoder_head_backward(eg_encoder *e, const float *theta, const float *dlogits,
                             float *dtheta, float *dh)
{
    int n = e->head_n, d = e->cfg.d;
    EG_TRY(linear_bwd(e->be, n, d, e->cfg.labels, e->head_in, theta + e->cls_w, dlogits,
                      dtheta ? dtheta + e->cls_w : NULL, dtheta ? dtheta + e->cls_b : NULL, dh));
    if (dh) EG_TRY(drop_pass(e, &e->head_pass, e->cfg.hidden_drop, SITE_HEAD, (size_t)n * d, dh, dh));
    return 0;
}

/* Layer l's backward: dxo (N, d), the gradient of its output, is used up;
 * the gradient of its input is written to dxi. */
static int layer_bwd(eg_encoder *e, const float *theta, float *dtheta, int l, float *dxo,
                     float *dxi)
{
    eg_backend *be = e->be;
    const eg_encoder_cfg *c = &e->cfg;
    const eg_enc_layer_off *o = &e->off[l];
    const eg_enc_layer_acts *a = &e->acts[l];
    attn_dims A = attn_of(e);
    int N = A.b * A.t, d = c->d, ff = c->ff;
    size_t nd = (size_t)N * d, ntt = (size_t)A.b * A.h * A.t * A.t;
    float *dh = e->g_c;

    /* x_{l+1} = LN2(h2), h2 = y1 + drop(W2 gelu(f) + b2). */
    EG_TRY(be->layernorm_bwd(be, N, d, a->h2, dxo, theta + o->ln2_g, a->st2, a->st2 + N, dh, 0,
                             dtheta + o->ln2_g, dtheta + o->ln2_b));
    EG_TRY(drop(e, c->hidden_drop, site_ffn(l), nd, dh, dxo));
    EG_TRY(be->gelu_fwd(be, (size_t)N * ff, a->f, e->s_ff));
    EG_TRY(linear_bwd(be, N, ff, d, e->s_ff, theta + o->w2, dxo, dtheta + o->w2, dtheta + o->b2,
                      e->s_ff));
    EG_TRY(be->gelu_bwd(be, (size_t)N * ff, a->f, e->s_ff, e->s_ff));
    EG_TRY(linear_bwd(be, N, d, ff, a->y1, theta + o->w1, e->s_ff, dtheta + o->w1, dtheta + o->b1,
                      dxo));
    EG_TRY(be->axpy(be, nd, 1.0f, dh, dxo));
    /* y1 = LN1(h1), h1 = x + drop(Wo ctx + bo). */
    EG_TRY(be->layernorm_bwd(be, N, d, a->h1, dxo, theta + o->ln1_g, a->st1, a->st1 + N, dh, 0,
                             dtheta + o->ln1_g, dtheta + o->ln1_b));
    EG_TRY(drop(e, c->hidden_drop, site_out(l), nd, dh, dxo));
    EG_TRY(linear_bwd(be, N, d, d, a->ctx, theta + o->wo, dxo, dtheta + o->wo, dtheta + o->bo,
                      dxi));
    /* ctx = drop(P) V, P = softmax(scale Q K^T); dxi holds dctx. */
    const float *pd = a->p;
    if (e->pass.train && c->attn_drop > 0) {
        EG_TRY(drop(e, c->attn_drop, site_attn(l), ntt, a->p, e->s_tt));
        pd = e->s_tt;
    }
    eg_gemm_batch dp = {A.b, A.h, (size_t)A.t * d, (size_t)A.dh, A.qk.sb0, A.qk.sb1, A.qk.sc0,
                        A.qk.sc1};
    EG_TRY(be->gemm_batched(be, &dp, 0, 1, A.t, A.t, A.dh, 1.0f, dxi, d, a->qkv + 2 * d, 3 * d,
                            0.0f, e->g_tt, A.t));
    eg_gemm_batch dv = {A.b, A.h, A.qk.sc0, A.qk.sc1, (size_t)A.t * d, (size_t)A.dh, A.qk.sa0,
                        A.qk.sa1};
    EG_TRY(be->gemm_batched(be, &dv, 1, 0, A.t, A.dh, A.t, 1.0f, pd, A.t, dxi, d, 0.0f,
                            e->g_qkv + 2 * d, 3 * d));
    EG_TRY(drop(e, c->attn_drop, site_attn(l), ntt, e->g_tt, e->g_tt));
    EG_TRY(be->softmax_bwd(be, A.b * A.h * A.t, A.t, a->p, e->g_tt, e->g_tt));
    /* dQ = scale dS K, dK = scale dS^T Q. */
    eg_gemm_batch dq = {A.b, A.h, A.qk.sc0, A.qk.sc1, A.qk.sb0, A.qk.sb1, A.qk.sa0, A.qk.sa1};
    EG_TRY(be->gemm_batched(be, &dq, 0, 0, A.t, A.dh, A.t, A.scale, e->g_tt, A.t, a->qkv + d,
                            3 * d, 0.0f, e->g_qkv, 3 * d));
    EG_TRY(be->gemm_batched(be, &dq, 1, 0, A.t, A.dh, A.t, A.scale, e->g_tt, A.t, a->qkv, 3 * d,
                            0.0f, e->g_qkv + d, 3 * d));
    EG_TRY(linear_bwd(be, N, d, 3 * d, e->x[l], theta + o->wqkv, e->g_qkv, dtheta + o->wqkv,
                      dtheta + o->bqkv, dxi));
    return be->axpy(be, nd, 1.0f, dh, dxi);
}

int eg_encoder_backward(eg_encoder *e, const float *theta, const float *dh, float *dtheta)
{
    eg_backend *be = e->be;
    const eg_encoder_cfg *c = &e->cfg;
    int N = e->tok.b * e->tok.t, d = c->d;
    size_t nd = (size_t)N * d;
    float *dxo = e->g_a, *dxi = e->g_b;
    if (dh != dxo) EG_TRY(be->copy(be, dxo, dh, nd * sizeof(float)));
    for (int l = c->layers - 1; l >= 0; l--) {
        EG_TRY(layer_bwd(e, theta, dtheta, l, dxo, dxi));
        float *t = dxo;
        dxo = dxi;
        dxi = t;
    }
    /* x0 = drop(LN(word + pos + type)). */
    EG_TRY(drop(e, c->hidden_drop, SITE_EMB, nd, dxo, dxo));
    EG_TRY(be->layernorm_bwd(be, N, d, e->emb, dxo, theta + e->eln_g, e->emb_st, e->emb_st + N,
                             dxi, 0, dtheta + e->eln_g, dtheta + e->eln_b));
    EG_TRY(be->embed_bwd(be, N, d, e->tok.ids, c->pad_id, dxi, dtheta + e->word));
    EG_TRY(be->embed_bwd(be, N, d, e->tok.pos, c->pad_id, dxi, dtheta + e->pos));
    return be->embed_bwd(be, N, d, e->zeros, -1, dxi, dtheta + e->type);
}

void eg_encoder_free(eg_encoder *e)
{
    eg_backend *be = e->be;
    if (be) {
        be->free(be, e->emb);
        be->free(be, e->emb_st);
        for (int i = 0; e->x && i <= e->cfg.layers; i++) be->free(be, e->x[i]);
        for (int i = 0; e->acts && i < e->cfg.layers; i++) {
            eg_enc_layer_acts *a = &e->acts[i];
            float *bufs[] = {a->qkv, a->p, a->ctx, a->h1, a->y1, a->f, a->h2, a->st1, a->st2};
            for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) be->free(be, bufs[k]);
        }
        float *bufs[] = {e->head_in, e->logits, e->s_tt, e->s_ff, e->g_a,
                         e->g_b,     e->g_c,    e->g_qkv, e->g_tt, (float *)e->zeros};
        for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) be->free(be, bufs[k]);
    }
    free(e->off);
    free(e->acts);
    free(e->x);
    eg_layout_free(&e->params);
    memset(e, 0, sizeof *e);
}
