"""Executor: golden programs with hand-derived cycles, NoC contention, barriers, deadlock and error messages."""

from __future__ import annotations

import copy
import gc
import json
from pathlib import Path

import numpy as np
import pytest

from chipsim.config import ChipConfig, chip_from_dict
from chipsim.executor import DeadlockError, ExecutionError, collector_paused, execute, fastest, timed
from chipsim.stats import StallCause
from chipsim.app.trace import write_trace
from isa import DType, IsaError, Unit, VerifyError, format_instr, parse

# 1 GHz; DRAM 16 GB/s = 16 B/cycle, 10 ns = 10 cycles; one DMA engine of 8 B/cycle; 4x4 ws array.
BASE: dict[str, object] = {
    "name": "tiny",
    "clock_mhz": 1000.0,
    "technology_nm": 28,
    "mesh": {"rows": 1, "cols": 1},
    "core": {
        "tensor_core": {"rows": 4, "cols": 4, "dataflow": "ws", "precision": "int8", "weight_double_buffer": False},
        "scratchpad": {"size_kib": 64, "banks": 4, "bytes_per_cycle": 64},
        "accumulator": {"size_kib": 16, "banks": 2, "bytes_per_cycle": 64},
        "vector": {"lanes": 4},
        "dma": {"engines": 1, "bytes_per_cycle": 8},
    },
    "dram": {"type": "ddr4", "bandwidth_gb_per_s": 16.0, "latency_ns": 10.0, "energy_pj_per_bit": 10.0},
    "noc": {"link_bytes_per_cycle": 8, "hop_cycles": 2},
}


def make_chip(**changes: object) -> ChipConfig:
    """BASE with dotted-path changes, e.g. make_chip(**{"mesh.cols": 3})."""
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]  # type: ignore[assignment,index]
        node[leaf] = value  # type: ignore[index]
    return chip_from_dict(data)


GEMM = """
.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=4 cols=8 stride=8 dtype=int8
    dma_ld sram=spad:0x20 dram=0x20 rows=8 cols=4 stride=4 dtype=int8
    signal unit=dma sem=0
    wait unit=mxu sem=0
    matmul a=spad:0x0 b=spad:0x20 c=acc:0x0 m=4 k=8 n=4 prec=int8 acc=0 pre=0 tb=0
    signal unit=mxu sem=1
    wait unit=dma sem=1
    dma_st sram=acc:0x0 dram=0x100 rows=4 cols=4 stride=16 dtype=int32
    halt
"""


