"""Search against the grid: how much of the grid's Pareto front a multi-objective search finds, and how fast.

    python -m benchmarks.bench_search                       # runs the 600-point grid first (a few minutes)
    python -m benchmarks.bench_search --grid runs/sweeps/bert_ner_design_space   # reuse a finished grid

The space is sweeps/bert_ner_design_space.yaml (array shape x scratchpad x cores x DRAM type x precision, 585
points after the area constraint). The grid is the reference: the hypervolume of its feasible latency x energy
front (in decades, within the box from the best to 1.1x the worst feasible value) is 100%. Each search (nsga2 and
tpe, seeds 0, 1, 2, budget 150) then runs through `chipsim.app.search.run_search` with the real store and plan
logic; its points are looked up in the grid's store instead of simulated again (the same configs give the same
records, so the search sees exactly what it would compute). Printed per search: the hypervolume it reached as a
share of the grid's, and after how many evaluations it first reached 95%.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from chipsim.app.runconfig import RunConfig
from chipsim.app.search import run_search
from chipsim.app.sweep import local_executor, run_sweep
from chipsim.app.sweep_plan import (
    JsonValue,
    Sampling,
    SamplingMethod,
    build_plan,
    load_sweep,
    point_key,
)
from reports.store import PointStatus, SweepStore
from reports.table import hypervolume_box, hypervolume_fraction, load_results

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ROOT / "sweeps" / "bert_ner_design_space.yaml"
TARGET_SHARE = 0.95
BUDGET = 150


def run_grid(out: Path) -> float:
    plan = build_plan(load_sweep(SWEEP))
    t0 = time.perf_counter()
    with SweepStore.for_sweep(out, plan.store_header()) as store, local_executor(2) as pool:
        run_sweep(plan, store, pool, parallelism=2)
    return time.perf_counter() - t0


def lookup_evaluator(grid: Path):  # type: ignore[no-untyped-def]
    """Records of the grid's points by key: what the search would compute for the same configs."""
    store = SweepStore.open(grid)
    try:
        by_key = {p.key: p for p in store.points() if p.status is not None}
    finally:
        store.close()

    def evaluate(config: RunConfig) -> dict[str, JsonValue]:
        found = by_key[point_key(config.sha256())]
        if found.status is not PointStatus.OK or found.record is None:
            raise ValueError(found.error or "failed in the grid")
        return found.record

    return evaluate


def run_one(grid: Path, method: SamplingMethod, seed: int, box, grid_hv: float) -> tuple[float, int | None, float]:  # type: ignore[no-untyped-def]
    spec = load_sweep(SWEEP)
    spec = dataclasses.replace(spec, sampling=Sampling(method, None, seed, BUDGET))
    plan = build_plan(spec)
    evaluator = lookup_evaluator(grid)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "search"
        t0 = time.perf_counter()
        with SweepStore.for_sweep(out, plan.store_header()) as store, cf.ThreadPoolExecutor(2) as pool:
            run_search(plan, store, pool, parallelism=2, evaluator=evaluator)
        wall = time.perf_counter() - t0
        results = load_results(out)
    frame = results.frame.sort_values("plan_index")
    reached = None
    shares = []
    for n in range(1, len(frame) + 1):
        share = hypervolume_fraction(frame.iloc[:n], results.objectives, box) / grid_hv
        shares.append(share)
        if reached is None and share >= TARGET_SHARE:
            reached = n
    return shares[-1] if shares else 0.0, reached, wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", type=Path, help="a finished grid of sweeps/bert_ner_design_space.yaml to reuse")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        grid = a.grid
        if grid is None:
            grid = Path(tmp) / "grid"
            wall = run_grid(grid)
            print(f"grid: {wall:.0f} s for the 600-point plan on 2 workers")
        results = load_results(grid)
        frame = results.frame
        box = hypervolume_box(frame, results.objectives)
        assert box is not None, "the grid has no feasible point"
        grid_hv = hypervolume_fraction(frame, results.objectives, box)
        print(f"grid: {len(frame)} points, {int(frame['feasible'].sum())} feasible; front hypervolume {100 * grid_hv:.1f}% of the box")
        print(f"| search | seed | evaluations | hypervolume / grid's | evaluations to {TARGET_SHARE:.0%} | wall s |")
        print("|---|---:|---:|---:|---:|---:|")
        ordered = frame.sort_values("plan_index")
        first = hypervolume_fraction(ordered.iloc[:BUDGET], results.objectives, box) / grid_hv
        print(f"| grid's first {BUDGET} (its seeded random order) | 0 | {BUDGET} | {100 * first:.1f}% | | |")
        met = True
        for method in (SamplingMethod.NSGA2, SamplingMethod.TPE):
            finals = []
            for seed in (0, 1, 2):
                share, reached, wall = run_one(grid, method, seed, box, grid_hv)
                finals.append(share)
                met &= method is not SamplingMethod.NSGA2 or (reached is not None and reached <= BUDGET)
                print(f"| {method.value} | {seed} | {BUDGET} | {100 * share:.1f}% | {reached if reached else 'not reached'} | {wall:.1f} |")
            print(f"| {method.value} | mean | | {100 * float(np.mean(finals)):.1f}% | | |")
        print(f"target: nsga2 reaches {TARGET_SHARE:.0%} of the grid's hypervolume within {BUDGET} evaluations on 3 seeds: "
              f"{'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
