"""The result record of one run: what `chipsim run` prints and writes (result.json, per_layer.csv).

Figures are per inference run of the configured batch unless named per inference: `latency_s` is one run,
`inferences_per_s` counts sequences, `energy_j` is per sequence (the run's energy / batch).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

LAYER_FIELDS = ("name", "cycles", "macs", "dram_bytes", "utilization", "energy_j", "bound")


@dataclass(frozen=True, slots=True)
class LayerRecord:
    name: str
    cycles: int
    macs: int
    dram_bytes: int  # read + written by the layer's DMA transfers, every core
    utilization: float
    energy_j: float
    bound: str  # compute | memory | noc


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
    utilization: float
    roofline_cycles: float
    roofline_limiter: str
    peak_macs_per_cycle: int
    dram_bytes_per_cycle: float
    instructions: int
    stall_cycles: dict[str, int]
    per_layer: tuple[LayerRecord, ...]
    validation: Validation | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def write(self, directory: Path) -> None:
        (directory / "result.json").write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        with (directory / "per_layer.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(LAYER_FIELDS)
            for layer in self.per_layer:
                w.writerow([getattr(layer, name) for name in LAYER_FIELDS])


assert tuple(f.name for f in fields(LayerRecord)) == LAYER_FIELDS
