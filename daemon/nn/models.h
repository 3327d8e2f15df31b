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

/* Builds a model by name: "mlp" (one hidden layer of 100), "lenet",
 * "resnet20", "resnet32", "resnet44", "resnet56", "vnet". */
int eg_model_build(eg_net *net, eg_backend *be, const char *name, int width,
                   int c, int h, int w, int classes);

#endif
