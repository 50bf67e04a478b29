"""Binary form of a Program: a small header, then each core's instructions as 128-bit little-endian words.

Header (little-endian), padded with zero bytes to a multiple of 16 so every word is 16-byte aligned:
    bytes 0..3    magic b"CISA"
    bytes 4..5    format version (1)
    bytes 6..7    mesh_rows (>= 1)
    bytes 8..9    mesh_cols (>= 1)
    bytes 10..15  reserved, zero
    then one u32 instruction count per core (mesh_rows * mesh_cols of them), then zero padding.
Words follow core by core (core 0 first). In a word, the opcode is bits 0..7 and fields follow from bit 8
in table order (see isa/opcodes.py and isa/SPEC.md); unused high bits are reserved and must be zero.
"""

from __future__ import annotations

import struct

from isa.errors import IsaError
from isa.instr import CLASSES, Instr
from isa.opcodes import OPCODES, WORD_BITS, FieldKind
from isa.program import MAX_CORES, Program
from isa.types import Opcode

MAGIC = b"CISA"
VERSION = 1
WORD_BYTES = WORD_BITS // 8
HEADER_FIXED_BYTES = 16

_HEAD = struct.Struct("<4sHHH6s")
_F32 = struct.Struct("<f")
_U32 = struct.Struct("<I")

# Per opcode: (shift, is_f32) of each field, and the number of bits in use.
_LAYOUT: dict[Opcode, tuple[tuple[tuple[int, bool], ...], int]] = {
    op: (tuple((s, f.kind is FieldKind.F32) for s, f in zip(spec.bit_offsets, spec.fields)), spec.used_bits)
    for op, spec in OPCODES.items()
}
_OPCODE_VALUES = {int(op): op for op in Opcode}


def encode_instr(instr: Instr) -> int:
    """The 128-bit word of one instruction, as an integer."""
    layout, _ = _LAYOUT[instr[0]]
    word = int(instr[0])
    for (shift, is_f32), v in zip(layout, instr[1:]):
        word |= (_U32.unpack(_F32.pack(v))[0] if is_f32 else int(v)) << shift
    return word


def decode_instr(word: int, *, where: str = "word 0") -> Instr:
    """The instruction in a 128-bit word; IsaError names `where` and the offending field."""
    code = word & 0xFF
    op = _OPCODE_VALUES.get(code)
    if op is None:
        raise IsaError(f"{where}: unknown opcode 0x{code:02x} in bits 0..7.")
    spec = OPCODES[op]
    layout, used = _LAYOUT[op]
    if word >> used:
        raise IsaError(
            f"{where}: {op.name} has reserved bits {used}..{WORD_BITS - 1} set (0x{word >> used:x}); they must be zero."
        )
    values: list[int | float] = []
    for (shift, is_f32), f in zip(layout, spec.fields):
        raw = (word >> shift) & f.max_value
        values.append(_F32.unpack(_U32.pack(raw))[0] if is_f32 else raw)
    try:
        return CLASSES[op](*values)
    except IsaError as exc:
        raise IsaError(f"{where}: {exc}") from None


def header_bytes(num_cores: int) -> int:
    """Size of the header for `num_cores` cores, including padding to a 16-byte boundary."""
    n = HEADER_FIXED_BYTES + 4 * num_cores
    return -(-n // WORD_BYTES) * WORD_BYTES


def encode(program: Program) -> bytes:
    """The binary form of `program`; `decode(encode(p)) == p`."""
    head = bytearray(header_bytes(program.num_cores))
    _HEAD.pack_into(head, 0, MAGIC, VERSION, program.mesh_rows, program.mesh_cols, bytes(6))
    for c, instrs in enumerate(program.cores):
        _U32.pack_into(head, HEADER_FIXED_BYTES + 4 * c, len(instrs))
    words = (encode_instr(i).to_bytes(WORD_BYTES, "little") for core in program.cores for i in core)
    return bytes(head) + b"".join(words)


def decode(data: bytes) -> Program:
    """A Program from its binary form; any malformation is an IsaError naming the byte offset and field."""
    data = bytes(data)
    if len(data) < HEADER_FIXED_BYTES:
        raise IsaError(f"binary truncated at byte offset {len(data)}: the header needs {HEADER_FIXED_BYTES} bytes.")
    magic, version, rows, cols, reserved = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise IsaError(f"bad magic {magic!r} at byte offset 0; a chipsim binary starts with {MAGIC!r}.")
    if version != VERSION:
        raise IsaError(f"unsupported format version {version} at byte offset 4; this reader knows version {VERSION}.")
    if rows < 1 or cols < 1:
        raise IsaError(f"mesh of {rows}x{cols} at byte offset 6 is empty; mesh_rows and mesh_cols must be at least 1.")
    if rows * cols > MAX_CORES:
        raise IsaError(f"mesh of {rows}x{cols} at byte offset 6 has more than the ISA's {MAX_CORES} cores.")
    if reserved != bytes(6):
        raise IsaError("reserved header bytes at byte offset 10..15 must be zero.")
    cores = rows * cols
    head = header_bytes(cores)
    if len(data) < head:
        raise IsaError(
            f"binary truncated at byte offset {len(data)}: the header of a {rows}x{cols} mesh needs {head} bytes "
            "(per-core instruction counts)."
        )
    counts = [_U32.unpack_from(data, HEADER_FIXED_BYTES + 4 * c)[0] for c in range(cores)]
    pad_start = HEADER_FIXED_BYTES + 4 * cores
    if any(data[pad_start:head]):
        raise IsaError(f"header padding at byte offset {pad_start}..{head - 1} must be zero.")
    expected = head + WORD_BYTES * sum(counts)
    if len(data) > expected:
        raise IsaError(
            f"binary has trailing bytes at byte offset {expected}: the header's instruction counts "
            f"need {expected} bytes, the binary has {len(data)}."
        )
    if len(data) < expected:
        word = (len(data) - head) // WORD_BYTES
        core, before = 0, 0
        while before + counts[core] <= word:
            before += counts[core]
            core += 1
        raise IsaError(
            f"binary truncated at byte offset {len(data)} in word {word} (core {core} instruction {word - before}): "
            f"the header's instruction counts need {expected} bytes, the binary has {len(data)}."
        )
    out: list[tuple[Instr, ...]] = []
    offset = head
    for c, n in enumerate(counts):
        instrs: list[Instr] = []
        for idx in range(n):
            word = int.from_bytes(data[offset : offset + WORD_BYTES], "little")
            where = f"byte offset {offset} (word {(offset - head) // WORD_BYTES}, core {c} instruction {idx})"
            instrs.append(decode_instr(word, where=where))
            offset += WORD_BYTES
        out.append(tuple(instrs))
    return Program(tuple(out), rows, cols)
