"""PyTorch counterpart of tests/bench/bench_cpu.c: times the same training
steps on the CPU with the same thread count and prints one JSON line per
workload.

    bench_torch.py [WORKLOAD...]   lenet_b128, resnet32_b100 (default: both)

A training step is: zero the gradients, forward in training mode, mean
softmax cross-entropy, backward, optimiser step, on one random batch.

Environment: BENCH_THREADS (default: the CPUs this process may run on) sets
torch's intra-op thread count (inter-op threads: 1); BENCH_STEPS_SCALE
(default 1) scales the number of timed steps. Run with /usr/bin/python3
(Debian python3-torch).
"""
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WARMUP_STEPS = 3


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
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


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
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


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
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def lenet_b128():
    net = LeNet(1, 28, 28, 10)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    return net, opt, (128, 1, 28, 28), 10, 30


def resnet32_b100():
    net = ResNet(32, 1, 3, 10)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9,
                          nesterov=True, weight_decay=5e-4)
    return net, opt, (100, 3, 32, 32), 10, 8


WORKLOADS = {"lenet_b128": lenet_b128, "resnet32_b100": resnet32_b100}


def status_bytes(key):
    """A "Key:  N kB" line of /proc/self/status in bytes; 0 if absent."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak_rss():
    """Resets the process's peak resident set (VmHWM) to its current size."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def run(name, threads, scale):
    rss0 = status_bytes("VmRSS")
    reset_peak_rss()
    torch.manual_seed(1)
    net, opt, shape, classes, steps = WORKLOADS[name]()
    steps = max(1, round(steps * scale))
    x = torch.rand(shape) * 2 - 1
    labels = torch.randint(0, classes, (shape[0],))
    net.train()

    def step():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(net(x), labels)
        loss.backward()
        opt.step()
        return loss.item()

    loss_first = step()
    for _ in range(WARMUP_STEPS - 1):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss_last = step()
        times.append((time.perf_counter() - t0) * 1e3)
    if not (math.isfinite(loss_first) and math.isfinite(loss_last)):
        raise SystemExit("bench_torch: %s: the loss is not finite (%g -> %g)"
                         % (name, loss_first, loss_last))
    hwm = status_bytes("VmHWM")
    print(json.dumps({
        "impl": "pytorch", "workload": name, "threads": threads, "steps": steps,
        "median_ms": round(statistics.median(times), 3),
        "min_ms": round(min(times), 3),
        "rss_delta_bytes": max(0, hwm - rss0),
        "loss_first": round(loss_first, 5), "loss_last": round(loss_last, 5),
    }), flush=True)


def main():
    threads = int(os.environ.get("BENCH_THREADS") or len(os.sched_getaffinity(0)))
    threads = max(1, threads)
    scale = float(os.environ.get("BENCH_STEPS_SCALE") or 1)
    if not scale > 0:
        scale = 1.0
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    names = sys.argv[1:] or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise SystemExit("bench_torch: unknown workload %s (%s)"
                         % (", ".join(unknown), ", ".join(WORKLOADS)))
    for name in names:
        run(name, threads, scale)


if __name__ == "__main__":
    main()
