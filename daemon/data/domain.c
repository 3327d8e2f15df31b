/* What every kind of few-shot domain shares: the paper's class splits,
 * listing a split's classes, and freeing.
 *
 * Ownership: a domain is one malloc'd eg_domain whose label and split_of
 * arrays are malloc'd too; eg_domain_free calls ops->destroy (which frees
 * impl and whatever it holds, nothing else), then frees label, split_of
 * and the domain. */
#include "data/domain.h"

#include <stdlib.h>

eg_class_split eg_class_split_of(int class_index)
{
    if (class_index < 0) return (eg_class_split)0xff;
    if (class_index % 2 == 0) return EG_SPLIT_BASE;
    return class_index % 4 == 1 ? EG_SPLIT_VAL : EG_SPLIT_NOVEL;
}

int eg_domain_classes(const eg_domain *d, eg_class_split s, int *out)
{
    int n = 0;
    for (int k = 0; k < d->classes; k++) {
        int split = d->split_of ? d->split_of[k] : (int)eg_class_split_of(k);
        if (s == EG_SPLIT_ALL || split == (int)s) out[n++] = k;
    }
    return n;
}

void eg_domain_free(eg_domain *d)
{
    if (!d) return;
    if (d->ops && d->ops->destroy) d->ops->destroy(d);
    free(d->label);
    free(d->split_of);
    free(d);
}
