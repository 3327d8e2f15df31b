/* A sequential host RNG on top of Philox4x32-10: initialisation, shuffling,
 * label noise and sampling draw from it. Same seed, same numbers, on every
 * machine. */
#ifndef EG_RNG_H
#define EG_RNG_H

#include <stdint.h>

typedef struct eg_rng {
    uint64_t key, stream;
    uint64_t counter; /* next Philox block */
    uint32_t buf[4];
    int avail;        /* unread words in buf */
} eg_rng;

/* Seeds the generator; distinct (seed, stream) pairs give independent
 * sequences, streams below 2^63, never equal to a Rademacher vector's. */
void eg_rng_seed(eg_rng *r, uint64_t seed, uint64_t stream);

uint32_t eg_rng_u32(eg_rng *r);

/* Uniform in [0, 1) with 24 random bits. */
float eg_rng_uniform(eg_rng *r);

/* Uniform integer in [0, n), n >= 1, without modulo bias. */
uint32_t eg_rng_below(eg_rng *r, uint32_t n);

/* Standard normal (Box-Muller, in double). */
double eg_rng_normal(eg_rng *r);

/* Fisher-Yates shuffle of idx[0..n). */
void eg_rng_shuffle(eg_rng *r, uint32_t *idx, uint32_t n);

#endif
