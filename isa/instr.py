"""Instruction objects: one immutable tuple class per opcode, generated from the table in isa/opcodes.py.

`Matmul(a_addr=0x100, b_addr=0x4000, c_addr=0, m=128, k=128, n=128, precision=DType.INT8, accumulate=True,
preloaded=False)` validates every field (IsaError on a bad one) and reads back as `instr.m`; `instr.op` is
the Opcode (element 0 of the tuple, so instructions of different opcodes never compare equal).
"""

from __future__ import annotations

import collections
import enum
import math
import numbers
import struct
from typing import ClassVar

import numpy as np

from isa.errors import IsaError
from isa.opcodes import OPCODES, Field, FieldKind, OpSpec
from isa.types import Opcode, Unit

FieldValue = int | float | bool | enum.IntEnum

_F32 = struct.Struct("<f")


def f32_round(value: float) -> float:
    """`value` rounded to the nearest float32 (an fp32 immediate holds exactly this)."""
    return float(_F32.unpack(_F32.pack(value))[0])


def _limits(f: Field) -> tuple[FieldKind, int, int, frozenset[int]]:
    return f.kind, f.min_value, f.max_value, frozenset(f.valid_enum_values()) if f.enum is not None else frozenset()


# Per opcode, per field: (kind, min, max, valid enum values), computed once.
_LIMITS: dict[Opcode, tuple[tuple[FieldKind, int, int, frozenset[int]], ...]] = {
    op: tuple(_limits(f) for f in spec.fields) for op, spec in OPCODES.items()
}


def _check_field(spec: OpSpec, f: Field, v: object, limits: tuple[FieldKind, int, int, frozenset[int]]) -> FieldValue:
    # Fast paths for the plain Python values the mapper passes (no ABC isinstance checks); the general checks
    # below give the same results and the error messages.
    t = type(v)
    kind, lo, hi, valid = limits
    if t is int and kind is FieldKind.UINT and lo <= v <= hi:  # type: ignore[operator]
        return v  # type: ignore[return-value]
    if t is bool and kind is FieldKind.BOOL:
        return v  # type: ignore[return-value]
    if t is f.enum and v in valid:
        return v  # type: ignore[return-value]
    where = f"{spec.opcode.name} field {f.name}"
    if f.kind is FieldKind.UINT:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise IsaError(f"{where} must be an integer in {f.min_value}..{f.max_value}, got {v!r}.")
        n = int(v)
        if not f.min_value <= n <= f.max_value:
            raise IsaError(f"{where} is {n}, outside the {f.bits}-bit range {f.min_value}..{f.max_value}.")
        return n
    if f.kind is FieldKind.ENUM:
        assert f.enum is not None
        valid = f.valid_enum_values()
        if isinstance(v, enum.Enum) and not isinstance(v, f.enum) or isinstance(v, bool) or not isinstance(v, int) or int(v) not in valid:
            names = ", ".join(f.enum(x).name.lower() for x in valid)
            members = {int(m): m.name.lower() for m in f.enum}
            shown = v.name.lower() if isinstance(v, enum.Enum) else members.get(v, repr(v)) if isinstance(v, int) else repr(v)
            raise IsaError(f"{where} is {shown}; valid values are {names}.")
        return f.enum(v)
    if f.kind is FieldKind.BOOL:
        if v not in (0, 1) or not isinstance(v, int):
            raise IsaError(f"{where} must be 0 or 1, got {v!r}.")
        return bool(v)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise IsaError(f"{where} must be a finite float32 number, got {v!r}.")
    try:
        r = f32_round(float(v))
    except OverflowError:
        r = math.inf
    if not math.isfinite(r):
        raise IsaError(f"{where} must be a finite float32 number, got {v!r}.")
    return r


_NAMES: dict[Opcode, tuple[str, ...]] = {op: tuple(f.name for f in spec.fields) for op, spec in OPCODES.items()}


