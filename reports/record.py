"""The result record of one run: what `chipsim run` prints and writes (result.json, per_layer.csv).

Figures are per inference run of the configured batch unless named per inference: `latency_s` is one run,
`inferences_per_s` counts sequences, `energy_j` is per sequence (the run's energy / batch).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from reports.files import write_atomic

@dataclass(frozen=True, slots=True)
class LayerRecord:
    """One layer (every barrier-delimited phase with its label), as the executor measured it."""

    name: str  # `l3.ffn1`; `emb`, `cls` outside the encoder
    kind: str  # the name without its layer (`ffn1`): rows of the same kind add up across layers
    cycles: int
    macs: int
    utilization: float  # MACs / (PEs x cores x cycles)
    dram_read_bytes: int  # what reached DRAM (global-buffer hits excluded), every core
    dram_write_bytes: int
    dram_bytes: int  # their sum
    dram_bandwidth_utilization: float  # DRAM bytes / (cycles x DRAM bytes per cycle)
    sram_read_bytes: int  # scratchpad + accumulator, every core
    sram_write_bytes: int
    energy_j: float  # per inference (per sequence of the batch)
    energy_breakdown_j: dict[str, float]  # by component, per inference; `total` = energy_j
    bound: str  # what binds this layer in the roofline sense: compute, dram, vector or noc
    mapping: str  # tile sizes, operand residency and placement of the layer's kernels
    # Where the cycles go: cycles >= busiest_unit_cycles >= busiest_unit_even_cycles >= (about) bound_cycles.
    # bound_cycles is the chip's bound for this layer's own work (chipsim.bound); busiest_unit_cycles the time of
    # the schedule's busiest resource (`dram`, `array`, `vector` or `noc`: the busiest core's unit, DRAM as its
    # channel time); busiest_unit_even_cycles that resource's work spread evenly over every core. So the gap
    # splits into work beyond the bound on that resource (padded tiles, re-read bytes, extra passes), work the
    # cores did not share evenly (idle cores), and the rest: pipeline fill and drain and waits between units.
    bound_cycles: float
    busiest_unit: str
    busiest_unit_cycles: float
    busiest_unit_even_cycles: float


LAYER_FIELDS = tuple(f.name for f in fields(LayerRecord) if f.name != "energy_breakdown_j")


@dataclass(frozen=True, slots=True)
class Validation:
    sentences: int
    bit_exact: bool | None  # chip logits == quantized reference logits (int8), every element
    max_abs_logit_diff: float  # chip vs quantized reference
    max_abs_logit_diff_fp32: float  # chip vs fp32 reference
    tag_agreement: float  # word tags equal to the fp32 reference's
    f1_chip: float | None  # entity F1 against gold tags (test-split sentences only)
    f1_reference: float | None  # the fp32 reference's entity F1 on the same sentences


@dataclass(frozen=True, slots=True)
class RunRecord:
    chipsim_version: str
    config_sha256: str
    chip: str
    model: str
    seq_len: int
    batch: int
    precision: str
    functional: bool
    clock_mhz: float
    cycles: int
    latency_s: float
    inferences_per_s: float
    macs: int
    energy_j: float
    energy_breakdown_j: dict[str, float]
    power_w: float
    tops: float
    tops_per_w: float
    area_mm2: float
    area_breakdown_mm2: dict[str, float]
    cost_usd: float  # the chip's cost: one good die plus its DRAM (chipsim/cost.py)
    cost_breakdown_usd: dict[str, float]  # die_usd, dram_usd, die_yield, gross_dies_per_wafer, wafer_usd
    utilization: float
    dram_read_bytes: int  # what reached DRAM over the run (global-buffer hits excluded)
    dram_write_bytes: int
    dram_bytes: int  # their sum
    compulsory_dram_bytes: int  # every parameter and input read once, every output written once
    bound_cycles: float  # the chip's bound for this workload (chipsim.bound): compute, compulsory DRAM, vector
    bound_limiter: str  # compute | dram | vector
    mapping_efficiency: float  # bound_cycles / cycles: 1 is a schedule at the chip's limit
    program_roofline_cycles: float  # the program's own roofline: its MACs, the DRAM bytes it moved, its NoC bytes
    program_roofline_limiter: str  # compute | dram | noc
    peak_macs_per_cycle: int
    dram_bytes_per_cycle: float
    instructions: int
    stall_cycles: dict[str, int]  # by cause, summed over every unit of every core
    stall_share: dict[str, dict[str, float]]  # per unit, per cause: stall cycles / (cores x cycles)
    per_layer: tuple[LayerRecord, ...]
    validation: Validation | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def write(self, directory: Path) -> None:
        """result.json and per_layer.csv in `directory`, each written in one step, never over an existing file."""
        write_atomic(directory / "result.json", json.dumps(self.to_dict(), indent=1) + "\n")
        rows = io.StringIO()
        w = csv.writer(rows)
        parts = sorted({k for layer in self.per_layer for k in layer.energy_breakdown_j if k != "total"})
        w.writerow([*LAYER_FIELDS, *(f"energy_{p}_j" for p in parts)])
        for layer in self.per_layer:
            w.writerow([getattr(layer, name) for name in LAYER_FIELDS] + [layer.energy_breakdown_j.get(p, 0.0) for p in parts])
        write_atomic(directory / "per_layer.csv", rows.getvalue())
