/* Philox4x32-10 against the Random123 known-answer vectors, the Rademacher
 * vectors of the CPU backend (nn/philox.h, nn/cpu/cpu_vec.c) and the host
 * RNG (nn/rng.h). Statistical checks use fixed seeds and bounds of several
 * standard errors, so they are deterministic and fail only on a real
 * defect. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/philox.h"
#include "nn/rng.h"
#include "testutil.h"

/* ---- Philox4x32-10 ---- */

/* Random123 kat_vectors, philox4x32 with 10 rounds. */
static void test_known_answers(void **state)
{
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t t = 0; t < sizeof kat / sizeof kat[0]; t++) {
        eg_philox_ctr c;
        eg_philox_key k;
        memcpy(c.v, kat[t].ctr, sizeof c.v);
        memcpy(k.v, kat[t].key, sizeof k.v);
        eg_philox_ctr out = eg_philox4x32_10(c, k);
        for (int w = 0; w < 4; w++)
            if (out.v[w] != kat[t].out[w])
                fail_msg("vector %zu word %d: 0x%08x, want 0x%08x", t, w,
                         out.v[w], kat[t].out[w]);
    }
}

/* Element i of the Rademacher vector from first principles: the counter
 * and key words as documented in nn/philox.h. */
static float rademacher_by_hand(uint64_t key, uint64_t stream, uint64_t i)
{
    uint64_t b = i / 128;
    eg_philox_ctr c = {{(uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream,
                        (uint32_t)(stream >> 32)}};
    eg_philox_key k = {{(uint32_t)key, (uint32_t)(key >> 32)}};
    eg_philox_ctr out = eg_philox4x32_10(c, k);
    unsigned j = (unsigned)(i % 128);
    return (out.v[j / 32] >> (j % 32)) & 1 ? 1.0f : -1.0f;
}

static void test_rademacher_layout(void **state)
{
    const uint64_t keys[] = {0, 1, 0x123456789abcdef0ull, ~0ull};
    const uint64_t streams[] = {0, 3, 0xfedcba9876543210ull};
    const uint64_t idx[] = {0, 1, 31, 32, 127, 128, 129, 1000, (1ull << 39) + 77,
                            ~0ull};
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t c = 0; c < sizeof idx / sizeof idx[0]; c++) {
                float got = eg_rademacher(keys[a], streams[b], idx[c]);
                float want = rademacher_by_hand(keys[a], streams[b], idx[c]);
                if (got != want)
                    fail_msg("key %llx stream %llx index %llu: %g, want %g",
                             (unsigned long long)keys[a],
                             (unsigned long long)streams[b],
                             (unsigned long long)idx[c], got, want);
            }
}

/* ---- Rademacher vectors of the CPU backend ---- */

/* y += alpha r and r . g for one Rademacher vector (key, stream), through
 * the backend's fused noise operations with one vector. */
static int rad_axpy(eg_backend *be, size_t n, float alpha, uint64_t key, uint64_t stream,
                    float *y)
{
    return be->noise_combine(be, n, 0, key, 1, &stream, &alpha, y, y);
}

static int rad_dot(eg_backend *be, size_t n, uint64_t key, uint64_t stream, const float *g,
                   double *out)
{
    return be->noise_dots(be, n, 0, key, 1, &stream, g, out);
}

/* noise_combine with several vectors gives the bits of one call per
 * vector in order, from x into a separate y or in place; noise_dots with
 * several gives each vector's own dot; Rademacher and Gaussian; counts
 * outside 1..EG_NOISE_MAX are refused. */