class Instr(tuple):  # type: ignore[type-arg]
    """Base of every instruction class; an instruction is the tuple (op, *fields)."""

    __slots__ = ()
    spec: ClassVar[OpSpec]
    OPCODE: ClassVar[Opcode]

    def __new__(cls, *args: FieldValue, **kwargs: FieldValue) -> Instr:
        spec = cls.spec  # the validating path: each class's generated constructor (_fast_new) takes plain values
        fields = spec.fields
        if len(args) > len(fields):
            raise IsaError(f"{spec.opcode.name} takes {len(fields)} fields, got {len(args)} positional values.")
        values: list[FieldValue] = []
        limits = _LIMITS[spec.opcode]
        for idx, f in enumerate(fields):
            if idx < len(args):
                if f.name in kwargs:
                    raise IsaError(f"{spec.opcode.name} field {f.name} is given twice.")
                v: object = args[idx]
            elif f.name in kwargs:
                v = kwargs[f.name]
            elif f.default is not None:
                v = f.default
            else:
                raise IsaError(f"{spec.opcode.name} is missing field {f.name}; its fields are {', '.join(x.name for x in fields)}.")
            values.append(_check_field(spec, f, v, limits[idx]))
        if len(kwargs) + len(args) > len(fields):
            names = {f.name for f in fields}
            extra = sorted(k for k in kwargs if k not in names)
            raise IsaError(f"{spec.opcode.name} has no field {extra[0]}; its fields are {', '.join(f.name for f in fields)}.")
        self = tuple.__new__(cls, (spec.opcode, *values))
        if spec.check is not None:
            problem = spec.check(self)
            if problem is not None:
                raise IsaError(problem + ".")
        return self

    def __getnewargs__(self) -> tuple[FieldValue, ...]:  # pickling re-validates through __new__
        return tuple(self[1:])

    def _replace(self, **kwargs: FieldValue) -> Instr:
        current = {f.name: v for f, v in zip(self.spec.fields, self[1:])}
        current.update(kwargs)
        return type(self)(**current)

    def at_dram(self, dram_addr: int) -> Instr:
        """This DMA instruction with another `dram_addr`, every other field as it is (only that one is checked)."""
        at = _DRAM_FIELD.get(self[0])
        if at is None:
            raise IsaError(f"{self[0].name} has no dram_addr field.")
        kind, lo, hi, _ = _LIMITS[self[0]][at - 1]
        if type(dram_addr) is not int or not lo <= dram_addr <= hi:
            return self._replace(dram_addr=dram_addr)  # the general path words the error
        return tuple.__new__(type(self), (*self[:at], dram_addr, *self[at + 1:]))

    @property
    def values(self) -> tuple[FieldValue, ...]:
        """The field values in table order (without the opcode)."""
        return tuple(self[1:])

    def __repr__(self) -> str:
        return f"{self.spec.class_name}({', '.join(f'{f.name}={v!r}' for f, v in zip(self.spec.fields, self[1:]))})"

    def __str__(self) -> str:
        from isa.asm import format_instr

        return format_instr(self)


# Per opcode with a DRAM address: that field's index in the instruction tuple.
_DRAM_FIELD: dict[Opcode, int] = {op: 1 + n.index("dram_addr") for op, n in _NAMES.items() if "dram_addr" in n}


_F32_MAX = 3.4028234663852886e38


