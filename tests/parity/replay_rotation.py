"""Replays a traced rotation run (tests/unit/trace.h) in float64 PyTorch.

usage: replay_rotation.py DIR [--table] [--every N] [--t1t2]
                          [--tol-loss X] [--tol-hyper X] [--tol-lambda X]

At every step the replay starts from the engine's own θ and λ, the same
batches and the same noise signs r_k, and computes in float64 what the
engine computed in float32:
  EvoGrad: the copies' losses ℓ_k = ℓ_T(θ + σ r_k, λ) and ∂ℓ_k/∂λ, the
           weights w = softmax(-ℓ/τ), θ* = θ + σ Σ w_k r_k, ℓ_V(θ*) and its
           gradient g, and the hypergradient
           Σ_j -(σ/τ) w_j (g·r_j - Σ_k w_k g·r_k) ∂ℓ_j/∂λ;
  T1−T2:   v = ∇ℓ_V(θ'), θ' = θ - α∇_θ ℓ_T(θ, λ), and the hypergradient
           -α (∇_λ ℓ_T(θ + εv) - ∇_λ ℓ_T(θ - εv)) / 2ε, ε = 0.01/‖v‖, the
           engine's central difference; beside it, for information, the
           exact -α ∂²ℓ_T/∂λ∂θ · v by double backward ("hyper_exact"), from
           which the central difference departs wherever θ ± εv crosses
           ReLU and max-pool kinks (it measures a slope over them);
then the meta-optimiser's step (torch.optim, float64) from the engine's λ
with the engine's hypergradient, compared with the engine's λ after the
step. The step record the daemon logs is checked against the same figures:
its training loss against ℓ_T(θ, λ after the meta step) on the training
batch, its meta loss against ℓ_V, its hypergradient norm and λ's norm
against the norms of the engine's own vectors, its copy weights against the
replay's. A second λ follows the replay's own hypergradients from the first
step on, to show how far the trajectories drift apart.

float32 and float64 may take different branches where a ReLU input or a
max-pool's two largest values lie within rounding of each other; at such a
step one copy's ∂ℓ_k/∂λ differs by up to a few 1e-3 (PyTorch's own float32
does so at more steps than the engine), and so does the hypergradient, a
difference of nearby values. λ = 0 is such a point for every sample: the
rotation's grid lies on the pixel centres. A limit therefore applies to
the median step's error, and 90% of the steps must lie within 100 times
the limit; the largest error is printed too.

Training images are rotated in pixel space by λ (bilinear, zeros outside,
affine_grid/grid_sample with align_corners=False) and then normalised with
the training split's statistics, as daemon/tasks/rotation.c does.

With --t1t2, an EvoGrad trace is also given T1−T2's hypergradient at every
replayed step (same θ, λ and batches, float64), and the table and summary
say how often the two agree in sign, to tell estimator noise from the
objective's own landscape.

Prints one line per compared quantity (the largest error over the steps
and the step where it occurs) and, with --table, a row per step. Exit
status 0 when every error is within its tolerance, 1 when one is not.
"""
import argparse
import json
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.stateless import functional_call
except ImportError as e:
    sys.exit("replay_rotation.py: needs numpy and torch in %s: %s" % (sys.executable, e))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import LeNet  # noqa: E402

TYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i8": np.int8}


def load(d, meta, name):
    f = meta["files"][name]
    a = np.fromfile(os.path.join(d, "%s.%s" % (name, f["type"])), dtype=TYPES[f["type"]])
    shape = (meta["steps"],) + tuple(f["shape"])
    if a.size != int(np.prod(shape)):
        sys.exit("replay_rotation.py: %s holds %d values, expected %s" % (name, a.size, shape))
    return a.reshape(shape)


def rotate(x, a):
    """x (N, C, H, W) rotated by angle a (a 0-d tensor, radians)."""
    zero = torch.zeros((), dtype=x.dtype)
    theta = torch.stack([
        torch.stack([torch.cos(a), -torch.sin(a), zero]),
        torch.stack([torch.sin(a), torch.cos(a), zero]),
    ]).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-30))


