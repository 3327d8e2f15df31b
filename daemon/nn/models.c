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
    NEXT(eg_net_maxpool(net, x, 2, 2, 0));
    NEXT(eg_net_conv(net, x, "conv2", 16, 5, 1, 0, 1, EG_INIT_UNIFORM_FAN_IN));
    NEXT(eg_net_relu(net, x));
    NEXT(eg_net_maxpool(net, x, 2, 2, 0));
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

/* One SimpleBlock of LFT's ResNet, trunk position `pos`, reading `in`
 * (indim channels); returns the block's last layer. */
static int simple_block(eg_net *net, int in, int pos, int indim, int outdim, int half_res, int ft)
{
    char n[40];
    int x, stride = half_res ? 2 : 1;
#define NAME(part) (snprintf(n, sizeof n, "trunk.%d.%s", pos, part), n)
    NEXT(eg_net_conv(net, in, NAME("C1"), outdim, 3, stride, 1, 0, EG_INIT_KAIMING_NORMAL_FAN_OUT));
    NEXT(eg_net_bn(net, x, NAME("BN1")));
    NEXT(eg_net_relu(net, x));
    NEXT(eg_net_conv(net, x, NAME("C2"), outdim, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL_FAN_OUT));
    NEXT(eg_net_bn(net, x, NAME("BN2")));
    if (ft) NEXT(eg_net_ft(net, x, NAME("BN2")));
    int body = x, skip = in;
    if (indim != outdim) {
        NEXT(eg_net_conv(net, in, NAME("shortcut"), outdim, 1, stride, 0, 0,
                         EG_INIT_KAIMING_NORMAL_FAN_OUT));
        NEXT(eg_net_bn(net, x, NAME("BNshortcut")));
        if (ft) NEXT(eg_net_ft(net, x, NAME("BNshortcut")));
        skip = x;
    }
#undef NAME
    NEXT(eg_net_add(net, body, skip));
    NEXT(eg_net_relu(net, x));
    return x;
}

int eg_model_lft_resnet(eg_net *net, eg_backend *be, int depth, int width, int c, int size,
                        int small_stem, int ft)
{
    static const int blocks10[4] = {1, 1, 1, 1}, blocks18[4] = {2, 2, 2, 2},
                     blocks34[4] = {3, 4, 6, 3};
    const int *blocks = depth == 10   ? blocks10
                        : depth == 18 ? blocks18
                        : depth == 34 ? blocks34
                                      : NULL;
    if (!blocks) return eg_errorf("lft resnet: depth %d is not 10, 18 or 34", depth);
    if (width < 1 || width > 512) return eg_errorf("lft resnet: width %d outside 1..512", width);
    EG_TRY(eg_net_init(net, be, c, size, size));
    int x = 0, pos = 0;
    if (small_stem) {
        NEXT(eg_net_conv(net, x, "trunk.0", width, 3, 1, 1, 0, EG_INIT_KAIMING_NORMAL_FAN_OUT));
    } else {
        NEXT(eg_net_conv(net, x, "trunk.0", width, 7, 2, 3, 0, EG_INIT_KAIMING_NORMAL_FAN_OUT));
    }
    NEXT(eg_net_bn(net, x, "trunk.1"));
    NEXT(eg_net_relu(net, x));
    pos = 3;
    if (!small_stem) {
        NEXT(eg_net_maxpool(net, x, 3, 2, 1));
        pos = 4;
    }
    int indim = width;
    for (int stage = 0; stage < 4; stage++)
        for (int b = 0; b < blocks[stage]; b++) {
            int outdim = width << stage;
            NEXT(simple_block(net, x, pos++, indim, outdim, stage >= 1 && b == 0, ft));
            indim = outdim;
        }
    return 0;
}

int eg_model_relation(eg_net *net, eg_backend *be, int c, int h, int w)
{
    EG_TRY(eg_net_init(net, be, 2 * c, h, w));
    int pad = h < 10 && w < 10 ? 1 : 0, x = 0;
    for (int blk = 1; blk <= 2; blk++) {
        char n[32];
        snprintf(n, sizeof n, "layer%d.C", blk);
        NEXT(eg_net_conv(net, x, n, c, 3, 1, pad, 1, EG_INIT_KAIMING_NORMAL_FAN_OUT));
        snprintf(n, sizeof n, "layer%d.BN", blk);
        NEXT(eg_net_bn_batch(net, x, n));
        NEXT(eg_net_relu(net, x));
        /* A 1x1 map is left unpooled (at 84 px the backbone's map is 3x3,
         * where the official code's second pool would leave nothing). */
        const eg_layer *l = &net->layers[x];
        if (l->h >= 2 && l->w >= 2) NEXT(eg_net_maxpool(net, x, 2, 2, 0));
    }
    NEXT(eg_net_linear(net, x, "fc1", 8, 1, EG_INIT_UNIFORM_FAN_IN));
    NEXT(eg_net_relu(net, x));
    NEXT(eg_net_linear(net, x, "fc2", 1, 1, EG_INIT_UNIFORM_FAN_IN));
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
