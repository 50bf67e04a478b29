"""The cycle-level array model (chipsim/array_reference.py) is the ground truth for chipsim/timing.py.

Properties over random shapes and arrays up to 32x32, every dataflow, single MATMULs and back-to-back
sequences, with and without pipelined folds and weight double-buffering: the closed forms give exactly the
reference model's cycle counts, and its values equal A @ B (int8 exactly, bf16 within fp32 rounding).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chipsim.array_reference as ref
from chipsim.array_reference import ArrayHazard, run_matmuls
from chipsim.config import Dataflow, Precision
from chipsim.timing import continued_run, matmul_stream_cycles, matmul_timing

WS, OS, IS = Dataflow.WS, Dataflow.OS, Dataflow.IS
NEVER = -(1 << 62)  # a ready cycle that holds nothing back


def closed_form_ends(shapes: list[tuple[int, int, int]], rows: int, cols: int, df: Dataflow, *, db: bool,
                     overlap: bool, partial: bool = False) -> list[int]:
    """The closed-form end of each MATMUL of a back-to-back sequence (each continues the last: timing.continued_run)."""
    ends, end, front, prev_stream = [], 0, 0, 0
    for m, k, n in shapes:
        t = matmul_timing(df, rows, cols, m, k, n, weight_double_buffer=db, fold_overlap=overlap,
                          after_matmul_stream=prev_stream, partial_folds=partial)
        if not ends:  # from an empty array: its total is its front and its tail
            end, front = t.total_cycles, t.total_cycles - t.tail_cycles
        else:
            end, front = continued_run(end, front, NEVER, 0, t.total_cycles, t.tail_cycles)
        ends.append(end)
        prev_stream = matmul_stream_cycles(df, m, k, n)
    return ends


def operands(rng: np.random.Generator, m: int, k: int, n: int, prec: Precision) -> tuple[np.ndarray, np.ndarray]:
    if prec is Precision.INT8:
        return rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8)
    return bf16(rng.standard_normal((m, k))), bf16(rng.standard_normal((k, n)))


def bf16(x: np.ndarray) -> np.ndarray:
    """x rounded toward zero to bf16, held in float32 (the low 16 bits cleared)."""
    return (x.astype(np.float32).view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)


def assert_equals_matmul(out: np.ndarray, a: np.ndarray, b: np.ndarray, prec: Precision) -> None:
    if prec is Precision.INT8:
        np.testing.assert_array_equal(out, a.astype(np.int32) @ b.astype(np.int32))
        assert out.dtype == np.int32
    else:
        exact = a.astype(np.float64) @ b.astype(np.float64)
        bound = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
        assert out.dtype == np.float32
        assert np.all(np.abs(out - exact) <= 2.0**-20 * bound * a.shape[1] + 1e-30)


dims = st.integers(1, 40)
arrays = st.integers(1, 32)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([WS, OS, IS]), arrays, arrays, st.lists(st.tuples(dims, dims, dims), min_size=1, max_size=3),
       st.booleans(), st.booleans(), st.sampled_from([Precision.INT8, Precision.BF16]), st.integers(0, 2**31), st.booleans())
def test_closed_forms_equal_reference_cycles_and_values_equal_matmul(
    df: Dataflow, rows: int, cols: int, shapes: list[tuple[int, int, int]], db: bool, overlap: bool,
    prec: Precision, seed: int, partial: bool,
) -> None:
    rng = np.random.default_rng(seed)
    ops = [operands(rng, m, k, n, prec) for m, k, n in shapes]
    run = run_matmuls(ops, rows, cols, df, prec, weight_double_buffer=db, fold_overlap=overlap, partial_folds=partial)
    assert [e + 1 for e in run.end_cycles] == closed_form_ends(shapes, rows, cols, df, db=db, overlap=overlap,
                                                               partial=partial and overlap)
    for (a, b), out, exits, end in zip(ops, run.outputs, run.exit_cycles, run.end_cycles):
        assert_equals_matmul(out, a, b, prec)
        assert exits.min() >= 0 and exits.max() <= end


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([WS, OS, IS]), st.integers(1, 16), st.integers(1, 16), dims, dims, dims, st.booleans())
def test_pipelined_folds_never_slower_and_scalesim_convention_matches_per_fold_sum(
    df: Dataflow, rows: int, cols: int, m: int, k: int, n: int, db: bool,
) -> None:
    rng = np.random.default_rng(0)
    a, b = operands(rng, m, k, n, Precision.INT8)
    piped = run_matmuls([(a, b)], rows, cols, df, Precision.INT8, weight_double_buffer=db, fold_overlap=True)
    per_fold = run_matmuls([(a, b)], rows, cols, df, Precision.INT8, weight_double_buffer=db, fold_overlap=False)
    assert piped.total_cycles <= per_fold.total_cycles
    t = matmul_timing(df, rows, cols, m, k, n, weight_double_buffer=db, fold_overlap=False)
    assert per_fold.total_cycles == t.total_cycles
    assert t.skew_cycles == t.folds * (rows + cols - 2)  # SCALE-Sim: every fold fills and drains


def test_single_ws_fold_output_leaves_at_its_wavefront() -> None:
    # Load R = 4 cycles, stream from cycle 4: out(i, c) leaves the bottom of column c at 4 + i + (R - 1) + c.
    rng = np.random.default_rng(1)
    a, b = operands(rng, 6, 4, 3, Precision.INT8)
    run = run_matmuls([(a, b)], 4, 3, WS, Precision.INT8)
    i, c = np.meshgrid(np.arange(6), np.arange(3), indexing="ij")
    np.testing.assert_array_equal(run.exit_cycles[0], 4 + i + 3 + c)
    assert run.total_cycles == 4 + 6 + 4 + 3 - 2


def test_single_os_fold_outputs_are_read_out_row_by_row() -> None:
    # k = 5 MACs per PE; PE(r, c) finishes at 4 + r + c; column c's bus reads from 4 + (R-1) + c + 1, one row a
    # cycle, row 0 first: out(r, c) leaves at 4 + (R - 1) + c + 1 + r.
    rng = np.random.default_rng(2)
    a, b = operands(rng, 3, 5, 2, Precision.INT8)
    run = run_matmuls([(a, b)], 3, 2, OS, Precision.INT8)
    r, c = np.meshgrid(np.arange(3), np.arange(2), indexing="ij")
    np.testing.assert_array_equal(run.exit_cycles[0], 4 + 2 + c + 1 + r)


def test_issuing_an_os_fold_a_cycle_early_breaks_an_output_register(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two folds of k = 1 < R = 4: the second may start only once the first's outputs have shifted past.
    rule = ref._schedule_os
    monkeypatch.setattr(ref, "_schedule_os", lambda *a, **kw: rule(*a, **kw) - np.array([0, 1]))
    a, b = operands(np.random.default_rng(3), 8, 1, 2, Precision.INT8)
    with pytest.raises(ArrayHazard, match="output register"):
        run_matmuls([(a, b)], 4, 2, OS, Precision.INT8)


def test_loading_the_shadow_weights_before_the_swap_wave_breaks_a_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    rule = ref._schedule_stationary

    def early_load(*args: object, **kw: bool) -> tuple[np.ndarray, np.ndarray]:
        s, ld = rule(*args, **kw)  # type: ignore[arg-type]
        return s, ld - np.array([0, 1])

    monkeypatch.setattr(ref, "_schedule_stationary", early_load)
    a, b = operands(np.random.default_rng(4), 8, 8, 2, Precision.INT8)
    with pytest.raises(ArrayHazard, match="weight"):
        run_matmuls([(a, b)], 4, 2, WS, Precision.INT8)


def test_bad_operands_are_refused_in_one_sentence() -> None:
    a = np.ones((2, 3), np.int8)
    with pytest.raises(ValueError, match=r"A\[m,k\] and B\[k,n\], got shapes \(2, 3\) and \(2, 3\)"):
        run_matmuls([(a, a)], 2, 2, WS, Precision.INT8)
    with pytest.raises(ValueError, match="bf16 values"):
        run_matmuls([(np.full((1, 1), 0.1, np.float32), np.ones((1, 1), np.float32))], 2, 2, WS, Precision.BF16)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([WS, OS, IS]), arrays, arrays, st.tuples(dims, dims, dims), st.tuples(dims, dims, dims),
       st.booleans(), st.integers(0, 400), st.booleans())
def test_a_matmul_whose_operands_come_late_continues_the_run_as_far_as_they_allow(
    df: Dataflow, rows: int, cols: int, first: tuple[int, int, int], second: tuple[int, int, int], db: bool, ready: int,
    partial: bool,
) -> None:
    """The second of two back-to-back MATMULs, its operands there only at cycle `ready`, ends where
    timing.continued_run says: the executor's rule for MATMULs with SIGNALs and WAITs between them."""
    rng = np.random.default_rng(ready)
    ops = [operands(rng, *first, Precision.INT8), operands(rng, *second, Precision.INT8)]
    run = run_matmuls(ops, rows, cols, df, Precision.INT8, weight_double_buffer=db, fold_overlap=True, ready=[0, ready],
                      partial_folds=partial)
    prev_end = run.end_cycles[0] + 1  # cycles, as the executor counts them
    kw = dict(weight_double_buffer=db, fold_overlap=True, partial_folds=partial)
    t1 = matmul_timing(df, rows, cols, *first, **kw)
    assert prev_end == t1.total_cycles
    fresh = matmul_timing(df, rows, cols, *second, **kw)
    continued = matmul_timing(df, rows, cols, *second, **kw, after_matmul_stream=matmul_stream_cycles(df, *first))
    end, _ = continued_run(prev_end, t1.total_cycles - t1.tail_cycles, ready, fresh.total_cycles - fresh.tail_cycles,
                           continued.total_cycles, continued.tail_cycles)
    assert run.end_cycles[1] + 1 == end
    for (a, b), out in zip(ops, run.outputs):
        assert_equals_matmul(out, a, b, Precision.INT8)


