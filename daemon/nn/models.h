/* The models of the paper's experiments, built on nn/net.h. */
#ifndef EG_MODELS_H
#define EG_MODELS_H

#include "net.h"

/* Multi-layer perceptron: in -> hidden[0] -> ... -> classes, ReLU between. */
int eg_model_mlp(eg_net *net, eg_backend *be, int c, int h, int w,
                 const int *hidden, int n_hidden, int classes);

/* LeNet-5 of the rotation experiment: conv 6@5x5 pad 2, ReLU, maxpool 2,
 * conv 16@5x5, ReLU, maxpool 2, fc 120, ReLU, fc 84, ReLU, fc classes.
 * PyTorch's default initialisation. */
int eg_model_lenet(eg_net *net, eg_backend *be, int c, int h, int w,
                   int classes);

/* CIFAR-style ResNet (He et al. 2016) of depth 6n+2 (20, 32, 44, 56...)
 * with option-A shortcuts, stage widths 16, 32, 64 times `width`, any input
 * channel count; Kaiming-normal conv and linear weights as in the
 * Meta-Weight-Net code. */
int eg_model_resnet(eg_net *net, eg_backend *be, int depth, int width, int c,
                    int h, int w, int classes);

/* Meta-Weight-Net's VNet: 1 -> hidden, ReLU, hidden -> 1, sigmoid. */
int eg_model_vnet(eg_net *net, eg_backend *be, int hidden);

/* LFT's ImageNet-style ResNet feature extractor (Tseng et al. 2020, from
 * Chen et al.'s few-shot code): SimpleBlocks of conv3x3 (stride s) - BN -
 * ReLU - conv3x3 - BN - [FT], plus conv1x1 (stride s) - BN - [FT] on the
 * shortcut where the width changes (identity otherwise), added, ReLU.
 * depth 10, 18 or 34 (blocks [1,1,1,1], [2,2,2,2], [3,4,6,3]); stages of
 * width, 2, 4, 8 times width at strides 1, 2, 2, 2. Stem: conv7x7 stride 2
 * pad 3, BN, ReLU, max-pool 3x3 stride 2 pad 1; with small_stem (28-32 px
 * inputs) conv3x3 stride 1 pad 1, BN, ReLU and no pooling. With ft, an FT
 * layer follows the second BN of every block and every shortcut's BN. The
 * output is the last stage's map (8 width, h', w'), unpooled. Convs have
 * no bias and N(0, 2 / (k k out)) weights, BN weight 1 and bias 0 (LFT's
 * init_layer). Slice names follow the official module names
 * (trunk.N.C1.weight, trunk.N.BN2.gamma, ...). Input (c, size, size). */
int eg_model_lft_resnet(eg_net *net, eg_backend *be, int depth, int width, int c, int size,
                        int small_stem, int ft);

/* RelationNet's relation module over (2c, h, w) pairs: two blocks conv3x3
 * (2c -> c, then c -> c; padding 1 when h and w are under 10, else 0; with
 * bias) - batch-statistics BN - ReLU - max-pool 2, then linear to 8, ReLU,
 * linear to 1: the raw score per pair (the MSE variant's sigmoid is the
 * caller's). A 1x1 map skips its pool (PyTorch would refuse it), so
 * 3x3 features (84 px inputs) still give a score. */
int eg_model_relation(eg_net *net, eg_backend *be, int c, int h, int w);

/* Builds a model by name: "mlp" (one hidden layer of 100), "lenet",
 * "resnet20", "resnet32", "resnet44", "resnet56", "vnet". */
int eg_model_build(eg_net *net, eg_backend *be, const char *name, int width,
                   int c, int h, int w, int classes);

#endif
