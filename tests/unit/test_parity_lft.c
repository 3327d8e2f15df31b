/* LFT parity with PyTorch (Debian's python3-torch, CPU, float64): an LFT
 * ResNet-10 with feature-wise transformations, prototypes, relation pairs
 * and the relation module, forward in training mode and backward to every
 * backbone and relation parameter, every FT meta-parameter and the input,
 * the running statistics after the step; then an evaluation-mode forward
 * and backward of the backbone. Within 1e-4 relative error per slice. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/fewshot.h"
#include "nn/models.h"
#include "testutil.h"

#define TOL 1e-4

typedef struct spec {
    const char *name;
    int depth, width, c, size, small_stem;
    int n_way, shot, query;
} spec;

static void write_manifest(const char *dir, const eg_net *net, const eg_net *rel)
{
    char path[600];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    const struct {
        const char *kind;
        const eg_layout *l;
    } all[] = {{"params", &net->params},
               {"state", &net->state},
               {"meta", &net->meta},
               {"rparams", &rel->params}};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < all[k].l->n; i++)
            fprintf(f, "%s %s %zu\n", all[k].kind, all[k].l->slices[i].name,
                    all[k].l->slices[i].count);
    assert_int_equal(fclose(f), 0);
}

static void put(const char *dir, const char *name, const float *x, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    assert_int_equal(tu_write_f32(path, x, n), 0);
}

static float *get(const char *dir, const char *name, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    float *ref = malloc(n * sizeof(float) + 1);
    assert_int_equal(tu_read_f32(path, ref, n), 0);
    return ref;
}

/* max |a - b| / max(max |b|, floor) over n values. */
static double err_against(const float *a, const float *b, size_t n, double floor)
{
    double diff = 0, scale = floor;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > diff) diff = d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return diff / (scale > 0 ? scale : 1e-300);
}

/* Compares ours with DIR/NAME.f32, whole or (layout not NULL) slice by
 * slice so small slices cannot hide behind large ones: each slice's error
 * is relative to its own largest reference value, or to 1e-3 of the whole
 * vector's when that is larger (a conv bias in front of a batch-statistics
 * BN has an exactly zero gradient, which rounding makes 1e-9). Returns the
 * largest error. */
static double expect(const spec *sp, const char *dir, const char *name, const float *ours, size_t n,
                     const eg_layout *layout)
{
    float *ref = get(dir, name, n);
    double worst = 0, whole = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > whole) whole = fabs(ref[i]);
    int slices = layout ? layout->n : 1;
    for (int i = 0; i < slices; i++) {
        size_t off = layout ? layout->slices[i].offset : 0;
        size_t cnt = layout ? layout->slices[i].count : n;
        double err = err_against(ours + off, ref + off, cnt, 1e-3 * whole);
        if (err > worst) worst = err;
        if (!(err <= TOL))
            fail_msg("%s %s%s%s: relative error %.3g > %.0e", sp->name, name, layout ? " " : "",
                     layout ? layout->slices[i].name : "", err, TOL);
    }
    fprintf(stderr, "%s %-12s %3d slice(s), largest relative error %.2e\n", sp->name, name, slices,
            worst);
    free(ref);
    return worst;
}

/* One comparison at `seed`; returns the reference's status (10: the input
 * lies near a kink, 77: no torch). */
