/* The paper's one-dimensional problem (Figures 2 and 3): x trained on
 * f_T(x) = (x-1)^2 + λ x^2, λ meta-learned on f_V(x) = (x-0.5)^2. At the
 * optimum x*(λ) = 1/(1+λ) the true hypergradient is
 * g(λ) = (λ-1)/(λ+1)^3. θ = [x], λ = [λ]. */
#include "tasks/toy1d.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "meta/method.h"
#include "meta/spec.h"
#include "nn/optim.h"
#include "nn/rng.h"
#include "util/err.h"

typedef struct toy {
    eg_task base;
    eg_job job;
    eg_optim opt;   /* x's optimiser */
} toy;

double eg_toy1d_truth(double lambda) { return (lambda - 1) / pow(lambda + 1, 3); }

/* Reads one float of device memory. */
static int get1(eg_backend *be, const float *p, double *out)
{
    float v;
    EG_TRY(be->download(be, &v, p, sizeof v));
    *out = v;
    return 0;
}

static int put1(eg_backend *be, float *p, double v)
{
    float f = (float)v;
    return be->upload(be, p, &f, sizeof f);
}

static int next_batch(eg_task *t) { return 0; }

static int train_loss(eg_task *t, const float *theta, double *loss, float *dlambda)
{
    double x, lam;
    EG_TRY(get1(t->be, theta, &x));
    EG_TRY(get1(t->be, t->lambda, &lam));
    *loss = (x - 1) * (x - 1) + lam * x * x;
    return dlambda ? put1(t->be, dlambda, x * x) : 0;
}

static int train_grad(eg_task *t, const float *theta, double *loss, float *dtheta)
{
    double x, lam;
    EG_TRY(get1(t->be, theta, &x));
    EG_TRY(get1(t->be, t->lambda, &lam));
    *loss = (x - 1) * (x - 1) + lam * x * x;
    return put1(t->be, dtheta, 2 * (x - 1) + 2 * lam * x);
}

static int val_grad(eg_task *t, const float *theta, double *loss, float *dtheta,
                    float *dlambda)
{
    double x;
    EG_TRY(get1(t->be, theta, &x));
    *loss = (x - 0.5) * (x - 0.5);
    return put1(t->be, dtheta, 2 * (x - 0.5)); /* f_V has no direct λ term */
}

static int base_step(eg_task *t, double *loss)
{
    toy *ty = (toy *)t;
    EG_TRY(train_grad(t, t->theta, loss, t->grad));
    return eg_optim_step(&ty->opt, t->theta, t->grad);
}

static float base_lr(const eg_task *t) { return eg_optim_lr(&((const toy *)t)->opt); }

static int evaluate(eg_task *t, eg_eval *ev)
{
    double x;
    EG_TRY(get1(t->be, t->theta, &x));
    ev->test_loss = (x - 0.5) * (x - 0.5);
    return 0;
}

/* Mean hypergradient estimate of `method` at λ over `trials` draws of
 * x ~ N(0, 1); each trial keys its own noise. */
static int mean_estimate(eg_task *t, eg_meta *m, double lambda, int trials, eg_rng *r,
                         long *key, double *mean)
{
    double sum = 0;
    EG_TRY(put1(t->be, t->lambda, lambda));
    for (int i = 0; i < trials; i++) {
        EG_TRY(put1(t->be, t->theta, eg_rng_normal(r)));
        EG_TRY(eg_meta_hypergrad(m, t, (*key)++));
        double h;
        EG_TRY(get1(t->be, m->hyper, &h));
        sum += h;
    }
    *mean = sum / trials;
    return 0;
}

int eg_toy1d_curve(eg_task *t, eg_method method, const eg_evograd_opts *evo, int trials,
                   int points, double *lambda, double *truth, double *mean)
{
    toy *ty = (toy *)t;
    eg_meta m;
    EG_TRY(eg_meta_init(&m, t, method, evo, ty->job.seed));
    eg_rng r;
    eg_rng_seed(&r, ty->job.seed, 11);
    long key = 1L << 30; /* noise streams apart from the training run's */
    int rc = 0;
    for (int i = 0; i < points && rc == 0; i++) {
        lambda[i] = 0.1 + 1.9 * i / (points > 1 ? points - 1 : 1);
        truth[i] = eg_toy1d_truth(lambda[i]);
        rc = mean_estimate(t, &m, lambda[i], trials, &r, &key, &mean[i]);
    }
    eg_meta_free(&m);
    return rc;
}

double eg_pearson(const double *a, const double *b, int n)
{
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) ma += a[i] / n, mb += b[i] / n;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / sqrt(saa * sbb);
}

