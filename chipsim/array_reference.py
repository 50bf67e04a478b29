"""A cycle-level reference model of the systolic array: PE registers advancing one clock at a time.

It is the ground truth for the closed forms in `chipsim/timing.py` (tests/test_array_reference.py ties them
exactly) and computes real values: int8 operands with int32 accumulation, bf16 operands with fp32
accumulation. It is slow next to the closed forms (benchmarks/bench_array_reference.py prints both speeds),
so the executor never calls it.

The machine modelled (derived in `## Timing` of isa/SPEC.md; registers update on the clock edge):

ws / is (one kernel; `is` is ws on the transposed problem, C^T = B^T A^T with A^T stationary):
- PE(r, c) holds an active weight and, with `weight_double_buffer`, a shadow weight. A weight load writes a
  fold's R x C stationary tile over one vertical bus per column, one row per cycle, row 0 first (R cycles),
  column c delayed by c cycles (the load travels with the same skew as the data); without a shadow it writes
  the active registers.
- The streamed operand enters row r at the left edge skewed by r cycles and moves one PE right per cycle;
  partial sums move one PE down per cycle and leave the bottom edge: output row t, column c of a fold whose
  stream starts at S leaves at S + t + (R - 1) + c.
- Each operand carries its fold's tag; a PE that sees a new fold's operand swaps its shadow weight into the
  active register in that cycle (Gemmini's `propagate` bit, TPUv1's weights advancing with the wave).
- With partial folds, a fold that covers H < R rows loads only rows 0..H-1 (H cycles) and its operand is
  marked empty in the rows below, whose PEs pass the partial sum down without a MAC (and without a swap), so
  the stale weights there are never read; a fold that covers w < C columns is done with column w - 1.

os:
- PE(r, c) accumulates C[r, c] of its fold; A enters row r skewed by r, B enters column c skewed by c; they
  meet at PE(r, c) at S + t + r + c. A PE moves its finished sum into its output register in the cycle of its
  last MAC; once the bottom PE of a column has done so, the column's output bus reads the output registers
  out of the bottom edge, one row per cycle, row 0 first (R cycles). (A shift chain instead would carry the
  next fold's early sums along with the previous fold's, so the next fold could not overlap the drain.)

The array controller issues folds by the rules in `_schedule_stationary` / `_schedule_os`; the kernels check
every rule's physical consequence (a MAC uses the weight of its own fold and row, an output register is empty
when a sum moves into it, operands of one MAC belong together) and report a hazard if one is broken, so a rule
that overlaps too much fails loudly instead of computing wrong numbers.

A MATMUL ends in the cycle its last wavefront leaves the array (ws/is: the MAC of the bottom-right PE; os: the
last output read out of the bottom-right column), or with partial folds (ws/is) the last MAC of the bottom PE
of the last column its folds use, and not before the MATMUL before it ends (in-order retirement). Partial sums
always cross every row, so the drain is R + (columns used) - 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from chipsim.config import Dataflow, Precision

HAZARD_NONE, HAZARD_WEIGHT, HAZARD_OPERANDS, HAZARD_OUTPUT_REGISTER, HAZARD_OUTPUT_BUS = range(5)
_HAZARD_TEXT = {
    HAZARD_WEIGHT: "a PE met an operand whose fold's weight was not in its active register",
    HAZARD_OPERANDS: "the A and B operands meeting in a PE belong to different folds or steps",
    HAZARD_OUTPUT_REGISTER: "a PE finished a sum while its output register still held an earlier fold's",
    HAZARD_OUTPUT_BUS: "a column began reading out a fold while it was still reading out the previous one",
}


class ArrayHazard(RuntimeError):
    """The fold schedule broke the array's register discipline (a defect in the schedule rules)."""


@dataclass(frozen=True, slots=True)
class ArrayRun:
    """What the reference model computed for a sequence of MATMULs issued back to back to one array."""

    outputs: tuple[np.ndarray, ...]  # C (m x n) of each MATMUL: int32 for int8, float32 for bf16
    exit_cycles: tuple[np.ndarray, ...]  # m x n: the cycle (0-based) each output's last partial sum left the array
    end_cycles: tuple[int, ...]  # the last cycle (0-based) in which each MATMUL's data was in the array
    simulated_cycles: int  # cycles the kernel advanced (a few past the end of the last MATMUL)

    @property
    def total_cycles(self) -> int:
        """Cycles from the first cycle of the first MATMUL to the last of the last, both included."""
        return self.end_cycles[-1] + 1


