/* Synthetic NER "languages" for tests and README runs (no NER corpus can be
 * fetched): a source language and a target language sharing one grammar
 * of entities, for cross-lingual transfer experiments in MetaXL's setting
 * (much source data, a little target data).
 *
 * The grammar: BIO tags over the types LOC, MISC, ORG and PER; entity
 * lexicons of 1 to 3 capitalised words per entity; context cues (titles
 * before PER, prepositions before LOC and ORG, nouns after MISC); a filler
 * vocabulary of 312 invented words (determiners, prepositions, adverbs,
 * adjectives, nouns, verbs); sentences of 5 to 30 words from three
 * templates built of phrases:
 *     SUBJ VERB OBJ ADJUNCT*      SUBJ VERB ADJUNCT+      ADJUNCT SUBJ VERB OBJ ADJUNCT*
 * with subjects and objects plain noun phrases, persons ([title] PER),
 * organisations or MISC phrases ([det] MISC cue), and adjuncts
 * prepositional phrases (prep + LOC, prep + ORG, prep + noun phrase) or
 * adverbs.
 *
 * The target language differs from the source in two ways:
 *   (a) words: a fraction `remap` of every word class (filler, cues and
 *       entity words alike; exactly round(remap * class size) words) takes
 *       a new form, drawn from other syllables, through a bijection fixed by
 *       the seed; the rest keep their source form. The words chosen for a
 *       smaller fraction are among those chosen for a larger one.
 *   (b) order: the verb moves to the end of the sentence, the phrases after
 *       it come in reverse order, and prepositions follow their phrase
 *       (postpositions). Entities stay contiguous with the same tags.
 *
 * Everything is deterministic in the seed (splitmix64): the vocabularies,
 * and each sentence from (seed, language, split, its index), so that the
 * first n sentences of a split do not depend on how many are asked for,
 * and a sentence's content does not depend on `remap`. */
#ifndef EG_SYNTH_LANG_H
#define EG_SYNTH_LANG_H

#include <stdint.h>

#include "data/conll.h"

#define EG_SYNTH_SOURCE_LANG "src" /* the sentences' language codes */
#define EG_SYNTH_TARGET_LANG "tgt"

enum { EG_SYNTH_TRAIN = 0, EG_SYNTH_DEV = 1, EG_SYNTH_TEST = 2 };

/* The vocabularies and lexicons of one (seed, remap) pair. */
typedef struct eg_synth_lang eg_synth_lang;

/* Builds the generator; remap must lie in [0, 1]. */
int eg_synth_lang_create(uint64_t seed, double remap, eg_synth_lang **out);

void eg_synth_lang_free(eg_synth_lang *g);

/* The generator's tags as a fixed set, in eg_tagset_labels() order: O,
 * B-LOC, I-LOC, B-MISC, I-MISC, B-ORG, I-ORG, B-PER, I-PER. */
int eg_synth_lang_tagset(eg_tagset *ts);

/* Appends sentences 0 .. n - 1 of split (EG_SYNTH_TRAIN, _DEV, _TEST) of
 * the source (target 0) or target (target 1) language to out, with tag ids
 * of eg_synth_lang_tagset() and the language code EG_SYNTH_SOURCE_LANG or
 * EG_SYNTH_TARGET_LANG. */
int eg_synth_lang_sentences(const eg_synth_lang *g, int target, int split, int n,
                            eg_conll *out);

/* What `evogradd synth-ner` writes. */
typedef struct eg_synth_ner_opts {
    uint64_t seed;
    int source_train, target_train, dev, test; /* sentences; dev and test per language */
    double remap;     /* fraction of the vocabulary the target re-maps, [0, 1] */
    int lang_prefix;  /* 1: tokens written as src:word / tgt:word */
} eg_synth_ner_opts;

/* seed 1, source train 5000, target train 100, dev 500, test 500, remap
 * 0.5, no prefixes. */
eg_synth_ner_opts eg_synth_ner_defaults(void);

/* The files eg_synth_ner_write() writes, relative to its folder. */
#define EG_SYNTH_NER_FILES 6
extern const char *const eg_synth_ner_files[EG_SYNTH_NER_FILES];

/* Writes DIR/src/{train,dev,test}.txt and DIR/tgt/{train,dev,test}.txt
 * (CoNLL, see conll.h), creating the folders; existing files are replaced.
 * Every count must be >= 1 (an empty file would not read back). */
int eg_synth_ner_write(const char *dir, const eg_synth_ner_opts *o);

#endif
