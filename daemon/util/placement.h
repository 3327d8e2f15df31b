/* Which jobs a device may run: the one rule of placement, shared by the
 * stores' claims and the API's checks of submitted jobs. */
#ifndef EG_UTIL_PLACEMENT_H
#define EG_UTIL_PLACEMENT_H

/* Whether a job asking for device `want` may run on the worker of device
 * `dev`: the same name, "auto" on any device, or "cuda" on any "cuda:N". */
int eg_device_fits(const char *want, const char *dev);

/* The requests the worker of device `dev` takes, as eg_device_fits has
 * them: out[0..n), n <= EG_PLACEMENT_WANTS; returns n. */
#define EG_PLACEMENT_WANTS 3
int eg_device_wants(const char *dev, const char *out[EG_PLACEMENT_WANTS]);

#endif
