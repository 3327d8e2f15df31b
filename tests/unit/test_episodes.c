/* Few-shot episodes and the domains they draw from: the episode sampler
 * (exact classes, shots and queries, seeded, uniform, its errors) and its
 * fetch over in-test domains; the fixed styles on hand-made images; domains
 * over IDX and CIFAR files written here (labels, splits, per_class, styles
 * through fetch, the test and training transforms, normalisation); the
 * pre-training pool (dense labels, epochs, resuming); and, where the Debian
 * dataset-fashion-mnist package is installed, an episode of the real set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/domain.h"
#include "data/episode.h"
#include "data/image_xform.h"
#include "data/styles.h"
#include "nn/philox.h"
#include "synth_data.h"
#include "testutil.h"
#include "util/err.h"

/* ---- in-test domains -------------------------------------------------- */

#define FAKE_MAX 1024

/* A domain whose fetch writes tag * 10000 + sample into every value and
 * logs the calls, for checking what episodes and pools fetch; fetching
 * sample fail_at fails. */
typedef struct fake_domain {
    eg_domain d;
    int tag, fail_at;
    int32_t label[FAKE_MAX];
    uint8_t split_of[FAKE_MAX];
    int calls;
    int call_sample[FAKE_MAX];
    int call_train[FAKE_MAX];
    uint64_t call_key[FAKE_MAX], call_stream[FAKE_MAX];
} fake_domain;

static int fake_fetch(eg_domain *d, int i, int train, uint64_t key, uint64_t stream, int size,
                      float *out)
{
    fake_domain *f = d->impl;
    if (i < 0 || i >= d->n) return eg_errorf("fake: sample %d out of range", i);
    if (i == f->fail_at) return eg_errorf("fake: sample %d is unreadable", i);
    if (f->calls < FAKE_MAX) {
        f->call_sample[f->calls] = i;
        f->call_train[f->calls] = train;
        f->call_key[f->calls] = key;
        f->call_stream[f->calls] = stream;
        f->calls++;
    }
    for (int p = 0; p < d->c * size * size; p++) out[p] = (float)(f->tag * 10000 + i);
    return 0;
}

static const eg_domain_ops fake_ops = {fake_fetch, NULL};

/* n samples, class of sample i = label_of(i), classes classes split by
 * the paper's rule. */
static void fake_init(fake_domain *f, const char *name, int tag, int n, int classes,
                      int (*label_of)(int))
{
    memset(f, 0, sizeof *f);
    assert_true(n <= FAKE_MAX && classes <= FAKE_MAX);
    f->tag = tag;
    f->d.ops = &fake_ops;
    snprintf(f->d.name, sizeof f->d.name, "%s", name);
    f->d.n = n;
    f->d.classes = classes;
    f->d.c = 1;
    f->d.native = 4;
    f->d.label = f->label;
    f->d.split_of = f->split_of;
    f->d.impl = f;
    f->fail_at = -1;
    for (int i = 0; i < n; i++) f->label[i] = label_of(i);
    for (int c = 0; c < classes; c++) f->split_of[c] = (uint8_t)eg_class_split_of(c);
}

/* Builds the 20-class domain with class c holding exactly 10 + c % 5
 * samples (labels interleaved so classes are not contiguous). */
static void fake20(fake_domain *f)
{
    int counts[20] = {0}, n = 0;
    fake_init(f, "fake20", 1, 0, 20, NULL);
    /* Lay the samples out round-robin: round r gives a sample to every
     * class that still needs one, visiting the classes in a stride-7
     * order. */
    for (int r = 0; r < 14; r++)
        for (int k = 0; k < 20; k++) {
            int c = (k * 7) % 20;
            if (counts[c] < 10 + c % 5) {
                f->label[n++] = c;
                counts[c]++;
            }
        }
    f->d.n = n;
}

static int label_mod3(int i)
{
    return i % 3;
}
static int label_mod10(int i)
{
    return i % 10;
}

/* ---- the sampler ------------------------------------------------------ */

static void check_episode(const fake_domain *f, const eg_episode *ep, eg_class_split s)
{
    int per = ep->n_shot + ep->n_query;
    assert_ptr_equal(ep->d, &f->d);
    for (int j = 0; j < ep->n_way; j++) {
        int c = ep->cls[j];
        assert_true(c >= 0 && c < f->d.classes);
        if (s != EG_SPLIT_ALL) assert_int_equal(f->split_of[c], s);
        for (int k = 0; k < j; k++)
            if (ep->cls[k] == c) fail_msg("class %d drawn twice (ways %d and %d)", c, k, j);
        for (int t = 0; t < per; t++) {
            int i = ep->sample[j * per + t];
            assert_true(i >= 0 && i < f->d.n);
            if (f->label[i] != c)
                fail_msg("slot %d of way %d: sample %d of class %d, not %d", t, j, i,
                         (int)f->label[i], c);
        }
    }
    /* All slots distinct: shots and queries distinct, support and query
     * disjoint. */
    for (int a = 0; a < ep->n_way * per; a++)
        for (int b = 0; b < a; b++)
            if (ep->sample[a] == ep->sample[b])
                fail_msg("sample %d in slots %d and %d", ep->sample[a], b, a);
}

static void test_draw_exact(void **state)
{
    (void)state;
    static fake_domain f;
    fake20(&f);
    assert_int_equal(f.d.n, 20 * 10 + 4 * (0 + 1 + 2 + 3 + 4));
    eg_class_index *ix;
    assert_int_equal(eg_class_index_new(&f.d, EG_SPLIT_BASE, &ix), 0);
    assert_int_equal(ix->n_classes, 10);
    for (int k = 0; k < 10; k++) {
        assert_int_equal(ix->cls[k], 2 * k);
        assert_int_equal(ix->start[k + 1] - ix->start[k], 10 + (2 * k) % 5);
        for (int t = ix->start[k]; t < ix->start[k + 1]; t++) {
            assert_int_equal(f.label[ix->sample[t]], 2 * k);
            if (t > ix->start[k]) assert_true(ix->sample[t] > ix->sample[t - 1]);
        }
    }
    eg_episode *ep;
    assert_int_equal(eg_episode_new(5, 3, 7, &ep), 0);
    for (uint64_t s = 0; s < 300; s++) {
        assert_int_equal(eg_episode_draw(ix, 42, s, ep), 0);
        check_episode(&f, ep, EG_SPLIT_BASE);
    }
    eg_episode_free(ep);
    /* The whole of a class: every sample exactly once. */
    assert_int_equal(eg_episode_new(10, 4, 6, &ep), 0);
    assert_int_equal(eg_episode_draw(ix, 7, 1, ep), 0);
    check_episode(&f, ep, EG_SPLIT_BASE);
    eg_episode_free(ep);
    eg_class_index_free(ix);

    /* The novel split: classes 3, 7, 11, 15, 19 (15 holds 10 samples). */
    assert_int_equal(eg_class_index_new(&f.d, EG_SPLIT_NOVEL, &ix), 0);
    assert_int_equal(ix->n_classes, 5);
    assert_int_equal(eg_episode_new(5, 1, 9, &ep), 0);
    for (uint64_t s = 0; s < 50; s++) {
        assert_int_equal(eg_episode_draw(ix, 3, s, ep), 0);
        check_episode(&f, ep, EG_SPLIT_NOVEL);
    }
    eg_episode_free(ep);
    eg_class_index_free(ix);
}

