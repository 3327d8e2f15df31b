/* The size table of a flat arena: named slices of one contiguous float
 * buffer. Parameters, their gradients, optimiser moments and checkpoints
 * share one layout, so every whole-model update is a single pass. */
#ifndef EG_LAYOUT_H
#define EG_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* How a slice is initialised (PyTorch's schemes). */
typedef enum eg_init {
    EG_INIT_ZEROS,
    EG_INIT_ONES,
    EG_INIT_UNIFORM_FAN_IN,         /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's
                                       default for conv/linear weights
                                       (kaiming_uniform, a = sqrt 5) and biases */
    EG_INIT_KAIMING_NORMAL,         /* N(0, 2/fan_in): kaiming_normal_ */
    EG_INIT_KAIMING_NORMAL_FAN_OUT, /* N(0, 2/fan_out), kaiming_normal_(mode =
                                       "fan_out"); the slice's fan_in field
                                       holds the fan-out */
    EG_INIT_CONST,                  /* every element the slice's `value` */
    EG_INIT_NORMAL,                 /* N(0, value^2): normal_(0, std), the
                                       transformers' initializer_range */
} eg_init;

typedef struct eg_slice {
    char name[40];
    size_t offset, count;
    eg_init init;
    int fan_in;
    float value; /* EG_INIT_CONST */
} eg_slice;

typedef struct eg_layout {
    eg_slice *slices;
    int n, cap;
    size_t total; /* floats */
} eg_layout;

/* Appends a slice of count floats; returns its offset, or (size_t)-1 with
 * eg_errorf when out of memory. */
size_t eg_layout_add(eg_layout *l, const char *name, size_t count, eg_init init,
                     int fan_in);

/* Appends a slice of count floats initialised to `value`; returns its
 * offset, or (size_t)-1 with eg_errorf when out of memory. */
size_t eg_layout_add_const(eg_layout *l, const char *name, size_t count, float value);

/* Fills host buffer x (l->total) slice by slice from the seed. */
/* Appends a slice of count floats drawn from N(0, std^2); returns its
 * offset, or (size_t)-1 with eg_errorf when out of memory. */
size_t eg_layout_add_normal(eg_layout *l, const char *name, size_t count, float std);

void eg_layout_init(const eg_layout *l, float *x, uint64_t seed);

void eg_layout_free(eg_layout *l);

#endif
