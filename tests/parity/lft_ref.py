"""PyTorch reference for the LFT parity test (tests/unit/test_parity_lft.c).

lft_ref.py DIR DEPTH WIDTH C SIZE SMALL_STEM N_WAY SHOT QUERY

Reads from DIR what the C test wrote: manifest.txt (one "KIND NAME COUNT"
line per slice in arena order, KIND one of params, state, meta for the
backbone and rparams for the relation module), theta.f32, state.f32,
meta.f32, noise.f32 (the FT noise, laid out as meta), rtheta.f32, x.f32
(n_way (shot + query) images, class-major), w.f32 (the projection of the
relation scores) and w2.f32 (the projection of the evaluation-mode
features).

Builds LFT's ResNet (SimpleBlocks, 1x1 projection shortcuts, FT after the
second BN of each block and after each shortcut's BN) and RelationNet's
relation module in float64 with the engine's slice names, then:

  train: features in training mode with FT, prototypes, pairs, scores,
         loss = sum w * scores; backward to the backbone's parameters, its
         meta-parameters (gamma, beta), the relation module's parameters
         and the input; the running statistics after the forward.
  eval:  features in evaluation mode (running statistics, no FT) from the
         statistics the training forward left, loss = sum w2 * features;
         backward to the parameters and the input.

Writes feats, scores, dtheta, dmeta, drtheta, dx, state_after, eval_feats,
eval_dtheta, eval_dx (.f32, arena order). Exits 10 when a ReLU input or a
max-pool window's top-two gap lies within MARGIN of its kink (the C test
then draws another input), 77 when torch is missing.
"""
import sys

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print("lft_ref: %s" % e)
    raise SystemExit(77)

MARGIN = 1e-6
margins = []
BLOCKS = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


def relu(x):
    margins.append(float(x.detach().abs().min()))
    return F.relu(x)


def max_pool(x, k, s, p):
    xp = F.pad(x.detach(), (p, p, p, p), value=float("-inf")) if p else x.detach()
    win = xp.unfold(2, k, s).unfold(3, k, s).flatten(-2)
    top = win.topk(2, dim=-1).values
    gap = (top[..., 0] - top[..., 1])[top[..., 0] > 0]
    if gap.numel():
        margins.append(float(gap.min()))
    return F.max_pool2d(x, k, s, p)


class BN(nn.BatchNorm2d):
    """BatchNorm2d, optionally followed by LFT's feature-wise transformation
    with given noise: gamma = 1 + e_g softplus(theta_g, beta 100), beta = e_b
    softplus(theta_b, beta 100), y = gamma bn(x) + beta."""

    def __init__(self, c, ft=False, track=True):
        super().__init__(c, track_running_stats=track)
        self.ft = ft
        if ft:
            self.gamma = nn.Parameter(torch.full((c,), 0.3))
            self.beta = nn.Parameter(torch.full((c,), 0.5))
            self.noise = None  # (2c): e_g then e_b
        self.ft_on = False

    def forward(self, x):
        out = super().forward(x)
        if self.ft and self.ft_on:
            c = self.num_features
            g = 1 + self.noise[:c] * F.softplus(self.gamma, beta=100)
            b = self.noise[c:] * F.softplus(self.beta, beta=100)
            out = g.view(1, c, 1, 1) * out + b.view(1, c, 1, 1)
        return out


class SimpleBlock(nn.Module):
    def __init__(self, indim, outdim, half_res, ft):
        super().__init__()
        s = 2 if half_res else 1
        self.C1 = nn.Conv2d(indim, outdim, 3, s, 1, bias=False)
        self.BN1 = BN(outdim)
        self.C2 = nn.Conv2d(outdim, outdim, 3, 1, 1, bias=False)
        self.BN2 = BN(outdim, ft)
        self.proj = indim != outdim
        if self.proj:
            self.shortcut = nn.Conv2d(indim, outdim, 1, s, bias=False)
            self.BNshortcut = BN(outdim, ft)

    def forward(self, x):
        out = self.BN2(self.C2(relu(self.BN1(self.C1(x)))))
        short = self.BNshortcut(self.shortcut(x)) if self.proj else x
        return relu(out + short)


