"""`chipsim report DIR`: a self-contained HTML page of a sweep (plots embedded as PNG) plus the plots as files.

Writes `DIR/report/index.html` and `DIR/report/<plot>.png|.svg`. The page has no scripts and no external
resources, so it opens anywhere (and renders identically in a headless browser).
"""

from __future__ import annotations

import base64
import html
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reports import plots
from reports.figures import JsonValue, SweepError
from reports.record import LayerRecord
from reports.summary import WHERE_COLUMNS, where_the_cycles_go
from reports.table import SweepResults, best_designs, hypervolume_curve, load_results

REPORT_DIR = "report"


@dataclass(frozen=True, slots=True)
class Report:
    html_path: Path
    plots: tuple[plots.SavedPlot, ...]
    notes: tuple[str, ...]  # plots left out, and why
    seconds: float


def _heatmap_axes(results: SweepResults, chosen: tuple[str, str] | None) -> tuple[str, str] | None:
    names = [name for name, _, labels in results.sweep.axes if len(labels) > 1]
    if chosen is not None:
        for name in chosen:
            if name not in results.axis_names:
                raise SweepError(f"--heatmap names axis {name!r}, which this sweep does not have; its axes are {', '.join(results.axis_names)}")
        if chosen[0] == chosen[1]:
            raise SweepError(f"--heatmap names {chosen[0]!r} twice; give two different axes as x,y")
        return chosen
    return (names[0], names[1]) if len(names) >= 2 else None


def _fmt(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


_BEST_COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("latency_s", "latency (ms)", 1e3),
    ("energy_per_inference_j", "energy / inf. (mJ)", 1e3),
    ("inferences_per_s", "inferences/s", 1.0),
    ("area_mm2", "area (mm²)", 1.0),
    ("power_w", "power (W)", 1.0),
    ("tops_per_w", "TOPS/W", 1.0),
    ("utilization", "utilization (%)", 100.0),
    ("mapping_efficiency", "bound / cycles (%)", 100.0),
    ("dram_bytes", "DRAM MB", 1e-6),
    ("f1_chip", "F1 (chip)", 1.0),
)


def _best_table(results: SweepResults, best: pd.DataFrame) -> str:
    if best.empty:
        return "<p class='warn'>No design satisfies every constraint; the plots show all designs.</p>"
    columns = [c for c in _BEST_COLUMNS if c[0] in best and best[c[0]].notna().any()]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in results.axis_names) + "".join(f"<th>{t}</th>" for _, t, _ in columns)
    rows = []
    for _, row in best.iterrows():
        cells = "".join(f"<td>{_fmt(row[n])}</td>" for n in results.axis_names)
        cells += "".join(f"<td class='num'>{_fmt(None if pd.isna(row[c]) else float(row[c]) * scale)}</td>" for c, _, scale in columns)
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>#{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>".replace("<tr>#", "<tr>")


def _where_the_cycles_go(per_layer: object, cycles: object) -> str:
    """The best design's layers against the chip's bound for their work, as `chipsim run` prints them."""
    try:
        layers = tuple(LayerRecord(**p) for p in per_layer)  # type: ignore[arg-type, union-attr]
    except TypeError:
        return "<p class='meta'>This store's records predate the per-layer bounds: rerun the sweep for this section.</p>"
    if not layers or not isinstance(cycles, (int, float)) or not cycles:
        return "<p class='meta'>No per-layer figures in the best design's record.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in WHERE_COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td{'' if i in (0, 4) else ' class=num'}>{html.escape(v)}</td>" for i, v in enumerate(row)) + "</tr>"
                   for row in where_the_cycles_go(layers, int(cycles)))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _failures(frame: pd.DataFrame) -> str:
    failed = frame[frame["status"] == "failed"]
    if failed.empty:
        return "<p>No point failed.</p>"
    counts = Counter(str(e).splitlines()[0][:240] for e in failed["error"])
    rows = "".join(f"<tr><td class='num'>{n}</td><td>{html.escape(msg)}</td></tr>" for msg, n in counts.most_common(12))
    return f"<table><thead><tr><th>points</th><th>error</th></tr></thead><tbody>{rows}</tbody></table>"


