"""PyTorch reference for the rotation op (tests/unit/test_rotate.c).

usage: rotate_ref.py DIR N C H W

Reads float32 files from DIR: x.f32 (N, C, H, W), dy.f32 (N, C, H, W),
angle.f32 (1). Computes, in float64,
    theta = [[cos a, -sin a, 0], [sin a, cos a, 0]]
    y = grid_sample(x, affine_grid(theta, x.shape, align_corners=False),
                    bilinear, zeros padding, align_corners=False)
and the gradients of sum(dy * y) w.r.t. x and a by autograd, and writes
y.f32, dx.f32 (N, C, H, W) and dangle.f32 (1) as float32.
"""
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    sys.exit("rotate_ref.py: needs numpy and torch in %s: %s" % (sys.executable, e))


def load(path, shape):
    a = np.fromfile(path, dtype=np.float32)
    if a.size != int(np.prod(shape)):
        sys.exit("rotate_ref.py: %s holds %d floats, expected %s" % (path, a.size, shape))
    return torch.from_numpy(a.reshape(shape).astype(np.float64))


def save(path, t):
    t.detach().numpy().astype(np.float32).tofile(path)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    d = sys.argv[1]
    n, c, h, w = (int(v) for v in sys.argv[2:6])
    shape = (n, c, h, w)
    x = load(os.path.join(d, "x.f32"), shape).requires_grad_(True)
    dy = load(os.path.join(d, "dy.f32"), shape)
    a = load(os.path.join(d, "angle.f32"), (1,)).reshape(()).requires_grad_(True)

    zero = torch.zeros((), dtype=torch.float64)
    theta = torch.stack([
        torch.stack([torch.cos(a), -torch.sin(a), zero]),
        torch.stack([torch.sin(a), torch.cos(a), zero]),
    ]).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(shape), align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                      align_corners=False)
    (y * dy).sum().backward()

    save(os.path.join(d, "y.f32"), y)
    save(os.path.join(d, "dx.f32"), x.grad)
    save(os.path.join(d, "dangle.f32"), a.grad.reshape(1))


if __name__ == "__main__":
    main()
