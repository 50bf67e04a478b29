"""The sweep report's plots (matplotlib, Agg backend): each function draws one figure from the results table.

Every figure is saved as PNG and SVG by `save`; the HTML report embeds the PNG bytes.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - after selecting the backend
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from reports.figures import JsonValue  # noqa: E402
from reports.table import pareto_mask  # noqa: E402

plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False})

LATENCY_MS = "latency_ms"
ENERGY_MJ = "energy_per_inference_mj"


@dataclass(frozen=True, slots=True)
class SavedPlot:
    name: str
    title: str
    png: bytes
    png_path: Path
    svg_path: Path


def _plain(value: float, _: int) -> str:
    return f"{value:g}"


def log_axes(ax: plt.Axes, *, x: bool = True, y: bool = True) -> None:
    """Log scale with plain tick labels (0.5, 1, 2, 5, 10 rather than 5x10^-1)."""
    for on, set_scale, axis in ((x, ax.set_xscale, ax.xaxis), (y, ax.set_yscale, ax.yaxis)):
        if on:
            set_scale("log")
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(_plain))
            axis.set_minor_formatter(NullFormatter())


def save(fig: Figure, directory: Path, name: str, title: str) -> SavedPlot:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    png = buffer.getvalue()
    png_path = directory / f"{name}.png"
    svg_path = directory / f"{name}.svg"
    png_path.write_bytes(png)
    fig.savefig(svg_path, format="svg", bbox_inches="tight")
    plt.close(fig)
    return SavedPlot(name, title, png, png_path, svg_path)


def with_units(frame: pd.DataFrame) -> pd.DataFrame:
    """The ok points with latency in ms and energy per inference in mJ (the units the plots show)."""
    ok = frame[frame["status"] == "ok"].copy()
    ok[LATENCY_MS] = pd.to_numeric(ok["latency_s"], errors="coerce") * 1e3
    ok[ENERGY_MJ] = pd.to_numeric(ok["energy_per_inference_j"], errors="coerce") * 1e3
    return ok


def _front_line(ax: plt.Axes, x: np.ndarray, y: np.ndarray, *, maximize_y: bool = False, label: str) -> None:
    """Draw the non-dominated staircase of (min x, min y) (or max y) points."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        return
    mask = pareto_mask(np.column_stack([x, -y if maximize_y else y]))
    order = np.argsort(x[mask])
    ax.step(x[mask][order], y[mask][order], where="post", color="crimson", lw=1.4, label=label, zorder=4)
    ax.scatter(x[mask], y[mask], s=28, facecolors="none", edgecolors="crimson", lw=1.2, zorder=5)


def pareto_plot(ok: pd.DataFrame) -> Figure:
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    feasible = ok[ok["feasible"]]
    infeasible = ok[~ok["feasible"]]
    area = pd.to_numeric(ok["area_mm2"], errors="coerce")
    vmin, vmax = float(area.min()), float(area.max())
    if len(infeasible):
        ax.scatter(infeasible[LATENCY_MS], infeasible[ENERGY_MJ], s=10, c="lightgray", marker="x", lw=0.8, label="violates a constraint", zorder=2)
    sc = ax.scatter(feasible[LATENCY_MS], feasible[ENERGY_MJ], s=14, c=feasible["area_mm2"], cmap="viridis", vmin=vmin, vmax=vmax, alpha=0.85, lw=0, label="feasible design", zorder=3)
    _front_line(ax, feasible[LATENCY_MS].to_numpy(float), feasible[ENERGY_MJ].to_numpy(float), label="Pareto front (feasible)")
    fig.colorbar(sc, ax=ax, label="area (mm²)")
    log_axes(ax)
    ax.set_xlabel("latency per inference (ms)")
    ax.set_ylabel("energy per inference (mJ)")
    ax.set_title("Latency vs energy per inference")
    _legend_below(ax)
    return fig


