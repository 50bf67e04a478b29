"""Text assembly: one instruction per line, `key=value` operands, round-tripping with the objects.

    .mesh 1 2                      # mesh rows and columns (default 1 1)
    .core 0                        # following lines belong to core 0
    dma_ld sram=spad:0x0 dram=0x1000 rows=128 cols=64 stride=768 dtype=int8
    matmul a=spad:0x100 b=spad:0x4000 c=acc:0x0 m=128 k=128 n=128 prec=int8 acc=1 pre=0 tb=0
    halt

Each field of the table appears once as `key=value`, in any order; SRAM addresses are written with their
memory (`spad:0x100`, `acc:0x0`); enums by lower-case name; booleans 0/1; fp32 immediates as decimal
floats. `#` starts a comment.
"""

from __future__ import annotations

import enum
import re

import numpy as np

from isa.errors import IsaError
from isa.instr import CLASSES, FieldValue, Instr
from isa.opcodes import CORE_BITS, OPCODES, Field, FieldKind, OpSpec
from isa.program import MAX_CORES, Program
from isa.types import Mem, Opcode

_BY_MNEMONIC: dict[str, OpSpec] = {s.mnemonic: s for s in OPCODES.values()}
_INT_RE = re.compile(r"(0x[0-9a-f_]+|0b[01_]+|[0-9][0-9_]*)", re.IGNORECASE)


def _format_value(f: Field, v: FieldValue) -> str:
    if f.kind is FieldKind.ENUM:
        assert isinstance(v, enum.Enum)
        return v.name.lower()
    if f.kind is FieldKind.BOOL:
        return "1" if v else "0"
    if f.kind is FieldKind.F32:
        return str(np.float32(v))  # shortest decimal that reads back as the same float32
    return f"0x{v:x}" if f.hex else str(v)


def format_instr(instr: Instr) -> str:
    """The assembly line of one instruction, e.g. `vexp dst=acc:0x0 src=acc:0x0 rows=1 cols=64`."""
    spec = instr.spec
    values = dict(zip((f.name for f in spec.fields), instr[1:]))
    parts = [spec.mnemonic]
    for f in spec.fields:
        key = f.text_key
        if key is None or (f.default is not None and values[f.name] == f.default):
            continue  # an optional field at its default is left out
        text = _format_value(f, values[f.name])
        if f.mem is not None:
            mem = f.mem if isinstance(f.mem, Mem) else values[f.mem]
            assert isinstance(mem, Mem)
            text = f"{mem.name.lower()}:{text}"
        parts.append(f"{key}={text}")
    return " ".join(parts)


def format_program(program: Program) -> str:
    """The assembly text of a whole program; `parse(format_program(p)) == p`."""
    lines = [f".mesh {program.mesh_rows} {program.mesh_cols}"]
    for c, instrs in enumerate(program.cores):
        lines.append(f".core {c}")
        lines.extend(f"    {format_instr(i)}" for i in instrs)
    return "\n".join(lines) + "\n"


def _parse_int(text: str) -> int | None:
    return int(text.replace("_", ""), 0) if _INT_RE.fullmatch(text) else None


def _parse_value(f: Field, text: str, where: str) -> FieldValue:
    if f.kind is FieldKind.ENUM:
        assert f.enum is not None
        names = {f.enum(v).name.lower(): f.enum(v) for v in f.valid_enum_values()}
        if text.lower() not in names:
            raise IsaError(f"{where}: {text!r} is not a valid {f.text_key}; expected one of {', '.join(names)}.")
        return names[text.lower()]
    if f.kind is FieldKind.F32:
        try:
            return float(text)
        except ValueError:
            raise IsaError(f"{where}: {text!r} is not a number; {f.text_key} is a float32 immediate.") from None
    n = _parse_int(text)
    if n is None:
        raise IsaError(f"{where}: {text!r} is not an integer (decimal, 0x hex or 0b binary).")
    return n


