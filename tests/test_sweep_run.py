"""Running sweeps with the real simulator (bert-tiny, short sequences, timing only): threads, local processes,
Dask (LocalCluster), failed points, the results store (resume after a real SIGKILL), exports and bad folders."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from chipsim.app.cli import app, main
from reports.store import STORE_FILE, PointStatus, SweepStore
from chipsim.app.sweep import run_sweep
from chipsim.app.sweep_plan import SweepError, build_plan, load_sweep

BASE = {"chip": "default", "workload": {"model": "bert-tiny", "seq_len": 16}}
SMALL = {
    "name": "tiny",
    "base": BASE,
    "axes": {
        "core.tensor_core": [{"rows": 16, "cols": 16}, {"rows": 64, "cols": 64}],
        "dram.type": ["hbm2e", "ddr4"],
        # 1 KiB of scratchpad holds no tile of bert-tiny: those points fail in the mapper (and are recorded)
        "core.scratchpad.size_kib": [1, 512],
    },
    "constraints": ["power_w <= 1000"],
}


def flat(result: object) -> str:
    """A CLI result's output with line wrapping undone."""
    return " ".join(getattr(result, "output").split())


def write_sweep(tmp_path: Path, data: dict[str, object], name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_points_run_failures_are_recorded_and_never_stop_the_sweep(tmp_path: Path) -> None:
    plan = build_plan(load_sweep(write_sweep(tmp_path, SMALL)))
    assert len(plan.points) == 8
    with SweepStore.for_sweep(tmp_path / "out", plan.store_header()) as store, cf.ThreadPoolExecutor(2) as pool:
        summary = run_sweep(plan, store, pool, parallelism=2)
        points = store.points()
    assert (summary.ran, summary.failed, summary.remaining) == (8, 4, 0)
    for p in points:
        small_sram = p.axis_values["core.scratchpad.size_kib"] == 1
        assert p.status is (PointStatus.FAILED if small_sram else PointStatus.OK)
        if small_sram:
            assert p.record is None and p.error is not None and "does not fit" in p.error
        else:
            assert p.record is not None and p.error is None
            assert p.record["cycles"] > 0 and 0 < p.record["utilization"] <= 1  # type: ignore[operator]
            assert p.record["config_sha256"] and p.record["per_layer"]
    ok = [p for p in points if p.status is PointStatus.OK]
    by_shape = {(p.axis_values["core.tensor_core"]["rows"], p.axis_values["dram.type"]): p.record["latency_s"] for p in ok}  # type: ignore[index]
    assert by_shape[(64, "hbm2e")] < by_shape[(16, "hbm2e")]  # a 16x larger array is faster on the same workload


def test_max_points_then_the_rest_on_local_processes(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, SMALL)
    out = tmp_path / "out"
    runner = CliRunner()
    first = runner.invoke(app, ["sweep", str(sweep), "--out", str(out), "--workers", "2", "--max-points", "3"])
    assert first.exit_code == 0, flat(first)
    assert "3 points computed" in flat(first) and "5 of 8 still to run" in flat(first)
    second = runner.invoke(app, ["sweep", str(sweep), "--out", str(out), "--workers", "2"])
    assert second.exit_code == 0, flat(second)
    assert "5 points computed" in flat(second) and "3 already done" in flat(second)
    with sqlite3.connect(out / STORE_FILE) as db:
        runs = dict(db.execute("SELECT run, COUNT(*) FROM points GROUP BY run").fetchall())
    assert runs == {1: 3, 2: 5}
    # The first 3 points of the plan are the ones run first.
    store = SweepStore.open(out)
    first_keys = {p.key for p in store.points() if p.run == 1}
    store.close()
    assert first_keys == {p.key for p in build_plan(load_sweep(sweep)).points[:3]}


def test_dask_cluster_runs_the_same_code_path(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    sweep = write_sweep(tmp_path, SMALL)
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        result = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(out), "--dask", cluster.scheduler_address])
    assert result.exit_code == 0, flat(result)
    assert "8 points computed (4 failed)" in flat(result)
    store = SweepStore.open(out)
    statuses = sorted(p.status.value for p in store.points() if p.status is not None)
    store.close()
    assert statuses == ["failed"] * 4 + ["ok"] * 4


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    data = {
        "name": "killme",
        "base": BASE,
        "axes": {
            "core.tensor_core": [{"rows": r, "cols": r} for r in (16, 32, 64, 128)],
            "dram.type": ["hbm2e", "lpddr5", "ddr4"],
            "workload.seq_len": [16, 32, 64],
            "clock_mhz": [800.0, 1000.0],
        },
    }
    sweep = write_sweep(tmp_path, data)
    out = tmp_path / "out"
    total = len(build_plan(load_sweep(sweep)).points)
    assert total == 72
    cmd = [sys.executable, "-m", "chipsim", "sweep", str(sweep), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        done = 0
        deadline = time.monotonic() + 120
        while done < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if (out / STORE_FILE).exists():
                try:
                    with sqlite3.connect(out / STORE_FILE, timeout=5) as db:
                        done = db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
                except sqlite3.OperationalError:  # the schema is being created
                    pass
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, mid-point
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(out / STORE_FILE) as db:
        before = dict(db.execute("SELECT key, finished_unix_s FROM points").fetchall())
    assert 5 <= len(before) < total
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"{total - len(before)} points computed" in result.stdout
    with sqlite3.connect(out / STORE_FILE) as db:
        rows = db.execute("SELECT key, finished_unix_s, run FROM points").fetchall()
        planned = {k for (k,) in db.execute("SELECT key FROM plan")}
    assert len(rows) == total and {k for k, _, _ in rows} == planned  # none lost, none missing
    for key, finished, run in rows:  # the points finished before the kill were not computed again
        if key in before:
            assert (finished, run) == (before[key], 1)
        else:
            assert run == 2


def test_results_export_parquet_and_csv(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, SMALL)
    out = tmp_path / "out"
    plan = build_plan(load_sweep(sweep))
    with SweepStore.for_sweep(out, plan.store_header()) as store, cf.ThreadPoolExecutor(2) as pool:
        run_sweep(plan, store, pool, parallelism=2, max_points=6)
    runner = CliRunner()
    for fmt in ("parquet", "csv"):
        target = tmp_path / f"points.{fmt}"
        result = runner.invoke(app, ["results", str(out), "--format", fmt, "-o", str(target)])
        assert result.exit_code == 0, flat(result)
        assert "wrote 6 points" in flat(result) and "2 planned points not run yet" in flat(result)
        frame = pd.read_parquet(target) if fmt == "parquet" else pd.read_csv(target)
        assert len(frame) == 6
        for column in ("core.tensor_core", "dram.type", "core.scratchpad.size_kib", "status", "error", "latency_s", "energy_j", "area_mm2", "feasible", "energy_mac_j"):
            assert column in frame.columns
        assert set(frame["core.tensor_core"]) <= {"16x16", "64x64"}
        failed = frame[frame["status"] == "failed"]
        assert failed["latency_s"].isna().all() and failed["error"].notna().all()
        ok = frame[frame["status"] == "ok"]
        assert (ok["latency_s"] > 0).all() and ok["feasible"].all()


def cli_error(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Run `chipsim ARGS` as the console script does; it must exit 2 with one `error:` sentence."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["chipsim", *args])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    return " ".join(err.split())


def test_bad_sweeps_and_folders_exit_2_with_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def error(args: list[str]) -> str:
        return cli_error(args, capsys, monkeypatch)

    out = tmp_path / "out"
    sweep = write_sweep(tmp_path, SMALL)
    with SweepStore.for_sweep(out, build_plan(load_sweep(sweep)).store_header()):
        pass
    other = write_sweep(tmp_path, {**SMALL, "name": "other", "axes": {"dram.type": ["hbm2e", "ddr4"]}}, "other.yaml")
    text = error(["sweep", str(other), "--out", str(out)])
    assert f"output folder {out} holds results of a different sweep (tiny from" in text
    assert load_sweep(sweep).identity_sha256() == SweepStore.open(out).sweep().identity_sha256  # untouched

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert "is not empty and holds no chipsim sweep" in error(["sweep", str(sweep), "--out", str(busy)])

    bad_axis = write_sweep(tmp_path, {**SMALL, "axes": {"core.tensor_core.colz": [8]}}, "bad.yaml")
    assert "axis chip.core.tensor_core.colz: unknown field; did you mean 'cols'?" in error(["sweep", str(bad_axis)])

    strict = write_sweep(tmp_path, {**SMALL, "name": "strict", "axes": {"dram.type": ["hbm2e", "ddr4"]}, "constraints": ["power_w <= 0.000001"]}, "strict.yaml")
    text = error(["sweep", str(strict), "--out", str(tmp_path / "strict"), "--workers", "1", "--max-points", "2"])
    assert "satisfies the constraints (power_w <= 0.000001); the results are kept in" in text

    assert "holds no sweep results" in error(["report", str(tmp_path / "nowhere")])
    assert "--format 'xlsx' is not supported" in error(["results", str(out), "--format", "xlsx", "-o", str(tmp_path / "x.xlsx")])
    assert "names axis 'nope'" in error(["report", str(out), "--heatmap", "nope,dram.type"])


def test_store_refuses_a_second_sweep_while_one_runs(tmp_path: Path) -> None:
    plan = build_plan(load_sweep(write_sweep(tmp_path, SMALL)))
    with SweepStore.for_sweep(tmp_path / "out", plan.store_header()):
        with pytest.raises(SweepError, match="in use by another running chipsim sweep"):
            SweepStore.for_sweep(tmp_path / "out", plan.store_header())


class _LostCluster(cf.Executor):
    """An executor whose futures fail as a lost Dask cluster's do (cancelled), or never finish."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        future: cf.Future[object] = cf.Future()
        if not self.hang:
            future.cancel()
            future.set_running_or_notify_cancel()
        return future


def test_a_lost_cluster_leaves_points_pending_and_stops(tmp_path: Path) -> None:
    """Cancelled futures are the cluster's failure, not the points': nothing is stored as failed, and the sweep
    stops with one sentence (before: stored as permanently failed 'CancelledError', then hung)."""
    plan = build_plan(load_sweep(write_sweep(tmp_path, SMALL)))
    with SweepStore.for_sweep(tmp_path / "out", plan.store_header()) as store:
        with pytest.raises(SweepError, match="points in flight stay pending: run the same command again to resume"):
            run_sweep(plan, store, _LostCluster(), parallelism=2)
    assert SweepStore.open(tmp_path / "out").done_keys() == set()


def test_a_cluster_without_workers_is_reported_not_waited_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import chipsim.app.sweep as sweep_module

    monkeypatch.setattr(sweep_module, "HEALTH_CHECK_S", 0.05)
    plan = build_plan(load_sweep(write_sweep(tmp_path, SMALL)))
    with SweepStore.for_sweep(tmp_path / "out", plan.store_header()) as store:
        with pytest.raises(SweepError, match="has had no workers"):
            run_sweep(plan, store, _LostCluster(hang=True), parallelism=2,
                      health=lambda: "the Dask cluster at tcp://x:1 has had no workers for 30 s")
    assert SweepStore.open(tmp_path / "out").done_keys() == set()


def test_a_sweep_whose_every_point_fails_exits_2(tmp_path: Path) -> None:
    data = {"name": "allfail", "base": {"chip": "default", "workload": {"model": "bert-tiny", "seq_len": 16}},
            "axes": {"core.scratchpad.size_kib": [1, 2]}}
    sweep = write_sweep(tmp_path, data)
    r = subprocess.run([sys.executable, "-m", "chipsim", "sweep", str(sweep), "--out", str(tmp_path / "out"), "--workers", "1"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "every one of the 2 computed points failed" in r.stderr and "Traceback" not in r.stderr