def _legend_below(ax, columns: int = 3) -> None:  # type: ignore[no-untyped-def]
    """The legend under the axes, so that it covers no point."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=columns, fontsize=8, frameon=False)


def area_plot(ok: pd.DataFrame) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    colors = np.where(ok["feasible"], "tab:blue", "lightgray")
    area = ok["area_mm2"].to_numpy(float)
    left.scatter(area, ok[ENERGY_MJ], s=10, c=colors, lw=0, alpha=0.8)
    _front_line(left, area, ok[ENERGY_MJ].to_numpy(float), label="best energy for the area")
    log_axes(left)
    left.set_xlabel("area (mm²)")
    left.set_ylabel("energy per inference (mJ)")
    left.set_title("Energy vs area")
    ips = pd.to_numeric(ok["inferences_per_s"], errors="coerce").to_numpy(float)
    right.scatter(area, ips, s=10, c=colors, lw=0, alpha=0.8)
    _front_line(right, area, ips, maximize_y=True, label="most inferences/s for the area")
    log_axes(right)
    right.set_xlabel("area (mm²)")
    right.set_ylabel("inferences / s")
    right.set_title("Throughput vs area")
    for ax in (left, right):
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _ordered_labels(column: pd.Series, labels: tuple[str, ...]) -> list[str]:
    present = {str(v) for v in column.dropna().map(_label)}
    return [lab for lab in labels if lab in present] or sorted(present)


def _label(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def sensitivity_plot(ok: pd.DataFrame, axes: tuple[tuple[str, tuple[str, ...]], ...]) -> Figure:
    """Per axis (column): latency and energy per inference (rows) for each value of the axis, as box plots."""
    varied = [(name, labels) for name, labels in axes if len(labels) > 1]
    ncols = max(1, len(varied))
    fig, grid = plt.subplots(2, ncols, figsize=(max(4.0, 2.6 * ncols), 5.6), squeeze=False, sharey="row")
    for col, (name, labels) in enumerate(varied):
        keys = ok[name].map(_label)
        order = _ordered_labels(ok[name], labels)
        for row, (metric, ylabel) in enumerate(((LATENCY_MS, "latency (ms)"), (ENERGY_MJ, "energy / inference (mJ)"))):
            ax = grid[row][col]
            data = [ok.loc[keys == lab, metric].dropna().to_numpy(float) for lab in order]
            positions = [i for i, d in enumerate(data) if d.size]
            if positions:
                ax.boxplot([data[i] for i in positions], positions=positions, widths=0.6, showfliers=False,
                           medianprops={"color": "crimson"})
            ax.set_xticks(range(len(order)), order, rotation=45 if max(map(len, order)) > 5 else 0, ha="right" if max(map(len, order)) > 5 else "center")
            log_axes(ax, x=False)
            if col == 0:
                ax.set_ylabel(ylabel)
            if row == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle("Sensitivity: spread of each figure over the other axes, per axis value", fontsize=10)
    fig.tight_layout()
    return fig


HEATMAPS: dict[str, tuple[str, str]] = {  # metric -> (colour bar label, title)
    "utilization": ("mean utilization (%)", "Tensor-core utilization (mean over the other axes)"),
    # bound / cycles: how close the schedule comes to what the chip allows, so a dark cell here is the mapper's and
    # a dark cell only in the utilization map is the chip's (too big an array for the model, say)
    "mapping_efficiency": ("mean bound / cycles (%)", "Mapping efficiency: the chip's bound over the cycles (mean over the other axes)"),
}


def heatmap_plot(ok: pd.DataFrame, x: tuple[str, tuple[str, ...]], y: tuple[str, tuple[str, ...]],
                 finished: pd.DataFrame | None = None, metric: str = "utilization") -> Figure:
    """The mean of `metric` (a share, one of HEATMAPS) over two axes; with `finished` (every finished point, failed
    ones too) a cell whose every point failed is drawn hatched and labelled `failed`, not left blank like a cell
    that was never run."""
    bar_label, title = HEATMAPS[metric]
    both = ok if finished is None else finished
    xs = _ordered_labels(both[x[0]], x[1])
    ys = _ordered_labels(both[y[0]], y[1])
    table = (
        ok.assign(_x=ok[x[0]].map(_label), _y=ok[y[0]].map(_label), _u=pd.to_numeric(ok[metric], errors="coerce"))
        .groupby(["_y", "_x"])["_u"].mean()
    )
    grid = np.full((len(ys), len(xs)), np.nan)
    for (yy, xx), value in table.items():
        if yy in ys and xx in xs:
            grid[ys.index(yy), xs.index(xx)] = value
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(xs) + 2.5), max(3.0, 0.5 * len(ys) + 1.8)))
    image = ax.imshow(grid * 100, cmap="magma", vmin=0, vmax=100, aspect="auto", origin="lower")
    ax.grid(False)
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(x[0])
    ax.set_ylabel(y[0])
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(j, i, f"{value * 100:.0f}", ha="center", va="center", fontsize=8, color="white" if value < 0.6 else "black")
    if finished is not None:
        tried = {(_label(a), _label(b)) for a, b in zip(finished[y[0]], finished[x[0]])}
        for (i, j), value in np.ndenumerate(grid):
            if not np.isfinite(value) and (ys[i], xs[j]) in tried:  # points ran there, and every one failed
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="gray", lw=0))
                ax.text(j, i, "failed", ha="center", va="center", fontsize=7, color="dimgray")
    fig.colorbar(image, ax=ax, label=bar_label)
    ax.set_title(title)
    return fig


def _layer_group(name: str) -> str:
    """`l3.ffn1` -> `l*.ffn1`, `encoder.3.ffn1` -> `encoder.*.ffn1`: the block index becomes `*`
    (digits of the first segment and numeric segments; `ffn1` / `ln2` keep theirs)."""
    head, dot, rest = name.partition(".")
    rest = re.sub(r"(?:(?<=^)|(?<=[._/]))\d+(?=$|[._/])", "*", rest)
    return re.sub(r"\d+", "*", head) + dot + rest


def layers_plot(per_layer: list[dict[str, JsonValue]]) -> Figure:
    """Cycles per layer of one design (layers that repeat across encoder blocks summed), coloured by bound."""
    frame = pd.DataFrame(per_layer)
    frame["cycles"] = pd.to_numeric(frame["cycles"], errors="coerce")
    if "bound" not in frame:
        frame["bound"] = "unknown"
    frame["bound"] = frame["bound"].fillna("unknown").astype(str)
    grouped = len(frame) > 24
    if grouped:
        frame["group"] = frame["name"].astype(str).map(_layer_group)
        frame = frame.groupby("group", sort=False).agg(cycles=("cycles", "sum"), bound=("bound", lambda b: b.mode().iat[0])).reset_index().rename(columns={"group": "name"})
    frame = frame.sort_values("cycles", ascending=True)
    palette = {"compute": "tab:blue", "memory": "tab:orange", "dram": "tab:orange", "vector": "tab:green", "noc": "tab:purple"}
    colors = [palette.get(b, "tab:gray") for b in frame["bound"]]
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.26 * len(frame) + 1.2)))
    ax.barh(frame["name"].astype(str), frame["cycles"], color=colors)
    ax.set_xlabel("cycles")
    ax.set_title("Per-layer cycles of the best design" + (" (summed over the encoder blocks)" if grouped else ""))
    handles = [Patch(color=palette.get(b, "tab:gray"), label=f"{b}-bound") for b in dict.fromkeys(frame["bound"])]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.grid(axis="y", visible=False)
    return fig


def roofline_plot(per_layer: list[dict[str, JsonValue]], peak_macs_per_cycle: float, dram_bytes_per_cycle: float) -> Figure:
    """Per layer kind (`qkv`, `ffn1`, ... summed over the encoder's layers): MACs per DRAM byte against achieved
    MACs per cycle, under the chip's roofline, each point labelled."""
    frame = pd.DataFrame(per_layer)
    frame["group"] = frame["kind"].astype(str) if "kind" in frame else frame["name"].astype(str).map(_layer_group)
    for col in ("macs", "cycles", "dram_bytes"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    grouped = frame.groupby("group", sort=False)[["macs", "cycles", "dram_bytes"]].sum()
    macs, cycles, dram = (grouped[c].to_numpy(float) for c in ("macs", "cycles", "dram_bytes"))
    keep = (macs > 0) & (cycles > 0) & (dram > 0)
    names = [str(n) for n, k in zip(grouped.index, keep) if k]
    intensity = macs[keep] / dram[keep]
    achieved = macs[keep] / cycles[keep]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    lo = min(float(intensity.min()) if intensity.size else 1.0, peak_macs_per_cycle / dram_bytes_per_cycle) / 4
    hi = max(float(intensity.max()) if intensity.size else 10.0, peak_macs_per_cycle / dram_bytes_per_cycle) * 4
    xs = np.geomspace(lo, hi, 200)
    ax.plot(xs, np.minimum(peak_macs_per_cycle, xs * dram_bytes_per_cycle), color="black", lw=1.5, label="roofline")
    ax.scatter(intensity, achieved, s=22, c="tab:blue", alpha=0.8, label="layer kinds (summed over the encoder's layers)", zorder=3)
    for name, xi, yi in zip(names, intensity, achieved):
        ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7)
    log_axes(ax)
    ax.set_xlabel("operational intensity (MACs per DRAM byte)")
    ax.set_ylabel("achieved MACs per cycle")
    ax.set_title("Roofline of the best design")
    _legend_below(ax, columns=2)
    return fig


def f1_energy_plot(frame: pd.DataFrame, precision_axis: str | None) -> Figure:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    groups = frame.groupby(frame[precision_axis].map(_label)) if precision_axis else [("all", frame)]
    for name, group in groups:
        ax.scatter(group[ENERGY_MJ], group["f1_chip"], s=30, alpha=0.85, label=str(name))
    reference = pd.to_numeric(frame["f1_reference"], errors="coerce").dropna()
    if len(reference):
        ax.axhline(float(reference.iloc[0]), color="gray", ls="--", lw=1, label="fp32 reference F1")
    log_axes(ax, y=False)
    ax.set_xlabel("energy per inference (mJ)")
    ax.set_ylabel("entity F1 (from the chip)")
    ax.set_title("Task accuracy vs energy")
    ax.legend(title=precision_axis, fontsize=8)
    return fig


def hypervolume_plot(evaluations: np.ndarray, fraction: np.ndarray, how: str) -> Figure:
    """How fast the sweep found its front: hypervolume of the feasible front after each evaluation."""
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    ax.plot(evaluations, 100 * fraction, color="tab:blue", lw=1.5, drawstyle="steps-post")
    ax.axhline(100 * fraction[-1], color="gray", lw=0.8, ls="--", label=f"final: {100 * fraction[-1]:.1f}% after {int(evaluations[-1])} points")
    ax.set_xlabel("points evaluated")
    ax.set_ylabel("hypervolume (% of the box)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Front found over evaluations ({how})")
    ax.legend(loc="lower right", fontsize=8)
    return fig
