"""Place work on cores.

GEMMs are cut into output tiles (tm x tn); the tiles are ordered column block by column block and dealt to the
cores in contiguous runs, so each core owns whole column blocks (its weight tile stays in its scratchpad across
row tiles) and the projections and FFNs are split by output columns. Attention is split by (sequence, head):
each core runs whole heads, with scores, softmax and context on chip. Row kernels (LayerNorm, embeddings) are
split by rows: each core works the contiguous rows it owns (`owned_rows`, the same for every row kernel, so the
residual stream can stay with its rows), in items of (first row, rows). A fused Q|K|V GEMM's tiles stay within one of its parts. Each kernel gets `work`: one tuple of items per core.
"""

from __future__ import annotations

import networkx as nx

from mapper.context import MapperContext
from mapper.kernels import Attention, Gemm, RowNorm, kernels


def _deal(items: list[tuple[int, ...]], cores: int, group: int = 1) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """Contiguous runs of `items` (in whole groups of `group` items) to each core; run lengths differ by <= 1 group."""
    groups = [items[i : i + group] for i in range(0, len(items), group)]
    base, extra = divmod(len(groups), cores)
    out, at = [], 0
    for c in range(cores):
        n = base + (c < extra)
        out.append(tuple(it for grp in groups[at : at + n] for it in grp))
        at += n
    return tuple(out)


def owned_rows(rows: int, cores: int) -> tuple[tuple[int, int], ...]:
    """Per core, the (first row, rows) it owns of a row kernel's `rows`: ceil(rows / cores) each, the last fewer
    (and none for cores past the end)."""
    share = -(-rows // cores)
    return tuple((min(c * share, rows), max(0, min(share, rows - c * share))) for c in range(cores))


def row_items(rows: int, tr: int, cores: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per core, its owned rows cut in items of at most `tr` rows: (first row, rows)."""
    return tuple(tuple((r0, min(tr, first + n - r0)) for r0 in range(first, first + n, tr)) for first, n in owned_rows(rows, cores))


def place_on_cores(g: nx.DiGraph, ctx: MapperContext) -> nx.DiGraph:
    out = g.copy()
    for k in kernels(g):
        if isinstance(k, Gemm):
            assert k.tiling is not None
            t = k.tiling
            w = k.part_cols  # tiles stay within one part (Q, K or V): the last of each part may be narrower
            tiles = [(m0, p0 + c0) for p0 in range(0, k.n, w) for c0 in range(0, w, t.tn) for m0 in range(0, k.m, t.tm)]
            work = _deal(tiles, ctx.cores)
        elif isinstance(k, Attention):
            items = [(b, h, q0) for b in range(k.batch) for h in range(k.heads) for q0 in range(0, k.seq, k.tq)]
            work = _deal(items, ctx.cores, group=-(-k.seq // k.tq))
        elif isinstance(k, RowNorm):
            work = row_items(k.rows, k.tr, ctx.cores)
        else:  # pragma: no cover
            raise TypeError(k)
        out.nodes[k.name]["work"] = work
    return out
