"""The instruction table: every opcode defined once, with its fields, unit, text form, semantics, operands and
timing rule. Encoding, assembly, instruction classes, the verifier, SPEC.md and the hardware model's dispatch
(which closed form of chipsim.cost_model times an instruction) derive from it. Energy is counted by the hardware
model from the operands declared here (isa.operands: which memory, how many bytes), so the table names no events.

Fields are packed little-endian into one 128-bit word: the opcode in bits 0..7, then each field in table
order from bit 8 upward; bits above the last field are reserved and must be zero.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from isa import operands as ops
from isa import semantics as sem
from isa.types import Bcast, DType, Mem, Opcode, Reduce, TimingRule, Unit, VecOp

if TYPE_CHECKING:
    from isa.instr import Instr
    from isa.operands import Operand
    from isa.semantics import Semantics

WORD_BITS = 128
OPCODE_BITS = 8

# Field widths (bits). Dimensions 14 bits: 1..16383 (>= 4096). SRAM addresses 24 bits: 16 MiB per memory.
DIM_BITS = 14
SRAM_ADDR_BITS = 24
DRAM_ADDR_BITS = 40  # 1 TiB of DRAM
DRAM_STRIDE_BITS = 24  # row pitch up to 16 MiB - 1
MEM_BITS = 2
DTYPE_BITS = 2
REDUCE_BITS = 2
BCAST_BITS = 2
UNIT_BITS = 3
SEM_BITS = 5  # 32 semaphores per core
CORE_BITS = 12  # up to 4096 cores
NOC_BYTES_BITS = 24
TAG_BITS = 16
F32_BITS = 32

# Limits that follow from the field widths: the one place other packages read them from.
MAX_DIM = (1 << DIM_BITS) - 1  # largest rows / cols / m / k / n of one instruction
SRAM_ADDR_SPACE_BYTES = 1 << SRAM_ADDR_BITS  # bytes one SRAM (scratchpad or accumulator) can address


class FieldKind(enum.Enum):
    UINT = "uint"  # unsigned integer in [min_value, 2**bits - 1]
    ENUM = "enum"  # an IntEnum member, stored as its value
    F32 = "f32"  # a finite float32 immediate, stored as its IEEE-754 bits
    BOOL = "bool"  # 0 or 1


@dataclass(frozen=True, slots=True)
class Field:
    """One operand field of an instruction."""

    name: str
    bits: int
    kind: FieldKind
    doc: str
    enum: type[enum.IntEnum] | None = None
    choices: tuple[int, ...] = ()  # allowed enum values (all members when empty)
    min_value: int = 0
    key: str | None = ""  # text key ("" = the field name; None = printed as the prefix of an address)
    mem: str | Mem | None = None  # for an SRAM address: the name of its Mem field, or its fixed memory
    hex: bool = False  # printed in hexadecimal
    default: int | None = None  # an optional field: this value when a constructor or the assembly omits it

    @property
    def text_key(self) -> str | None:
        return self.name if self.key == "" else self.key

    @property
    def max_value(self) -> int:
        return (1 << self.bits) - 1

    def valid_enum_values(self) -> tuple[int, ...]:
        assert self.enum is not None
        return self.choices or tuple(int(m) for m in self.enum)


@dataclass(frozen=True, slots=True)
class OpSpec:
    """Everything about one opcode."""

    opcode: Opcode
    class_name: str
    unit: Unit  # SIGNAL/WAIT: CTRL here; they are queued on the unit their `unit` field names
    fields: tuple[Field, ...]
    semantics: Semantics | None  # None: performed by the executor across cores (NoC)
    operands: Callable[[Instr], tuple[Operand, ...]]
    timing: TimingRule
    doc: str
    vec_ops: tuple[VecOp, ...] = ()  # vector-unit operation classes (keys of vector.cycles_per_op)
    check: Callable[[Instr], str | None] | None = None  # cross-field rule; returns a problem or None

    @property
    def mnemonic(self) -> str:
        return self.opcode.name.lower()

    @property
    def bit_offsets(self) -> tuple[int, ...]:
        offsets, at = [], OPCODE_BITS
        for f in self.fields:
            offsets.append(at)
            at += f.bits
        return tuple(offsets)

    @property
    def used_bits(self) -> int:
        return OPCODE_BITS + sum(f.bits for f in self.fields)


def _uint(name: str, bits: int, doc: str, *, min_value: int = 0, key: str = "", hex: bool = False, default: int | None = None) -> Field:
    return Field(name, bits, FieldKind.UINT, doc, min_value=min_value, key=key, hex=hex, default=default)


def _dim(name: str, doc: str) -> Field:
    return _uint(name, DIM_BITS, doc, min_value=1)


def _enum(name: str, cls: type[enum.IntEnum], bits: int, doc: str, *, choices: tuple[int, ...] = (), key: str = "",
          default: int | None = None) -> Field:
    return Field(name, bits, FieldKind.ENUM, doc, enum=cls, choices=choices, key=key, default=default)


def _f32(name: str, doc: str) -> Field:
    return Field(name, F32_BITS, FieldKind.F32, doc)


def _bool(name: str, doc: str, *, key: str = "", default: int | None = None) -> Field:
    return Field(name, 1, FieldKind.BOOL, doc, key=key, default=default)


def _memref(prefix: str, doc: str) -> tuple[Field, Field]:
    """A (memory, byte address) operand pair, written `prefix=spad:0x100` in assembly."""
    mem = Field(f"{prefix}_mem", MEM_BITS, FieldKind.ENUM, f"memory of {doc}", enum=Mem, key=None)
    addr = Field(f"{prefix}_addr", SRAM_ADDR_BITS, FieldKind.UINT, f"byte address of {doc}", key=prefix, mem=f"{prefix}_mem", hex=True)
    return mem, addr


def _fixed(prefix: str, mem: Mem, doc: str) -> Field:
    """A byte address in a memory fixed by the opcode, written `prefix=spad:0x100` in assembly."""
    return Field(f"{prefix}_addr", SRAM_ADDR_BITS, FieldKind.UINT, f"byte address of {doc}", key=prefix, mem=mem, hex=True)


_ROWS = _dim("rows", "tile rows")
_COLS = _dim("cols", "tile columns")
_DMA_FIELDS = (
    Field("mem", MEM_BITS, FieldKind.ENUM, "SRAM of the tile", enum=Mem, key=None),
    Field("sram_addr", SRAM_ADDR_BITS, FieldKind.UINT, "byte address of the SRAM tile", key="sram", mem="mem", hex=True),
    _uint("dram_addr", DRAM_ADDR_BITS, "byte address of the first DRAM row", key="dram", hex=True),
    _ROWS,
    _COLS,
    _uint("dram_stride_bytes", DRAM_STRIDE_BITS, "bytes between the starts of consecutive DRAM rows", key="stride"),
    _enum("dtype", DType, DTYPE_BITS, "element type"),
)
_NOC_TAIL = (
    Field("mem", MEM_BITS, FieldKind.ENUM, "SRAM of the buffer", enum=Mem, key=None),
    Field("addr", SRAM_ADDR_BITS, FieldKind.UINT, "byte address of the buffer", key="addr", mem="mem", hex=True),
    _uint("bytes", NOC_BYTES_BITS, "payload size in bytes", min_value=1),
    _uint("tag", TAG_BITS, "message tag matching a SEND to its RECV"),
)
_BINARY_FIELDS = (
    *_memref("dst", "the rows x cols fp32 result"),
    *_memref("src1", "the rows x cols fp32 first source"),
    *_memref("src2", "the fp32 second source (shape set by bcast)"),
    _ROWS,
    _COLS,
    _enum("bcast", Bcast, BCAST_BITS, "broadcast of src2: none (rows x cols), row (1 x cols), col (rows x 1)"),
)
_UNARY_FIELDS = (*_memref("dst", "the rows x cols fp32 result"), *_memref("src", "the rows x cols fp32 source"), _ROWS, _COLS)
_REDUCE_FIELDS = (*_memref("dst", "the rows x 1 fp32 result"), *_memref("src", "the rows x cols fp32 source"), _ROWS, _COLS)
_SYNC_FIELDS = (
    _enum("unit", Unit, UNIT_BITS, "the unit whose queue holds this instruction"),
    _uint("sem", SEM_BITS, "semaphore index (0..31)"),
)
_CVT_PAIRS = {
    (DType.INT32, DType.FP32),
    (DType.INT8, DType.FP32),
    (DType.FP32, DType.BF16),
    (DType.BF16, DType.FP32),
    (DType.FP32, DType.INT32),
}


def _check_vcvt(i: Instr) -> str | None:
    if (i.from_dtype, i.to_dtype) in _CVT_PAIRS:
        return None
    pairs = ", ".join(f"{a.name.lower()}->{b.name.lower()}" for a, b in sorted(_CVT_PAIRS))
    return f"VCVT cannot convert {i.from_dtype.name.lower()} to {i.to_dtype.name.lower()}; valid conversions are {pairs}"


def _vector(opcode: Opcode, class_name: str, fields: tuple[Field, ...], run: Semantics, operands: Callable[[Instr], tuple[Operand, ...]], vec_ops: tuple[VecOp, ...], doc: str, *, reduce: bool = False) -> OpSpec:
    timing = TimingRule.VECTOR_REDUCE if reduce else TimingRule.VECTOR_ELEMENTWISE
    return OpSpec(opcode, class_name, Unit.VEC, fields, run, operands, timing, doc, vec_ops)


def _send_rule(i: Instr) -> str | None:
    if i.multicast and i.dst_core != 0:
        return f"NOC_SEND with multicast=1 goes to every core; dst_core must be 0, got {i.dst_core}"
    return _strided_rows_rule("NOC_SEND", "be read from", i)


def _strided_rows_rule(what: str, verb: str, i: Instr) -> str | None:
    if i.bytes % i.rows:
        return f"{what} of {i.bytes} bytes cannot {verb} {i.rows} equal rows; bytes must be a multiple of rows"
    if i.rows > 1 and i.stride_bytes < i.bytes // i.rows:
        return (f"{what} rows of {i.bytes // i.rows} bytes cannot start {i.stride_bytes} bytes apart; "
                "stride_bytes must be at least bytes / rows")
    return None


def _recv_rows_rule(i: Instr) -> str | None:
    problem = _strided_rows_rule("NOC_RECV", "land in", i)
    if problem is None and i.reduce != Reduce.NONE and (i.bytes // i.rows) % 4:
        return (f"NOC_RECV add={Reduce(i.reduce).name.lower()} adds 4-byte elements, but its rows are {i.bytes // i.rows} bytes; "
                "bytes / rows must be a multiple of 4")
    return problem


_TABLE: tuple[OpSpec, ...] = (
    OpSpec(Opcode.DMA_LD, "DmaLd", Unit.DMA, _DMA_FIELDS, sem.dma_ld, ops.dma_load, TimingRule.DMA,
           "Load a rows x cols tile from DRAM (rows dram_stride_bytes apart) into a dense SRAM tile."),
    OpSpec(Opcode.DMA_ST, "DmaSt", Unit.DMA, _DMA_FIELDS, sem.dma_st, ops.dma_store, TimingRule.DMA,
           "Store a dense SRAM tile to DRAM rows dram_stride_bytes apart (overlapping rows: the later row wins)."),
    OpSpec(Opcode.NOC_SEND, "NocSend", Unit.NOC, (_uint("dst_core", CORE_BITS, "receiving core (row-major mesh index)"), *_NOC_TAIL,
                                                  _bool("multicast", "to every core of the mesh, itself included (optional, default 0; dst_core 0)",
                                                        key="mcast", default=0),
                                                  _uint("rows", DIM_BITS, "rows the payload is read from (optional, default 1)", min_value=1, default=1),
                                                  _uint("stride_bytes", SRAM_ADDR_BITS, "bytes between the starts of those rows (optional, default 0: one row)", key="stride", default=0)),
           None, ops.noc_send, TimingRule.NOC,
           "Send `bytes` bytes at addr to dst_core, labelled with tag, read as `rows` equal rows stride_bytes apart (a "
           "column slice of a wider tile); with multicast=1, one copy to every core of the mesh along the XY tree.",
           check=_send_rule),
    OpSpec(Opcode.NOC_RECV, "NocRecv", Unit.NOC, (_uint("src_core", CORE_BITS, "sending core (row-major mesh index)"), *_NOC_TAIL,
                                                  _uint("rows", DIM_BITS, "rows the payload lands in (optional, default 1)", min_value=1, default=1),
                                                  _uint("stride_bytes", SRAM_ADDR_BITS, "bytes between the starts of those rows (optional, default 0: one row)", key="stride", default=0),
                                                  _enum("reduce", Reduce, REDUCE_BITS, "none: the payload replaces the bytes at addr; int32 / fp32: "
                                                        "added to them elementwise (optional, default none)", key="add", default=0)),
           None, ops.noc_recv, TimingRule.NOC,
           "Complete when the matching NOC_SEND (src_core, this core, tag, bytes) has arrived; its bytes land at addr, "
           "as `rows` equal rows stride_bytes apart (a tile of a wider matrix), or are added to what is there (reduce: "
           "a reduction split over cores).",
           check=_recv_rows_rule),
    OpSpec(Opcode.LDW, "Ldw", Unit.MXU,
           (_fixed("w", Mem.SPAD, "the k x n weight tile"), _dim("k", "weight rows (<= array rows)"), _dim("n", "weight columns (<= array cols)"),
            _enum("dtype", DType, DTYPE_BITS, "weight type (int8 or bf16)", choices=(DType.INT8, DType.BF16))),
           sem.ldw, ops.ldw, TimingRule.WEIGHT_LOAD,
           "Preload a k x n weight tile from the scratchpad into the array for later MATMULs with preloaded=1."),
    OpSpec(Opcode.MATMUL, "Matmul", Unit.MXU,
           (_fixed("a", Mem.SPAD, "A (m x k)"), _fixed("b", Mem.SPAD, "B (k x n; its first fold not read when preloaded)"), _fixed("c", Mem.ACC, "C (m x n)"),
            _dim("m", "rows of A and C"), _dim("k", "columns of A, rows of B"), _dim("n", "columns of B and C"),
            _enum("precision", DType, DTYPE_BITS, "operand type: int8 (C int32) or bf16 (C fp32)", choices=(DType.INT8, DType.BF16), key="prec"),
            _bool("accumulate", "1: C += A @ B; 0: C = A @ B", key="acc"),
            _bool("preloaded", "1: B's first fold is the tile the last LDW put in the array", key="pre"),
            _bool("transpose_b", "1: B is stored n x k and used transposed (a transposed weight load)", key="tb")),
           sem.matmul, ops.matmul, TimingRule.MATMUL,
           "C[m,n] (+)= A[m,k] @ B[k,n] (B^T with transpose_b); may exceed the array (the timing model folds it)."),
    _vector(Opcode.VADD, "Vadd", _BINARY_FIELDS, sem.vadd, ops.vbinary, (VecOp.ADD,), "dst = src1 + src2"),
    _vector(Opcode.VSUB, "Vsub", _BINARY_FIELDS, sem.vsub, ops.vbinary, (VecOp.ADD,), "dst = src1 - src2"),
    _vector(Opcode.VMUL, "Vmul", _BINARY_FIELDS, sem.vmul, ops.vbinary, (VecOp.MUL,), "dst = src1 * src2"),
    _vector(Opcode.VMAX, "Vmax", _BINARY_FIELDS, sem.vmax, ops.vbinary, (VecOp.MAX,), "dst = maximum(src1, src2) (NaN propagates)"),
    _vector(Opcode.VEXP, "Vexp", _UNARY_FIELDS, sem.vexp, ops.vunary, (VecOp.EXP,), "dst = exp(src)"),
    _vector(Opcode.VGELU, "Vgelu", _UNARY_FIELDS, sem.vgelu, ops.vunary, (VecOp.GELU,), "dst = (src * 0.5) * (1 + erf(src * 0.70710677))"),
    _vector(Opcode.VRSQRT, "Vrsqrt", _UNARY_FIELDS, sem.vrsqrt, ops.vunary, (VecOp.RSQRT,), "dst = 1 / sqrt(src)"),
    _vector(Opcode.VRECIP, "Vrecip", _UNARY_FIELDS, sem.vrecip, ops.vunary, (VecOp.RECIP,), "dst = 1 / src"),
    _vector(Opcode.VSCALE, "Vscale", (*_memref("dst", "the rows x cols fp32 tile, scaled in place"), _ROWS, _COLS,
                                       _f32("a", "multiplier"), _f32("b", "addend")),
            sem.vscale, ops.vscale, (VecOp.MUL, VecOp.ADD), "dst = (dst * a) + b, in place"),
    _vector(Opcode.VRSUM, "Vrsum", _REDUCE_FIELDS, sem.vrsum, ops.vreduce, (VecOp.REDUCE,), "dst[r] = sum of src row r", reduce=True),
    _vector(Opcode.VRMAX, "Vrmax", _REDUCE_FIELDS, sem.vrmax, ops.vreduce, (VecOp.REDUCE,), "dst[r] = max of src row r", reduce=True),
    _vector(Opcode.VQUANT, "Vquant", (*_memref("dst", "the rows x cols int8 result"), *_memref("src", "the rows x cols fp32 source"),
                                       _ROWS, _COLS, _f32("scale", "quantization multiplier")),
            sem.vquant, ops.vquant, (VecOp.QUANT,), "dst = clip(rint(src * scale), -127, 127) as int8"),
    _vector(Opcode.VREQ, "Vreq", (*_memref("dst", "the rows x cols int8 result"), *_memref("src", "the rows x cols int32 source"),
                                   *_memref("scale", "the 1 x cols fp32 per-column scale"), _ROWS, _COLS),
            sem.vreq, ops.vreq, (VecOp.QUANT,), "dst = clip(rint(f32(src) * scale[col]), -127, 127) as int8"),
    _vector(Opcode.VDEQ, "Vdeq", (*_memref("dst", "the rows x cols fp32 result"), *_memref("src", "the rows x cols int32 source"),
                                   _ROWS, _COLS, _f32("scale", "dequantization multiplier")),
            sem.vdeq, ops.vdeq, (VecOp.CONVERT,), "dst = f32(src) * scale (int32 -> fp32, the converter scaling as it converts)"),
    _vector(Opcode.VDEQC, "Vdeqc", (*_memref("dst", "the rows x cols fp32 result"), *_memref("src", "the rows x cols int32 source"),
                                     *_memref("scale", "the 1 x cols fp32 per-column scale"), _ROWS, _COLS),
            sem.vdeqc, ops.vdeqc, (VecOp.CONVERT,), "dst = f32(src) * scale[col] (int32 -> fp32, per output column)"),
    OpSpec(Opcode.VCVT, "Vcvt", Unit.VEC,
           (*_memref("dst", "the rows x cols result"), *_memref("src", "the rows x cols source"), _ROWS, _COLS,
            _enum("from_dtype", DType, DTYPE_BITS, "source type", key="from"), _enum("to_dtype", DType, DTYPE_BITS, "result type", key="to")),
           sem.vcvt, ops.vcvt, TimingRule.VECTOR_ELEMENTWISE,
           "Convert int32->fp32, int8->fp32, fp32->bf16 (nearest even), bf16->fp32 or fp32->int32 (rint, saturate).",
           (VecOp.CONVERT,), _check_vcvt),
    OpSpec(Opcode.SIGNAL, "Signal", Unit.CTRL, _SYNC_FIELDS, sem.signal, ops.none, TimingRule.SYNC,
           "Increment semaphore sem once every earlier instruction of `unit` has completed."),
    OpSpec(Opcode.WAIT, "Wait", Unit.CTRL, _SYNC_FIELDS, sem.wait, ops.none, TimingRule.SYNC,
           "Block `unit` until semaphore sem > 0, then decrement it."),
    OpSpec(Opcode.BARRIER, "Barrier", Unit.CTRL, (), sem.nothing, ops.none, TimingRule.BARRIER,
           "All units of all cores meet."),
    OpSpec(Opcode.HALT, "Halt", Unit.CTRL, (), sem.nothing, ops.none, TimingRule.HALT,
           "End of this core's program (the last instruction)."),
)

OPCODES: dict[Opcode, OpSpec] = {s.opcode: s for s in _TABLE}

assert set(OPCODES) == set(Opcode), "every opcode has exactly one table row"
assert all(s.used_bits <= WORD_BITS for s in _TABLE), [(s.opcode.name, s.used_bits) for s in _TABLE]
