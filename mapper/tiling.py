"""Pass 3: tile every kernel to fit the scratchpad and accumulator with double buffering.

GEMMs get a mapping search: candidate tilings (tm rows of A, tn output columns, tk reduction chunk; powers of
two times the array size, plus the whole dimension) are scored with an analytic model built on the executor's
own cost rules (chipsim.timing): per work item max(array cycles, DMA cycles, vector cycles), items spread over
the cores, plus one exposed load. Candidates are visited in a fixed order and the search stops after
`search_candidates` of them, so the result is deterministic. A chip whose SRAM cannot hold the smallest legal
tile is a MapperError naming the kernel, the need and the capacity.
"""

from __future__ import annotations

import dataclasses
import itertools
from functools import cache

import networkx as nx

from chipsim import timing
from chipsim.config import ChipConfig, VectorOp
from mapper.context import ALIGN_BYTES, MapperContext
from mapper.errors import MapperError
from mapper.kernels import Attention, Gemm, Kernel, RowNorm, Tiling, kernels, replace_kernels

MAX_DIM = 16383  # ISA: rows/cols/m/k/n fields are 14 bits
SLOTS = 2  # double buffering


def align(n: int) -> int:
    return -(-n // ALIGN_BYTES) * ALIGN_BYTES


def gemm_sram_bytes(tm: int, tn: int, tk: int, q: int, residual: bool, out_q: bool, a_resident: bool = False) -> tuple[int, int]:
    """(scratchpad, accumulator) bytes of one core's GEMM buffers, every buffer double-buffered."""
    spad = SLOTS * ((0 if a_resident else align(tm * tk * q)) + align(tk * tn * q) + 2 * align(tn * 4))
    if residual:
        spad += SLOTS * align(tm * tn * 4)
    if out_q:
        spad += SLOTS * align(tm * tn * q)
    return spad, SLOTS * align(tm * tn * 4)


def _candidates(full: int, unit: int) -> list[int]:
    sizes = {min(full, MAX_DIM)}
    t = unit
    while t < full and t <= MAX_DIM:
        sizes.add(t)
        t *= 2
    return sorted(sizes, reverse=True)


def _dma_cycles(chip: ChipConfig, nbytes: int, active_cores: int) -> float:
    per_core_dram = chip.dram_bytes_per_cycle / max(1, active_cores)
    engines = chip.core.dma.engines * chip.core.dma.bytes_per_cycle
    return nbytes / min(engines, per_core_dram)


@cache
def _gemm_cost(chip: ChipConfig, m: int, k: int, n: int, q: int, residual: bool, out_q: bool, gelu: bool, tm: int, tn: int, tk: int,
               a_resident: bool = False) -> float:
    tc = chip.core.tensor_core
    items = -(-m // tm) * -(-n // tn)
    active = min(chip.num_cores, items)
    per_core = -(-items // active)
    mxu = 0
    for k0 in range(0, k, tk):
        mxu += timing.matmul_timing(tc.dataflow, tc.rows, tc.cols, tm, min(tk, k - k0), tn, weight_double_buffer=tc.weight_double_buffer,
                                    fold_overlap=tc.fold_overlap).total_cycles
    m_tiles = -(-m // tm)
    b_per_item = k * tn * q / (m_tiles if tk >= k else 1)  # a whole weight block stays put across row tiles
    a_per_item = 0 if a_resident else tm * k * q
    out_bytes = tm * tn * (4 if residual else 0) + tm * tn * (q if out_q else 4)
    dma = _dma_cycles(chip, int(a_per_item + b_per_item + out_bytes), active)
    v = chip.core.vector
    ops = [VectorOp.CONVERT, VectorOp.MUL, VectorOp.ADD] + [VectorOp.ADD] * residual + [VectorOp.GELU] * gelu + [VectorOp.QUANT] * out_q
    vec = sum(timing.vector_cycles(tm * tn, v.lanes, v.cycles_per_op.cycles(op), v.latency_cycles.cycles(op)) for op in ops)
    latency = timing.ns_to_cycles(chip.dram.latency_ns, chip.clock_mhz)
    # Items pipeline (loads run one item ahead, chunks one chunk ahead); exposed are the first chunk's load,
    # the last epilogue and the last store.
    head = _dma_cycles(chip, (0 if a_resident else tm * min(tk, k) * q) + min(tk, k) * tn * q, active)
    return per_core * max(mxu, dma, vec) + latency + head + vec + _dma_cycles(chip, out_bytes, active)


def search_gemm(k: Gemm, ctx: MapperContext, reserved_spad: int = 0) -> Tiling:
    """The cheapest tiling of `k` that fits, by the analytic model, within the candidate budget.

    With A resident in the scratchpad (gathered over the NoC), tilings that keep the whole reduction in one
    chunk read it in place and pay no A traffic; the others load A from DRAM as usual."""
    chip = ctx.chip
    best, smallest_need = _best_tiling(chip, k.m, k.k, k.n, ctx.q_itemsize, k.residual is not None, k.out_q is not None,
                                       k.gelu, k.a_resident is not None, ctx.search_candidates, reserved_spad)
    if best is None:
        raise MapperError(
            f"kernel {k.name} ({k.m}x{k.k}x{k.n}) does not fit: its smallest double-buffered tile needs "
            f"{smallest_need[0]} B of scratchpad and {smallest_need[1]} B of accumulator, the chip has "
            f"{chip.core.scratchpad.size_bytes - reserved_spad} B and {chip.core.accumulator.size_bytes} B; "
            "give core.scratchpad.size_kib / core.accumulator.size_kib more room."
        )
    return best


@cache
def _best_tiling(chip: ChipConfig, m: int, k: int, n: int, q: int, residual: bool, out_q: bool, gelu: bool,
                 a_resident: bool, candidates: int, reserved_spad: int) -> tuple[Tiling | None, tuple[int, int]]:
    """The search itself, per GEMM shape (the same shape recurs in every layer): the best tiling, or None, and
    the SRAM need of the smallest candidate (for the error message)."""
    tc = chip.core.tensor_core
    spad_cap, acc_cap = chip.core.scratchpad.size_bytes - reserved_spad, chip.core.accumulator.size_bytes
    best: Tiling | None = None
    smallest_need: tuple[int, int] | None = None
    tried = 0
    for tm, tn, tk in itertools.product(_candidates(m, tc.rows), _candidates(n, tc.cols), _candidates(k, tc.rows)):
        resident = a_resident and tk >= k
        spad, acc = gemm_sram_bytes(tm, tn, tk, q, residual, out_q, resident)
        if smallest_need is None or spad + acc < sum(smallest_need):
            smallest_need = (spad, acc)
        if spad > spad_cap or acc > acc_cap:
            continue
        cost = _gemm_cost(chip, m, k, n, q, residual, out_q, gelu, tm, tn, tk, resident)
        if best is None or cost < best.cost_cycles:
            best = Tiling(tm, tn, tk, cost)
        tried += 1
        if tried >= candidates:
            break
    assert smallest_need is not None
    return best, smallest_need


def attention_sram_bytes(tq: int, seq: int, d: int, q: int) -> tuple[int, int]:
    spad = SLOTS * (align(tq * d * q) + 2 * align(seq * d * q) + align(seq * 4) + align(tq * seq * q) + align(tq * d * q)) + 2 * align(tq * 4)
    return spad, SLOTS * (align(tq * seq * 4) + align(tq * d * 4))


def rownorm_sram_bytes(tr: int, cols: int, q: int) -> int:
    return SLOTS * (2 * align(tr * cols * 4) + align(tr * cols * q)) + 3 * align(cols * 4) + 2 * align(tr * 4) + align(tr * cols * 4)


def _largest_fitting(name: str, full: int, fits, describe) -> int:
    t = min(full, MAX_DIM)
    while t >= 1:
        if fits(t):
            return t
        t = t // 2 if t > 1 else 0
    raise MapperError(f"kernel {name} does not fit even one row: {describe()}; give core.scratchpad.size_kib / core.accumulator.size_kib more room.")


def tile_to_sram(g: nx.DiGraph, ctx: MapperContext) -> nx.DiGraph:
    chip, q = ctx.chip, ctx.q_itemsize
    reserved = g.graph.get("resident_spad_bytes", 0)
    spad_cap, acc_cap = chip.core.scratchpad.size_bytes - reserved, chip.core.accumulator.size_bytes
    new: dict[str, Kernel] = {}
    for k in kernels(g):
        if isinstance(k, Gemm):
            new[k.name] = dataclasses.replace(k, tiling=search_gemm(k, ctx, reserved))
        elif isinstance(k, Attention):
            def fits(t: int, k: Attention = k) -> bool:
                spad, acc = attention_sram_bytes(t, k.seq, k.head_dim, q)
                return spad <= spad_cap and acc <= acc_cap
            need = attention_sram_bytes(1, k.seq, k.head_dim, q)
            new[k.name] = dataclasses.replace(k, tq=_largest_fitting(
                k.name, k.seq, fits, lambda: f"one query row with {k.seq} keys needs {need[0]} B of scratchpad and {need[1]} B of accumulator, the chip has {spad_cap} B and {acc_cap} B"))
        elif isinstance(k, RowNorm):
            rows_per_core = -(-k.rows // ctx.cores)
            new[k.name] = dataclasses.replace(k, tr=_largest_fitting(
                k.name, rows_per_core, lambda t, k=k: rownorm_sram_bytes(t, k.cols, q) <= spad_cap,
                lambda: f"one row of {k.cols} needs {rownorm_sram_bytes(1, k.cols, q)} B of scratchpad, the chip has {spad_cap} B"))
    return replace_kernels(g, new)
