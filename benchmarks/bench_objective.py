"""The mapping objective (`mapper.objective`: latency, energy, edp) on real models: what each costs and saves.

    python -m benchmarks.bench_objective

Each row is a timing-only run (BERT-base, batch 1, seq 128) of `bert_ner.yaml` with the chip overridden and the
objective set. Columns: cycles and cycles / the chip's bound, joules, energy-delay product, DRAM bytes over the
int8 weights, and each figure against the latency objective's on the same chip. An energy objective must not
cost more joules than the latency one, nor an EDP objective a larger product (`mapper.lower` keeps the best of
the three objectives' programs by the objective's own figure); the last column flags a row where it would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from chipsim.app.runconfig import load_run_config
from chipsim.app.runner import run

ROOT = Path(__file__).resolve().parent.parent

CHIPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bert_ner.yaml chip", ()),
    ("tpuv1", ("chip=tpuv1",)),
    ("LPDDR5, 512 KiB scratchpads", ("chip.dram.type=lpddr5", "chip.core.scratchpad.size_kib=512")),
    ("32x32 arrays, 256 KiB scratchpads", ("chip.core.tensor_core.rows=32", "chip.core.tensor_core.cols=32",
                                           "chip.core.scratchpad.size_kib=256")),
)
OBJECTIVES = ("latency", "energy", "edp")


@dataclass(frozen=True, slots=True)
class Row:
    chip: str
    objective: str
    cycles: int
    bound_cycles: float
    joules: float
    dram_bytes: int
    weight_bytes: int
    wall_s: float

    @property
    def edp(self) -> float:
        return self.cycles * self.joules


def measure(label: str, sets: tuple[str, ...], objective: str) -> Row:
    cfg = load_run_config(ROOT / "bert_ner.yaml", [*sets, "functional=false", "mapper.verify=false", "workload.model=bert-base",
                                                   "workload.seq_len=128", "workload.batch=1", f"mapper.objective={objective}"])
    t0 = time.perf_counter()
    o = run(cfg)
    wall = time.perf_counter() - t0
    weights = sum(t.nbytes for name, t in o.lowered.layout.tensors.items() if name.endswith(".w"))
    return Row(label, objective, o.record.cycles, o.record.bound_cycles, o.result.energy_j["total"], o.record.dram_bytes, weights, wall)


def main() -> None:
    print("| chip | objective | cycles | cycles / bound | energy mJ | EDP (cycles x J) | DRAM / weights "
          "| cycles vs latency | energy vs latency | EDP vs latency | wall s | check |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, sets in CHIPS:
        rows = {o: measure(label, sets, o) for o in OBJECTIVES}
        base = rows["latency"]
        for o, r in rows.items():
            worse = (o == "energy" and r.joules > base.joules) or (o == "edp" and r.edp > base.edp)
            print(f"| {label} | {o} | {r.cycles:,} | {r.cycles / r.bound_cycles:.2f}x | {r.joules * 1e3:.4f} | {r.edp:.5g} "
                  f"| {r.dram_bytes / r.weight_bytes:.2f}x | {r.cycles / base.cycles - 1:+.1%} | {r.joules / base.joules - 1:+.2%} "
                  f"| {r.edp / base.edp - 1:+.2%} | {r.wall_s:.2f} | {'WORSE than latency by its own figure' if worse else 'ok'} |")


if __name__ == "__main__":
    main()
