"""Text assembly: print/parse round trips for every opcode, golden text, and pinned parse errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from test_isa_strategies import instrs, programs

from isa import DmaLd, DType, Halt, Instr, IsaError, Matmul, Mem, Program, Vadd, Vscale, Bcast, format_instr, parse, parse_instr

GOLDEN = """\
.mesh 1 2
.core 0
    dma_ld sram=spad:0x0 dram=0x1000 rows=128 cols=64 stride=768 dtype=int8
    matmul a=spad:0x100 b=spad:0x4000 c=acc:0x0 m=128 k=128 n=128 prec=int8 acc=1 pre=0 tb=0
    vadd dst=acc:0x0 src1=acc:0x0 src2=spad:0x200 rows=4 cols=8 bcast=row
    vscale dst=acc:0x40 rows=4 cols=5 a=0.1 b=-3.0
    signal unit=vec sem=3
    halt
.core 1
    halt
"""


@settings(max_examples=300, deadline=None)
@given(instrs)
def test_instruction_text_round_trip(i: Instr) -> None:
    text = format_instr(i)
    assert str(i) == text
    assert parse_instr(text) == i


@settings(max_examples=60, deadline=None)
@given(programs())
def test_program_text_round_trip(p: Program) -> None:
    assert parse(str(p)) == p


def test_golden_program() -> None:
    p = parse(GOLDEN)
    assert str(p) == GOLDEN
    assert p.mesh_rows == 1 and p.mesh_cols == 2 and len(p.cores[0]) == 6
    assert p.cores[0][0] == DmaLd(Mem.SPAD, 0, 0x1000, 128, 64, 768, DType.INT8)
    assert p.cores[0][1] == Matmul(0x100, 0x4000, 0, 128, 128, 128, DType.INT8, True, False, False)
    assert p.cores[0][2] == Vadd(Mem.ACC, 0, Mem.ACC, 0, Mem.SPAD, 0x200, 4, 8, Bcast.ROW)
    assert p.cores[0][3] == Vscale(Mem.ACC, 0x40, 4, 5, 0.1, -3.0)
    assert p.cores[1] == (Halt(),)


def test_comments_blank_lines_any_operand_order_and_number_forms() -> None:
    text = """
    # a comment line
    .core 0   # single core, default mesh 1 1
    MATMUL pre=0 tb=0 acc=1 prec=INT8 n=0x80 k=0b10000000 m=1_28 c=acc:0 b=spad:0x4000 a=SPAD:0x100  # trailing
    halt
    """
    p = parse(text)
    assert p.cores[0][0] == Matmul(0x100, 0x4000, 0, 128, 128, 128, DType.INT8, True, False, False)
    assert (p.mesh_rows, p.mesh_cols) == (1, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (".core 0\nmatmull a=spad:0", r"^line 2: unknown instruction 'matmull'; valid instructions are dma_ld, "),
        (".core 0\nhalt x=1", r"^line 2: halt has no operand 'x' \(token 'x=1'\); its operands are \.$"),
        (".core 0\nvexp dst=acc:0 src=acc:0 rows=4 cols", r"^line 2: token 'cols' is not of the form key=value\.$"),
        (".core 0\nvexp dst=acc:0 src=acc:0 rows=4", r"^line 2: vexp is missing operand 'cols'; it needs dst, src, rows, cols\.$"),
        (".core 0\nvexp dst=acc:0 src=acc:0 rows=4 rows=5 cols=1", r"^line 2: operand 'rows' is given twice \(token 'rows=5'\)\.$"),
        (".core 0\nvexp dst=0x0 src=acc:0 rows=4 cols=1", r"^line 2: token 'dst=0x0' needs a memory-qualified address such as dst=spad:0x100\.$"),
        (".core 0\nvexp dst=dram:0 src=acc:0 rows=4 cols=1", r"^line 2: token 'dst=dram:0' needs a memory-qualified"),
        (
            ".core 0\nmatmul a=spad:0 b=spad:0 c=spad:0 m=1 k=1 n=1 prec=int8 acc=0 pre=0 tb=0",
            r"^line 2: operand 'c' of matmul must be in acc, got token 'c=spad:0'\.$",
        ),
        (
            ".core 0\nmatmul a=spad:0 b=spad:0 c=acc:0 m=1 k=1 n=1 prec=fp32 acc=0 pre=0 tb=0",
            r"^line 2 token 'prec=fp32': 'fp32' is not a valid prec; expected one of int8, bf16\.$",
        ),
        (".core 0\nvexp dst=acc:0 src=acc:0 rows=four cols=1", r"^line 2 token 'rows=four': 'four' is not an integer"),
        (".core 0\nvscale dst=acc:0 rows=1 cols=1 a=x b=0", r"^line 2 token 'a=x': 'x' is not a number; a is a float32 immediate\.$"),
        (".core 0\nvexp dst=acc:0 src=acc:0 rows=0 cols=1", r"^line 2: VEXP field rows is 0, outside the 14-bit range 1\.\.16383\.$"),
        ("halt", r"^line 1: instruction 'halt' comes before any \.core directive\.$"),
        (".mesh 1\n", r"^line 1: \.mesh needs two integers \(rows cols\), got '1'\.$"),
        (".mesh 0 1\n", r"^line 1: \.mesh rows and cols must be at least 1 and make at most 4096 cores \(the ISA.s 12-bit core numbers\), got 0 1\.$"),
        (".mesh 70000 70000\n", r"^line 1: \.mesh rows and cols must be at least 1 and make at most 4096 cores \(the ISA.s 12-bit core numbers\), got 70000 70000\.$"),
        (".core 0\n.mesh 1 2", r"^line 2: \.mesh must appear once, before any \.core section\.$"),
        (".mesh 1 2\n.core 2", r"^line 2: \.core 2 is outside the 1x2 mesh \(cores 0\.\.1\)\.$"),
        (".core 0\n.core 0", r"^line 2: \.core 0 appears twice; each core has one section\.$"),
        (".text", r"^line 1: unknown directive '\.text'; valid directives are \.mesh and \.core\.$"),
        (
            ".core 0\nnoc_send dst_core=1 addr=spad:0 bytes=8 tag=0 mcast=1",
            r"^line 2: NOC_SEND with multicast=1 goes to every core; dst_core must be 0, got 1\.$",
        ),
        (
            ".core 0\nnoc_recv src_core=0 addr=spad:0 bytes=10 tag=0 rows=3 stride=8",
            r"^line 2: NOC_RECV of 10 bytes cannot land in 3 equal rows; bytes must be a multiple of rows\.$",
        ),
        (
            ".core 0\nnoc_recv src_core=0 addr=spad:0 bytes=12 tag=0 rows=3 stride=2",
            r"^line 2: NOC_RECV rows of 4 bytes cannot start 2 bytes apart; stride_bytes must be at least bytes / rows\.$",
        ),
        (
            ".core 0\nvcvt dst=acc:0 src=acc:0 rows=1 cols=1 from=int8 to=int32",
            r"^line 2: VCVT cannot convert int8 to int32; valid conversions are ",
        ),
    ],
)
def test_parse_errors_name_line_and_token(text: str, message: str) -> None:
    with pytest.raises(IsaError, match=message):
        parse(text)


def test_float_immediates_print_shortest() -> None:
    assert format_instr(Vscale(Mem.SPAD, 0, 1, 1, 0.125, 1e-5)) == "vscale dst=spad:0x0 rows=1 cols=1 a=0.125 b=1e-05"
