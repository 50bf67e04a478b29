"""The fp32 NumPy reference: the actual fine-tuned inference, tags from the first sub-token, entity spans."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads import numerics as num
from workloads.errors import WorkloadError
from workloads.model import Model
from workloads.ner import Entity, entities
from workloads.tokenizer import Encoding, encode_words, split_words

F32 = np.float32


def embed(model: Model, input_ids: np.ndarray) -> np.ndarray:
    """Word + position + token-type(0) embeddings, then LayerNorm: [S, H] float32."""
    w = model.weights
    s = len(input_ids)
    x = (w["emb.word"][input_ids] + w["emb.pos"][:s]) + w["emb.type"][0]
    return num.layer_norm(x, w["emb.ln.g"], w["emb.ln.b"], model.config.layer_norm_eps)


def mask_bias(attention_mask: np.ndarray) -> np.ndarray:
    """[1, S] additive bias: 0 for real keys, MASK_BIAS for padding."""
    return np.where(np.asarray(attention_mask)[None, :] > 0, F32(0.0), num.MASK_BIAS).astype(F32)


def forward(model: Model, input_ids: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray:
    """fp32 logits [S, num_labels] for one (possibly padded) sequence."""
    cfg, w = model.config, model.weights
    ids = np.asarray(input_ids, dtype=np.int64)
    if ids.ndim != 1 or len(ids) == 0:
        raise WorkloadError(f"input_ids must be a non-empty 1-D sequence, got shape {ids.shape}.")
    if len(ids) > cfg.max_positions:
        raise WorkloadError(f"sequence of {len(ids)} tokens exceeds the model's maximum of {cfg.max_positions}.")
    mask = np.ones(len(ids), dtype=np.int32) if attention_mask is None else np.asarray(attention_mask)
    bias = mask_bias(mask)
    s, a, d = len(ids), cfg.heads, cfg.head_dim
    scale = F32(1.0 / np.sqrt(d))
    x = embed(model, ids)
    for i in range(cfg.layers):
        p = f"l{i}."
        q = (x @ w[p + "q.w"] + w[p + "q.b"]).reshape(s, a, d).transpose(1, 0, 2)
        k = (x @ w[p + "k.w"] + w[p + "k.b"]).reshape(s, a, d).transpose(1, 0, 2)
        v = (x @ w[p + "v.w"] + w[p + "v.b"]).reshape(s, a, d).transpose(1, 0, 2)
        scores = (q @ k.transpose(0, 2, 1)) * scale + bias
        ctx = (num.softmax(scores) @ v).transpose(1, 0, 2).reshape(s, a * d)
        x = num.layer_norm((ctx @ w[p + "o.w"] + w[p + "o.b"]) + x, w[p + "ln1.g"], w[p + "ln1.b"], cfg.layer_norm_eps)
        h = num.gelu(x @ w[p + "ffn1.w"] + w[p + "ffn1.b"])
        x = num.layer_norm((h @ w[p + "ffn2.w"] + w[p + "ffn2.b"]) + x, w[p + "ln2.g"], w[p + "ln2.b"], cfg.layer_norm_eps)
    return x @ w["cls.w"] + w["cls.b"]


def word_tags(model: Model, enc: Encoding, logits: np.ndarray) -> list[str]:
    """One tag per word, from the logits of its first sub-token; words cut by truncation are tagged O."""
    first = enc.first_subtoken
    return [model.labels[int(np.argmax(logits[first[w]]))] if w in first else "O" for w in range(len(enc.words))]


@dataclass(frozen=True, slots=True)
class Tagged:
    encoding: Encoding
    logits: np.ndarray
    tags: tuple[str, ...]
    entities: tuple[Entity, ...]


def tag_words(model: Model, words: list[str] | tuple[str, ...], forward_fn=forward) -> Tagged:
    enc = encode_words(model.tokenizer, words, model.max_len)
    logits = forward_fn(model, np.array(enc.input_ids))
    tags = word_tags(model, enc, logits)
    return Tagged(enc, logits, tuple(tags), tuple(entities(tags, enc.words)))


def tag_text(model: Model, text: str, forward_fn=forward) -> Tagged:
    """Tokenize raw text, run the model, and return tokens, word tags and entity spans."""
    if not text.strip():
        raise WorkloadError("the text to tag is empty; pass a sentence such as \"Obama visited Microsoft in Seattle\".")
    return tag_words(model, split_words(model.tokenizer, text), forward_fn)