def _fast_new(spec: OpSpec):  # type: ignore[no-untyped-def]
    """A constructor for one opcode with its field checks written out (generated, as collections.namedtuple
    generates its classes): every field by name as a plain in-range value (optional ones may be left out) builds
    the tuple directly; anything else goes through Instr.__new__, which validates it all and words the errors.
    The checks are those of _check_field's fast paths, plus exactly representable finite float32 immediates."""
    names = _NAMES[spec.opcode]
    env: dict[str, object] = {"tuple_new": tuple.__new__, "general": Instr.__new__, "OP": spec.opcode, "check": spec.check,
                              "IsaError": IsaError, "names": frozenset(names), "f32_round": f32_round, "F32_MAX": _F32_MAX}
    gets, tests = [], []
    for i, (f, (kind, lo, hi, valid)) in enumerate(zip(spec.fields, _LIMITS[spec.opcode])):
        v = f"v{i}"
        if f.default is None:
            gets.append(f"{v} = kw[{f.name!r}]")
        else:
            env[f"d{i}"] = _check_field(spec, f, f.default, (kind, lo, hi, valid))
            gets.append(f"{v} = kw.get({f.name!r}, d{i})")
        if kind is FieldKind.UINT:
            tests.append(f"type({v}) is int and {lo} <= {v} <= {hi}")
        elif kind is FieldKind.BOOL:
            tests.append(f"type({v}) is bool")
        elif kind is FieldKind.ENUM:
            env[f"E{i}"], env[f"valid{i}"] = f.enum, valid
            tests.append(f"type({v}) is E{i} and {v} in valid{i}")
        else:
            tests.append(f"type({v}) is float and -F32_MAX <= {v} <= F32_MAX and f32_round({v}) == {v}")
    values = "".join(f" v{i}," for i in range(len(names)))
    source = "\n".join([
        "def __new__(cls, *args, **kw):",
        "    if args or not kw.keys() <= names:",
        "        return general(cls, *args, **kw)",
        "    try:",
        *(f"        {g}" for g in gets or ["pass"]),
        "    except KeyError:",
        "        return general(cls, *args, **kw)",
        f"    if not ({' and '.join(tests) or 'True'}):",
        "        return general(cls, *args, **kw)",
        f"    self = tuple_new(cls, (OP,{values}))",
        "    if check is not None:",
        "        problem = check(self)",
        "        if problem is not None:",
        "            raise IsaError(problem + '.')",
        "    return self",
    ])
    exec(source, env)  # noqa: S102 - our own generated source, from the opcode table
    return env["__new__"]


def _make_class(spec: OpSpec) -> type[Instr]:
    base = collections.namedtuple(f"_{spec.class_name}Tuple", ("op", *(f.name for f in spec.fields)))  # type: ignore[misc]
    ns = {"__slots__": (), "spec": spec, "OPCODE": spec.opcode, "__doc__": f"{spec.opcode.name}: {spec.doc}"}
    for name in ("__getnewargs__", "_replace", "at_dram", "__repr__", "__str__"):
        ns[name] = Instr.__dict__[name]
    ns["__new__"] = _fast_new(spec)
    return type(spec.class_name, (base, Instr), ns)


CLASSES: dict[Opcode, type[Instr]] = {op: _make_class(spec) for op, spec in OPCODES.items()}

DmaLd = CLASSES[Opcode.DMA_LD]
DmaSt = CLASSES[Opcode.DMA_ST]
NocSend = CLASSES[Opcode.NOC_SEND]
NocRecv = CLASSES[Opcode.NOC_RECV]
Ldw = CLASSES[Opcode.LDW]
Matmul = CLASSES[Opcode.MATMUL]
Vadd = CLASSES[Opcode.VADD]
Vsub = CLASSES[Opcode.VSUB]
Vmul = CLASSES[Opcode.VMUL]
Vmax = CLASSES[Opcode.VMAX]
Vexp = CLASSES[Opcode.VEXP]
Vgelu = CLASSES[Opcode.VGELU]
Vrsqrt = CLASSES[Opcode.VRSQRT]
Vrecip = CLASSES[Opcode.VRECIP]
Vscale = CLASSES[Opcode.VSCALE]
Vrsum = CLASSES[Opcode.VRSUM]
Vrmax = CLASSES[Opcode.VRMAX]
Vquant = CLASSES[Opcode.VQUANT]
Vreq = CLASSES[Opcode.VREQ]
Vdeq = CLASSES[Opcode.VDEQ]
Vdeqc = CLASSES[Opcode.VDEQC]
Vcvt = CLASSES[Opcode.VCVT]
Signal = CLASSES[Opcode.SIGNAL]
Wait = CLASSES[Opcode.WAIT]
Barrier = CLASSES[Opcode.BARRIER]
Halt = CLASSES[Opcode.HALT]


def queue_of(instr: Instr) -> Unit:
    """The unit whose queue the front-end dispatches `instr` to (SIGNAL/WAIT: the unit they name)."""
    op = instr[0]
    if op is Opcode.SIGNAL or op is Opcode.WAIT:
        return instr[1]  # type: ignore[no-any-return]
    return instr.spec.unit