static int same_episode(const eg_episode *a, const eg_episode *b)
{
    int slots = a->n_way * (a->n_shot + a->n_query);
    return memcmp(a->cls, b->cls, (size_t)a->n_way * sizeof *a->cls) == 0 &&
           memcmp(a->sample, b->sample, (size_t)slots * sizeof *a->sample) == 0;
}

static void test_draw_seeded(void **state)
{
    (void)state;
    static fake_domain f;
    fake20(&f);
    eg_class_index *ix;
    assert_int_equal(eg_class_index_new(&f.d, EG_SPLIT_BASE, &ix), 0);
    eg_episode *a, *b;
    assert_int_equal(eg_episode_new(5, 5, 5, &a), 0);
    assert_int_equal(eg_episode_new(5, 5, 5, &b), 0);
    /* Same (key, stream): same episode, whatever was drawn in between. */
    assert_int_equal(eg_episode_draw(ix, 11, 1000, a), 0);
    assert_int_equal(eg_episode_draw(ix, 11, 1001, b), 0);
    assert_false(same_episode(a, b));
    assert_int_equal(eg_episode_draw(ix, 11, 1000, b), 0);
    assert_true(same_episode(a, b));
    /* Another key, and streams differing only in the top bit. */
    assert_int_equal(eg_episode_draw(ix, 12, 1000, b), 0);
    assert_false(same_episode(a, b));
    assert_int_equal(eg_episode_draw(ix, 11, 1000 | (1ull << 63), b), 0);
    assert_false(same_episode(a, b));
    /* A rebuilt index draws the same. */
    eg_class_index *ix2;
    assert_int_equal(eg_class_index_new(&f.d, EG_SPLIT_BASE, &ix2), 0);
    assert_int_equal(eg_episode_draw(ix2, 11, 1000, b), 0);
    assert_true(same_episode(a, b));
    /* Consecutive streams differ (almost always; count them). */
    int same = 0;
    for (uint64_t s = 0; s < 100; s++) {
        assert_int_equal(eg_episode_draw(ix, 5, s, a), 0);
        assert_int_equal(eg_episode_draw(ix, 5, s + 1, b), 0);
        same += same_episode(a, b);
    }
    assert_int_equal(same, 0);
    eg_episode_free(a);
    eg_episode_free(b);
    eg_class_index_free(ix);
    eg_class_index_free(ix2);
}

/* Pearson's statistic of counts against equal expectations. */
static double chi2(const long *count, int k)
{
    double total = 0, x = 0;
    for (int i = 0; i < k; i++) total += (double)count[i];
    double e = total / k;
    for (int i = 0; i < k; i++) x += ((double)count[i] - e) * ((double)count[i] - e) / e;
    return x;
}

static void test_draw_uniform(void **state)
{
    (void)state;
    static fake_domain f;
    fake20(&f);
    eg_class_index *ix;
    assert_int_equal(eg_class_index_new(&f.d, EG_SPLIT_BASE, &ix), 0);
    eg_episode *ep;
    assert_int_equal(eg_episode_new(5, 2, 3, &ep), 0);
    /* Classes: 5 of 10 per draw, each expected 2000 times in 4000 draws;
     * for 9 degrees of freedom P(chi2 > 40) is below 1e-5, and a sampler
     * favouring any class by 5% scores ~ 50 or more. Also the first way's
     * class alone (order must be uniform too). Within class 0 (10
     * samples): how often each sample is drawn, and how often it lands in
     * the support (a sampler keeping the lower indexes for support, or
     * always the first ones, fails). */
    long cls[10] = {0}, first[10] = {0}, drawn[10] = {0}, support[10] = {0};
    for (uint64_t s = 0; s < 4000; s++) {
        assert_int_equal(eg_episode_draw(ix, 99, s, ep), 0);
        for (int j = 0; j < 5; j++) {
            cls[ep->cls[j] / 2]++;
            if (ep->cls[j] != 0) continue;
            for (int t = 0; t < 5; t++) {
                int r = 0;
                while (ix->sample[ix->start[0] + r] != ep->sample[j * 5 + t]) r++;
                drawn[r]++;
                if (t < 2) support[r]++;
            }
        }
        first[ep->cls[0] / 2]++;
    }
    assert_int_equal(ix->start[1] - ix->start[0], 10);
    double x_cls = chi2(cls, 10), x_first = chi2(first, 10), x_drawn = chi2(drawn, 10),
           x_support = chi2(support, 10);
    print_message("chi2: classes %.2f, first way %.2f, class 0's samples %.2f, support %.2f\n",
                  x_cls, x_first, x_drawn, x_support);
    assert_true(x_cls < 40);
    assert_true(x_first < 40);
    assert_true(x_drawn < 40);
    assert_true(x_support < 40);
    /* Ordered pairs of 2 of 3 classes: 6 outcomes equally likely. */
    static fake_domain g;
    fake_init(&g, "three", 2, 60, 3, label_mod3);
    eg_class_index *all;
    assert_int_equal(eg_class_index_new(&g.d, EG_SPLIT_ALL, &all), 0);
    assert_int_equal(all->n_classes, 3);
    eg_episode *two;
    assert_int_equal(eg_episode_new(2, 1, 0, &two), 0);
    long pairs[9] = {0};
    for (uint64_t s = 0; s < 6000; s++) {
        assert_int_equal(eg_episode_draw(all, 1, s, two), 0);
        pairs[two->cls[0] * 3 + two->cls[1]]++;
    }
    long six[6];
    int n = 0;
    for (int p = 0; p < 9; p++) {
        if (p / 3 == p % 3) {
            assert_int_equal(pairs[p], 0);
            continue;
        }
        six[n++] = pairs[p];
    }
    double x_pairs = chi2(six, 6);
    print_message("chi2: ordered pairs %.2f\n", x_pairs);
    assert_true(x_pairs < 30); /* 5 degrees of freedom: P(> 30) ~ 1.5e-5 */
    eg_episode_free(two);
    eg_class_index_free(all);
    eg_episode_free(ep);
    eg_class_index_free(ix);
}

