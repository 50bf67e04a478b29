"""Share LayerNorm outputs over the NoC instead of re-reading them from DRAM on every core.

After a LayerNorm (or the embeddings) each core holds full rows of the next matmul's operand for its row
blocks, while the next GEMMs (Q/K/V, FFN1, the classifier) are split by output columns, so every core needs
every row. When that operand fits in a quarter of the scratchpad, each core keeps a copy of the whole operand
in a region reserved at the top of its scratchpad: the row-block owner writes its rows there and sends them
to every other core (NOC_SEND / NOC_RECV, XY routing, contended links), and the GEMMs read A straight from that
region (when their tiling keeps the whole reduction dimension in one chunk) instead of loading A from DRAM.
The operand is still stored to DRAM, so a GEMM whose tiling needs K chunks falls back to DRAM loads; a chip
whose GEMMs would no longer fit beside the reserved region shares nothing.
"""

from __future__ import annotations

import dataclasses

import networkx as nx

from mapper.context import ALIGN_BYTES, MapperContext
from mapper.errors import MapperError
from mapper.kernels import Gemm, Kernel, RowNorm, kernels, replace_kernels, with_facts
from mapper.tiling import search_gemm

SHARE_FRACTION = 4  # the gathered operand may take at most 1/4 of the scratchpad


def share_over_noc(g: nx.DiGraph, ctx: MapperContext) -> nx.DiGraph:
    ks = kernels(g)
    norms = [k for k in ks if isinstance(k, RowNorm)]
    if ctx.cores < 2 or not norms:
        return g
    need = max(k.rows * k.cols * ctx.q_itemsize for k in norms)
    spad = ctx.chip.core.scratchpad.size_bytes
    if need > spad // SHARE_FRACTION:
        return g
    reserved = -(-need // ALIGN_BYTES) * ALIGN_BYTES
    addr = (spad - reserved) // ALIGN_BYTES * ALIGN_BYTES
    new: dict[str, Kernel] = {}
    for k in ks:
        if isinstance(k, RowNorm):
            new[k.name] = dataclasses.replace(k, broadcast=addr)
        elif isinstance(k, Gemm) and any(isinstance(n, RowNorm) and n.out_q == k.a for n in norms):
            new[k.name] = dataclasses.replace(k, a_resident=addr)
    try:  # the reservation must leave every GEMM a tiling; if it does not, share nothing
        for k in ks:
            if isinstance(k, Gemm):
                search_gemm(new.get(k.name, k), dataclasses.replace(ctx, measure=None), spad - addr)  # type: ignore[arg-type]
    except MapperError:
        return g
    return with_facts(replace_kernels(g, new), resident_spad_bytes=spad - addr)
