/* The optimiser (nn/optim.c) and the flat-vector ops it stands on
 * (nn/cpu/cpu_vec.c): SGD and Adam against torch.optim on the same data,
 * the step schedule, config validation, memory accounting, and the
 * determinism of the CPU dot product. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/optim.h"
#include "testutil.h"
#include "util/err.h"

/* ---- parity with torch.optim ---- */

/* One parity case: n parameters, `steps` steps with fresh gradients. */
typedef struct parity_case {
    const char *what;
    eg_optim_config cfg;
    size_t n;
    int steps;
} parity_case;

static float *xmalloc_floats(size_t n)
{
    float *p = malloc(n * sizeof(float));
    assert_non_null(p);
    return p;
}

static void write_or_fail(const char *dir, const char *name, const float *x,
                          size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (tu_write_f32(path, x, n) != 0) fail_msg("cannot write %s", path);
}

static void read_or_fail(const char *dir, const char *name, float *x, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (tu_read_f32(path, x, n) != 0)
        fail_msg("cannot read %zu floats from %s", n, path);
}

/* Removes the files run_parity and optim_ref.py write, then the folder. */
static void remove_scratch(const char *dir)
{
    static const char *names[] = {"theta0.f32", "grads.f32", "theta.f32",
                                  "m.f32", "v.f32"};
    char path[600];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Runs the case through eg_optim and through tests/parity/optim_ref.py on
 * the same theta0 and gradients; compares theta and the moments. */
static void run_parity(const parity_case *pc)
{
    const eg_optim_config *c = &pc->cfg;
    size_t n = pc->n;
    float *theta = xmalloc_floats(n);
    float *grads = xmalloc_floats(n * pc->steps); // (steps, n)
    float *want = xmalloc_floats(n);
    tu_fill_uniform(theta, n, 101, -1.0f, 1.0f);
    tu_fill_uniform(grads, n * pc->steps, 202, -1.0f, 1.0f);

    const char *dir = tu_tmpdir();
    write_or_fail(dir, "theta0.f32", theta, n);
    write_or_fail(dir, "grads.f32", grads, n * pc->steps);

    char ms[200] = "";
    for (int i = 0; i < c->n_milestones; i++) {
        size_t len = strlen(ms);
        snprintf(ms + len, sizeof ms - len, "%s%ld", i ? "," : "", c->milestones[i]);
    }
    /* %.17g prints each float's exact value, so torch sees the very same
     * hyperparameters. */
    char args[2048];
    snprintf(args, sizeof args,
             "--dir %s --kind %s --n %zu --steps %d --lr %.17g --momentum %.17g "
             "--weight-decay %.17g --nesterov %d --beta1 %.17g --beta2 %.17g "
             "--eps %.17g --gamma %.17g%s%s",
             dir, c->kind == EG_OPT_SGD ? "sgd" : "adam", n, pc->steps,
             (double)c->lr, (double)c->momentum, (double)c->weight_decay,
             c->nesterov, (double)c->beta1, (double)c->beta2, (double)c->eps,
             (double)c->gamma, ms[0] ? " --milestones " : "", ms);
    int rc = tu_python("optim_ref.py", args);
    if (rc == 3)
        fail_msg("%s: /usr/bin/python3 cannot import torch; the parity test "
                 "needs PyTorch (Debian python3-torch)", pc->what);
    if (rc != 0) fail_msg("%s: optim_ref.py failed with status %d", pc->what, rc);

    eg_backend *be = tu_cpu();
    eg_optim o;
    if (eg_optim_init(&o, be, n, c) != 0)
        fail_msg("%s: init: %s", pc->what, eg_last_error());
    for (int s = 0; s < pc->steps; s++)
        if (eg_optim_step(&o, theta, grads + (size_t)s * n) != 0)
            fail_msg("%s: step %d: %s", pc->what, s, eg_last_error());
    assert_int_equal(o.step, pc->steps);

    read_or_fail(dir, "theta.f32", want, n);
    double err = tu_rel_err(theta, want, n);
    printf("# %s: theta rel err %.3g\n", pc->what, err);
    if (!(err <= 1e-6)) fail_msg("%s: theta differs from torch: rel err %g", pc->what, err);
    if (o.m) {
        read_or_fail(dir, "m.f32", want, n);
        err = tu_rel_err(o.m, want, n);
        if (!(err <= 1e-6)) fail_msg("%s: m differs from torch: rel err %g", pc->what, err);
    }
    if (o.v) {
        read_or_fail(dir, "v.f32", want, n);
        err = tu_rel_err(o.v, want, n);
        if (!(err <= 1e-6)) fail_msg("%s: v differs from torch: rel err %g", pc->what, err);
    }
    eg_optim_free(&o);
    be->destroy(be);
    free(theta);
    free(grads);
    free(want);
    remove_scratch(dir);
}

/* 40007 parameters: above the parallel threshold, not a round number. */
#define PARITY_N 40007

static void test_sgd_plain(void **state)
{
    parity_case pc = {"sgd plain", eg_optim_sgd_defaults(0.1f), PARITY_N, 5};
    run_parity(&pc);
}

static void test_sgd_momentum(void **state)
{
    parity_case pc = {"sgd momentum 0.9", eg_optim_sgd_defaults(0.05f), PARITY_N, 5};
    pc.cfg.momentum = 0.9f;
    run_parity(&pc);
}

static void test_sgd_nesterov_wd(void **state)
{
    parity_case pc = {"sgd nesterov wd 5e-4", eg_optim_sgd_defaults(0.1f), PARITY_N, 5};
    pc.cfg.momentum = 0.9f;
    pc.cfg.nesterov = 1;
    pc.cfg.weight_decay = 5e-4f;
    run_parity(&pc);
}

static void test_sgd_milestones(void **state)
{
    parity_case pc = {"sgd momentum milestones", eg_optim_sgd_defaults(0.1f), 1001, 6};
    pc.cfg.momentum = 0.9f;
    pc.cfg.weight_decay = 1e-3f;
    pc.cfg.n_milestones = 2;
    pc.cfg.milestones[0] = 2;
    pc.cfg.milestones[1] = 4;
    pc.cfg.gamma = 0.5f;
    run_parity(&pc);
}

static void test_adam(void **state)
{
    parity_case pc = {"adam", eg_optim_adam_defaults(), PARITY_N, 5};
    pc.cfg.lr = 0.01f;
    run_parity(&pc);
}

static void test_adam_wd(void **state)
{
    parity_case pc = {"adam wd 1e-2", eg_optim_adam_defaults(), PARITY_N, 5};
    pc.cfg.lr = 0.01f;
    pc.cfg.weight_decay = 1e-2f;
    pc.cfg.beta1 = 0.8f;
    pc.cfg.beta2 = 0.99f;
    run_parity(&pc);
}

/* ---- schedule ---- */

static void test_schedule(void **state)
{
    eg_backend *be = tu_cpu();
    eg_optim_config c = eg_optim_sgd_defaults(0.5f);
    c.n_milestones = 2;
    c.milestones[0] = 3;
    c.milestones[1] = 5;
    c.gamma = 0.1f;
    eg_optim o;
    assert_int_equal(eg_optim_init(&o, be, 1, &c), 0);
    /* Steps taken -> lr of the next step: 0, 1, 2 -> lr; 3, 4 -> lr gamma;
     * from 5 on -> lr gamma^2. */
    const double want[8] = {0.5, 0.5, 0.5, 0.05, 0.05, 0.005, 0.005, 0.005};
    float theta = 0.0f, grad = 1.0f;
    double moved = 0;
    for (int s = 0; s < 8; s++) {
        float lr = eg_optim_lr(&o);
        if (fabs(lr - want[s]) > 1e-7 * want[s])
            fail_msg("after %d steps lr %.9g, want %.9g", s, (double)lr, want[s]);
        /* The step applies that lr: plain SGD with grad 1 moves by -lr. */
        float before = theta;
        assert_int_equal(eg_optim_step(&o, &theta, &grad), 0);
        assert_true(fabs((double)(before - theta) - lr) <= 1e-6 * lr + 2e-7);
        moved += lr;
    }
    assert_true(fabs(-theta - moved) < 1e-6);
    assert_int_equal(o.step, 8);
    eg_optim_free(&o);
    be->destroy(be);
}

/* ---- validation and memory ---- */

typedef struct bad_case {
    const char *field; /* must appear in the error message */
    eg_optim_config cfg;
} bad_case;

static void test_config_validation(void **state)
{
    eg_backend *be = tu_cpu();
    eg_optim_config sgd = eg_optim_sgd_defaults(0.1f);
    eg_optim_config adam = eg_optim_adam_defaults();
    bad_case bad[32];
    int nb = 0;
#define BAD(FIELD, BASE, SET)                                                  \
    do {                                                                       \
        bad[nb].field = FIELD;                                                 \
        bad[nb].cfg = BASE;                                                    \
        eg_optim_config *c_ = &bad[nb].cfg;                                    \
        SET;                                                                   \
        nb++;                                                                  \
    } while (0)
    BAD("lr", sgd, c_->lr = 0.0f);
    BAD("lr", sgd, c_->lr = -1.0f);
    BAD("lr", adam, c_->lr = NAN);
    BAD("lr", adam, c_->lr = INFINITY);
    BAD("momentum", sgd, c_->momentum = 1.0f);
    BAD("momentum", sgd, c_->momentum = -0.1f);
    BAD("momentum", sgd, c_->momentum = NAN);
    BAD("nesterov", sgd, c_->nesterov = 1);
    BAD("weight_decay", sgd, c_->weight_decay = -1e-4f);
    BAD("weight_decay", adam, c_->weight_decay = INFINITY);
    BAD("beta1", adam, c_->beta1 = 1.0f);
    BAD("beta1", adam, c_->beta1 = -0.5f);
    BAD("beta2", adam, c_->beta2 = 1.0f);
    BAD("beta2", adam, c_->beta2 = NAN);
    BAD("eps", adam, c_->eps = 0.0f);
    BAD("eps", adam, c_->eps = -1e-8f);
    BAD("kind", sgd, c_->kind = (eg_opt_kind)7);
    BAD("n_milestones", sgd, c_->n_milestones = 9);
    BAD("n_milestones", sgd, c_->n_milestones = -1);
    BAD("milestones[0]", sgd, (c_->n_milestones = 1, c_->milestones[0] = 0));
    BAD("milestones[1]", sgd,
        (c_->n_milestones = 2, c_->milestones[0] = 5, c_->milestones[1] = 5));
    BAD("gamma", sgd, (c_->n_milestones = 1, c_->milestones[0] = 3, c_->gamma = 0.0f));
    BAD("gamma", adam, (c_->n_milestones = 1, c_->milestones[0] = 3, c_->gamma = NAN));
#undef BAD
    for (int i = 0; i < nb; i++) {
        eg_optim o;
        eg_clear_error();
        if (eg_optim_init(&o, be, 10, &bad[i].cfg) != -1)
            fail_msg("bad config %d (%s) accepted", i, bad[i].field);
        const char *msg = eg_last_error();
        if (!strstr(msg, bad[i].field))
            fail_msg("bad config %d: message \"%s\" does not name %s", i, msg,
                     bad[i].field);
        assert_null(o.m);
        assert_null(o.v);
        eg_optim_free(&o);
    }
    assert_int_equal(be->cur_bytes, 0);

    /* Good configurations pass, including the edges of the ranges. */
    eg_optim_config good[4] = {sgd, sgd, adam, adam};
    good[1].momentum = 0.99f;
    good[1].nesterov = 1;
    good[1].n_milestones = 8;
    for (int i = 0; i < 8; i++) good[1].milestones[i] = 10 * (i + 1);
    good[2].beta1 = 0.0f;
    good[3].weight_decay = 0.0f;
    good[3].n_milestones = 0;
    good[3].gamma = 0.0f; /* unused without milestones */
    for (int i = 0; i < 4; i++) {
        eg_optim o;
        if (eg_optim_init(&o, be, 10, &good[i]) != 0)
            fail_msg("good config %d rejected: %s", i, eg_last_error());
        eg_optim_free(&o);
    }

    eg_optim o;
    assert_int_equal(eg_optim_init(&o, be, 0, &sgd), -1);
    assert_non_null(strstr(eg_last_error(), "n = 0"));
    tu_fails_with(eg_optim_init(&o, NULL, 10, &sgd), "optim: no backend");
    be->destroy(be);
}

static void test_memory_accounting(void **state)
{
    eg_backend *be = tu_cpu();
    const size_t n = 1000;
    size_t base = be->cur_bytes;
    eg_optim_config c[3] = {eg_optim_sgd_defaults(0.1f), eg_optim_sgd_defaults(0.1f),
                            eg_optim_adam_defaults()};
    c[1].momentum = 0.9f;
    const size_t want[3] = {0, n * sizeof(float), 2 * n * sizeof(float)};
    for (int i = 0; i < 3; i++) {
        eg_optim o;
        assert_int_equal(eg_optim_init(&o, be, n, &c[i]), 0);
        assert_int_equal(be->cur_bytes - base, want[i]);
        for (size_t j = 0; o.m && j < n; j++) assert_true(o.m[j] == 0.0f);
        for (size_t j = 0; o.v && j < n; j++) assert_true(o.v[j] == 0.0f);
        eg_optim_free(&o);
        eg_optim_free(&o); /* twice is harmless */
        assert_int_equal(be->cur_bytes, base);
    }
    be->destroy(be);
}

/* A restored optimiser (moments and step copied) continues exactly like
 * the one that kept running: what a checkpoint relies on. */
static void test_resume(void **state)
{
    eg_backend *be = tu_cpu();
    const size_t n = 300;
    eg_optim_config cs[2] = {eg_optim_sgd_defaults(0.1f), eg_optim_adam_defaults()};
    cs[0].momentum = 0.9f;
    float a[300], b[300], g[300];
    for (int k = 0; k < 2; k++) {
        tu_fill_uniform(a, n, 5, -1, 1);
        eg_optim o1, o2;
        assert_int_equal(eg_optim_init(&o1, be, n, &cs[k]), 0);
        assert_int_equal(eg_optim_init(&o2, be, n, &cs[k]), 0);
        for (int s = 0; s < 3; s++) {
            tu_fill_uniform(g, n, 10 + s, -1, 1);
            assert_int_equal(eg_optim_step(&o1, a, g), 0);
        }
        memcpy(b, a, sizeof a);
        memcpy(o2.m, o1.m, n * sizeof(float));
        if (o1.v) memcpy(o2.v, o1.v, n * sizeof(float));
        o2.step = o1.step;
        for (int s = 3; s < 6; s++) {
            tu_fill_uniform(g, n, 10 + s, -1, 1);
            assert_int_equal(eg_optim_step(&o1, a, g), 0);
            assert_int_equal(eg_optim_step(&o2, b, g), 0);
        }
        assert_memory_equal(a, b, sizeof a);
        eg_optim_free(&o1);
        eg_optim_free(&o2);
    }
    be->destroy(be);
}

static void test_backend_step_errors(void **state)
{
    eg_backend *be = tu_cpu();
    float t[4] = {0}, g[4] = {0}, m[4] = {0}, v[4] = {0};
    assert_int_equal(be->sgd_step(be, 4, t, g, NULL, 0.1f, 0.9f, 0, 0, 1), -1);
    assert_non_null(strstr(eg_last_error(), "momentum"));
    assert_int_equal(be->sgd_step(be, 4, t, g, NULL, 0.1f, 0.0f, 0, 0, 1), 0);
    tu_fails_with(be->adam_step(be, 4, t, g, m, v, 0.1f, 0.9f, 0.999f, 1e-8f, 0, 0),
                  "step number 0 must be >= 1");
    assert_int_equal(be->adam_step(be, 4, t, g, m, v, 0.1f, 0.9f, 0.999f, 1e-8f, 0, 1), 0);
    be->destroy(be);
}

/* ---- flat-vector ops ---- */

static void test_vec_ops(void **state)
{
    eg_backend *be = tu_cpu();
    const size_t sizes[] = {0, 1, 7, 129, 40000, 1000003};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        float *x = xmalloc_floats(n + 1), *y = xmalloc_floats(n + 1);
        float *y0 = xmalloc_floats(n + 1);
        tu_fill_uniform(x, n + 1, 1 + k, -2, 2);
        tu_fill_uniform(y0, n + 1, 50 + k, -2, 2);
        memcpy(y, y0, (n + 1) * sizeof(float));

        /* axpy and scale against the scalar expressions; y[n] untouched. */
        assert_int_equal(be->axpy(be, n, 0.375f, x, y), 0);
        for (size_t i = 0; i < n; i++)
            if (y[i] != y0[i] + 0.375f * x[i]) fail_msg("axpy n %zu at %zu", n, i);
        assert_true(y[n] == y0[n]);
        assert_int_equal(be->scale(be, n, -1.5f, y), 0);
        for (size_t i = 0; i < n; i++)
            if (y[i] != (y0[i] + 0.375f * x[i]) * -1.5f) fail_msg("scale n %zu at %zu", n, i);
        assert_true(y[n] == y0[n]);

        /* dot: close to the naive sum, and bit-identical for every thread
         * count. */
        double naive = 0, mag = 0;
        for (size_t i = 0; i < n; i++) {
            naive += (double)x[i] * y0[i];
            mag += fabs((double)x[i] * y0[i]);
        }
        double d1 = 0, dk = 0;
        int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        assert_int_equal(be->dot(be, n, x, y0, &d1), 0);
        omp_set_num_threads(3);
        assert_int_equal(be->dot(be, n, x, y0, &dk), 0);
        omp_set_num_threads(threads);
        if (fabs(d1 - naive) > 1e-11 * mag)
            fail_msg("dot n %zu: %.17g vs naive %.17g", n, d1, naive);
        assert_memory_equal(&d1, &dk, sizeof d1);

        assert_int_equal(be->fill(be, n, 2.5f, y), 0);
        for (size_t i = 0; i < n; i++) assert_true(y[i] == 2.5f);
        assert_true(y[n] == y0[n]);
        free(x);
        free(y);
        free(y0);
    }
    /* The dot product accumulates in double: 1 + 2^-30 terms that a float
     * sum would round away. */
    float ones[4096], small[4096];
    for (int i = 0; i < 4096; i++) {
        ones[i] = 1.0f;
        small[i] = i == 0 ? 1.0f : 0x1p-30f;
    }
    double d;
    assert_int_equal(be->dot(be, 4096, ones, small, &d), 0);
    assert_true(d == 1.0 + 4095 * 0x1p-30);
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_plain),
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_sgd_nesterov_wd),
        cmocka_unit_test(test_sgd_milestones),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adam_wd),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test(test_memory_accounting),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_backend_step_errors),
        cmocka_unit_test(test_vec_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