static void test_draw_errors(void **state)
{
    (void)state;
    static fake_domain f;
    fake20(&f);
    eg_class_index *ix;
    eg_episode *ep = NULL;
    assert_int_equal(eg_class_index_new(&f.d, EG_SPLIT_BASE, &ix), 0);
    tu_fails_with(eg_episode_new(0, 1, 1, &ep), "n_way 0");
    assert_null(ep);
    tu_fails_with(eg_episode_new(5, 0, 1, &ep), "n_shot 0");
    tu_fails_with(eg_episode_new(5, 1, -1, &ep), "n_query -1");
    /* 10 base classes: 11 ways are too many. */
    assert_int_equal(eg_episode_new(11, 1, 1, &ep), 0);
    tu_fails_with(eg_episode_draw(ix, 1, 1, ep), "fake20: the base split has 10 classes, fewer "
                                                 "than n_way = 11");
    eg_episode_free(ep);
    /* Class 0 (and 10) of the base split hold 10 samples: 5 + 6 is too
     * many even for a 1-way episode that might have drawn class 4. */
    assert_int_equal(eg_episode_new(1, 5, 6, &ep), 0);
    tu_fails_with(eg_episode_draw(ix, 1, 1, ep), "class 0 of the base split has 10 samples");
    tu_fails_with(eg_class_index_check(ix, 1, 5, 6), "n_shot + n_query = 5 + 6");
    eg_episode_free(ep);
    assert_int_equal(eg_class_index_check(ix, 10, 5, 5), 0); /* exactly enough */
    /* A label outside the domain's classes. */
    f.label[17] = 20;
    eg_class_index *bad = NULL;
    tu_fails_with(eg_class_index_new(&f.d, EG_SPLIT_BASE, &bad), "sample 17 has label 20");
    assert_null(bad);
    eg_class_index_free(ix);
    /* A split class with no sample: checked although it is not drawn. */
    static fake_domain g;
    fake_init(&g, "gappy", 3, 100, 12, label_mod10);
    assert_int_equal(eg_class_index_new(&g.d, EG_SPLIT_BASE, &ix), 0);
    assert_int_equal(ix->n_classes, 6);
    tu_fails_with(eg_class_index_check(ix, 1, 1, 0), "gappy: class 10 of the base split has 0");
    eg_class_index_free(ix);
}

static void test_episode_fetch(void **state)
{
    (void)state;
    static fake_domain f;
    fake20(&f);
    eg_class_index *ix;
    eg_episode *ep;
    assert_int_equal(eg_class_index_new(&f.d, EG_SPLIT_VAL, &ix), 0);
    assert_int_equal(ix->n_classes, 5); /* 1, 5, 9, 13, 17 */
    assert_int_equal(eg_episode_new(3, 2, 4, &ep), 0);
    tu_fails_with(eg_episode_fetch(ep, 0, 0, 0, 4, NULL, NULL), "before it was drawn");
    assert_int_equal(eg_episode_draw(ix, 5, 6, ep), 0);
    int slots = 3 * 6, size = 4;
    float *x = malloc((size_t)slots * size * size * sizeof *x);
    int32_t y[18];
    assert_non_null(x);
    assert_int_equal(eg_episode_fetch(ep, 1, 77, 123, size, x, y), 0);
    assert_int_equal(f.calls, slots);
    for (int t = 0; t < slots; t++) {
        assert_int_equal(y[t], t / 6);
        assert_int_equal(f.call_sample[t], ep->sample[t]);
        assert_int_equal(f.call_train[t], 1);
        assert_true(f.call_key[t] == 77);
        assert_true(f.call_stream[t] == eg_stream_mix(123, (uint64_t)t));
        for (int u = 0; u < t; u++) assert_true(f.call_stream[u] != f.call_stream[t]);
        for (int p = 0; p < size * size; p++)
            assert_true(x[t * size * size + p] == (float)(10000 + ep->sample[t]));
    }
    /* The test transform; labels alone. */
    f.calls = 0;
    assert_int_equal(eg_episode_fetch(ep, 0, 0, 0, size, x, NULL), 0);
    for (int t = 0; t < slots; t++) assert_int_equal(f.call_train[t], 0);
    f.calls = 0;
    memset(y, 0xff, sizeof y);
    assert_int_equal(eg_episode_fetch(ep, 0, 0, 0, size, NULL, y), 0);
    assert_int_equal(f.calls, 0);
    assert_int_equal(y[17], 2);
    /* A fetch failure passes the domain's message up. */
    f.fail_at = ep->sample[9];
    char what[64];
    snprintf(what, sizeof what, "sample %d is unreadable", f.fail_at);
    tu_fails_with(eg_episode_fetch(ep, 1, 0, 0, size, x, y), what);
    free(x);
    eg_episode_free(ep);
    eg_class_index_free(ix);
}

/* ---- styles ----------------------------------------------------------- */

static void test_style_names(void **state)
{
    (void)state;
    const char *const *names = eg_domain_styles();
    const char *want[] = {"original", "inverted", "edges", "blur-noise", "contrast"};
    int n = 0;
    while (names[n]) n++;
    assert_int_equal(n, EG_STYLE_COUNT);
    for (int k = 0; k < 5; k++) {
        eg_style s;
        assert_int_equal(eg_style_parse(want[k], &s), 0);
        assert_string_equal(names[s], want[k]);
    }
    eg_style s = EG_STYLE_EDGES;
    assert_int_equal(eg_style_parse(NULL, &s), 0);
    assert_int_equal(s, EG_STYLE_ORIGINAL);
    tu_fails_with(eg_style_parse("sepia", &s), "style 'sepia': unknown (one of original, ");
}

