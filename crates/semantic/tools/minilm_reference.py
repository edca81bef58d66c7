#!/usr/bin/env python3
"""Independent reference for MiniLmEmbedder: all-MiniLM-L6-v2 as a plain numpy BERT.

crates/semantic/tests/minilm.rs pins cosines between MiniLM embeddings. This script computes
the same numbers without candle (and without torch): it reads the same three files, runs
the BERT encoder written out below in float64 numpy, one sentence at a time with no padding
at all, mean-pools over the tokens, L2-normalizes, and prints the cosines. The test's pinned
values are this script's output; the Rust embedder must agree within 1e-3.

Run it (Python 3.9+):

    pip install numpy safetensors tokenizers      # no torch needed
    cargo xtask fetch-models                      # prints: export LEXICACHE_MODEL_DIR=...
    export LEXICACHE_MODEL_DIR=/work/main/target/models
    python3 crates/semantic/tools/minilm_reference.py

or pass the model directory itself (the one holding config.json) as the first argument.
When you change the sentences or pairs here, change them in tests/minilm.rs too.
"""

import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 256

# (name, sentence a, sentence b); names match the constants in tests/minilm.rs.
PAIRS = [
    ("PASSWORD_PARAPHRASE", "How do I reset my password?", "How can I change my password?"),
    ("PASSWORD_RECOVER", "How do I reset my password?", "What's the procedure to recover my account password?"),
    ("CAPITAL_PARAPHRASE", "What is the capital of France?", "Which city is the capital of France?"),
    ("UNRELATED_PIZZA", "How do I reset my password?", "The best pizza toppings in Naples"),
    ("UNRELATED_BATTERY", "What is the capital of France?", "My laptop battery drains too quickly."),
    ("NEGATION", "Can I cancel my subscription?", "Can I not cancel my subscription?"),
]


def model_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    root = os.environ.get("LEXICACHE_MODEL_DIR")
    if not root:
        sys.exit("run `cargo xtask fetch-models` and export LEXICACHE_MODEL_DIR=..., "
                 "or pass the model directory as the first argument")
    return os.path.join(root, "all-MiniLM-L6-v2")


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf)


def gelu(x):
    # The exact (erf) GELU, as BERT's "gelu" activation.
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


class Bert:
    def __init__(self, directory):
        with open(os.path.join(directory, "config.json")) as f:
            self.cfg = json.load(f)
        raw = load_file(os.path.join(directory, "model.safetensors"))
        self.w = {k: v.astype(np.float64) for k, v in raw.items() if v.dtype != np.int64}
        self.tok = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(MAX_TOKENS)

    def linear(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def embed(self, text):
        enc = self.tok.encode(text)
        ids = np.array(enc.ids)
        types = np.array(enc.type_ids)
        c, w, eps = self.cfg, self.w, self.cfg["layer_norm_eps"]
        n = len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][np.arange(n)]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        heads = c["num_attention_heads"]
        hd = c["hidden_size"] // heads
        for i in range(c["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            q = self.linear(x, p + "attention.self.query").reshape(n, heads, hd).transpose(1, 0, 2)
            k = self.linear(x, p + "attention.self.key").reshape(n, heads, hd).transpose(1, 0, 2)
            v = self.linear(x, p + "attention.self.value").reshape(n, heads, hd).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(1, 0, 2).reshape(n, heads * hd)
            x = layer_norm(self.linear(ctx, p + "attention.output.dense") + x,
                           w[p + "attention.output.LayerNorm.weight"],
                           w[p + "attention.output.LayerNorm.bias"], eps)
            h = gelu(self.linear(x, p + "intermediate.dense"))
            x = layer_norm(self.linear(h, p + "output.dense") + x,
                           w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        # No padding here, so mean pooling over the real tokens is a plain mean.
        pooled = x.mean(0)
        return pooled / np.linalg.norm(pooled)


def main():
    bert = Bert(model_dir())
    for name, a, b in PAIRS:
        cos = float(bert.embed(a) @ bert.embed(b))
        print(f"const {name}: f32 = {cos:.6f}; // {a!r} vs {b!r}")
    v = bert.embed("How do I reset my password?")
    print("first 4 components of 'How do I reset my password?':",
          ", ".join(f"{x:.6f}" for x in v[:4]))


if __name__ == "__main__":
    main()
