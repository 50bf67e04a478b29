"""Markdown tables for isa/SPEC.md generated from the opcode table (a test keeps SPEC.md in step)."""

from __future__ import annotations

from isa.opcodes import OPCODES, Field, FieldKind, OpSpec
from isa.types import Mem


def _kind(f: Field) -> str:
    if f.kind is FieldKind.ENUM:
        assert f.enum is not None
        return f"{f.enum.__name__} ({', '.join(f.enum(v).name.lower() + '=' + str(v) for v in f.valid_enum_values())})"
    if f.kind is FieldKind.UINT:
        return f"uint {f.min_value}..{f.max_value}"
    return {FieldKind.F32: "fp32 immediate (finite)", FieldKind.BOOL: "bool 0/1"}[f.kind]


def _text(f: Field) -> str:
    if f.text_key is None:
        return "(memory prefix of its address)"
    if f.mem is not None:
        mem = f.mem.name.lower() if isinstance(f.mem, Mem) else "spad|acc"
        return f"`{f.text_key}={mem}:0x..`"
    return f"`{f.text_key}=`"


def field_table(spec: OpSpec) -> str:
    """The field table of one opcode: bit positions, widths, kinds, text keys, meaning."""
    rows = ["| bits | field | width | kind | text | meaning |", "|---|---|---|---|---|---|", f"| 0..7 | opcode | 8 | 0x{int(spec.opcode):02x} | `{spec.mnemonic}` | |"]
    for at, f in zip(spec.bit_offsets, spec.fields):
        rows.append(f"| {at}..{at + f.bits - 1} | {f.name} | {f.bits} | {_kind(f)} | {_text(f)} | {f.doc} |")
    if spec.used_bits < 128:
        rows.append(f"| {spec.used_bits}..127 | reserved | {128 - spec.used_bits} | zero | | |")
    return "\n".join(rows)


def summary_table() -> str:
    """One line per opcode: value, mnemonic, unit, timing rule, vector-op classes."""
    rows = ["| opcode | mnemonic | unit | timing rule | vector ops |", "|---|---|---|---|---|"]
    for s in OPCODES.values():
        unit = "named by `unit`" if s.opcode.name in ("SIGNAL", "WAIT") else s.unit.name
        vec = ", ".join(v.value for v in s.vec_ops) or "-"
        rows.append(f"| 0x{int(s.opcode):02x} | `{s.mnemonic}` | {unit} | {s.timing.value} | {vec} |")
    return "\n".join(rows)