static void test_style_pointwise(void **state)
{
    (void)state;
    float src[2 * 4 * 3], dst[2 * 4 * 3]; /* (2, 4, 3) */
    for (int i = 0; i < 24; i++) src[i] = (float)((i * 5) % 24) / 23.0f;
    eg_style_apply(EG_STYLE_ORIGINAL, src, dst, 2, 4, 3, 0);
    assert_memory_equal(src, dst, sizeof src);
    eg_style_apply(EG_STYLE_INVERTED, src, dst, 2, 4, 3, 0);
    for (int i = 0; i < 24; i++) assert_true(dst[i] == 1.0f - src[i]);
    eg_style_apply(EG_STYLE_CONTRAST, src, dst, 2, 4, 3, 0);
    for (int i = 0; i < 24; i++) assert_float_equal(dst[i], sqrt(src[i]), 1e-7);
    eg_style_apply(EG_STYLE_SOLARIZE, src, dst, 2, 4, 3, 0);
    for (int i = 0; i < 24; i++) assert_true(dst[i] == (src[i] < 0.5f ? src[i] : 1.0f - src[i]));
    /* Stripes: rows 0, 1 kept, rows 2, 3 halved, in both channels. */
    eg_style_apply(EG_STYLE_STRIPES, src, dst, 2, 4, 3, 0);
    for (int ch = 0; ch < 2; ch++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 3; x++) {
                int i = (ch * 4 + y) * 3 + x;
                assert_true(dst[i] == (y >= 2 ? 0.5f * src[i] : src[i]));
            }
}

static void test_style_edges(void **state)
{
    (void)state;
    /* An 8x8 step: columns 0-3 are 0, columns 4-7 are 1. With zero
     * padding the magnitudes are: interior rows 4 at columns 3, 4 and 7
     * (the image's right border), 0 elsewhere; the top row 4 over the
     * step's right part, 3*sqrt(2) (the largest) at (0, 4) and (0, 7),
     * sqrt(10) at (0, 3). */
    float src[64], dst[64];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) src[y * 8 + x] = x >= 4 ? 1.0f : 0.0f;
    eg_style_apply(EG_STYLE_EDGES, src, dst, 1, 8, 8, 0);
    double m = 3.0 * sqrt(2.0);
    struct {
        int y, x;
        double v;
    } want[] = {
        {4, 0, 0},
        {4, 1, 0},
        {4, 2, 0},
        {4, 3, 4 / m},
        {4, 4, 4 / m},
        {4, 5, 0},
        {4, 6, 0},
        {4, 7, 4 / m},
        {0, 0, 0},
        {0, 2, 0},
        {0, 3, sqrt(10) / m},
        {0, 4, 1},
        {0, 5, 4 / m},
        {0, 6, 4 / m},
        {0, 7, 1},
        {7, 7, 1},
        {7, 4, 1},
        {3, 3, 4 / m},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        float got = dst[want[k].y * 8 + want[k].x];
        if (fabs(got - want[k].v) > 1e-6)
            fail_msg("edges (%d, %d): %g, expected %g", want[k].y, want[k].x, got, want[k].v);
    }
    float max = 0;
    for (int i = 0; i < 64; i++) max = dst[i] > max ? dst[i] : max;
    assert_true(max == 1.0f);
    /* A black image has no edges (and no division by zero). */
    for (int i = 0; i < 64; i++) src[i] = 0.0f;
    eg_style_apply(EG_STYLE_EDGES, src, dst, 1, 8, 8, 0);
    for (int i = 0; i < 64; i++) assert_true(dst[i] == 0.0f);
    /* Two channels share one scale: channel 1 at half the step. */
    float two[128], out2[128];
    for (int i = 0; i < 64; i++) {
        two[i] = (i % 8) >= 4 ? 1.0f : 0.0f;
        two[64 + i] = 0.5f * two[i];
    }
    eg_style_apply(EG_STYLE_EDGES, two, out2, 2, 8, 8, 0);
    assert_float_equal(out2[4 * 8 + 3], 4 / m, 1e-6);
    assert_float_equal(out2[64 + 4 * 8 + 3], 2 / m, 1e-6);
}

static void test_style_blur_noise(void **state)
{
    (void)state;
    /* 0.5 everywhere but 0.9 at the centre (2, 2) and 0.7 at the corner
     * (0, 0) of a 5x5 image. Blur: the centre spreads 0.4 * [1 2 1]^T
     * [1 2 1] / 16; the corner, with clamped edges, keeps 9/16 of its 0.2
     * (zero padding would keep 4/16 and darken the whole border). */
    float src[25], dst[25], again[25], other[25];
    for (int i = 0; i < 25; i++) src[i] = 0.5f;
    src[12] = 0.9f;
    src[0] = 0.7f;
    double blur[25];
    for (int i = 0; i < 25; i++) blur[i] = 0.5;
    const double w[3] = {1, 2, 1};
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            blur[(2 + dy) * 5 + 2 + dx] += 0.4 * w[dy + 1] * w[dx + 1] / 16;
    blur[0] += 0.2 * 9 / 16;
    blur[1] += 0.2 * 3 / 16; /* (0, 0) is (0, 1)'s neighbours (-1, -1) and (0, -1) */
    blur[5] += 0.2 * 3 / 16;
    blur[6] += 0.2 * 1 / 16;
    eg_style_apply(EG_STYLE_BLUR_NOISE, src, dst, 1, 5, 5, 7);
    for (int i = 0; i < 25; i++) {
        double v = blur[i] + 0.1 * eg_gaussian(EG_STYLE_NOISE_KEY, 7, (uint64_t)i);
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        if (fabs(dst[i] - v) > 1e-6) fail_msg("blur-noise %d: %g, expected %g", i, dst[i], v);
    }
    /* Fixed per sample: the same sample gives the same image, another
     * another. */
    eg_style_apply(EG_STYLE_BLUR_NOISE, src, again, 1, 5, 5, 7);
    assert_memory_equal(dst, again, sizeof dst);
    eg_style_apply(EG_STYLE_BLUR_NOISE, src, other, 1, 5, 5, 8);
    int differ = 0;
    for (int i = 0; i < 25; i++) differ += other[i] != dst[i];
    assert_true(differ >= 20);
    /* The noise has std 0.1 and mean 0 on a flat grey 3x32x32 image, and
     * results stay in [0, 1] on a white one. */
    static float big[3 * 32 * 32], out[3 * 32 * 32];
    for (int i = 0; i < 3 * 32 * 32; i++) big[i] = 0.5f;
    eg_style_apply(EG_STYLE_BLUR_NOISE, big, out, 3, 32, 32, 1234);
    double s1 = 0, s2 = 0;
    for (int i = 0; i < 3 * 32 * 32; i++) {
        s1 += out[i] - 0.5;
        s2 += (out[i] - 0.5) * (out[i] - 0.5);
    }
    double mean = s1 / 3072, sd = sqrt(s2 / 3072 - mean * mean);
    print_message("blur-noise: noise mean %.4f std %.4f\n", mean, sd);
    assert_true(fabs(mean) < 0.01);
    assert_true(fabs(sd - 0.1) < 0.01);
    for (int i = 0; i < 3 * 32 * 32; i++) big[i] = 1.0f;
    eg_style_apply(EG_STYLE_BLUR_NOISE, big, out, 3, 32, 32, 1234);
    int ones = 0;
    for (int i = 0; i < 3 * 32 * 32; i++) {
        assert_true(out[i] >= 0.0f && out[i] <= 1.0f);
        ones += out[i] == 1.0f;
    }
    assert_true(ones > 1300 && ones < 1800); /* half the noise is positive */
}

