"""The printed summary of a run (rich tables), read from the result record only."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from reports.record import LayerRecord, RunRecord


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1.0, "")):
        if abs(value) < scale * 1000:
            return f"{value / scale:.3f} {prefix}{unit}"
    return f"{value:.3f} {unit}"


@dataclass(frozen=True, slots=True)
class KindRow:
    kind: str
    count: int
    cycles: int
    macs: int
    dram_bytes: int
    energy_j: float
    bound: str  # the bound of the most cycles among its layers
    bound_cycles: float  # the chip's bound for these layers' work, summed
    busiest_unit: str  # the schedule's busiest resource, the one of the most cycles among its layers
    busiest_unit_cycles: float
    busiest_unit_even_cycles: float


def _kinds(layers: tuple[LayerRecord, ...]) -> list[KindRow]:
    by: dict[str, list[LayerRecord]] = {}
    for layer in layers:
        by.setdefault(layer.kind, []).append(layer)
    out = []
    for kind, ls in by.items():
        weight: dict[str, int] = {}
        for layer in ls:
            weight[layer.bound] = weight.get(layer.bound, 0) + layer.cycles
        busiest: dict[str, float] = {}
        for layer in ls:
            busiest[layer.busiest_unit] = busiest.get(layer.busiest_unit, 0) + layer.cycles
        out.append(KindRow(kind, len(ls), sum(x.cycles for x in ls), sum(x.macs for x in ls), sum(x.dram_bytes for x in ls),
                           sum(x.energy_j for x in ls), max(weight, key=lambda b: weight[b]), sum(x.bound_cycles for x in ls),
                           max(busiest, key=lambda b: busiest[b]), sum(x.busiest_unit_cycles for x in ls),
                           sum(x.busiest_unit_even_cycles for x in ls)))
    return out


def where_the_cycles_go(layers: tuple[LayerRecord, ...], run_cycles: int) -> list[tuple[str, ...]]:
    """Per layer kind (summed over the layers), most cycles first: cycles, the chip's bound for that work,
    cycles / bound, and the gap split in three, each also as a share of the run: the busiest resource's work
    beyond the bound (spread evenly over the cores), the part of its work the cores did not share evenly (idle
    cores), and the time it was not busy (pipeline fill and drain, waits for other units or cores)."""
    rows = []

    def share(x: float) -> str:
        return f"{x:,.0f} ({100 * x / run_cycles:.1f} %)"

    for k in sorted(_kinds(layers), key=lambda x: -x.cycles):
        excess = max(0.0, k.busiest_unit_even_cycles - k.bound_cycles)
        uneven = max(0.0, k.busiest_unit_cycles - max(k.busiest_unit_even_cycles, k.bound_cycles))
        rest = max(0.0, k.cycles - max(k.busiest_unit_cycles, k.bound_cycles))
        rows.append((k.kind, f"{k.cycles:,}", f"{k.bound_cycles:,.0f}", f"{k.cycles / k.bound_cycles:.2f}x" if k.bound_cycles else "n/a",
                     k.busiest_unit, share(excess), share(uneven), share(rest)))
    return rows


WHERE_COLUMNS = ("kind", "cycles", "bound", "cycles / bound", "busiest unit", "its work beyond the bound",
                 "idle cores (its work not shared evenly)", "fill, drain, waits")


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
        ("cost (die + DRAM)", f"${r.cost_usd:,.0f} (${r.cost_breakdown_usd.get('die_usd', 0):,.2f} + ${r.cost_breakdown_usd.get('dram_usd', 0):,.0f})"),
        ("utilization (MACs / PE-cycles)", f"{100 * r.utilization:.1f} %"),
        ("DRAM traffic (read + write)", f"{r.dram_read_bytes / 1e6:,.2f} + {r.dram_write_bytes / 1e6:,.2f} MB"),
        ("DRAM traffic / compulsory", f"{r.dram_bytes / r.compulsory_dram_bytes:.2f}x of {r.compulsory_dram_bytes / 1e6:,.2f} MB"
         if r.compulsory_dram_bytes else "n/a"),
        ("chip bound", f"{r.bound_cycles:,.0f} cycles ({r.bound_limiter})"),
        ("mapping efficiency (bound / cycles)", f"{100 * r.mapping_efficiency:.1f} %"),
        ("program roofline (its own bytes)", f"{r.program_roofline_cycles:,.0f} cycles ({r.program_roofline_limiter})"),
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
    layers = Table(title=f"layers by kind, summed over the encoder's layers (top {top} by cycles)")
    for col in ("kind", "layers", "cycles", "share", "MACs", "util", "DRAM MB", "energy", "bound"):
        layers.add_column(col, justify="left" if col in ("kind", "bound") else "right")
    pes = r.peak_macs_per_cycle
    for k in sorted(_kinds(r.per_layer), key=lambda x: -x.cycles)[:top]:
        layers.add_row(k.kind, str(k.count), f"{k.cycles:,}", f"{100 * k.cycles / r.cycles:.1f} %", f"{k.macs:,}",
                       f"{100 * k.macs / (pes * k.cycles) if k.cycles else 0:.1f} %", f"{k.dram_bytes / 1e6:,.2f}",
                       _si(k.energy_j, "J"), k.bound)
    where = Table(title="where the cycles go: each layer kind against the chip's bound for its work")
    for col in WHERE_COLUMNS:
        where.add_column(col, justify="left" if col in ("kind", "busiest unit") else "right")
    for row in where_the_cycles_go(r.per_layer, r.cycles):
        where.add_row(*row)
    stalls = Table(title="stalls (share of each unit's time over every core)")
    causes = sorted({c for by_cause in r.stall_share.values() for c in by_cause})
    stalls.add_column("unit")
    for c in causes:
        stalls.add_column(c, justify="right")
    for unit, by_cause in r.stall_share.items():
        stalls.add_row(unit, *(f"{100 * by_cause.get(c, 0.0):.1f} %" for c in causes))
    tables = [head, energy, layers, where, stalls]
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
