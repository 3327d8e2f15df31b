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
import torch.nn as nn
import torch.nn.functional as F

MARGIN = 1e-6
margins = []


def relu(x):
    margins.append(float(x.detach().abs().min()))
    return F.relu(x)


def max_pool2d(x, k):
    win = x.detach().unfold(2, k, k).unfold(3, k, k).flatten(-2)
    top = win.topk(2, dim=-1).values
    gap = top[..., 0] - top[..., 1]
    # Windows whose maximum is a ReLU zero pass no gradient either way.
    gap = gap[top[..., 0] > 0]
    if gap.numel():
        margins.append(float(gap.min()))
    return F.max_pool2d(x, k)


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

    def forward(self, x):
        out = relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


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
