"""The functional definition of every instruction: a plain interpreter over per-core byte memories.

`CoreState` holds one core's scratchpad and accumulator as np.uint8 arrays (plus its semaphores and the
weight tile held in the array); `apply(instr, state, dram)` performs one instruction's effect on them.
Tiles are zero-copy C-contiguous views (`np.ndarray.view`) of the byte arrays. Timing and ordering belong
to the executor in chipsim/, which calls these functions; NoC data movement uses `read_bytes` /
`write_bytes` because it spans two cores. All fp32 arithmetic is float32 with every step rounded, exactly
as written in isa/SPEC.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from isa.errors import IsaError
from isa.operands import bcast_shape
from isa.types import DType, Mem, Reduce

if TYPE_CHECKING:
    from isa.instr import Instr

NUM_SEMAPHORES = 32

_NP_DTYPE: dict[DType, type[np.generic]] = {
    DType.INT8: np.int8,
    DType.INT32: np.int32,
    DType.BF16: np.uint16,  # bf16 is stored as its 16 raw bits
    DType.FP32: np.float32,
}

_F32_ONE = np.float32(1.0)
_F32_HALF = np.float32(0.5)
_F32_SQRT_HALF = np.float32(0.7071067811865476)
_INT8_LIMIT = np.float32(127.0)


@dataclass(slots=True, eq=False)
class CoreState:
    """Mutable functional state of one core: its memories, semaphores and the array's weight tile."""

    spad: np.ndarray
    acc: np.ndarray
    semaphores: list[int] = field(default_factory=lambda: [0] * NUM_SEMAPHORES)
    weights: np.ndarray | None = None  # the k x n tile of the last LDW, as its stored dtype
    weights_dtype: DType | None = None

    @classmethod
    def create(cls, spad_bytes: int, acc_bytes: int) -> CoreState:
        """A zero-filled core with `spad_bytes` of scratchpad and `acc_bytes` of accumulator."""
        return cls(np.zeros(spad_bytes, np.uint8), np.zeros(acc_bytes, np.uint8))

    def memory(self, mem: Mem) -> np.ndarray:
        return self.spad if mem == Mem.SPAD else self.acc


def tile(state: CoreState, mem: Mem, addr: int, rows: int, cols: int, dtype: DType) -> np.ndarray:
    """A writable rows x cols view of `dtype` at byte `addr` of `mem` (bf16 as uint16 bits)."""
    buf = state.spad if mem == Mem.SPAD else state.acc
    end = addr + rows * cols * dtype.itemsize
    if end > buf.shape[0]:
        raise IsaError(
            f"{mem.name} tile at 0x{addr:x} of {rows}x{cols} {dtype.name} ends at byte 0x{end:x}, "
            f"past the {buf.shape[0]}-byte memory."
        )
    return buf[addr:end].view(_NP_DTYPE[dtype]).reshape(rows, cols)


