"""The printed summary of a run (rich tables), read from the result record only."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from reports.record import RunRecord


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1.0, "")):
        if abs(value) < scale * 1000:
            return f"{value / scale:.3f} {prefix}{unit}"
    return f"{value:.3f} {unit}"


def summary_tables(r: RunRecord, top: int = 8) -> list[Table]:
    head = Table(title=f"{r.model} on {r.chip}", show_header=False)
    head.add_column("figure")
    head.add_column("value", justify="right")
    rows = [
        ("run", f"seq {r.seq_len} x batch {r.batch}, {r.precision}, {'functional' if r.functional else 'timing only'}"),
        ("cycles", f"{r.cycles:,}"),
        (f"latency at {r.clock_mhz:g} MHz", _si(r.latency_s, "s")),
        ("inferences/s (sequences)", f"{r.inferences_per_s:,.1f}"),
        ("energy per inference", _si(r.energy_j, "J")),
        ("power", f"{r.power_w:.2f} W"),
        ("throughput", f"{r.tops:.2f} TOPS"),
        ("efficiency", f"{r.tops_per_w:.2f} TOPS/W"),
        ("area", f"{r.area_mm2:.1f} mm^2"),
        ("utilization (MACs / PE-cycles)", f"{100 * r.utilization:.1f} %"),
        ("roofline bound", f"{r.roofline_cycles:,.0f} cycles ({r.roofline_limiter})"),
        ("instructions", f"{r.instructions:,}"),
    ]
    for k, v in rows:
        head.add_row(k, v)
    energy = Table(title="energy per inference", show_header=True)
    energy.add_column("component")
    energy.add_column("energy", justify="right")
    energy.add_column("share", justify="right")
    for k, v in r.energy_breakdown_j.items():
        if k != "total":
            energy.add_row(k, _si(v, "J"), f"{100 * v / r.energy_j:.1f} %")
    layers = Table(title=f"top {top} layers by cycles")
    for col in ("layer", "cycles", "share", "MACs", "util", "energy", "bound"):
        layers.add_column(col, justify="left" if col in ("layer", "bound") else "right")
    for layer in sorted(r.per_layer, key=lambda x: -x.cycles)[:top]:
        layers.add_row(layer.name, f"{layer.cycles:,}", f"{100 * layer.cycles / r.cycles:.1f} %", f"{layer.macs:,}",
                       f"{100 * layer.utilization:.1f} %", _si(layer.energy_j, "J"), layer.bound)
    tables = [head, energy, layers]
    v = r.validation
    if v is not None:
        val = Table(title=f"validation ({v.sentences} sentences through the chip)", show_header=False)
        val.add_column("check")
        val.add_column("result", justify="right")
        if v.bit_exact is not None:
            val.add_row("int8 logits bit-exact vs quantized reference", "yes" if v.bit_exact else "NO")
        val.add_row("max |logit diff| vs quantized reference", f"{v.max_abs_logit_diff:.3g}")
        val.add_row("max |logit diff| vs fp32 reference", f"{v.max_abs_logit_diff_fp32:.3g}")
        val.add_row("word tags agreeing with fp32 reference", f"{100 * v.tag_agreement:.2f} %")
        if v.f1_chip is not None and v.f1_reference is not None:
            val.add_row("entity F1, chip (vs gold)", f"{v.f1_chip:.4f}")
            val.add_row("entity F1, fp32 reference (vs gold)", f"{v.f1_reference:.4f}")
            val.add_row("F1 difference", f"{100 * (v.f1_chip - v.f1_reference):+.2f} points")
        tables.append(val)
    return tables


def print_summary(r: RunRecord, console: Console) -> None:
    for t in summary_tables(r):
        width = console.measure(t, options=console.options.update_width(10_000)).maximum
        Console(file=console.file, width=max(console.width, width)).print(t)
