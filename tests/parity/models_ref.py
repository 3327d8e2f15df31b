"""PyTorch reference for the whole-model parity test.

models_ref.py DIR MODEL BATCH C H W CLASSES WIDTH

Reads from DIR what the C test wrote: manifest.txt (one "params|state NAME
COUNT" line per slice, in arena order), theta.f32, state.f32, x.f32 and
labels.i32. Builds the same model in PyTorch (in float64, so the reference carries no
float32 rounding of its own) with the same parameter names,
runs one training-mode forward, mean cross-entropy and backward, then an
evaluation-mode forward, and writes logits.f32, loss.f32, dtheta.f32 (arena
order), dx.f32, state_after.f32 and eval_logits.f32.

Where a ReLU input or the gap between the two largest values of a max-pool
window lies within MARGIN of zero, float32 and float64 may legitimately
take different branches; the script then exits with status 10 so the test
draws another input instead of comparing across a kink.
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

import torch_models
from torch_models import LeNet, ResNet

MARGIN = 1e-6
margins = []


def recording_relu(x):
    margins.append(float(x.detach().abs().min()))
    return F.relu(x)


def recording_max_pool2d(x, k):
    win = x.detach().unfold(2, k, k).unfold(3, k, k).flatten(-2)
    top = win.topk(2, dim=-1).values
    gap = top[..., 0] - top[..., 1]
    # Windows whose maximum is a ReLU zero pass no gradient either way.
    gap = gap[top[..., 0] > 0]
    if gap.numel():
        margins.append(float(gap.min()))
    return F.max_pool2d(x, k)


torch_models.relu = recording_relu
torch_models.max_pool2d = recording_max_pool2d


def main():
    d, model = sys.argv[1], sys.argv[2]
    batch, c, h, w, classes, width = map(int, sys.argv[3:9])
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)
    if model == "lenet":
        net = LeNet(c, h, w, classes)
    elif model.startswith("resnet"):
        net = ResNet(int(model[6:]), width, c, classes)
    else:
        raise SystemExit("unknown model " + model)
    manifest = [line.split() for line in open(d + "/manifest.txt")]
    theta = np.fromfile(d + "/theta.f32", dtype=np.float32)
    state = np.fromfile(d + "/state.f32", dtype=np.float32)
    tensors = dict(net.named_parameters())
    tensors.update({k: v for k, v in net.named_buffers() if "running" in k})
    offsets = {"params": 0, "state": 0}
    order = []
    with torch.no_grad():
        for kind, name, count in manifest:
            count = int(count)
            src = theta if kind == "params" else state
            t = tensors.pop(name)
            assert t.numel() == count, (name, t.numel(), count)
            o = offsets[kind]
            t.copy_(torch.from_numpy(src[o:o + count].astype(np.float64)).view_as(t))
            offsets[kind] = o + count
            order.append((kind, name))
    assert not tensors, "not in the manifest: %s" % list(tensors)

    x = torch.from_numpy(np.fromfile(d + "/x.f32", dtype=np.float32).astype(np.float64))
    x = x.view(batch, c, h, w).clone().requires_grad_(True)
    labels = torch.from_numpy(np.fromfile(d + "/labels.i32", dtype=np.int32)).long()
    net.train()
    logits = net(x)
    loss = F.cross_entropy(logits, labels)
    if min(margins) < MARGIN:
        print("models_ref: a ReLU or max-pool input lies %.1e from its kink" % min(margins))
        raise SystemExit(10)
    loss.backward()
    params = dict(net.named_parameters())
    buffers = dict(net.named_buffers())
    dtheta = np.concatenate([params[n].grad.detach().numpy().ravel()
                             for k, n in order if k == "params"])
    state_after = np.concatenate([buffers[n].detach().numpy().ravel()
                                  for k, n in order if k == "state"]) \
        if any(k == "state" for k, _ in order) else np.zeros(0, np.float32)
    net.eval()
    with torch.no_grad():
        eval_logits = net(x)
    out = {
        "logits": logits.detach().numpy(), "loss": loss.detach().numpy().reshape(1),
        "dtheta": dtheta, "dx": x.grad.numpy(), "state_after": state_after,
        "eval_logits": eval_logits.numpy(),
    }
    for k, v in out.items():
        np.ascontiguousarray(v, dtype=np.float32).tofile("%s/%s.f32" % (d, k))


if __name__ == "__main__":
    main()
