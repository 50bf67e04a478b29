"""Place work on cores.

GEMMs are cut into output tiles (tm x tn); the tiles are ordered column block by column block and dealt to the
cores in contiguous runs, so each core owns whole column blocks (its weight tile stays in its scratchpad across
row tiles) and the projections and FFNs are split by output columns. A GEMM item is (m0, n0, k0, k1): its tile
and the reduction range it sums, all of K but under stream-K (Tiling.split_k, `split_k_work`), where the
(tile, chunk) pairs are dealt instead and a tile may be split between two neighbouring cores. Attention is split by (sequence, head):
each core runs whole heads, dealt in turn, with scores, softmax and context on chip; the fused Q|K|V GEMM's
column blocks are dealt in turn in head order, so the first tiles of every core hold the first heads' Q, K and
V (the attention, sharing its phase, starts on them: mapper.emit). Row kernels (LayerNorm, embeddings) are
split by rows: each core works the contiguous rows it owns (`owned_rows`, the same for every row kernel, so the
residual stream can stay with its rows), in items of (first row, rows). A fused Q|K|V GEMM's tiles stay within one of its parts. Each kernel gets `work`: one tuple of items per core.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from mapper.context import MapperContext
from mapper.kernels import Attention, Gemm, RowNorm, feeds_heads, kernels


def _deal(items: list[tuple[int, ...]], cores: int, group: int = 1) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """Contiguous runs of `items` (in whole groups of `group` items) to each core; run lengths differ by <= 1 group."""
    groups = _groups(items, group)
    base, extra = divmod(len(groups), cores)
    out, at = [], 0
    for c in range(cores):
        n = base + (c < extra)
        out.append(tuple(it for grp in groups[at : at + n] for it in grp))
        at += n
    return tuple(out)


def _groups(items: list[tuple[int, ...]], group: int) -> list[list[tuple[int, ...]]]:
    return [items[i : i + group] for i in range(0, len(items), group)]


def _deal_in_turn(items: list[tuple[int, ...]], cores: int, group: int = 1) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """Whole groups of `items` dealt to the cores in turn (group g to core g % cores), so every core's r-th group
    is among the first groups; as many per core as `_deal` gives."""
    groups = _groups(items, group)
    return tuple(tuple(it for grp in groups[c::cores] for it in grp) for c in range(cores))


@dataclass(frozen=True, slots=True)
class HeadOwners:
    """Which core runs each (sequence, head) of an attention (its placed work), to send a block of its Q | K | V
    input (rows of the fused projection's output, within one head's columns of Q, K or V) only where it is read."""

    seq: int
    head_dim: int
    hidden: int
    cores: tuple[tuple[int, ...], ...]  # per sequence, per head: the core

    @staticmethod
    def of(k: Attention, work: tuple[tuple[tuple[int, ...], ...], ...]) -> HeadOwners:
        owner = [[0] * k.heads for _ in range(k.batch)]
        for core, items in enumerate(work):
            for bi, h, _ in items:
                owner[bi][h] = core
        return HeadOwners(k.seq, k.head_dim, k.hidden, tuple(tuple(row) for row in owner))

    def dests(self, lo: int, hi: int, col: int) -> tuple[int, ...]:
        """The cores reading rows lo .. hi - 1 of the head block holding column `col` (in core order)."""
        h = col % self.hidden // self.head_dim
        return tuple(sorted({self.cores[bi][h] for bi in range(lo // self.seq, (hi - 1) // self.seq + 1)}))


def owned_rows(rows: int, cores: int) -> tuple[tuple[int, int], ...]:
    """Per core, the (first row, rows) it owns of a row kernel's `rows`: ceil(rows / cores) each, the last fewer
    (and none for cores past the end)."""
    share = -(-rows // cores)
    return tuple((min(c * share, rows), max(0, min(share, rows - c * share))) for c in range(cores))


def row_items(rows: int, tr: int, cores: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per core, its owned rows cut in items of at most `tr` rows: (first row, rows)."""
    return tuple(tuple((r0, min(tr, first + n - r0)) for r0 in range(first, first + n, tr)) for first, n in owned_rows(rows, cores))


def gemm_tiles(m: int, part_cols: int, parts: int, tm: int, tn: int) -> list[tuple[int, int]]:
    """A GEMM's output tiles (m0, n0) in placement order: column block by column block, row tiles inner; tiles stay
    within one of `parts` column parts (Q, K or V), the last of each part narrower."""
    return [(m0, p0 + c0) for p0 in range(0, part_cols * parts, part_cols) for c0 in range(0, part_cols, tn) for m0 in range(0, m, tm)]


def split_k_work(tiles: list[tuple[int, int]], k: int, tk: int, cores: int) -> tuple[tuple[tuple[int, ...], ...], ...] | None:
    """Stream-K: every (tile, reduction chunk of tk) pair in tile order, dealt to the cores in contiguous runs whose
    lengths differ by at most one chunk, so the array work is even although the tiles do not divide by the cores.
    Per core, items (m0, n0, k0, k1): a tile's chunks on that core. A tile split between two cores has its first
    chunks at the end of one core's run (that core finishes it) and the rest at the start of the next core's (which
    sends it its partial sums). None where a tile would be split over more than two cores."""
    chunks = -(-k // tk)
    base, extra = divmod(len(tiles) * chunks, cores)
    out, at = [], 0
    for c in range(cores):
        end = at + base + (c < extra)
        items = []
        for t in range(at // chunks, -(-end // chunks)):
            j0, j1 = max(at, t * chunks) - t * chunks, min(end, (t + 1) * chunks) - t * chunks
            if 0 < j0 and j1 < chunks:
                return None
            items.append((*tiles[t], j0 * tk, min(k, j1 * tk)))
        out.append(tuple(items))
        at = end
    return tuple(out)


def place_on_cores(g: nx.DiGraph, ctx: MapperContext) -> nx.DiGraph:
    out = g.copy()
    ks = kernels(g)
    for i, k in enumerate(ks):
        if isinstance(k, Gemm):
            assert k.tiling is not None
            t = k.tiling
            w = k.part_cols  # tiles stay within one part (Q, K or V): the last of each part may be narrower
            tiles = gemm_tiles(k.m, w, k.parts, t.tm, t.tn)
            split = split_k_work(tiles, k.k, t.tk, ctx.cores) if t.split_k else None
            assert split is not None or not t.split_k, f"{k.name}: the search picked a stream-K split it cannot place"
            items = [(m0, n0, 0, k.k) for m0, n0 in tiles]
            if split is not None:
                work = split
            elif feeds_heads(k, ks[i + 1] if i + 1 < len(ks) else None):
                # the fused projection: its column blocks in head order (Q, K and V of the first heads first) and dealt
                # in turn, so every core's first tiles complete the first heads, which the attention starts on
                items.sort(key=lambda it: (it[1] % w, it[1] // w))  # stable: a column block's row tiles stay together
                work = _deal_in_turn(items, ctx.cores, group=-(-k.m // t.tm))
            else:
                work = _deal(items, ctx.cores)
        elif isinstance(k, Attention):  # heads dealt in turn: every core's first heads are the first to be in
            items = [(b, h, q0) for b in range(k.batch) for h in range(k.heads) for q0 in range(0, k.seq, k.tq)]
            work = _deal_in_turn(items, ctx.cores, group=-(-k.seq // k.tq))
        elif isinstance(k, RowNorm):
            work = row_items(k.rows, k.tr, ctx.cores)
        else:  # pragma: no cover
            raise TypeError(k)
        out.nodes[k.name]["work"] = work
    return out
