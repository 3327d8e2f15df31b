/* Checkpoint items: the pieces of state a checkpoint holds, listed by the
 * parts that own them (classifier, optimiser, batchers, tasks, the run). */
#ifndef EG_CKPT_H
#define EG_CKPT_H

#include <stddef.h>

/* bytes at ptr, in device memory when device is set (else host memory). */
typedef struct eg_ckpt_item {
    char name[48];      /* "prefix.name" */
    void *ptr;
    size_t bytes;
    int device;
} eg_ckpt_item;

#define EG_CKPT_MAX_ITEMS 32

/* A list being filled: items[0..n) of at most max. */
typedef struct eg_ckpt_list {
    eg_ckpt_item *items;
    int n, max;
} eg_ckpt_list;

/* Appends item "prefix.name"; returns -1 with eg_errorf when the list is
 * full. A NULL ptr (an optimiser buffer that does not exist) is skipped. */
int eg_ckpt_add(eg_ckpt_list *l, const char *prefix, const char *name, void *ptr,
                size_t bytes, int device);

#endif
