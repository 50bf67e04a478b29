"""What a workload must do, whatever the mapping: its MACs, its compulsory DRAM bytes and its vector work; and the
chip's bound for it (chipsim.bound), the yardstick of `mapping_efficiency`."""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from chipsim.bound import ChipBound, chip_bound
from chipsim.config import ChipConfig, VectorOp
from mapper.fuse import kernel_of
from mapper.layout import DramLayout, TensorRole
from workloads.graph import ops, total_macs
from workloads.ops import OpKind

# The fewest vector element-ops per element of each non-matmul op, as the references compute it:
# softmax: row max, subtract it, exp, row sum, scale by the reciprocal (one per row, not per element);
# LayerNorm: row mean, center, square, row variance, normalize, gamma, beta (rsqrt once per row);
# GELU: one; residual and embedding sums: one add.
LANE_OPS_PER_ELEMENT: dict[OpKind, tuple[VectorOp, ...]] = {
    OpKind.SOFTMAX: (VectorOp.MAX, VectorOp.ADD, VectorOp.EXP, VectorOp.REDUCE, VectorOp.MUL),
    OpKind.LAYERNORM: (VectorOp.REDUCE, VectorOp.ADD, VectorOp.MUL, VectorOp.REDUCE, VectorOp.MUL, VectorOp.MUL, VectorOp.ADD),
    OpKind.GELU: (VectorOp.GELU,),
    OpKind.ADD: (VectorOp.ADD,),  # per addend after the first
}


def vector_lane_ops(graph: nx.DiGraph) -> dict[VectorOp, int]:
    """Element-ops by kind that the workload's non-matmul operators need at the least."""
    out: dict[VectorOp, int] = {}
    for per_label in vector_lane_ops_by_label(graph).values():
        for v, n in per_label.items():
            out[v] = out.get(v, 0) + n
    return out


def vector_lane_ops_by_label(graph: nx.DiGraph) -> dict[str, dict[VectorOp, int]]:
    """The same, per kernel label (`l3.attn`) of the operators' kernels."""
    out: dict[str, dict[VectorOp, int]] = {}
    for op in ops(graph):
        per_element = LANE_OPS_PER_ELEMENT.get(op.kind)
        if not per_element:
            continue
        times = len(op.inputs) - 1 if op.kind is OpKind.ADD else 1  # a sum of n tensors is n - 1 adds
        mine = out.setdefault(kernel_of(op.name), {})
        for v in per_element:
            mine[v] = mine.get(v, 0) + times * op.output.numel
    return out


def workload_bound(chip: ChipConfig, graph: nx.DiGraph, layout: DramLayout) -> tuple[ChipBound, int]:
    """The chip's bound for this workload, and the compulsory DRAM bytes it assumes."""
    compulsory = layout.compulsory_read_bytes + layout.compulsory_write_bytes
    return chip_bound(chip, macs=total_macs(graph), dram_bytes=compulsory, vector_lane_ops=vector_lane_ops(graph)), compulsory


def layer_bounds(chip: ChipConfig, graph: nx.DiGraph, layout: DramLayout,
                 ahead: tuple[tuple[str, str, int], ...] = (), phases: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, ChipBound]:
    """The chip's bound for each kernel label's own work (`l3.ffn1`): its MACs, its share of the compulsory DRAM
    bytes (its parameters; the inputs and outputs where they are read or written) and its vector work. Parameter
    bytes the schedule loads ahead, in an earlier kernel (`ahead`: loading kernel, owning kernel, bytes), count in
    the kernel that moves them. `phases` (phase label -> its kernels' labels) adds the bound of every phase of
    several kernels (`l3.ffn2+ln2`: their work together)."""
    macs: dict[str, int] = {}
    for op in ops(graph):
        macs[kernel_of(op.name)] = macs.get(kernel_of(op.name), 0) + op.macs
    dram: dict[str, int] = {}
    for t in layout.tensors.values():
        if t.role is not TensorRole.ACTIVATION:
            dram[kernel_of(t.name)] = dram.get(kernel_of(t.name), 0) + t.nbytes
    for src, dst, nbytes in ahead:
        dram[src] = dram.get(src, 0) + nbytes
        dram[dst] = dram.get(dst, 0) - nbytes
    lanes = vector_lane_ops_by_label(graph)
    groups = {label: (label,) for label in macs.keys() | dram.keys()}
    groups.update({label: ks for label, ks in (phases or {}).items() if len(ks) > 1})

    def summed(ks: tuple[str, ...]) -> dict[VectorOp, int]:
        out: dict[VectorOp, int] = {}
        for k in ks:
            for v, n in lanes.get(k, {}).items():
                out[v] = out.get(v, 0) + n
        return out

    return {label: chip_bound(chip, macs=sum(macs.get(k, 0) for k in ks), dram_bytes=sum(dram.get(k, 0) for k in ks),
                              vector_lane_ops=summed(ks)) for label, ks in groups.items()}
