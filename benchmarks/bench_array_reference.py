"""Speed of the cycle-level array model against the closed forms it checks.

    python -m benchmarks.bench_array_reference

For a few GEMMs on a 32x32 array (every dataflow, pipelined folds), prints the reference model's speed in
simulated cycles per second (numba-compiled; the one-off compile time is printed separately), the closed
forms' speed in evaluations per second (uncached, as a cache miss costs) and cycles "covered" per second, and
the ratio. The two cycle counts are asserted equal, as tests/test_array_reference.py does over random shapes.
"""

from __future__ import annotations

import time

import numpy as np

from chipsim.array_reference import run_matmuls
from chipsim.config import Dataflow, Precision
from chipsim.timing import matmul_timing

ROWS = COLS = 32
SHAPES = ((128, 256, 256), (64, 512, 128), (256, 128, 512))
MIN_SECONDS = 0.5  # repeat each measurement until this much wall time has passed


def timed(fn, min_seconds: float = MIN_SECONDS) -> float:  # type: ignore[no-untyped-def]
    """Seconds per call of `fn`, averaged over as many calls as fit in `min_seconds` (at least one)."""
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return elapsed / calls


def main() -> None:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    warm = rng.integers(-128, 128, (2, 2), dtype=np.int8)
    for df in Dataflow:
        run_matmuls([(warm, warm)], 2, 2, df, Precision.INT8)
    print(f"numba compile of the array kernels (int8): {time.perf_counter() - t0:6.2f} s (once per process)")
    print(f"{'dataflow':8} {'GEMM m x k x n':>16} {'cycles':>9} {'reference cyc/s':>16} {'closed form evals/s':>20} "
          f"{'closed form cyc/s':>18} {'ratio':>9}")
    for df in Dataflow:
        for m, k, n in SHAPES:
            a = rng.integers(-128, 128, (m, k), dtype=np.int8)
            b = rng.integers(-128, 128, (k, n), dtype=np.int8)
            run = run_matmuls([(a, b)], ROWS, COLS, df, Precision.INT8)
            closed = matmul_timing.__wrapped__(df, ROWS, COLS, m, k, n, weight_double_buffer=True)
            assert run.total_cycles == closed.total_cycles, (df, m, k, n, run.total_cycles, closed.total_cycles)
            ref_s = timed(lambda a=a, b=b, df=df: run_matmuls([(a, b)], ROWS, COLS, df, Precision.INT8))
            form_s = timed(lambda df=df, m=m, k=k, n=n: matmul_timing.__wrapped__(df, ROWS, COLS, m, k, n,
                                                                                 weight_double_buffer=True), 0.2)
            ref_rate, form_rate = run.simulated_cycles / ref_s, run.total_cycles / form_s
            print(f"{df.value:8} {f'{m}x{k}x{n}':>16} {run.total_cycles:9,} {ref_rate:16,.0f} {1 / form_s:20,.0f} "
                  f"{form_rate:18,.3g} {form_rate / ref_rate:8,.0f}x")


if __name__ == "__main__":
    main()