static void test_noise_fused(void **state)
{
    eg_backend *be = tu_cpu();
    const size_t n = 40077;
    const uint64_t key = 99, streams[5] = {3, 4, 1ull << 40, 7, 8};
    const float alpha[5] = {0.5f, -0.001f, 3.0f, 1e-3f, -2.5f};
    float *x = malloc(n * sizeof(float)), *fused = malloc(n * sizeof(float));
    float *seq = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    tu_fill_uniform(x, n, 1, -1, 1);
    tu_fill_uniform(g, n, 2, -1, 1);
    for (int gaussian = 0; gaussian < 2; gaussian++) {
        assert_int_equal(be->noise_combine(be, n, gaussian, key, 5, streams, alpha, x, fused), 0);
        memcpy(seq, x, n * sizeof(float));
        for (int j = 0; j < 5; j++)
            assert_int_equal(be->noise_combine(be, n, gaussian, key, 1, &streams[j], &alpha[j],
                                               seq, seq), 0);
        assert_memory_equal(fused, seq, n * sizeof(float));
        memcpy(seq, x, n * sizeof(float));
        assert_int_equal(be->noise_combine(be, n, gaussian, key, 5, streams, alpha, seq, seq), 0);
        assert_memory_equal(fused, seq, n * sizeof(float));
        double many[5], one;
        assert_int_equal(be->noise_dots(be, n, gaussian, key, 5, streams, g, many), 0);
        for (int j = 0; j < 5; j++) {
            assert_int_equal(be->noise_dots(be, n, gaussian, key, 1, &streams[j], g, &one), 0);
            assert_memory_equal(&one, &many[j], sizeof one);
        }
    }
    double out[EG_NOISE_MAX + 1];
    uint64_t st[EG_NOISE_MAX + 1] = {0};
    float al[EG_NOISE_MAX + 1] = {0};
    tu_fails_with(be->noise_combine(be, n, 0, key, 0, st, al, x, fused), "0 vectors in one call");
    char too_many[64];
    snprintf(too_many, sizeof too_many, "%d vectors in one call", EG_NOISE_MAX + 1);
    tu_fails_with(be->noise_combine(be, n, 0, key, EG_NOISE_MAX + 1, st, al, x, fused), too_many);
    tu_fails_with(be->noise_dots(be, n, 0, key, EG_NOISE_MAX + 1, st, g, out), too_many);
    free(x);
    free(fused);
    free(seq);
    free(g);
    be->destroy(be);
}

/* The Rademacher noise gives y0 + alpha r with r[i] = eg_rademacher, for
 * every i, any n (whole and partial blocks, serial and parallel paths),
 * and writes nothing past n. */
static void test_rademacher_axpy_elements(void **state)
{
    eg_backend *be = tu_cpu();
    const size_t sizes[] = {1, 5, 127, 128, 129, 255, 256, 1000, 40077, 1000003};
    const uint64_t key = 0x5eed5eed12345678ull, stream = 41;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *y = malloc((n + 3) * sizeof(float));
        float *y0 = malloc((n + 3) * sizeof(float));
        assert_non_null(y);
        assert_non_null(y0);
        tu_fill_uniform(y0, n + 3, 9 + s, -1, 1);
        memcpy(y, y0, (n + 3) * sizeof(float));
        assert_int_equal(rad_axpy(be, n, 0.25f, key, stream, y), 0);
        for (size_t i = 0; i < n; i++) {
            float want = y0[i] + 0.25f * eg_rademacher(key, stream, i);
            if (y[i] != want)
                fail_msg("n %zu element %zu: %g, want %g", n, i, y[i], want);
        }
        for (size_t i = n; i < n + 3; i++) assert_true(y[i] == y0[i]);

        /* From zeros with alpha 1 the output is r itself, only +-1. */
        memset(y, 0, n * sizeof(float));
        assert_int_equal(rad_axpy(be, n, 1.0f, key, stream + 1, y), 0);
        for (size_t i = 0; i < n; i++) {
            if (y[i] != 1.0f && y[i] != -1.0f) fail_msg("r[%zu] = %g", i, y[i]);
            if (y[i] != eg_rademacher(key, stream + 1, i))
                fail_msg("n %zu r[%zu] differs from eg_rademacher", n, i);
        }
        free(y);
        free(y0);
    }
    be->destroy(be);
}