class Replay:
    def __init__(self, d):
        self.meta = meta = json.load(open(os.path.join(d, "meta.json")))
        job = meta["job"]
        if job["task"] != "rotation" or job["model"]["name"] != "lenet":
            sys.exit("replay_rotation.py: replays rotation with lenet, not %s with %s"
                     % (job["task"], job["model"]["name"]))
        self.job = job
        self.method = job["method"]
        c, h, w = meta["sample"]
        self.net = LeNet(c, h, w, meta["classes"]).double()
        self.layout = [(name, int(n)) for name, n in meta["layout"]]
        shapes = dict((k, v.shape) for k, v in self.net.named_parameters())
        if [k for k, _ in self.layout] != list(shapes) or \
                sum(n for _, n in self.layout) != meta["P"]:
            sys.exit("replay_rotation.py: the engine's layout %s is not LeNet's %s"
                     % (self.layout, list(shapes)))
        self.shapes = shapes
        self.mean, self.std = float(meta["mean"][0]), float(meta["std"][0])
        self.data = {}
        names = ["theta", "lambda", "lambda_after", "hyper", "base_lr", "val_loss",
                 "train_n", "train_x", "train_y", "val_n", "val_x", "val_y"]
        names += ["record"]
        names += ["losses", "w", "dl", "noise", "record_w"] if self.method == "evograd" else ["t1t2_loss"]
        for name in names:
            self.data[name] = load(d, meta, name)

    def params(self, flat):
        out, o = {}, 0
        for name, n in self.layout:
            out[name] = flat[o:o + n].view(self.shapes[name])
            o += n
        return out

    def loss(self, flat, x, y):
        return F.cross_entropy(functional_call(self.net, self.params(flat), (x,)), y)

    def train_input(self, x, lam):
        return (rotate(x, lam) - self.mean) / self.std

    def batches(self, s):
        D = self.data
        n, nv = int(D["train_n"][s][0]), int(D["val_n"][s][0])
        t = lambda a, k: torch.from_numpy(a[s][:k].astype(np.float64))
        y = lambda a, k: torch.from_numpy(a[s][:k].astype(np.int64))
        return t(D["train_x"], n), y(D["train_y"], n), t(D["val_x"], nv), y(D["val_y"], nv)

    def evograd(self, s, theta, lam, x, y, xv, yv):
        evo = self.job["evograd"]
        sigma, tau = float(np.float32(evo["sigma"])), float(np.float32(evo["tau"]))
        r = torch.from_numpy(self.data["noise"][s].astype(np.float64))  # (K, P)
        losses, dls = [], []
        for k in range(r.shape[0]):
            lam_k = lam.clone().requires_grad_(True)
            lk = self.loss(theta + sigma * r[k], self.train_input(x, lam_k), y)
            dls.append(torch.autograd.grad(lk, lam_k)[0].reshape(1))
            losses.append(float(lk))
        losses = torch.tensor(losses, dtype=torch.float64)
        w = torch.softmax(-losses / tau, 0)
        star = (theta + sigma * (w @ r)).requires_grad_(True)
        lv = self.loss(star, xv, yv)
        g = torch.autograd.grad(lv, star)[0]
        dots = r @ g
        seeds = -(sigma / tau) * w * (dots - w @ dots)
        hyper = sum(seeds[k] * dls[k] for k in range(len(dls)))
        return {"losses": losses.numpy(), "w": w.numpy(), "dl": torch.stack(dls).numpy(),
                "val_loss": float(lv), "hyper": hyper.detach().numpy()}

    def dlambda(self, theta, lam, x, y):
        lam = lam.clone().requires_grad_(True)
        return torch.autograd.grad(self.loss(theta, self.train_input(x, lam), y), lam)[0]

    def t1t2(self, s, theta, lam, x, y, xv, yv):
        alpha = float(self.data["base_lr"][s][0])
        lam_g = lam.clone().requires_grad_(True)
        th = theta.clone().requires_grad_(True)
        lt = self.loss(th, self.train_input(x, lam_g), y)
        gth = torch.autograd.grad(lt, th, create_graph=True)[0]
        ahead = (theta - alpha * gth.detach()).requires_grad_(True)
        lv = self.loss(ahead, xv, yv)
        v = torch.autograd.grad(lv, ahead)[0]
        exact = -alpha * torch.autograd.grad(gth @ v, lam_g)[0]
        eps = 0.01 / float(v.norm())
        central = -alpha * (self.dlambda(theta + eps * v, lam, x, y) -
                            self.dlambda(theta - eps * v, lam, x, y)) / (2 * eps)
        return {"t1t2_loss": float(lt), "val_loss": float(lv),
                "hyper": central.reshape(1).numpy(), "hyper_exact": exact.reshape(1).numpy()}

    def meta_opt(self, lam0):
        cfg = self.job["meta_optimizer"]
        p = torch.nn.Parameter(torch.tensor(lam0, dtype=torch.float64))
        if cfg["kind"] == "adam":
            opt = torch.optim.Adam([p], lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]),
                                   eps=cfg["eps"], weight_decay=cfg["weight_decay"])
        else:
            opt = torch.optim.SGD([p], lr=cfg["lr"], momentum=cfg["momentum"],
                                  weight_decay=cfg["weight_decay"],
                                  nesterov=bool(cfg["nesterov"]))
        return p, opt

    def check_record(self, s, out, x, y, note):
        """The step record against independent computations of its figures."""
        D = self.data
        rec = D["record"][s]
        after = torch.from_numpy(D["lambda_after"][s].astype(np.float64))
        theta = torch.from_numpy(D["theta"][s].astype(np.float64))
        with torch.no_grad():
            base = float(self.loss(theta, self.train_input(x, after.reshape(())), y))
        note("record.train_loss", rel(rec[0], base), s)
        note("record.meta_loss", rel(rec[1], out["val_loss"]), s)
        note("record.hyper_norm", rel(rec[2], np.linalg.norm(D["hyper"][s].astype(np.float64))), s)
        note("record.lambda", rel(rec[3:5], [np.linalg.norm(after.numpy()), after[0]]), s)
        if "w" in out:
            note("record.w", rel(D["record_w"][s], out["w"]), s)

    @staticmethod
    def report_agreement(agree):
        """EvoGrad's hypergradient against T1−T2's: sign agreement and the
        correlation, over all steps and per 50-step window."""
        a = np.array(agree)
        both = np.sign(a[:, 2]) == np.sign(a[:, 3])
        corr = lambda e, t: float(np.corrcoef(e, t)[0, 1]) if len(e) > 2 else float("nan")
        print("t1t2: step window   lambda_deg   sign agreement   correlation   "
              "mean evograd   mean t1t2")
        for w0 in range(0, len(a), 50):
            w = a[w0:w0 + 50]
            print("t1t2: %5d-%-5d  %+8.2f      %5.1f%%          %+.3f        %+.3e    %+.3e" % (
                w[0, 0], w[-1, 0], np.degrees(w[-1, 1]), 100 * both[w0:w0 + 50].mean(),
                corr(w[:, 2], w[:, 3]), w[:, 2].mean(), w[:, 3].mean()))
        print("t1t2: all steps: EvoGrad and T1-T2 agree in sign at %.1f%%, correlation %+.3f"
              % (100 * both.mean(), corr(a[:, 2], a[:, 3])))

    def run(self, every, table, t1t2=False):
        D, steps = self.data, self.meta["steps"]
        p, opt = self.meta_opt(D["lambda"][0])       # from the engine's λ each step
        q, opt_free = self.meta_opt(D["lambda"][0])  # the replay's own trajectory
        errors, agree = {}, []

        def note(what, err, s):
            errors.setdefault(what, []).append((err, s))

        if table:
            print("step  lambda_deg  replay_deg  hyper_engine   hyper_replay   rel_err    "
                  "w_engine            val_loss")
        for s in range(0, steps, every):
            theta = torch.from_numpy(D["theta"][s].astype(np.float64))
            lam = torch.from_numpy(D["lambda"][s].astype(np.float64)).reshape(())
            x, y, xv, yv = self.batches(s)
            out = (self.evograd if self.method == "evograd" else self.t1t2)(
                s, theta, lam, x, y, xv, yv)
            for key, val in out.items():
                note(key, rel(D[key if key != "hyper_exact" else "hyper"][s], val), s)
            hyper = torch.from_numpy(out["hyper"].astype(np.float64))
            with torch.no_grad():
                p.copy_(torch.from_numpy(D["lambda"][s].astype(np.float64)))
            p.grad = torch.from_numpy(D["hyper"][s].astype(np.float64))
            opt.step()
            if every == 1:  # Adam's moments need every step
                note("lambda_after",
                     float(np.max(np.abs(p.detach().numpy() - D["lambda_after"][s]))), s)
            self.check_record(s, out, x, y, note)
            if t1t2 and self.method == "evograd":
                ref = self.t1t2(s, theta, lam, x, y, xv, yv)["hyper"][0]
                agree.append((s, float(D["lambda"][s][0]), float(D["hyper"][s][0]), ref))
            if every == 1:
                q.grad = hyper.clone()
                opt_free.step()
            if table:
                deg = 180 / np.pi
                wtxt = " ".join("%.6f" % v for v in D["w"][s]) if "w" in D else "-"
                print("%4d  %10.4f  %10.4f  %+.6e  %+.6e  %.2e  %-18s  %.6f" % (
                    s, D["lambda"][s][0] * deg, float(q[0]) * deg, D["hyper"][s][0],
                    out["hyper"][0], rel(D["hyper"][s], out["hyper"]), wtxt, D["val_loss"][s][0]))
        if agree:
            self.report_agreement(agree)
        if every == 1:
            note("lambda_free", float(np.max(np.abs(q.detach().numpy() - D["lambda_after"][-1]))),
                 steps - 1)
        return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--every", type=int, default=1, help="replay every Nth step")
    ap.add_argument("--t1t2", action="store_true",
                    help="compare an EvoGrad trace's hypergradients with T1-T2's")
    ap.add_argument("--tol-loss", type=float, default=1e-5,
                    help="relative, for the losses, weights and dl")
    ap.add_argument("--tol-hyper", type=float, default=1e-4, help="relative")
    ap.add_argument("--tol-lambda", type=float, default=1e-6,
                    help="absolute, for λ after one step (radians)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    errors = Replay(a.dir).run(a.every, a.table, a.t1t2)
    tol = {"hyper": a.tol_hyper, "lambda_after": a.tol_lambda, "lambda_free": None,
           "hyper_exact": None, "record.hyper_norm": 1e-6, "record.lambda": 1e-6}
    bad = 0
    for what, errs in sorted(errors.items()):
        limit = tol.get(what, a.tol_loss)
        e = [e for e, _ in errs]
        median, p90 = float(np.median(e)), float(np.percentile(e, 90))
        err, s = max(errs)
        ok = limit is None or (median <= limit and p90 <= 100 * limit)
        bad += not ok
        print("replay: %-18s median %.2e  90%% %.2e  largest %.2e at step %d%s" % (
            what, median, p90, err, s, "" if limit is None else "  (limit %.0e)%s" % (
                limit, "" if ok else "  FAILED")))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
