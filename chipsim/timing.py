"""Closed-form cycle counts for one instruction on one unit: tensor core, DMA, NoC, vector, SRAM ports.

Every function here is pure (integers in, integers out) and cached, so the executor can call it once per
distinct instruction shape. The derivations are written out in the `## Timing` section of `isa/SPEC.md`.

Conventions (the same in every function):
- a cycle count is the number of clock cycles from the cycle in which the unit starts the instruction to the
  cycle in which its last result is written, both included (so a one-cycle operation costs 1);
- the systolic array is `rows x cols` PEs; operands enter at the left/top edge and results leave at the bottom
  edge, so fill and drain cross every row; with `partial_folds` a fold smaller than the array loads only its
  rows and is done with its last column, without them (and in SCALE-Sim) every fold is the whole array;
  `matmul_timing` is tied exactly to the cycle-level model in `chipsim/array_reference.py` by
  tests/test_array_reference.py;
- shared resources (the DRAM channel, NoC links) are not modelled here; the executor adds their contention.

Dataflows (`chipsim.config.Dataflow`): ws keeps the weights B (k x n) in the PEs and streams A; os keeps the
outputs C (m x n) and streams A and B; is keeps the inputs A (as k x m) and streams B.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from functools import cache

from chipsim.config import Dataflow


class ScaleSimConvention(enum.Enum):
    """Which published SCALE-Sim count `scalesim_matmul_cycles` reproduces (see `## Timing` in isa/SPEC.md)."""

    PAPER = "paper"  # Samajdar et al., ISPASS 2020, Table 1: every dataflow 2R + C + T - 2 per fold
    CODE = "code"  # scalesim/compute/systolic_compute_*.py: os folds lack the final R-cycle drain (a count of
    # cycles; SCALE-Sim 3.0.0's report prints one less, see `scalesim_matmul_cycles`)


@dataclass(frozen=True, slots=True)
class MatmulTiming:
    """One MATMUL on one tensor core, split into its terms; `total_cycles` is their sum.

    With pipelined folds a MATMUL's end is its stream front (the cycle after its last operand row entered the
    array) plus `tail_cycles`, the time its last used output then needs to leave. A MATMUL from an empty array
    counts that tail in its total (as skew and os drain), so its total is front + tail; one continuing a run
    (`after_matmul_stream`) counts only how far it moves the front, and ends at max(the MATMUL before's end, its
    front + tail): `continued_run`."""

    folds: int  # array-sized pieces the MATMUL is cut into
    weight_load_cycles: int  # exposed stationary-operand loads (ws/is), summed over folds
    stream_cycles: int  # cycles in which operand rows enter the array, summed over folds
    skew_cycles: int  # exposed wavefront fill + drain (rows + cols - 2 per fold, or once per run of folds)
    output_drain_cycles: int  # os only: exposed shifts of the stationary rows x cols outputs out (rows each)
    tail_cycles: int = 0  # pipelined folds: from the stream front to the last used output leaving (0 per fold)

    @property
    def total_cycles(self) -> int:
        return self.weight_load_cycles + self.stream_cycles + self.skew_cycles + self.output_drain_cycles


@dataclass(frozen=True, slots=True)
class MatmulTraffic:
    """Bytes one MATMUL moves through the SRAM ports (what the dataflow re-reads, not just operand sizes)."""

    spad_read_bytes: int  # A and B operands, re-read once per fold that needs them
    acc_read_bytes: int  # partial sums read back to accumulate (k folds, or accumulate=1)
    acc_write_bytes: int  # partial or final sums written


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@cache
def matmul_timing(
    dataflow: Dataflow,
    array_rows: int,
    array_cols: int,
    m: int,
    k: int,
    n: int,
    *,
    weight_double_buffer: bool,
    preloaded: bool = False,
    fold_overlap: bool = True,
    after_matmul_stream: int = 0,
    partial_folds: bool = False,
) -> MatmulTiming:
    """Cycles of C[m,n] (+)= A[m,k] @ B[k,n] on an `array_rows x array_cols` systolic array, with folds.

    Folding: ws cuts B into F = ceil(k/R) * ceil(n/C) folds and streams the T = m rows of A through each; is is
    the mirror with A^T stationary (F = ceil(k/R) * ceil(m/C), T = n); os cuts C into F = ceil(m/R) * ceil(n/C)
    folds, each streaming T = k operand pairs and then shifting its R x C outputs out (R cycles).

    `fold_overlap=False` is SCALE-Sim's convention: every fold pays the wavefront fill and drain R + C - 2;
    ws/is load R rows of weights per fold (R cycles), of which `weight_double_buffer` hides all but the first.

    `fold_overlap=True` (pipelined folds, as `chipsim.array_reference` runs them): fold g+1 streams right behind
    fold g, so the fill and drain R + C - 2 (and os's last output shift R) are paid once per run of folds.
    ws/is with double-buffered weights: the next fold's load (R cycles) runs under the current stream and shows
    only when the stream is shorter, R - T per later fold; without the shadow registers every load shows (R).
    os: a fold's outputs shift out (R cycles) under the next fold's stream, showing R - T when T < R.

    `partial_folds` (pipelined folds only): a fold of B (ws) or A^T (is) that covers kf < R rows of the array (the
    last of a reduction that R does not divide) loads just those kf rows (kf cycles), and its streamed operand
    carries no data in the rows below, whose PEs pass the partial sums down unchanged (a valid bit per row);
    a fold that covers w < C columns is done when column w - 1's last output leaves, so the drain of a MATMUL
    whose last column block is narrow is R + w - 2, not R + C - 2 (unless a wider fold before it leaves later).
    Without it every fold is the zero-padded R x C tile. Each load term above then counts kf for R.

    `preloaded` (ws: an earlier LDW put the first fold in the array) removes the first load.
    `after_matmul_stream` > 0: this MATMUL continues a run of folds begun by the MATMUL just before it on the
    same array, whose folds streamed that many rows each; the cycles are those it adds to the run (no fill or
    drain of its own; ws/is with a shadow expose R - that stream length of their first load, os R - T).
    Derivations: `## Timing` in isa/SPEC.md.
    """
    r, c = array_rows, array_cols
    if min(r, c, m, k, n) < 1:
        raise ValueError(f"matmul dimensions must be >= 1, got array {r}x{c} and m={m}, k={k}, n={n}")
    skew = r + c - 2
    chained = fold_overlap and after_matmul_stream > 0
    if dataflow is Dataflow.OS:
        folds, t = ceil_div(m, r) * ceil_div(n, c), k
        if not fold_overlap:
            return MatmulTiming(folds, 0, folds * t, folds * skew, folds * r)
        hidden_shift = max(0, r - t)
        if chained:
            return MatmulTiming(folds, 0, folds * t, 0, folds * hidden_shift, skew + r)
        return MatmulTiming(folds, 0, folds * t, skew, r + (folds - 1) * hidden_shift, skew + r)
    out_cols = n if dataflow is Dataflow.WS else m  # the stationary tile's columns: B's (ws), A^T's (is)
    folds, t = ceil_div(k, r) * ceil_div(out_cols, c), m if dataflow is Dataflow.WS else n
    if not fold_overlap:
        first_load = 0 if preloaded else r
        loads = first_load + (folds - 1) * r if not weight_double_buffer else first_load
        return MatmulTiming(folds, loads, folds * t, folds * skew, 0)
    # rows each fold loads, in fold order (per column block: full folds, then the remainder)
    full, rem = divmod(k, r)
    blocks = folds // ceil_div(k, r)
    h0 = r if full else rem  # the first fold's rows
    if not partial_folds:
        full, rem, h0 = ceil_div(k, r), 0, r

    def later(exposed) -> int:  # sum of `exposed(rows)` over every fold but the first
        return blocks * (full * exposed(r) + (exposed(rem) if rem else 0)) - exposed(h0)

    first_load = 0 if preloaded else h0
    if not weight_double_buffer:
        loads = (h0 if chained else first_load) + later(lambda h: h)
    elif chained:
        loads = max(0, h0 - after_matmul_stream) + later(lambda h: max(0, h - t))
    else:
        loads = first_load + later(lambda h: max(0, h - t))
    tail = r + _tail_width(c, out_cols, t, k, r, weight_double_buffer) - 2 if partial_folds else skew
    return MatmulTiming(folds, loads, folds * t, 0 if chained else tail, 0, tail)


def _tail_width(c: int, out_cols: int, t: int, k: int, r: int, shadow: bool) -> int:
    """Partial folds: a MATMUL's tail is R - 2 plus this many columns. Its last column block is w wide and its
    folds move the stream D cycles past the last fold before the block (each by max(T, H) with the shadow
    registers, T + H without, H its rows); that wider fold's last output leaves C - D columns' worth after the
    block's last fold's would at width C, so the width is max(w, C - D) (w alone for a single block)."""
    blocks = ceil_div(out_cols, c)
    w = out_cols - (blocks - 1) * c
    if blocks == 1:
        return w
    full, rem = divmod(k, r)
    d = full * (max(t, r) if shadow else t + r) + ((max(t, rem) if shadow else t + rem) if rem else 0)
    return max(w, c - d)


def matmul_stream_cycles(dataflow: Dataflow, m: int, k: int, n: int) -> int:
    """Rows one fold of this MATMUL streams through the array (T: ws m, is n, os k); what the next MATMUL on
    the same array passes as `after_matmul_stream` to `matmul_timing`."""
    return m if dataflow is Dataflow.WS else n if dataflow is Dataflow.IS else k


def continued_run(prev_end: int, prev_front: int, ready: int, fresh_front: int, continued_front: int,
                  tail: int) -> tuple[int, int]:
    """(end, stream front) of a MATMUL issued behind another one on the same array whose operands are there at
    cycle `ready` (far in the past when nothing holds it back): its first fold loads (ws, is) or streams (os) as
    soon as both the run of folds and its operands allow, so its front is max(prev_front + continued_front,
    ready + fresh_front); it ends `tail` after that, but not before the MATMUL before it (the array retires
    MATMULs in order). fresh_front is its `matmul_timing` total less its tail, continued_front its total with
    `after_matmul_stream`. Exact against chipsim/array_reference.py for every dataflow, shadow or not, partial
    folds or not."""
    front = max(prev_front + continued_front, ready + fresh_front)
    return max(prev_end, front + tail), front


@cache
def matmul_traffic(
    dataflow: Dataflow,
    array_rows: int,
    array_cols: int,
    m: int,
    k: int,
    n: int,
    *,
    in_itemsize: int,
    acc_itemsize: int,
    accumulate: bool,
    preloaded: bool = False,
) -> MatmulTraffic:
    """SRAM bytes of one MATMUL under its dataflow (the stationary operand is read once, the streamed one once
    per fold of the other dimension; outputs are written once per k fold and read back between k folds)."""
    r, c = array_rows, array_cols
    # preloaded: the array holds B's first fold (an LDW put it there), the rest is read
    a_bytes, b_bytes, c_elems = m * k * in_itemsize, (k - min(k, r) if preloaded else k) * n * in_itemsize, m * n
    if dataflow is Dataflow.OS:
        spad = a_bytes * ceil_div(n, c) + b_bytes * ceil_div(m, r)
        k_folds = 1
    elif dataflow is Dataflow.WS:
        spad = a_bytes * ceil_div(n, c) + b_bytes
        k_folds = ceil_div(k, r)
    else:
        spad = a_bytes + b_bytes * ceil_div(m, c)
        k_folds = ceil_div(k, r)
    reads = c_elems * (k_folds - 1 + int(accumulate)) * acc_itemsize
    return MatmulTraffic(spad, reads, c_elems * k_folds * acc_itemsize)


@cache
def scalesim_matmul_cycles(
    dataflow: Dataflow, array_rows: int, array_cols: int, m: int, k: int, n: int, convention: ScaleSimConvention
) -> int:
    """The number of cycles SCALE-Sim's per-fold formulas give for the same GEMM (no double buffering, every
    fold pays its full count), counted as this module counts cycles (first and last cycle both included).

    SCALE-Sim names the streamed dimension T: ws T = m (ofmap pixels), os T = k (window), is T = n (filters).
    Paper: 2R + C + T - 2 per fold for every dataflow. Code: ws and is the same; os R + C + T - 2 per fold.
    Equal to `matmul_timing(..., weight_double_buffer=False, fold_overlap=False).total_cycles` under PAPER.

    SCALE-Sim 3.0.0's COMPUTE_REPORT "Total Cycles" is the 0-based index of its last cycle, one less than the
    count returned here under CODE (checked live against SCALE-Sim in tests/test_validation_scalesim.py;
    docs/VALIDATION.md, convention 1).
    """
    r, c = array_rows, array_cols
    if dataflow is Dataflow.OS:
        folds, t = ceil_div(m, r) * ceil_div(n, c), k
        drain = r if convention is ScaleSimConvention.PAPER else 0
        return folds * (drain + r + c + t - 2)
    if dataflow is Dataflow.WS:
        folds, t = ceil_div(k, r) * ceil_div(n, c), m
    else:
        folds, t = ceil_div(k, r) * ceil_div(m, c), n
    return folds * (2 * r + c + t - 2)


def weight_load_cycles(array_rows: int, k: int, *, partial: bool) -> int:
    """LDW of a k x n tile: weights enter from the top edge one array row per cycle, so R cycles whatever k is,
    or k cycles with partial loads (`matmul_timing`'s `partial_folds`)."""
    return min(k, array_rows) if partial else array_rows


def sram_port_cycles(num_bytes: int, bytes_per_cycle: int) -> int:
    """Lower bound on the time to move `num_bytes` through one SRAM's port(s) (`bytes_per_cycle` is the
    config's aggregate over its banks; bank conflicts are not modelled)."""
    return ceil_div(num_bytes, bytes_per_cycle) if num_bytes else 0


def vector_cycles(elements: int, lanes: int, cycles_per_op: int, latency_cycles: int = 1) -> int:
    """A vector op over `elements` values on a pipelined unit: ceil(elements / lanes) lane-groups issue one per
    `cycles_per_op` cycles (1: one op per lane per cycle), and the last one's result is ready `latency_cycles`
    after its issue: groups * cycles_per_op + latency_cycles - 1. With latency 1 this is the issue-interval-only
    convention (each group `cycles_per_op` cycles, fill folded in)."""
    return ceil_div(elements, lanes) * cycles_per_op + latency_cycles - 1


def dram_bytes_per_cycle(bandwidth_gb_per_s: float, clock_mhz: float) -> float:
    """DRAM bandwidth expressed in bytes per core-clock cycle (1 GB/s = 1e9 B/s; 1 MHz = 1e6 cycles/s)."""
    return bandwidth_gb_per_s * 1e3 / clock_mhz


def ns_to_cycles(latency_ns: float, clock_mhz: float) -> int:
    """A latency in ns rounded up to whole cycles of the core clock."""
    return math.ceil(latency_ns * clock_mhz / 1e3 - 1e-9)


@cache
def dma_transfer_cycles(num_bytes: int, dma_bytes_per_cycle: int, dram_bytes_per_cycle_: float) -> int:
    """Uncontended transfer time of one DMA (latency excluded): bytes / min(DMA rate, DRAM rate).

    Strided DRAM rows cost nothing beyond their bytes (no burst or row-buffer model): the DRAM side of a 2D
    transfer is a sequence of row-sized bursts that the controller pipelines back to back.
    """
    rate = min(float(dma_bytes_per_cycle), dram_bytes_per_cycle_)
    return math.ceil(num_bytes / rate - 1e-9) if num_bytes else 0


def dram_channel_cycles(num_bytes: int, dram_bytes_per_cycle_: float) -> float:
    """How long a transfer occupies the (single, chip-wide) DRAM channel; fractional so that many small
    transfers from several cores share the channel without rounding each one up."""
    return num_bytes / dram_bytes_per_cycle_


def core_xy(core: int, mesh_cols: int) -> tuple[int, int]:
    """(x, y) of a core numbered row-major over the mesh (core = y * mesh_cols + x)."""
    return core % mesh_cols, core // mesh_cols


@cache
def xy_route(src_core: int, dst_core: int, mesh_cols: int) -> tuple[tuple[int, int], ...]:
    """The directed links (from_core, to_core) a packet takes under XY routing: first along x, then y."""
    x, y = core_xy(src_core, mesh_cols)
    dx, dy = core_xy(dst_core, mesh_cols)
    links: list[tuple[int, int]] = []
    while x != dx:
        nx = x + (1 if dx > x else -1)
        links.append((y * mesh_cols + x, y * mesh_cols + nx))
        x = nx
    while y != dy:
        ny = y + (1 if dy > y else -1)
        links.append((y * mesh_cols + x, ny * mesh_cols + x))
        y = ny
    return tuple(links)


def noc_hops(src_core: int, dst_core: int, mesh_cols: int) -> int:
    """Manhattan distance on the mesh (XY routing is minimal)."""
    x, y = core_xy(src_core, mesh_cols)
    dx, dy = core_xy(dst_core, mesh_cols)
    return abs(x - dx) + abs(y - dy)


def xy_multicast_tree(src_core: int, num_cores: int, mesh_cols: int) -> tuple[tuple[tuple[int, int], int], ...]:
    """The directed links of a multicast from `src_core` to every core, the union of the XY routes, each with its
    depth (the hops from the source to the link's start: the same on every route through it)."""
    depth: dict[tuple[int, int], int] = {}
    for dst in range(num_cores):
        for i, link in enumerate(xy_route(src_core, dst, mesh_cols)):
            depth[link] = i
    return tuple(sorted(depth.items(), key=lambda item: (item[1], item[0])))


def noc_serialization_cycles(num_bytes: int, link_bytes_per_cycle: int) -> int:
    """Cycles a transfer occupies each link it crosses (wormhole: the body follows the head flit)."""
    return ceil_div(num_bytes, link_bytes_per_cycle) if num_bytes else 0


@cache
def noc_transfer_cycles(num_bytes: int, hops: int, hop_cycles: int, link_bytes_per_cycle: int) -> int:
    """Uncontended NoC transfer: the head needs hops * hop_cycles, the body ceil(bytes / link rate) more."""
    return hops * hop_cycles + noc_serialization_cycles(num_bytes, link_bytes_per_cycle)
