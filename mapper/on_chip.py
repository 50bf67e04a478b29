"""Keep activations on chip instead of sending them through DRAM.

Four kinds of activation stay on chip when they fit beside every kernel's own buffers:
- the operands the next GEMM reads as A, gathered whole on every core in a region reserved at the top of the
  scratchpad: the LayerNorm and embedding outputs (rows, sent to every other core), the FFN1 output and the
  attention context (tiles, sent to every core, each landing as a block of the whole matrix through a strided
  NOC_RECV). The consuming GEMM reads A in place, its whole reduction dimension in one chunk, or (stream-K,
  mapper.tiling) chunk by chunk, the tensor then laid out in column blocks of one chunk (OnChip.block_cols);
- the attention's input, Q | K | V (the fused projection's output), gathered whole on every core and laid out
  in column blocks of head_dim: the projection sends each tile block by block (a strided NOC_SEND per block it
  spans) and every head's Q, K and V is a dense block the attention's MATMULs read in place;
- the fp32 residual stream: each core keeps the rows it owns (mapper.place.owned_rows) in a region reserved at
  the top of the accumulator, and the LayerNorm updates them in place;
- the fp32 outputs of the projections that feed a LayerNorm: each output tile goes, row block by row block,
  to the cores owning those rows (NOC_SEND; the router's local port for its own rows), into a second
  accumulator region the LayerNorm reads.
The gathered tensors share one region, two of them the same bytes only where no kernel holds both live (Q | K | V
and the FFN1 output, say; not Q | K | V and the context the attention writes while reading it). Nothing of these
is stored to DRAM. The plan tries all four, then all but Q | K | V, then the gathered operands alone, then the
LayerNorm outputs alone, and keeps the first under which every kernel still tiles; a chip where none fits keeps
everything in DRAM, as the per-layer mapping record says.
"""

from __future__ import annotations

import dataclasses

import networkx as nx

from isa import Mem
from mapper.context import ALIGN_BYTES, MapperContext
from mapper.errors import MapperError
from mapper.kernels import Attention, Gemm, Kernel, OnChip, Residency, RowNorm, feeds_heads, graph_facts, hands_rows, kernels, replace_kernels, with_facts
from mapper.place import owned_rows

RESERVE_FRACTION = 2  # the regions may take at most half of the scratchpad and half of the accumulator