/* ---- dataset domains -------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes dir/train-{images-idx3,labels-idx1}-ubyte (raw) of n images of
 * side x side: pixel (i, y, x) = px(i, y, x), label(i). */
static void write_idx(const char *dir, int n, int side, unsigned char (*px)(int, int, int),
                      int (*label)(int))
{
    char path[1024];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char h[16];
    put_be32(h, 0x803);
    put_be32(h + 4, (uint32_t)n);
    put_be32(h + 8, (uint32_t)side);
    put_be32(h + 12, (uint32_t)side);
    assert_int_equal(fwrite(h, 1, 16, f), 16);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) assert_int_equal(fputc(px(i, y, x), f), px(i, y, x));
    assert_int_equal(fclose(f), 0);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    put_be32(h, 0x801);
    assert_int_equal(fwrite(h, 1, 8, f), 8);
    for (int i = 0; i < n; i++) assert_int_equal(fputc(label(i), f), label(i));
    assert_int_equal(fclose(f), 0);
}

/* 120 flat 8x8 images: image i is all 2 * i; its class (7 i + 3) % 10,
 * so every class holds 12, interleaved. */
static unsigned char flat_px(int i, int y, int x)
{
    return (unsigned char)(2 * i);
}
static int flat_label(int i)
{
    return (i * 7 + 3) % 10;
}
static int gap_label(int i)
{
    return i < 30 ? 0 : i % 10;
}
static unsigned char grey_px(int i, int y, int x)
{
    return 128;
}

/* The file index of a fetched flat image: (2 i / 255 - 0.5) / 0.5. */
static int flat_index(float v)
{
    return (int)lrint(((v * 0.5 + 0.5) * 255.0) / 2.0);
}

static void test_dataset_labels_splits(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    char d8[600];
    snprintf(d8, sizeof d8, "%s", dir);
    write_idx(d8, 120, 8, flat_px, flat_label);
    eg_domain *d;
    assert_int_equal(eg_domain_open_dataset("flat", "idx", d8, NULL, 0, &d), 0);
    assert_string_equal(d->name, "flat");
    assert_int_equal(d->n, 120);
    assert_int_equal(d->classes, 10);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->native, 8);
    for (int i = 0; i < 120; i++) assert_int_equal(d->label[i], flat_label(i));
    for (int c = 0; c < 10; c++) assert_int_equal(d->split_of[c], eg_class_split_of(c));
    int cls[10];
    assert_int_equal(eg_domain_classes(d, EG_SPLIT_BASE, cls), 5);
    for (int k = 0; k < 5; k++) assert_int_equal(cls[k], 2 * k);
    assert_int_equal(eg_domain_classes(d, EG_SPLIT_VAL, cls), 3);   /* 1, 5, 9 */
    assert_int_equal(eg_domain_classes(d, EG_SPLIT_NOVEL, cls), 2); /* 3, 7 */
    /* Fetched images are the file's, in order, normalised. */
    float out[8 * 8];
    for (int i = 0; i < 120; i += 13) {
        assert_int_equal(d->ops->fetch(d, i, 0, 0, 0, 8, out), 0);
        for (int p = 0; p < 64; p++)
            assert_float_equal(out[p], (2.0 * i / 255.0 - 0.5) / 0.5, 1e-5);
        assert_int_equal(flat_index(out[0]), i);
    }
    tu_fails_with(d->ops->fetch(d, 120, 0, 0, 0, 8, out), "flat: sample 120 outside [0, 120)");
    tu_fails_with(d->ops->fetch(d, -1, 0, 0, 0, 8, out), "sample -1 outside");
    eg_domain_free(d);

    /* per_class: the first 5 of each class in file order. */
    assert_int_equal(eg_domain_open_dataset("few", "idx", d8, "original", 5, &d), 0);
    assert_int_equal(d->n, 50);
    assert_int_equal(d->classes, 10);
    int seen[10] = {0}, next_file = 0;
    for (int k = 0; k < 50; k++) {
        assert_int_equal(d->ops->fetch(d, k, 0, 0, 0, 8, out), 0);
        int file = flat_index(out[0]);
        assert_int_equal(flat_label(file), d->label[k]);
        assert_true(file >= next_file); /* file order kept */
        next_file = file + 1;
        /* It is the seen[c]-th sample of its class in the file. */
        int rank = 0;
        for (int i = 0; i < file; i++) rank += flat_label(i) == d->label[k];
        assert_int_equal(rank, seen[d->label[k]]++);
    }
    for (int c = 0; c < 10; c++) assert_int_equal(seen[c], 5);
    eg_domain_free(d);
    /* per_class larger than any class: all. */
    assert_int_equal(eg_domain_open_dataset("many", "idx", d8, NULL, 1000, &d), 0);
    assert_int_equal(d->n, 120);
    eg_domain_free(d);

    d = (eg_domain *)1;
    tu_fails_with(eg_domain_open_dataset("x", "idx", d8, "sepia", 0, &d), "style 'sepia'");
    assert_null(d);
    tu_fails_with(eg_domain_open_dataset("x", "idx", d8, NULL, -1, &d), "per_class -1");
    char missing[700];
    snprintf(missing, sizeof missing, "%s/nothing-here", d8);
    tu_fails_with(eg_domain_open_dataset("lost", "idx", missing, NULL, 0, &d), "lost: ");
    tu_fails_with(eg_domain_open_dataset("lost", "idx", missing, NULL, 0, &d), "nothing-here");
    tu_fails_with(eg_domain_open_dataset("x", "no-such-set", d8, NULL, 0, &d), "no-such-set");
    char longname[100];
    memset(longname, 'a', 99);
    longname[99] = 0;
    tu_fails_with(eg_domain_open_dataset(longname, "idx", d8, NULL, 0, &d), "longer than 63");
}

