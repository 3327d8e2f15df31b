"""The PyTorch models the tests and benchmarks compare the engine with:
LeNet-5 of the rotation experiment and the Meta-Weight-Net CIFAR ResNet
(option-A shortcuts, Kaiming-normal conv and linear weights).

The models call this module's `relu` and `max_pool2d` at run time, so a
caller may replace them (the parity test records how close each input lies
to a kink).
"""
import torch.nn as nn
import torch.nn.functional as F

relu = F.relu
max_pool2d = F.max_pool2d


class LeNet(nn.Module):
    def __init__(self, c, h, w, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        hh, ww = ((h // 2) - 4) // 2, ((w // 2) - 4) // 2
        self.fc1 = nn.Linear(16 * hh * ww, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = max_pool2d(relu(self.conv1(x)), 2)
        x = max_pool2d(relu(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(relu(self.fc2(relu(self.fc1(x)))))


class BasicBlock(nn.Module):
    """The Meta-Weight-Net code's block with the option-A shortcut."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.pad = stride, (planes - in_planes) // 2

    def shortcut(self, x):
        if self.stride == 1 and self.pad == 0:
            return x
        return F.pad(x[:, :, ::self.stride, ::self.stride],
                     (0, 0, 0, 0, self.pad, self.pad), "constant", 0)

    def forward(self, x):
        out = relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet of depth 6n+2, stage widths 16, 32, 64 times width."""

    def __init__(self, depth, width, c, classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(c, 16 * width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16 * width)
        planes_in = 16 * width
        for stage in range(3):
            planes = (16 << stage) * width
            blocks = []
            for b in range(n):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(BasicBlock(planes_in, planes, stride))
                planes_in = planes
            setattr(self, "layer%d" % (stage + 1), nn.Sequential(*blocks))
        self.linear = nn.Linear(64 * width, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)