/* One SGD trajectory of (x, λ) from (x0, l0): x follows ∂f_T/∂x, λ the
 * method's hypergradient (or the truth g(λ) when m is NULL). Writes
 * steps + 1 points as [x, λ] pairs into path. */
static int trajectory(eg_task *t, eg_meta *m, double x0, double l0, int steps, double lr,
                      long *key, json_t *path)
{
    double x = x0, lam = l0;
    json_array_append_new(path, json_pack("[f, f]", x, lam));
    for (int s = 0; s < steps; s++) {
        double h = eg_toy1d_truth(lam);
        if (m) {
            EG_TRY(put1(t->be, t->theta, x));
            EG_TRY(put1(t->be, t->lambda, lam));
            EG_TRY(eg_meta_hypergrad(m, t, (*key)++));
            EG_TRY(get1(t->be, m->hyper, &h));
        }
        double gx = 2 * (x - 1) + 2 * lam * x;
        x -= lr * gx;
        lam -= lr * h;
        json_array_append_new(path, json_pack("[f, f]", x, lam));
    }
    return 0;
}

/* The paper's five starts (Figure 3). */
static const double starts[5][2] = {{-1.8, 0.2}, {-0.9, 1.2}, {0.9, 0.8}, {1.3, 0.2}, {1.5, 1.7}};

/* Adds the hypergradient curves (Figure 2: K = 2, 10, 100 for EvoGrad,
 * one curve for T1−T2) with their correlation to the truth, and the five
 * trajectories (Figure 3), restoring θ and λ afterwards. */
static int report(eg_task *t, json_t *summary)
{
    toy *ty = (toy *)t;
    const eg_job *job = &ty->job;
    const eg_toy1d_spec *spec = EG_JOB_SECTION(job, const eg_toy1d_spec);
    if (job->method == EG_METHOD_NONE) return 0;
    double x, lam;
    EG_TRY(get1(t->be, t->theta, &x));
    EG_TRY(get1(t->be, t->lambda, &lam));
    int n = spec->points, rc = 0;
    double *buf = malloc(3 * (size_t)n * sizeof(double));
    if (!buf) return eg_errorf("toy1d: out of memory");
    double *lambda = buf, *truth = buf + n, *mean = buf + 2 * n;
    static const int ks[3] = {2, 10, 100};
    int curves = job->method == EG_METHOD_EVOGRAD ? 3 : 1;
    json_t *curve = json_object(), *pearson = json_object();
    for (int c = 0; c < curves && rc == 0; c++) {
        eg_evograd_opts evo = job->evograd;
        evo.k = ks[c];
        if (evo.antithetic && evo.k % 2) evo.k++;
        rc = eg_toy1d_curve(t, job->method, &evo, spec->trials, n, lambda, truth, mean);
        if (rc) break;
        char name[16];
        snprintf(name, sizeof name, job->method == EG_METHOD_EVOGRAD ? "k%d" : "t1t2", evo.k);
        json_t *est = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(est, json_real(mean[i]));
        json_object_set_new(curve, name, est);
        json_object_set_new(pearson, name, json_real(eg_pearson(mean, truth, n)));
    }
    json_t *lam_arr = json_array(), *truth_arr = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(lam_arr, json_real(lambda[i]));
        json_array_append_new(truth_arr, json_real(truth[i]));
    }
    json_object_set_new(curve, "lambda", lam_arr);
    json_object_set_new(curve, "truth", truth_arr);
    json_object_set_new(summary, "hypergradient_curve", curve);
    json_object_set_new(summary, "pearson", pearson);

    json_t *paths = json_array();
    eg_meta m;
    if (rc == 0 && eg_meta_init(&m, t, job->method, &job->evograd, job->seed + 1) == 0) {
        long key = 0;
        for (int s = 0; s < 5 && rc == 0; s++) {
            json_t *est = json_array(), *tru = json_array();
            rc = trajectory(t, &m, starts[s][0], starts[s][1], spec->trajectory_steps,
                            spec->lr, &key, est);
            if (rc == 0)
                rc = trajectory(t, NULL, starts[s][0], starts[s][1],
                                spec->trajectory_steps, spec->lr, &key, tru);
            json_array_append_new(paths, json_pack("{s:[f,f], s:o, s:o}", "start", starts[s][0],
                                                   starts[s][1], "estimated", est, "truth", tru));
        }
        eg_meta_free(&m);
    } else {
        rc = -1;
    }
    json_object_set_new(summary, "trajectories", paths);
    free(buf);
    if (rc == 0) rc = put1(t->be, t->theta, x);
    if (rc == 0) rc = put1(t->be, t->lambda, lam);
    return rc;
}

