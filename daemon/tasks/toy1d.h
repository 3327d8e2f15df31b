/* The one-dimensional toy of the paper's Figures 2 and 3 (tasks/toy1d.c). */
#ifndef EG_TOY1D_H
#define EG_TOY1D_H

#include "meta/method.h"
#include "tasks/tasks.h"

/* The job's "toy1d" section. */
typedef struct eg_toy1d_spec {
    double x0, lambda0;   /* the start of this run's trajectory */
    int trials;           /* x draws per λ for the hypergradient curve */
    int points;           /* λ values over [0.1, 2] */
    double lr;            /* trajectory SGD step */
    int trajectory_steps;
} eg_toy1d_spec;

/* The closed-form hypergradient g(λ) = (λ-1)/(λ+1)^3 at x*(λ) = 1/(1+λ). */
double eg_toy1d_truth(double lambda);

/* Figure 2 on a toy1d task t: for `points` λ evenly over [0.1, 2], the
 * truth and the mean estimate of `method` over `trials` draws of
 * x ~ N(0, 1). θ and λ of t are left at the last point. */
int eg_toy1d_curve(eg_task *t, eg_method method, const eg_evograd_opts *evo, int trials,
                   int points, double *lambda, double *truth, double *mean);

/* Pearson correlation of a and b (n values). */
double eg_pearson(const double *a, const double *b, int n);

#endif
