"""The sweep report: built from a real (small) sweep, every plot written, and the page renders in headless
Chromium with a non-blank screenshot and no console errors."""

from __future__ import annotations

import concurrent.futures as cf
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from reports.store import SweepStore
from chipsim.app.sweep import run_sweep
from chipsim.app.sweep_plan import build_plan, parse_sweep
from reports.report import build_report
from reports.table import best_designs, load_results

CHROMIUM = Path("/usr/bin/chromium")

SWEEP = {
    "name": "render",
    "base": {"chip": "default", "workload": {"model": "bert-tiny", "seq_len": 16}},
    "axes": {
        "core.tensor_core": [{"rows": 16, "cols": 16}, {"rows": 32, "cols": 32}, {"rows": 64, "cols": 64}],
        "dram.type": ["hbm2e", "ddr4"],
        "core.tensor_core.precision": ["int8", "bf16"],
        "core.scratchpad.size_kib": [1, 256],  # 1 KiB: the mapper finds no tile (failed points)
    },
    "constraints": ["area_mm2 <= 30"],
}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "sweep"
    plan = build_plan(parse_sweep(SWEEP, source="render.yaml", sweep_dir=Path(".")))
    with SweepStore.for_sweep(out, plan.store_header()) as store, cf.ThreadPoolExecutor(2) as pool:
        run_sweep(plan, store, pool, parallelism=2)
    return out


def test_report_writes_every_plot_and_embeds_them(sweep_dir: Path) -> None:
    report = build_report(sweep_dir, heatmap=("dram.type", "core.tensor_core"))
    names = {p.name for p in report.plots}
    assert names == {"pareto", "area", "sensitivity", "utilization_heatmap", "mapping_efficiency_heatmap", "best_layers",
                     "best_roofline", "hypervolume"}
    for plot in report.plots:
        assert plot.png_path.read_bytes().startswith(b"\x89PNG") and plot.svg_path.read_text().lstrip().startswith("<?xml")
    page = report.html_path.read_text()
    assert page.count("src='data:image/png;base64,") == len(report.plots)
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org", "")  # self-contained
    results = load_results(sweep_dir)
    best = best_designs(results)
    assert len(best) >= 1 and best["feasible"].all() and (best["area_mm2"] <= 30).all()
    assert page.count("<tr>") >= len(best) + 1
    assert "does not fit" in page  # the failed points are listed with their error
    where = page[page.index("<h2>Where the cycles go"):page.index("<h2>Plots")]
    # a header, then the kinds summed over the layers: the output projection and FFN2 each share a phase with the
    # LayerNorm after them (mapper.kernels.hands_rows), the fused projection one with the attention (feeds_heads)
    assert where.count("<tr>") == 1 + 6
    for kind in ("qkv+attn", "ffn1", "ffn2+ln2", "attn_out+ln1", "emb", "cls"):
        assert f"<td>{kind}</td>" in where
    with Image.open(report.plots[0].png_path) as im:
        assert im.size[0] > 500 and im.size[1] > 300


def _chromium(page: Path, tmp_path: Path) -> tuple[Path, str]:
    shot = tmp_path / f"{page.stem}.png"
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
        "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri(),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), result.stderr[-2000:]
    return shot, result.stderr


def _console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if re.search(r"CONSOLE|Uncaught|SyntaxError", line)]


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("metric", ["utilization", "mapping_efficiency"])
def test_a_heatmaps_cells_are_the_mean_of_its_metric_over_the_other_axes(sweep_dir: Path, metric: str) -> None:
    """Each cell of the utilization and the mapping-efficiency (bound / cycles) heatmaps is its metric's mean, in
    percent, over the points with that cell's two axis values (the other axes averaged out)."""
    import numpy as np
    import pandas as pd

    from reports import plots

    results = load_results(sweep_dir)
    ok = plots.with_units(results.frame)
    labels = {name: values for name, _, values in results.sweep.axes}
    x, y = "core.tensor_core", "dram.type"
    fig = plots.heatmap_plot(ok, (x, labels[x]), (y, labels[y]), results.frame, metric)
    grid = np.asarray(fig.axes[0].images[0].get_array())
    xs = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ys = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    done = ok[pd.to_numeric(ok[metric], errors="coerce").notna()]
    assert len(done) and 0 < done[metric].astype(float).max() <= 1
    for (xv, yv), cell in done.groupby([done[x].map(plots._label), done[y].map(plots._label)]):
        assert grid[ys.index(yv), xs.index(xv)] == pytest.approx(100 * cell[metric].astype(float).mean())


def test_report_renders_in_headless_chromium(sweep_dir: Path, tmp_path: Path) -> None:
    report = build_report(sweep_dir)
    shot, log = _chromium(report.html_path, tmp_path)
    assert _console_errors(log) == []
    with Image.open(shot) as im:
        gray = im.convert("L")
        histogram = gray.histogram()
        dark = sum(histogram[:128]) / (gray.size[0] * gray.size[1])
        assert gray.size == (1200, 2400)
        assert len(gray.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50  # plots, not a blank page
        assert dark > 0.005  # text and markers drawn on the white page

    # The detector sees a console error when a page has one (so an empty list above means something).
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><p>x</p><script>throw new Error('boom')</script></body></html>")
    _, log = _chromium(broken, tmp_path)
    assert any("boom" in line for line in _console_errors(log))


def test_report_cli_notes_what_it_left_out(sweep_dir: Path) -> None:
    report = build_report(sweep_dir)
    assert any("F1 vs energy needs functional points" in n for n in report.notes)
    # the command prints the same notes (run as the other CLI tests do: this interpreter, no PATH lookup)
    r = subprocess.run([sys.executable, "-m", "chipsim", "report", str(sweep_dir)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "note: F1 vs energy needs functional points" in r.stdout


def test_f1_against_energy_when_precision_varies_on_functional_points(tmp_path: Path) -> None:
    """Functional points record the chip's entity F1 (on held-out tweets), so precision joins the design space."""
    spec = {
        "name": "f1",
        "base": {"chip": "default", "workload": {"model": "bert-ner-wnut", "seq_len": 32, "batch": 4, "test_sentences": 8}},
        "functional": True,
        "axes": {"core.tensor_core.precision": ["int8", "bf16"], "core.tensor_core": [{"rows": 32, "cols": 32}, {"rows": 64, "cols": 64}]},
    }
    plan = build_plan(parse_sweep(spec, source="f1.yaml", sweep_dir=Path(".")))
    out = tmp_path / "f1"
    with SweepStore.for_sweep(out, plan.store_header()) as store, cf.ThreadPoolExecutor(1) as pool:
        run_sweep(plan, store, pool, parallelism=1)
    frame = load_results(out).frame
    assert len(frame) == 4 and (frame["status"] == "ok").all()
    assert frame["f1_chip"].notna().all() and frame["f1_chip"].between(0.0, 1.0).all()
    report = build_report(out)
    assert "f1_vs_energy" in {p.name for p in report.plots}