#define STAT_N ((size_t)1 << 20)

/* r (STAT_N) of (key, stream) through the backend. */
static float *rademacher_vector(eg_backend *be, uint64_t key, uint64_t stream)
{
    float *r = calloc(STAT_N, sizeof(float));
    assert_non_null(r);
    assert_int_equal(rad_axpy(be, STAT_N, 1.0f, key, stream, r), 0);
    return r;
}

/* Means and correlations over 2^20 elements stay within 6 standard errors
 * (1 / sqrt(n) for a mean of n independent signs). */
static void test_rademacher_statistics(void **state)
{
    eg_backend *be = tu_cpu();
    const double se = 1.0 / sqrt((double)STAT_N), bound = 6.0 * se;
    const uint64_t key = 1, stream = 0;
    float *r = rademacher_vector(be, key, stream);

    double sum = 0, lag1 = 0, lag128 = 0;
    for (size_t i = 0; i < STAT_N; i++) {
        if (r[i] != 1.0f && r[i] != -1.0f) fail_msg("r[%zu] = %g", i, r[i]);
        sum += r[i];
        if (i + 1 < STAT_N) lag1 += r[i] * r[i + 1];
        if (i + 128 < STAT_N) lag128 += r[i] * r[i + 128];
    }
    printf("# mean %.2g, lag-1 %.2g, lag-128 %.2g (se %.2g)\n", sum / STAT_N,
           lag1 / STAT_N, lag128 / STAT_N, se);
    if (fabs(sum / STAT_N) > bound) fail_msg("mean %g", sum / STAT_N);
    if (fabs(lag1 / STAT_N) > bound) fail_msg("lag-1 correlation %g", lag1 / STAT_N);
    if (fabs(lag128 / STAT_N) > bound) fail_msg("lag-128 correlation %g", lag128 / STAT_N);

    /* Each of the 128 bit positions of a block is balanced on its own. */
    const size_t per = STAT_N / 128;
    for (int j = 0; j < 128; j++) {
        double s = 0;
        for (size_t b = 0; b < per; b++) s += r[b * 128 + j];
        if (fabs(s / per) > 6.0 / sqrt((double)per))
            fail_msg("bit position %d: mean %g over %zu blocks", j, s / per, per);
    }

    /* Other streams and keys, including ones that differ only in the high
     * 32-bit word, are uncorrelated with r. */
    const struct {
        uint64_t key, stream;
    } other[] = {{1, 1}, {2, 0}, {1 + (1ull << 32), 0}, {1, 1ull << 32},
                 {0, 0}, {1ull << 63 | 1, 0}};
    for (size_t o = 0; o < sizeof other / sizeof other[0]; o++) {
        double d;
        assert_int_equal(rad_dot(be, STAT_N, other[o].key,
                                            other[o].stream, r, &d), 0);
        if (fabs(d / STAT_N) > bound)
            fail_msg("key %llx stream %llx: correlation %g with key 1 stream 0",
                     (unsigned long long)other[o].key,
                     (unsigned long long)other[o].stream, d / STAT_N);
    }
    /* ... while the same vector correlates perfectly. */
    double self;
    assert_int_equal(rad_dot(be, STAT_N, key, stream, r, &self), 0);
    assert_true(self == (double)STAT_N);
    free(r);
    be->destroy(be);
}

/* rademacher_dot equals the naive loop over eg_rademacher, exactly for
 * integer-valued g (every partial sum is exact), within rounding
 * otherwise, and gives the same bits for any number of threads. */
