"""Executor throughput: instructions per second on a >= 100k-instruction multi-core program.

    python -m benchmarks.bench_executor [--tiles N] [--profile]

The program is a double-buffered GEMM pipeline on every core of the default 2x2 chip: per tile, DMA loads A
into one of two scratchpad buffers, the MXU runs a MATMUL, the VEC unit requantizes the int32 result, the DMA
stores it, and the NoC passes a slice to the next core; SIGNAL/WAIT order the units. Small tiles keep the
functional mode's arithmetic cheap, so the figure is the executor's own overhead. Functional runs are simulated
each time; the last line is a functional run that replays the first one's moves (what a run's later sentences and
`--eval` cost: chipsim.executor.execute).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

from chipsim.config import load_chip
from chipsim.executor import execute
from isa import DmaLd, DmaSt, Halt, Instr, Matmul, Mem, NocRecv, NocSend, Program, Signal, Unit, Vquant, Wait
from isa.types import DType

M = K = N = 16
A_BYTES = M * K  # int8
C_BYTES = M * N * 4  # int32
DRAM_BYTES = 1 << 20


def core_program(core: int, ncores: int, tiles: int) -> tuple[Instr, ...]:
    """Per tile 13 instructions: a 3-stage DMA -> MXU -> VEC -> DMA pipeline plus a NoC ring hop."""
    out: list[Instr] = []
    nxt, prev = (core + 1) % ncores, (core - 1) % ncores
    # semaphores: 0/1 A buffer full, 2/3 A buffer free, 4 C ready, 5 C consumed, 6 Q ready, 7 Q stored
    out += [Signal(unit=Unit.DMA, sem=2), Signal(unit=Unit.DMA, sem=3), Signal(unit=Unit.VEC, sem=5)]
    out += [Signal(unit=Unit.DMA, sem=7)]
    b_addr = 0x10000
    for t in range(tiles):
        buf = t % 2
        a_addr = buf * A_BYTES
        dram_a = (t * A_BYTES) % (DRAM_BYTES // 2)
        out.append(Wait(unit=Unit.DMA, sem=2 + buf))
        out.append(DmaLd(mem=Mem.SPAD, sram_addr=a_addr, dram_addr=dram_a, rows=M, cols=K, dram_stride_bytes=K, dtype=DType.INT8))
        out.append(Signal(unit=Unit.DMA, sem=buf))
        out.append(Wait(unit=Unit.MXU, sem=buf))
        out.append(Wait(unit=Unit.MXU, sem=5))
        out.append(Matmul(a_addr=a_addr, b_addr=b_addr, c_addr=0, m=M, k=K, n=N, precision=DType.INT8, accumulate=False, preloaded=False, transpose_b=False))
        out.append(Signal(unit=Unit.MXU, sem=2 + buf))
        out.append(Signal(unit=Unit.MXU, sem=4))
        out.append(Wait(unit=Unit.VEC, sem=4))
        out.append(Wait(unit=Unit.VEC, sem=7))
        out.append(Vquant(dst_mem=Mem.SPAD, dst_addr=0x20000, src_mem=Mem.ACC, src_addr=0, rows=M, cols=N, scale=0.01))
        out.append(Signal(unit=Unit.VEC, sem=5))
        out.append(Signal(unit=Unit.VEC, sem=6))
        out.append(Wait(unit=Unit.DMA, sem=6))
        out.append(DmaSt(mem=Mem.SPAD, sram_addr=0x20000, dram_addr=DRAM_BYTES // 2 + core * 0x1000, rows=M, cols=N, dram_stride_bytes=N, dtype=DType.INT8))
        out.append(Signal(unit=Unit.DMA, sem=7))
        if ncores > 1 and t % 4 == 0:
            out.append(NocSend(dst_core=nxt, mem=Mem.SPAD, addr=0x30000, bytes=256, tag=t))
            out.append(NocRecv(src_core=prev, mem=Mem.SPAD, addr=0x31000, bytes=256, tag=t))
    out.append(Halt())
    return tuple(out)


def build(tiles: int) -> Program:
    chip = load_chip("default")
    n = chip.num_cores
    return Program(tuple(core_program(c, n, tiles) for c in range(n)), chip.mesh.rows, chip.mesh.cols)


def rate(program: Program, functional: bool, repeats: int = 3, moves: bool = False) -> tuple[float, float, int]:
    """Best-of-`repeats` instructions per second, by wall clock and by this process's CPU time. Functional runs
    are simulated each time unless `moves` (then every run after the first replays the first one's moves: what
    a functional run's later sentences cost)."""
    chip = load_chip("default")
    best_wall = best_cpu = float("inf")
    cycles = 0
    for _ in range(repeats):
        dram = np.zeros(DRAM_BYTES, np.uint8) if functional else None
        w0, c0 = time.perf_counter(), time.process_time()
        result = execute(program, chip, functional=functional, dram=dram, replay=moves or not functional)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        cycles = result.cycles
    n = program.num_instructions
    return n / best_wall, n / best_cpu, cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=1800, help="tiles per core (about 17 instructions each)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one timing-only run")
    args = parser.parse_args()
    t0 = time.perf_counter()
    program = build(args.tiles)
    print(f"built {program.num_instructions} instructions on {program.num_cores} cores in {time.perf_counter() - t0:.2f} s")
    if args.profile:
        chip = load_chip("default")
        prof = cProfile.Profile()
        prof.enable()
        execute(program, chip, functional=False)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    for functional, moves in ((False, False), (True, False), (True, True)):
        wall, cpu, cycles = rate(program, functional, moves=moves)
        mode = "functional, moves replayed" if moves else "functional" if functional else "timing-only"
        print(f"{mode:<27}: {wall / 1e3:8.1f} k instructions/s wall clock, {cpu / 1e3:8.1f} k/s CPU time  ({cycles} cycles)")


if __name__ == "__main__":
    main()