def parse_instr(line: str, *, where: str = "line 1") -> Instr:
    """One instruction from its assembly text (comments allowed); IsaError names `where` and the token."""
    tokens = line.split("#", 1)[0].split()
    if not tokens:
        raise IsaError(f"{where}: expected an instruction, found an empty line.")
    spec = _BY_MNEMONIC.get(tokens[0].lower())
    if spec is None:
        raise IsaError(f"{where}: unknown instruction {tokens[0]!r}; valid instructions are {', '.join(_BY_MNEMONIC)}.")
    by_key = {f.text_key: f for f in spec.fields if f.text_key is not None}
    values: dict[str, FieldValue] = {}
    for tok in tokens[1:]:
        key, eq, text = tok.partition("=")
        if not eq or not text:
            raise IsaError(f"{where}: token {tok!r} is not of the form key=value.")
        f = by_key.get(key.lower())
        if f is None:
            raise IsaError(f"{where}: {spec.mnemonic} has no operand {key!r} (token {tok!r}); its operands are {', '.join(by_key)}.")
        if f.name in values:
            raise IsaError(f"{where}: operand {key!r} is given twice (token {tok!r}).")
        if f.mem is not None:
            mem_text, colon, text = text.partition(":")
            mems = {m.name.lower(): m for m in Mem}
            if not colon or mem_text.lower() not in mems:
                raise IsaError(f"{where}: token {tok!r} needs a memory-qualified address such as {key}=spad:0x100.")
            mem = mems[mem_text.lower()]
            if isinstance(f.mem, Mem):
                if mem != f.mem:
                    raise IsaError(f"{where}: operand {key!r} of {spec.mnemonic} must be in {f.mem.name.lower()}, got token {tok!r}.")
            else:
                values[f.mem] = mem
        values[f.name] = _parse_value(f, text, f"{where} token {tok!r}")
    missing = [f.text_key for f in spec.fields if f.text_key is not None and f.name not in values and f.default is None]
    if missing:
        raise IsaError(f"{where}: {spec.mnemonic} is missing operand {missing[0]!r}; it needs {', '.join(by_key)}.")
    try:
        return CLASSES[spec.opcode](**values)
    except IsaError as exc:
        raise IsaError(f"{where}: {exc}") from None


def parse(text: str) -> Program:
    """A Program from assembly text: `.mesh R C` (optional, first), then `.core N` sections."""
    mesh: tuple[int, int] | None = None
    sections: dict[int, list[Instr]] = {}
    current: list[Instr] | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        where = f"line {lineno}"
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        if tokens[0] == ".mesh":
            nums = [_parse_int(t) for t in tokens[1:]]
            if len(nums) != 2 or None in nums:
                raise IsaError(f"{where}: .mesh needs two integers (rows cols), got {' '.join(tokens[1:])!r}.")
            if mesh is not None or sections:
                raise IsaError(f"{where}: .mesh must appear once, before any .core section.")
            rows, cols = nums
            assert rows is not None and cols is not None
            if rows < 1 or cols < 1 or rows * cols > MAX_CORES:
                raise IsaError(f"{where}: .mesh rows and cols must be at least 1 and make at most {MAX_CORES} cores "
                               f"(the ISA's {CORE_BITS}-bit core numbers), got {rows} {cols}.")
            mesh = (rows, cols)
        elif tokens[0] == ".core":
            num = _parse_int(tokens[1]) if len(tokens) == 2 else None
            if num is None:
                raise IsaError(f"{where}: .core needs one core number, got {' '.join(tokens[1:])!r}.")
            r, c = mesh or (1, 1)
            if num >= r * c:
                raise IsaError(f"{where}: .core {num} is outside the {r}x{c} mesh (cores 0..{r * c - 1}).")
            if num in sections:
                raise IsaError(f"{where}: .core {num} appears twice; each core has one section.")
            current = sections[num] = []
        elif tokens[0].startswith("."):
            raise IsaError(f"{where}: unknown directive {tokens[0]!r}; valid directives are .mesh and .core.")
        else:
            if current is None:
                raise IsaError(f"{where}: instruction {tokens[0]!r} comes before any .core directive.")
            current.append(parse_instr(raw, where=where))
    r, c = mesh or (1, 1)
    return Program(tuple(tuple(sections.get(n, ())) for n in range(r * c)), r, c)


__all__ = ["Opcode", "format_instr", "format_program", "parse", "parse_instr"]
