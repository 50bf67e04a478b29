"""Properties of chipsim's ideal-memory GEMM cycles over random arrays and GEMMs: never below the roofline
bound macs / (rows * cols), and never fewer cycles for a larger GEMM (monotone in m, k and n)."""

from __future__ import annotations

import enum

from hypothesis import given, settings
from hypothesis import strategies as st

from chipsim import timing


def _dataflows() -> tuple[enum.Enum, ...]:
    own: type[enum.Enum] | None = getattr(timing, "MatmulDataflow", None)
    if own is not None:
        return tuple(own)
    from chipsim.config import Dataflow

    return tuple(Dataflow)


DATAFLOWS = _dataflows()
side = st.integers(1, 300)
dim = st.integers(1, 5000)


def cycles(df: enum.Enum, r: int, c: int, m: int, k: int, n: int, db: bool, pre: bool) -> int:
    return timing.matmul_timing(df, r, c, m, k, n, weight_double_buffer=db, preloaded=pre).total_cycles


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(DATAFLOWS), side, side, dim, dim, dim, st.booleans(), st.booleans())
def test_ideal_cycles_at_or_above_roofline(df, r, c, m, k, n, db, pre) -> None:
    t = cycles(df, r, c, m, k, n, db, pre)
    assert t * r * c >= m * k * n  # cycles >= macs / (rows * cols), compared in integers
    assert t >= 1


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(DATAFLOWS), side, side, dim, dim, dim, st.sampled_from("mkn"), st.integers(1, 500),
    st.booleans(), st.booleans(),
)
def test_ideal_cycles_monotone_in_gemm_size(df, r, c, m, k, n, axis, grow, db, pre) -> None:
    small = cycles(df, r, c, m, k, n, db, pre)
    bigger = {"m": (m + grow, k, n), "k": (m, k + grow, n), "n": (m, k, n + grow)}[axis]
    assert cycles(df, r, c, *bigger, db, pre) >= small


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(DATAFLOWS), side, side, dim, dim, dim, st.booleans())
def test_double_buffering_and_preloading_never_slow_down(df, r, c, m, k, n, pre) -> None:
    assert cycles(df, r, c, m, k, n, True, pre) <= cycles(df, r, c, m, k, n, False, pre)
    assert cycles(df, r, c, m, k, n, False, True) <= cycles(df, r, c, m, k, n, False, False)