def _precision_axis(results: SweepResults) -> str | None:
    for name, path, labels in results.sweep.axes:
        if path.endswith("tensor_core.precision") or (path.endswith("tensor_core") and any(p in lab for lab in labels for p in ("int8", "bf16"))):
            return name
    return None


_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.meta { color: #555; } .warn { color: #a33; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; } th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.85em; }
"""


def build_report(directory: Path, *, heatmap: tuple[str, str] | None = None) -> Report:
    start = time.perf_counter()
    results = load_results(directory)
    heat = _heatmap_axes(results, heatmap)
    out = directory / REPORT_DIR
    out.mkdir(exist_ok=True)
    frame = results.frame
    ok = plots.with_units(frame)
    saved: list[plots.SavedPlot] = []
    notes: list[str] = []
    axis_labels = {name: labels for name, _, labels in results.sweep.axes}
    best = best_designs(results)
    if len(ok) == 0:
        notes.append("No point has finished successfully yet, so there is nothing to plot.")
    else:
        saved.append(plots.save(plots.pareto_plot(ok), out, "pareto", "Pareto front: latency vs energy per inference, coloured by area"))
        saved.append(plots.save(plots.area_plot(ok), out, "area", "Energy per inference and inferences/s vs area"))
        varied = tuple((n, axis_labels[n]) for n in results.axis_names if len(axis_labels[n]) > 1)
        if varied:
            saved.append(plots.save(plots.sensitivity_plot(ok, varied), out, "sensitivity", "Per-axis sensitivity"))
        if heat is not None:
            x, y = heat
            saved.append(plots.save(plots.heatmap_plot(ok, (x, axis_labels[x]), (y, axis_labels[y]), frame), out, "utilization_heatmap",
                                    f"Utilization over {x} and {y} (hatched: every point there failed)"))
            if "mapping_efficiency" in ok:  # stores written before the records carried it have none
                saved.append(plots.save(plots.heatmap_plot(ok, (x, axis_labels[x]), (y, axis_labels[y]), frame, "mapping_efficiency"),
                                        out, "mapping_efficiency_heatmap",
                                        f"Mapping efficiency (the chip's bound / cycles) over {x} and {y}: where utilization is low "
                                        f"but this is high, the chip is the limit, not the mapper"))
        else:
            notes.append("The utilization heatmap needs two axes with several values; this sweep has fewer.")
        curve = hypervolume_curve(results)
        if curve is not None:
            how = results.sweep.sampling or "plan order"
            saved.append(plots.save(plots.hypervolume_plot(*curve, how), out, "hypervolume",
                                    f"Hypervolume of the feasible {results.objectives[0].metric} x {results.objectives[1].metric} front "
                                    f"over evaluations ({how}; in decades, as a share of the box from the best to 1.1x the worst)"))
        functional = ok[pd.to_numeric(ok.get("f1_chip", pd.Series(dtype=float)), errors="coerce").notna()] if "f1_chip" in ok else ok.head(0)
        precision = _precision_axis(results)
        if len(functional) and precision is not None:
            saved.append(plots.save(plots.f1_energy_plot(functional, precision), out, "f1_vs_energy", "Entity F1 from the chip vs energy per inference, by precision"))
        elif precision is not None:
            notes.append("F1 vs energy needs functional points (an axis `functional: [false, true]` or `functional: true`).")
    best_note = ""
    where = "<p class='meta'>No design satisfies every constraint.</p>"
    if not best.empty:
        top = best.iloc[0]
        record = results.records.get(str(top["key"]), {})
        per_layer = record.get("per_layer")
        best_note = ", ".join(f"{n} = {_fmt(top[n])}" for n in results.axis_names)
        bound, roof = record.get("bound_cycles"), record.get("program_roofline_cycles")
        if isinstance(bound, (int, float)) and isinstance(roof, (int, float)) and top.get("cycles"):
            notes.append(
                f"Best design ({best_note}): {int(top['cycles']):,} cycles against the chip's bound of {bound:,.0f} "
                f"({record.get('bound_limiter')}; {100 * bound / float(top['cycles']):.1f}% mapping efficiency) and its "
                f"program's own roofline of {roof:,.0f} ({record.get('program_roofline_limiter')}), which counts the bytes "
                "the program moved rather than the compulsory ones."
            )
        where = _where_the_cycles_go(per_layer, record.get("cycles"))
        if isinstance(per_layer, list) and per_layer:
            layers: list[dict[str, JsonValue]] = [p for p in per_layer if isinstance(p, dict)]
            saved.append(plots.save(plots.layers_plot(layers), out, "best_layers", f"Per-layer cycles of the best design ({best_note})"))
            peak = record.get("peak_macs_per_cycle")
            dram_bpc = record.get("dram_bytes_per_cycle")
            if all("dram_bytes" in p for p in layers) and isinstance(peak, (int, float)) and isinstance(dram_bpc, (int, float)):
                saved.append(plots.save(plots.roofline_plot(layers, float(peak), float(dram_bpc)), out, "best_roofline", f"Roofline of the best design ({best_note})"))
            else:
                notes.append("The roofline needs per-layer DRAM bytes and the chip's peak figures in the result record; this store's records lack them.")

    counts = frame["status"].value_counts()
    n_ok, n_failed = int(counts.get("ok", 0)), int(counts.get("failed", 0))
    constraints = ", ".join(html.escape(c.text) for c in results.constraints) or "none"
    objectives = ", ".join(f"{o.direction.value} {o.metric}" for o in results.objectives) or "none"
    figures = "".join(
        f"<figure><img alt='{html.escape(p.title)}' src='data:image/png;base64,{base64.b64encode(p.png).decode()}'>"
        f"<figcaption>{html.escape(p.title)} ({p.png_path.name}, {p.svg_path.name})</figcaption></figure>"
        for p in saved
    )
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>chipsim sweep: {html.escape(results.sweep.name)}</title>
<style>{_CSS}</style></head><body>
<h1>Sweep {html.escape(results.sweep.name)}</h1>
<p class="meta">{n_ok + n_failed} of {n_ok + n_failed + results.pending} planned points computed: {n_ok} ok, {n_failed} failed,
{results.pending} pending; {int(frame['feasible'].sum())} satisfy the constraints ({constraints}). Objectives: {objectives}.
Sweep file {html.escape(results.sweep.source)}; chipsim {html.escape(results.sweep.chipsim_version)}.</p>
<h2>Best designs under the constraints</h2>
<p class="meta">Feasible designs on the Pareto front of the objectives, best first by {html.escape(results.objectives[0].metric if results.objectives else '')}.</p>
{_best_table(results, best)}
<h2>Where the cycles go (the best design)</h2>
<p class="meta">Each layer kind, summed over the encoder's layers, against the chip's bound for its own work (its MACs at
peak, its compulsory DRAM bytes, its least vector work); the gap splits into work beyond the bound on the schedule's
busiest resource (a chip limit shows as cycles / bound near 1, a mapping limit as a large share here), the part of
that resource's work the cores did not share evenly (idle cores), and the time it was not busy: pipeline fill and
drain, and waits for other units or cores.</p>
{where}
<h2>Plots</h2>
{figures}
{f'<ul class="meta">{notes_html}</ul>' if notes_html else ''}
<h2>Failed points</h2>
{_failures(frame)}
</body></html>
"""
    html_path = out / "index.html"
    html_path.write_text(page, encoding="utf-8")
    return Report(html_path, tuple(saved), tuple(notes), time.perf_counter() - start)
