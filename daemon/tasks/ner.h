/* Cross-lingual named-entity recognition: a token encoder (XLM-R from a
 * checkpoint, or one trained from scratch) with a token classifier,
 * trained jointly on a source and a target language, scored by
 * entity-level F1 on the target. The job's "ner" section
 * (tasks/ner_spec.c) and the task (tasks/ner.c). */
#ifndef EG_NER_H
#define EG_NER_H

#include "meta/job.h"

typedef struct eg_ner_spec {
    char data[16];             /* "synthetic" (data/synth_lang.h) or "files" (CoNLL) */
    char source[512];          /* files: the source language's training file */
    char target_train[512], target_dev[512], target_test[512];
    int source_size;           /* first sentences of the source's training set; 0 = all */
    int target_size;           /* ... of the target's (MetaXL: 100) */
    int eval_size;             /* first sentences of dev and of test; 0 = all */
    long synth_seed;           /* synthetic: the languages' seed */
    double synth_remap;        /* synthetic: the target's re-mapped vocabulary fraction */
    char model[16];            /* "scratch" or "xlmr" */
    char checkpoint[512];      /* xlmr: config.json, model.safetensors, sentencepiece.bpe.model */
    int d, layers, heads, ff;  /* scratch */
    double dropout;            /* scratch: hidden and attention dropout */
    int max_len;               /* tokens a sentence keeps, <s> and </s> included */
    double warmup;             /* linear warm-up over this fraction of the steps, then decay */
    double clip;               /* gradient-norm clipping; 0 = none */
    char f1_mode[16];          /* "default" (seqeval's) or "strict" (IOB2) */
} eg_ner_spec;

#endif