static void test_rademacher_dot(void **state)
{
    eg_backend *be = tu_cpu();
    const size_t sizes[] = {0, 1, 129, 333, 40000, 1000003};
    const uint64_t key = 77, stream = 1234567;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *g = malloc((n + 1) * sizeof(float));
        float *gi = malloc((n + 1) * sizeof(float));
        assert_non_null(g);
        assert_non_null(gi);
        tu_fill_uniform(g, n, 300 + s, -3, 3);
        for (size_t i = 0; i < n; i++) gi[i] = floorf(g[i] * 100.0f);

        double naive = 0, naive_i = 0, mag = 0;
        for (size_t i = 0; i < n; i++) {
            double r = eg_rademacher(key, stream, i);
            naive += r * g[i];
            naive_i += r * gi[i];
            mag += fabs(g[i]);
        }
        double d1, dk, di;
        int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        assert_int_equal(rad_dot(be, n, key, stream, g, &d1), 0);
        omp_set_num_threads(4);
        assert_int_equal(rad_dot(be, n, key, stream, g, &dk), 0);
        omp_set_num_threads(threads);
        assert_int_equal(rad_dot(be, n, key, stream, gi, &di), 0);
        if (fabs(d1 - naive) > 1e-12 * mag)
            fail_msg("n %zu: %.17g, naive %.17g", n, d1, naive);
        assert_memory_equal(&d1, &dk, sizeof d1);
        if (di != naive_i) fail_msg("n %zu integer g: %.17g, naive %.17g", n, di, naive_i);
        free(g);
        free(gi);
    }
    be->destroy(be);
}

/* ---- the host RNG ---- */

static void test_rng_deterministic(void **state)
{
    eg_rng a, b, c;
    eg_rng_seed(&a, 42, 0);
    eg_rng_seed(&b, 42, 0);
    eg_rng_seed(&c, 42, 1);
    int same_as_other_stream = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = eg_rng_u32(&a);
        assert_int_equal(x, eg_rng_u32(&b));
        same_as_other_stream += x == eg_rng_u32(&c);
    }
    assert_true(same_as_other_stream < 3);
}

static void test_rng_uniform(void **state)
{
    eg_rng r;
    eg_rng_seed(&r, 3, 0);
    const int n = 200000;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        float u = eg_rng_uniform(&r);
        if (!(u >= 0.0f && u < 1.0f)) fail_msg("uniform %g outside [0, 1)", u);
        sum += u;
    }
    /* sd of U(0, 1) is 1 / sqrt(12). */
    assert_true(fabs(sum / n - 0.5) < 6.0 / sqrt(12.0 * n));
}

/* Chi-square of `draws` values of eg_rng_below(n) over n cells against
 * its mean (n - 1) and sd sqrt(2 (n - 1)), bound 6 sd. */
static void chi_square_below(uint64_t seed, uint32_t n, int draws)
{
    eg_rng r;
    eg_rng_seed(&r, seed, 5);
    long *count = calloc(n, sizeof(long));
    assert_non_null(count);
    for (int i = 0; i < draws; i++) {
        uint32_t v = eg_rng_below(&r, n);
        if (v >= n) fail_msg("below(%u) gave %u", n, v);
        count[v]++;
    }
    double expect = (double)draws / n, chi = 0;
    for (uint32_t k = 0; k < n; k++)
        chi += (count[k] - expect) * (count[k] - expect) / expect;
    double df = n - 1.0;
    printf("# below(%u): chi-square %.1f, df %.0f\n", n, chi, df);
    if (chi > df + 6.0 * sqrt(2.0 * df))
        fail_msg("below(%u): chi-square %.1f with %.0f degrees of freedom", n, chi, df);
    free(count);
}

static void test_rng_below(void **state)
{
    eg_rng r;
    eg_rng_seed(&r, 11, 0);
    const uint32_t ns[] = {1, 2, 3, 7, 1000, 0x80000001u, 0xC0000000u, 0xFFFFFFFFu};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        for (int i = 0; i < 20000; i++) {
            uint32_t v = eg_rng_below(&r, ns[k]);
            if (v >= ns[k]) fail_msg("below(%u) gave %u", ns[k], v);
        }
    chi_square_below(1, 2, 100000);
    chi_square_below(2, 10, 100000);
    chi_square_below(3, 1000, 200000);

    /* A large bound whose thirds must be equally likely. */
    long third[3] = {0};
    for (int i = 0; i < 90000; i++) third[eg_rng_below(&r, 0xC0000000u) >> 30]++;
    double chi = 0;
    for (int k = 0; k < 3; k++) chi += (third[k] - 30000.0) * (third[k] - 30000.0) / 30000.0;
    if (chi > 2.0 + 6.0 * 2.0) fail_msg("below(3 * 2^30): thirds chi-square %.1f", chi);
}

