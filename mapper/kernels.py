"""What the mapper schedules: kernels, the fused units of work it lowers to the ISA.

A kernel graph (networkx DiGraph, nodes in execution order, node attribute "kernel") replaces the workload's
operator graph after `fuse_epilogues`; later passes refine each kernel with `dataclasses.replace`.

- `Gemm`: out = epilogue(A @ W) (Q, K and V as one GEMM over their side-by-side weights), epilogue = dequantize + bias [+ GELU], then an int8/bf16 copy
  for the next matmul and/or the fp32 result.
- `Attention`: per (sequence, head): scores, scale, mask, softmax, probabilities @ V, quantized context.
- `RowNorm`: rows of fp32 summed with addends (the residual stream among them), LayerNorm, kept as fp32 (the
  next residual) and as the next matmul's operand.

Kernels in the same `phase` are independent; a barrier separates phases, and mapper.emit puts none between a
GEMM and the LayerNorm it hands its rows to (`hands_rows`), nor between the fused projection and the attention
reading its Q | K | V (`feeds_heads`). Results pass through DRAM, or stay on
chip where `KernelGraphFacts.on_chip` says so (mapper/on_chip.py).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from isa import Mem
from workloads.graph import WorkloadFacts

if TYPE_CHECKING:
    from mapper.layout import DramLayout, TensorShape


class Bcast(enum.Enum):
    NONE = "none"  # an addend of the same shape
    ROW = "row"  # one row broadcast down the rows (e.g. the token-type embedding)
    POS = "pos"  # rows indexed by position within the sequence (position embeddings)


@dataclass(frozen=True, slots=True)
class Tiling:
    """Tile sizes of a GEMM on one core: rows of A (tm), output columns (tn), reduction chunk (tk)."""

    tm: int
    tn: int
    tk: int
    cost_cycles: float  # the analytic model's estimate for the whole kernel on the chip
    # A-stationary: the core's rows of A loaded once at the start and read in place by every column block (needs
    # tk >= K); else each item loads its A tile
    a_once: bool = False
    # weight tiles in flight: 2 double-buffers; 3 lets the DMA load tile i+2 while tile i's MATMUL still drains,
    # so a weight stream as fast as the array never waits for a slot
    w_slots: int = 2
    energy_j: float = 0.0  # the analytic model's energy for the whole kernel (joules, leakage over cost_cycles); 0 under the latency objective, which does not price it
    # stream-K: the (output tile, reduction chunk) pairs dealt evenly over the cores, so a tile may be split
    # between two cores: the one with its later chunks sends its partial sums over the NoC to the one with its
    # first chunks, which adds its own to them and finishes the tile (mapper.place.split_k_work); needs tk < K
    split_k: bool = False


@dataclass(frozen=True, slots=True)
class Gemm:
    name: str
    layer: int
    phase: int
    m: int
    k: int
    n: int
    a: str  # DRAM tensor names
    w: str
    deq: str | None  # per-column dequantization scale (int8), None for bf16
    bias: str
    out_q: str | None  # quantized (int8 / bf16) copy of the output for the next matmul
    out_f: str | None  # fp32 output
    gelu: bool = False
    out_inv_scale: float = 1.0  # quantization multiplier of out_q (int8)
    raw: bool = False  # no dequantization or bias: the accumulator tile is stored as it is (out_f, chipsim gemm), or
    # only requantized to the operand type (out_q)
    parts: int = 1  # equal column parts no output tile straddles (Q | K | V of a fused projection)
    part_inv_scales: tuple[float, ...] = ()  # per part, the quantization multiplier of out_q (else out_inv_scale)
    a_resident: int | None = None  # scratchpad address where the whole A already sits (gathered over the NoC)
    tiling: Tiling | None = None

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n

    @property
    def part_cols(self) -> int:
        return self.n // self.parts

    def tile_cols(self, n0: int) -> int:
        """Output columns of the tile starting at column n0: tn, or fewer at the end of its part."""
        assert self.tiling is not None
        return min(self.tiling.tn, (n0 // self.part_cols + 1) * self.part_cols - n0)

    def inv_scale_at(self, n0: int) -> float:
        """The quantization multiplier of the output columns from n0 on (a tile lies within one part)."""
        return self.part_inv_scales[n0 // self.part_cols] if self.part_inv_scales else self.out_inv_scale


@dataclass(frozen=True, slots=True)
class Attention:
    name: str
    layer: int
    phase: int
    batch: int
    seq: int
    heads: int
    head_dim: int
    q: str  # the DRAM tensor holding Q, K and V side by side ([batch*seq, 3*hidden]: the fused projection's output)
    mask: str  # [batch, seq] fp32 additive bias
    out: str  # quantized context [batch*seq, heads*head_dim]
    score_scale: float = 1.0  # s_q * s_k / sqrt(d) (int8) or 1 / sqrt(d) (bf16)
    ctx_scale: float = 1.0  # s_v / 127 (int8)
    out_inv_scale: float = 1.0
    inv_scale_q: float = 1.0
    inv_scale_k: float = 1.0
    inv_scale_v: float = 1.0
    tq: int = 0  # query rows per work item (set by tiling)
    in_slots: int = 2  # slots of each input buffer: a Q tile, a head's K, V and mask (set by tiling)
    # scratchpad address where the whole Q | K | V already sits (gathered over the NoC, in column blocks of
    # head_dim: every head's Q, K and V a dense block read in place); None: loaded from DRAM per item
    q_resident: int | None = None

    @property
    def macs(self) -> int:
        return 2 * self.batch * self.heads * self.seq * self.seq * self.head_dim

    @property
    def hidden(self) -> int:
        return self.heads * self.head_dim


@dataclass(frozen=True, slots=True)
class RowNorm:
    name: str
    layer: int
    phase: int
    rows: int
    cols: int
    seq: int
    inp: str
    addends: tuple[tuple[str, Bcast], ...]
    gamma: str
    beta: str
    eps: float
    out_f: str
    out_q: str
    out_inv_scale: float = 1.0
    tr: int = 0  # rows per work item (set by tiling)
    in_acc: bool = False  # the fp32 rows and their vector work in the accumulator (set by tiling)

    @property
    def macs(self) -> int:
        return 0


Kernel = Gemm | Attention | RowNorm


def hands_rows(k: Kernel, nxt: Kernel | None) -> bool:
    """Whether GEMM `k`'s fp32 result is the input rows of the RowNorm right after it (an output projection or FFN2
    and its LayerNorm): where that result stays on chip, the two run as one phase, the LayerNorm starting on each
    row block as soon as it is in (mapper.emit), so the GEMM's A stays live through the LayerNorm too."""
    return isinstance(k, Gemm) and isinstance(nxt, RowNorm) and k.out_f is not None and k.out_q is None and nxt.inp == k.out_f


