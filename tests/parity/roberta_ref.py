"""PyTorch reference for the encoder parity test (tests/unit/test_parity_encoder.c).

roberta_ref.py make DIR DTYPE SEED LABELS [VOCAB MAX_POS]
    Writes a tiny random XLM-R-shaped checkpoint into DIR as Hugging Face
    lays it out: config.json and model.safetensors (written directly: an
    8-byte header length, the JSON header, the raw little-endian data) with
    RoBERTa's tensor names under the "roberta." prefix and a token
    classifier of LABELS outputs; DTYPE is F32, F16 or BF16; VOCAB (40)
    and MAX_POS (20) size the embedding tables.

roberta_ref.py text DIR MAX_LEN
    Tokenises DIR/sentences.json ({"words": [[...]], "labels": [[...]]})
    with DIR/sentencepiece.bpe.model as Hugging Face's NER example does
    with XLM-R (each word alone; fairseq ids: SentencePiece id + 1, its
    unknown 0 -> 3; <s> 0, </s> 2, pad 1; the first piece of a word gets
    its label, the others -100; a word with no pieces dropped; pieces cut
    at MAX_LEN - 2), checks that DIR/batch.json holds the same ids and
    labels (exit 3 naming the first difference), then runs `ref`.

roberta_ref.py spm DIR TEXT PIECES
    Trains a SentencePiece BPE model of PIECES pieces on the text file TEXT
    into DIR/sentencepiece.bpe.model, as XLM-R's checkpoints ship it.

roberta_ref.py ref DIR
    Reads the checkpoint and DIR/batch.json ({"ids": [[...], ...],
    "labels": [[...], ...]}, padded with pad_token_id, labels -100 where
    ignored), runs RoBERTa's token-classification forward in float64 in
    evaluation mode (RobertaModel + classifier: position ids from
    padding_idx + 1, the additive attention mask, post-LayerNorm layers,
    erf GELU), the cross-entropy with ignore_index -100, and its backward.
    Writes DIR/ref.safetensors (F32): "logits" (tokens, labels), "loss"
    (1) and the gradient of every checkpoint tensor under its own name.

Exits 77 when torch is missing.
"""
import json
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print("roberta_ref: %s" % e)
    raise SystemExit(77)

CONFIG = {
    "model_type": "xlm-roberta",
    "architectures": ["XLMRobertaForTokenClassification"],
    "vocab_size": 40,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 24,
    "max_position_embeddings": 20,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
}


def write_safetensors(path, tensors, dtype):
    """tensors: name -> float64 numpy array; stored as dtype."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float32)
        if dtype == "F32":
            raw = a.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = a.astype("<f2").tobytes()
        else:  # BF16: round to nearest even from float32
            u = a.view(np.uint32).astype(np.uint64)
            u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
            raw = u.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base, out = 8 + n, {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = data[base + b:base + e]
        if t["dtype"] == "F32":
            a = np.frombuffer(raw, "<f4").astype(np.float64)
        elif t["dtype"] == "F16":
            a = np.frombuffer(raw, "<f2").astype(np.float64)
        elif t["dtype"] == "BF16":
            u = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
            a = u.view(np.float32).astype(np.float64)
        else:
            continue
        out[name] = a.reshape(t["shape"])
    return out


def make(d, dtype, seed, labels, vocab=40, max_pos=20):
    cfg = dict(CONFIG, num_labels=labels, vocab_size=vocab, max_position_embeddings=max_pos)
    rng = np.random.default_rng(seed)
    H, V, P, FF = cfg["hidden_size"], cfg["vocab_size"], cfg["max_position_embeddings"], \
        cfg["intermediate_size"]
    pad = cfg["pad_token_id"]

    def normal(*shape):
        return rng.normal(0.0, 0.3, shape)

    t = {}
    p = "roberta."
    t[p + "embeddings.word_embeddings.weight"] = normal(V, H)
    t[p + "embeddings.word_embeddings.weight"][pad] = 0
    t[p + "embeddings.position_embeddings.weight"] = normal(P, H)
    t[p + "embeddings.position_embeddings.weight"][pad] = 0
    t[p + "embeddings.token_type_embeddings.weight"] = normal(1, H)
    t[p + "embeddings.LayerNorm.weight"] = 1 + 0.2 * normal(H)
    t[p + "embeddings.LayerNorm.bias"] = 0.2 * normal(H)
    for i in range(cfg["num_hidden_layers"]):
        q = p + "encoder.layer.%d." % i
        for k in ("query", "key", "value"):
            t[q + "attention.self.%s.weight" % k] = normal(H, H)
            t[q + "attention.self.%s.bias" % k] = 0.2 * normal(H)
        t[q + "attention.output.dense.weight"] = normal(H, H)
        t[q + "attention.output.dense.bias"] = 0.2 * normal(H)
        t[q + "attention.output.LayerNorm.weight"] = 1 + 0.2 * normal(H)
        t[q + "attention.output.LayerNorm.bias"] = 0.2 * normal(H)
        t[q + "intermediate.dense.weight"] = normal(FF, H)
        t[q + "intermediate.dense.bias"] = 0.2 * normal(FF)
        t[q + "output.dense.weight"] = normal(H, FF)
        t[q + "output.dense.bias"] = 0.2 * normal(H)
        t[q + "output.LayerNorm.weight"] = 1 + 0.2 * normal(H)
        t[q + "output.LayerNorm.bias"] = 0.2 * normal(H)
    t["classifier.weight"] = normal(labels, H)
    t["classifier.bias"] = 0.2 * normal(labels)
    # What Hugging Face checkpoints also hold and the engine ignores.
    t[p + "pooler.dense.weight"] = normal(H, H)
    t[p + "pooler.dense.bias"] = normal(H)
    with open(d + "/config.json", "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(d + "/model.safetensors", t, dtype)


def roberta_logits(w, cfg, ids):
    """RobertaForTokenClassification's forward, evaluation mode."""
    p = "roberta."
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    dh, eps, pad = H // nh, cfg["layer_norm_eps"], cfg["pad_token_id"]
    mask = (ids != pad).long()
    pos = torch.cumsum(mask, dim=1) * mask + pad
    x = (w[p + "embeddings.word_embeddings.weight"][ids] +
         w[p + "embeddings.position_embeddings.weight"][pos] +
         w[p + "embeddings.token_type_embeddings.weight"][torch.zeros_like(ids)])
    x = F.layer_norm(x, (H,), w[p + "embeddings.LayerNorm.weight"],
                     w[p + "embeddings.LayerNorm.bias"], eps)
    B, T = ids.shape
    add_mask = (1.0 - mask[:, None, None, :].double()) * torch.finfo(torch.float64).min
    for i in range(cfg["num_hidden_layers"]):
        q = p + "encoder.layer.%d." % i

        def lin(name, v):
            return F.linear(v, w[q + name + ".weight"], w[q + name + ".bias"])

        def heads(v):
            return v.view(B, T, nh, dh).transpose(1, 2)

        Q, K, Vv = (heads(lin("attention.self." + k, x)) for k in ("query", "key", "value"))
        s = Q @ K.transpose(-1, -2) / dh ** 0.5 + add_mask
        ctx = (torch.softmax(s, dim=-1) @ Vv).transpose(1, 2).reshape(B, T, H)
        x = F.layer_norm(lin("attention.output.dense", ctx) + x, (H,),
                         w[q + "attention.output.LayerNorm.weight"],
                         w[q + "attention.output.LayerNorm.bias"], eps)
        h = F.gelu(lin("intermediate.dense", x))
        x = F.layer_norm(lin("output.dense", h) + x, (H,), w[q + "output.LayerNorm.weight"],
                         w[q + "output.LayerNorm.bias"], eps)
    return F.linear(x, w["classifier.weight"], w["classifier.bias"])


