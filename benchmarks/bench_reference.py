"""Reference benchmark: fp32 latency of one 128-token sentence, full test-split eval wall time, peak memory.

    python -m benchmarks.bench_reference
"""

from __future__ import annotations

import resource
import time

import numpy as np
from threadpoolctl import threadpool_limits

from workloads.evaluate import evaluate
from workloads.model import load_model
from workloads.quantized import Precision, load_quantized
from workloads.quantized import forward as forward_q
from workloads.reference import forward


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    threadpool_limits(1)  # as the CLI does
    t0 = time.perf_counter()
    model = load_model()
    load_s = time.perf_counter() - t0
    ids = np.random.default_rng(0).integers(1000, 20000, 128)
    print(f"model load (sha256 check + fp16 -> fp32):   {load_s * 1e3:8.1f} ms")
    print(f"fp32 reference, one 128-token sentence:      {best_of(lambda: forward(model, ids), 10) * 1e3:8.1f} ms")
    for p in (Precision.INT8, Precision.BF16):
        qm = load_quantized(model, p)
        print(f"{p.value} reference, one 128-token sentence:      {best_of(lambda: forward_q(qm, ids), 5) * 1e3:8.1f} ms")
    for p in (Precision.FP32, Precision.INT8):
        t0 = time.perf_counter()
        ev = evaluate(model, p)
        print(f"{p.value} eval of the test split ({ev.sentences} sentences): {time.perf_counter() - t0:8.2f} s  (F1 {ev.scores.f1:.4f})")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory:                        {peak_mib:8.0f} MiB")


if __name__ == "__main__":
    main()
