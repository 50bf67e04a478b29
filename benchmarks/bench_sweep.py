"""Sweep benchmarks: points per second and report generation time.

    python -m benchmarks.bench_sweep                  # both
    python -m benchmarks.bench_sweep --only report    # report time for 10,000 stored points
    python -m benchmarks.bench_sweep --only sweep --points 60 --workers 2

1. Sweep throughput: BERT-base (seq 128, timing only) over a grid of chips on 2 local worker processes, through
   the real path (plan, process pool, `chipsim.app.runner.run`, one SQLite transaction per point), arrays 16x16
   to 256x256 and 1 to 16 cores among the axes. Target >= 50 points/s. Worker start-up is reported apart from the steady rate.
2. Report generation: a store of 10,000 synthetic but realistically shaped points (figures from a roofline
   estimate over the real BERT-base graph and the chip's own area model, a 30-entry per-layer table per point),
   then `build_report`. Target <= 30 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from chipsim.area import area_breakdown
from chipsim.app.runconfig import RunConfig
from reports.store import PointOutcome, PointStatus, SweepStore
from chipsim.app.sweep import local_executor, run_sweep
from chipsim.app.sweep_plan import JsonValue, build_plan, parse_sweep

BENCH_AXES: dict[str, JsonValue] = {
    "core.tensor_core": [{"rows": r, "cols": r} for r in (16, 32, 64, 128, 256)],
    "core.scratchpad.size_kib": [512, 1024, 2048, 4096],
    "mesh": [{"rows": r, "cols": c} for r, c in ((1, 1), (1, 2), (2, 2), (2, 4), (4, 4))],  # 1..16 cores
    "dram.type": ["hbm2e", "lpddr5", "ddr4"],
    "core.tensor_core.precision": ["int8", "bf16"],
    "core.accumulator.size_kib": [256, 512, 1024, 2048],
    "clock_mhz": [600.0, 800.0, 1000.0, 1200.0, 1400.0],
    "noc.link_bytes_per_cycle": [32, 64],
}


def _spec(points: int | None, model: str = "bert-base", seq_len: int = 128) -> dict[str, JsonValue]:
    sampling: dict[str, JsonValue] = {"method": "random", "points": points, "seed": 1} if points else {"method": "grid"}
    return {
        "name": "bench",
        "base": {"chip": "default", "workload": {"model": model, "seq_len": seq_len}},
        "axes": BENCH_AXES,
        "sampling": sampling,
        "constraints": ["area_mm2 <= 2000", "power_w <= 150"],
    }


def synthetic_record(config: RunConfig, rng: np.random.Generator) -> dict[str, JsonValue]:
    """A result record shaped like the runner's, from a roofline estimate (for timing the report only)."""
    chip = config.chip
    macs = 11.2e9 * config.workload.seq_len / 128  # BERT-base encoder at seq 128 (workloads.graph.encoder_macs)
    bytes_moved = 110e6 * (2 if chip.core.tensor_core.precision.value == "bf16" else 1)
    compute = macs / chip.peak_macs_per_cycle / rng.uniform(0.35, 0.9)
    memory = bytes_moved / chip.dram_bytes_per_cycle
    cycles = float(max(compute, memory) * rng.uniform(1.05, 1.3))
    latency = cycles / chip.clock_hz
    parts = {
        "mac": macs * (0.3 if chip.core.tensor_core.precision.value == "int8" else 1.1) * 1e-12,
        "sram": macs * 0.12e-12 * (chip.core.scratchpad.size_kib / 1024) ** 0.5,
        "dram": bytes_moved * 8 * chip.dram.energy_pj_per_bit * 1e-12,
        "noc": macs * 0.01e-12 * chip.num_cores,
        "vector": macs * 0.02e-12,
        "leakage": 0.05 * chip.num_cores * latency,
    }
    energy = sum(parts.values())
    area = area_breakdown(chip)
    layers: list[JsonValue] = []
    for i in range(30):
        share = rng.uniform(0.2, 1.0)
        layer_macs = macs / 30 * share
        layers.append({
            "name": f"encoder.{i // 10}.{['qkv', 'scores', 'context', 'proj', 'ffn1', 'ffn2', 'softmax', 'ln1', 'ln2', 'gelu'][i % 10]}",
            "cycles": cycles / 30 * share, "macs": layer_macs, "utilization": float(rng.uniform(0.1, 0.95)),
            "energy_j": energy / 30 * share, "bound": "compute" if compute > memory else "memory",
            "dram_bytes": bytes_moved / 30 * share,
        })
    return {
        "cycles": cycles, "latency_s": latency, "inferences_per_s": 1 / latency, "energy_j": energy,
        "energy_breakdown_j": parts, "area_mm2": area["total"], "area_breakdown_mm2": area,
        "power_w": energy / latency, "tops_per_w": 2 * macs / energy / 1e12, "utilization": macs / chip.peak_macs_per_cycle / cycles,
        "per_layer": layers, "peak_macs_per_cycle": chip.peak_macs_per_cycle, "dram_bytes_per_cycle": chip.dram_bytes_per_cycle,
        "validation": {"bit_exact": None, "max_abs_logit_diff": None, "tag_agreement": None, "f1_chip": None, "f1_reference": None},
        "config_sha256": config.sha256(), "chipsim_version": "synthetic",
    }


def bench_report(points: int) -> float:
    from reports.report import build_report

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep"
        t0 = time.perf_counter()
        plan = build_plan(parse_sweep(_spec(points), source="bench.yaml", sweep_dir=Path(".")))
        rng = np.random.default_rng(0)
        with SweepStore.for_sweep(out, plan.store_header()) as store:
            for p in plan.points:
                assert p.config is not None
                record = synthetic_record(RunConfig.model_validate(p.config), rng)
                store.add(PointOutcome(p.key, PointStatus.OK, None, record, 0.0))
        print(f"report: stored {len(plan.points):,} synthetic points in {time.perf_counter() - t0:.1f} s")
        t1 = time.perf_counter()
        report = build_report(out)
        seconds = time.perf_counter() - t1
        print(f"report: generated {report.html_path.name} with {len(report.plots)} plots for {len(plan.points):,} points "
              f"in {seconds:.1f} s (target <= 30 s)")
        return seconds


def bench_sweep(points: int, workers: int, model: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        plan = build_plan(parse_sweep(_spec(points, model), source="bench.yaml", sweep_dir=Path(".")))
        with SweepStore.for_sweep(Path(tmp) / "sweep", plan.store_header()) as store, local_executor(workers) as pool:
            t0 = time.perf_counter()
            warm = run_sweep(plan, store, pool, parallelism=workers, max_points=workers)  # start the workers
            t1 = time.perf_counter()
            summary = run_sweep(plan, store, pool, parallelism=workers)
            t2 = time.perf_counter()
        rate = summary.ran / (t2 - t1)
        print(f"sweep: {model} seq 128 timing-only, {workers} workers: start-up + first {warm.ran} points {t1 - t0:.1f} s; "
              f"then {summary.ran} points in {t2 - t1:.1f} s = {rate:.2f} points/s (target >= 50); "
              f"{summary.failed + warm.failed} failed")
        return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("sweep", "report"))
    parser.add_argument("--points", type=int, default=60, help="points in the throughput sweep")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="bert-base")
    parser.add_argument("--report-points", type=int, default=10_000)
    args = parser.parse_args()
    if args.only in (None, "sweep"):
        bench_sweep(args.points, args.workers, args.model)
    if args.only in (None, "report"):
        bench_report(args.report_points)


if __name__ == "__main__":
    main()
