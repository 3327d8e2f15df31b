#include "synth_data.h"

#include <stdio.h>
#include <stdlib.h>

#include "nn/rng.h"
#include "util/err.h"

/* One CIFAR-10 file of `records` records: a label byte, then 3072 pixels. */
static int write_file(const char *path, int records, eg_rng *rng)
{
    FILE *f = fopen(path, "wb");
    if (!f) return eg_errorf("%s: cannot create", path);
    unsigned char rec[1 + 3072];
    for (int r = 0; r < records; r++) {
        rec[0] = (unsigned char)eg_rng_below(rng, 10);
        for (int i = 1; i < (int)sizeof rec; i++) rec[i] = (unsigned char)eg_rng_u32(rng);
        if (fwrite(rec, sizeof rec, 1, f) != 1) {
            fclose(f);
            return eg_errorf("%s: write failed", path);
        }
    }
    if (fclose(f) != 0) return eg_errorf("%s: write failed", path);
    return 0;
}

int synth_cifar10(const char *dir, int per_file, int test, uint64_t seed)
{
    eg_rng rng;
    eg_rng_seed(&rng, seed, 0);
    char path[1024];
    for (int b = 1; b <= 5; b++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
        EG_TRY(write_file(path, per_file, &rng));
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    return write_file(path, test, &rng);
}