static int checkpoint_items(eg_task *t, eg_ckpt_list *l)
{
    toy *ty = (toy *)t;
    EG_TRY(eg_ckpt_add(l, "task", "theta", t->theta, sizeof(float), 1));
    EG_TRY(eg_ckpt_add(l, "task", "lambda", t->lambda, sizeof(float), 1));
    return eg_optim_checkpoint_items(&ty->opt, "optimizer", l);
}

static void destroy(eg_task *t)
{
    toy *ty = (toy *)t;
    eg_backend *be = t->be;
    eg_optim_free(&ty->opt);
    be->free(be, t->theta);
    be->free(be, t->lambda);
    be->free(be, t->grad);
    free(ty);
}

static const eg_task_ops toy_ops = {
    .next_batch = next_batch,
    .train_loss = train_loss,
    .train_grad = train_grad,
    .val_grad = val_grad,
    .base_step = base_step,
    .base_lr = base_lr,
    .evaluate = evaluate,
    .report = report,
    .checkpoint_items = checkpoint_items,
    .destroy = destroy,
};

static int eg_toy1d_create(const eg_job *job, eg_backend *be, eg_task **out)
{
    const eg_toy1d_spec *spec = EG_JOB_SECTION(job, const eg_toy1d_spec);
    toy *ty = calloc(1, sizeof *ty);
    if (!ty) return eg_errorf("toy1d: out of memory");
    eg_task *t = &ty->base;
    *t = (eg_task){.ops = &toy_ops, .be = be, .P = 1, .H = 1, .steps_per_epoch = 1};
    ty->job = *job;
    t->theta = eg_alloc_floats(be, 1);
    t->lambda = eg_alloc_floats(be, 1);
    t->grad = eg_alloc_floats(be, 1);
    if (!t->theta || !t->lambda || !t->grad || eg_optim_init(&ty->opt, be, 1, &job->optimizer) ||
        put1(be, t->theta, spec->x0) || put1(be, t->lambda, spec->lambda0)) {
        destroy(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* ---- the job's "toy1d" section ---- */

_Static_assert(sizeof(eg_toy1d_spec) <= EG_JOB_SECTION_BYTES, "toy1d section too big");

static void toy_defaults(eg_job *j)
{
    j->optimizer = eg_optim_sgd_defaults(0.1f);
    j->meta_optimizer = eg_optim_sgd_defaults(0.1f);
    j->evograd.k = 100;
    j->evograd.sigma = 1;
    j->evograd.tau = 0.5f;
    j->evograd.noise = EG_NOISE_GAUSSIAN;
    j->epochs = 1;
    j->steps = 5;
    j->batch_size = 1;
    *EG_JOB_SECTION(j, eg_toy1d_spec) = (eg_toy1d_spec){
        .x0 = -1.8, .lambda0 = 0.2, .trials = 100, .points = 20, .lr = 0.1,
        .trajectory_steps = 5};
}

static int toy_read(const eg_spec_scope *s, eg_job *j)
{
    eg_toy1d_spec *t = EG_JOB_SECTION(j, eg_toy1d_spec);
    EG_TRY(eg_spec_num(s, "x0", -100, 100, &t->x0));
    EG_TRY(eg_spec_num(s, "lambda0", 0, 100, &t->lambda0));
    EG_TRY(eg_spec_i(s, "trials", 1, 100000, &t->trials));
    EG_TRY(eg_spec_i(s, "points", 1, 1000, &t->points));
    EG_TRY(eg_spec_num(s, "lr", 1e-10, 10, &t->lr));
    return eg_spec_i(s, "trajectory_steps", 1, 100000, &t->trajectory_steps);
}

static json_t *toy_json(const eg_job *j)
{
    const eg_toy1d_spec *t = EG_JOB_SECTION(j, const eg_toy1d_spec);
    return json_pack("{s:f, s:f, s:i, s:i, s:f, s:i}", "x0", t->x0, "lambda0", t->lambda0,
                     "trials", t->trials, "points", t->points, "lr", t->lr, "trajectory_steps",
                     t->trajectory_steps);
}

static const char *const toy_keys[] = {"x0", "lambda0", "trials", "points", "lr",
                                       "trajectory_steps", NULL};

const eg_task_def eg_toy1d_def = {
    .name = "toy1d",
    .flags = EG_TASKF_NO_MODEL | EG_TASKF_NO_DATASET,
    .section_keys = toy_keys,
    .defaults = toy_defaults,
    .read = toy_read,
    .section_json = toy_json,
    .create = eg_toy1d_create,
};