def gemm_dram(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = rng.integers(-128, 128, (4, 8)).astype(np.int8)
    b = rng.integers(-128, 128, (8, 4)).astype(np.int8)
    dram = np.zeros(0x200, np.uint8)
    dram[:0x20] = a.view(np.uint8).ravel()
    dram[0x20:0x40] = b.view(np.uint8).ravel()
    return dram, a, b


# Hand derivation of GEMM on the tiny chip (one DMA engine, so the two loads serialise):
#   0 dma_ld A 32 B: engine 32/8 = 4 cycles, DRAM channel 32/16 = 2 -> transfer ends 4, + latency 10 = 14.
#   1 dma_ld B 32 B: waits for the engine until 14; ends 14 + 4 + 10 = 28 (14 structural stall cycles).
#   2 signal dma: fires when both loads are done, at 28.
#   3 wait mxu: blocked 0..28.
#   4 matmul 4x8x4 on 4x4 ws without double buffering: ceil(8/4) * ceil(4/4) = 2 pipelined folds, each
#     R (load 4) + m (4), then one fill and drain R + C - 2 (6) = 22 cycles, 28..50. SRAM ports: spad
#     64 B / 64 = 1, acc (2 x 64 B written + 64 B read back) / 64 = 3, both below 22.
#   5 signal mxu at 50;  6 wait dma: 28..50.
#   7 dma_st 64 B int32: engine 64/8 = 8, channel 4 -> 50 + 8 + 10 = 68.
GEMM_CYCLES = 68


def test_golden_gemm_cycles_and_result() -> None:
    chip = make_chip()
    dram, a, b = gemm_dram(np.random.default_rng(1))
    r = execute(parse(GEMM), chip, functional=True, dram=dram)
    assert r.cycles == GEMM_CYCLES
    np.testing.assert_array_equal(r.instr_start[0], [0, 14, 14, 0, 28, 50, 14, 50, 68])
    np.testing.assert_array_equal(r.instr_end[0], [14, 28, 28, 28, 50, 50, 50, 68, 68])
    out = dram[0x100:0x140].view(np.int32).reshape(4, 4)
    np.testing.assert_array_equal(out, a.astype(np.int32) @ b.astype(np.int32))
    assert r.useful_macs == 4 * 8 * 4
    assert r.utilization == pytest.approx(128 / (16 * GEMM_CYCLES))
    dma, mxu = r.unit_stats(0, Unit.DMA), r.unit_stats(0, Unit.MXU)
    assert (dma.busy_cycles, dma.stall_structural_cycles, dma.stall_dependency_cycles) == (28 + 18, 14, 14 + (50 - 28))
    assert (mxu.busy_cycles, mxu.stall_dependency_cycles) == (22, 28)
    assert r.events["dram_read_bytes"] == 64 and r.events["dram_write_bytes"] == 64
    assert r.events["mac_int8"] == 128


def test_double_buffered_weights_and_two_dma_engines_shorten_the_gemm() -> None:
    # Two engines: both loads end at 14. Double-buffered weights: load 4, then the 2 folds stream back to back
    # (the second load of 4 hides under the first stream of 4): 4 + 2 * 4 + 6 = 18 matmul cycles, 14..32.
    # Store 32 + 8 + 10 = 50.
    chip = make_chip(**{"core.dma.engines": 2, "core.tensor_core.weight_double_buffer": True})
    dram, _, _ = gemm_dram(np.random.default_rng(2))
    assert execute(parse(GEMM), chip, functional=True, dram=dram).cycles == 50


def test_timing_only_matches_functional_exactly() -> None:
    chip = make_chip()
    dram, _, _ = gemm_dram(np.random.default_rng(3))
    f = execute(parse(GEMM), chip, functional=True, dram=dram, trace=True)
    t = execute(parse(GEMM), chip, functional=False, trace=True)
    assert (f.cycles, f.utilization, dict(f.energy_j), dict(f.events)) == (t.cycles, t.utilization, dict(t.energy_j), dict(t.events))
    assert f.cores == t.cores and f.trace == t.trace
    for a, b in zip(f.instr_start + f.instr_end, t.instr_start + t.instr_end):
        np.testing.assert_array_equal(a, b)


def test_shared_dram_channel_slows_two_cores() -> None:
    # Each core loads 256 B with a 64 B/cycle engine: alone 256/64 = 4 cycles... but DRAM gives 16 B/cycle,
    # so one transfer occupies the channel 16 cycles: 16 + 10 = 26. Two cores at once: the second core's bytes
    # queue behind the first's: channel busy until 32 -> 32 + 10 = 42.
    one = """
.mesh 1 2
.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=1 cols=256 stride=256 dtype=int8
    halt
.core 1
    halt
"""
    both = one.replace(".core 1\n    halt", ".core 1\n    dma_ld sram=spad:0x0 dram=0x100 rows=1 cols=256 stride=256 dtype=int8\n    halt")
    chip = make_chip(**{"mesh.cols": 2, "core.dma.bytes_per_cycle": 64})
    r1 = execute(parse(one), chip, functional=False)
    r2 = execute(parse(both), chip, functional=False)
    assert (r1.cycles, r2.cycles) == (26, 42)
    # DRAM stall = transfer time beyond the engine's own 4 cycles: 16 - 4 alone, 32 - 4 behind core 0.
    assert r1.unit_stats(0, Unit.DMA).stall_cycles(StallCause.DRAM) == 12
    assert r2.unit_stats(1, Unit.DMA).stall_cycles(StallCause.DRAM) == 28


NOC = """
.mesh 1 3
.core 0
    noc_send dst_core=2 addr=spad:0x0 bytes=64 tag=0
    halt
.core 1
    noc_send dst_core=2 addr=spad:0x0 bytes=64 tag=1
    halt
.core 2
    noc_recv src_core=0 addr=spad:0x0 bytes=64 tag=0
    noc_recv src_core=1 addr=spad:0x40 bytes=64 tag=1
    halt
"""


def test_noc_contention_on_a_shared_link() -> None:
    # Links of 8 B/cycle, 2 cycles per hop, 64 B = 8 serialisation cycles.
    # Core 1 -> 2 alone: 1 hop: 2 + 8 = 10.
    # Core 0 -> 2 (2 hops) goes first: link 0->1 busy 0..8, link 1->2 busy 2..10, arrives 2*2 + 8 = 12.
    # Core 1 -> 2 then waits for link 1->2 until 10 and arrives at 10 + 2 + 8 = 20.
    chip = make_chip(**{"mesh.cols": 3})
    alone = NOC.replace("noc_send dst_core=2 addr=spad:0x0 bytes=64 tag=0", "").replace(
        "noc_recv src_core=0 addr=spad:0x0 bytes=64 tag=0", ""
    )
    r_alone = execute(parse(alone), chip, functional=False)
    r_both = execute(parse(NOC), chip, functional=False)
    assert r_alone.cycles == 10
    assert r_both.cycles == 20
    np.testing.assert_array_equal(r_both.instr_end[2], [12, 20, 20])
    assert r_both.unit_stats(1, Unit.NOC).stall_noc_cycles == 10
    assert r_both.events["noc_byte_hops"] == 64 * 2 + 64


def test_noc_moves_bytes_between_cores() -> None:
    src = """
.mesh 1 2
.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=1 cols=16 stride=16 dtype=int8
    signal unit=dma sem=0
    wait unit=noc sem=0
    noc_send dst_core=1 addr=spad:0x0 bytes=16 tag=7
    halt
.core 1
    noc_recv src_core=0 addr=spad:0x100 bytes=16 tag=7
    signal unit=noc sem=0
    wait unit=dma sem=0
    dma_st sram=spad:0x100 dram=0x40 rows=1 cols=16 stride=16 dtype=int8
    halt
"""
    dram = np.zeros(0x80, np.uint8)
    dram[:16] = np.arange(16, dtype=np.uint8) + 1
    execute(parse(src), make_chip(**{"mesh.cols": 2}), functional=True, dram=dram)
    np.testing.assert_array_equal(dram[0x40:0x50], np.arange(16) + 1)


def test_the_collector_is_paused_in_a_run_and_resumed_after_it_even_when_it_fails() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: the outer block resumes it
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(DeadlockError):
        execute(parse(".core 0\n wait unit=dma sem=0\n halt\n"), make_chip(), functional=False)
    assert gc.isenabled()
    gc.disable()
    try:  # paused by the caller: left so
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("instr", ["noc_send dst_core=3 addr=spad:0x0 bytes=16 tag=7", "noc_recv src_core=3 addr=spad:0x0 bytes=16 tag=7"])
def test_a_noc_peer_outside_the_mesh_is_named_with_its_instruction(instr: str) -> None:
    src = f".mesh 1 2\n.core 0\n halt\n.core 1\n signal unit=dma sem=0\n {instr}\n halt\n"
    with pytest.raises(ExecutionError, match=r"^core 1 instruction 1 \(noc_(send|recv) .*\): core 3 is outside the mesh of 2 cores \(0\.\.1\)\.$"):
        execute(parse(src), make_chip(**{"mesh.cols": 2}), functional=False)


def test_strided_noc_send_reads_a_column_slice_as_one_dense_message() -> None:
    # Core 0 holds a 3x8 int8 tile and sends its columns 2..5 (3 rows of 4 bytes, 8 bytes apart) to core 1, which
    # receives them as one dense 3x4 block; the NoC counts the 12 bytes, not the rows' span.
    src = """
.mesh 1 2
.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=3 cols=8 stride=8 dtype=int8
    signal unit=dma sem=0
    wait unit=noc sem=0
    noc_send dst_core=1 addr=spad:0x2 bytes=12 tag=3 rows=3 stride=8
    halt
.core 1
    noc_recv src_core=0 addr=spad:0x100 bytes=12 tag=3
    signal unit=noc sem=0
    wait unit=dma sem=0
    dma_st sram=spad:0x100 dram=0x40 rows=3 cols=4 stride=4 dtype=int8
    halt
"""
    program = parse(src)
    chip = make_chip(**{"mesh.cols": 2})
    from isa import format_program, verify

    verify(program, spad_bytes=chip.core.scratchpad.size_bytes, acc_bytes=chip.core.accumulator.size_bytes,
           dram_bytes=0x100, array_rows=4, array_cols=4)
    dram = np.zeros(0x100, np.uint8)
    dram[:24] = np.arange(24, dtype=np.uint8) + 1
    r = execute(program, chip, functional=True, dram=dram)
    np.testing.assert_array_equal(dram[0x40:0x4C].reshape(3, 4), (np.arange(24) + 1).reshape(3, 8)[:, 2:6])
    assert r.events["noc_byte_hops"] == 12
    timing = execute(program, chip, functional=False)
    assert timing.cycles == r.cycles
    assert parse(format_program(program)) == program and "rows=3 stride=8" in format_program(program)


def test_a_strided_noc_send_must_read_equal_rows_no_closer_than_their_length() -> None:
    from isa import IsaError

    with pytest.raises(IsaError, match="bytes must be a multiple of rows"):
        parse(".core 0\n    noc_send dst_core=0 addr=spad:0x0 bytes=10 tag=0 rows=3 stride=8\n    halt\n")
    with pytest.raises(IsaError, match="stride_bytes must be at least bytes / rows"):
        parse(".core 0\n    noc_send dst_core=0 addr=spad:0x0 bytes=12 tag=0 rows=3 stride=2\n    halt\n")


def test_strided_noc_recv_lands_rows_in_a_wider_matrix_and_a_core_may_send_to_itself() -> None:
    # Core 0 sends a dense 2x4 block to core 1 (into columns 4..7 of an 8-byte-wide matrix) and to itself (the
    # router's local port: no link, so the receive completes S = 8 / 8 = 1 cycle after the send's issue).
    src = """
.mesh 1 2
.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=1 cols=8 stride=8 dtype=int8
    signal unit=dma sem=0
    wait unit=noc sem=0
    noc_send dst_core=1 addr=spad:0x0 bytes=8 tag=1
    noc_send dst_core=0 addr=spad:0x0 bytes=8 tag=2
    noc_recv src_core=0 addr=spad:0x104 bytes=8 tag=2 rows=2 stride=8
    signal unit=noc sem=1
    wait unit=dma sem=1
    dma_st sram=spad:0x100 dram=0x80 rows=2 cols=8 stride=8 dtype=int8
    halt
.core 1
    noc_recv src_core=0 addr=spad:0x104 bytes=8 tag=1 rows=2 stride=8
    signal unit=noc sem=0
    wait unit=dma sem=0
    dma_st sram=spad:0x100 dram=0x40 rows=2 cols=8 stride=8 dtype=int8
    halt
"""
    program = parse(src)
    verify_chip = make_chip(**{"mesh.cols": 2})
    from isa import verify

    verify(program, spad_bytes=verify_chip.core.scratchpad.size_bytes, acc_bytes=verify_chip.core.accumulator.size_bytes,
           dram_bytes=0x100, array_rows=4, array_cols=4)
    dram = np.zeros(0x100, np.uint8)
    dram[:8] = np.arange(8, dtype=np.uint8) + 1
    r = execute(program, verify_chip, functional=True, dram=dram, trace=True)
    want = np.zeros((2, 8), np.uint8)
    want[:, 4:] = (np.arange(8) + 1).reshape(2, 4)
    np.testing.assert_array_equal(dram[0x40:0x50].reshape(2, 8), want)
    np.testing.assert_array_equal(dram[0x80:0x90].reshape(2, 8), want)
    assert r.events["noc_byte_hops"] == 8  # the local send crosses no link
    # the text form leaves the optional fields out at their defaults and round-trips the strided receive
    from isa import format_program

    assert parse(format_program(program)) == program
    assert "rows=2 stride=8" in format_program(program) and "bytes=8 tag=1\n" in format_program(program)


@pytest.mark.parametrize(("add", "dtype", "mine", "theirs", "want"), [
    # int32 sums wrap around (two's complement), as the array's accumulate does
    ("int32", np.int32, [2**31 - 1, -5, 7, 0], [1, 5, -8, -2**31], [-2**31, 0, -1, -2**31]),
    ("fp32", np.float32, [1.5, -2.0, 1e30, 0.0], [0.25, 2.0, 1e30, -0.0], [1.75, 0.0, 2e30, 0.0]),
])
def test_a_reducing_noc_recv_adds_the_payload_to_what_is_there(add, dtype, mine, theirs, want) -> None:
    # Core 1's four values, from DRAM, are sent to core 0 and added onto core 0's own four (a reduction split over
    # two cores: the receiving end reads its values and writes the sums, here as two rows of two).
    src = f"""
.mesh 1 2
.core 0
    dma_ld sram=acc:0x0 dram=0x0 rows=2 cols=2 stride=8 dtype={add}
    signal unit=dma sem=0
    wait unit=noc sem=0
    noc_recv src_core=1 addr=acc:0x0 bytes=16 tag=65535 rows=2 stride=8 add={add}
    signal unit=noc sem=1
    wait unit=dma sem=1
    dma_st sram=acc:0x0 dram=0x40 rows=2 cols=2 stride=8 dtype={add}
    halt
.core 1
    dma_ld sram=acc:0x0 dram=0x20 rows=1 cols=4 stride=16 dtype={add}
    signal unit=dma sem=0
    wait unit=noc sem=0
    noc_send dst_core=0 addr=acc:0x0 bytes=16 tag=65535
    halt
"""
    program = parse(src)
    assert f"add={add}" in format_instr(program.cores[0][3])  # the text form names it (and leaves it out at none)
    assert "add=" not in format_instr(program.cores[1][3])
    chip = make_chip(**{"mesh.cols": 2})
    dram = np.zeros(0x80, np.uint8)
    dram[0:16] = np.array(mine, dtype).view(np.uint8)
    dram[0x20:0x30] = np.array(theirs, dtype).view(np.uint8)
    r = execute(program, chip, functional=True, dram=dram)
    np.testing.assert_array_equal(dram[0x40:0x50].view(dtype), np.array(want, dtype))
    plain = execute(parse(src.replace(f" add={add}", "")), chip, functional=False)
    assert r.events["acc_read_bytes"] == plain.events["acc_read_bytes"] + 16  # the add reads what it adds to
    assert r.cycles == plain.cycles  # and costs what any receive of those bytes costs


def test_a_reducing_noc_recv_needs_whole_elements_per_row() -> None:
    with pytest.raises(IsaError, match=r"^line 2: NOC_RECV add=int32 adds 4-byte elements, but its rows are 6 bytes; "
                                       r"bytes / rows must be a multiple of 4\.$"):
        parse(".core 0\n    noc_recv src_core=0 addr=acc:0x0 bytes=12 tag=1 rows=2 stride=8 add=int32\n    halt\n")


def test_multicast_reaches_every_core_along_the_xy_tree() -> None:
    # 1x3 mesh, 8 B/cycle links, 2 cycles a hop: 16 bytes serialize in S = 2 cycles. The tree is 0->1 (depth 0) and
    # 1->2 (depth 1): core 0 receives its own copy at 0 + 2 = 2, core 1 at 2 + 2 = 4, core 2 at 2 * 2 + 2 = 6.
    timing = """
.mesh 1 3
.core 0
    noc_send dst_core=0 addr=spad:0x0 bytes=16 tag=1 mcast=1
    noc_recv src_core=0 addr=spad:0x100 bytes=16 tag=1
    halt
.core 1
    noc_recv src_core=0 addr=spad:0x100 bytes=16 tag=1
    halt
.core 2
    noc_recv src_core=0 addr=spad:0x100 bytes=16 tag=1
    halt
"""
    chip3 = make_chip(**{"mesh.cols": 3})
    r = execute(parse(timing), chip3, functional=False, trace=True)
    assert r.cycles == 6
    assert r.events["noc_byte_hops"] == 16 * 2  # one copy per tree link, not per destination
    assert r.unit_stats(0, Unit.NOC).busy_cycles == 2  # one injection; its own receive lands at once
    functional = """
.mesh 1 3
.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=1 cols=16 stride=16 dtype=int8
    signal unit=dma sem=0
    wait unit=noc sem=0
    noc_send dst_core=0 addr=spad:0x0 bytes=16 tag=1 mcast=1
    noc_recv src_core=0 addr=spad:0x100 bytes=16 tag=1
    halt
"""
    for c in (1, 2):
        functional += f"""
.core {c}
    noc_recv src_core=0 addr=spad:0x100 bytes=16 tag=1
    signal unit=noc sem=0
    wait unit=dma sem=0
    dma_st sram=spad:0x100 dram={0x40 * c:#x} rows=1 cols=16 stride=16 dtype=int8
    halt
"""
    dram = np.zeros(0x100, np.uint8)
    dram[:16] = np.arange(16, dtype=np.uint8) + 1
    execute(parse(functional), chip3, functional=True, dram=dram)
    for c in (1, 2):
        np.testing.assert_array_equal(dram[0x40 * c : 0x40 * c + 16], np.arange(16) + 1)


def test_barrier_holds_every_unit_of_every_core() -> None:
    # Core 0's VEXP on 16 fp32 elements: 4 lanes, so 4 lane-groups issue one per cycle, and the last one's exp
    # takes the default latency of 4 + 1 + 2 * 4 = 13 cycles: 4 + 13 - 1 = 16 cycles; everything after the
    # barrier starts at 16, so core 1's VEXP runs 16..32.
    src = """
.mesh 1 2
.core 0
    vexp dst=acc:0x0 src=acc:0x0 rows=4 cols=4
    barrier
    halt
.core 1
    barrier
    vexp dst=acc:0x0 src=acc:0x0 rows=4 cols=4
    halt
"""
    r = execute(parse(src), make_chip(**{"mesh.cols": 2}), functional=False)
    assert r.cycles == 32
    np.testing.assert_array_equal(r.instr_start[1], [0, 16, 32])
    assert r.unit_stats(1, Unit.VEC).stall_dependency_cycles == 16


@pytest.mark.parametrize("busy", [0, 1])
def test_a_barrier_releases_the_cores_in_order_whichever_arrived_first(busy: int) -> None:
    # Phase 1: core `busy` loads 256 B (16 cycles on the 16 B/cycle channel + 10 latency = 26), the other core
    # nothing, so its units reach the barrier at 0. Phase 2: both load 256 B at 26; the channel takes core 0's
    # bytes first, whichever core arrived first: core 0's load ends at 26 + 26 = 52, core 1's behind it at
    # 26 + 32 + 10 = 68. The same phase-2 schedule either way (what lets identical phases replay).
    ld = "    dma_ld sram=spad:0x0 dram=0x{:x} rows=1 cols=256 stride=256 dtype=int8\n"
    cores = "".join(f".core {c}\n" + (ld.format(0x200) if c == busy else "") + "    barrier\n" + ld.format(0x100 * c) + "    halt\n"
                    for c in range(2))
    r = execute(parse(".mesh 1 2\n" + cores), make_chip(**{"mesh.cols": 2, "core.dma.bytes_per_cycle": 64}), functional=False)
    assert [int(r.instr_end[c][-2]) for c in range(2)] == [52, 68]
    assert r.cycles == 68


def test_deadlock_on_a_semaphore_is_reported() -> None:
    src = """
.core 0
    vexp dst=acc:0x0 src=acc:0x0 rows=1 cols=4
    wait unit=vec sem=3
    vexp dst=acc:0x0 src=acc:0x0 rows=1 cols=4
    halt
"""
    with pytest.raises(DeadlockError) as info:
        execute(parse(src), make_chip(), functional=False)
    assert str(info.value) == "core 0 VEC blocked forever at instruction 1 (wait unit=vec sem=3): semaphore 3 is never signalled"
    assert isinstance(info.value, ValueError)


def test_deadlock_on_a_receive_is_reported() -> None:
    src = """
.mesh 1 2
.core 0
    halt
.core 1
    noc_recv src_core=0 addr=spad:0x0 bytes=8 tag=5
    halt
"""
    with pytest.raises(DeadlockError, match=r"^core 1 NOC blocked forever at instruction 0 \(noc_recv src_core=0 "
                       r"addr=spad:0x0 bytes=8 tag=5\): no NOC_SEND from core 0 with tag 5 and 8 bytes ever reaches it$"):
        execute(parse(src), make_chip(**{"mesh.cols": 2}), functional=False)


def test_deadlock_on_a_barrier_names_the_missing_core() -> None:
    src = """
.mesh 1 2
.core 0
    barrier
    halt
.core 1
    halt
"""
    with pytest.raises(DeadlockError, match=r"^core 0 DMA blocked forever at instruction 0 \(barrier\): barrier 0 is never "
                       r"reached by every unit of core 1$"):
        execute(parse(src), make_chip(**{"mesh.cols": 2}), functional=False)


def test_mesh_mismatch_and_precision_mismatch_are_user_errors() -> None:
    with pytest.raises(ExecutionError, match=r"^the program is for a 1x1 mesh but chip 'tiny' has a 1x2 mesh"):
        execute(parse(".core 0\n halt\n"), make_chip(**{"mesh.cols": 2}), functional=False)
    src = ".core 0\n matmul a=spad:0x0 b=spad:0x0 c=acc:0x0 m=2 k=2 n=2 prec=bf16 acc=0 pre=0 tb=0\n halt\n"
    with pytest.raises(ExecutionError, match=r"^core 0 instruction 0 \(matmul .*\): MATMUL precision bf16 needs a bf16 "
                       r"tensor core, but this chip's tensor core is int8; use prec=int8 or set core.tensor_core.precision=bf16\.$"):
        execute(parse(src), make_chip(), functional=False)


def test_functional_needs_dram_and_reports_bad_addresses_with_location() -> None:
    with pytest.raises(ExecutionError, match="functional execution needs dram="):
        execute(parse(GEMM), make_chip(), functional=True)
    src = ".core 0\n dma_ld sram=spad:0x0 dram=0x1000 rows=1 cols=8 stride=8 dtype=int8\n halt\n"
    with pytest.raises(ExecutionError, match=r"^core 0 instruction 0 \(dma_ld .*\): DMA DRAM range"):
        execute(parse(src), make_chip(), functional=True, dram=np.zeros(16, np.uint8))


def test_dataflows_give_their_closed_form_on_the_gemm() -> None:
    # os: ceil(4/4) * ceil(4/4) = 1 fold: k (8) + R + C - 2 (6) + drain 4 = 18 -> matmul 28..46, store 46 + 18 = 64.
    # is: ceil(8/4) * ceil(4/4) = 2 folds of 4 + n (4), + 6 once = 22, same as ws here: 68.
    dram, _, _ = gemm_dram(np.random.default_rng(4))
    assert execute(parse(GEMM), make_chip(**{"core.tensor_core.dataflow": "os"}), functional=True, dram=dram).cycles == 64
    assert execute(parse(GEMM), make_chip(**{"core.tensor_core.dataflow": "is"}), functional=False).cycles == GEMM_CYCLES


def test_trace_has_one_track_per_core_and_unit(tmp_path: Path) -> None:
    chip = make_chip()
    r = execute(parse(GEMM), chip, functional=False, trace=True)
    assert r.trace is not None and len(r.trace) == 8  # every instruction but HALT
    path = write_trace(r, tmp_path / "gemm.json")
    doc = json.loads(path.read_text())
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    matmul = next(e for e in spans if e["name"] == "matmul")
    assert (matmul["pid"], matmul["tid"], matmul["ts"], matmul["dur"]) == (0, int(Unit.MXU), 0.028, 0.022)
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    assert names == {(0, 0): "DMA", (0, 1): "MXU", (0, 2): "VEC", (0, 3): "NOC"}
    with pytest.raises(ValueError, match="trace=True"):
        write_trace(execute(parse(GEMM), chip, functional=False), tmp_path / "none.json")


def test_check_runs_the_verifier_against_this_chip() -> None:
    src = ".core 0\n matmul a=spad:0x0 b=spad:0x0 c=acc:0x4000 m=2 k=2 n=2 prec=int8 acc=0 pre=0 tb=0\n halt\n"
    with pytest.raises(VerifyError, match="is outside the 16384-byte ACC"):
        execute(parse(src), make_chip(), functional=False, check=True)
    assert execute(parse(GEMM), make_chip(), functional=False, check=True).cycles == GEMM_CYCLES


def test_ldw_then_preloaded_matmul_skips_the_weight_load() -> None:
    # LDW: R = 4 cycles (16 B over a 64 B/cycle port is 1). MATMUL pre=1 tb=0 on 4x4 ws: the one fold's weights are
    # already in the array, so only m + R + C - 2 = 4 + 6 = 10 cycles: 4..14. Without pre: 4 + 10 = 14 -> 18.
    pre = """
.core 0
    ldw w=spad:0x0 k=4 n=4 dtype=int8
    matmul a=spad:0x40 b=spad:0x0 c=acc:0x0 m=4 k=4 n=4 prec=int8 acc=0 pre=1 tb=0
    halt
"""
    r = execute(parse(pre), make_chip(), functional=True, dram=np.zeros(16, np.uint8))
    np.testing.assert_array_equal(r.instr_end[0], [4, 14, 14])
    assert execute(parse(pre.replace("pre=1 tb=0", "pre=0 tb=0")), make_chip(), functional=False).cycles == 18


def test_back_to_back_matmuls_continue_one_run_of_folds() -> None:
    # The GEMM's MATMUL alone: 22 cycles (2 folds of load 4 + stream 4, one fill and drain of 6). A second one
    # right behind it on the MXU queue adds its folds to the run without a fill and drain: 2 * (4 + 4) = 16.
    # A SIGNAL between them does not stop the array: 22 + 16 as well. SCALE-Sim's convention: 2 * 14 per MATMUL.
    mm = "    matmul a=spad:0x0 b=spad:0x20 c=acc:0x{:x} m=4 k=8 n=4 prec=int8 acc=0 pre=0 tb=0\n"
    chained = ".core 0\n" + mm.format(0) + mm.format(0x40) + "    halt\n"
    signalled = ".core 0\n" + mm.format(0) + "    signal unit=mxu sem=0\n" + mm.format(0x40) + "    halt\n"
    assert execute(parse(chained), make_chip(), functional=False).cycles == 22 + 16
    assert execute(parse(signalled), make_chip(), functional=False).cycles == 22 + 16
    per_fold = make_chip(**{"core.tensor_core.fold_overlap": False})
    assert execute(parse(chained), per_fold, functional=False).cycles == 2 * 28


@pytest.mark.parametrize(("vec_rows", "second_end"), [
    (1, 22 + 16),  # the signal fires at 13: in time, the run goes on (max(22 + 16, 13 + 22))
    (8, 20 + 22),  # at 20: its first fold loads at 20, so it ends at 42, two cycles before a fresh MATMUL at 22
    (16, 28 + 22),  # at 28, after the first MATMUL ended: a fresh MATMUL from 28
])
def test_a_matmul_behind_a_wait_continues_the_run_as_far_as_its_operands_allow(vec_rows: int, second_end: int) -> None:
    # The VEC unit's VEXP takes 12 + rows cycles and then signals; the MXU's second MATMUL waits for it. It ends at
    # max(22 + 16, signal + 22) (chipsim.timing.continued_run, checked against the array reference model).
    prog = parse(f""".core 0
    vexp dst=acc:0x100 src=acc:0x100 rows={vec_rows} cols=4
    signal unit=vec sem=0
    matmul a=spad:0x0 b=spad:0x20 c=acc:0x0 m=4 k=8 n=4 prec=int8 acc=0 pre=0 tb=0
    wait unit=mxu sem=0
    matmul a=spad:0x0 b=spad:0x20 c=acc:0x40 m=4 k=8 n=4 prec=int8 acc=0 pre=0 tb=0
    halt
""")
    r = execute(prog, make_chip(), functional=False)
    assert r.instr_end[0][4] == second_end
    assert r.cycles == second_end
    assert r.unit_stats(0, Unit.MXU).busy_cycles == 22 + second_end - max(22, 12 + vec_rows)


def test_a_race_gives_exact_cycles_and_stops_only_the_slower_programs():
    """executor.fastest runs programs side by side in steps of simulated time: each it gives cycles for is exactly
    what running it whole gives, every one it stops (None) is slower than the fastest, and the fastest's run is
    kept for one `execute` of that program, whose result is the one a fresh simulation gives."""
    from chipsim import executor
    from mapper import MapperContext, lower_gemm

    c = make_chip(**{"mesh.cols": 2, "core.scratchpad.size_kib": 256, "core.accumulator.size_kib": 64})
    programs = [lower_gemm(m, 64, 64, MapperContext(c)).program for m in (512, 64, 128, 64)]
    whole = [timed(p, c)[0] for p in programs]
    raced = fastest(programs, c)
    best = min(whole)
    assert raced[1] == raced[3] == best and raced[0] is None  # 8x the rows: stopped once the others ended
    assert all(r == w if r is not None else w > best for r, w in zip(raced, whole))
    kept = execute(programs[1], c, functional=False)
    assert executor._kept.run is None  # taken by that execute
    fresh = execute(programs[1], c, functional=False)
    assert (kept.cycles, dict(kept.events), dict(kept.energy_j), kept.phases) == (fresh.cycles, dict(fresh.events), dict(fresh.energy_j), fresh.phases)
    assert all(np.array_equal(a, b) for a, b in zip(kept.instr_start + kept.instr_end, fresh.instr_start + fresh.instr_end))


def test_a_race_stopped_at_a_cycle_continues_in_the_next_race_of_its_program():
    """fastest(..., stop=S): where no program has ended by cycle S, every count is None and the runs wait there; the
    next race that includes those programs (races of others may come between) continues them instead of starting
    over, with the cycles a whole run gives; one that ended by S gives its cycles."""
    from chipsim import executor
    from mapper import MapperContext, lower_gemm

    c = make_chip(**{"mesh.cols": 2, "core.scratchpad.size_kib": 256, "core.accumulator.size_kib": 64})
    slow, fast, other = (lower_gemm(m, 64, 64, MapperContext(c)).program for m in (512, 128, 64))
    whole = {id(p): timed(p, c)[0] for p in (slow, fast, other)}
    assert fastest([slow], c, stop=whole[id(slow)] // 2) == (None,)
    waiting = executor._stopped.runs[1][0][1]
    assert fastest([other], c) == (whole[id(other)],)  # another race in between leaves it waiting
    started = []
    real = executor._Run

    class Counted(real):  # type: ignore[misc,valid-type]
        def __init__(self, *a, **kw):
            started.append(a[0])
            super().__init__(*a, **kw)
    executor._Run = Counted
    try:
        assert fastest([slow, fast], c) == (None, whole[id(fast)])
        assert started == [fast]  # the slow one continued
        started.clear()
        assert fastest([slow], c, stop=whole[id(slow)] + 10) == (whole[id(slow)],)
        assert fastest([slow, fast], c) == (whole[id(slow)], whole[id(fast)])  # ended already: its count
        assert started == [slow, fast]  # and not run again
    finally:
        executor._Run = real
    assert waiting.cycles() >= whole[id(slow)] // 2
    execute(slow, c, functional=False)
    assert executor._stopped.runs is None  # an execute ends the mapper's races


def test_cores_share_the_decoding_of_a_phase_but_for_their_noc_entries():
    """Dispatch decodes a phase once for every core whose instructions have its shapes (addresses aside); each
    core's NoC instructions get their own entries (routes) and events (byte-hops over their path)."""
    from chipsim.dispatch import SEND, decode_program
    from chipsim.energy import Event

    body = """    dma_ld sram=spad:0x{a:x} dram=0x{a:x} rows=4 cols=8 stride=8 dtype=int8
    signal unit=dma sem=0
    wait unit=noc sem=0
    noc_send dst_core={dst} addr=spad:0x{a:x} bytes=32 tag=1
    barrier
    dma_ld sram=spad:0x0 dram=0x{a:x} rows=4 cols=8 stride=8 dtype=int8
    halt
"""
    sends = {0: 2, 1: 2, 2: 0, 3: 2}  # three cores send alike, over one hop, two (1 -> 0 -> 2) and one
    text = ".mesh 2 2\n" + "".join(f".core {c}\n" + body.format(a=0x40 * (c + 1), dst=d) for c, d in sends.items())
    c = make_chip(**{"mesh.rows": 2, "mesh.cols": 2})
    decoded = decode_program(parse(text), c)
    alike = [decoded[i].phase_queues[0] for i in (0, 1, 3)]
    assert all(q[u] is alike[0][u] for q in alike for u in (Unit.DMA, Unit.MXU, Unit.VEC))  # decoded once
    assert decoded[2].phase_queues[0][Unit.DMA] is not alike[0][Unit.DMA]  # another NoC shape: a phase of its own
    routes = [q[Unit.NOC][1] for q in alike]
    assert all(r[0] == SEND for r in routes) and len({r[2][2] for r in routes}) == 3  # each core's own path
    assert [d.phase_events[0][Event.NOC_BYTE_HOPS] for d in decoded] == [32, 64, 32, 32]
    assert len({d.phase_ids[1] for d in decoded}) == 1 and len({d.phase_ids[0] for d in decoded}) == 4
    assert execute(parse(text), c, functional=False).events["noc_byte_hops"] == 160


def test_a_functional_run_again_moves_the_values_of_the_first_without_simulating() -> None:
    """A second functional run of the same program on the same chip does the first one's moves (instructions applied,
    NoC payloads read and landed) in their order on its own DRAM: the same bytes as simulating it again, the same
    figures, and the same error, with its location, where a move fails."""
    from chipsim.config import load_chip
    from mapper import MapperContext, lower
    from workloads.bert import preset
    from workloads.graph import build_graph

    chip = load_chip("default")  # 2x2 cores: the NoC carries the activations kept on chip
    lowered = lower(build_graph(preset("bert-tiny"), 16, 1), MapperContext(chip))
    program, size = lowered.program, lowered.layout.size_bytes
    assert any(i.op.name == "NOC_RECV" for core in program.cores for i in core)
    rng = np.random.default_rng(11)

    def image() -> np.ndarray:  # every tensor filled with values of its type (fp32 ones small), so no NaN hides a move
        dram = np.zeros(size, np.uint8)
        for t in lowered.layout.tensors.values():
            n = t.rows * t.cols
            values = (rng.standard_normal(n).astype(np.float32) * 0.1 if t.dtype is DType.FP32
                      else rng.integers(-60, 60, n).astype({DType.INT8: np.int8, DType.INT32: np.int32}[t.dtype]))
            dram[t.addr : t.addr + t.nbytes] = values.view(np.uint8)
        return dram

    images = [image() for _ in range(3)]
    first = execute(program, chip, functional=True, dram=images[0].copy())
    for image in images[1:]:
        moved, simulated = image.copy(), image.copy()
        again = execute(program, chip, functional=True, dram=moved)  # the first run's moves
        fresh = execute(program, chip, functional=True, dram=simulated, replay=False)  # simulated
        np.testing.assert_array_equal(moved, simulated)
        assert not np.array_equal(moved, image)  # the program wrote its outputs
        for run in (again, fresh):
            assert (run.cycles, dict(run.events), run.cores) == (first.cycles, dict(first.events), first.cores)
    # a DRAM too small for the program: both ways fail at the same instruction with the same message
    errors = []
    for replay in (True, False):
        execute(program, chip, functional=True, dram=images[0].copy())  # the moves to replay
        with pytest.raises(ExecutionError) as info:
            execute(program, chip, functional=True, dram=images[0][: size // 2].copy(), replay=replay)
        errors.append(str(info.value))
    assert errors[0] == errors[1] and errors[0].startswith("core ")
