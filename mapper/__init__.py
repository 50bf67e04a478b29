"""The compiler from a workload graph to one ISA program per core: pure passes listed in one place, then emit."""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from mapper.context import MapperContext
from mapper.emit import Lowered, emit
from mapper.errors import MapperError
from mapper.fuse import fuse_epilogues
from mapper.layout import allocate_dram
from mapper.noc import share_over_noc
from mapper.place import place_on_cores
from mapper.quantize import quantize
from mapper.tiling import tile_to_sram

Pass = Callable[[nx.DiGraph, MapperContext], nx.DiGraph]

# The pass order, in one place. fuse_epilogues turns the operator graph into kernels; each later pass refines them.
PASSES: tuple[Pass, ...] = (quantize, share_over_noc, tile_to_sram, place_on_cores, allocate_dram)


def check_graph(g: nx.DiGraph, after: str) -> None:
    """Invariants between passes: a DAG of kernels in phase order."""
    if not nx.is_directed_acyclic_graph(g):
        raise AssertionError(f"after {after}: the kernel graph has a cycle")
    phases = [g.nodes[n]["kernel"].phase for n in g.nodes]
    if phases != sorted(phases):
        raise AssertionError(f"after {after}: kernels are not in phase order")


def lower(workload: nx.DiGraph, ctx: MapperContext, *, verify: bool = False) -> Lowered:
    graph = fuse_epilogues(workload)
    if verify:
        check_graph(graph, "fuse_epilogues")
    for p in PASSES:
        graph = p(graph, ctx)
        if verify:
            check_graph(graph, p.__name__)
    return emit(graph, ctx)


__all__ = ["PASSES", "Lowered", "MapperContext", "MapperError", "lower"]