static int run_seed(const spec *sp, uint64_t seed)
{
    eg_backend *be = tu_cpu();
    eg_net net, rel;
    int n = sp->n_way * (sp->shot + sp->query), nq = sp->n_way * sp->query;
    int pairs_n = nq * sp->n_way;
    assert_int_equal(
        eg_model_lft_resnet(&net, be, sp->depth, sp->width, sp->c, sp->size, sp->small_stem, 1), 0);
    assert_int_equal(eg_net_finish(&net, n, 1), 0);
    const eg_layer *fl = &net.layers[net.n_layers - 1];
    int fc = fl->c, fh = fl->h, fw = fl->w, d = fc * fh * fw;
    assert_int_equal(eg_model_relation(&rel, be, fc, fh, fw), 0);
    assert_int_equal(eg_net_finish(&rel, pairs_n, 1), 0);
    size_t P = net.params.total, S = net.state.total, M = net.meta.total;
    size_t R = rel.params.total, nx = (size_t)n * sp->c * sp->size * sp->size;
    float *theta = malloc(P * sizeof(float)), *dtheta = calloc(P, sizeof(float));
    float *state = malloc(S * sizeof(float)), *state0 = malloc(S * sizeof(float));
    float *meta = malloc(M * sizeof(float)), *dmeta = calloc(M, sizeof(float));
    float *rtheta = malloc(R * sizeof(float)), *drtheta = calloc(R, sizeof(float));
    float *x = malloc(nx * sizeof(float)), *dx = malloc(nx * sizeof(float));
    float *jitter = malloc((P + M + R) * sizeof(float));
    float *w = malloc(pairs_n * sizeof(float)), *w2 = malloc((size_t)n * d * sizeof(float));
    float *feats = malloc((size_t)n * d * sizeof(float));
    float *dfeats = malloc((size_t)n * d * sizeof(float));
    float *protos = malloc((size_t)sp->n_way * d * sizeof(float));
    float *dprotos = malloc((size_t)sp->n_way * d * sizeof(float));
    float *pairs = malloc((size_t)pairs_n * 2 * d * sizeof(float));
    float *scores = malloc(pairs_n * sizeof(float));

    eg_net_init_params(&net, theta, state, seed);
    eg_net_init_meta(&net, meta);
    eg_net_init_params(&rel, rtheta, NULL, seed + 1);
    /* Jitter BN scales and shifts off 1 and 0, and some meta values below
     * softplus's threshold (100 θ < 20). */
    tu_fill_uniform(jitter, P + M + R, seed + 2, -0.05f, 0.05f);
    for (size_t i = 0; i < P; i++) theta[i] += jitter[i];
    for (size_t i = 0; i < R; i++) rtheta[i] += jitter[P + M + i];
    tu_fill_uniform(jitter, M, seed + 3, -0.3f, 0.02f);
    for (size_t i = 0; i < M; i++) meta[i] += jitter[i];
    memcpy(state0, state, S * sizeof(float));
    tu_fill_uniform(x, nx, seed + 4, -1.0f, 1.0f);
    tu_fill_uniform(w, pairs_n, seed + 5, -1.0f, 1.0f);
    tu_fill_uniform(w2, (size_t)n * d, seed + 6, -1.0f, 1.0f);
    assert_int_equal(eg_net_set_ft(&net, meta, dmeta, seed, 3), 0);

    const char *dir = tu_tmpdir();
    write_manifest(dir, &net, &rel);
    put(dir, "theta", theta, P);
    put(dir, "state", state0, S);
    put(dir, "meta", meta, M);
    put(dir, "noise", net.ft_noise, M);
    put(dir, "rtheta", rtheta, R);
    put(dir, "x", x, nx);
    put(dir, "w", w, pairs_n);
    put(dir, "w2", w2, (size_t)n * d);
    char args[800];
    snprintf(args, sizeof args, "%s %d %d %d %d %d %d %d %d", dir, sp->depth, sp->width, sp->c,
             sp->size, sp->small_stem, sp->n_way, sp->shot, sp->query);
    int rc = tu_python("lft_ref.py", args);
    if (rc == 10 || rc == 77) goto out;
    if (rc != 0) fail_msg("tests/parity/lft_ref.py failed with status %d", rc);

    /* Training mode with FT: features, prototypes, pairs, relation scores. */
    assert_int_equal(eg_net_forward(&net, theta, state, x, n, EG_TRAIN), 0);
    memcpy(feats, eg_net_output(&net), (size_t)n * d * sizeof(float));
    assert_int_equal(eg_fewshot_protos(be, sp->n_way, sp->shot, sp->query, d, feats, protos), 0);
    assert_int_equal(
        eg_fewshot_pairs(be, sp->n_way, sp->shot, sp->query, fc, fh * fw, protos, feats, pairs), 0);
    assert_int_equal(eg_net_forward(&rel, rtheta, NULL, pairs, pairs_n, EG_TRAIN), 0);
    memcpy(scores, eg_net_output(&rel), pairs_n * sizeof(float));
    /* Backward: scores -> pairs -> prototypes and queries -> backbone. */
    float *dpairs = malloc((size_t)pairs_n * 2 * d * sizeof(float));
    assert_int_equal(eg_net_backward(&rel, rtheta, w, drtheta, dpairs), 0);
    memset(dfeats, 0, (size_t)n * d * sizeof(float));
    assert_int_equal(eg_fewshot_pairs_bwd(be, sp->n_way, sp->shot, sp->query, fc, fh * fw, dpairs,
                                          dprotos, dfeats),
                     0);
    assert_int_equal(eg_fewshot_protos_bwd(be, sp->n_way, sp->shot, sp->query, d, dprotos, dfeats),
                     0);
    free(dpairs);
    assert_int_equal(eg_net_backward(&net, theta, dfeats, dtheta, dx), 0);

    expect(sp, dir, "feats", feats, (size_t)n * d, NULL);
    expect(sp, dir, "scores", scores, pairs_n, NULL);
    expect(sp, dir, "dtheta", dtheta, P, &net.params);
    expect(sp, dir, "dmeta", dmeta, M, &net.meta);
    expect(sp, dir, "drtheta", drtheta, R, &rel.params);
    expect(sp, dir, "dx", dx, nx, NULL);
    expect(sp, dir, "state_after", state, S, &net.state);

    /* Evaluation mode: running statistics, FT off. */
    assert_int_equal(eg_net_set_ft(&net, NULL, NULL, 0, 0), 0);
    memset(dtheta, 0, P * sizeof(float));
    assert_int_equal(eg_net_forward(&net, theta, state, x, n, EG_EVAL), 0);
    expect(sp, dir, "eval_feats", eg_net_output(&net), (size_t)n * d, NULL);
    assert_int_equal(eg_net_backward(&net, theta, w2, dtheta, dx), 0);
    expect(sp, dir, "eval_dtheta", dtheta, P, &net.params);
    expect(sp, dir, "eval_dx", dx, nx, NULL);
out:
    free(theta);
    free(dtheta);
    free(state);
    free(state0);
    free(meta);
    free(dmeta);
    free(rtheta);
    free(drtheta);
    free(x);
    free(dx);
    free(jitter);
    free(w);
    free(w2);
    free(feats);
    free(dfeats);
    free(protos);
    free(dprotos);
    free(pairs);
    free(scores);
    eg_net_free(&rel);
    eg_net_free(&net);
    be->destroy(be);
    return rc;
}

static void run_parity(const spec *sp)
{
    for (uint64_t seed = 42; seed < 42 + 30 * 8; seed += 8) {
        int rc = run_seed(sp, seed);
        if (rc == 77) {
            fprintf(stderr,
                    "%s: /usr/bin/python3 has no torch (Debian python3-torch): "
                    "skipped\n",
                    sp->name);
            skip();
        }
        if (rc == 0) {
            fprintf(stderr, "%s: compared at seed %llu\n", sp->name, (unsigned long long)seed);
            return;
        }
    }
    fail_msg("%s: every input drawn lies near a kink", sp->name);
}

/* The ImageNet stem (conv 7x7 stride 2, max-pool 3x3 stride 2 pad 1) on
 * 112 px: a 4x4 map, relation padding 1; 3-way 2-shot 2-query. */
static void test_resnet10_relation(void **s)
{
    spec sp = {"resnet10", 10, 4, 3, 112, 0, 3, 2, 2};
    run_parity(&sp);
}

/* The small stem on 32 px inputs. */
static void test_resnet10_small_stem(void **s)
{
    spec sp = {"resnet10-small", 10, 4, 3, 32, 1, 2, 1, 2};
    run_parity(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet10_relation),
        cmocka_unit_test(test_resnet10_small_stem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
