/* Few-shot episodes and pre-training batches over eg_domain's.
 *
 * A class index lists one split's samples of a domain by class. An episode
 * drawn from it is n_way distinct classes of the split and, for each,
 * n_shot + n_query distinct samples of that class (support first, then
 * query), laid out class-major: slot j * (n_shot + n_query) + s holds
 * sample s of episode class j, whose episode-local label is j. Every draw
 * is a function of (key, stream) alone through Philox, so the same pair
 * gives the same episode on every machine and a resumed job redraws what
 * it drew before; nothing here keeps random state between calls.
 *
 * A pool is the union of one split's classes over several domains, for
 * pre-training a classifier: its (domain, class) pairs get dense labels
 * 0 .. classes - 1 and its samples are served in epochs, each a Philox
 * permutation of the whole pool. */
#ifndef EG_EPISODE_H
#define EG_EPISODE_H

#include <stdint.h>

#include "data/domain.h"

/* Mixes two 64-bit words into a stream (splitmix64's finaliser on both):
 * the per-slot streams of eg_episode_fetch are eg_stream_mix(stream, slot). */
uint64_t eg_stream_mix(uint64_t a, uint64_t b);

typedef struct eg_class_index {
    eg_domain *d; /* not owned; must outlive the index */
    eg_class_split split;
    int n_classes; /* classes of the split (with or without samples) */
    int *cls;      /* (n_classes) their classes in d, ascending */
    int *start;    /* (n_classes + 1) class k's samples are
                      sample[start[k] .. start[k + 1]) */
    int *sample;   /* (start[n_classes]) sample indexes of d, ascending
                      within each class */
} eg_class_index;

/* Indexes the samples of d whose class is in split s (EG_SPLIT_ALL: all).
 * -1 with eg_errorf on a label outside [0, d->classes) or out of memory. */
int eg_class_index_new(eg_domain *d, eg_class_split s, eg_class_index **out);
void eg_class_index_free(eg_class_index *ix);

/* The name of split s ("base", "val", "novel", "all"), for messages. */
const char *eg_split_name(eg_class_split s);

/* 0 when every episode of n_way x (n_shot + n_query) can be drawn from ix:
 * n_way >= 1, n_shot >= 1, n_query >= 0, at least n_way classes in the
 * split and at least n_shot + n_query samples in each of its classes;
 * else -1 with eg_errorf naming the domain, the split, the class and the
 * counts. Every class is checked, not only those a draw happens to pick,
 * so a job fails on its first episode or never. */
int eg_class_index_check(const eg_class_index *ix, int n_way, int n_shot, int n_query);

typedef struct eg_episode {
    eg_domain *d; /* the domain of the last draw */
    int n_way, n_shot, n_query;
    int *cls;     /* (n_way) class in d of episode label j */
    int *sample;  /* (n_way * (n_shot + n_query)) sample of d in each
                     slot j * (n_shot + n_query) + s; s < n_shot:
                     support, else query */
    int *scratch; /* (2 * max(n_way, n_shot + n_query)) for draws */
} eg_episode;

/* An episode of n_way classes with n_shot support and n_query query
 * samples each, to be filled by eg_episode_draw; -1 with eg_errorf on
 * sizes outside those eg_class_index_check accepts. */
int eg_episode_new(int n_way, int n_shot, int n_query, eg_episode **out);
void eg_episode_free(eg_episode *ep);

/* Draws ep's classes and samples from ix, a function of (key, stream)
 * alone: the classes are the first n_way steps of a Fisher-Yates shuffle
 * of ix's classes, then each class's samples the first n_shot + n_query
 * steps of a shuffle of that class's samples, all exact (without
 * replacement, every ordered choice equally likely), from one host Philox
 * sequence (eg_rng) seeded with key and eg_stream_mix(stream, a fixed
 * tag). -1 with eg_errorf as eg_class_index_check says. */
int eg_episode_draw(const eg_class_index *ix, uint64_t key, uint64_t stream, eg_episode *ep);

/* Fetches ep's images at size through its domain's fetch into x and the
 * episode-local labels (j for every slot of class j) into y (either may be
 * NULL to skip it). train != 0: the training transform of slot t from
 * Philox (key, eg_stream_mix(stream, t)); train == 0: the test transform.
 * -1 with the domain's error when an image cannot be fetched. */
int eg_episode_fetch(const eg_episode *ep, int train, uint64_t key, uint64_t stream, int size,
                     float *x /* (n_way * (n_shot + n_query), c, size, size) */,
                     int32_t *y /* (n_way * (n_shot + n_query)) */);

typedef struct eg_pool {
    int n_domains;
    eg_domain **domain;    /* (n_domains) not owned; must outlive the pool */
    int c;                 /* channels, the same in every domain */
    int classes;           /* dense labels: (domain, class) pairs of the
                              split holding at least one sample, domain by
                              domain, classes ascending within each */
    int32_t *label_domain; /* (classes) domain of dense label b */
    int32_t *label_class;  /* (classes) its class in that domain */
    int n;                 /* samples */
    int32_t *entry_domain; /* (n) domain of entry e, in domain order */
    int32_t *entry_sample; /* (n) its sample in that domain, ascending */
    int32_t *entry_label;  /* (n) its dense label */
    uint32_t *perm;        /* (n) the permutation of epoch perm_epoch under
                              perm_key, a cache of eg_pool_draw */
    uint64_t perm_key, perm_epoch;
    int perm_ok;
} eg_pool;

/* The pool of split s over domains[0 .. n_domains): -1 with eg_errorf
 * when n_domains < 1, the domains' channels differ, the split holds no
 * sample in any of them, or out of memory. */
int eg_pool_new(eg_domain *const *domains, int n_domains, eg_class_split s, eg_pool **out);
void eg_pool_free(eg_pool *p);

/* Entries step * batch .. step * batch + batch - 1 of the endless
 * sequence of epochs into entry (batch): position q is entry
 * perm_e[q mod n] with e = q / n, where perm_e is the Fisher-Yates
 * permutation of 0 .. n - 1 from Philox (key, eg_stream_mix(e, a fixed
 * tag)). So each epoch serves every sample once, and the batch is a
 * function of (key, step, batch) alone. Keeps the last epoch's
 * permutation, so one thread at a time. -1 with eg_errorf when batch < 1. */
int eg_pool_draw(eg_pool *p, uint64_t key, uint64_t step, int batch, int32_t *entry);

/* Fetches entries entry[0 .. count) at size into x and their dense labels
 * into y (either may be NULL), entry t with the training transform of
 * Philox (key, eg_stream_mix(stream, t)) when train != 0, else the test
 * transform. -1 with eg_errorf on an entry outside [0, n) or the domain's
 * error when an image cannot be fetched. */
int eg_pool_fetch(const eg_pool *p, const int32_t *entry, int count, int train, uint64_t key,
                  uint64_t stream, int size, float *x /* (count, c, size, size) */,
                  int32_t *y /* (count) */);

/* eg_pool_draw then eg_pool_fetch of batch `step` with the training
 * transform (stream = step): one pre-training batch. */
int eg_pool_batch(eg_pool *p, uint64_t key, uint64_t step, int batch, int size,
                  float *x /* (batch, c, size, size) */, int32_t *y /* (batch) */);

#endif
