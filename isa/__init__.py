"""The ISA: the contract between the compiler (mapper/) and the hardware model (chipsim/).

One table (`isa.opcodes.OPCODES`) defines every opcode; instruction classes, the 128-bit binary encoding,
the text assembly, the verifier and the functional semantics all derive from it. See isa/SPEC.md.
"""

from isa.asm import format_instr, format_program, parse, parse_instr
from isa.encoding import decode, decode_instr, encode, encode_instr
from isa.errors import IsaError
from isa.instr import (
    CLASSES,
    Barrier,
    DmaLd,
    DmaSt,
    FieldValue,
    Halt,
    Instr,
    Ldw,
    Matmul,
    NocRecv,
    NocSend,
    Signal,
    Vadd,
    Vcvt,
    Vdeq,
    Vdeqc,
    Vexp,
    Vgelu,
    Vmax,
    Vmul,
    Vquant,
    Vrecip,
    Vreq,
    Vrmax,
    Vrsqrt,
    Vrsum,
    Vscale,
    Vsub,
    Wait,
    queue_of,
)
from isa.opcodes import MAX_DIM, OPCODES, SRAM_ADDR_SPACE_BYTES, Field, FieldKind, OpSpec
from isa.operands import Operand, dram_extent
from isa.program import Program
from isa.semantics import CoreState, apply, read_bytes, write_bytes
from isa.types import Bcast, DType, Mem, Opcode, Reduce, TimingRule, Unit, VecOp
from isa.verify import VerifyError, verify

__all__ = [
    "CLASSES", "MAX_DIM", "OPCODES", "SRAM_ADDR_SPACE_BYTES", "Barrier", "Bcast", "CoreState", "DType", "DmaLd", "DmaSt", "Field",
    "FieldKind", "FieldValue", "Halt", "Instr", "IsaError", "Ldw", "Matmul", "Mem", "NocRecv", "NocSend", "OpSpec",
    "Opcode", "Operand", "Program", "Reduce", "Signal", "TimingRule", "Unit", "Vadd", "Vcvt", "Vdeq", "Vdeqc", "VecOp", "Vexp", "Vgelu",
    "VerifyError", "Vmax", "Vmul", "Vquant", "Vrecip", "Vreq", "Vrmax", "Vrsqrt", "Vrsum", "Vscale", "Vsub", "Wait",
    "apply", "decode", "decode_instr", "dram_extent", "encode", "encode_instr", "format_instr", "format_program",
    "parse", "parse_instr", "queue_of", "read_bytes", "verify", "write_bytes",
]