# --- kernels -----------------------------------------------------------------------------------------------
@njit(cache=False)
def _stationary_kernel(rows, cols, double_buffer, x, xoff, w, height, width, t_len, s_start, l_start, inst, n_inst, y,
                       y_cycle):  # pragma: no cover - compiled
    """ws/is: stream rows of `x` (fold f: x[xoff[f] : xoff[f] + t_len[f], :rows]) through stationary w[f], whose
    top height[f] rows are loaded; the PEs below pass fold f's partial sums down without a MAC. A fold's
    instruction ends with the last MAC in its first width[f] columns (the others hold zero weights)."""
    nf = t_len.shape[0]
    horizon = 0
    for f in range(nf):
        horizon = max(horizon, s_start[f] + t_len[f] + rows + cols)
    feed = np.full(horizon + 1, -1, np.int64)  # which fold's row enters the left edge at each cycle
    load = np.full(horizon + 1, -1, np.int64)  # which fold's weights enter the top edge (column 0) at each cycle
    for f in range(nf):
        for t in range(t_len[f]):
            feed[s_start[f] + t] = f
        for s in range(height[f]):
            load[l_start[f] + s] = f
    a_val = np.zeros((rows, cols), x.dtype)
    a_fold = np.full((rows, cols), -1, np.int64)
    a_t = np.zeros((rows, cols), np.int64)
    p_val = np.zeros((rows, cols), x.dtype)
    act_val = np.zeros((rows, cols), x.dtype)
    act_fold = np.full((rows, cols), -1, np.int64)
    act_row = np.full((rows, cols), -1, np.int64)
    sh_val = np.zeros((rows, cols), x.dtype)
    sh_fold = np.full((rows, cols), -1, np.int64)
    sh_row = np.full((rows, cols), -1, np.int64)
    end = np.full(n_inst, -1, np.int64)
    zero = x.dtype.type(0)
    for now in range(horizon + 1):
        # phase 1: operands move right, partial sums move down, every PE with an operand does one MAC
        for c in range(cols - 1, -1, -1):
            for r in range(rows - 1, -1, -1):
                if c == 0:
                    src = now - r
                    f = feed[src] if src >= 0 else -1
                    if f >= 0:
                        a_val[r, 0] = x[xoff[f] + src - s_start[f], r]
                        a_fold[r, 0] = f
                        a_t[r, 0] = src - s_start[f]
                    else:
                        a_fold[r, 0] = -1
                else:
                    a_val[r, c] = a_val[r, c - 1]
                    a_fold[r, c] = a_fold[r, c - 1]
                    a_t[r, c] = a_t[r, c - 1]
                g = a_fold[r, c]
                if g < 0:
                    continue
                above = p_val[r - 1, c] if r > 0 else zero
                if r >= height[g]:  # a row the fold does not use: its operand is marked empty, the sum passes
                    p_val[r, c] = above
                else:
                    if double_buffer and act_fold[r, c] != g:
                        act_val[r, c] = sh_val[r, c]
                        act_fold[r, c] = sh_fold[r, c]
                        act_row[r, c] = sh_row[r, c]
                    if act_fold[r, c] != g or act_row[r, c] != r:
                        return HAZARD_WEIGHT, now, end
                    p_val[r, c] = above + a_val[r, c] * act_val[r, c]
                if c < width[g]:
                    end[inst[g]] = max(end[inst[g]], now)
                if r == rows - 1:
                    y[xoff[g] + a_t[r, c], c] = p_val[r, c]
                    y_cycle[xoff[g] + a_t[r, c], c] = now
        # phase 2: the weight bus of each loading column writes one row (row 0 first; column c runs c cycles
        # behind column 0), into the shadow registers or, without them, into the active ones
        for c in range(cols):
            src = now - c
            f = load[src] if src >= 0 else -1
            if f < 0:
                continue
            step = src - l_start[f]
            if double_buffer:
                sh_val[step, c] = w[f, step, c]
                sh_fold[step, c] = f
                sh_row[step, c] = step
            else:
                act_val[step, c] = w[f, step, c]
                act_fold[step, c] = f
                act_row[step, c] = step
    return HAZARD_NONE, horizon + 1, end


