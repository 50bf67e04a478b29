"""What each instruction touches: the SRAM tiles it reads and writes and the DRAM bytes it spans.

The verifier checks these against the chip's memories; the executor and the energy model use them for
hazards and byte counts. Every tile is row-major and dense (row pitch = cols * itemsize) but a strided
NOC_SEND's or NOC_RECV's, whose rows are `pitch` bytes apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from isa.types import Bcast, DType, Mem, Reduce

if TYPE_CHECKING:
    from isa.instr import Instr


@dataclass(frozen=True, slots=True)
class Operand:
    """One SRAM tile an instruction reads or writes."""

    name: str
    mem: Mem
    addr: int
    rows: int
    cols: int
    dtype: DType
    write: bool
    pitch: int = 0  # bytes between the starts of consecutive rows; 0: dense (cols * itemsize)

    @property
    def nbytes(self) -> int:
        """The bytes the tile holds (its rows' bytes, not the gaps between strided rows)."""
        return self.rows * self.cols * self.dtype.itemsize

    @property
    def end(self) -> int:
        """One past the tile's last byte."""
        row = self.cols * self.dtype.itemsize
        return self.addr + (self.rows - 1) * (self.pitch or row) + row if self.rows else self.addr


def _rd(name: str, mem: Mem, addr: int, rows: int, cols: int, dtype: DType) -> Operand:
    return Operand(name, mem, addr, rows, cols, dtype, False)


def _wr(name: str, mem: Mem, addr: int, rows: int, cols: int, dtype: DType) -> Operand:
    return Operand(name, mem, addr, rows, cols, dtype, True)


def none(i: Instr) -> tuple[Operand, ...]:
    return ()


def dma_load(i: Instr) -> tuple[Operand, ...]:
    return (_wr("sram", i.mem, i.sram_addr, i.rows, i.cols, i.dtype),)


def dma_store(i: Instr) -> tuple[Operand, ...]:
    return (_rd("sram", i.mem, i.sram_addr, i.rows, i.cols, i.dtype),)


def _noc_bytes(i: Instr, write: bool) -> Operand:
    """A NoC instruction's bytes at addr: one run, or `rows` equal rows stride_bytes apart."""
    if i.rows == 1:
        return Operand("addr", i.mem, i.addr, 1, i.bytes, DType.INT8, write)
    return Operand("addr", i.mem, i.addr, i.rows, i.bytes // i.rows, DType.INT8, write, i.stride_bytes)


def noc_send(i: Instr) -> tuple[Operand, ...]:
    return (_noc_bytes(i, write=False),)


def noc_recv(i: Instr) -> tuple[Operand, ...]:
    if i.reduce:  # reads what is there and writes the sums: 4-byte elements of the add's type
        dtype = DType.INT32 if i.reduce == Reduce.INT32 else DType.FP32
        cols, pitch = i.bytes // i.rows // 4, i.stride_bytes if i.rows > 1 else 0
        return tuple(Operand("addr", i.mem, i.addr, i.rows, cols, dtype, write, pitch) for write in (False, True))
    return (_noc_bytes(i, write=True),)


def ldw(i: Instr) -> tuple[Operand, ...]:
    return (_rd("w", Mem.SPAD, i.w_addr, i.k, i.n, i.dtype),)


def matmul_out_dtype(precision: DType) -> DType:
    """The accumulator dtype of a MATMUL: int32 for int8 operands, fp32 for bf16 operands."""
    return DType.INT32 if precision == DType.INT8 else DType.FP32


def matmul(i: Instr) -> tuple[Operand, ...]:
    out = matmul_out_dtype(i.precision)
    rows, cols = (i.n, i.k) if i.transpose_b else (i.k, i.n)
    # preloaded=1: B's first fold is in the array (the last LDW), the rest is read; B is named whole either way
    ops = [_rd("a", Mem.SPAD, i.a_addr, i.m, i.k, i.precision), _rd("b", Mem.SPAD, i.b_addr, rows, cols, i.precision)]
    if i.accumulate:
        ops.append(_rd("c", Mem.ACC, i.c_addr, i.m, i.n, out))
    ops.append(_wr("c", Mem.ACC, i.c_addr, i.m, i.n, out))
    return tuple(ops)


def bcast_shape(bcast: Bcast, rows: int, cols: int) -> tuple[int, int]:
    """The shape of src2 of a binary vector op under `bcast`."""
    if bcast == Bcast.ROW:
        return 1, cols
    if bcast == Bcast.COL:
        return rows, 1
    return rows, cols


def vbinary(i: Instr) -> tuple[Operand, ...]:
    r2, c2 = bcast_shape(i.bcast, i.rows, i.cols)
    return (
        _rd("src1", i.src1_mem, i.src1_addr, i.rows, i.cols, DType.FP32),
        _rd("src2", i.src2_mem, i.src2_addr, r2, c2, DType.FP32),
        _wr("dst", i.dst_mem, i.dst_addr, i.rows, i.cols, DType.FP32),
    )


def _elementwise(src: DType, dst: DType) -> Callable[[Instr], tuple[Operand, ...]]:
    """The operands of a one-source vector op: a rows x cols `src` tile in, a rows x cols `dst` tile out."""
    def operands(i: Instr) -> tuple[Operand, ...]:
        return (_rd("src", i.src_mem, i.src_addr, i.rows, i.cols, src), _wr("dst", i.dst_mem, i.dst_addr, i.rows, i.cols, dst))
    return operands


def _by_column(dst: DType) -> Callable[[Instr], tuple[Operand, ...]]:
    """The operands of a conversion of int32 sums by a 1 x cols row of fp32 scales into a rows x cols `dst` tile."""
    def operands(i: Instr) -> tuple[Operand, ...]:
        return (
            _rd("src", i.src_mem, i.src_addr, i.rows, i.cols, DType.INT32),
            _rd("scale", i.scale_mem, i.scale_addr, 1, i.cols, DType.FP32),
            _wr("dst", i.dst_mem, i.dst_addr, i.rows, i.cols, dst),
        )
    return operands


vunary = _elementwise(DType.FP32, DType.FP32)
vquant = _elementwise(DType.FP32, DType.INT8)
vdeq = _elementwise(DType.INT32, DType.FP32)
vdeqc = _by_column(DType.FP32)
vreq = _by_column(DType.INT8)


def vscale(i: Instr) -> tuple[Operand, ...]:
    return (
        _rd("dst", i.dst_mem, i.dst_addr, i.rows, i.cols, DType.FP32),
        _wr("dst", i.dst_mem, i.dst_addr, i.rows, i.cols, DType.FP32),
    )


def vreduce(i: Instr) -> tuple[Operand, ...]:
    return (
        _rd("src", i.src_mem, i.src_addr, i.rows, i.cols, DType.FP32),
        _wr("dst", i.dst_mem, i.dst_addr, i.rows, 1, DType.FP32),
    )


def vcvt(i: Instr) -> tuple[Operand, ...]:
    return (
        _rd("src", i.src_mem, i.src_addr, i.rows, i.cols, i.from_dtype),
        _wr("dst", i.dst_mem, i.dst_addr, i.rows, i.cols, i.to_dtype),
    )


def dram_extent(i: Instr) -> tuple[int, int] | None:
    """The DRAM byte range [start, end) a DMA instruction touches, or None for other instructions."""
    if not hasattr(i, "dram_addr"):
        return None
    start: int = i.dram_addr
    return start, start + (i.rows - 1) * i.dram_stride_bytes + i.cols * i.dtype.itemsize
