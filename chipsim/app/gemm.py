"""One GEMM through the same mapper and executor: quick what-ifs and cross-checks with other simulators.

C[M,N] = A[M,K] @ B[K,N] on one core with an R x C array. With `ideal_memory` the operands are already in
the scratchpad and the SRAM ports are unlimited, so only the array's cycles count: the program is the MATMULs
alone (split along N and K only where one would overflow the 16 MiB SRAM address space, at multiples of the
array size, which leaves the folded cycle count unchanged). Without it, A and B start in DRAM and the mapper
tiles, double-buffers and schedules them like any layer, storing the raw accumulator tiles back to DRAM.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass

from chipsim.config import (
    ChipConfig,
    Dataflow,
    Precision,
    apply_overrides,
    chip_from_dict,
    load_chip_dict,
)
from chipsim.executor import execute, fastest, timed
from isa import MAX_DIM, SRAM_ADDR_SPACE_BYTES, DType, Halt, Matmul, Program
from mapper import MapperContext, lower_gemm
from workloads.errors import WorkloadError

SRAM_LIMIT_BYTES = SRAM_ADDR_SPACE_BYTES  # what one SRAM address field reaches
# Size limits of one `chipsim gemm`: 4 x 16,383 (four times the ISA's largest dimension) per dimension, and the MACs
# of BERT-large's FFN at seq 512, batch 32 (4096 x 1024 x 4096 x 4 = 2^36): far beyond that, the program of array
# tiles (about MACs / array size / K instructions) takes gigabytes to build.
MAX_GEMM_DIM = 4 * MAX_DIM
MAX_GEMM_MACS = 1 << 36


@dataclass(frozen=True, slots=True)
class GemmResult:
    m: int
    k: int
    n: int
    rows: int
    cols: int
    dataflow: str
    precision: str
    ideal_memory: bool
    weight_double_buffer: bool
    fold_overlap: bool
    partial_folds: bool
    cycles: int
    macs: int
    utilization: float
    roofline_cycles: float
    instructions: int
    energy_j: float
    wall_s: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@functools.cache
def gemm_chip(rows: int, cols: int, dataflow: Dataflow, precision: Precision, *, ideal_memory: bool, weight_double_buffer: bool,
              fold_overlap: bool = True, partial_folds: bool = True) -> ChipConfig:
    """The default chip cut to one core with the given array (ideal memory: 16 MiB SRAMs, unlimited ports)."""
    sets = ["mesh.rows=1", "mesh.cols=1", f"core.tensor_core.rows={rows}", f"core.tensor_core.cols={cols}",
            f"core.tensor_core.dataflow={dataflow.value}", f"core.tensor_core.precision={precision.value}",
            f"core.tensor_core.weight_double_buffer={'true' if weight_double_buffer else 'false'}",
            f"core.tensor_core.fold_overlap={'true' if fold_overlap else 'false'}",
            f"core.tensor_core.partial_folds={'true' if partial_folds else 'false'}"]
    if ideal_memory:
        sets += ["core.scratchpad.size_kib=16384", "core.scratchpad.banks=16", "core.scratchpad.bytes_per_cycle=65536",
                 "core.accumulator.size_kib=16384", "core.accumulator.banks=16", "core.accumulator.bytes_per_cycle=65536"]
    return chip_from_dict(apply_overrides(load_chip_dict("default"), sets))


def ideal_program(m: int, k: int, n: int, chip: ChipConfig, prec: DType) -> Program:
    """The GEMM as MATMULs on operands already in the scratchpad (split only to fit 16 MiB SRAMs)."""
    q = prec.itemsize
    tc = chip.core.tensor_core
    # Largest chunks (multiples of the array) whose A, B and C fit the SRAM address space.
    tk = min(k, MAX_DIM)
    while tk > tc.rows and (m * tk + tk * min(n, MAX_DIM)) * q > SRAM_LIMIT_BYTES:
        tk = max(tc.rows, (tk // 2) // tc.rows * tc.rows)
    tn = min(n, MAX_DIM)
    while tn > tc.cols and (m * tn * 4 > SRAM_LIMIT_BYTES or (m * tk + tk * tn) * q > SRAM_LIMIT_BYTES):
        tn = max(tc.cols, (tn // 2) // tc.cols * tc.cols)
    if m > MAX_DIM or (m * tk + tk * tn) * q > SRAM_LIMIT_BYTES or m * tn * 4 > SRAM_LIMIT_BYTES:
        raise WorkloadError(f"gemm {m}x{k}x{n} is too large for one core's 16 MiB SRAMs even when split; use M <= {MAX_DIM} and smaller K or N.")
    instrs = []
    for n0 in range(0, n, tn):
        for k0 in range(0, k, tk):
            instrs.append(Matmul(a_addr=0, b_addr=m * tk * q, c_addr=0, m=m, k=min(tk, k - k0), n=min(tn, n - n0),
                                 precision=prec, accumulate=k0 > 0, preloaded=False, transpose_b=False))
    return Program((tuple(instrs) + (Halt(),),), 1, 1)


def mapped_program(m: int, k: int, n: int, chip: ChipConfig, *, quantized_out: bool = False) -> Program:
    """The GEMM tiled, placed and scheduled by the mapper on `chip` (any chip), raw accumulators stored to DRAM
    (or, `quantized_out`, requantized to the operand type as a layer's output would be)."""
    return lower_gemm(m, k, n, MapperContext(chip, measure=timed, race=fastest), quantized_out=quantized_out).program


def run_gemm(m: int, k: int, n: int, rows: int, cols: int, dataflow: Dataflow, precision: Precision, *,
             ideal_memory: bool = False, weight_double_buffer: bool = True, fold_overlap: bool = True,
             partial_folds: bool = True) -> GemmResult:
    for name, v in (("M", m), ("K", k), ("N", n), ("--rows", rows), ("--cols", cols)):
        if v < 1:
            raise WorkloadError(f"gemm {name} must be a positive integer, got {v}.")
    for name, v in (("M", m), ("K", k), ("N", n)):
        if v > MAX_GEMM_DIM:
            raise WorkloadError(f"gemm {name} is {v:,}, more than {MAX_GEMM_DIM:,}; chipsim gemm is for layer-sized GEMMs.")
    if m * k * n > MAX_GEMM_MACS:
        raise WorkloadError(f"gemm {m}x{k}x{n} is {m * k * n:,} MACs, more than {MAX_GEMM_MACS:,}: its program would not fit in "
                            "memory; split it into smaller GEMMs.")
    if rows > MAX_DIM or cols > MAX_DIM:
        raise WorkloadError(f"--rows and --cols must be at most {MAX_DIM} (the ISA's dimension fields), got {rows} and {cols}.")
    t0 = time.perf_counter()
    chip = gemm_chip(rows, cols, dataflow, precision, ideal_memory=ideal_memory, weight_double_buffer=weight_double_buffer,
                     fold_overlap=fold_overlap, partial_folds=partial_folds)
    prec = DType.INT8 if precision is Precision.INT8 else DType.BF16
    program = ideal_program(m, k, n, chip, prec) if ideal_memory else mapped_program(m, k, n, chip)
    r = execute(program, chip, functional=False)
    return GemmResult(m, k, n, rows, cols, dataflow.value, precision.value, ideal_memory, weight_double_buffer, fold_overlap,
                      partial_folds, r.cycles,
                      r.useful_macs, r.utilization, r.roofline.bound_cycles, r.instructions, r.energy_total_j,
                      time.perf_counter() - t0)
