"""PyTorch side of the MetaXL benchmark: time and peak memory per training
step of MetaXL (Xia et al., NAACL 2021) cross-lingual transfer, with the
representation transformation network (RTN) meta-learned by MetaXL's own
second-order step or by EvoGrad (Bohdal et al., NeurIPS 2021, Table 5),
written the way the EvoGrad paper's official code computes a step
(ondrejbohdal/evograd, CrossLingualLearningMetaXL/mlt.py: step_metaxl,
step_metaxl_evograd; joint training: step_gold_mix), in eager PyTorch. One
JSON line per method.

    bench_torch_metaxl.py [--device cpu|cuda] [--d N] [--layers N] [--heads N]
                          [--ff N] [--bottleneck N] [--batch N] [--len N]
                          [--steps N] [--threads N] [--method joint,metaxl,evograd]
                          [--recompute] [--seed S]
    bench_torch_metaxl.py --selfcheck [--device cpu|cuda]

Model. The token classifier of bench_torch_encoder.py (imported from
there): word (30000) + position + token-type embeddings, LayerNorm,
dropout 0.1, post-LayerNorm nn.TransformerEncoderLayer layers with GELU,
then dropout 0.1 and Linear(d, 9). The RTN (the official Raptors module,
struct "perceptron", tied, transfer_component_add_weights) is
Linear(d, b) -> ReLU -> Linear(b, d + 1), Xavier-normal weights and zero
biases; on a source batch, with h the last encoder layer's output,
h' = h + sigmoid(o[..., d]) * o[..., :d], o = RTN(h.detach()), and the
classifier (dropout, Linear) reads h' (the official --layers 12 on
XLM-R-base: after the last layer, so no encoder layer runs after the RTN).
The RTN's layer-mixing alpha of the official module is left out: with one
transfer layer softmax(alpha) is 1 and its hypergradient is 0. So is the
official code's unused pooler (dense + tanh on the first token) that
forward_classifier also computes for token classification.

A step takes a source batch s of --batch sentences and a target batch of
--batch sentences, split in halves as the official code does with
--portion 2: g = the first half (inner, training), t = the second half
(outer, meta), all of --len tokens: random ids (first 0, last 2), random
labels in 0..8 with the first and last token labelled -100, no padding.
CE is token cross-entropy with ignore_index -100 averaged over the
labelled tokens (the official masked_cross_entropy). L_train(w, lambda) =
CE_s(with RTN) + CE_g, as step_metaxl has it without instance weights.
Optimisers as mtrain.py builds them: Adam (lr 3e-5, eps 1e-8, weight
decay 5e-4) for the model, Adam (lr 1e-6, eps 1e-8, weight decay 5e-4) for
the RTN; the model's gradient is clipped at norm 10.

Methods, one step each:
  joint    plain joint training: CE_s (no RTN) + CE of the whole target
           batch, two forwards, backward, clip, the model's Adam step (the
           official step_gold_mix halves this sum and does not clip; that
           costs nothing either way);
  metaxl   step_metaxl: the encoder's outputs on s and g, L_train(w,
           lambda), g = autograd.grad(L_train, every model parameter,
           create_graph=True), fast weights w' = w - eta * g (eta = the
           model's lr, args.magic = 1), CE_t(w') without the RTN by a
           functional forward of the whole model at w'
           (torch.nn.utils.stateless.functional_call), backward to the RTN
           only (second order through g; the official code backpropagates
           -eta * <g, grad CE_t(w')>, the same gradient), the RTN's Adam
           step; then the model's step: L_train(w, lambda_new) with the
           updated RTN, backward, clip, Adam;
  evograd  step_metaxl_evograd: only the classifier's weight and bias are
           perturbed: K = 2 copies theta_k = theta + sigma * sign(randn)
           (Rademacher signs, as the official code draws them; sigma 1e-3),
           each copy's L_train (CE_s with RTN + CE_g at theta_k; the
           encoder outputs on s and g computed once and shared by the
           copies; a fresh classifier dropout mask per copy), w =
           softmax(-l / tau) (tau 0.05), theta* = sum_k w_k theta_k, CE_t
           at theta* without the RTN (the encoder on t without a graph:
           nothing but theta* is differentiated), backward to the RTN
           through w only, the RTN's Adam step; then the model's step as
           in metaxl.
The official code reruns the whole model for the model's step (and, in
step_metaxl_evograd, for every copy, backpropagating CE_t through all of
them); here the model's step reuses the meta step's encoder outputs on s
and g (same parameters, only the RTN changed; fresh classifier dropout),
unless --recompute is given, which runs the encoder forward again.
Backward passes of the meta steps are restricted to the RTN's parameters
(backward(inputs=...)), so no work goes to gradients that are thrown away.

Timing: one warm-up step (it creates Adam's state), then --steps timed
steps, each on its own (synchronised on CUDA); median_ms and mean_ms per
step. Memory: on CUDA, peak_bytes is torch.cuda.max_memory_allocated()
over the timed steps after a reset (parameters and optimiser state
included); on the CPU, as in bench_torch.py, rss_delta_bytes is the growth
of the process's peak resident set (VmHWM, reset through
/proc/self/clear_refs) over the timed steps. The other one is 0. On the
CPU each method runs in a process of its own (the script runs itself once
per method), since the resident set does not shrink back.

Output, one line per method:
  {"impl": "pytorch", "method": "evograd", "device": "cpu", "d": 256,
   "layers": 4, "heads": 4, "ff": 1024, "bottleneck": 128, "batch": 12,
   "len": 64, "steps": 3, "threads": 2, "median_ms": ..., "mean_ms": ...,
   "peak_bytes": 0, "rss_delta_bytes": ..., "params": ...,
   "rtn_params": ...}
Defaults: d 256, 4 layers, 4 heads, ff 1024, bottleneck d/2, batch 12,
len 64 on the CPU and 128 on CUDA, 3 steps.

--selfcheck, in float64 on a tiny model with dropout off (all of it,
attention's included): checks that the metaxl hypergradient to the RTN
equals central finite differences (h 1e-3) of CE_t(w - eta grad_w
L_train(w, lambda)) in lambda (eta 3e-5, the benchmark's), along the
hypergradient's own direction and 3 random unit directions of the RTN's
parameters,
that it vanishes when the fast weights are built without create_graph (so
what it reports is the second-order term), and that the evograd
hypergradient equals finite differences of CE_t(theta*(lambda)) with the
signs held fixed; prints one JSON line per check (relative errors) and
exits 1 when an error is over 1e-4.

Environment: BENCH_THREADS is the default of --threads (otherwise the CPUs
this process may run on). Run with /usr/bin/python3 (Debian python3-torch).
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn.utils.stateless import functional_call
except ImportError as e:
    print("bench_torch_metaxl: %s" % e, file=sys.stderr)
    raise SystemExit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import reset_peak_rss, status_bytes  # noqa: E402
from bench_torch_encoder import LABELS, PAD, VOCAB, TokenClassifier  # noqa: E402

METHODS = ["joint", "metaxl", "evograd"]
LR, RTN_LR, EPS, WD, CLIP = 3e-5, 1e-6, 1e-8, 5e-4, 10.0
K, SIGMA, TAU = 2, 1e-3, 0.05


def make_rtn(d, b):
    rtn = nn.Sequential(nn.Linear(d, b), nn.ReLU(), nn.Linear(b, d + 1))
    for i in (0, 2):
        nn.init.xavier_normal_(rtn[i].weight)
        nn.init.zeros_(rtn[i].bias)
    return rtn


def apply_rtn(rtn, h):
    """h + sigmoid(gate) * representation, the RTN reading h.detach()."""
    o = rtn(h.detach())
    return h + torch.sigmoid(o[..., -1:]) * o[..., :-1]


def make_batch(n, length, device):
    ids = torch.randint(4, VOCAB - 1, (n, length), device=device)
    ids[:, 0], ids[:, -1] = 0, 2
    labels = torch.randint(0, LABELS, (n, length), device=device)
    labels[:, 0] = labels[:, -1] = -100
    pos = (torch.arange(length, device=device) + PAD + 1).expand(n, length)
    mask = torch.zeros(n, length, dtype=torch.bool, device=device)
    return ids, pos, mask, labels


def ce(logits, labels):
    return F.cross_entropy(logits.reshape(-1, LABELS), labels.reshape(-1), ignore_index=-100)


class Job:
    def __init__(self, d, layers, heads, ff, bottleneck, batch, length, device,
                 dtype=torch.float32):
        self.model = TokenClassifier(d, layers, heads, ff, length + 2).to(device, dtype)
        self.rtn = make_rtn(d, bottleneck).to(device, dtype)
        self.model.train()
        self.rtn.train()
        self.names = [n for n, _ in self.model.named_parameters()]
        self.params = [p for _, p in self.model.named_parameters()]
        self.rtn_params = list(self.rtn.parameters())
        self.opt = torch.optim.Adam(self.params, lr=LR, eps=EPS, weight_decay=WD)
        self.rtn_opt = torch.optim.Adam(self.rtn_params, lr=RTN_LR, eps=EPS, weight_decay=WD)
        half = batch // 2
        self.src = make_batch(batch, length, device)
        tgt = make_batch(batch, length, device)
        self.tgt = tgt
        self.g = tuple(x[:half] for x in tgt)
        self.t = tuple(x[half:] for x in tgt)
        self.recompute = False

    # --- pieces of a step ---

    def encode(self, batch):
        m = self.model
        ids, pos, mask, _ = batch
        x = m.word(ids) + m.pos(pos) + m.token_type(torch.zeros_like(ids))
        return m.encoder(m.drop(m.ln(x)), src_key_padding_mask=mask)

    def train_loss(self, h_s, h_g, weight=None, bias=None):
        """L_train = CE_s(with RTN) + CE_g, the classifier at (weight, bias)
        (default: the model's own)."""
        m = self.model
        if weight is None:
            weight, bias = m.cls.weight, m.cls.bias
        loss_s = ce(F.linear(m.drop(apply_rtn(self.rtn, h_s)), weight, bias), self.src[3])
        loss_g = ce(F.linear(m.drop(h_g), weight, bias), self.g[3])
        return loss_s + loss_g

    def metaxl_outer(self, create_graph=True):
        """CE_t(w - eta * grad_w L_train(w, lambda)) and the encoder outputs
        on s and g it was built on."""
        h_s, h_g = self.encode(self.src), self.encode(self.g)
        loss = self.train_loss(h_s, h_g)
        grads = torch.autograd.grad(loss, self.params, create_graph=create_graph)
        eta = self.opt.param_groups[0]["lr"]
        fast = {n: p - eta * g for n, p, g in zip(self.names, self.params, grads)}
        ids, pos, mask, labels = self.t
        return ce(functional_call(self.model, fast, (ids, pos, mask)), labels), h_s, h_g

    def evograd_outer(self, signs=None):
        """CE_t at theta* = sum_k softmax(-l/tau)_k theta_k (classifier only)
        and the encoder outputs on s and g."""
        m = self.model
        h_s, h_g = self.encode(self.src), self.encode(self.g)
        with torch.no_grad():
            h_t = self.encode(self.t)
        theta = (m.cls.weight.detach(), m.cls.bias.detach())
        if signs is None:
            signs = [tuple(torch.sign(torch.randn_like(x)) for x in theta) for _ in range(K)]
        copies = [tuple(x + SIGMA * e for x, e in zip(theta, eps)) for eps in signs]
        hs_rtn = apply_rtn(self.rtn, h_s)   # shared by the copies
        losses = []
        for weight, bias in copies:
            loss_s = ce(F.linear(m.drop(hs_rtn), weight, bias), self.src[3])
            loss_g = ce(F.linear(m.drop(h_g), weight, bias), self.g[3])
            losses.append(loss_s + loss_g)
        w = torch.softmax(-torch.stack(losses) / TAU, 0)
        weight = sum(w[k] * copies[k][0] for k in range(K))
        bias = sum(w[k] * copies[k][1] for k in range(K))
        return ce(F.linear(m.drop(h_t), weight, bias), self.t[3]), h_s, h_g

    def model_step(self, h_s, h_g):
        """The model's step on L_train(w, lambda) with the current RTN."""
        if self.recompute:
            h_s, h_g = self.encode(self.src), self.encode(self.g)
        self.opt.zero_grad(set_to_none=True)
        loss = self.train_loss(h_s, h_g)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, CLIP)
        self.opt.step()
        return loss.detach()

    def meta_step(self, loss_t):
        self.rtn_opt.zero_grad(set_to_none=True)
        loss_t.backward(inputs=self.rtn_params)
        self.rtn_opt.step()

    # --- steps ---

    def joint(self):
        m = self.model
        self.opt.zero_grad(set_to_none=True)
        ids, pos, mask, labels = self.src
        loss = ce(m(ids, pos, mask), labels)
        ids, pos, mask, labels = self.tgt
        loss = loss + ce(m(ids, pos, mask), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, CLIP)
        self.opt.step()
        return loss.detach()

    def metaxl(self):
        loss_t, h_s, h_g = self.metaxl_outer(create_graph=True)
        self.meta_step(loss_t)
        del loss_t
        return self.model_step(h_s, h_g)

    def evograd(self):
        loss_t, h_s, h_g = self.evograd_outer()
        self.meta_step(loss_t)
        del loss_t
        return self.model_step(h_s, h_g)

    def step(self, method):
        return getattr(self, method)()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(a, method, device):
    cuda = device.type == "cuda"
    torch.manual_seed(a.seed)
    job = Job(a.d, a.layers, a.heads, a.ff, a.bottleneck, a.batch, a.len, device)
    job.recompute = a.recompute
    job.step(method)   # warm-up; creates Adam's state
    sync(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss0 = status_bytes("VmRSS")
    reset_peak_rss()
    times = []
    loss = None
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = job.step(method)
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    peak = torch.cuda.max_memory_allocated() if cuda else 0
    rss = 0 if cuda else max(0, status_bytes("VmHWM") - rss0)
    if not math.isfinite(float(loss)):
        raise SystemExit("bench_torch_metaxl: %s: the loss is not finite" % method)
    return {"impl": "pytorch", "method": method, "device": device.type, "d": a.d,
            "layers": a.layers, "heads": a.heads, "ff": a.ff, "bottleneck": a.bottleneck,
            "batch": a.batch, "len": a.len, "steps": a.steps, "threads": a.threads,
            "median_ms": round(statistics.median(times), 3),
            "mean_ms": round(statistics.fmean(times), 3),
            "peak_bytes": peak, "rss_delta_bytes": rss,
            "params": sum(p.numel() for p in job.params),
            "rtn_params": sum(p.numel() for p in job.rtn_params)}


# --- self-check ---

def directional_check(f, params, grads, h, directions, gen):
    """Largest relative error of grads . u against (f(p + h u) - f(p - h u)) / 2h
    over unit directions u of the parameters `params` (changed in place and
    restored): the direction of grads, then `directions` random ones."""
    worst, rows = 0.0, []
    for i in range(directions + 1):
        if i == 0:
            u = [g.detach().clone() for g in grads]
        else:
            u = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device)
                 for p in params]
        norm = math.sqrt(sum(float((v * v).sum()) for v in u))
        u = [v / norm for v in u]
        values = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, v in zip(params, u):
                    p.add_(sign * h * v)
            values.append(f())
            with torch.no_grad():
                for p, v in zip(params, u):
                    p.sub_(sign * h * v)
        fd = (values[0] - values[1]) / (2 * h)
        an = sum(float((g * v).sum()) for g, v in zip(grads, u))
        err = abs(fd - an) / max(abs(fd), abs(an), 1e-300)
        worst = max(worst, err)
        rows.append((an, fd))
    return worst, rows


