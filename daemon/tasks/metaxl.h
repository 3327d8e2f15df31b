/* MetaXL (Xia et al., NAACL 2021) with EvoGrad or T1−T2: a representation
 * transformation network (RTN, nn/rtn.h) after the encoder's last layer
 * maps the source language's hidden states toward the target's; λ is the
 * RTN. The job's "metaxl" section (tasks/metaxl_spec.c) and the task
 * (tasks/metaxl.c). */
#ifndef EG_METAXL_H
#define EG_METAXL_H

#include "tasks/ner.h"

typedef struct eg_metaxl_spec {
    eg_ner_spec ner;  /* data, model and training, as the ner task's */
    int bottleneck;   /* the RTN's hidden width; 0 = d / 2 (384 for XLM-R base) */
} eg_metaxl_spec;

#endif
