/* Sweeps: repeated and grid runs of one job spec, and their aggregates
 * (mean ± std over seeds, as the paper's tables give them).
 *
 * A request is {"spec": {...}, "grid": {"seed": [1, 2, 3], "method":
 * ["evograd", "t1t2"], "dataset.noise.rate": [0.2, 0.4]}, "repeats": N,
 * "name": "..."}: grid keys are the paths `evogradd run --set` takes, each
 * with a non-empty array of values; "repeats" (instead of a "seed" key)
 * runs seeds spec.seed, spec.seed + 1, ... The points are the cartesian
 * product of the grid, the first key varying slowest. */
#ifndef EG_SWEEP_H
#define EG_SWEEP_H

struct json_t;

#define EG_SWEEP_MAX_POINTS 1000
#define EG_SWEEP_MAX_REPEATS 100

/* Checks a request and expands it: *points gets an array of {"point":
 * {key: value, ...}, "spec": the spec with the point applied} in grid
 * order. -1 with eg_errorf (the request's field at fault recorded for
 * eg_sweep_error_field) when the request is malformed. The specs are not
 * validated as jobs here. */
int eg_sweep_expand(const struct json_t *request, struct json_t **points);

/* The request field ("grid.method", "repeats") the last failed
 * eg_sweep_expand of this thread was about; "" when none. */
const char *eg_sweep_error_field(void);

/* A point as text for messages: `method="t1t2", seed=2` (at most cap
 * bytes). */
void eg_sweep_point_text(const struct json_t *point, char *out, unsigned long cap);

/* The aggregate of a sweep's jobs (each {"point", "state", "summary"}, in
 * grid order): one entry per point once its "seed" is left out, in order
 * of first appearance, {"point": {...}, "jobs": J, "succeeded": n,
 * "metrics": {NAME: {"mean": m, "std": s, "n": n}}}, where the metrics are
 * the numbers of the succeeded jobs' summaries (test_acc, angle_deg,
 * w_corrupted, w_clean, mean_step_ms, mean_meta_ms, peak_mem_bytes, ...;
 * not seed, steps, steps_per_epoch, n_lambda), each over the jobs where it
 * is a number. std is the population standard deviation (divided by n, as
 * NumPy's np.std), 0 for n = 1. NULL when out of memory. */
struct json_t *eg_sweep_aggregate(const struct json_t *jobs);

/* {"queued": n, "running": n, "succeeded": n, "failed": n, "canceled": n}
 * of the jobs; *state gets the sweep's state: "queued" while no job has
 * started, "running" while any is queued or running, then "failed" when
 * any failed, else "canceled" when any was canceled, else "succeeded". */
struct json_t *eg_sweep_counts(const struct json_t *jobs, const char **state);

#endif
