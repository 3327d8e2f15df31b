#include "encoder_hf.h"

#include <stdio.h>
#include <string.h>

#include "data/safetensors.h"
#include "util/err.h"

void eg_encoder_cfg_from_hf(const eg_hf_config *hf, int labels, eg_encoder_cfg *cfg)
{
    *cfg = (eg_encoder_cfg){
        .vocab = hf->vocab_size,
        .d = hf->hidden_size,
        .layers = hf->num_hidden_layers,
        .heads = hf->num_attention_heads,
        .ff = hf->intermediate_size,
        .max_pos = hf->max_position_embeddings,
        .type_vocab = hf->type_vocab_size,
        .pad_id = hf->pad_token_id,
        .ln_eps = (float)hf->layer_norm_eps,
        .hidden_drop = (float)hf->hidden_dropout_prob,
        .attn_drop = (float)hf->attention_probs_dropout_prob,
        .init_std = 0.02f,
        .labels = labels,
    };
}

/* Loads prefix + name, of shape (rows, cols) (cols 0: a vector), into out. */
static int load(eg_st_file *st, const char *prefix, const char *name, int64_t rows, int64_t cols,
                float *out)
{
    char full[160];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    int64_t shape[2] = {rows, cols};
    return eg_st_load_f32(st, full, shape, cols ? 2 : 1, out);
}

static int load_layer(eg_st_file *st, const char *prefix, const eg_encoder *e, int i, float *theta)
{
    const eg_enc_layer_off *o = &e->off[i];
    int64_t d = e->cfg.d, ff = e->cfg.ff;
    char p[64];
    snprintf(p, sizeof p, "%sencoder.layer.%d.", prefix, i);
    static const char *const qkv[3] = {"query", "key", "value"};
    for (int k = 0; k < 3; k++) {
        char n[96];
        snprintf(n, sizeof n, "attention.self.%s.weight", qkv[k]);
        EG_TRY(load(st, p, n, d, d, theta + o->wqkv + (size_t)k * d * d));
        snprintf(n, sizeof n, "attention.self.%s.bias", qkv[k]);
        EG_TRY(load(st, p, n, d, 0, theta + o->bqkv + (size_t)k * d));
    }
    EG_TRY(load(st, p, "attention.output.dense.weight", d, d, theta + o->wo));
    EG_TRY(load(st, p, "attention.output.dense.bias", d, 0, theta + o->bo));
    EG_TRY(load(st, p, "attention.output.LayerNorm.weight", d, 0, theta + o->ln1_g));
    EG_TRY(load(st, p, "attention.output.LayerNorm.bias", d, 0, theta + o->ln1_b));
    EG_TRY(load(st, p, "intermediate.dense.weight", ff, d, theta + o->w1));
    EG_TRY(load(st, p, "intermediate.dense.bias", ff, 0, theta + o->b1));
    EG_TRY(load(st, p, "output.dense.weight", d, ff, theta + o->w2));
    EG_TRY(load(st, p, "output.dense.bias", d, 0, theta + o->b2));
    EG_TRY(load(st, p, "output.LayerNorm.weight", d, 0, theta + o->ln2_g));
    return load(st, p, "output.LayerNorm.bias", d, 0, theta + o->ln2_b);
}

static int load_all(eg_st_file *st, const eg_encoder *e, float *theta, int *head_loaded)
{
    const eg_encoder_cfg *c = &e->cfg;
    const char *prefix = eg_st_find(st, "roberta.embeddings.word_embeddings.weight") ? "roberta."
                                                                                    : "";
    EG_TRY(load(st, prefix, "embeddings.word_embeddings.weight", c->vocab, c->d,
                theta + e->word));
    EG_TRY(load(st, prefix, "embeddings.position_embeddings.weight", c->max_pos, c->d,
                theta + e->pos));
    EG_TRY(load(st, prefix, "embeddings.token_type_embeddings.weight", c->type_vocab, c->d,
                theta + e->type));
    EG_TRY(load(st, prefix, "embeddings.LayerNorm.weight", c->d, 0, theta + e->eln_g));
    EG_TRY(load(st, prefix, "embeddings.LayerNorm.bias", c->d, 0, theta + e->eln_b));
    for (int i = 0; i < c->layers; i++) EG_TRY(load_layer(st, prefix, e, i, theta));
    *head_loaded = 0;
    if (eg_st_find(st, "classifier.weight")) {
        EG_TRY(load(st, "", "classifier.weight", c->labels, c->d, theta + e->cls_w));
        EG_TRY(load(st, "", "classifier.bias", c->labels, 0, theta + e->cls_b));
        *head_loaded = 1;
    }
    return 0;
}

int eg_encoder_load_st(const eg_encoder *e, const char *path, float *theta, int *head_loaded)
{
    eg_st_file st;
    EG_TRY(eg_st_open(path, &st));
    int rc = load_all(&st, e, theta, head_loaded);
    eg_st_close(&st);
    return rc;
}