static void test_dataset_styles(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    write_idx(dir, 120, 8, flat_px, flat_label);
    /* Flat images stay flat through the test transform, so every fetched
     * value is the style's value of 2 i / 255, normalised. */
    const char *names[] = {"original", "inverted", "contrast", "solarize"};
    for (int k = 0; k < 4; k++) {
        eg_domain *d;
        assert_int_equal(eg_domain_open_dataset(names[k], "idx", dir, names[k], 0, &d), 0);
        float out[10 * 10];
        for (int i = 0; i < 120; i += 7) {
            assert_int_equal(d->ops->fetch(d, i, 0, 0, 0, 10, out), 0);
            double v = 2.0 * i / 255.0;
            double s = k == 0 ? v : k == 1 ? 1 - v : k == 2 ? sqrt(v) : v < 0.5 ? v : 1 - v;
            for (int p = 0; p < 100; p++)
                if (fabs(out[p] - (s - 0.5) / 0.5) > 1e-5)
                    fail_msg("%s, sample %d, pixel %d: %g, expected %g", names[k], i, p, out[p],
                             (s - 0.5) / 0.5);
        }
        eg_domain_free(d);
    }
    /* blur-noise: fixed per sample of the file, whatever per_class keeps;
     * two samples of equal pixels get different noise. */
    eg_domain *all, *few;
    assert_int_equal(eg_domain_open_dataset("bn", "idx", dir, "blur-noise", 0, &all), 0);
    float a[64], b[64], c[64];
    assert_int_equal(all->ops->fetch(all, 50, 0, 0, 0, 8, a), 0);
    assert_int_equal(all->ops->fetch(all, 50, 0, 0, 0, 8, b), 0);
    assert_memory_equal(a, b, sizeof a);
    eg_domain_free(all);
    /* Over a set where class 0 holds the file's first 30 samples, 2 per
     * class keep the file's samples 0, 1, then 31 .. 39 and 41 .. 49: kept
     * sample 2 is the file's 31 and has its noise. */
    const char *gap = tu_tmpdir();
    write_idx(gap, 120, 8, flat_px, gap_label);
    assert_int_equal(eg_domain_open_dataset("bn", "idx", gap, "blur-noise", 0, &all), 0);
    assert_int_equal(eg_domain_open_dataset("bn2", "idx", gap, "blur-noise", 2, &few), 0);
    assert_int_equal(few->n, 20);
    assert_int_equal(few->label[2], 1);
    assert_int_equal(few->label[11], 1);
    assert_int_equal(all->ops->fetch(all, 31, 0, 0, 0, 8, a), 0);
    assert_int_equal(few->ops->fetch(few, 2, 0, 0, 0, 8, b), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(all->ops->fetch(all, 41, 0, 0, 0, 8, a), 0);
    assert_int_equal(few->ops->fetch(few, 11, 0, 0, 0, 8, b), 0);
    assert_memory_equal(a, b, sizeof a);
    eg_domain_free(few);
    /* Equal pixels, other samples: other noise (a set of one flat grey). */
    const char *grey = tu_tmpdir();
    write_idx(grey, 20, 8, grey_px, label_mod10);
    assert_int_equal(eg_domain_open_dataset("bn3", "idx", grey, "blur-noise", 0, &few), 0);
    assert_int_equal(few->ops->fetch(few, 0, 0, 0, 0, 8, a), 0);
    assert_int_equal(few->ops->fetch(few, 1, 0, 0, 0, 8, c), 0);
    int differ = 0;
    for (int p = 0; p < 64; p++) differ += a[p] != c[p];
    assert_true(differ > 32);
    eg_domain_free(all);
    eg_domain_free(few);
}

/* 20 images of 28x28: a white square on black whose place and size
 * depend on i, classes i % 10. */
static unsigned char square_px(int i, int y, int x)
{
    int y0 = 3 + i % 7, x0 = 2 + (i * 3) % 11, s = 8 + i % 5;
    return (unsigned char)((y >= y0 && y < y0 + s && x >= x0 && x < x0 + s) ? 255 : 0);
}
static int square_label(int i)
{
    return i % 10;
}
static unsigned char step_px(int i, int y, int x)
{
    return x >= 14 ? 255 : 0;
}

static void test_dataset_transforms(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    write_idx(dir, 20, 28, square_px, square_label);
    eg_domain *d;
    assert_int_equal(eg_domain_open_dataset("squares", "idx", dir, "edges", 0, &d), 0);
    assert_int_equal(d->native, 28);
    static float out[28 * 28], out2[28 * 28], want[28 * 28], raw[28 * 28], styled[28 * 28];
    /* Test transform at the native size: resize the shorter side to
     * int(1.15 * 28) = 32 and crop the centre 28, i.e. the pixels of the
     * 28/32 zoom; the fetch is style, transform, normalisation in that
     * order. */
    for (int i = 0; i < 20; i += 3) {
        for (int p = 0; p < 28 * 28; p++) raw[p] = square_px(i, p / 28, p % 28) / 255.0f;
        eg_style_apply(EG_STYLE_EDGES, raw, styled, 1, 28, 28, (uint64_t)i);
        assert_int_equal(eg_image_test_xform(styled, 1, 28, 28, 28, want), 0);
        for (int p = 0; p < 28 * 28; p++) want[p] = (want[p] - 0.5f) / 0.5f;
        memset(out, 0, sizeof out);
        assert_int_equal(d->ops->fetch(d, i, 0, 0, 0, 28, out), 0);
        for (int p = 0; p < 28 * 28; p++)
            if (fabsf(out[p] - want[p]) > 1e-6)
                fail_msg("sample %d pixel %d: %g, expected %g", i, p, out[p], want[p]);
        /* Deterministic, and key and stream unused. */
        assert_int_equal(d->ops->fetch(d, i, 0, 9, 9, 28, out2), 0);
        assert_memory_equal(out, out2, sizeof out);
    }
    eg_domain_free(d);

    /* Original squares: the zoom keeps black and white plateaus, so the
     * normalised range is exactly [-1, 1]; the square's centre pixel is
     * white and the far corner black in the fetched image. */
    assert_int_equal(eg_domain_open_dataset("squares", "idx", dir, NULL, 0, &d), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(d->ops->fetch(d, i, 0, 0, 0, 28, out), 0);
        float lo = 2, hi = -2;
        for (int p = 0; p < 28 * 28; p++) {
            lo = out[p] < lo ? out[p] : lo;
            hi = out[p] > hi ? out[p] : hi;
        }
        assert_float_equal(lo, -1.0f, 1e-6);
        assert_float_equal(hi, 1.0f, 1e-6);
        /* The square's centre (y0 + s / 2, x0 + s / 2) lands at 32 / 28
         * of it less the crop's offset 2, well inside the zoomed square
         * (at least 9 pixels wide), so that pixel is white. */
        int y0 = 3 + i % 7, x0 = 2 + (i * 3) % 11, s = 8 + i % 5;
        double cy = (y0 + s / 2.0) * 32.0 / 28.0 - 2.0, cx = (x0 + s / 2.0) * 32.0 / 28.0 - 2.0;
        int yy = (int)cy, xx = (int)cx;
        assert_true(yy >= 0 && yy < 28 && xx >= 0 && xx < 28);
        assert_float_equal(out[yy * 28 + xx], 1.0f, 1e-6);
    }
    eg_domain_free(d);

    /* By hand: a step (columns 0-13 black, 14-27 white) resized to 32 and
     * cropped from column 2. Output column x samples the source at
     * (x + 2 + 0.5) * 28 / 32 - 0.5 (PIL's pixel centres), bilinearly:
     * columns 0-12 sample below 13 (black), 13 samples 13.0625 (0.0625
     * white), 14 samples 13.9375 (0.9375), 15-27 above 14 (white). */
    const char *sdir = tu_tmpdir();
    write_idx(sdir, 10, 28, step_px, square_label);
    assert_int_equal(eg_domain_open_dataset("step", "idx", sdir, NULL, 0, &d), 0);
    assert_int_equal(d->ops->fetch(d, 3, 0, 0, 0, 28, out), 0);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double v = x <= 12 ? 0 : x == 13 ? 0.0625 : x == 14 ? 0.9375 : 1;
            if (fabs(out[y * 28 + x] - (v - 0.5) / 0.5) > 1e-5)
                fail_msg("step (%d, %d): %g, expected %g", y, x, out[y * 28 + x], (v - 0.5) / 0.5);
        }
    eg_domain_free(d);

    /* Training transform: seeded, varies with the stream, in range. */
    assert_int_equal(eg_domain_open_dataset("squares", "idx", dir, NULL, 0, &d), 0);
    assert_int_equal(d->ops->fetch(d, 4, 1, 5, 1, 28, out), 0);
    assert_int_equal(d->ops->fetch(d, 4, 1, 5, 1, 28, out2), 0);
    assert_memory_equal(out, out2, sizeof out);
    int differ = 0;
    for (uint64_t s = 2; s < 6; s++) {
        assert_int_equal(d->ops->fetch(d, 4, 1, 5, s, 28, out2), 0);
        differ += memcmp(out, out2, sizeof out) != 0;
        for (int p = 0; p < 28 * 28; p++)
            if (!(out2[p] >= -1.0f - 1e-6f && out2[p] <= 1.0f + 1e-6f))
                fail_msg("training fetch pixel %d: %g outside [-1, 1]", p, out2[p]);
    }
    assert_int_equal(differ, 4);
    /* Another size. */
    static float small[12 * 12];
    assert_int_equal(d->ops->fetch(d, 4, 1, 5, 1, 12, small), 0);
    assert_int_equal(d->ops->fetch(d, 4, 0, 0, 0, 12, small), 0);
    tu_fails_with(d->ops->fetch(d, 4, 0, 0, 0, 0, small), "image size 0");
    eg_domain_free(d);
}

