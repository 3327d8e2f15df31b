#include "fuzz_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *fuzz_file(const char *tag, const uint8_t *data, size_t size)
{
    static char path[4][512];
    static int turn;
    char *p = path[turn++ % 4];
    const char *dir = getenv("TMPDIR");
    snprintf(p, sizeof path[0], "%s/evograd-fuzz-%d-%s", dir && *dir ? dir : "/tmp",
             (int)getpid(), tag);
    FILE *f = fopen(p, "wb");
    if (!f) return NULL;
    int ok = (size == 0 || fwrite(data, size, 1, f) == 1);
    if (fclose(f) != 0 || !ok) return NULL;
    return p;
}
