/* Entity-level precision, recall and F1 of tag sequences, as the Python
 * seqeval package (1.2) computes them for IOB2 tags (O, B-X, I-X).
 *
 * Two ways of reading entities from the tags:
 *   EG_SEQEVAL_DEFAULT  seqeval's default (get_entities, conlleval-like): an
 *       entity starts at B-X, or at I-X after O or after a tag of another
 *       type; it goes on over I-X of its type and ends before O, B-anything
 *       or a tag of another type. A stray I-X is an entity.
 *   EG_SEQEVAL_STRICT   mode='strict', scheme=IOB2: an entity is B-X
 *       followed by any number of I-X; an I-X not continuing a B-X or
 *       I-X of its type belongs to no entity.
 * An entity is (type, first word, last word) and no entity crosses a
 * sentence end. A predicted entity is correct when the gold has the very
 * same one.
 *
 * Precision = correct / predicted, recall = correct / gold, F1 =
 * 2 P R / (P + R); each is 0 when its denominator is (seqeval's zero-division
 * value with its warning). */
#ifndef EG_SEQEVAL_H
#define EG_SEQEVAL_H

#include <stdint.h>

#include "data/conll.h"

enum { EG_SEQEVAL_DEFAULT = 0, EG_SEQEVAL_STRICT = 1 };

/* One entity type's row of seqeval's classification_report. */
typedef struct eg_seqeval_type {
    const char *name;      /* the type (X of B-X): points into the tag set's names */
    long support;          /* gold entities of this type */
    long predicted, correct;
    double precision, recall, f1;
} eg_seqeval_type;

typedef struct eg_seqeval {
    long support, predicted, correct;      /* all types together */
    double precision, recall, f1;          /* micro averages */
    double macro_precision, macro_recall, macro_f1;          /* means over the types */
    double weighted_precision, weighted_recall, weighted_f1; /* weighted by support */
    int n_types;
    eg_seqeval_type *types; // (n_types) the types with a gold or predicted entity, by name
} eg_seqeval;

/* Scores pred against gold: n_sent sentences, sentence i being words
 * start[i] .. start[i + 1] - 1 of both (the layout of eg_conll: pass a
 * corpus's start and tag with the predictions in the same layout), tags as
 * ids into ts. start may be NULL when n_sent is 0. Fails on a bad mode, a
 * tag id outside ts, a name in ts that is not a tag, decreasing start, or
 * no memory; *out is then zeroed. The averages over types are 0 when there
 * are none. */
int eg_seqeval_score(const eg_tagset *ts, const long *start, int n_sent, const int32_t *gold,
                     const int32_t *pred, int mode, eg_seqeval *out);

/* Frees the per-type rows and zeroes *s. NULL is allowed. */
void eg_seqeval_free(eg_seqeval *s);

#endif