def _align(n: int) -> int:
    return -(-n // ALIGN_BYTES) * ALIGN_BYTES


Plan = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _plans(ks: list[Kernel], attention_inputs: bool) -> list[Plan]:
    """(gathered LayerNorm outputs, gathered GEMM / attention outputs, gathered attention inputs, residual-stream
    tensors) per plan, most on chip first."""
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
    att_ops = tuple(dict.fromkeys(k.q for k in ks if isinstance(k, Attention))) if attention_inputs else ()
    return [(ln_ops, tile_ops, att_ops, stream), (ln_ops, tile_ops, (), stream), (ln_ops, tile_ops, (), ()), (ln_ops, (), (), ()),
            ((), (), (), ())]


def _residency(ks: list[Kernel], ln_ops: tuple[str, ...], tile_ops: tuple[str, ...], att_ops: tuple[str, ...],
               stream: tuple[str, ...], ctx: MapperContext) -> tuple[tuple[OnChip, ...], int, int] | None:
    """Where each kept tensor lives, and the scratchpad / accumulator bytes reserved; None if over the budget."""
    q = ctx.q_itemsize
    spad, acc = ctx.chip.core.scratchpad.size_bytes, ctx.chip.core.accumulator.size_bytes
    shape: dict[str, tuple[int, int]] = {}
    head_dim: dict[str, int] = {}
    for k in ks:
        if isinstance(k, RowNorm):
            shape[k.out_q] = shape[k.out_f] = shape[k.inp] = (k.rows, k.cols)
        elif isinstance(k, Gemm):
            for t in (k.out_q, k.out_f):
                if t is not None:
                    shape[t] = (k.m, k.n)
        elif isinstance(k, Attention):
            shape[k.out] = (k.batch * k.seq, k.hidden)
            head_dim[k.q] = k.head_dim
    gathered = (*ln_ops, *tile_ops, *att_ops)
    offsets, region = _pack(ks, {t: _align(shape[t][0] * shape[t][1] * q) for t in gathered})
    if region > spad // RESERVE_FRACTION:
        return None
    top = spad // ALIGN_BYTES * ALIGN_BYTES
    bottom = top - region
    placed = [OnChip(t, Residency.GATHERED, Mem.SPAD, bottom + offsets[t], shape[t][1], block_cols=head_dim.get(t, 0)) for t in gathered]
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
    return tuple(placed), spad - bottom, acc_bytes


def _live(ks: list[Kernel], names: set[str]) -> dict[str, list[tuple[int, int]]]:
    """Per tensor of `names`, the kernel-index intervals over which it is live: from a kernel writing it to each
    later kernel reading what that one wrote (both ends included; the names recur in every layer). A GEMM handing
    its rows to the LayerNorm after it, or its Q | K | V to the attention, reads its A until that kernel (their one
    phase: kernels.hands_rows, kernels.feeds_heads): what that kernel sends to every core meanwhile must not land
    on it."""
    written: dict[str, int] = {}
    spans: dict[str, list[tuple[int, int]]] = {t: [] for t in names}
    for i, k in enumerate(ks):
        if isinstance(k, Gemm):
            reads, writes = (k.a,), (k.out_q, k.out_f)
        elif isinstance(k, Attention):
            reads, writes = (k.q,), (k.out,)
        else:
            reads, writes = (k.inp, *(name for name, _ in k.addends)), (k.out_q, k.out_f)
        nxt = ks[i + 1] if i + 1 < len(ks) else None
        until = i + 1 if hands_rows(k, nxt) or feeds_heads(k, nxt) else i
        for t in reads:
            if t in names and t in written:
                spans[t].append((written[t], until))
        for t in writes:
            if t in names and t is not None:
                written[t] = i
    return spans


def _pack(ks: list[Kernel], sizes: dict[str, int]) -> tuple[dict[str, int], int]:
    """Offsets for the gathered tensors in one region, two sharing bytes only if they are never live in the same
    kernel (first fit, largest first), and the region's size."""
    spans = _live(ks, set(sizes))

    def overlap(a: str, b: str) -> bool:
        return any(lo <= hi2 and lo2 <= hi for lo, hi in spans[a] for lo2, hi2 in spans[b])

    offsets: dict[str, int] = {}
    for t in sorted(sizes, key=lambda t: (-sizes[t], t)):
        taken = sorted((offsets[o], offsets[o] + sizes[o]) for o in offsets if overlap(t, o))
        at = 0
        for lo, hi in taken:
            if at + sizes[t] <= lo:
                break
            at = max(at, hi)
        offsets[t] = at
    return offsets, max((offsets[t] + sizes[t] for t in sizes), default=0)


def keep_on_chip(g: nx.DiGraph, ctx: MapperContext) -> nx.DiGraph:
    from mapper.tiling import tile_to_sram  # the trial tiling of each plan

    facts = graph_facts(g)
    ks = kernels(g)
    if facts.workload is None:
        return g
    for ln_ops, tile_ops, att_ops, stream in _plans(ks, ctx.attention_inputs_on_chip):
        if not (ln_ops or tile_ops or att_ops or stream):
            return g
        found = _residency(ks, ln_ops, tile_ops, att_ops, stream, ctx)
        if found is None:
            continue
        placed, spad_bytes, acc_bytes = found
        addr = {t.tensor: t.addr for t in placed if t.residency is Residency.GATHERED}
        new: dict[str, Kernel] = {k.name: dataclasses.replace(k, a_resident=addr[k.a]) for k in ks if isinstance(k, Gemm) and k.a in addr}
        new.update({k.name: dataclasses.replace(k, q_resident=addr[k.q]) for k in ks if isinstance(k, Attention) and k.q in addr})
        trial = with_facts(replace_kernels(g, new), resident_spad_bytes=spad_bytes, resident_acc_bytes=acc_bytes, on_chip=placed)
        try:
            tile_to_sram(trial, dataclasses.replace(ctx, measure=None))
        except MapperError:
            continue
        return trial
    return g