def ref(d):
    cfg = json.load(open(d + "/config.json"))
    batch = json.load(open(d + "/batch.json"))
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for k, v in read_safetensors(d + "/model.safetensors").items()}
    ids = torch.tensor(batch["ids"], dtype=torch.long)
    labels = torch.tensor(batch["labels"], dtype=torch.long)
    logits = roberta_logits(w, cfg, ids)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=-100)
    loss.backward()
    # nn.Embedding(padding_idx=pad) gives its padding row no gradient.
    pad = cfg["pad_token_id"]
    for k in ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"):
        w["roberta." + k].grad[pad] = 0
    out = {"logits": logits.detach().reshape(-1, logits.shape[-1]).numpy(),
           "loss": np.array([loss.item()])}
    for k, v in w.items():
        out[k] = v.grad.numpy() if v.grad is not None else np.zeros(v.shape)
    write_safetensors(d + "/ref.safetensors", out, "F32")


def spm(d, text, pieces):
    try:
        import sentencepiece
    except ImportError as e:
        print("roberta_ref: %s" % e)
        raise SystemExit(77)
    sentencepiece.SentencePieceTrainer.train(
        input=text, model_prefix=d + "/sentencepiece.bpe", vocab_size=pieces, model_type="bpe",
        character_coverage=1.0, minloglevel=2)


def text(d, max_len):
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=d + "/sentencepiece.bpe.model")
    sents = json.load(open(d + "/sentences.json"))
    batch = json.load(open(d + "/batch.json"))
    for b, (words, tags) in enumerate(zip(sents["words"], sents["labels"])):
        ids, labels = [], []
        for w, tag in zip(words, tags):
            pieces = [p + 1 if p else 3 for p in sp.encode(w)]
            if pieces:
                ids += pieces
                labels += [tag] + [-100] * (len(pieces) - 1)
        ids, labels = [0] + ids[:max_len - 2] + [2], [-100] + labels[:max_len - 2] + [-100]
        ids += [1] * (max_len - len(ids))
        labels += [-100] * (max_len - len(labels))
        for name, want, got in (("ids", ids, batch["ids"][b]), ("labels", labels, batch["labels"][b])):
            if want != got:
                print("roberta_ref: sentence %d: %s %s, the engine's %s" % (b, name, want, got))
                raise SystemExit(3)
    ref(d)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:]))
    elif sys.argv[1] == "spm":
        spm(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "text":
        text(sys.argv[2], int(sys.argv[3]))
    else:
        ref(sys.argv[2])