def _runs(state: CoreState, mem: Mem, addr: int, rows: int, row: int, stride_bytes: int, dtype: DType = DType.INT8) -> np.ndarray:
    """A writable rows x row uint8 view of `rows` runs of `row` bytes, `stride_bytes` apart from byte `addr` of `mem`
    (one run when rows is 1); the IsaError of the first run past the memory's end, as a tile of `dtype`, if one
    is. Runs closer than `row` overlap: fine to read, but a write through them has no defined order."""
    buf = state.spad if mem == Mem.SPAD else state.acc
    step = stride_bytes if rows > 1 else 0
    end = addr + (rows - 1) * step + row
    if end > buf.shape[0]:
        for r in range(rows):  # the first run past the end raises, as it alone would
            tile(state, mem, addr + r * step, 1, row // dtype.itemsize, dtype)
    return np.lib.stride_tricks.as_strided(buf[addr:end], shape=(rows, row), strides=(step, 1))


def read_bytes(state: CoreState, mem: Mem, addr: int, n: int, rows: int = 1, stride_bytes: int = 0) -> np.ndarray:
    """A copy of `n` bytes at `addr` of `mem` (the payload of a NOC_SEND): one run, or `rows` equal rows
    `stride_bytes` apart, in row order."""
    return _runs(state, mem, addr, rows, n // rows, stride_bytes).copy().reshape(n)


def write_bytes(state: CoreState, mem: Mem, addr: int, data: np.ndarray, rows: int = 1, stride_bytes: int = 0,
                reduce: Reduce = Reduce.NONE) -> None:
    """Store the bytes `data` at `addr` of `mem` (the arrival of a NOC_RECV): as one run, or as `rows` equal rows
    `stride_bytes` apart; or (reduce) add them, as int32 (wrap-around) or fp32 elements, to what is there."""
    n = int(data.size)
    flat = data.view(np.uint8).reshape(n)
    row = n // rows
    if rows > 1 and stride_bytes < row:  # overlapping rows (no instruction has them): row by row, the later wins
        for r in range(rows):
            write_bytes(state, mem, addr + r * stride_bytes, flat[r * row : (r + 1) * row], 1, 0, reduce)
        return
    summed = DType.INT8 if reduce == Reduce.NONE else DType.INT32 if reduce == Reduce.INT32 else DType.FP32
    dst = _runs(state, mem, addr, rows, row, stride_bytes, summed)
    src = flat.reshape(rows, row)
    if reduce == Reduce.NONE:
        dst[:] = src
    else:
        elem = _NP_DTYPE[summed]
        # per row, whole elements: their last axis stays contiguous, so the views reinterpret its bytes
        np.add(dst.view(elem), src.view(elem), out=dst.view(elem))  # int32: two's-complement wrap-around


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """Widen bf16 bit patterns (uint16) to float32 exactly."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 to bf16 bits (uint16), round to nearest even; NaN becomes the quiet NaN 0x7FC0."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    out = rounded.astype(np.uint16)
    out[np.isnan(x)] = 0x7FC0
    return out


def _dram_rows(dram: np.ndarray, addr: int, rows: int, row_bytes: int, stride: int, *, writeable: bool) -> np.ndarray:
    end = addr + (rows - 1) * stride + row_bytes
    if end > dram.shape[0]:
        raise IsaError(f"DMA DRAM range 0x{addr:x}..0x{end:x} runs past the {dram.shape[0]}-byte DRAM.")
    base = dram[addr:end]
    return np.lib.stride_tricks.as_strided(base, shape=(rows, row_bytes), strides=(stride, 1), writeable=writeable)


def dma_ld(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    row_bytes = i.cols * i.dtype.itemsize
    dst = tile(state, i.mem, i.sram_addr, i.rows, row_bytes, DType.INT8).view(np.uint8)
    dst[...] = _dram_rows(dram, i.dram_addr, i.rows, row_bytes, i.dram_stride_bytes, writeable=False)


def dma_st(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    row_bytes = i.cols * i.dtype.itemsize
    src = tile(state, i.mem, i.sram_addr, i.rows, row_bytes, DType.INT8).view(np.uint8)
    stride = i.dram_stride_bytes
    if stride >= row_bytes:
        _dram_rows(dram, i.dram_addr, i.rows, row_bytes, stride, writeable=True)[...] = src
    else:  # overlapping DRAM rows: rows are written in order, so a later row wins
        _dram_rows(dram, i.dram_addr, i.rows, row_bytes, stride, writeable=False)
        for r in range(i.rows):
            start = i.dram_addr + r * stride
            dram[start : start + row_bytes] = src[r]


def ldw(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    state.weights = tile(state, Mem.SPAD, i.w_addr, i.k, i.n, i.dtype).copy()
    state.weights_dtype = i.dtype


def _matmul_b_read(i: Instr, state: CoreState) -> np.ndarray:
    if i.transpose_b:
        return tile(state, Mem.SPAD, i.b_addr, i.n, i.k, i.precision).T
    return tile(state, Mem.SPAD, i.b_addr, i.k, i.n, i.precision)


def _matmul_b(i: Instr, state: CoreState) -> np.ndarray:
    if not i.preloaded:
        return _matmul_b_read(i, state)
    # B's first rows are the tile the last LDW put in the array (its first fold), the rest come from b_addr
    w = state.weights
    if w is None or state.weights_dtype != i.precision or w.shape[1] != i.n or w.shape[0] > i.k:
        held = "none" if w is None or state.weights_dtype is None else f"{w.shape[0]}x{w.shape[1]} {state.weights_dtype.name}"
        raise IsaError(
            f"MATMUL preloaded=1 needs a weight tile of {i.n} columns and at most {i.k} rows ({i.precision.name}) from "
            f"LDW, but the array holds {held}."
        )
    return w if w.shape[0] == i.k else np.concatenate((w, _matmul_b_read(i, state)[w.shape[0]:]))


def matmul(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    a = tile(state, Mem.SPAD, i.a_addr, i.m, i.k, i.precision)
    b = _matmul_b(i, state)
    if i.precision == DType.INT8:
        c = tile(state, Mem.ACC, i.c_addr, i.m, i.n, DType.INT32)
        # Exact integer products via BLAS: |partial sums| <= k * 2^14 stays below 2^24 (fp32) for k <= 1024
        # and below 2^53 (fp64) for any k < 2^14, so the int32 result is exact.
        wide = np.float32 if i.k <= 1024 else np.float64
        prod = (a.astype(wide) @ b.astype(wide)).astype(np.int32)
        if i.accumulate:
            np.add(c, prod, out=c)  # int32 wrap-around
        else:
            c[...] = prod
    else:
        c = tile(state, Mem.ACC, i.c_addr, i.m, i.n, DType.FP32)
        # bf16 x bf16 products are exact in fp32; the dot product is summed in fp64 and rounded once to fp32.
        prod32 = (bf16_to_f32(a).astype(np.float64) @ bf16_to_f32(b).astype(np.float64)).astype(np.float32)
        if i.accumulate:
            np.add(c, prod32, out=c)
        else:
            c[...] = prod32


def _src(i: Instr, state: CoreState, dtype: DType = DType.FP32) -> np.ndarray:
    return tile(state, i.src_mem, i.src_addr, i.rows, i.cols, dtype)


def _dst(i: Instr, state: CoreState, dtype: DType = DType.FP32, cols: int | None = None) -> np.ndarray:
    return tile(state, i.dst_mem, i.dst_addr, i.rows, i.cols if cols is None else cols, dtype)


def _binary(ufunc: np.ufunc) -> Semantics:
    def run(i: Instr, state: CoreState, dram: np.ndarray) -> None:
        s1 = tile(state, i.src1_mem, i.src1_addr, i.rows, i.cols, DType.FP32)
        r2, c2 = bcast_shape(i.bcast, i.rows, i.cols)
        s2 = tile(state, i.src2_mem, i.src2_addr, r2, c2, DType.FP32)
        d = _dst(i, state)
        with np.errstate(all="ignore"):
            ufunc(s1, s2, out=d)  # NumPy resolves any overlap of d with s1/s2 as if inputs were read first

    run.__name__ = f"v{ufunc.__name__}"
    return run


vadd = _binary(np.add)
vsub = _binary(np.subtract)
vmul = _binary(np.multiply)
vmax = _binary(np.maximum)  # NaN propagates


def vexp(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        np.exp(_src(i, state), out=_dst(i, state))


def gelu_f32(x: np.ndarray) -> np.ndarray:
    """GELU exactly as the chip computes it: erf form, float32, every step rounded."""
    from scipy.special import erf  # here: scipy.special takes a fifth of a second to import, and timing-only runs never need it

    with np.errstate(all="ignore"):
        t = erf(x * _F32_SQRT_HALF)
        return (x * _F32_HALF) * (_F32_ONE + t)


def vgelu(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    _dst(i, state)[...] = gelu_f32(_src(i, state))


def vrsqrt(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        np.divide(_F32_ONE, np.sqrt(_src(i, state)), out=_dst(i, state))


def vrecip(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        np.divide(_F32_ONE, _src(i, state), out=_dst(i, state))


def vscale(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    x = _dst(i, state)
    with np.errstate(all="ignore"):
        np.multiply(x, np.float32(i.a), out=x)
        np.add(x, np.float32(i.b), out=x)


def vrsum(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        s = np.sum(_src(i, state), axis=1, dtype=np.float32)
    _dst(i, state, cols=1)[:, 0] = s


def vrmax(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    s = np.max(_src(i, state), axis=1)
    _dst(i, state, cols=1)[:, 0] = s


def quantize_f32(y: np.ndarray) -> np.ndarray:
    """clip(rint(y), -127, 127) as int8; NaN quantizes to 0. `y` is a float32 temporary, modified in place."""
    np.rint(y, out=y)
    np.clip(y, -_INT8_LIMIT, _INT8_LIMIT, out=y)
    y[np.isnan(y)] = 0
    return y.astype(np.int8)


def vquant(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        y = _src(i, state) * np.float32(i.scale)
    _dst(i, state, DType.INT8)[...] = quantize_f32(y)


def vdeq(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        y = _src(i, state, DType.INT32).astype(np.float32) * np.float32(i.scale)
    _dst(i, state)[...] = y


def vdeqc(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    scale = tile(state, i.scale_mem, i.scale_addr, 1, i.cols, DType.FP32)
    with np.errstate(all="ignore"):
        y = _src(i, state, DType.INT32).astype(np.float32) * scale
    _dst(i, state)[...] = y


def vreq(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    scale = tile(state, i.scale_mem, i.scale_addr, 1, i.cols, DType.FP32)
    with np.errstate(all="ignore"):
        y = _src(i, state, DType.INT32).astype(np.float32) * scale
    _dst(i, state, DType.INT8)[...] = quantize_f32(y)


_INT32_MIN = float(np.iinfo(np.int32).min)
_INT32_MAX = float(np.iinfo(np.int32).max)


def f32_to_int32(x: np.ndarray) -> np.ndarray:
    """rint then saturate to the int32 range; NaN converts to 0."""
    y = np.rint(x.astype(np.float64))
    np.clip(y, _INT32_MIN, _INT32_MAX, out=y)
    y[np.isnan(y)] = 0
    return y.astype(np.int32)


def vcvt(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    src = _src(i, state, i.from_dtype)
    dst = _dst(i, state, i.to_dtype)
    if i.to_dtype == DType.FP32:
        dst[...] = bf16_to_f32(src) if i.from_dtype == DType.BF16 else src.astype(np.float32)
    elif i.to_dtype == DType.BF16:
        dst[...] = f32_to_bf16(src)
    else:
        dst[...] = f32_to_int32(src)


def signal(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    state.semaphores[i.sem] += 1


def wait(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    if state.semaphores[i.sem] <= 0:
        raise IsaError(f"WAIT on semaphore {i.sem} would block: its count is 0; the executor must hold it until a SIGNAL.")
    state.semaphores[i.sem] -= 1


def nothing(i: Instr, state: CoreState, dram: np.ndarray) -> None:
    """BARRIER and HALT change no data; the executor handles their ordering."""


def apply(instr: Instr, state: CoreState, dram: np.ndarray) -> None:
    """Perform `instr` on one core's `state` and the shared `dram` (np.uint8); NoC ops raise IsaError."""
    run = instr.spec.semantics
    if run is None:
        raise IsaError(
            f"{instr.op.name} moves data between cores; the executor performs it with read_bytes and write_bytes."
        )
    run(instr, state, dram)


if TYPE_CHECKING:
    from collections.abc import Callable

    Semantics = Callable[[Instr, CoreState, np.ndarray], None]