static void test_rng_normal(void **state)
{
    eg_rng r;
    eg_rng_seed(&r, 99, 2);
    const int n = 200000;
    double sum = 0, sq = 0, inside = 0;
    for (int i = 0; i < n; i++) {
        double z = eg_rng_normal(&r);
        if (!isfinite(z)) fail_msg("normal draw %d is %g", i, z);
        sum += z;
        sq += z * z;
        inside += fabs(z) < 1.0;
    }
    double mean = sum / n, var = sq / n - mean * mean, p = inside / n;
    printf("# normal: mean %.4f, variance %.4f, P(|z| < 1) %.4f\n", mean, var, p);
    if (fabs(mean) > 6.0 / sqrt(n)) fail_msg("normal mean %g", mean);
    if (fabs(var - 1.0) > 6.0 * sqrt(2.0 / n)) fail_msg("normal variance %g", var);
    const double p1 = 0.682689492137;
    if (fabs(p - p1) > 6.0 * sqrt(p1 * (1 - p1) / n)) fail_msg("P(|z| < 1) = %g", p);
}

static void test_rng_shuffle(void **state)
{
    enum { N = 1000 };
    uint32_t a[N], b[N], c[N];
    for (uint32_t i = 0; i < N; i++) a[i] = b[i] = c[i] = i;
    eg_rng r1, r2, r3;
    eg_rng_seed(&r1, 2024, 0);
    eg_rng_seed(&r2, 2024, 0);
    eg_rng_seed(&r3, 2025, 0);
    eg_rng_shuffle(&r1, a, N);
    eg_rng_shuffle(&r2, b, N);
    eg_rng_shuffle(&r3, c, N);

    char seen[N] = {0};
    int fixed = 0;
    for (uint32_t i = 0; i < N; i++) {
        assert_true(a[i] < N);
        assert_false(seen[a[i]]);
        seen[a[i]] = 1;
        fixed += a[i] == i;
    }
    assert_true(fixed < 10); /* about 1 expected */
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);

    /* Degenerate sizes are no-ops. */
    uint32_t one = 7;
    eg_rng_shuffle(&r1, &one, 1);
    eg_rng_shuffle(&r1, NULL, 0);
    assert_int_equal(one, 7);

    /* Every position is equally likely for each element: chi-square over
     * the 5 x 5 (element, position) table of 60000 shuffles of 5. */
    long table[5][5] = {{0}};
    for (int t = 0; t < 60000; t++) {
        uint32_t p[5] = {0, 1, 2, 3, 4};
        eg_rng_shuffle(&r3, p, 5);
        for (int pos = 0; pos < 5; pos++) table[p[pos]][pos]++;
    }
    for (int e = 0; e < 5; e++) {
        double chi = 0;
        for (int pos = 0; pos < 5; pos++)
            chi += (table[e][pos] - 12000.0) * (table[e][pos] - 12000.0) / 12000.0;
        if (chi > 4.0 + 6.0 * sqrt(8.0))
            fail_msg("element %d: position chi-square %.1f", e, chi);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_rademacher_layout),
        cmocka_unit_test(test_rademacher_axpy_elements),
        cmocka_unit_test(test_noise_fused),
        cmocka_unit_test(test_rademacher_statistics),
        cmocka_unit_test(test_rademacher_dot),
        cmocka_unit_test(test_rng_deterministic),
        cmocka_unit_test(test_rng_uniform),
        cmocka_unit_test(test_rng_below),
        cmocka_unit_test(test_rng_normal),
        cmocka_unit_test(test_rng_shuffle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