@njit(cache=False)
def _os_kernel(rows, cols, a, b, koff, t_len, s_start, inst, n_inst, y, y_cycle):  # pragma: no cover - compiled
    """os: fold f feeds a[koff[f] + t, r] into row r and b[koff[f] + t, c] into column c for t < t_len[f]."""
    nf = t_len.shape[0]
    horizon = 0
    for f in range(nf):
        horizon = max(horizon, s_start[f] + t_len[f] + 2 * rows + cols + 1)
    feed = np.full(horizon + 1, -1, np.int64)
    for f in range(nf):
        for t in range(t_len[f]):
            feed[s_start[f] + t] = f
    a_val = np.zeros((rows, cols), a.dtype)
    a_fold = np.full((rows, cols), -1, np.int64)
    a_t = np.zeros((rows, cols), np.int64)
    b_val = np.zeros((rows, cols), a.dtype)
    b_fold = np.full((rows, cols), -1, np.int64)
    b_t = np.zeros((rows, cols), np.int64)
    acc_val = np.zeros((rows, cols), a.dtype)
    acc_fold = np.full((rows, cols), -1, np.int64)
    o_val = np.zeros((rows, cols), a.dtype)
    o_fold = np.full((rows, cols), -1, np.int64)
    reading = np.zeros(cols, np.int64)  # output registers left to read out of each column
    end = np.full(n_inst, -1, np.int64)
    for now in range(horizon + 1):
        # phase A: each draining column's output bus reads one output register, row 0 first, to the bottom edge
        for c in range(cols):
            if reading[c] == 0:
                continue
            row = rows - reading[c]
            g = o_fold[row, c]
            if g >= 0:
                y[g, row, c] = o_val[row, c]
                y_cycle[g, row, c] = now
                end[inst[g]] = max(end[inst[g]], now)
            o_fold[row, c] = -1
            reading[c] -= 1
        # phase B: A moves right, B moves down, PEs with both operands accumulate
        for c in range(cols - 1, -1, -1):
            for r in range(rows - 1, -1, -1):
                if c == 0:
                    src = now - r
                    f = feed[src] if src >= 0 else -1
                    a_fold[r, 0] = f
                    if f >= 0:
                        a_t[r, 0] = src - s_start[f]
                        a_val[r, 0] = a[koff[f] + a_t[r, 0], r]
                else:
                    a_val[r, c] = a_val[r, c - 1]
                    a_fold[r, c] = a_fold[r, c - 1]
                    a_t[r, c] = a_t[r, c - 1]
                if r == 0:
                    src = now - c
                    f = feed[src] if src >= 0 else -1
                    b_fold[0, c] = f
                    if f >= 0:
                        b_t[0, c] = src - s_start[f]
                        b_val[0, c] = b[koff[f] + b_t[0, c], c]
                else:
                    b_val[r, c] = b_val[r - 1, c]
                    b_fold[r, c] = b_fold[r - 1, c]
                    b_t[r, c] = b_t[r - 1, c]
                g = a_fold[r, c]
                if g < 0 and b_fold[r, c] < 0:
                    continue
                if g != b_fold[r, c] or a_t[r, c] != b_t[r, c]:
                    return HAZARD_OPERANDS, now, end
                if acc_fold[r, c] != g:
                    acc_val[r, c] = a_val[r, c] * b_val[r, c]
                    acc_fold[r, c] = g
                else:
                    acc_val[r, c] = acc_val[r, c] + a_val[r, c] * b_val[r, c]
                end[inst[g]] = max(end[inst[g]], now)
                if a_t[r, c] == t_len[g] - 1:
                    if o_fold[r, c] >= 0:
                        return HAZARD_OUTPUT_REGISTER, now, end
                    o_val[r, c] = acc_val[r, c]
                    o_fold[r, c] = g
                    acc_fold[r, c] = -1
                    if r == rows - 1:
                        if reading[c] > 0:
                            return HAZARD_OUTPUT_BUS, now, end
                        reading[c] = rows
    return HAZARD_NONE, horizon + 1, end


