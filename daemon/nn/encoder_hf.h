/* Hugging Face XLM-R / RoBERTa checkpoints for nn/encoder.h: the
 * encoder's configuration from config.json, its weights from a
 * model.safetensors file (F32, F16 or BF16), mapped by name onto θ. */
#ifndef EG_ENCODER_HF_H
#define EG_ENCODER_HF_H

#include "data/hf_config.h"
#include "encoder.h"

/* The encoder of hf with a head of `labels` outputs (dropout rates,
 * LayerNorm eps and padding id as the config says; init_std 0.02, the
 * transformers default, for the parts the checkpoint lacks). */
void eg_encoder_cfg_from_hf(const eg_hf_config *hf, int labels, eg_encoder_cfg *cfg);

/* Reads the safetensors file at path into host theta (e->params.total):
 * every embedding, LayerNorm and layer tensor under RoBERTa's names
 * ("roberta.embeddings.word_embeddings.weight", ...; with or without the
 * "roberta." prefix), the query, key and value projections into the
 * fused slice; the token classifier ("classifier.weight" (labels, d),
 * "classifier.bias") when the file has one, *head_loaded then set (left
 * as theta held it otherwise). A missing tensor, a shape other than the
 * encoder's, an unreadable dtype or a truncated file fails naming the
 * tensor; theta is then partly written. */
int eg_encoder_load_st(const eg_encoder *e, const char *path, float *theta, int *head_loaded);

#endif
