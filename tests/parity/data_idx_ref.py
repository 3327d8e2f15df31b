"""Independent numpy reader of the installed Fashion-MNIST, for
tests/unit/test_data.c.

usage: data_idx_ref.py DATASET_DIR OUT_DIR

Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz with gzip and numpy,
scales pixels as float32(byte) / float32(255), and writes OUT_DIR/ref.f32
(float32): the mean and population std of all training pixels (in float64),
training images 0 and 59999 and test image 9999 (784 each), and the first
100 training labels.
"""
import gzip
import os
import sys

try:
    import numpy as np
except ImportError as e:
    sys.exit("data_idx_ref.py: needs numpy in %s: %s" % (sys.executable, e))


def read_idx(path, magic, ndim):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    head = np.frombuffer(raw[: 4 + 4 * ndim], dtype=">u4")
    if head[0] != magic:
        sys.exit("data_idx_ref.py: %s: bad magic 0x%08x" % (path, head[0]))
    dims = [int(v) for v in head[1:]]
    data = np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8)
    if data.size != int(np.prod(dims)):
        sys.exit("data_idx_ref.py: %s: %d bytes, expected %s" % (path, data.size, dims))
    return data.reshape(dims)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    train = read_idx(os.path.join(src, "train-images-idx3-ubyte.gz"), 0x803, 3)
    test = read_idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"), 0x803, 3)
    labels = read_idx(os.path.join(src, "train-labels-idx1-ubyte.gz"), 0x801, 1)
    x = train.astype(np.float32) / np.float32(255.0)
    t = test.astype(np.float32) / np.float32(255.0)
    xd = x.astype(np.float64)
    mean = xd.mean()
    std = np.sqrt(((xd - mean) ** 2).mean())
    ref = np.concatenate([
        np.array([mean, std], dtype=np.float32),
        x[0].ravel(), x[59999].ravel(), t[9999].ravel(),
        labels[:100].astype(np.float32),
    ]).astype(np.float32)
    ref.tofile(os.path.join(out, "ref.f32"))


if __name__ == "__main__":
    main()
