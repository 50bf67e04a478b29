"""Calibrate int8 activation scales on training sentences and write calibration.json beside the model.

    python -m workloads.calibrate [--sentences 200] [--percentile 99.999]

Each quantization point (the input of every linear layer and the Q, K, V attention operands) gets a per-tensor
symmetric scale = percentile(|x|) / 127 over all tokens of the calibration sentences, run through the fp32
reference. A high percentile instead of the max keeps one outlier token from wasting the int8 range.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from workloads import ner
from workloads import numerics as num
from workloads.model import MODEL_DIR, Model, load_model
from workloads.quantized import CALIBRATION_FILE, calibration_points
from workloads.reference import embed
from workloads.tokenizer import encode_words

F32 = np.float32
CALIBRATION_SEED = 7


def activations(model: Model, input_ids: np.ndarray) -> dict[str, np.ndarray]:
    """The fp32 tensors at every quantization point of one unpadded sentence."""
    cfg, w = model.config, model.weights
    s, a, d = len(input_ids), cfg.heads, cfg.head_dim
    out: dict[str, np.ndarray] = {}
    x = embed(model, input_ids)
    for i in range(cfg.layers):
        p = f"l{i}."
        out[p + "in"] = x
        q, k, v = (x @ w[p + n + ".w"] + w[p + n + ".b"] for n in ("q", "k", "v"))
        out[p + "q_out"], out[p + "k_out"], out[p + "v_out"] = q, k, v
        qh, kh, vh = (t.reshape(s, a, d).transpose(1, 0, 2) for t in (q, k, v))
        probs = num.softmax((qh @ kh.transpose(0, 2, 1)) * F32(1.0 / np.sqrt(d)))
        ctx = (probs @ vh).transpose(1, 0, 2).reshape(s, a * d)
        out[p + "ctx"] = ctx
        x = num.layer_norm(ctx @ w[p + "o.w"] + w[p + "o.b"] + x, w[p + "ln1.g"], w[p + "ln1.b"], cfg.layer_norm_eps)
        out[p + "mid"] = x
        h = num.gelu(x @ w[p + "ffn1.w"] + w[p + "ffn1.b"])
        out[p + "gelu"] = h
        x = num.layer_norm(h @ w[p + "ffn2.w"] + w[p + "ffn2.b"] + x, w[p + "ln2.g"], w[p + "ln2.b"], cfg.layer_norm_eps)
    out["cls.in"] = x
    return out


def calibrate(model: Model, n_sentences: int, percentile: float) -> dict[str, float]:
    corpus = ner.load_corpus()
    train = model.manifest["split"]["train"]  # type: ignore[index]
    chosen = np.random.default_rng(CALIBRATION_SEED).choice(len(train), size=min(n_sentences, len(train)), replace=False)
    samples: dict[str, list[np.ndarray]] = {name: [] for name in calibration_points(model)}
    for j in sorted(chosen.tolist()):
        enc = encode_words(model.tokenizer, corpus[train[j]].words, model.max_len)
        for name, t in activations(model, np.array(enc.input_ids)).items():
            samples[name].append(np.abs(t).ravel())
    return {name: float(np.percentile(np.concatenate(v), percentile)) / num.QMAX for name, v in samples.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--percentile", type=float, default=99.999)
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    args = ap.parse_args()
    model = load_model(args.out)
    scales = calibrate(model, args.sentences, args.percentile)
    doc = {"sentences": args.sentences, "percentile": args.percentile, "seed": CALIBRATION_SEED, "scales": scales}
    (args.out / CALIBRATION_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(scales)} scales to {args.out / CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
