"""Reference for tests/unit/test_optim.c: runs torch.optim.SGD or Adam (with
an optional MultiStepLR stepped after every optimiser step) in float32 on
the data the test wrote, and writes the results back.

Reads  DIR/theta0.f32 (n) and DIR/grads.f32 (steps, n), raw float32.
Writes DIR/theta.f32 (n) and the optimiser state: DIR/m.f32 (SGD momentum
buffer or Adam exp_avg) and DIR/v.f32 (Adam exp_avg_sq) where it exists.

Exit status 3 when torch cannot be imported, 2 on bad arguments."""
import argparse
import os
import sys

try:
    import numpy as np
    import torch
except ImportError as e:
    print("optim_ref.py: cannot import torch/numpy with %s: %s"
          % (sys.executable, e), file=sys.stderr)
    sys.exit(3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--kind", choices=["sgd", "adam"], required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--nesterov", type=int, default=0)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.999)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--milestones", default="")
    ap.add_argument("--gamma", type=float, default=0.1)
    a = ap.parse_args()

    torch.set_num_threads(1)
    path = lambda name: os.path.join(a.dir, name)
    theta0 = np.fromfile(path("theta0.f32"), dtype=np.float32)
    grads = np.fromfile(path("grads.f32"), dtype=np.float32)
    if theta0.size != a.n or grads.size != a.n * a.steps:
        print("optim_ref.py: expected %d and %d floats, got %d and %d"
              % (a.n, a.n * a.steps, theta0.size, grads.size), file=sys.stderr)
        return 2
    grads = grads.reshape(a.steps, a.n)

    p = torch.nn.Parameter(torch.from_numpy(theta0.copy()))
    if a.kind == "sgd":
        opt = torch.optim.SGD([p], lr=a.lr, momentum=a.momentum,
                              weight_decay=a.weight_decay,
                              nesterov=bool(a.nesterov))
    else:
        opt = torch.optim.Adam([p], lr=a.lr, betas=(a.beta1, a.beta2),
                               eps=a.eps, weight_decay=a.weight_decay)
    milestones = [int(x) for x in a.milestones.split(",") if x]
    sched = (torch.optim.lr_scheduler.MultiStepLR(opt, milestones, a.gamma)
             if milestones else None)

    for s in range(a.steps):
        p.grad = torch.from_numpy(grads[s].copy())
        opt.step()
        if sched is not None:
            sched.step()

    p.detach().numpy().astype(np.float32).tofile(path("theta.f32"))
    state = opt.state[p]
    m = state.get("momentum_buffer", state.get("exp_avg"))
    if m is not None:
        m.numpy().astype(np.float32).tofile(path("m.f32"))
    if "exp_avg_sq" in state:
        state["exp_avg_sq"].numpy().astype(np.float32).tofile(path("v.f32"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
