"""Executor properties on random synchronized multi-core programs: functional results match NumPy, timing-only
and functional agree exactly, cycles respect the roofline, utilization in (0, 1], energy is the sum of its
parts, more DRAM bandwidth never makes a run slower."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chipsim.config import ChipConfig
from chipsim.executor import execute
from isa import DmaLd, DmaSt, Halt, Instr, Matmul, Mem, NocRecv, NocSend, Program, Signal, Unit, Vcvt, Vrmax, Wait
from isa.types import DType
from tests.test_chip_executor import make_chip

SLOT = 0x800  # DRAM bytes per (core, job): A +0, B +0x80, C +0x100, row max +0x300


@dataclass(frozen=True)
class Job:
    m: int
    k: int
    n: int


def job_program(core: int, jobs_by_core: dict[int, list[Job]], accumulate_first: bool) -> tuple[Instr, ...]:
    ncores = len(jobs_by_core)
    jobs = jobs_by_core[core]
    out: list[Instr] = []
    for j, job in enumerate(jobs):
        base = (core * 8 + j) * SLOT
        m, k, n = job.m, job.k, job.n
        out += [
            DmaLd(mem=Mem.SPAD, sram_addr=0x0, dram_addr=base, rows=m, cols=k, dram_stride_bytes=k, dtype=DType.INT8),
            DmaLd(mem=Mem.SPAD, sram_addr=0x100, dram_addr=base + 0x80, rows=k, cols=n, dram_stride_bytes=n, dtype=DType.INT8),
            Signal(unit=Unit.DMA, sem=0),
            Wait(unit=Unit.MXU, sem=0),
            # accumulate=1 on zeroed ACC (first job only, before anything was written there) equals accumulate=0
            Matmul(a_addr=0, b_addr=0x100, c_addr=0, m=m, k=k, n=n, precision=DType.INT8,
                   accumulate=accumulate_first and j == 0, preloaded=False, transpose_b=False),
            Signal(unit=Unit.MXU, sem=1),
            Wait(unit=Unit.VEC, sem=1),
            Vcvt(dst_mem=Mem.ACC, dst_addr=0x200, src_mem=Mem.ACC, src_addr=0, rows=m, cols=n, from_dtype=DType.INT32, to_dtype=DType.FP32),
            Vrmax(dst_mem=Mem.ACC, dst_addr=0x400, src_mem=Mem.ACC, src_addr=0x200, rows=m, cols=n),
            Signal(unit=Unit.VEC, sem=2),
            Wait(unit=Unit.DMA, sem=2),
            DmaSt(mem=Mem.ACC, sram_addr=0, dram_addr=base + 0x100, rows=m, cols=n, dram_stride_bytes=4 * n, dtype=DType.INT32),
            DmaSt(mem=Mem.ACC, sram_addr=0x400, dram_addr=base + 0x300, rows=m, cols=1, dram_stride_bytes=4, dtype=DType.FP32),
        ]
        if ncores > 1:
            other = (core + 1) % ncores
            prev = (core - 1) % ncores
            out += [
                NocSend(dst_core=other, mem=Mem.SPAD, addr=0x0, bytes=m * k, tag=j),
                NocRecv(src_core=prev, mem=Mem.SPAD, addr=0x400, bytes=jobs_by_core[prev][j].m * jobs_by_core[prev][j].k, tag=j),
            ]
    out.append(Halt())
    return tuple(out)


dims = st.integers(1, 9)
job_st = st.builds(Job, dims, dims, dims)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[ChipConfig, Program, dict[int, list[Job]]]:
    ncores = draw(st.integers(1, 3))
    njobs = draw(st.integers(1, 3))
    jobs = {c: draw(st.lists(job_st, min_size=njobs, max_size=njobs)) for c in range(ncores)}
    chip = make_chip(**{
        "mesh.cols": ncores,
        "core.tensor_core.rows": draw(st.integers(1, 6)),
        "core.tensor_core.cols": draw(st.integers(1, 6)),
        "core.tensor_core.dataflow": draw(st.sampled_from(["ws", "os", "is"])),
        "core.tensor_core.weight_double_buffer": draw(st.booleans()),
        "core.dma.engines": draw(st.integers(1, 3)),
        "core.dma.bytes_per_cycle": draw(st.sampled_from([4, 8, 32])),
        "core.scratchpad.bytes_per_cycle": draw(st.sampled_from([4, 64])),
        "core.accumulator.bytes_per_cycle": draw(st.sampled_from([4, 64])),
        "dram.bandwidth_gb_per_s": draw(st.sampled_from([2.0, 16.0, 100.0])),
        "dram.latency_ns": draw(st.sampled_from([0.0, 10.0, 55.5])),
        "noc.link_bytes_per_cycle": draw(st.sampled_from([1, 8])),
    })
    acc_first = draw(st.booleans())
    program = Program(tuple(job_program(c, jobs, acc_first) for c in range(ncores)), 1, ncores)
    return chip, program, jobs


@settings(max_examples=40, deadline=None)
@given(scenarios(), st.integers(0, 2**32 - 1))
def test_random_programs(scenario: tuple[ChipConfig, Program, dict[int, list[Job]]], seed: int) -> None:
    chip, program, jobs = scenario
    rng = np.random.default_rng(seed)
    dram = np.zeros(len(jobs) * 8 * SLOT, np.uint8)
    inputs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for c, js in jobs.items():
        for j, job in enumerate(js):
            base = (c * 8 + j) * SLOT
            a = rng.integers(-128, 128, (job.m, job.k)).astype(np.int8)
            b = rng.integers(-128, 128, (job.k, job.n)).astype(np.int8)
            dram[base : base + a.size] = a.view(np.uint8).ravel()
            dram[base + 0x80 : base + 0x80 + b.size] = b.view(np.uint8).ravel()
            inputs[c, j] = a, b

    f = execute(program, chip, functional=True, dram=dram)
    for (c, j), (a, b) in inputs.items():
        base = (c * 8 + j) * SLOT
        m, n = a.shape[0], b.shape[1]
        want = a.astype(np.int32) @ b.astype(np.int32)
        np.testing.assert_array_equal(dram[base + 0x100 : base + 0x100 + 4 * m * n].view(np.int32).reshape(m, n), want)
        np.testing.assert_array_equal(dram[base + 0x300 : base + 0x300 + 4 * m].view(np.float32), want.astype(np.float32).max(axis=1))

    t = execute(program, chip, functional=False)
    assert (t.cycles, t.utilization, dict(t.energy_j), dict(t.events), t.cores) == (
        f.cycles, f.utilization, dict(f.energy_j), dict(f.events), f.cores
    )
    for x, y in zip(f.instr_start + f.instr_end, t.instr_start + t.instr_end):
        np.testing.assert_array_equal(x, y)

    assert t.cycles >= t.roofline.bound_cycles - 1e-9
    assert 0.0 < t.utilization <= 1.0
    parts = [v for k, v in t.energy_j.items() if k != "total"]
    total = 0.0
    for v in parts:
        total += v
    assert total == t.energy_j["total"] > 0
    assert t.useful_macs == sum(job.m * job.k * job.n for js in jobs.values() for job in js)
    for core in t.cores:
        assert core.finish_cycle <= t.cycles
        for u in core.units:
            assert 0 <= u.busy_cycles <= t.cycles
    # every instruction ran, in order per unit, inside the run
    for s, e in zip(t.instr_start, t.instr_end):
        assert (s >= 0).all() and (e >= s).all() and (e <= t.cycles).all()

    faster = chip.model_copy(update={"dram": chip.dram.model_copy(update={"bandwidth_gb_per_s": chip.dram.bandwidth_gb_per_s * 4})})
    assert execute(program, faster, functional=False).cycles <= t.cycles
