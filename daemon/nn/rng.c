#include "rng.h"

#include <math.h>

#include "philox.h"

void eg_rng_seed(eg_rng *r, uint64_t seed, uint64_t stream)
{
    r->key = seed;
    /* The top stream bit keeps host draws apart from the Rademacher
     * vectors, which share the counter layout and use streams below 2^63. */
    r->stream = stream | (1ull << 63);
    r->counter = 0;
    r->avail = 0;
}

uint32_t eg_rng_u32(eg_rng *r)
{
    if (r->avail == 0) {
        /* Same counter layout as the Rademacher vectors: block, stream. */
        eg_philox_ctr out = eg_rademacher_block(r->key, r->stream, r->counter++);
        for (int i = 0; i < 4; i++) r->buf[i] = out.v[i];
        r->avail = 4;
    }
    return r->buf[4 - r->avail--];
}

float eg_rng_uniform(eg_rng *r)
{
    return (float)(eg_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

uint32_t eg_rng_below(eg_rng *r, uint32_t n)
{
    /* Lemire's nearly-divisionless rejection method. */
    uint64_t m = (uint64_t)eg_rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)eg_rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double eg_rng_normal(eg_rng *r)
{
    /* u1 in (0, 1] so the log is finite. */
    double u1 = ((double)eg_rng_u32(r) + 1.0) / 4294967296.0;
    double u2 = (double)eg_rng_u32(r) / 4294967296.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void eg_rng_shuffle(eg_rng *r, uint32_t *idx, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = eg_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
