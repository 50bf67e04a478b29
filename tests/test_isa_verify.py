"""Verifier: a clean program passes; each kind of problem is reported with its core, index and message."""

from __future__ import annotations

import pytest

from isa import IsaError, VerifyError, parse, verify

CHIP = dict(spad_bytes=64 * 1024, acc_bytes=16 * 1024, dram_bytes=1 << 20, array_rows=32, array_cols=32)

CLEAN = """\
.mesh 1 2
.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=32 cols=32 stride=64 dtype=int8
    dma_ld sram=spad:0x400 dram=0x800 rows=32 cols=32 stride=32 dtype=int8
    signal unit=dma sem=0
    wait unit=mxu sem=0
    ldw w=spad:0x400 k=32 n=32 dtype=int8
    matmul a=spad:0x0 b=spad:0x0 c=acc:0x0 m=32 k=32 n=32 prec=int8 acc=0 pre=1 tb=0
    signal unit=mxu sem=1
    wait unit=vec sem=1
    vcvt dst=acc:0x1000 src=acc:0x0 rows=32 cols=32 from=int32 to=fp32
    vrmax dst=acc:0x2000 src=acc:0x1000 rows=32 cols=32
    vsub dst=acc:0x1000 src1=acc:0x1000 src2=acc:0x2000 rows=32 cols=32 bcast=col
    vquant dst=spad:0x800 src=acc:0x1000 rows=32 cols=32 scale=0.5
    signal unit=vec sem=2
    wait unit=noc sem=2
    noc_send dst_core=1 addr=spad:0x800 bytes=1024 tag=7
    barrier
    halt
.core 1
    noc_recv src_core=0 addr=spad:0x0 bytes=1024 tag=7
    signal unit=noc sem=0
    wait unit=dma sem=0
    dma_st sram=spad:0x0 dram=0x10000 rows=32 cols=32 stride=32 dtype=int8
    barrier
    halt
"""


def _problems(text: str) -> tuple[str, ...]:
    with pytest.raises(VerifyError) as info:
        verify(parse(text), **CHIP)
    assert isinstance(info.value, IsaError) and str(info.value).startswith("program failed verification with")
    return info.value.problems


def _one(body: str) -> str:
    problems = _problems(f".core 0\n{body}\nhalt\n")
    assert len(problems) == 1, problems
    return problems[0]


def test_clean_program_passes() -> None:
    verify(parse(CLEAN), **CHIP)


