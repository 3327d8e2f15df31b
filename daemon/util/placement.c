#include "util/placement.h"

#include <string.h>

int eg_device_fits(const char *want, const char *dev)
{
    if (strcmp(want, "auto") == 0 || strcmp(want, dev) == 0) return 1;
    return strcmp(want, "cuda") == 0 && strncmp(dev, "cuda:", 5) == 0;
}

int eg_device_wants(const char *dev, const char *out[EG_PLACEMENT_WANTS])
{
    int n = 0;
    out[n++] = "auto";
    out[n++] = dev;
    if (strncmp(dev, "cuda:", 5) == 0) out[n++] = "cuda";
    return n;
}