class Stem(nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.pool = pool

    def forward(self, x):
        return max_pool(x, 3, 2, 1) if self.pool else x


class ReLU(nn.Module):
    def forward(self, x):
        return relu(x)


def resnet(depth, width, c, small_stem, ft):
    if small_stem:
        trunk = [nn.Conv2d(c, width, 3, 1, 1, bias=False), BN(width), ReLU()]
    else:
        trunk = [nn.Conv2d(c, width, 7, 2, 3, bias=False), BN(width), ReLU(), Stem(True)]
    indim = width
    for stage, n in enumerate(BLOCKS[depth]):
        for b in range(n):
            outdim = width << stage
            trunk.append(SimpleBlock(indim, outdim, stage >= 1 and b == 0, ft))
            indim = outdim
    net = nn.Module()
    net.trunk = nn.Sequential(*trunk)
    return net


class RelationBlock(nn.Module):
    def __init__(self, indim, outdim, padding):
        super().__init__()
        self.C = nn.Conv2d(indim, outdim, 3, padding=padding)
        self.BN = BN(outdim, track=False)

    def forward(self, x):
        return max_pool(relu(self.BN(self.C(x))), 2, 2, 0)


class Relation(nn.Module):
    def __init__(self, c, h, w):
        super().__init__()
        p = 1 if h < 10 and w < 10 else 0
        self.layer1 = RelationBlock(2 * c, c, p)
        self.layer2 = RelationBlock(c, c, p)

        def shrink(s):
            return ((s - 2 + 2 * p) // 2 - 2 + 2 * p) // 2
        self.fc1 = nn.Linear(c * shrink(h) * shrink(w), 8)
        self.fc2 = nn.Linear(8, 1)

    def forward(self, x):
        out = self.layer2(self.layer1(x)).flatten(1)
        return self.fc2(relu(self.fc1(out)))


def load(module, kinds, files, manifest):
    """Copies the arenas into the module's tensors; returns the slice names
    per kind, in arena order."""
    tensors = dict(module.named_parameters())
    tensors.update({k: v for k, v in module.named_buffers() if "running" in k})
    offsets = {k: 0 for k in kinds}
    order = {k: [] for k in kinds}
    with torch.no_grad():
        for kind, name, count in manifest:
            if kind not in kinds:
                continue
            count = int(count)
            t = tensors.pop(name)
            assert t.numel() == count, (name, t.numel(), count)
            o = offsets[kind]
            t.copy_(torch.from_numpy(files[kind][o:o + count].astype(np.float64)).view_as(t))
            offsets[kind] = o + count
            order[kind].append(name)
    assert not tensors, "not in the manifest: %s" % list(tensors)
    return order


def main():
    d = sys.argv[1]
    depth, width, c, size, small, n_way, shot, query = map(int, sys.argv[2:10])
    torch.set_default_dtype(torch.float64)
    rd = lambda n: np.fromfile("%s/%s.f32" % (d, n), dtype=np.float32)
    manifest = [line.split() for line in open(d + "/manifest.txt")]
    net = resnet(depth, width, c, small, True)
    order = load(net, ("params", "state", "meta"),
                 {"params": rd("theta"), "state": rd("state"), "meta": rd("meta")}, manifest)
    noise = torch.from_numpy(rd("noise").astype(np.float64))
    o = 0
    fts = [m for m in net.modules() if isinstance(m, BN) and m.ft]
    assert len(fts) * 2 == len(order["meta"])
    for m in fts:  # modules in registration order = the engine's layer order
        m.noise = noise[o:o + 2 * m.num_features]
        o += 2 * m.num_features
    n = n_way * (shot + query)
    x = torch.from_numpy(rd("x").astype(np.float64)).view(n, c, size, size)
    x.requires_grad_(True)

    # Training mode with FT.
    net.train()
    for m in fts:
        m.ft_on = True
    feats = net.trunk(x)
    fc, fh, fw = feats.shape[1:]
    rel = Relation(fc, fh, fw)
    rorder = load(rel, ("rparams",), {"rparams": rd("rtheta")}, manifest)
    rel.train()
    per = feats.view(n_way, shot + query, fc, fh, fw)
    protos = per[:, :shot].mean(1)
    queries = per[:, shot:].reshape(n_way * query, fc, fh, fw)
    pairs = torch.cat((protos.unsqueeze(0).expand(n_way * query, -1, -1, -1, -1),
                       queries.unsqueeze(1).expand(-1, n_way, -1, -1, -1)), 2)
    scores = rel(pairs.reshape(-1, 2 * fc, fh, fw)).view(-1, n_way)
    w = torch.from_numpy(rd("w").astype(np.float64)).view_as(scores)
    loss = (w * scores).sum()
    if min(margins) < MARGIN:
        print("lft_ref: a ReLU or max-pool input lies %.1e from its kink" % min(margins))
        raise SystemExit(10)
    loss.backward()
    params = dict(net.named_parameters())
    buffers = dict(net.named_buffers())
    rparams = dict(rel.named_parameters())
    cat = lambda ts: np.concatenate([t.detach().numpy().ravel() for t in ts])
    out = {
        "feats": feats.detach().numpy(), "scores": scores.detach().numpy(),
        "dtheta": cat(params[k].grad for k in order["params"]),
        "dmeta": cat(params[k].grad for k in order["meta"]),
        "drtheta": cat(rparams[k].grad for k in rorder["rparams"]),
        "dx": x.grad.numpy(),
        "state_after": cat(buffers[k] for k in order["state"]),
    }

    # Evaluation mode (running statistics, FT off) from the updated state.
    for p in list(params.values()) + [x]:
        p.grad = None
    net.eval()
    for m in fts:
        m.ft_on = False
    margins.clear()
    ef = net.trunk(x)
    w2 = torch.from_numpy(rd("w2").astype(np.float64)).view_as(ef)
    (w2 * ef).sum().backward()
    if min(margins) < MARGIN:
        print("lft_ref: an evaluation-mode ReLU or max-pool input lies %.1e from its kink"
              % min(margins))
        raise SystemExit(10)
    out["eval_feats"] = ef.detach().numpy()
    out["eval_dtheta"] = cat(params[k].grad for k in order["params"])
    out["eval_dx"] = x.grad.numpy()
    for k, v in out.items():
        np.ascontiguousarray(v, dtype=np.float32).tofile("%s/%s.f32" % (d, k))


if __name__ == "__main__":
    main()