@pytest.mark.parametrize("df", [WS, IS])
def test_a_partial_fold_loads_only_its_rows_and_its_lower_rows_pass_the_sums_through(df: Dataflow) -> None:
    # k = 6 on 4 rows: folds of 4 and 2 rows. The 2-row fold's rows 2..3 still hold the first fold's weights: a PE
    # there that used them would give wrong sums. Its load takes 2 cycles, so behind a stream of T = 1 only 1 shows.
    rng = np.random.default_rng(5)
    m, n = (1, 3) if df is WS else (3, 1)
    a, b = operands(rng, m, 6, n, Precision.INT8)
    partial = run_matmuls([(a, b)], 4, 3, df, Precision.INT8, partial_folds=True)
    full = run_matmuls([(a, b)], 4, 3, df, Precision.INT8, partial_folds=False)
    assert_equals_matmul(partial.outputs[0], a, b, Precision.INT8)
    # 4 (first load) + 1 (stream) + max(0, 2 - 1) (second load) + 1 (stream) + 4 + 3 - 2 (fill and drain)
    assert partial.total_cycles == 4 + 1 + 1 + 1 + 5 == full.total_cycles - 2
    t = matmul_timing(df, 4, 3, m, 6, n, weight_double_buffer=True, partial_folds=True)
    assert t.weight_load_cycles == 5 and t.total_cycles == partial.total_cycles