def test_a_multicast_needs_a_receive_on_every_core() -> None:
    one_recv = ".mesh 1 2\n.core 0\nnoc_send dst_core=0 addr=spad:0x0 bytes=8 tag=3 mcast=1\nnoc_recv src_core=0 addr=spad:0x40 bytes=8 tag=3\nhalt\n.core 1\nhalt\n"
    assert _problems(one_recv) == ("core 0 instr 0 (NOC_SEND): no NOC_RECV on core 1 matches this send (src 0, tag 3, 8 bytes)",)
    verify(parse(one_recv.replace(".core 1\nhalt", ".core 1\nnoc_recv src_core=0 addr=spad:0x0 bytes=8 tag=3\nhalt")), **CHIP)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("vexp dst=acc:0x0 src=acc:0x4000 rows=1 cols=1",
         "core 0 instr 0 (VEXP): src address acc:0x4000 is outside the 16384-byte ACC"),
        ("vexp dst=acc:0x3f00 src=acc:0x0 rows=8 cols=32",
         "core 0 instr 0 (VEXP): dst tile acc:0x3f00 of 8x32 FP32 (1024 bytes) overruns the 16384-byte ACC (ends at 0x4300)"),
        ("vexp dst=acc:0x2 src=acc:0x0 rows=1 cols=1",
         "core 0 instr 0 (VEXP): dst address acc:0x2 is not aligned to the 4-byte FP32"),
        ("dma_ld sram=spad:0x0 dram=0xff000 rows=2 cols=64 stride=4096 dtype=int8",
         "core 0 instr 0 (DMA_LD): DRAM range 0xff000..0x100040 overruns the 1048576-byte DRAM"),
        ("dma_ld sram=spad:0x0 dram=0x2 rows=2 cols=4 stride=16 dtype=fp32",
         "core 0 instr 0 (DMA_LD): DRAM address 0x2 and stride 16 must be multiples of the 4-byte FP32"),
        ("dma_st sram=spad:0x0 dram=0x0 rows=2 cols=64 stride=32 dtype=int8",
         "core 0 instr 0 (DMA_ST): DRAM rows overlap (stride 32 < row of 64 bytes)"),
        ("ldw w=spad:0x0 k=33 n=32 dtype=int8",
         "core 0 instr 0 (LDW): weight tile 33x32 is larger than the 32x32 array"),
        ("matmul a=spad:0x0 b=spad:0x0 c=acc:0x0 m=4 k=4 n=4 prec=int8 acc=0 pre=1 tb=0",
         "core 0 instr 0 (MATMUL): preloaded=1 but no LDW comes before it on this core"),
        ("dma_ld sram=spad:0x0 dram=0x0 rows=8 cols=8 stride=32 dtype=fp32\nvquant dst=spad:0x0 src=spad:0x0 rows=8 cols=8 scale=1\n"
         "matmul a=spad:0x0 b=spad:0x1000 c=acc:0x0 m=8 k=8 n=8 prec=bf16 acc=0 pre=0 tb=0",
         "core 0 instr 2 (MATMUL): a reads spad:0x0 as BF16 but it holds INT8 or FP32"),
        ("matmul a=spad:0x0 b=spad:0x0 c=acc:0x0 m=4 k=4 n=4 prec=int8 acc=0 pre=0 tb=0\nvexp dst=acc:0x100 src=acc:0x0 rows=4 cols=4",
         "core 0 instr 1 (VEXP): src reads acc:0x0 as FP32 but it holds INT32"),
        ("wait unit=vec sem=5\nsignal unit=vec sem=5\nwait unit=dma sem=5",
         "core 0 instr 2 (WAIT): semaphore 5 is waited on more often than it is signalled on this core, so this WAIT can never complete"),
        ("noc_send dst_core=0 addr=spad:0x0 bytes=4 tag=0",
         "core 0 instr 0 (NOC_SEND): no NOC_RECV on core 0 matches this send (src 0, tag 0, 4 bytes)"),
        ("noc_send dst_core=0 addr=spad:0x0 bytes=64 tag=0\nnoc_recv src_core=0 addr=spad:0xff00 bytes=64 tag=0 rows=2 stride=256",
         "core 0 instr 1 (NOC_RECV): addr tile spad:0xff00 of 2x32 INT8 (64 bytes, rows 256 bytes apart) overruns the "
         "65536-byte SPAD (ends at 0x10020)"),
        ("noc_recv src_core=3 addr=spad:0x0 bytes=4 tag=0",
         "core 0 instr 0 (NOC_RECV): core 3 is outside the 1x1 mesh (cores 0..0)"),
        ("halt\nvexp dst=acc:0x0 src=acc:0x0 rows=1 cols=1",
         "core 0 instr 0 (HALT): HALT must be the last instruction, but 2 follow it"),
    ],
)
def test_each_problem_is_pinned(body: str, message: str) -> None:
    assert _one(body) == message


def test_a_preloaded_matmul_of_several_folds_needs_its_first_fold_from_the_ldw() -> None:
    mm = "matmul a=spad:0x0 b=spad:0x400 c=acc:0x0 m=4 k=64 n=32 prec=int8 acc=0 pre=1 tb=0"
    verify(parse(f".core 0\nldw w=spad:0x400 k=32 n=32 dtype=int8\n{mm}\nhalt\n"), **CHIP)  # 32 rows: one fold
    assert _one(f"ldw w=spad:0x400 k=16 n=32 dtype=int8\n{mm}") == (
        "core 0 instr 1 (MATMUL): preloaded=1 needs a 32x32 INT8 weight tile but the last LDW loads 16x32 INT8")
    plain = mm.replace("pre=1", "pre=0")  # a MATMUL with its own weights replaces the LDW's
    assert _one(f"ldw w=spad:0x400 k=32 n=32 dtype=int8\n{plain}\n{mm}") == (
        "core 0 instr 2 (MATMUL): preloaded=1 but no LDW comes before it on this core")


def test_preloaded_mismatch() -> None:
    body = "ldw w=spad:0x0 k=16 n=32 dtype=int8\nmatmul a=spad:0x0 b=spad:0x0 c=acc:0x0 m=4 k=32 n=32 prec=int8 acc=0 pre=1 tb=0"
    assert _one(body) == (
        "core 0 instr 1 (MATMUL): preloaded=1 needs a 32x32 INT8 weight tile but the last LDW loads 16x32 INT8"
    )


