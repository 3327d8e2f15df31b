"""PyTorch counterpart of tests/bench/bench_encoder.c: one training step of
a RoBERTa-shaped token classifier (word + position + token-type
embeddings, LayerNorm, dropout; post-LayerNorm transformer layers as
nn.TransformerEncoderLayer(norm_first=False, activation="gelu") builds
them, with a key padding mask; dropout and a linear token classifier),
token cross-entropy with ignore_index -100, backward and Adam (lr 3e-5,
weight decay 5e-4), on random full-length sequences. Prints one JSON line:
median step time, tokens per second and peak memory (CUDA:
max_memory_allocated; CPU: the growth of the peak resident set over the
timed steps, so parameters and optimiser state allocated before are not
in it).

    bench_torch_encoder.py [--device cpu|cuda] [--d N] [--layers N] [--heads N]
                           [--ff N] [--batch N] [--len N] [--steps N] [--threads N]
"""
import argparse
import json
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print("bench_torch_encoder: %s" % e, file=sys.stderr)
    raise SystemExit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import reset_peak_rss, status_bytes  # noqa: E402

VOCAB, LABELS, PAD = 30000, 9, 1


class TokenClassifier(nn.Module):
    def __init__(self, d, layers, heads, ff, max_pos):
        super().__init__()
        self.word = nn.Embedding(VOCAB, d, padding_idx=PAD)
        self.pos = nn.Embedding(max_pos, d, padding_idx=PAD)
        self.token_type = nn.Embedding(1, d)
        self.ln = nn.LayerNorm(d, eps=1e-5)
        self.drop = nn.Dropout(0.1)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.1, activation="gelu",
                                           layer_norm_eps=1e-5, batch_first=True,
                                           norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.cls = nn.Linear(d, LABELS)

    def forward(self, ids, pos, pad_mask):
        x = self.word(ids) + self.pos(pos) + self.token_type(torch.zeros_like(ids))
        x = self.drop(self.ln(x))
        x = self.encoder(x, src_key_padding_mask=pad_mask)
        return self.cls(self.drop(x))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    for k, v in (("d", 256), ("layers", 4), ("heads", 4), ("ff", 1024), ("batch", 8),
                 ("len", 128), ("steps", 3), ("threads", os.cpu_count())):
        p.add_argument("--" + k, type=int, default=v)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = TokenClassifier(a.d, a.layers, a.heads, a.ff, a.len + 2).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=3e-5, weight_decay=5e-4)
    ids = torch.randint(4, VOCAB - 1, (a.batch, a.len), device=dev)
    ids[:, 0], ids[:, -1] = 0, 2
    pos = (torch.arange(a.len, device=dev) + PAD + 1).expand(a.batch, a.len)
    labels = torch.randint(0, LABELS, (a.batch, a.len), device=dev)
    labels[:, 0] = labels[:, -1] = -100
    pad_mask = torch.zeros(a.batch, a.len, dtype=torch.bool, device=dev)
    model.train()

    def step():
        opt.zero_grad(set_to_none=False)
        logits = model(ids, pos, pad_mask)
        loss = F.cross_entropy(logits.reshape(-1, LABELS), labels.reshape(-1), ignore_index=-100)
        loss.backward()
        opt.step()

    step()  # warm-up; creates Adam's state
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss0 = status_bytes("VmRSS")
    reset_peak_rss()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    med = times[len(times) // 2]
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else 0
    rss = max(0, status_bytes("VmHWM") - rss0) if dev.type != "cuda" else 0
    print(json.dumps({"impl": "pytorch", "device": a.device, "d": a.d, "layers": a.layers,
                      "heads": a.heads, "ff": a.ff, "batch": a.batch, "len": a.len,
                      "steps": a.steps, "median_ms": med, "mean_ms": sum(times) / len(times),
                      "tokens_per_s": 1000.0 * a.batch * a.len / med, "peak_bytes": peak,
                      "rss_delta_bytes": rss,
                      "params": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
