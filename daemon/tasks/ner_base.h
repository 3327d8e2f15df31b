/* What the token-classification tasks share (tasks/ner.c, tasks/metaxl.c):
 * their data (a source and a target language's training sets, the
 * target's dev and test sets, tokenised), the encoder with its token head
 * and loss, the batches, and F1 scoring with the best-dev bookkeeping.
 * Batches are a function of the step: position k of a stream through a
 * training set reads one seeded permutation per pass. */
#ifndef EG_NER_BASE_H
#define EG_NER_BASE_H

#include <jansson.h>
#include <stdint.h>

#include "data/conll.h"
#include "data/tokenizer.h"
#include "meta/task.h"
#include "nn/encoder.h"
#include "nn/optim.h"
#include "nn/token_loss.h"
#include "tasks/ner.h"

/* One corpus, tokenised: row i holds len[i] ids and labels (the first
 * subword of each word labelled, everything else EG_IGNORE_LABEL) in a
 * row of max_len. */
typedef struct eg_ner_corpus {
    const char *name;
    int n, max_len;
    int32_t *ids, *labels; /* (n, max_len) */
    int *len;              /* (n) */
    long *start;           /* (n + 1) labelled tokens before each sentence */
    int32_t *gold;         /* (start[n]) the labelled tokens' labels */
} eg_ner_corpus;

enum { EG_NER_SOURCE = 0, EG_NER_TARGET = 1 };

typedef struct eg_ner_base {
    eg_backend *be;
    uint64_t seed;
    int eval_limit;
    const char *field;               /* the job's section, for messages */
    const eg_ner_spec *spec;
    eg_tagset labels;
    eg_tokenizer *tok;
    eg_ner_corpus src, tgt, dev, test;
    eg_encoder enc;
    eg_token_loss tl;
    int B, T;                        /* sentences a batch, tokens a sentence at most */
    int32_t *d_ids, *d_pos, *d_lens; /* device: (B T), (B T), (B) */
    int32_t *h_ids, *h_pos, *h_labels, *h_pred; /* host (B T) */
    int32_t *h_lens;                 /* host (B) */
    int mode;                        /* seqeval's */
    uint32_t *perm[2];               /* a pass over src, tgt */
    long perm_pass[2];
    struct { double dev_f1, test_f1; long step; } best;
} eg_ner_base;

/* Reads and tokenises the data of spec s, builds the encoder for batches
 * of B sentences, and fills host theta (*theta, P floats, malloc'ed) with
 * its initialisation from seed, or the checkpoint's weights. field names
 * the section in messages ("ner", "metaxl"). */
int eg_ner_base_open(eg_ner_base *b, eg_backend *be, const eg_job *job, const eg_ner_spec *s,
                     const char *field, float **theta);

/* The sentence of position k of the stream through training set which. */
int eg_ner_base_stream(eg_ner_base *b, int which, long k);

/* Uploads rows idx[0..n) of corpus c, padded to the longest, sets their
 * labels in b->tl and fills *tok. */
int eg_ner_base_batch(eg_ner_base *b, const eg_ner_corpus *c, const int *idx, int n,
                      eg_tokens *tok);

/* What the head reads instead of the encoder's hidden states h (n, d):
 * fn sets *out (n, d); the backward treats it as h plus a term that does
 * not depend on h (metaxl's RTN on detached h). */
typedef struct eg_ner_hidden_map {
    int (*fn)(void *ctx, const float *h, int n, const float **out);
    void *ctx;
} eg_ner_hidden_map;

/* Forward, head (on the hidden states mapped by map, when it is not NULL)
 * and loss of a loaded batch; when dtheta is not NULL the backward too,
 * the loss scaled by scale, dθ accumulated. */
int eg_ner_base_pass(eg_ner_base *b, const float *theta, const eg_tokens *tok,
                     const eg_enc_pass *pass, const eg_ner_hidden_map *map, float *dtheta,
                     float scale, double *loss);

/* dev_f1, test_f1 and test_loss of the model at theta; records the best
 * dev F1 (with its test F1 and step). */
int eg_ner_base_evaluate(eg_ner_base *b, const float *theta, long step, eg_eval *ev);

/* Sets the report's entries (labels, vocabulary, sentences, best) in o. */
int eg_ner_base_report(const eg_ner_base *b, json_t *o);

/* cfg with the section's warm-up and linear decay over the job's steps
 * (unless the job names milestones and no warm-up): θ's optimiser, and
 * metaxl's λ's. */
eg_optim_config eg_ner_schedule(const eg_optim_config *cfg, const eg_job *job,
                                const eg_ner_spec *s, const eg_task *t);

void eg_ner_base_free(eg_ner_base *b);

#endif
