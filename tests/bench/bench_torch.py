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
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from torch_models import LeNet, ResNet  # noqa: E402

WARMUP_STEPS = 3


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
