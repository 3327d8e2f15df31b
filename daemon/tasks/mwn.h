/* Meta-Weight-Net (tasks/mwn.c): the job's "mwn" section. */
#ifndef EG_MWN_H
#define EG_MWN_H

typedef struct eg_mwn_spec {
    int meta_samples; /* clean samples held out as validation */
    int vnet_hidden;
} eg_mwn_spec;

#endif
