"""PyTorch counterpart of the `lft` task's benchmark: time and peak memory
per meta-training episode of cross-domain few-shot learning with learned
feature-wise transformations (LFT; Tseng et al., ICLR 2020) in a
RelationNet, with the FT parameters meta-learned by LFT's own second-order
step or by EvoGrad (Bohdal et al., NeurIPS 2021, Table 4 and Figure 4).
It is written the way the papers' code (hytseng0509/CrossDomainFewShot,
methods/LFTNet.py, and ondrejbohdal/evograd, CrossDomainFewShotLearning/
methods/LFTNetMetaEvo.py) computes an episode, in eager PyTorch with an
explicit functional forward, so that the model can be evaluated at fast
weights and at perturbed copies. One JSON line per (backbone, method).

    bench_torch_lft.py [--backbone resnet10,resnet34] [--method none,lft2,evograd]
                       [--size PX] [--episodes N] [--warmup N] [--threads N]
                       [--device cpu|cuda] [--seed S]
    bench_torch_lft.py --selfcheck [--device cpu|cuda]

Model. An ImageNet-style ResNet of SimpleBlocks (ResNet-10: [1,1,1,1],
ResNet-34: [3,4,6,3]; widths 64/128/256/512; stem conv 7x7 stride 2, BN,
ReLU, max-pool 3x3 stride 2 pad 1; 1x1 conv + BN shortcuts where the shape
changes) whose last feature map (no pooling) feeds a RelationNet (softmax
variant): class prototypes are the mean support feature maps, each
[prototype; query] pair (concatenated on channels) goes through two
conv3x3 -> BN (batch statistics always) -> ReLU -> max-pool 2 blocks
(padding 1 when the map side is under 10), fc to 8, ReLU, fc to 1, and the
n_way scores of a query are trained with cross-entropy. A max-pool of a
1x1 map is skipped (at 84 px the backbone's map is 3x3, where the original
code's second pool would leave nothing; at 224 px, the papers' size, no
pool is skipped). Feature-wise transformation layers follow the BN after
every block's second conv and every shortcut's BN: y = g*x + b with
g = 1 + e_g*softplus(theta_g, beta=100), b = e_b*softplus(theta_b,
beta=100), e ~ N(0,1) per channel, shared by the batch, drawn afresh at
each forward, theta_g = 0.3 and theta_b = 0.5 initially; they act in
training mode only. An episode is 5-way 5-shot with 16 queries per class
(105 random images) from a pseudo-seen and from a pseudo-unseen domain.
The model (backbone and relation module, not the FT parameters) trains
with Adam (lr 1e-3); the FT parameters with Adam (lr 1e-3, weight decay
1e-8). The official code's auxiliary classification loss is left out:
it is the same in every method.

Methods, one meta-training episode each:
  none     the model's ordinary training step on the pseudo-seen episode
           with FT on (the FT parameters are not updated);
  lft2     LFT's step (LFTNet.trainall_loop): the pseudo-seen loss with FT
           on, its gradient g with create_graph=True, fast weights
           theta' = theta - lr*g (lr = the model's Adam lr), the pseudo-
           unseen loss at theta' with FT off and the backbone's BN in eval
           mode, backward (second order) to the FT parameters, their Adam
           step, then the model's Adam step with g;
  evograd  EvoGrad's step (LFTNetMetaEvo.trainall_loop): the model's
           ordinary step, then K = 2 full copies theta + sigma*sign(randn)
           (sigma 1e-3) of every non-FT parameter, each copy's pseudo-seen
           loss with FT on (fresh FT noise per copy), w = softmax(-l/tau)
           (tau 0.05), theta* = sum_k w_k theta_k, the pseudo-unseen loss
           at theta* with FT off and the backbone's BN in eval mode,
           backward to the FT parameters through w only, their Adam step.

Timing: --warmup episodes, then --episodes timed ones, each timed on its
own (synchronised on CUDA); median_ms, min_ms and mean_ms are per episode.
Memory: on CUDA, peak_bytes is torch.cuda.max_memory_allocated() over the
timed episodes after a reset; on the CPU, as in bench_torch.py,
rss_delta_bytes is the process's peak resident set (VmHWM, reset through
/proc/self/clear_refs before the model is built) less its resident set at
that point. The other one is 0. On the CPU, each configuration runs in a
process of its own (the script runs itself once per configuration), since
the resident set does not shrink back when a configuration's memory is
freed.

Output, one line per configuration:
  {"impl": "pytorch", "workload": "lft_resnet10_evograd", "backbone":
   "resnet10", "method": "evograd", "size": 84, "device": "cpu",
   "threads": 2, "warmup": 3, "episodes": 5, "median_ms": ..., "min_ms":
   ..., "mean_ms": ..., "peak_bytes": 0, "peak_mib": 0.0,
   "rss_delta_bytes": ..., "loss_first": ..., "loss_last": ...}
loss_first and loss_last are the pseudo-seen training loss of the first
and the last episode.

--selfcheck checks both hypergradients against central finite differences
of the same function of the FT parameters in float64 on a tiny episode
(ResNet-10, 32 px, 3-way 2-shot 2 queries, fixed FT noise, fixed signs and
fixed BN statistics), checks that LFT's hypergradient vanishes when the
fast weights are built without create_graph (so the one it reports is the
second-order term), prints one JSON line per check and exits 1 when an
error is over 1e-4.

Environment: BENCH_THREADS is the default of --threads (otherwise the CPUs
this process may run on); BENCH_STEPS_SCALE (default 1) scales the default
number of timed episodes. Run with /usr/bin/python3 (Debian python3-torch).
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import reset_peak_rss, status_bytes  # noqa: E402

BACKBONES = {"resnet10": [1, 1, 1, 1], "resnet34": [3, 4, 6, 3]}
WIDTHS = [64, 128, 256, 512]
METHODS = ["none", "lft2", "evograd"]
N_WAY, N_SUPPORT, N_QUERY = 5, 5, 16
LR = 1e-3            # the model's Adam lr, LFT's fast-weight step, EvoGrad's sigma
FT_LR, FT_WD = 1e-3, 1e-8
K, TAU = 2, 0.05
BN_MOMENTUM, BN_EPS = 0.1, 1e-5
HIDDEN = 8


class LFTRelationNet:
    """ResNet backbone with FT layers and a RelationNet head, as plain
    tensors: `params` (what the model's optimiser trains), `ft` (the FT
    parameters) and `stats` (the backbone's BN running statistics)."""

    def __init__(self, layers, size, n_way, n_support, n_query, device, dtype):
        self.n_way, self.n_support, self.n_query = n_way, n_support, n_query
        self.device, self.dtype = device, dtype
        self.params, self.ft, self.stats = {}, {}, {}
        self.blocks = []   # (name, stride, has_shortcut)
        self.ft_layers = []  # (name, channels)

        self._conv("stem.conv", 3, 64, 7, bias=False)
        self._bn("stem.bn", 64)
        side = _conv_out(_conv_out(size, 7, 2, 3), 3, 2, 1)
        indim = 64
        for stage, (count, width) in enumerate(zip(layers, WIDTHS)):
            for j in range(count):
                name = "s%d.b%d" % (stage + 1, j)
                stride = 2 if stage >= 1 and j == 0 else 1
                self._conv(name + ".c1", indim, width, 3, bias=False)
                self._bn(name + ".bn1", width)
                self._conv(name + ".c2", width, width, 3, bias=False)
                self._bn(name + ".bn2", width, ft=True)
                shortcut = indim != width
                if shortcut:
                    self._conv(name + ".sc", indim, width, 1, bias=False)
                    self._bn(name + ".bnsc", width, ft=True)
                self.blocks.append((name, stride, shortcut))
                side = _conv_out(side, 3, stride, 1)
                indim = width
        if side < 1:
            raise SystemExit("bench_torch_lft: %d px is too small for the backbone" % size)
        self.feat_dim = (indim, side, side)

        # Relation module.
        c = indim
        self.rm_padding = 1 if side < 10 else 0
        s = side
        for i, cin in ((1, 2 * c), (2, c)):
            self._conv("rm.l%d.conv" % i, cin, c, 3, bias=True)
            self._affine("rm.l%d.bn" % i, c)
            s = s - 2 + 2 * self.rm_padding
            if s < 1:
                raise SystemExit("bench_torch_lft: the relation module gets an empty map "
                                 "at %d px" % size)
            s = s // 2 if s >= 2 else s
        self._linear("rm.fc1", c * s * s, HIDDEN)
        self._linear("rm.fc2", HIDDEN, 1)
        for t in list(self.params.values()) + list(self.ft.values()):
            t.requires_grad_(True)

    # --- parameters, initialised as the official code does ---

    def _new(self, *shape):
        return torch.empty(*shape, device=self.device, dtype=self.dtype)

    def _conv(self, name, cin, cout, k, bias):
        # backbone.init_layer: N(0, sqrt(2 / (k*k*out_channels))).
        self.params[name + ".w"] = self._new(cout, cin, k, k).normal_(
            0, math.sqrt(2.0 / (k * k * cout)))
        if bias:  # nn.Conv2d's default bias initialisation
            bound = 1 / math.sqrt(cin * k * k)
            self.params[name + ".b"] = self._new(cout).uniform_(-bound, bound)

    def _affine(self, name, c):
        self.params[name + ".w"] = self._new(c).fill_(1)
        self.params[name + ".b"] = self._new(c).zero_()

    def _bn(self, name, c, ft=False):
        self._affine(name, c)
        self.stats[name + ".mean"] = self._new(c).zero_()
        self.stats[name + ".var"] = self._new(c).fill_(1)
        if ft:
            self.ft[name + ".gamma"] = self._new(1, c, 1, 1).fill_(0.3)
            self.ft[name + ".beta"] = self._new(1, c, 1, 1).fill_(0.5)
            self.ft_layers.append((name, c))

    def _linear(self, name, fan_in, fan_out):
        # nn.Linear's default initialisation.
        bound = 1 / math.sqrt(fan_in)
        self.params[name + ".w"] = self._new(fan_out, fan_in).uniform_(-bound, bound)
        self.params[name + ".b"] = self._new(fan_out).uniform_(-bound, bound)

    # --- forward ---

    def sample_noise(self):
        """FT noise for one forward: e_gamma and e_beta per FT layer."""
        return {name: (self._new(1, c, 1, 1).normal_(), self._new(1, c, 1, 1).normal_())
                for name, c in self.ft_layers}

    def clone_stats(self):
        return {n: t.clone() for n, t in self.stats.items()}

    def features(self, p, ft, stats, x, training, noise):
        """The backbone's last feature map. training: BN with batch
        statistics (updating `stats` in place) and FT layers on; otherwise
        BN with the running statistics and FT layers off. noise: the FT
        noise to use (sample_noise()), or None for a fresh draw."""
        if training and noise is None:
            noise = self.sample_noise()

        def bn(h, name):
            h = F.batch_norm(h, stats[name + ".mean"], stats[name + ".var"],
                             p[name + ".w"], p[name + ".b"], training=training,
                             momentum=BN_MOMENTUM, eps=BN_EPS)
            if training and name in noise:
                e_g, e_b = noise[name]
                gamma = 1 + e_g * F.softplus(ft[name + ".gamma"], beta=100)
                beta = e_b * F.softplus(ft[name + ".beta"], beta=100)
                h = gamma * h + beta
            return h

        h = F.conv2d(x, p["stem.conv.w"], stride=2, padding=3)
        h = F.relu(bn(h, "stem.bn"))
        h = F.max_pool2d(h, 3, stride=2, padding=1)
        for name, stride, shortcut in self.blocks:
            out = F.conv2d(h, p[name + ".c1.w"], stride=stride, padding=1)
            out = F.relu(bn(out, name + ".bn1"))
            out = F.conv2d(out, p[name + ".c2.w"], padding=1)
            out = bn(out, name + ".bn2")
            if shortcut:
                h = bn(F.conv2d(h, p[name + ".sc.w"], stride=stride), name + ".bnsc")
            h = F.relu(out + h)
        return h

    def relation_scores(self, p, z):
        """RelationNet scores (n_way * n_query, n_way) from the episode's
        feature maps z (class-major: n_way x (n_support + n_query))."""
        c, hh, ww = z.shape[1:]
        z = z.view(self.n_way, self.n_support + self.n_query, c, hh, ww)
        proto = z[:, :self.n_support].mean(1)
        query = z[:, self.n_support:].reshape(self.n_way * self.n_query, c, hh, ww)
        nq = query.shape[0]
        pairs = torch.cat((proto.unsqueeze(0).expand(nq, -1, -1, -1, -1),
                           query.unsqueeze(1).expand(-1, self.n_way, -1, -1, -1)), 2)
        h = pairs.reshape(nq * self.n_way, 2 * c, hh, ww)
        for i in (1, 2):
            name = "rm.l%d" % i
            h = F.conv2d(h, p[name + ".conv.w"], p[name + ".conv.b"], padding=self.rm_padding)
            h = F.batch_norm(h, None, None, p[name + ".bn.w"], p[name + ".bn.b"],
                             training=True, eps=BN_EPS)
            h = F.relu(h)
            if min(h.shape[-2:]) >= 2:
                h = F.max_pool2d(h, 2)
        h = F.relu(F.linear(h.flatten(1), p["rm.fc1.w"], p["rm.fc1.b"]))
        return F.linear(h, p["rm.fc2.w"], p["rm.fc2.b"]).view(nq, self.n_way)

    def loss(self, p, ft, stats, x, training, noise=None):
        """The episode's cross-entropy at parameters p."""
        scores = self.relation_scores(p, self.features(p, ft, stats, x, training, noise))
        y = torch.arange(self.n_way, device=x.device).repeat_interleave(self.n_query)
        return F.cross_entropy(scores, y)


def _conv_out(s, k, stride, pad):
    return (s + 2 * pad - k) // stride + 1


class Job:
    def __init__(self, backbone, size, device, dtype=torch.float32,
                 n_way=N_WAY, n_support=N_SUPPORT, n_query=N_QUERY):
        self.net = LFTRelationNet(BACKBONES[backbone], size, n_way, n_support, n_query,
                                  device, dtype)
        n = n_way * (n_support + n_query)
        self.x_seen = torch.randn(n, 3, size, size, device=device, dtype=dtype)
        self.x_unseen = torch.randn(n, 3, size, size, device=device, dtype=dtype)
        self.opt = torch.optim.Adam(list(self.net.params.values()), lr=LR)
        self.ft_opt = torch.optim.Adam(list(self.net.ft.values()), lr=FT_LR,
                                       weight_decay=FT_WD)

    def base_step(self):
        net = self.net
        self.opt.zero_grad(set_to_none=True)
        loss = net.loss(net.params, net.ft, net.stats, self.x_seen, training=True)
        loss.backward()
        self.opt.step()
        return loss.item()

    def lft2(self):
        net = self.net
        names, theta = list(net.params), list(net.params.values())
        lr = self.opt.param_groups[0]["lr"]
        loss = net.loss(net.params, net.ft, net.stats, self.x_seen, training=True)
        grads = torch.autograd.grad(loss, theta, create_graph=True)
        fast = {n: p - lr * g for n, p, g in zip(names, theta, grads)}
        ft_loss = net.loss(fast, net.ft, net.stats, self.x_unseen, training=False)
        self.opt.zero_grad(set_to_none=True)
        self.ft_opt.zero_grad(set_to_none=True)
        ft_loss.backward()   # as LFTNet: to every leaf, the FT parameters among them
        self.ft_opt.step()
        for p, g in zip(theta, grads):
            p.grad = g.detach()
        self.opt.step()
        return loss.item()

    def evograd(self):
        net = self.net
        loss = self.base_step()
        sigma = self.opt.param_groups[0]["lr"]
        theta = {n: p.detach() for n, p in net.params.items()}
        copies = [{n: t + sigma * torch.sign(torch.randn_like(t)) for n, t in theta.items()}
                  for _ in range(K)]
        losses = [net.loss(c, net.ft, net.clone_stats(), self.x_seen, training=True)
                  for c in copies]
        w = torch.softmax(-torch.stack(losses) / TAU, 0)
        star = {n: sum(w[k] * copies[k][n] for k in range(K)) for n in theta}
        ft_loss = net.loss(star, net.ft, net.stats, self.x_unseen, training=False)
        self.ft_opt.zero_grad(set_to_none=True)
        ft_loss.backward()
        self.ft_opt.step()
        return loss

    def episode(self, method):
        if method == "lft2":
            return self.lft2()
        if method == "evograd":
            return self.evograd()
        return self.base_step()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(backbone, method, size, device, warmup, episodes, threads):
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
    rss0 = status_bytes("VmRSS")
    reset_peak_rss()
    job = Job(backbone, size, device)
    loss_first = job.episode(method)
    for _ in range(warmup - 1):
        job.episode(method)
    sync(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(episodes):
        t0 = time.perf_counter()
        loss_last = job.episode(method)
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    if not (math.isfinite(loss_first) and math.isfinite(loss_last)):
        raise SystemExit("bench_torch_lft: %s %s: the loss is not finite (%g -> %g)"
                         % (backbone, method, loss_first, loss_last))
    peak = torch.cuda.max_memory_allocated() if cuda else 0
    rss = 0 if cuda else max(0, status_bytes("VmHWM") - rss0)
    return {
        "impl": "pytorch", "workload": "lft_%s_%s" % (backbone, method),
        "backbone": backbone, "method": method, "size": size, "device": device.type,
        "threads": threads, "warmup": warmup, "episodes": episodes,
        "median_ms": round(statistics.median(times), 3),
        "min_ms": round(min(times), 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "peak_bytes": peak, "peak_mib": round(peak / 2**20, 1),
        "rss_delta_bytes": rss,
        "loss_first": round(loss_first, 5), "loss_last": round(loss_last, 5),
    }


# --- self-check ---

def directional_check(f, ft, grads, h, directions, gen):
    """Largest relative error of grads . u against (f(ft + h u) - f(ft - h u)) / 2h
    over random unit directions u."""
    worst, rows = 0.0, []
    for _ in range(directions):
        u = {n: torch.randn(t.shape, generator=gen, dtype=t.dtype).to(t.device)
             for n, t in ft.items()}
        norm = math.sqrt(sum(float((v * v).sum()) for v in u.values()))
        u = {n: v / norm for n, v in u.items()}
        with torch.no_grad():
            plus = {n: t + h * u[n] for n, t in ft.items()}
            minus = {n: t - h * u[n] for n, t in ft.items()}
        fd = (f(plus) - f(minus)) / (2 * h)
        an = sum(float((grads[n] * u[n]).sum()) for n in ft)
        err = abs(fd - an) / max(abs(fd), abs(an), 1e-300)
        worst = max(worst, err)
        rows.append((an, fd))
    return worst, rows


def selfcheck(device):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    h, directions, tol = 1e-5, 3, 1e-4
    job = Job("resnet10", 32, device, torch.float64, n_way=3, n_support=2, n_query=2)
    net = job.net
    names, theta = list(net.params), list(net.params.values())
    ft_names, ft_vals = list(net.ft), list(net.ft.values())
    failed = False

    # LFT: f(phi) = L_unseen(theta - lr * grad_theta L_seen(theta, phi)), with the
    # FT noise and the BN running statistics of the unseen pass held fixed.
    noise = net.sample_noise()
    stats_after = net.clone_stats()
    with torch.no_grad():
        net.loss(net.params, net.ft, stats_after, job.x_seen, True, noise)

    def lft_value(ft, create_graph):
        loss = net.loss(net.params, ft, net.clone_stats(), job.x_seen, True, noise)
        grads = torch.autograd.grad(loss, theta, create_graph=create_graph)
        fast = {n: p - LR * g for n, p, g in zip(names, theta, grads)}
        return net.loss(fast, ft, stats_after, job.x_unseen, False)

    hyper = torch.autograd.grad(lft_value(net.ft, True), ft_vals)
    hyper = dict(zip(ft_names, hyper))
    first = torch.autograd.grad(lft_value(net.ft, False), ft_vals, allow_unused=True)
    first_norm = math.sqrt(sum(float((g * g).sum()) for g in first if g is not None))
    norm = math.sqrt(sum(float((g * g).sum()) for g in hyper.values()))
    err, rows = directional_check(lambda ft: float(lft_value(ft, False)), net.ft, hyper,
                                  h, directions, gen)
    ok = err <= tol and norm > 0 and first_norm == 0
    failed |= not ok
    print(json.dumps({"selfcheck": "lft2", "max_rel_err": err, "grad_norm": norm,
                      "grad_norm_without_create_graph": first_norm,
                      "directional": [{"analytic": a, "finite_diff": d} for a, d in rows],
                      "h": h, "ok": ok}), flush=True)

    # EvoGrad: f(phi) = L_unseen(sum_k w_k(phi) theta_k), w = softmax(-l/tau),
    # l_k = L_seen(theta_k, phi), with the signs and each copy's FT noise fixed.
    plain = {n: p.detach() for n, p in net.params.items()}
    copies = [{n: t + LR * torch.sign(torch.randn_like(t)) for n, t in plain.items()}
              for _ in range(K)]
    noises = [net.sample_noise() for _ in range(K)]

    def evo_value(ft):
        losses = [net.loss(c, ft, net.clone_stats(), job.x_seen, True, e)
                  for c, e in zip(copies, noises)]
        w = torch.softmax(-torch.stack(losses) / TAU, 0)
        star = {n: sum(w[k] * copies[k][n] for k in range(K)) for n in plain}
        return net.loss(star, ft, net.stats, job.x_unseen, False)

    hyper = dict(zip(ft_names, torch.autograd.grad(evo_value(net.ft), ft_vals)))
    norm = math.sqrt(sum(float((g * g).sum()) for g in hyper.values()))
    err, rows = directional_check(lambda ft: float(evo_value(ft)), net.ft, hyper,
                                  h, directions, gen)
    ok = err <= tol and norm > 0
    failed |= not ok
    print(json.dumps({"selfcheck": "evograd", "max_rel_err": err, "grad_norm": norm,
                      "directional": [{"analytic": a, "finite_diff": d} for a, d in rows],
                      "h": h, "ok": ok}), flush=True)
    return 1 if failed else 0


def names_list(text, known, what):
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SystemExit("bench_torch_lft: unknown %s %s (%s)"
                         % (what, ", ".join(unknown) or "(none)", ", ".join(known)))
    return names


def main():
    env_threads = int(os.environ.get("BENCH_THREADS") or len(os.sched_getaffinity(0)))
    scale = float(os.environ.get("BENCH_STEPS_SCALE") or 1)
    if not scale > 0:
        scale = 1.0
    ap = argparse.ArgumentParser(description="Time and peak memory per LFT meta-training "
                                 "episode in PyTorch (one JSON line per configuration).")
    ap.add_argument("--backbone", default="resnet10,resnet34",
                    help="comma-separated: resnet10, resnet34 (default: both)")
    ap.add_argument("--method", default=",".join(METHODS),
                    help="comma-separated: none, lft2, evograd (default: all)")
    ap.add_argument("--size", type=int, default=None,
                    help="image side in pixels (default: 84 on the CPU, 224 on CUDA)")
    ap.add_argument("--episodes", type=int, default=None,
                    help="timed episodes (default: 5 on the CPU, 20 on CUDA)")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up episodes (default 3)")
    ap.add_argument("--threads", type=int, default=env_threads,
                    help="torch intra-op threads (default: BENCH_THREADS or the CPUs "
                    "this process may run on)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--selfcheck", action="store_true",
                    help="check the LFT and EvoGrad hypergradients against finite "
                    "differences and exit")
    a = ap.parse_args()

    threads = max(1, a.threads)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_torch_lft: no CUDA device for PyTorch", file=sys.stderr)
        return 2
    if a.selfcheck:
        return selfcheck(device)
    backbones = names_list(a.backbone, list(BACKBONES), "backbone")
    methods = names_list(a.method, METHODS, "method")
    cuda = device.type == "cuda"
    size = a.size or (224 if cuda else 84)
    episodes = a.episodes or max(1, round((20 if cuda else 5) * scale))
    warmup = max(1, a.warmup)
    configs = [(b, m) for b in backbones for m in methods]
    if not cuda and len(configs) > 1:
        # The resident set only shrinks back partly when a configuration's
        # memory is freed, so on the CPU each one runs in a process of its own.
        rc = 0
        for backbone, method in configs:
            cmd = [sys.executable, os.path.abspath(__file__), "--backbone", backbone,
                   "--method", method, "--size", str(size), "--episodes", str(episodes),
                   "--warmup", str(warmup), "--threads", str(threads),
                   "--device", a.device, "--seed", str(a.seed)]
            rc = subprocess.call(cmd) or rc
        return rc
    for backbone, method in configs:
        torch.manual_seed(a.seed)
        print(json.dumps(measure(backbone, method, size, device, warmup, episodes,
                                 threads)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
