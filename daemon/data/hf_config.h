/* The config.json of a Hugging Face XLM-R / RoBERTa checkpoint folder:
 * the encoder's sizes and the few settings the engine's transformer
 * implements. A config this engine cannot run as written (another model
 * type, an activation other than GELU, heads that do not divide the width)
 * is refused rather than approximated. */
#ifndef EG_HF_CONFIG_H
#define EG_HF_CONFIG_H

#include <stddef.h>

/* Largest config.json read (bytes); id2label tables are its only long
 * part. */
#define EG_HF_CONFIG_MAX_FILE ((size_t)16 << 20)

typedef struct eg_hf_config {
    char model_type[16];          /* "xlm-roberta" or "roberta" */
    int vocab_size;               /* rows of the word embeddings */
    int hidden_size;              /* n_embd */
    int num_hidden_layers;
    int num_attention_heads;      /* divides hidden_size */
    int intermediate_size;        /* the feed-forward width */
    int max_position_embeddings;  /* > pad_token_id + 1: positions start there */
    int type_vocab_size;          /* default 1 */
    double layer_norm_eps;        /* default 1e-5 */
    int pad_token_id;             /* default 1; < vocab_size */
    double hidden_dropout_prob;   /* default 0.1 */
    double attention_probs_dropout_prob; /* default 0.1 */
    char hidden_act[8];           /* "gelu" (the default), the only one accepted */
    int num_labels;               /* num_labels, else id2label's size, else 0 */
} eg_hf_config;

/* Reads dir/config.json into *out. Fails, naming the file and the field,
 * on a missing file, text that is not a JSON object (or repeats a key),
 * a missing required field (model_type, vocab_size, hidden_size,
 * num_hidden_layers, num_attention_heads, intermediate_size,
 * max_position_embeddings), a field of the wrong JSON type, a size that is
 * not positive or is absurd (hidden_size > 65536, num_hidden_layers >
 * 1000, ...), a model_type other than "xlm-roberta" or "roberta", a
 * hidden_act other than "gelu", or num_labels disagreeing with id2label.
 * Fields not listed above are ignored. On failure returns -1 after
 * eg_errorf() and leaves *out zeroed. */
int eg_hf_config_load(const char *dir, eg_hf_config *out);

/* The same for the text of a config (len bytes); name is what messages
 * call it (the file's path). */
int eg_hf_config_parse(const char *name, const char *text, size_t len, eg_hf_config *out);

#endif