def selfcheck(device):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    h, directions, tol = 1e-3, 3, 1e-4
    job = Job(16, 2, 2, 32, 8, 4, 6, device, torch.float64)
    for mod in job.model.modules():   # dropout off, training mode kept
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0
        if isinstance(mod, nn.MultiheadAttention):
            mod.dropout = 0.0
    rtn = job.rtn_params
    failed = False

    # MetaXL: f(lambda) = CE_t(w - eta * grad_w L_train(w, lambda)).
    hyper = torch.autograd.grad(job.metaxl_outer(True)[0], rtn)
    first = torch.autograd.grad(job.metaxl_outer(False)[0], rtn, allow_unused=True)
    first_norm = math.sqrt(sum(float((g * g).sum()) for g in first if g is not None))
    norm = math.sqrt(sum(float((g * g).sum()) for g in hyper))
    err, rows = directional_check(lambda: float(job.metaxl_outer(False)[0]), rtn, hyper,
                                  h, directions, gen)
    ok = err <= tol and norm > 0 and first_norm == 0
    failed |= not ok
    print(json.dumps({"selfcheck": "metaxl", "max_rel_err": err, "grad_norm": norm,
                      "grad_norm_without_create_graph": first_norm,
                      "directional": [{"analytic": x, "finite_diff": y} for x, y in rows],
                      "h": h, "ok": ok}), flush=True)

    # EvoGrad: f(lambda) = CE_t(theta*(lambda)), the signs held fixed.
    cls = job.model.cls
    signs = [tuple(torch.sign(torch.randn_like(x)) for x in (cls.weight, cls.bias))
             for _ in range(K)]
    hyper = torch.autograd.grad(job.evograd_outer(signs)[0], rtn)
    norm = math.sqrt(sum(float((g * g).sum()) for g in hyper))
    err, rows = directional_check(lambda: float(job.evograd_outer(signs)[0]), rtn, hyper,
                                  h, directions, gen)
    ok = err <= tol and norm > 0
    failed |= not ok
    print(json.dumps({"selfcheck": "evograd", "max_rel_err": err, "grad_norm": norm,
                      "directional": [{"analytic": x, "finite_diff": y} for x, y in rows],
                      "h": h, "ok": ok}), flush=True)
    return 1 if failed else 0


