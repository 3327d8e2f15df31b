/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC'11; the Random123 algorithm) and the Rademacher vectors
 * EvoGrad perturbs with.
 *
 * Header-only and free of library calls so the CPU backend and CUDA kernels
 * compile the very same code and produce the very same bits. */
#ifndef EG_PHILOX_H
#define EG_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define EG_HD __host__ __device__ __forceinline__
#else
#define EG_HD static inline
#endif

typedef struct eg_philox_ctr { uint32_t v[4]; } eg_philox_ctr;
typedef struct eg_philox_key { uint32_t v[2]; } eg_philox_key;

EG_HD uint32_t eg_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* One Philox4x32-10 block: 10 rounds of the counter under the key. */
EG_HD eg_philox_ctr eg_philox4x32_10(eg_philox_ctr c, eg_philox_key k)
{
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = eg_mulhilo32(0xD2511F53u, c.v[0], &hi0);
        uint32_t lo1 = eg_mulhilo32(0xCD9E8D57u, c.v[2], &hi1);
        eg_philox_ctr n;
        n.v[0] = hi1 ^ c.v[1] ^ k.v[0];
        n.v[1] = lo1;
        n.v[2] = hi0 ^ c.v[3] ^ k.v[1];
        n.v[3] = lo0;
        c = n;
        k.v[0] += 0x9E3779B9u;
        k.v[1] += 0xBB67AE85u;
    }
    return c;
}

/* The 128 random bits that hold the signs of elements 128*block ..
 * 128*block + 127 of the Rademacher vector (key, stream). Counter words:
 * block (low, high), stream (low, high); key words: key (low, high). */
EG_HD eg_philox_ctr eg_rademacher_block(uint64_t key, uint64_t stream,
                                        uint64_t block)
{
    eg_philox_ctr c = {{(uint32_t)block, (uint32_t)(block >> 32),
                        (uint32_t)stream, (uint32_t)(stream >> 32)}};
    eg_philox_key k = {{(uint32_t)key, (uint32_t)(key >> 32)}};
    return eg_philox4x32_10(c, k);
}

/* Sign of element i taken from its block: bit (i mod 32) of word
 * ((i mod 128) / 32); set bit -> +1, clear -> -1. */
EG_HD float eg_rademacher_from_block(eg_philox_ctr b, uint64_t i)
{
    unsigned j = (unsigned)(i & 127u);
    return ((b.v[j >> 5] >> (j & 31u)) & 1u) ? 1.0f : -1.0f;
}

/* Element i of the Rademacher vector (key, stream), in {-1, +1}. */
EG_HD float eg_rademacher(uint64_t key, uint64_t stream, uint64_t i)
{
    return eg_rademacher_from_block(eg_rademacher_block(key, stream, i >> 7),
                                    i);
}

/* Element i of the standard normal vector (key, stream): Box-Muller on
 * two words of block i / 2 (counter layout as above; words 0, 1 for even i,
 * 2, 3 for odd i), in double. The paper's one-dimensional toy perturbs with
 * Gaussian noise; the CUDA backend's libm may round its last bit
 * differently, unlike the Rademacher signs. */
EG_HD double eg_gaussian(uint64_t key, uint64_t stream, uint64_t i)
{
    eg_philox_ctr b = eg_rademacher_block(key, stream, i >> 1);
    unsigned w = (unsigned)(i & 1u) * 2u;
    double u1 = ((double)b.v[w] + 1.0) / 4294967296.0; /* (0, 1] */
    double u2 = (double)b.v[w + 1] / 4294967296.0;     /* [0, 1) */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Whether inverted dropout at rate p keeps element i of the stream (key,
 * stream): word i mod 4 of block i / 4 (counter layout as above), read as
 * a uniform u = word / 2^32 in [0, 1), is at least p. */
EG_HD int eg_dropout_keep(float p, uint64_t key, uint64_t stream, uint64_t i)
{
    eg_philox_ctr b = eg_rademacher_block(key, stream, i >> 2);
    return (double)b.v[i & 3u] >= (double)p * 4294967296.0;
}

#endif
