#include "models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Each builder returns the last layer's index or -1; these chain them. */
#define NEXT(expr)                                                             \
    do {                                                                       \
        if ((x = (expr)) < 0) return -1;                                       \
    } while (0)

int eg_model_mlp(eg_net *net, eg_backend *be, int c, int h, int w,
                 const int *hidden, int n_hidden, int classes)
{
    EG_TRY(eg_net_init(net, be, c, h, w));
    int x = 0;
    char name[32];
    for (int i = 0; i < n_hidden; i++) {
        snprintf(name, sizeof name, "fc%d", i + 1);
        NEXT(eg_net_linear(net, x, name, hidden[i], 1, EG_INIT_UNIFORM_FAN_IN));
        NEXT(eg_net_relu(net, x));
    }
    snprintf(name, sizeof name, "fc%d", n_hidden + 1);
    NEXT(eg_net_linear(net, x, name, classes, 1, EG_INIT_UNIFORM_FAN_IN));
    return 0;
}

int eg_model_lenet(eg_net *net, eg_backend *be, int c, int h, int w,
                   int classes)
{
    EG_TRY(eg_net_init(net, be, c, h, w));
    int x = 0;
    NEXT(eg_net_conv(net, x, "conv1", 6, 5, 1, 2, 1, EG_INIT_UNIFORM_FAN_IN));
    NEXT(eg_net_relu(net, x));
    NEXT(eg_net_maxpool(net, x, 2, 2));
    NEXT(eg_net_conv(net, x, "conv2", 16, 5, 1, 0, 1, EG_INIT_UNIFORM_FAN_IN));
    NEXT(eg_net_relu(net, x));
    NEXT(eg_net_maxpool(net, x, 2, 2));
    NEXT(eg_net_linear(net, x, "fc1", 120, 1, EG_INIT_UNIFORM_FAN_IN));
    NEXT(eg_net_relu(net, x));
    NEXT(eg_net_linear(net, x, "fc2", 84, 1, EG_INIT_UNIFORM_FAN_IN));
    NEXT(eg_net_relu(net, x));
    NEXT(eg_net_linear(net, x, "fc3", classes, 1, EG_INIT_UNIFORM_FAN_IN));
    return 0;
}

/* One basic block: conv-bn-relu-conv-bn, plus the shortcut, then ReLU. */
static int basic_block(eg_net *net, int in, const char *name, int planes,
                       int stride)
{
    char n1[32], n2[32], n3[32], n4[32];
    snprintf(n1, sizeof n1, "%.20s.conv1", name);
    snprintf(n2, sizeof n2, "%.20s.bn1", name);
    snprintf(n3, sizeof n3, "%.20s.conv2", name);
    snprintf(n4, sizeof n4, "%.20s.bn2", name);
    int x;
    NEXT(eg_net_conv(net, in, n1, planes, 3, stride, 1, 0, EG_INIT_KAIMING_NORMAL));
    NEXT(eg_net_bn(net, x, n2));
    NEXT(eg_net_relu(net, x));
    NEXT(eg_net_conv(net, x, n3, planes, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL));
    NEXT(eg_net_bn(net, x, n4));
    NEXT(eg_net_shortcut(net, x, in, stride));
    NEXT(eg_net_relu(net, x));
    return x;
}

int eg_model_resnet(eg_net *net, eg_backend *be, int depth, int width, int c,
                    int h, int w, int classes)
{
    if (depth < 8 || (depth - 2) % 6)
        return eg_errorf("resnet: depth %d is not 6n+2", depth);
    if (width < 1 || width > 64) return eg_errorf("resnet: width %d outside 1..64", width);
    EG_TRY(eg_net_init(net, be, c, h, w));
    int blocks = (depth - 2) / 6, x = 0;
    NEXT(eg_net_conv(net, x, "conv1", 16 * width, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL));
    NEXT(eg_net_bn(net, x, "bn1"));
    NEXT(eg_net_relu(net, x));
    for (int stage = 0; stage < 3; stage++)
        for (int b = 0; b < blocks; b++) {
            char name[32];
            snprintf(name, sizeof name, "layer%d.%d", stage + 1, b);
            int stride = (stage > 0 && b == 0) ? 2 : 1;
            NEXT(basic_block(net, x, name, (16 << stage) * width, stride));
        }
    NEXT(eg_net_avgpool(net, x));
    NEXT(eg_net_linear(net, x, "linear", classes, 1, EG_INIT_KAIMING_NORMAL));
    return 0;
}

int eg_model_vnet(eg_net *net, eg_backend *be, int hidden)
{
    EG_TRY(eg_net_init(net, be, 1, 1, 1));
    int x = 0;
    NEXT(eg_net_linear(net, x, "linear1", hidden, 1, EG_INIT_UNIFORM_FAN_IN));
    NEXT(eg_net_relu(net, x));
    NEXT(eg_net_linear(net, x, "linear2", 1, 1, EG_INIT_UNIFORM_FAN_IN));
    NEXT(eg_net_sigmoid(net, x));
    return 0;
}

int eg_model_build(eg_net *net, eg_backend *be, const char *name, int width,
                   int c, int h, int w, int classes)
{
    static const int mlp_hidden[] = {100};
    if (strcmp(name, "mlp") == 0) return eg_model_mlp(net, be, c, h, w, mlp_hidden, 1, classes);
    if (strcmp(name, "lenet") == 0) return eg_model_lenet(net, be, c, h, w, classes);
    if (strcmp(name, "vnet") == 0) return eg_model_vnet(net, be, 100);
    if (strncmp(name, "resnet", 6) == 0) {
        char *end;
        long depth = strtol(name + 6, &end, 10);
        if (*end == '\0' && end != name + 6 && depth >= 8 && depth <= 1000)
            return eg_model_resnet(net, be, (int)depth, width, c, h, w, classes);
    }
    return eg_errorf("unknown model \"%s\" (mlp, lenet, resnet20, resnet32, "
                     "resnet44, resnet56, vnet)", name);
}
