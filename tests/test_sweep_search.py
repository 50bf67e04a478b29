"""Search instead of enumeration: nsga2 / tpe sampling on optuna, through the real plan, store and report code.

The evaluator here is a synthetic landscape over the axis values (instant, deterministic), so the tests exercise
the search loop itself: budgets, determinism, resume, constraints, failures; one test runs the real simulator.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from chipsim.app.runconfig import RunConfig
from chipsim.app.search import run_search
from chipsim.app.sweep_plan import SweepError, build_plan, parse_sweep
from reports.store import SweepStore
from reports.table import (
    hypervolume_2d,
    hypervolume_box,
    hypervolume_fraction,
    load_results,
)

ROOT = Path(__file__).resolve().parent.parent
AXES = {
    "core.tensor_core": [{"rows": r, "cols": r} for r in (8, 16, 32, 64, 128, 256)],
    "core.scratchpad.size_kib": [128, 256, 512, 1024, 2048, 4096],
    "dram.type": ["hbm2e", "lpddr5", "ddr4"],
}


def spec(tmp_path: Path, method: str = "nsga2", budget: int = 30, seed: int = 0, **extra):  # type: ignore[no-untyped-def]
    data = {"name": "s", "base": "default", "axes": AXES, "sampling": {"method": method, "budget": budget, "seed": seed},
            "objectives": [{"minimize": "latency_s"}, {"minimize": "energy_j"}], **extra}
    return parse_sweep(data, source=str(tmp_path / "s.yaml"), sweep_dir=ROOT)


def landscape(config: RunConfig) -> dict[str, object]:
    """A trade-off: bigger arrays and SRAM are faster but cost energy; HBM is fast and frugal, DDR4 neither."""
    core = config.chip.core
    r, kib = core.tensor_core.rows, core.scratchpad.size_kib
    dram = {"hbm2e": 1.0, "lpddr5": 1.6, "ddr4": 2.5}[config.chip.dram.type.value]
    if r == 8 and kib == 128:
        raise ValueError("does not fit: the scratchpad is too small for any tile")
    latency = dram * (1e-3 / math.log2(r) + 2e-4 / math.log2(kib))
    energy = dram * (1e-4 * math.log2(r) ** 1.5 + 2e-5 * math.log2(kib))
    return {"cycles": latency * 1e9, "latency_s": latency, "energy_j": energy, "area_mm2": r * r / 100 + kib / 50,
            "power_w": energy / latency, "utilization": 0.5}


def search(tmp_path: Path, s, out: str = "out", evaluator=landscape) -> list[str]:  # type: ignore[no-untyped-def]
    plan = build_plan(s)
    assert plan.points == ()  # a search plans nothing up front
    with SweepStore.for_sweep(tmp_path / out, plan.store_header()) as store, cf.ThreadPoolExecutor(2) as pool:
        run_search(plan, store, pool, parallelism=2, evaluator=evaluator)
    store = SweepStore.open(tmp_path / out)
    try:
        return [p.key for p in store.points()]
    finally:
        store.close()


@pytest.mark.parametrize(
    "sampling,message",
    [
        ({"method": "nsga2"}, "needs the number of points to evaluate, e.g. budget: 150"),
        ({"method": "tpe", "points": 20}, "write budget: 20 instead"),
        ({"method": "grid", "budget": 20}, "only a search (method: nsga2 or tpe) has a budget"),
        ({"method": "bayesian", "budget": 20}, "must be one of grid, random, lhs, nsga2, tpe"),
        ({"method": "nsga2", "budget": 0}, "sampling.budget: got 0; must be an integer from 1 to"),
    ],
)
def test_bad_search_sampling_is_one_sentence(tmp_path, sampling, message) -> None:
    with pytest.raises(SweepError, match=re.escape(message)):
        parse_sweep({"base": "default", "axes": AXES, "sampling": sampling}, source="s.yaml", sweep_dir=ROOT)


@pytest.mark.parametrize("method", ["nsga2", "tpe"])
def test_search_evaluates_its_budget_of_distinct_points_deterministically(tmp_path, method) -> None:
    first = search(tmp_path, spec(tmp_path, method, budget=30), "a")
    again = search(tmp_path, spec(tmp_path, method, budget=30), "b")
    assert len(first) == len(set(first)) == 30
    assert first == again  # the same seed asks the same points in the same order, whatever the workers' timing
    other = search(tmp_path, spec(tmp_path, method, budget=30, seed=1), "c")
    assert other != first


def test_search_continues_from_the_store_with_a_larger_budget(tmp_path) -> None:
    short = search(tmp_path, spec(tmp_path, budget=12))
    longer = search(tmp_path, spec(tmp_path, budget=30))
    assert longer[:12] == short and len(longer) == len(set(longer)) == 30  # nothing lost, nothing repeated


def test_a_killed_search_finishes_its_planned_points_first(tmp_path) -> None:
    s = spec(tmp_path, budget=10)
    search(tmp_path, s)
    # A kill between planning a point and storing its result leaves a plan row without a result.
    plan = build_plan(s)
    store = SweepStore.for_sweep(tmp_path / "out", plan.store_header())
    try:
        from chipsim.app.sweep_plan import plan_point

        point, _ = plan_point(s, (5, 5, 0), 10)
        store.add_planned(10, point.key, {"core.tensor_core": {"rows": 256, "cols": 256}, "core.scratchpad.size_kib": 4096, "dram.type": "hbm2e"})
    finally:
        store.close()
    assert load_results(tmp_path / "out").pending == 1
    keys = search(tmp_path, spec(tmp_path, budget=14))
    results = load_results(tmp_path / "out")
    assert results.pending == 0 and len(keys) == len(set(keys)) == 14
    assert point.key in set(results.frame["key"])


def test_constraints_steer_and_area_constraints_are_never_run(tmp_path) -> None:
    evaluated: list[float] = []

    def counting(config: RunConfig) -> dict[str, object]:
        record = landscape(config)
        evaluated.append(float(record["area_mm2"]))  # type: ignore[arg-type]
        return record

    from chipsim.area import area_breakdown

    s = spec(tmp_path, budget=20, constraints=["area_mm2 <= 60", "power_w <= 0.3"])
    search(tmp_path, s, evaluator=counting)
    results = load_results(tmp_path / "out")
    for key in results.frame["key"]:
        row = results.frame[results.frame["key"] == key].iloc[0]
        assert row["status"] in ("ok", "failed")
    # every point that ran passed the (static) area constraint on the real area model
    store = SweepStore.open(tmp_path / "out")
    try:
        for p in store.points():
            cfg = build_plan(s)  # noqa: F841 - the plan is empty for a search; areas come from each stored config
            rows = p.axis_values["core.tensor_core"]["rows"]  # type: ignore[index]
            data = json.loads(json.dumps(s.base))
            data["chip"]["core"]["tensor_core"].update(p.axis_values["core.tensor_core"])  # type: ignore[union-attr]
            data["chip"]["core"]["scratchpad"]["size_kib"] = p.axis_values["core.scratchpad.size_kib"]
            data["chip"]["dram"]["type"] = p.axis_values["dram.type"]
            assert area_breakdown(RunConfig.model_validate(data).chip)["total"] <= 60, rows
    finally:
        store.close()
    assert len(evaluated) == len(results.frame) - int((results.frame["status"] == "failed").sum())


def test_failed_points_are_stored_with_their_error_and_do_not_stop_the_search(tmp_path) -> None:
    keys = search(tmp_path, spec(tmp_path, "tpe", budget=40, seed=3))
    frame = load_results(tmp_path / "out").frame
    assert len(keys) == 40
    failed = frame[frame["status"] == "failed"]
    assert all("does not fit" in e for e in failed["error"])


def test_nsga2_finds_most_of_the_front_of_a_small_space(tmp_path) -> None:
    """108 combinations; the grid is the reference. With 45 evaluations the search's front covers >= 90% of the
    grid's hypervolume (the benchmark checks the issue's 95%-in-150 on the real design space)."""
    grid_spec = parse_sweep({"name": "g", "base": "default", "axes": AXES, "sampling": {"method": "grid"}},
                            source=str(tmp_path / "g.yaml"), sweep_dir=ROOT)
    from chipsim.app.sweep import run_sweep

    gplan = build_plan(grid_spec)
    with SweepStore.for_sweep(tmp_path / "grid", gplan.store_header()) as store, cf.ThreadPoolExecutor(2) as pool:
        run_sweep(gplan, store, pool, parallelism=2, evaluator=landscape)
    grid = load_results(tmp_path / "grid")
    box = hypervolume_box(grid.frame, grid.objectives)
    assert box is not None
    search(tmp_path, spec(tmp_path, budget=45))
    found = load_results(tmp_path / "out")
    share = hypervolume_fraction(found.frame, found.objectives, box) / hypervolume_fraction(grid.frame, grid.objectives, box)
    assert 0.9 <= share <= 1.0 + 1e-12


def test_hypervolume_2d_by_hand() -> None:
    # Front (1, 3), (2, 1) under reference (4, 4): the strip x in [1, 2) up to y = 3 (1 x 1), then x in [2, 4)
    # up to y = 1 (2 x 3): 7. A dominated point adds nothing.
    pts = np.array([[1.0, 3.0], [2.0, 1.0], [3.0, 3.5]])
    assert hypervolume_2d(pts, np.array([4.0, 4.0])) == pytest.approx(1 * 1 + 2 * 3)
    assert hypervolume_2d(np.array([[5.0, 1.0]]), np.array([4.0, 4.0])) == 0.0


def test_search_on_the_real_simulator_and_its_report(tmp_path) -> None:
    """A tiny nsga2 search through `chipsim sweep` and `chipsim report` (bert-tiny, timing only)."""
    import subprocess
    import sys

    import yaml

    sweep = tmp_path / "search.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "tiny_search", "base": "default",
        "axes": {"core.tensor_core": [{"rows": 16, "cols": 16}, {"rows": 64, "cols": 64}, {"rows": 128, "cols": 128}],
                 "dram.type": ["hbm2e", "lpddr5"], "workload.model": ["bert-tiny"], "workload.seq_len": [32]},
        "sampling": {"method": "nsga2", "budget": 4, "seed": 0},
    }))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "chipsim", "sweep", str(sweep), "--out", str(out), "--workers", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "a nsga2 search of 4 points" in r.stdout
    frame = load_results(out).frame
    assert len(frame) == 4 and (frame["status"] == "ok").all()
    r = subprocess.run([sys.executable, "-m", "chipsim", "report", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (out / "report" / "hypervolume.png").is_file()
    assert "nsga2 search, budget 4, seed 0" in (out / "report" / "index.html").read_text()


def test_search_resumes_after_sigkill_losing_and_repeating_nothing(tmp_path) -> None:
    """`chipsim sweep` on a search, killed with SIGKILL mid-run (workers too), then run again to its budget."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    import yaml

    sweep = tmp_path / "kill.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "killsearch", "base": {"chip": "default", "workload": {"model": "bert-tiny", "seq_len": 16}},
        "axes": {"core.tensor_core": [{"rows": r, "cols": r} for r in (16, 32, 64, 128)],
                 "dram.type": ["hbm2e", "lpddr5", "ddr4"], "workload.seq_len": [16, 32, 64]},
        "sampling": {"method": "nsga2", "budget": 16, "seed": 0},
    }))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "chipsim", "sweep", str(sweep), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        done, deadline = 0, time.monotonic() + 120
        while done < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if (out / "sweep.sqlite").exists():
                try:
                    with sqlite3.connect(out / "sweep.sqlite", timeout=5) as db:
                        done = db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(out / "sweep.sqlite") as db:
        before = dict(db.execute("SELECT key, finished_unix_s FROM points").fetchall())
    assert 4 <= len(before) < 16
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(out / "sweep.sqlite") as db:
        rows = db.execute("SELECT key, finished_unix_s, run FROM points").fetchall()
        planned = [k for (k,) in db.execute("SELECT key FROM plan ORDER BY plan_index")]
    assert len(rows) == 16 and len(planned) == len(set(planned)) == 16 and {k for k, _, _ in rows} == set(planned)
    for key, finished, run in rows:  # the points finished before the kill were not computed again
        if key in before:
            assert (finished, run) == (before[key], 1)
        else:
            assert run == 2
