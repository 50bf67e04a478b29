"""The quantized reference: the exact numerics the chip uses, written plainly (no tiling).

int8 mode: weights int8 symmetric per output channel; activations int8 with per-tensor scales calibrated on
training sentences (`workloads.calibrate`); int8 x int8 products accumulate in int32; the accumulator is
dequantized in fp32 (`f32(acc) * deq[n] + bias[n]`); softmax, GELU, LayerNorm and residual adds run in fp32 on
the vector path. Attention operands Q, K, V are quantized per tensor; softmax probabilities are quantized with
the fixed scale 1/127 (they lie in [0, 1]).

bf16 mode: every matmul operand rounded to bfloat16, products accumulated in fp32; the rest as fp32.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workloads import numerics as num
from workloads.errors import WorkloadError
from workloads.model import MODEL_DIR, Model
from workloads.reference import embed, mask_bias
from workloads.reference import forward as forward_fp32

F32 = np.float32
CALIBRATION_FILE = "calibration.json"
PROB_INV_SCALE = F32(127.0)  # softmax probabilities in [0, 1] onto 0..127


class Precision(enum.Enum):
    FP32 = "fp32"
    INT8 = "int8"
    BF16 = "bf16"


@dataclass(frozen=True, slots=True)
class QLinear:
    """y = f32(quantize(x) @ w_q) * deq + bias; in bf16 mode y = bf16(x) @ bf16(w) + bias."""

    w: np.ndarray  # fp32 [K, N]
    w_q: np.ndarray  # int8 [K, N]
    w_scale: np.ndarray  # fp32 [N]: max|w[:, n]| / 127
    inv_scale_in: np.float32  # 1 / input activation scale
    deq: np.ndarray  # fp32 [N]: input scale * w_scale
    bias: np.ndarray  # fp32 [N]

    @staticmethod
    def build(w: np.ndarray, bias: np.ndarray, in_scale: float) -> QLinear:
        w_scale = (np.abs(w).max(axis=0) / num.QMAX).astype(F32)
        w_scale = np.where(w_scale > 0, w_scale, F32(1.0)).astype(F32)
        w_q = np.clip(np.rint(w / w_scale), -num.QMAX, num.QMAX).astype(np.int8)
        return QLinear(w, w_q, w_scale, F32(1.0 / in_scale), (F32(in_scale) * w_scale).astype(F32), bias)

    def int8(self, x: np.ndarray) -> np.ndarray:
        acc = num.int8_matmul(num.quantize(x, self.inv_scale_in), self.w_q)
        return acc.astype(F32) * self.deq + self.bias

    def bf16(self, x: np.ndarray) -> np.ndarray:
        return num.to_bf16(x) @ num.to_bf16(self.w) + self.bias


@dataclass(frozen=True, slots=True)
class QLayer:
    q: QLinear
    k: QLinear
    v: QLinear
    o: QLinear
    ffn1: QLinear
    ffn2: QLinear
    inv_scale_q: np.float32
    inv_scale_k: np.float32
    inv_scale_v: np.float32
    score_scale: np.float32  # s_q * s_k / sqrt(head_dim)
    ctx_scale: np.float32  # s_v / 127
    ln1: tuple[np.ndarray, np.ndarray]
    ln2: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class QuantizedModel:
    model: Model
    precision: Precision
    layers: tuple[QLayer, ...]
    cls: QLinear
    calibration: dict[str, float]


def load_calibration(directory: Path = MODEL_DIR) -> dict[str, float]:
    path = directory / CALIBRATION_FILE
    if not path.is_file():
        raise WorkloadError(f"calibration file {path} is missing; regenerate it with `python -m workloads.calibrate`.")
    try:
        return {k: float(v) for k, v in json.loads(path.read_text(encoding="utf-8"))["scales"].items()}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise WorkloadError(f"calibration file {path} is not a JSON object with a 'scales' map of numbers.") from None


def quantize_model(model: Model, precision: Precision, scales: dict[str, float]) -> QuantizedModel:
    """Build the quantized model from fp32 weights and calibrated activation scales (name -> scale)."""
    cfg, w = model.config, model.weights

    def scale(name: str) -> float:
        try:
            return scales[name]
        except KeyError:
            raise WorkloadError(f"calibration has no scale for {name!r}; regenerate it with `python -m workloads.calibrate`.") from None

    def lin(prefix: str, in_name: str) -> QLinear:
        return QLinear.build(w[prefix + ".w"], w[prefix + ".b"], scale(in_name))

    layers = []
    for i in range(cfg.layers):
        p = f"l{i}"
        sq, sk, sv = scale(f"{p}.q_out"), scale(f"{p}.k_out"), scale(f"{p}.v_out")
        layers.append(
            QLayer(
                q=lin(f"{p}.q", f"{p}.in"), k=lin(f"{p}.k", f"{p}.in"), v=lin(f"{p}.v", f"{p}.in"),
                o=lin(f"{p}.o", f"{p}.ctx"), ffn1=lin(f"{p}.ffn1", f"{p}.mid"), ffn2=lin(f"{p}.ffn2", f"{p}.gelu"),
                inv_scale_q=F32(1.0 / sq), inv_scale_k=F32(1.0 / sk), inv_scale_v=F32(1.0 / sv),
                score_scale=F32(sq * sk / np.sqrt(cfg.head_dim)), ctx_scale=F32(sv / 127.0),
                ln1=(w[f"{p}.ln1.g"], w[f"{p}.ln1.b"]), ln2=(w[f"{p}.ln2.g"], w[f"{p}.ln2.b"]),
            )
        )
    return QuantizedModel(model, precision, tuple(layers), lin("cls", "cls.in"), dict(scales))


def attention_int8(layer: QLayer, q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray, heads: int) -> np.ndarray:
    """Per head: int8 scores, fp32 softmax, int8 probabilities x int8 V; returns fp32 context [S, H]."""
    s, h = q.shape
    d = h // heads
    qq, kq, vq = num.quantize(q, layer.inv_scale_q), num.quantize(k, layer.inv_scale_k), num.quantize(v, layer.inv_scale_v)
    ctx = np.empty((s, h), dtype=F32)
    for a in range(heads):
        cols = slice(a * d, (a + 1) * d)
        scores = num.int8_matmul(qq[:, cols], kq[:, cols].T).astype(F32) * layer.score_scale + bias
        p = num.quantize(num.softmax(scores), PROB_INV_SCALE)
        ctx[:, cols] = num.int8_matmul(p, vq[:, cols]).astype(F32) * layer.ctx_scale
    return ctx


def attention_bf16(q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray, heads: int) -> np.ndarray:
    s, h = q.shape
    d = h // heads
    scale = F32(1.0 / np.sqrt(d))
    ctx = np.empty((s, h), dtype=F32)
    for a in range(heads):
        cols = slice(a * d, (a + 1) * d)
        scores = (num.to_bf16(q[:, cols]) @ num.to_bf16(k[:, cols]).T) * scale + bias
        ctx[:, cols] = num.to_bf16(num.softmax(scores)) @ num.to_bf16(v[:, cols])
    return ctx


def forward(qm: QuantizedModel, input_ids: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray:
    """Logits [S, num_labels] of one (possibly padded) sequence in the quantized model's precision."""
    model = qm.model
    if qm.precision is Precision.FP32:
        return forward_fp32(model, input_ids, attention_mask)
    cfg = model.config
    ids = np.asarray(input_ids, dtype=np.int64)
    mask = np.ones(len(ids), dtype=np.int32) if attention_mask is None else np.asarray(attention_mask)
    bias = mask_bias(mask)
    int8 = qm.precision is Precision.INT8
    x = embed(model, ids)
    for layer in qm.layers:
        linear = QLinear.int8 if int8 else QLinear.bf16
        q, k, v = linear(layer.q, x), linear(layer.k, x), linear(layer.v, x)
        ctx = attention_int8(layer, q, k, v, bias, cfg.heads) if int8 else attention_bf16(q, k, v, bias, cfg.heads)
        x = num.layer_norm(linear(layer.o, ctx) + x, *layer.ln1, cfg.layer_norm_eps)
        h = num.gelu(linear(layer.ffn1, x))
        x = num.layer_norm(linear(layer.ffn2, h) + x, *layer.ln2, cfg.layer_norm_eps)
    return (QLinear.int8 if int8 else QLinear.bf16)(qm.cls, x)


def load_quantized(model: Model, precision: Precision, directory: Path = MODEL_DIR) -> QuantizedModel:
    scales = load_calibration(directory) if precision is Precision.INT8 else {}
    if precision is not Precision.INT8:
        # bf16 and fp32 need no activation scales; build with unit scales so the weights are still prepared.
        scales = {name: 1.0 for name in calibration_points(model)}
    return quantize_model(model, precision, scales)


def calibration_points(model: Model) -> list[str]:
    names = ["cls.in"]
    for i in range(model.config.layers):
        names += [f"l{i}.{n}" for n in ("in", "q_out", "k_out", "v_out", "ctx", "mid", "gelu")]
    return names