def main():
    env_threads = int(os.environ.get("BENCH_THREADS") or len(os.sched_getaffinity(0)))
    ap = argparse.ArgumentParser(description="Time and peak memory per MetaXL training "
                                 "step in PyTorch (one JSON line per method).")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    for k, v, text in (("d", 256, "model width"), ("layers", 4, "encoder layers"),
                       ("heads", 4, "attention heads"), ("ff", 1024, "feed-forward width"),
                       ("batch", 12, "sentences per source and per target batch"),
                       ("steps", 3, "timed steps")):
        ap.add_argument("--" + k, type=int, default=v, help="%s (default %d)" % (text, v))
    ap.add_argument("--bottleneck", type=int, default=None,
                    help="the RTN's hidden width b (default d/2)")
    ap.add_argument("--len", type=int, default=None,
                    help="tokens per sentence (default 64 on the CPU, 128 on CUDA)")
    ap.add_argument("--threads", type=int, default=env_threads,
                    help="torch intra-op threads (default: BENCH_THREADS or the CPUs "
                    "this process may run on)")
    ap.add_argument("--method", default=",".join(METHODS),
                    help="comma-separated: joint, metaxl, evograd (default: all)")
    ap.add_argument("--recompute", action="store_true",
                    help="the model's step reruns the encoder forward, as the official "
                    "code does, instead of reusing the meta step's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--selfcheck", action="store_true",
                    help="check the MetaXL and EvoGrad hypergradients against finite "
                    "differences in float64 and exit")
    a = ap.parse_args()

    a.threads = max(1, a.threads)
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("bench_torch_metaxl: no CUDA device for PyTorch", file=sys.stderr)
        return 2
    if a.selfcheck:
        return selfcheck(device)
    methods = [m for m in a.method.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise SystemExit("bench_torch_metaxl: unknown method %s (%s)"
                         % (", ".join(unknown) or "(none)", ", ".join(METHODS)))
    a.len = a.len or (128 if cuda else 64)
    a.bottleneck = a.bottleneck or max(1, a.d // 2)
    if a.batch < 2 or a.len < 3 or a.steps < 1 or a.d % a.heads:
        raise SystemExit("bench_torch_metaxl: need --batch >= 2, --len >= 3, --steps >= 1 "
                         "and --d a multiple of --heads")
    if not cuda and len(methods) > 1:
        # The resident set does not shrink back when a method's memory is
        # freed, so on the CPU each one runs in a process of its own.
        rc = 0
        for method in methods:
            cmd = [sys.executable, os.path.abspath(__file__), "--method", method,
                   "--device", a.device, "--threads", str(a.threads), "--seed", str(a.seed)]
            for k in ("d", "layers", "heads", "ff", "bottleneck", "batch", "len", "steps"):
                cmd += ["--" + k, str(getattr(a, k))]
            if a.recompute:
                cmd.append("--recompute")
            rc = subprocess.call(cmd) or rc
        return rc
    for method in methods:
        if cuda:
            torch.cuda.empty_cache()
        print(json.dumps(measure(a, method, device)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