# --- the array controller: when each fold's weight load and stream begin ------------------------------------
def _schedule_stationary(
    stream_lens: Sequence[int], starts_matmul: Sequence[bool], rows: int, cols: int, *, weight_double_buffer: bool,
    fold_overlap: bool, ready: Sequence[int] | None = None, heights: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(stream start S, weight load start L) of each fold, 0-based cycles, issued as early as the rules allow.

    - The top edge loads one fold at a time (H cycles: the rows the fold loads, `heights`, R for every fold when
      None) and the left edge streams one fold at a time.
    - Double-buffered: fold g's load into the shadow registers may begin once fold g-1 has begun streaming
      (its swap wave runs ahead of the load wave, both skewed alike); without a shadow, it may begin once fold
      g-1's last operand row has entered (the load wave then trails fold g-1's last operands).
    - Fold g streams once its load has reached its last row of column 0 (H cycles after the load began).
    - `fold_overlap=False` (SCALE-Sim's convention): fold g streams, and without a shadow loads, only after
      fold g-1's last wavefront has left the array; the first fold of a MATMUL loads only then, too (each
      MATMUL starts from an empty array).
    - `ready` (per fold, or None): the earliest cycle its weight load may begin (a MATMUL whose operands arrive
      late: the first fold of each MATMUL carries its ready cycle, the others 0).
    """
    r, c = rows, cols
    h = list(heights) if heights is not None else [r] * len(stream_lens)
    s = np.zeros(len(stream_lens), np.int64)
    ld = np.zeros(len(stream_lens), np.int64)
    ld[0] = ready[0] if ready is not None else 0
    s[0] = ld[0] + h[0]
    for g in range(1, len(stream_lens)):
        t_prev = stream_lens[g - 1]
        drained = int(s[g - 1]) + t_prev + r + c - 2  # first cycle after fold g-1's last wavefront left
        if weight_double_buffer and (fold_overlap or not starts_matmul[g]):
            ld[g] = max(int(s[g - 1]), int(ld[g - 1]) + h[g - 1])
        else:
            ld[g] = int(s[g - 1]) + t_prev if fold_overlap else drained
        if ready is not None:
            ld[g] = max(int(ld[g]), ready[g])
        port_free = int(s[g - 1]) + t_prev if fold_overlap else drained
        s[g] = max(port_free, int(ld[g]) + h[g])
    return s, ld


def _schedule_os(stream_lens: Sequence[int], rows: int, cols: int, *, fold_overlap: bool,
                 ready: Sequence[int] | None = None) -> np.ndarray:
    """Stream start S of each os fold: after the previous fold's operands have entered, and late enough that
    each PE finishes its sum only after its output register has been read out (which gives fold g the
    earliest start S[g-1] + T[g-1] + max(0, R - T[g])); without overlap, after the previous fold fully left;
    never before its `ready` cycle (per fold, as in _schedule_stationary)."""
    r, c = rows, cols
    s = np.zeros(len(stream_lens), np.int64)
    s[0] = ready[0] if ready is not None else 0
    for g in range(1, len(stream_lens)):
        t_prev, t = stream_lens[g - 1], stream_lens[g]
        if fold_overlap:
            s[g] = int(s[g - 1]) + t_prev + max(0, r - t)
        else:
            s[g] = int(s[g - 1]) + t_prev + 2 * r + c - 2
        if ready is not None:
            s[g] = max(int(s[g]), ready[g])
    return s


# --- folding and the public entry point ----------------------------------------------------------------------
def _checked_operands(a: np.ndarray, b: np.ndarray, precision: Precision) -> tuple[np.ndarray, np.ndarray]:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"MATMUL operands must be A[m,k] and B[k,n], got shapes {a.shape} and {b.shape}")
    if precision is Precision.INT8:
        if a.dtype != np.int8 or b.dtype != np.int8:
            raise ValueError(f"int8 MATMUL operands must be int8 arrays, got {a.dtype} and {b.dtype}")
        return a.astype(np.int32), b.astype(np.int32)
    a32, b32 = np.asarray(a, np.float32), np.asarray(b, np.float32)
    for x in (a32, b32):
        if np.any(x.view(np.uint32) & np.uint32(0xFFFF)):
            raise ValueError("bf16 MATMUL operands must be float32 arrays holding bf16 values (low 16 bits zero)")
    return a32, b32


def _fold_ranges(size: int, step: int) -> list[tuple[int, int]]:
    return [(lo, min(step, size - lo)) for lo in range(0, size, step)]


def run_matmuls(
    operands: Sequence[tuple[np.ndarray, np.ndarray]],
    rows: int,
    cols: int,
    dataflow: Dataflow,
    precision: Precision,
    *,
    weight_double_buffer: bool = True,
    fold_overlap: bool = True,
    ready: Sequence[int] | None = None,
    partial_folds: bool = False,
) -> ArrayRun:
    """Run C = A @ B for each (A, B), issued back to back to one `rows x cols` array, one clock at a time.

    `ready` (one per MATMUL, or None for all 0): the earliest cycle the MATMUL's first fold may begin, its
    weight load (ws, is) or its stream (os): the cycle its operands are there.

    `partial_folds` (ws, is, with `fold_overlap`): a fold covering kf < R rows of the array loads only those rows
    and the PEs below pass its partial sums through, and a fold covering w < C columns is done when its column
    w - 1 is (`chipsim.timing.matmul_timing`'s `partial_folds`); else every
    fold is its zero-padded R x C tile.

    Each MATMUL is folded exactly as `chipsim.timing.matmul_timing` assumes (ws: ceil(k/R) x ceil(n/C) folds
    of B; is: ceil(k/R) x ceil(m/C) folds of A^T; os: ceil(m/R) x ceil(n/C) folds of C), partial folds padded
    with zeros, and the folds of the whole sequence are issued as one run by the array controller.
    """
    if rows < 1 or cols < 1 or not operands:
        raise ValueError(f"need an array of at least 1x1 and at least one MATMUL, got {rows}x{cols} and {len(operands)}")
    acc_dtype = np.int32 if precision is Precision.INT8 else np.float32
    checked = [_checked_operands(a, b, precision) for a, b in operands]
    if ready is not None and len(ready) != len(operands):
        raise ValueError(f"need one ready cycle per MATMUL, got {len(ready)} for {len(operands)}")
    if dataflow is Dataflow.OS:
        return _run_os(checked, rows, cols, acc_dtype, fold_overlap=fold_overlap, ready=ready)
    return _run_stationary(checked, rows, cols, dataflow, acc_dtype, weight_double_buffer=weight_double_buffer,
                           fold_overlap=fold_overlap, ready=ready, partial_folds=partial_folds and fold_overlap)


def _finish(kernel_result: tuple[int, int, np.ndarray]) -> tuple[tuple[int, ...], int]:
    code, cycle, end = kernel_result  # cycle: where the hazard happened, or how many cycles were simulated
    if code != HAZARD_NONE:
        raise ArrayHazard(f"cycle {cycle}: {_HAZARD_TEXT[code]}")
    retired = np.maximum.accumulate(end)  # in order: a MATMUL retires once the one before it has
    return tuple(int(e) for e in retired), int(cycle)


def _fold_ready(insts: list[int], ready: Sequence[int] | None) -> list[int] | None:
    """Per fold: its MATMUL's ready cycle on its first fold, 0 on the others."""
    if ready is None:
        return None
    return [ready[i] if f == 0 or insts[f - 1] != i else 0 for f, i in enumerate(insts)]


def _run_stationary(checked: list[tuple[np.ndarray, np.ndarray]], rows: int, cols: int, dataflow: Dataflow,
                    acc_dtype: type, *, weight_double_buffer: bool, fold_overlap: bool,
                    ready: Sequence[int] | None = None, partial_folds: bool = False) -> ArrayRun:
    # (instruction, streamed rows T x R, stationary tile R x C, rows loaded, output placement) per fold
    xs, ws, heights, widths, insts, places = [], [], [], [], [], []
    for i, (a, b) in enumerate(checked):
        m, k = a.shape
        n = b.shape[1]
        # ws: stream the rows of A through tiles of B; is: stream the columns of B through tiles of A^T
        streamed, stationary, out_cols = (a, b, n) if dataflow is Dataflow.WS else (b.T, a.T, m)
        for c0, cn in _fold_ranges(out_cols, cols):
            for k0, kn in _fold_ranges(k, rows):
                x = np.zeros((streamed.shape[0], rows), acc_dtype)
                x[:, :kn] = streamed[:, k0:k0 + kn]
                w = np.zeros((rows, cols), acc_dtype)
                w[:kn, :cn] = stationary[k0:k0 + kn, c0:c0 + cn]
                xs.append(x)
                ws.append(w)
                heights.append(kn if partial_folds else rows)
                widths.append(cn if partial_folds else cols)
                insts.append(i)
                places.append((c0, cn))
    t_len = np.array([x.shape[0] for x in xs], np.int64)
    xoff = np.concatenate(([0], np.cumsum(t_len)[:-1])).astype(np.int64)
    starts = [f == 0 or insts[f] != insts[f - 1] for f in range(len(insts))]
    s, ld = _schedule_stationary(list(t_len), starts, rows, cols, weight_double_buffer=weight_double_buffer, fold_overlap=fold_overlap,
                                 ready=_fold_ready(insts, ready), heights=heights)
    y = np.zeros((int(t_len.sum()), cols), acc_dtype)
    y_cycle = np.full(y.shape, -1, np.int64)
    ends, simulated = _finish(_stationary_kernel(rows, cols, weight_double_buffer, np.concatenate(xs), xoff,
                                                 np.stack(ws), np.array(heights, np.int64),
                                                 np.array(widths, np.int64), t_len, s, ld, np.array(insts, np.int64),
                                                 len(checked), y, y_cycle))
    outputs = [np.zeros((a.shape[0], b.shape[1]), acc_dtype) for a, b in checked]
    exits = [np.full((a.shape[0], b.shape[1]), -1, np.int64) for a, b in checked]
    for f, (i, (c0, cn)) in enumerate(zip(insts, places)):
        part, when = y[xoff[f]:xoff[f] + t_len[f], :cn], y_cycle[xoff[f]:xoff[f] + t_len[f], :cn]
        if dataflow is Dataflow.IS:
            part, when = part.T, when.T
            out, ex = outputs[i][c0:c0 + cn, :], exits[i][c0:c0 + cn, :]
        else:
            out, ex = outputs[i][:, c0:c0 + cn], exits[i][:, c0:c0 + cn]
        out += part  # the accumulator SRAM adds the fold's partial sums (int32 wraps, fp32 rounds)
        np.maximum(ex, when, out=ex)
    return ArrayRun(tuple(outputs), tuple(exits), ends, simulated)


def _run_os(checked: list[tuple[np.ndarray, np.ndarray]], rows: int, cols: int, acc_dtype: type, *,
            fold_overlap: bool, ready: Sequence[int] | None = None) -> ArrayRun:
    a_parts, b_parts, insts, places = [], [], [], []
    for i, (a, b) in enumerate(checked):
        m, k = a.shape
        n = b.shape[1]
        for m0, mn in _fold_ranges(m, rows):
            for n0, nn in _fold_ranges(n, cols):
                at = np.zeros((k, rows), acc_dtype)
                at[:, :mn] = a[m0:m0 + mn, :].T
                bt = np.zeros((k, cols), acc_dtype)
                bt[:, :nn] = b[:, n0:n0 + nn]
                a_parts.append(at)
                b_parts.append(bt)
                insts.append(i)
                places.append((m0, mn, n0, nn))
    t_len = np.array([p.shape[0] for p in a_parts], np.int64)
    koff = np.concatenate(([0], np.cumsum(t_len)[:-1])).astype(np.int64)
    s = _schedule_os(list(t_len), rows, cols, fold_overlap=fold_overlap, ready=_fold_ready(insts, ready))
    y = np.zeros((len(a_parts), rows, cols), acc_dtype)
    y_cycle = np.full(y.shape, -1, np.int64)
    ends, simulated = _finish(_os_kernel(rows, cols, np.concatenate(a_parts), np.concatenate(b_parts), koff, t_len,
                                         s, np.array(insts, np.int64), len(checked), y, y_cycle))
    outputs = [np.zeros((a.shape[0], b.shape[1]), acc_dtype) for a, b in checked]
    exits = [np.full((a.shape[0], b.shape[1]), -1, np.int64) for a, b in checked]
    for f, (i, (m0, mn, n0, nn)) in enumerate(zip(insts, places)):
        outputs[i][m0:m0 + mn, n0:n0 + nn] = y[f, :mn, :nn]
        exits[i][m0:m0 + mn, n0:n0 + nn] = y_cycle[f, :mn, :nn]
    return ArrayRun(tuple(outputs), tuple(exits), ends, simulated)
