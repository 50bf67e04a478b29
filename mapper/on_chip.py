"""Keep activations on chip instead of sending them through DRAM.

Three kinds of activation stay on chip when they fit beside every kernel's own buffers:
- the operands the next GEMM reads as A, gathered whole on every core in a region reserved at the top of the
  scratchpad: the LayerNorm and embedding outputs (rows, sent to every other core), the FFN1 output and the
  attention context (tiles, sent to every core, each landing as a block of the whole matrix through a strided
  NOC_RECV). The consuming GEMM reads A in place, its whole reduction dimension in one chunk, or (stream-K,
  mapper.tiling) chunk by chunk, the tensor then laid out in column blocks of one chunk (OnChip.block_cols);
- the fp32 residual stream: each core keeps the rows it owns (mapper.place.owned_rows) in a region reserved at
  the top of the accumulator, and the LayerNorm updates them in place;
- the fp32 outputs of the projections that feed a LayerNorm: each output tile goes, row block by row block,
  to the cores owning those rows (NOC_SEND; the router's local port for its own rows), into a second
  accumulator region the LayerNorm reads.
Nothing of these is stored to DRAM. The plan tries all three, then the gathered operands alone, then the
LayerNorm outputs alone, and keeps the first under which every kernel still tiles; a chip where none fits keeps
everything in DRAM, as the per-layer mapping record says.
"""

from __future__ import annotations

import dataclasses

import networkx as nx

from isa import Mem
from mapper.context import ALIGN_BYTES, MapperContext
from mapper.errors import MapperError
from mapper.kernels import Attention, Gemm, Kernel, OnChip, Residency, RowNorm, graph_facts, kernels, replace_kernels, with_facts
from mapper.place import owned_rows

RESERVE_FRACTION = 2  # the regions may take at most half of the scratchpad and half of the accumulator


def _align(n: int) -> int:
    return -(-n // ALIGN_BYTES) * ALIGN_BYTES


def _plans(ks: list[Kernel], q: int, cores: int) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    """(gathered LayerNorm outputs, gathered GEMM / attention outputs, residual-stream tensors) per plan, most on
    chip first."""
    norms = [k for k in ks if isinstance(k, RowNorm)]
    gemms = [k for k in ks if isinstance(k, Gemm)]
    a_of = {k.a for k in gemms}
    ln_ops = tuple(dict.fromkeys(k.out_q for k in norms if k.out_q in a_of))
    tile_ops = tuple(dict.fromkeys([k.out_q for k in gemms if k.out_q in a_of and k.out_q not in ln_ops]
                                   + [k.out for k in ks if isinstance(k, Attention) and k.out in a_of]))
    # the residual stream: fp32 rows a LayerNorm writes and a later one adds, and projection outputs only a
    # LayerNorm reads (as its input rows)
    norm_inputs = {k.inp for k in norms}
    addends = {name for k in norms for name, _ in k.addends}
    stream = tuple(dict.fromkeys([k.out_f for k in norms if k.out_f in addends]
                                 + [k.out_f for k in gemms if k.out_f in norm_inputs and k.out_f not in a_of]))
    return [(ln_ops, tile_ops, stream), (ln_ops, tile_ops, ()), (ln_ops, (), ()), ((), (), ())]


def _residency(ks: list[Kernel], ln_ops: tuple[str, ...], tile_ops: tuple[str, ...], stream: tuple[str, ...],
               ctx: MapperContext) -> tuple[tuple[OnChip, ...], int, int] | None:
    """Where each kept tensor lives, and the scratchpad / accumulator bytes reserved; None if over the budget."""
    q = ctx.q_itemsize
    spad, acc = ctx.chip.core.scratchpad.size_bytes, ctx.chip.core.accumulator.size_bytes
    shape: dict[str, tuple[int, int]] = {}
    for k in ks:
        if isinstance(k, RowNorm):
            shape[k.out_q] = shape[k.out_f] = shape[k.inp] = (k.rows, k.cols)
        elif isinstance(k, Gemm):
            for t in (k.out_q, k.out_f):
                if t is not None:
                    shape[t] = (k.m, k.n)
        elif isinstance(k, Attention):
            shape[k.out] = (k.batch * k.seq, k.hidden)
    ln_bytes = max((_align(shape[t][0] * shape[t][1] * q) for t in ln_ops), default=0)
    tile_bytes = max((_align(shape[t][0] * shape[t][1] * q) for t in tile_ops), default=0)
    if ln_bytes + tile_bytes > spad // RESERVE_FRACTION:
        return None
    top = spad // ALIGN_BYTES * ALIGN_BYTES
    ln_addr, tile_addr = top - ln_bytes, top - ln_bytes - tile_bytes
    placed = [OnChip(t, Residency.GATHERED, Mem.SPAD, ln_addr, shape[t][1]) for t in ln_ops]
    placed += [OnChip(t, Residency.GATHERED, Mem.SPAD, tile_addr, shape[t][1]) for t in tile_ops]
    acc_bytes = 0
    if stream:
        rows, cols = shape[stream[0]]
        own = max(n for _, n in owned_rows(rows, ctx.cores))
        region = _align(own * cols * 4)
        acc_bytes = 2 * region
        if acc_bytes > acc // RESERVE_FRACTION:
            return None
        acc_top = acc // ALIGN_BYTES * ALIGN_BYTES
        norm_outs = {k.out_f for k in ks if isinstance(k, RowNorm)}
        for t in stream:  # the LayerNorm outputs share one region (updated in place); the projections' another
            addr = acc_top - region if t in norm_outs else acc_top - 2 * region
            placed.append(OnChip(t, Residency.OWNED_ROWS, Mem.ACC, addr, cols))
    return tuple(placed), spad - tile_addr, acc_bytes


def keep_on_chip(g: nx.DiGraph, ctx: MapperContext) -> nx.DiGraph:
    from mapper.tiling import tile_to_sram  # the trial tiling of each plan

    facts = graph_facts(g)
    ks = kernels(g)
    if facts.workload is None:
        return g
    for ln_ops, tile_ops, stream in _plans(ks, ctx.q_itemsize, ctx.cores):
        if not (ln_ops or tile_ops or stream):
            return g
        found = _residency(ks, ln_ops, tile_ops, stream, ctx)
        if found is None:
            continue
        placed, spad_bytes, acc_bytes = found
        addr = {t.tensor: t.addr for t in placed if t.residency is Residency.GATHERED}
        new: dict[str, Kernel] = {k.name: dataclasses.replace(k, a_resident=addr[k.a]) for k in ks if isinstance(k, Gemm) and k.a in addr}
        trial = with_facts(replace_kernels(g, new), resident_spad_bytes=spad_bytes, resident_acc_bytes=acc_bytes, on_chip=placed)
        try:
            tile_to_sram(trial, dataclasses.replace(ctx, measure=None))
        except MapperError:
            continue
        return trial
    return g