def feeds_heads(k: Kernel, nxt: Kernel | None) -> bool:
    """Whether GEMM `k`'s operand copy is the Q | K | V the attention right after it reads (the fused projection):
    where it is gathered on chip, the two run as one phase, each head's MATMULs starting once its Q, K and V
    tiles are in (mapper.emit), so the GEMM's A stays live through the attention too."""
    return isinstance(k, Gemm) and isinstance(nxt, Attention) and k.out_q is not None and k.out_f is None and nxt.q == k.out_q


def block_pieces(block: int, c0: int, width: int) -> list[tuple[int, int]]:
    """The columns [c0, c0 + width) cut where column blocks of `block` begin (0: one piece), as (first, end) pairs."""
    if block <= 0:
        return [(c0, c0 + width)]
    cuts = [c0, *range((c0 // block + 1) * block, c0 + width, block), c0 + width]
    return list(zip(cuts, cuts[1:]))


def block_offset(rows: int, cols: int, block: int, r: int, c: int) -> tuple[int, int]:
    """The element offset of (r, c) in a rows x cols matrix stored as column blocks of `block` columns (each block
    row-major, the last narrower; block 0 or >= cols: the matrix row-major), and the row stride there (elements)."""
    if block <= 0 or block >= cols:
        return r * cols + c, cols
    j = c // block
    width = min(block, cols - j * block)
    return j * rows * block + r * width + c - j * block, width


class Residency(enum.Enum):
    """How an activation stays on chip instead of going through DRAM."""

    GATHERED = "gathered"  # every core holds the whole [rows, cols] tensor (producers send each tile to every core)
    OWNED_ROWS = "owned rows"  # each core holds the rows it owns (mapper.place.owned_rows), full width


@dataclass(frozen=True, slots=True)
class OnChip:
    """An activation kept on chip: where it lives on every core, row-major at `addr` of `mem`."""

    tensor: str
    residency: Residency
    mem: Mem
    addr: int
    cols: int  # row width in elements
    # 0: row-major; else stored as column blocks of this many columns (the last narrower), each block row-major,
    # so that the consuming GEMM reads a reduction chunk of A in place (its tk is the block: block_offset)
    block_cols: int = 0


@dataclass(frozen=True, slots=True)
class KernelGraphFacts:
    """What the passes know about the whole kernel graph (its one typed fact; each pass returns a copy).

    workload: the BERT model and input shape the kernels come from (None for a lone GEMM);
    tensors: the DRAM tensors to lay out when they are not the BERT ones (a lone GEMM's A, B and C);
    resident_spad_bytes / resident_acc_bytes: the top of every core's scratchpad / accumulator reserved for the
    activations kept on chip;
    on_chip: those activations (mapper.on_chip.keep_on_chip); every other tensor goes through DRAM;
    dram: the DRAM layout, once allocate_dram has run.
    """

    workload: WorkloadFacts | None = None
    tensors: tuple[TensorShape, ...] | None = None
    resident_spad_bytes: int = 0
    resident_acc_bytes: int = 0
    on_chip: tuple[OnChip, ...] = ()
    dram: DramLayout | None = None

    def on_chip_of(self, tensor: str | None) -> OnChip | None:
        return next((t for t in self.on_chip if t.tensor == tensor), None)


FACTS_KEY = "kernel_facts"


def graph_facts(g: nx.DiGraph) -> KernelGraphFacts:
    facts = g.graph.get(FACTS_KEY)
    if not isinstance(facts, KernelGraphFacts):
        raise TypeError(f"kernel graph carries no KernelGraphFacts (got {type(facts).__name__}); build it with fuse_epilogues or lower_gemm")
    return facts


def with_facts(g: nx.DiGraph, **changes: object) -> nx.DiGraph:
    """A copy of `g` whose facts have `changes` applied."""
    out = g.copy()
    out.graph[FACTS_KEY] = dataclasses.replace(graph_facts(g), **changes)  # type: ignore[arg-type]
    return out


def kernel_graph(kernels_in_order: list[Kernel], facts: KernelGraphFacts) -> nx.DiGraph:
    """A chain of kernels in execution order carrying `facts`."""
    g = nx.DiGraph(**{FACTS_KEY: facts})
    for k in kernels_in_order:
        g.add_node(k.name, kernel=k)
    for prev, nxt in zip(kernels_in_order, kernels_in_order[1:]):
        g.add_edge(prev.name, nxt.name)
    return g


def kernels(g: nx.DiGraph) -> list[Kernel]:
    return [g.nodes[n]["kernel"] for n in g.nodes]


def replace_kernels(g: nx.DiGraph, new: dict[str, Kernel]) -> nx.DiGraph:
    """A copy of `g` with the named kernels replaced (node order and edges kept)."""
    out = g.copy()
    for name, k in new.items():
        out.nodes[name]["kernel"] = k
    return out
