#include "util/ckpt.h"

#include <stdio.h>

#include "util/err.h"

int eg_ckpt_add(eg_ckpt_list *l, const char *prefix, const char *name, void *ptr,
                size_t bytes, int device)
{
    if (!ptr) return 0;
    if (l->n == l->max) return eg_errorf("checkpoint: more than %d items", l->max);
    eg_ckpt_item *it = &l->items[l->n++];
    snprintf(it->name, sizeof it->name, "%.23s.%.23s", prefix, name);
    it->ptr = ptr;
    it->bytes = bytes;
    it->device = device;
    return 0;
}
