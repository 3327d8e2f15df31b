/* Cross-domain few-shot learning with learned feature-wise transformations
 * (LFT, Tseng et al. 2020) meta-learned by the job's method: the job's
 * "lft" section (tasks/lft_spec.c) and the task (tasks/lft.c). */
#ifndef EG_LFT_H
#define EG_LFT_H

#include "meta/job.h"

#define EG_LFT_MAX_SEEN 8
#define EG_LFT_MAX_CLASSES 64 /* entries of a splits list */

/* One domain of the job: a dataset held in memory seen through a style, or
 * a set of image files ("images": an image folder, an LFT file list, or a
 * folder of LFT's base/val/novel.json). */
typedef struct eg_lft_domain_spec {
    char name[32];
    char dataset[16];   /* fashion-mnist, mnist, idx, cifar10, cifar100, images */
    char path[512];     /* "" = the dataset's default folder (not for images) */
    char style[16];     /* eg_domain_styles(); datasets only */
    int per_class;      /* at most this many samples of each class; 0 = all */
} eg_lft_domain_spec;

typedef struct eg_lft_spec {
    eg_lft_domain_spec seen[EG_LFT_MAX_SEEN];
    int n_seen;
    eg_lft_domain_spec unseen;
    int n_way, n_shot, n_query; /* meta-training episodes */
    int test_query;             /* queries per class of a test episode */
    int episodes_per_epoch;     /* one pseudo-seen / pseudo-unseen draw per epoch */
    int test_episodes;          /* episodes per evaluation */
    char backbone[16];          /* resnet10, resnet18, resnet34 */
    int width;                  /* first stage's channels (64 in the paper) */
    char metric[16];            /* relationnet, protonet */
    int image_size;             /* side of the episodes' images */
    int fixed_ft;               /* method none: FT at its initial values in training */
    long pretrain_steps;        /* plain classification on the seen base classes first */
    int pretrain_batch;
    int cache_mb;               /* decoded images kept per image domain */
    int own_splits;             /* 1: each set's own splits (or the paper's rule) */
    int split_count[3];         /* else base, val, novel class lists for every domain */
    int split[3][EG_LFT_MAX_CLASSES];
} eg_lft_spec;

#endif
