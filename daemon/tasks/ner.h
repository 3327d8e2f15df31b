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

/* The section's keys, for a task section that holds an eg_ner_spec. */
#define EG_NER_KEYS                                                                        \
    "data", "source", "target_train", "target_dev", "target_test", "source_size",            \
        "target_size", "eval_size", "synth_seed", "synth_remap", "model", "checkpoint", "d", \
        "layers", "heads", "ff", "dropout", "max_len", "warmup", "clip", "f1_mode"

/* The section's defaults, over the job's (Adam with L2 5e-4, 20 epochs,
 * batches of 12 sentences a language). */
void eg_ner_spec_defaults(struct eg_job *j, eg_ner_spec *s);

/* Reads the section's keys of scope s into n (after j's generic fields). */
int eg_ner_spec_read(const eg_spec_scope *s, struct eg_job *j, eg_ner_spec *n);

/* The section as a new JSON object. */
struct json_t *eg_ner_spec_json(const eg_ner_spec *n);

/* Resolves the files and the checkpoint folder through resolve, naming
 * them "SECTION.KEY". */
int eg_ner_spec_paths(eg_ner_spec *n, const char *section, eg_path_resolve_fn resolve, void *ctx);

#endif