static void test_dataset_cifar(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    assert_int_equal(synth_cifar10(dir, 20, 5, 3), 0);
    eg_domain *d;
    assert_int_equal(eg_domain_open_dataset("cifar-inv", "cifar10", dir, "inverted", 3, &d), 0);
    assert_int_equal(d->c, 3);
    assert_int_equal(d->native, 32);
    assert_int_equal(d->classes, 10);
    int count[10] = {0};
    for (int i = 0; i < d->n; i++) count[d->label[i]]++;
    for (int c = 0; c < 10; c++) assert_true(count[c] <= 3);
    assert_true(d->n >= 25); /* 100 uniform labels: every class has 3 */
    static float out[3 * 32 * 32];
    assert_int_equal(d->ops->fetch(d, 0, 1, 1, 2, 32, out), 0);
    float lo = 2, hi = -2;
    for (int p = 0; p < 3 * 32 * 32; p++) {
        lo = out[p] < lo ? out[p] : lo;
        hi = out[p] > hi ? out[p] : hi;
    }
    assert_true(lo >= -1.0f - 1e-6f && hi <= 1.0f + 1e-6f);
    assert_true(hi - lo > 0.5f); /* random pixels: not flat */
    eg_domain_free(d);
}

/* ---- pre-training pools ----------------------------------------------- */

/* Domain A: 50 samples of 10 classes (i % 10); B: 30 samples labelled
 * i % 10 among 12 classes, so its base class 10 holds no sample. */
