"""The compiler from a workload graph to one ISA program per core: pure passes listed in one place, then emit."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import networkx as nx

from isa import DType
from mapper.context import MapperContext, Objective, first_fastest
from mapper.emit import Lowered, emit
from mapper.errors import MapperError
from mapper.fuse import fuse_epilogues
from mapper.kernels import Attention, Gemm, KernelGraphFacts, kernel_graph, kernels
from mapper.layout import TensorRole, allocate_dram
from mapper.on_chip import keep_on_chip
from mapper.place import place_on_cores
from mapper.quantize import quantize
from mapper.tiling import tile_to_sram

Pass = Callable[[nx.DiGraph, MapperContext], nx.DiGraph]

# The pass order, in one place. fuse_epilogues turns the operator graph into kernels; each later pass refines them.
PASSES: tuple[Pass, ...] = (quantize, keep_on_chip, tile_to_sram, place_on_cores, allocate_dram)


def check_graph(g: nx.DiGraph, after: str) -> None:
    """Invariants between passes: a DAG of kernels in phase order."""
    if not nx.is_directed_acyclic_graph(g):
        raise AssertionError(f"after {after}: the kernel graph has a cycle")
    phases = [g.nodes[n]["kernel"].phase for n in g.nodes]
    if phases != sorted(phases):
        raise AssertionError(f"after {after}: kernels are not in phase order")


def _passed(graph: nx.DiGraph, ctx: MapperContext, verify: bool) -> nx.DiGraph:
    for p in PASSES:
        graph = p(graph, ctx)
        if verify:
            check_graph(graph, p.__name__)
    return graph


def _run_passes(graph: nx.DiGraph, ctx: MapperContext, verify: bool) -> Lowered:
    return emit(_passed(graph, ctx, verify), ctx)


def _layouts(passed: nx.DiGraph, ctx: MapperContext, first: Lowered | None = None) -> list[Lowered]:
    """The program of `passed` (`first`, where emitted already); where a pin did not fit after a GEMM leaving the
    DRAM idle kept new weight slots below its own (mapper.emit._plan_ahead), the one deferring them instead if it
    loads more weight bytes ahead (so its GEMMs start with more of their weights in: racing the two whole, on
    the A100 preset in bf16 at batch 16, took 100 s against the 5 s of the rest of the lowering)."""
    low = emit(passed, ctx) if first is None else first
    if not low.stranded_pins:
        return [low]
    deferred = emit(passed, ctx, defer_pins=True)
    return [deferred] if _ahead(deferred) > _ahead(low) else [low]


def _ahead(low: Lowered) -> int:
    return sum(n for _, _, n in low.ahead_bytes)


def lower(workload: nx.DiGraph, ctx: MapperContext, *, verify: bool = False) -> Lowered:
    """A BERT workload graph -> one program per core.

    With an energy or edp `ctx.objective` and a measure, the programs that each objective's choices per GEMM make
    are all measured whole, and the best by `ctx.objective` is kept (its own on a tie): GEMM choices interact
    through the weight tiles loaded ahead across kernels and through the DRAM the cores share, which no
    measurement of a GEMM alone sees, so the objective's own program is not always the best by its figure.

    Each program, where a later pin did not fit after a GEMM leaving the DRAM idle kept new weight slots below its
    own (mapper.emit._plan_ahead), is the one of the two layouts (keeping those slots, or deferring them to the
    kernel after it) that loads more weight bytes ahead (`_layouts`): which lets the later, larger pins fit
    depends on the chip.

    Likewise, with a measure, a program whose attention reads Q|K|V kept on chip (gathered over the NoC:
    mapper.on_chip) is measured against the one that sends Q|K|V through DRAM, and the better kept (the kept one on
    a tie): the NoC's gather is hidden behind the projection on some chips and not on others (slow links, one
    core's local port), which no analytic rule here tells apart. Where the objective is latency, the variants are
    raced (`ctx.race`, when given) rather than each timed whole: the same pick; and the one through DRAM is not
    lowered at all where the kept one ends by the fewest cycles it could take (`_ends_by_dram_floor`)."""
    graph = fuse_epilogues(workload)
    if verify:
        check_graph(graph, "fuse_epilogues")
    passed = _passed(graph, ctx, verify)
    lowered = emit(passed, ctx)
    if ctx.measure is None:
        return lowered
    measure = ctx.measure
    variants = _layouts(passed, ctx, lowered)
    if ctx.objective is not Objective.LATENCY:
        for o in Objective:
            if o is not ctx.objective:
                other = dataclasses.replace(ctx, objective=o)
                variants += _layouts(_passed(graph, other, verify), other)
    if any(isinstance(k, Attention) and k.q_resident is not None for k in kernels(passed)) and not _ends_by_dram_floor(passed, lowered, ctx):
        through = dataclasses.replace(ctx, attention_inputs_on_chip=False)
        variants += _layouts(_passed(graph, through, verify), through)
    if len(variants) == 1:
        return lowered
    if ctx.race is not None and ctx.objective is Objective.LATENCY:
        return variants[first_fastest(ctx.race([low.program for low in variants], ctx.chip))]
    return min(variants, key=lambda low: ctx.objective.score(*measure(low.program, ctx.chip)))


def _ends_by_dram_floor(passed: nx.DiGraph, lowered: Lowered, ctx: MapperContext) -> bool:
    """Whether the program that keeps Q|K|V on chip ends by the fewest cycles the one sending it through DRAM could
    take, so that one need not be lowered: that one reads every parameter and input and writes every output once,
    and writes and reads back every attention's Q|K|V, all through the one DRAM channel, which moves
    `dram_bytes_per_cycle` at most (a global buffer, whose hits skip the channel, has no such floor). The kept
    program is raced alone up to the floor; where it runs past it, the race of the two continues its run."""
    if ctx.race is None or ctx.objective is not Objective.LATENCY or ctx.chip.global_buffer is not None:
        return False
    qkv = sum(2 * k.batch * k.seq * 3 * k.hidden * ctx.q_itemsize for k in kernels(passed) if isinstance(k, Attention))
    floor = (lowered.layout.compulsory_read_bytes + lowered.layout.compulsory_write_bytes + qkv) / ctx.chip.dram_bytes_per_cycle
    cycles = ctx.race([lowered.program], ctx.chip, stop=math.floor(floor))[0]
    return cycles is not None and cycles <= floor


def lower_gemm(m: int, k: int, n: int, ctx: MapperContext, *, quantized_out: bool = False, verify: bool = False) -> Lowered:
    """One GEMM C[m,n] = A[m,k] @ B[k,n] through the same passes: A and B start in DRAM, the raw accumulator
    tiles (int32 on an int8 chip, fp32 on a bf16 one) are stored back to DRAM; with `quantized_out`, C is
    stored as the operand type instead (int8 requantized by one scale, or bf16), as a layer's output would be."""
    q = DType.INT8 if ctx.int8 else DType.BF16
    out_t = q if quantized_out else DType.INT32 if ctx.int8 else DType.FP32
    tensors = (("a", m, k, q, TensorRole.INPUT), ("w", k, n, q, TensorRole.PARAMETER), ("out", m, n, out_t, TensorRole.OUTPUT))
    if quantized_out:
        gemm = Gemm("gemm", 0, 0, m, k, n, "a", "w", None, "", "out", None, raw=True)
    else:
        gemm = Gemm("gemm", 0, 0, m, k, n, "a", "w", None, "", None, "out", raw=True)
    return _run_passes(kernel_graph([gemm], KernelGraphFacts(tensors=tensors)), ctx, verify)


__all__ = ["PASSES", "Lowered", "MapperContext", "MapperError", "Objective", "lower", "lower_gemm"]