def test_missing_halt_unmatched_noc_and_barriers_all_reported() -> None:
    text = """\
.mesh 2 1
.core 0
    noc_send dst_core=1 addr=spad:0x0 bytes=64 tag=1
    barrier
    halt
.core 1
    noc_recv src_core=0 addr=spad:0x0 bytes=32 tag=1
"""
    assert _problems(text) == (
        "core 1 instr 1: the program does not end with HALT",
        "core 1 instr 0 (NOC_RECV): no NOC_SEND on core 0 matches this receive (dst 1, tag 1, 32 bytes)",
        "core 0 instr 0 (NOC_SEND): no NOC_RECV on core 1 matches this send (src 0, tag 1, 64 bytes)",
        "BARRIER counts differ between cores (core 0 has 1, core 1 has 0); every core must reach each barrier",
    )


def test_matched_noc_counts_are_multisets() -> None:
    text = """\
.mesh 1 2
.core 0
    noc_send dst_core=1 addr=spad:0x0 bytes=8 tag=1
    noc_send dst_core=1 addr=spad:0x0 bytes=8 tag=1
    halt
.core 1
    noc_recv src_core=0 addr=spad:0x0 bytes=8 tag=1
    halt
"""
    assert _problems(text) == ("core 0 instr 1 (NOC_SEND): no NOC_RECV on core 1 matches this send (src 0, tag 1, 8 bytes)",)


def test_message_lists_every_problem() -> None:
    with pytest.raises(VerifyError, match=r"^program failed verification with 2 problem\(s\): core 0 instr 0 \(LDW\): .*; core 0 instr 1: "):
        verify(parse(".core 0\nldw w=spad:0x0 k=64 n=1 dtype=int8\n"), **CHIP)


def test_dtypes_follow_phases_not_program_order_between_units() -> None:
    # The DMA queue text comes first, yet its store reads what VQUANT (vector unit) writes in the same phase.
    ok = """
    wait unit=dma sem=0
    dma_st sram=spad:0x0 dram=0x0 rows=1 cols=8 stride=8 dtype=int8
    vquant dst=spad:0x0 src=acc:0x0 rows=1 cols=8 scale=1
    signal unit=vec sem=0
    barrier
    vexp dst=spad:0x40 src=spad:0x0 rows=1 cols=2
    halt
    """
    assert _problems(".core 0\n" + ok) == ("core 0 instr 5 (VEXP): src reads spad:0x0 as FP32 but it holds INT8",)


def test_a_read_repeated_in_a_phase_is_reported_at_each_instruction_and_types_carry_over_phases() -> None:
    # spad:0x0 holds int8 from phase 0; phase 1 writes elsewhere (its barrier carries only what it wrote), and
    # phase 2 reads 0x0 as fp32 twice: both reads are wrong, each at its own index; the fp32 at 0x80 is fine.
    text = """.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=1 cols=8 stride=8 dtype=int8
    barrier
    dma_ld sram=spad:0x80 dram=0x0 rows=1 cols=2 stride=8 dtype=fp32
    barrier
    vexp dst=spad:0x100 src=spad:0x0 rows=1 cols=2
    vexp dst=spad:0x200 src=spad:0x80 rows=1 cols=2
    vexp dst=spad:0x300 src=spad:0x0 rows=1 cols=2
    halt
    """
    assert _problems(text) == ("core 0 instr 4 (VEXP): src reads spad:0x0 as FP32 but it holds INT8",
                               "core 0 instr 6 (VEXP): src reads spad:0x0 as FP32 but it holds INT8")


def test_a_phase_repeated_is_checked_against_what_the_phases_before_it_left() -> None:
    # The phase P ("vexp 0x0 -> 0x100 -> 0x200") runs three times. Its read of 0x0 is of what earlier phases left
    # there: fp32 before the first (fine), int8 before the second (wrong, after the DMA_LD between them) and fp32
    # again before the third. Its read of 0x100, which it writes itself, is fine every time; and each time it
    # leaves fp32 at 0x200, over the int8 put there before the second, so the last read of 0x200 is fine.
    phase = """
    vexp dst=spad:0x100 src=spad:0x0 rows=1 cols=2
    vexp dst=spad:0x200 src=spad:0x100 rows=1 cols=2
    barrier
    """
    text = f""".core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=1 cols=2 stride=8 dtype=fp32
    barrier
    {phase}
    dma_ld sram=spad:0x0 dram=0x0 rows=1 cols=8 stride=8 dtype=int8
    dma_ld sram=spad:0x200 dram=0x0 rows=1 cols=8 stride=8 dtype=int8
    barrier
    {phase}
    dma_ld sram=spad:0x0 dram=0x0 rows=1 cols=2 stride=8 dtype=fp32
    barrier
    {phase}
    vexp dst=spad:0x300 src=spad:0x200 rows=1 cols=2
    halt
    """
    assert _problems(text) == ("core 0 instr 8 (VEXP): src reads spad:0x0 as FP32 but it holds INT8",)