static void test_pool(void **state)
{
    (void)state;
    static fake_domain a, b;
    fake_init(&a, "A", 1, 50, 10, label_mod10);
    fake_init(&b, "B", 2, 30, 12, label_mod10);
    b.d.c = 2;
    eg_domain *ds[2] = {&a.d, &b.d};
    eg_pool *p = NULL;
    tu_fails_with(eg_pool_new(ds, 2, EG_SPLIT_BASE, &p), "domain B has 2 channels but A has 1");
    tu_fails_with(eg_pool_new(ds, 0, EG_SPLIT_BASE, &p), "at least one domain");
    b.d.c = 1;
    assert_int_equal(eg_pool_new(ds, 2, EG_SPLIT_BASE, &p), 0);
    /* A's base classes 0, 2, 4, 6, 8 -> 0..4; B's 0, 2, 4, 6, 8 (10 holds
     * no sample) -> 5..9. */
    assert_int_equal(p->classes, 10);
    assert_int_equal(p->n, 25 + 15);
    for (int l = 0; l < 10; l++) {
        assert_int_equal(p->label_domain[l], l / 5);
        assert_int_equal(p->label_class[l], 2 * (l % 5));
    }
    int per_label[10] = {0};
    for (int e = 0; e < p->n; e++) {
        int k = p->entry_domain[e], i = p->entry_sample[e], l = p->entry_label[e];
        assert_true(l >= 0 && l < 10);
        assert_int_equal(p->label_domain[l], k);
        assert_int_equal(ds[k]->label[i], p->label_class[l]);
        assert_int_equal(eg_class_split_of(ds[k]->label[i]), EG_SPLIT_BASE);
        per_label[l]++;
    }
    for (int l = 0; l < 10; l++) assert_int_equal(per_label[l], l < 5 ? 5 : 3);

    /* Epochs: batches of 8 over 40 entries; each epoch of 5 batches
     * serves every entry once, and epochs differ. */
    int32_t e0[40], e1[40], ent[8];
    for (int step = 0; step < 10; step++) {
        assert_int_equal(eg_pool_draw(p, 3, (uint64_t)step, 8, ent), 0);
        memcpy((step < 5 ? e0 : e1) + (step % 5) * 8, ent, sizeof ent);
    }
    int hit0[40] = {0}, hit1[40] = {0};
    for (int t = 0; t < 40; t++) {
        assert_true(e0[t] >= 0 && e0[t] < 40 && e1[t] >= 0 && e1[t] < 40);
        hit0[e0[t]]++;
        hit1[e1[t]]++;
    }
    for (int e = 0; e < 40; e++) assert_true(hit0[e] == 1 && hit1[e] == 1);
    assert_true(memcmp(e0, e1, sizeof e0) != 0);
    /* Resuming: step 7 on a fresh pool, and after other keys' draws. */
    eg_pool *q;
    assert_int_equal(eg_pool_new(ds, 2, EG_SPLIT_BASE, &q), 0);
    assert_int_equal(eg_pool_draw(q, 3, 7, 8, ent), 0);
    assert_memory_equal(ent, e1 + 2 * 8, sizeof ent);
    assert_int_equal(eg_pool_draw(q, 4, 7, 8, ent), 0);
    assert_true(memcmp(ent, e1 + 2 * 8, sizeof ent) != 0);
    assert_int_equal(eg_pool_draw(q, 3, 7, 8, ent), 0);
    assert_memory_equal(ent, e1 + 2 * 8, sizeof ent);
    /* A batch straddling epochs (batch 12: step 3 holds entries 36..47). */
    int32_t big[12];
    assert_int_equal(eg_pool_draw(q, 3, 3, 12, big), 0);
    assert_memory_equal(big, e0 + 36, 4 * sizeof *big);
    assert_memory_equal(big + 4, e1, 8 * sizeof *big);
    eg_pool_free(q);
    tu_fails_with(eg_pool_draw(p, 3, 0, 0, ent), "batch 0");

    /* Fetching: labels and images of the right domain and sample. */
    float x[8 * 3 * 3];
    int32_t y[8];
    assert_int_equal(eg_pool_batch(p, 3, 6, 8, 3, x, y), 0);
    for (int t = 0; t < 8; t++) {
        int e = e1[8 + t];
        assert_int_equal(y[t], p->entry_label[e]);
        int tag = p->entry_domain[e] + 1;
        assert_true(x[t * 9] == (float)(tag * 10000 + p->entry_sample[e]));
    }
    /* Each fetch had train = 1 and the stream mix(step, t). */
    int last = a.calls + b.calls;
    assert_int_equal(last, 8);
    assert_true(a.calls > 0 && b.calls > 0);
    for (int k = 0; k < a.calls; k++) {
        assert_int_equal(a.call_train[k], 1);
        assert_true(a.call_key[k] == 3);
        int t = 0; /* the batch slot of this call: the k-th of A's */
        for (int seen_a = -1; t < 8; t++)
            if (p->entry_domain[e1[8 + t]] == 0 && ++seen_a == k) break;
        assert_true(a.call_stream[k] == eg_stream_mix(6, (uint64_t)t));
    }
    int32_t bad = 40;
    tu_fails_with(eg_pool_fetch(p, &bad, 1, 0, 0, 0, 3, x, y), "entry 40 outside [0, 40)");
    eg_pool_free(p);

    /* Labels cover exactly the seen classes: the val split of A and B
     * (classes 1, 5, 9), and one domain alone. */
    assert_int_equal(eg_pool_new(ds, 2, EG_SPLIT_VAL, &p), 0);
    assert_int_equal(p->classes, 6);
    int seen[6] = {0};
    for (int e = 0; e < p->n; e++) seen[p->entry_label[e]]++;
    for (int l = 0; l < 6; l++) assert_true(seen[l] > 0);
    eg_pool_free(p);
    /* A split holding no sample. */
    static fake_domain g;
    fake_init(&g, "G", 4, 20, 12, label_mod10);
    for (int i = 0; i < 20; i++) g.label[i] = 0; /* only class 0 */
    eg_domain *gd = &g.d;
    tu_fails_with(eg_pool_new(&gd, 1, EG_SPLIT_NOVEL, &p), "novel split of G holds no sample");
    assert_int_equal(eg_pool_new(&gd, 1, EG_SPLIT_ALL, &p), 0);
    assert_int_equal(p->classes, 1);
    eg_pool_free(p);
}

/* Where the Debian dataset-fashion-mnist package is installed: its
 * default folder, 100 per class, an episode drawn and fetched end to end. */
static void test_fashion_mnist_episode(void **state)
{
    (void)state;
    if (access(EG_FASHION_MNIST_DIR "/train-labels-idx1-ubyte.gz", R_OK) != 0) {
        print_message("%s not installed: skipped\n", EG_FASHION_MNIST_DIR);
        skip();
    }
    eg_domain *d;
    assert_int_equal(
        eg_domain_open_dataset("fmnist-edges", "fashion-mnist", NULL, "edges", 100, &d), 0);
    assert_int_equal(d->n, 1000);
    assert_int_equal(d->classes, 10);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->native, 28);
    eg_class_index *ix;
    eg_episode *ep;
    assert_int_equal(eg_class_index_new(d, EG_SPLIT_BASE, &ix), 0);
    assert_int_equal(eg_episode_new(5, 5, 15, &ep), 0);
    assert_int_equal(eg_episode_draw(ix, 1, 2, ep), 0);
    int slots = 5 * 20;
    float *x = malloc((size_t)slots * 28 * 28 * sizeof *x);
    int32_t y[100];
    assert_non_null(x);
    for (int train = 0; train < 2; train++) {
        assert_int_equal(eg_episode_fetch(ep, train, 1, 2, 28, x, y), 0);
        for (size_t p = 0; p < (size_t)slots * 28 * 28; p++)
            if (!(x[p] >= -1.0f - 1e-6f && x[p] <= 1.0f + 1e-6f))
                fail_msg("value %zu: %g outside [-1, 1]", p, x[p]);
        for (int t = 0; t < slots; t++) {
            assert_int_equal(y[t], t / 20);
            assert_int_equal(d->label[ep->sample[t]], ep->cls[t / 20]);
        }
    }
    free(x);
    eg_episode_free(ep);
    eg_class_index_free(ix);
    eg_domain_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draw_exact),
        cmocka_unit_test(test_draw_seeded),
        cmocka_unit_test(test_draw_uniform),
        cmocka_unit_test(test_draw_errors),
        cmocka_unit_test(test_episode_fetch),
        cmocka_unit_test(test_style_names),
        cmocka_unit_test(test_style_pointwise),
        cmocka_unit_test(test_style_edges),
        cmocka_unit_test(test_style_blur_noise),
        cmocka_unit_test(test_dataset_labels_splits),
        cmocka_unit_test(test_dataset_styles),
        cmocka_unit_test(test_dataset_transforms),
        cmocka_unit_test(test_dataset_cifar),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_fashion_mnist_episode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
