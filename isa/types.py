"""The enums every instruction field draws from: data types, memories, units, broadcast modes."""

from __future__ import annotations

import enum


class DType(enum.IntEnum):
    """Element type of an SRAM tile or DRAM matrix; bf16 is stored as the upper 16 bits of an fp32."""

    INT8 = 0
    INT32 = 1
    BF16 = 2
    FP32 = 3

    @property
    def itemsize(self) -> int:
        return _ITEMSIZE[self]


_ITEMSIZE: dict[DType, int] = {DType.INT8: 1, DType.INT32: 4, DType.BF16: 2, DType.FP32: 4}


class Mem(enum.IntEnum):
    """A per-core on-chip memory: the scratchpad or the accumulator SRAM."""

    SPAD = 0
    ACC = 1


class Unit(enum.IntEnum):
    """A per-core execution unit; each runs its own instruction queue in program order."""

    DMA = 0
    MXU = 1
    VEC = 2
    NOC = 3
    CTRL = 4


class Bcast(enum.IntEnum):
    """How the second source of a binary vector op is broadcast over a rows x cols tile."""

    NONE = 0  # src2 is rows x cols
    ROW = 1  # src2 is 1 x cols, repeated down the rows
    COL = 2  # src2 is rows x 1, repeated across the columns


class Reduce(enum.IntEnum):
    """What a NOC_RECV does with what is at its address: overwrite it, or add the payload to it elementwise."""

    NONE = 0  # the payload replaces the bytes
    INT32 = 1  # int32 elements added, two's-complement wrap-around (int8 partial sums)
    FP32 = 2  # fp32 elements added (bf16 partial sums)


class Opcode(enum.IntEnum):
    """The 8-bit opcode in bits 0..7 of every instruction word."""

    DMA_LD = 0x01
    DMA_ST = 0x02
    NOC_SEND = 0x08
    NOC_RECV = 0x09
    LDW = 0x10
    MATMUL = 0x11
    VADD = 0x20
    VSUB = 0x21
    VMUL = 0x22
    VMAX = 0x23
    VEXP = 0x28
    VGELU = 0x29
    VRSQRT = 0x2A
    VRECIP = 0x2B
    VSCALE = 0x2C
    VRSUM = 0x30
    VRMAX = 0x31
    VQUANT = 0x38
    VREQ = 0x39
    VCVT = 0x3A
    VDEQ = 0x3B
    VDEQC = 0x3C
    SIGNAL = 0x40
    WAIT = 0x41
    BARRIER = 0x48
    HALT = 0xFF


class TimingRule(enum.Enum):
    """Which closed form the hardware model times an instruction with (chipsim.cost_model dispatches on it)."""

    DMA = "dma"  # bytes / bandwidth + DRAM latency, shared DRAM bandwidth
    NOC = "noc"  # bytes / link bandwidth + hops * hop latency, link contention
    WEIGHT_LOAD = "weight_load"  # LDW: shift a k x n tile into the array
    MATMUL = "matmul"  # fill + stream + drain, folded over the array
    VECTOR_ELEMENTWISE = "vector_elementwise"  # rows * cols elements over the lanes, per-op cycles
    VECTOR_REDUCE = "vector_reduce"  # row reduction over the lanes
    SYNC = "sync"  # SIGNAL / WAIT: semaphore bookkeeping
    BARRIER = "barrier"  # all units of all cores meet
    HALT = "halt"  # end of a core's program


class VecOp(enum.Enum):
    """Vector-unit operation classes; the values are the keys of the chip config's `vector.cycles_per_op`."""

    ADD = "add"
    MUL = "mul"
    MAX = "max"
    EXP = "exp"
    GELU = "gelu"
    RSQRT = "rsqrt"
    RECIP = "recip"
    REDUCE = "reduce"
    QUANT = "quant"
    CONVERT = "convert"
