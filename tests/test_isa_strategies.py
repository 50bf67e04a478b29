"""Hypothesis strategies for valid instructions and programs (every opcode, random valid fields)."""

from __future__ import annotations

import enum

from hypothesis import given, settings
from hypothesis import strategies as st

from isa import CLASSES, OPCODES, FieldKind, Instr, Opcode, Program
from isa.instr import f32_round

_F32_MAX = 3.4028234663852886e38


def _field_strategy(f) -> st.SearchStrategy[object]:  # type: ignore[no-untyped-def]
    if f.kind is FieldKind.UINT:
        return st.one_of(st.just(f.min_value), st.just(f.max_value), st.integers(f.min_value, f.max_value))
    if f.kind is FieldKind.ENUM:
        return st.sampled_from([f.enum(v) for v in f.valid_enum_values()])
    if f.kind is FieldKind.BOOL:
        return st.booleans()
    return st.floats(-_F32_MAX, _F32_MAX, allow_nan=False, allow_infinity=False, width=32)


def _strided_fields(spec) -> st.SearchStrategy[dict[str, object]]:  # type: ignore[no-untyped-def]
    """NOC_SEND's and NOC_RECV's fields drawn valid by construction (their rules tie bytes to rows, stride and a
    receive's add elements; filtering random draws would discard most)."""
    by_name = {f.name: f for f in spec.fields}

    @st.composite
    def draw(d: st.DrawFn) -> dict[str, object]:
        kw = {f.name: d(_field_strategy(f)) for f in spec.fields if f.name not in ("bytes", "rows", "stride_bytes")}
        unit = 4 if kw.get("reduce") else 1
        rows = d(st.one_of(st.just(1), st.integers(1, 64)))
        per_row = unit * d(st.integers(1, by_name["bytes"].max_value // (rows * unit)))
        stride = d(st.integers(per_row, by_name["stride_bytes"].max_value)) if rows > 1 else d(_field_strategy(by_name["stride_bytes"]))
        return {**kw, "bytes": rows * per_row, "rows": rows, "stride_bytes": stride}

    return draw()


def instr_of(op: Opcode) -> st.SearchStrategy[Instr]:
    spec = OPCODES[op]
    fields = _strided_fields(spec) if op in (Opcode.NOC_SEND, Opcode.NOC_RECV) else st.fixed_dictionaries({f.name: _field_strategy(f) for f in spec.fields})
    if spec.check is not None:
        fields = fields.filter(lambda kw: spec.check(tuple.__new__(CLASSES[op], (op, *(kw[f.name] for f in spec.fields)))) is None)  # type: ignore[misc]
    return fields.map(lambda kw: CLASSES[op](**kw))


instrs: st.SearchStrategy[Instr] = st.sampled_from(list(Opcode)).flatmap(instr_of)


@st.composite
def programs(draw: st.DrawFn, max_cores: int = 4, max_len: int = 6) -> Program:
    rows = draw(st.integers(1, 2))
    cols = draw(st.integers(1, max_cores // rows))
    cores = tuple(tuple(draw(st.lists(instrs, max_size=max_len))) for _ in range(rows * cols))
    return Program(cores, rows, cols)


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_every_opcode_has_a_strategy(data: st.DataObject) -> None:
    for op in Opcode:
        i = data.draw(instr_of(op))
        assert i.op is op and isinstance(i, CLASSES[op])
        for f, v in zip(i.spec.fields, i.values):
            if f.kind is FieldKind.F32:
                assert v == f32_round(v)
            if f.kind is FieldKind.ENUM:
                assert isinstance(v, enum.IntEnum)
