"""Float32 building blocks shared by the fp32 and the quantized references.

Each function spells out the exact sequence of float32 operations (every step rounded to float32, no fused
multiply-add) that the chip's vector unit performs, so the quantized reference and the chip agree bit for bit.
Reductions run along the last axis of C-contiguous float32 arrays.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
INV_SQRT2 = F32(0.7071067811865476)
MASK_BIAS = F32(-10000.0)  # added to attention scores of padded keys: exp underflows to exactly 0
QMAX = 127


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU: (x * 0.5) * (1 + erf(x / sqrt(2)))."""
    from scipy.special import erf  # here: a fifth of a second to import, which timing-only runs do not need

    t = erf(x * INV_SQRT2).astype(F32, copy=False)
    return (x * F32(0.5)) * (F32(1.0) + t)


def row_sum(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).sum(axis=-1, dtype=F32, keepdims=True)


def row_max(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).max(axis=-1, keepdims=True)


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """mean, centre, variance, rsqrt, then scale and shift: the vector unit's sequence."""
    inv_n = F32(1.0 / x.shape[-1])
    mean = row_sum(x) * inv_n
    xc = x - mean
    var = row_sum(xc * xc) * inv_n
    r = F32(1.0) / np.sqrt(var + F32(eps))
    return ((xc * r) * gamma) + beta


def softmax(s: np.ndarray) -> np.ndarray:
    """max-subtracted exp, row sum, reciprocal, multiply."""
    e = np.exp(s - row_max(s))
    return e * (F32(1.0) / row_sum(e))


def quantize(x: np.ndarray, inv_scale: np.float32) -> np.ndarray:
    """fp32 -> int8: clip(rint(x * inv_scale), -127, 127) (round half to even)."""
    return np.clip(np.rint(x * inv_scale), -QMAX, QMAX).astype(np.int8)


def int8_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int8 x int8 -> int32, exactly (float64 BLAS is exact here: |sum| < 127^2 * 2^16 << 2^53)."""
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int32)


def to_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 to bfloat16 (nearest, ties to even), returned as float32 values."""
    bits = np.ascontiguousarray(x, dtype=F32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return rounded.view(F32)
