"""PyTorch counterpart of `bench_meta --gpu`: Meta-Weight-Net ResNet-32 at
batch 100 on random 3x32x32 images, step time and peak memory of a plain
step (`none`), an EvoGrad step (K = 2, sigma 1e-3, tau 0.05) and a T1-T2
step, for widths 1, 2 and 4, written the way the papers' code writes them
(eager PyTorch, functional calls at perturbed parameters). One JSON line
per (width, method) on stdout, so a GPU run measures its own baseline on
the same card.

    bench_torch_mwn.py [--device cuda|cpu] [--steps N] [--widths 1,2,4]

Peak memory is torch.cuda.max_memory_allocated() (0 on the CPU).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    from torch.func import functional_call
except ImportError:  # PyTorch < 2.0
    from torch.nn.utils.stateless import functional_call

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from torch_models import ResNet  # noqa: E402

BATCH, K, SIGMA, TAU = 100, 2, 1e-3, 0.05


class VNet(nn.Module):
    def __init__(self, hidden=100):
        super().__init__()
        self.l1, self.l2 = nn.Linear(1, hidden), nn.Linear(hidden, 1)

    def forward(self, c):
        return torch.sigmoid(self.l2(F.relu(self.l1(c))))


def weighted_loss(logits, y, vnet):
    c = F.cross_entropy(logits, y, reduction="none")
    return (vnet(c.unsqueeze(1)).squeeze(1) * c).mean()


class Job:
    def __init__(self, width, device):
        self.dev = device
        self.model = ResNet(32, width, 3, 10).to(device)
        self.vnet = VNet().to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9,
                                   nesterov=True, weight_decay=5e-4)
        self.meta_opt = torch.optim.SGD(self.vnet.parameters(), lr=1e-3)
        self.x = torch.randn(BATCH, 3, 32, 32, device=device)
        self.y = torch.randint(0, 10, (BATCH,), device=device)
        self.xv = torch.randn(BATCH, 3, 32, 32, device=device)
        self.yv = torch.randint(0, 10, (BATCH,), device=device)

    def params(self):
        return {n: p for n, p in self.model.named_parameters()}

    def buffers(self):
        return {n: b for n, b in self.model.named_buffers()}

    def call(self, params, x):
        state = dict(self.buffers())
        state.update(params)
        return functional_call(self.model, state, (x,))

    def base_step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = weighted_loss(self.model(self.x), self.y, lambda c: self.vnet(c).detach())
        loss.backward()
        self.opt.step()

    def evograd(self):
        theta = {n: p.detach() for n, p in self.params().items()}
        losses, copies = [], []
        for _ in range(K):
            th = {n: p + SIGMA * torch.randn_like(p) for n, p in theta.items()}
            with torch.no_grad():
                logits = self.call(th, self.x)
            losses.append(weighted_loss(logits, self.y, self.vnet))
            copies.append(th)
        w = torch.softmax(-torch.stack(losses) / TAU, 0)
        star = {n: sum(w[k] * copies[k][n] for k in range(K)) for n in theta}
        val = F.cross_entropy(self.call(star, self.xv), self.yv)
        self.meta_opt.zero_grad(set_to_none=True)
        val.backward()
        self.meta_opt.step()

    def t1t2(self):
        params = self.params()
        lr = self.opt.param_groups[0]["lr"]
        loss = weighted_loss(self.model(self.x), self.y, self.vnet)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        fast = {n: p - lr * g for (n, p), g in zip(params.items(), grads)}
        val = F.cross_entropy(self.call(fast, self.xv), self.yv)
        self.meta_opt.zero_grad(set_to_none=True)
        val.backward(inputs=list(self.vnet.parameters()))
        self.meta_opt.step()

    def step(self, method):
        if method == "evograd":
            self.evograd()
        elif method == "t1t2":
            self.t1t2()
        self.base_step()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(width, method, device, steps):
    job = Job(width, device)
    for _ in range(3):
        job.step(method)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        job.step(method)
    sync(device)
    ms = (time.perf_counter() - t0) * 1000 / steps
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    return {"width": width, "method": method, "step_ms": round(ms, 3),
            "peak_mib": round(peak / 2**20, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--widths", default="1,2,4")
    a = ap.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_torch_mwn: no CUDA device for PyTorch", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    for width in [int(w) for w in a.widths.split(",")]:
        for method in ("none", "evograd", "t1t2"):
            print(json.dumps(measure(width, method, device, a.steps)), flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
