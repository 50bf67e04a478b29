"""Binary encoding: round trips, the fixed word layout, and decode fuzzing (only IsaError, with offsets)."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_isa_strategies import instrs, programs

from isa import (
    OPCODES,
    Bcast,
    DType,
    FieldKind,
    Halt,
    Instr,
    IsaError,
    Matmul,
    Mem,
    Opcode,
    Program,
    Vadd,
    Vscale,
    decode,
    decode_instr,
    encode,
    encode_instr,
)
from isa.encoding import WORD_BYTES, header_bytes
from isa.opcodes import WORD_BITS

FUZZ = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def _mm(**kw: object) -> Instr:
    base = dict(a_addr=0x100, b_addr=0x4000, c_addr=0, m=128, k=128, n=128, precision=DType.INT8, accumulate=True, preloaded=False, transpose_b=False)
    base.update(kw)
    return Matmul(**base)


def test_every_opcode_fits_one_word() -> None:
    for spec in OPCODES.values():
        assert spec.used_bits <= WORD_BITS, spec.opcode


@settings(max_examples=300, deadline=None)
@given(instrs)
def test_instruction_word_round_trip(i: Instr) -> None:
    word = encode_instr(i)
    assert 0 <= word < 1 << 128 and word & 0xFF == int(i.op)
    back = decode_instr(word)
    assert back == i and type(back) is type(i) and hash(back) == hash(i)
    assert pickle.loads(pickle.dumps(i)) == i


@settings(max_examples=100, deadline=None)
@given(programs())
def test_program_round_trip(p: Program) -> None:
    data = encode(p)
    assert len(data) == header_bytes(p.num_cores) + WORD_BYTES * p.num_instructions
    assert decode(data) == p


def test_known_word_layout() -> None:
    # opcode 0x11 in bits 0..7, a_addr from bit 8, b_addr from bit 32, c_addr from bit 56, m/k/n 14 bits each
    # from bit 80, precision 2 bits at 122, accumulate at 124, preloaded at 125.
    i = _mm(a_addr=0x100, b_addr=0x4000, c_addr=0x20, m=3, k=5, n=7, precision=DType.BF16, accumulate=True, preloaded=True)
    expected = 0x11 | 0x100 << 8 | 0x4000 << 32 | 0x20 << 56 | 3 << 80 | 5 << 94 | 7 << 108 | 2 << 122 | 1 << 124 | 1 << 125
    assert encode_instr(i) == expected
    v = Vscale(dst_mem=Mem.ACC, dst_addr=4, rows=1, cols=2, a=1.0, b=-2.0)
    f32 = struct.unpack("<I", struct.pack("<f", 1.0))[0]
    assert encode_instr(v) >> 62 & 0xFFFFFFFF == f32


def test_header_layout() -> None:
    p = Program(((Halt(),), ()), 1, 2)
    data = encode(p)
    assert data[:4] == b"CISA" and data[4:6] == b"\x01\x00" and data[6:10] == b"\x01\x00\x02\x00"
    assert data[16:24] == b"\x01\x00\x00\x00\x00\x00\x00\x00" and len(data) == 32 + 16
    assert data[32] == 0xFF


def test_instructions_of_different_opcodes_never_compare_equal() -> None:
    fields = (Mem.SPAD, 0, Mem.SPAD, 0, Mem.SPAD, 0, 1, 1, Bcast.NONE)
    from isa import Vsub

    assert Vadd(*fields) != Vsub(*fields)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated at byte offset 0"),
        (b"XISA" + bytes(12), "bad magic b'XISA' at byte offset 0"),
        (b"CISA\x02\x00" + bytes(10), "unsupported format version 2 at byte offset 4"),
        (b"CISA\x01\x00\x00\x00\x01\x00" + bytes(6), "mesh of 0x1 at byte offset 6"),
        (b"CISA\x01\x00\x01\x00\x01\x00\x01" + bytes(5), "reserved header bytes at byte offset 10..15"),
        (b"CISA\x01\x00\x02\x00\x02\x00" + bytes(6), "truncated at byte offset 16: the header of a 2x2 mesh"),
    ],
)
def test_bad_headers_are_pinned(data: bytes, message: str) -> None:
    with pytest.raises(IsaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode(data)


def _one(i: Instr) -> bytes:
    return encode(Program(((i,),)))


def test_truncated_and_trailing_bytes() -> None:
    data = _one(Halt())
    with pytest.raises(IsaError, match=r"^binary truncated at byte offset 47 in word 0 \(core 0 instruction 0\): .* need 48 bytes, the binary has 47\.$"):
        decode(data[:-1])
    with pytest.raises(IsaError, match=r"has trailing bytes at byte offset 48"):
        decode(data + b"\x00")


def _patch_word(data: bytes, word: int) -> bytes:
    return data[:32] + word.to_bytes(16, "little")


def test_unknown_opcode_names_offset() -> None:
    with pytest.raises(IsaError, match=r"^byte offset 32 \(word 0, core 0 instruction 0\): unknown opcode 0x07 in bits 0\.\.7\.$"):
        decode(_patch_word(_one(Halt()), 0x07))


def test_reserved_bits_name_offset_and_range() -> None:
    data = _one(_mm())
    word = int.from_bytes(data[32:], "little") | 1 << 127
    with pytest.raises(IsaError, match=r"byte offset 32 .*MATMUL has reserved bits 127\.\.127 set"):
        decode(_patch_word(data, word))


def test_bad_enum_value_names_field() -> None:
    data = _one(Vadd(Mem.SPAD, 0, Mem.SPAD, 0, Mem.SPAD, 0, 1, 1, Bcast.NONE))
    word = int.from_bytes(data[32:], "little") | 3 << 8  # dst_mem = 3
    with pytest.raises(IsaError, match=r"byte offset 32 .*: VADD field dst_mem is 3; valid values are spad, acc\."):
        decode(_patch_word(data, word))
    word = int.from_bytes(data[32:], "little") | 3 << 114  # bcast = 3
    with pytest.raises(IsaError, match=r"VADD field bcast is 3; valid values are none, row, col\."):
        decode(_patch_word(data, word))


def test_zero_dimension_and_nonfinite_immediate_are_rejected() -> None:
    data = _one(_mm())
    word = int.from_bytes(data[32:], "little") & ~((1 << 14) - 1 << 80)  # m = 0
    with pytest.raises(IsaError, match=r"MATMUL field m is 0, outside the 14-bit range 1\.\.16383"):
        decode(_patch_word(data, word))
    v = Vscale(Mem.SPAD, 0, 1, 1, 1.0, 0.0)
    word = encode_instr(v) | 0x7F800000 << 62  # a = +inf
    with pytest.raises(IsaError, match=r"VSCALE field a must be a finite float32 number, got inf"):
        decode_instr(word)


def test_precision_outside_its_choices() -> None:
    word = encode_instr(_mm()) | 1 << 122  # precision = INT32
    with pytest.raises(IsaError, match=r"MATMUL field precision is int32; valid values are int8, bf16\."):
        decode_instr(word)


@FUZZ
@given(st.binary(max_size=200))
def test_decode_random_bytes_raises_only_isa_error(data: bytes) -> None:
    try:
        decode(data)
    except IsaError as exc:
        assert "byte offset" in str(exc) or "header" in str(exc)


@FUZZ
@given(st.binary(min_size=16, max_size=16).map(lambda b: b"CISA\x01\x00\x01\x00\x01\x00" + bytes(6) + b"\x02\x00\x00\x00" + bytes(12) + b))
def test_decode_random_words_raise_only_isa_error(data: bytes) -> None:
    data = data + bytes(16)
    try:
        p = decode(data)
    except IsaError as exc:
        assert "byte offset 32" in str(exc) or "byte offset 48" in str(exc)
    else:
        assert encode(p) == data


@FUZZ
@given(programs(), st.data())
def test_bit_flips_of_valid_programs(p: Program, data: st.DataObject) -> None:
    raw = bytearray(encode(p))
    for _ in range(data.draw(st.integers(1, 3))):
        bit = data.draw(st.integers(0, len(raw) * 8 - 1))
        raw[bit // 8] ^= 1 << (bit % 8)
    try:
        q = decode(bytes(raw))
    except IsaError as exc:
        assert "offset" in str(exc)
    else:  # the flip hit a field and produced another valid program: it must re-encode to the same bytes
        assert encode(q) == bytes(raw)


def test_construction_errors_are_one_sentence() -> None:
    with pytest.raises(IsaError, match=r"^MATMUL field m is 16384, outside the 14-bit range 1\.\.16383\.$"):
        _mm(m=16384)
    with pytest.raises(IsaError, match=r"^MATMUL is missing field preloaded; its fields are"):
        Matmul(a_addr=0, b_addr=0, c_addr=0, m=1, k=1, n=1, precision=DType.INT8, accumulate=True)
    with pytest.raises(IsaError, match=r"^MATMUL has no field acc; its fields are"):
        _mm(acc=1)
    with pytest.raises(IsaError, match=r"^MATMUL field a_addr must be an integer in 0\.\.16777215, got 1\.5\.$"):
        _mm(a_addr=1.5)
    with pytest.raises(IsaError, match=r"^VSCALE field a must be a finite float32 number, got 1e\+39\.$"):
        Vscale(Mem.SPAD, 0, 1, 1, 1e39, 0.0)
    with pytest.raises(IsaError, match=r"^HALT takes 0 fields, got 1 positional values\.$"):
        Halt(1)
    with pytest.raises(IsaError, match=r"^MATMUL field accumulate must be 0 or 1, got 2\.$"):
        _mm(accumulate=2)


def test_fp32_immediates_round_to_float32() -> None:
    v = Vscale(Mem.SPAD, 0, 1, 1, 0.1, 0.0)
    assert v.a == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert decode_instr(encode_instr(v)) == v


def test_replace_revalidates() -> None:
    i = _mm()
    assert i._replace(m=4).m == 4
    with pytest.raises(IsaError, match="outside"):
        i._replace(m=0)


def test_program_validation() -> None:
    with pytest.raises(IsaError, match=r"^Program has 1 core programs but a 1x2 mesh has 2 cores\.$"):
        Program(((Halt(),),), 1, 2)
    with pytest.raises(IsaError, match=r"^core 0 instruction 0 is int, not an isa instruction\.$"):
        Program(((1,),))  # type: ignore[arg-type]
    with pytest.raises(IsaError, match=r"^Program cores must be a tuple"):
        Program([[Halt()]])  # type: ignore[arg-type]


def test_opcode_table_is_complete() -> None:
    assert set(OPCODES) == set(Opcode)


def test_spec_md_field_tables_match_the_opcode_table() -> None:
    from pathlib import Path

    from isa.docs import field_table, summary_table

    spec_md = (Path(__file__).parent.parent / "isa" / "SPEC.md").read_text()
    assert summary_table() in spec_md
    for op, spec in OPCODES.items():
        assert f"### {op.name}\n" in spec_md and field_table(spec) in spec_md, f"isa/SPEC.md is out of date for {op.name}"


def test_numpy_scalars_are_accepted_and_normalized() -> None:
    import numpy as np

    i = _mm(m=np.int64(64), a_addr=np.uint32(16))
    assert i == _mm(m=64, a_addr=16) and type(i.m) is int
    v = Vscale(Mem.SPAD, 0, 1, 1, np.float32(0.5), np.float64(2.0))
    assert v.a == 0.5 and type(v.a) is float
    with pytest.raises(IsaError, match=r"^MATMUL field m must be an integer in 1\.\.16383, got np\.True_\.$"):
        _mm(m=np.bool_(True))


@settings(max_examples=200, deadline=None)
@given(instrs, st.data())
def test_the_generated_constructors_agree_with_the_validating_one(i: Instr, data: st.DataObject) -> None:
    """Each class's generated fast constructor (isa/instr.py) builds what Instr.__new__'s full validation builds,
    from keywords, with optional fields left out, from positional values, and from values only the general path
    accepts (numpy integers, ints for enums and booleans, floats that round to float32)."""
    cls = type(i)
    kw = {f.name: v for f, v in zip(i.spec.fields, i.values)}
    assert cls(**kw) == Instr.__new__(cls, **kw) == cls(*i.values) == i
    assert type(cls(**kw)) is cls
    optional = {f.name: kw[f.name] for f in i.spec.fields if f.default is None or kw[f.name] != f.default}
    assert cls(**optional) == i
    loose = {f.name: (np.int64(v) if f.kind is FieldKind.UINT else int(v) if f.kind in (FieldKind.ENUM, FieldKind.BOOL) else v)
             for f, v in zip(i.spec.fields, i.values)}
    for built in (cls(**loose), cls(**optional), cls(**kw)):
        assert built == i and [type(v) for v in built] == [type(v) for v in i]
    if any(f.kind is FieldKind.F32 for f in i.spec.fields):
        fuzzy = {f.name: (np.float64(v) * (1 + 1e-12) if f.kind is FieldKind.F32 and v else v) for f, v in zip(i.spec.fields, i.values)}
        assert cls(**fuzzy) == Instr.__new__(cls, **fuzzy)
