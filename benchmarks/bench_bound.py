"""Achieved versus bound on real models: cycles / the chip's bound and DRAM bytes / compulsory bytes.

    python -m benchmarks.bench_bound

Each row is a timing-only run (batch 1, seq 128) of `bert_ner.yaml` with the chip and model overridden. Columns:
the run's cycles; the chip's bound (`bound_cycles`: the most binding of MACs / peak, compulsory DRAM bytes /
bandwidth, the model's vector work over every lane) and which limit it is; cycles / bound (1.0 is a schedule at
the chip's limit); the simpler yardstick max(MACs / peak, weight bytes / DRAM bytes per cycle); DRAM bytes over
the compulsory bytes and over the weights alone. The gap to 1.0 is the mapper's: these are the figures a mapping
change is judged by. A bigger array must never come out slower on the same mesh, DRAM and model, nor any case
at twice its DRAM bandwidth: the lines after the table flag both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from chipsim.app.runconfig import load_run_config
from chipsim.app.runner import run

ROOT = Path(__file__).resolve().parent.parent

CASES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("MiniLM on bert_ner.yaml", "bert-ner-wnut", ()),
    ("MiniLM on 2x2 of 256x256", "bert-ner-wnut", ("chip.core.tensor_core.rows=256", "chip.core.tensor_core.cols=256")),
    ("BERT-base on bert_ner.yaml", "bert-base", ()),
    ("BERT-base on 2x2 of 256x256", "bert-base", ("chip.core.tensor_core.rows=256", "chip.core.tensor_core.cols=256")),
    ("BERT-base on tpuv1", "bert-base", ("chip=tpuv1",)),
)


@dataclass(frozen=True, slots=True)
class BoundRow:
    label: str
    cycles: int
    bound_cycles: float
    bound_limiter: str
    weights_bound_cycles: float  # max(MACs / peak, weight bytes / DRAM bytes per cycle)
    dram_bytes: int
    compulsory_dram_bytes: int
    weight_bytes: int
    wall_s: float


def measure(label: str, model: str, sets: tuple[str, ...]) -> BoundRow:
    cfg = load_run_config(ROOT / "bert_ner.yaml", [*sets, "functional=false", "mapper.verify=false",
                                                   f"workload.model={model}", "workload.seq_len=128", "workload.batch=1"])
    t0 = time.perf_counter()
    o = run(cfg)
    wall = time.perf_counter() - t0
    rec, chip = o.record, cfg.chip
    weights = sum(t.nbytes for name, t in o.lowered.layout.tensors.items() if name.endswith(".w"))
    simple = max(rec.macs / chip.peak_macs_per_cycle, weights / chip.dram_bytes_per_cycle)
    return BoundRow(label, rec.cycles, rec.bound_cycles, rec.bound_limiter, simple, rec.dram_bytes,
                    rec.compulsory_dram_bytes, weights, wall)


def main() -> None:
    rows = [measure(*case) for case in CASES]
    print("| run | cycles | bound (limiter) | cycles / bound | cycles / max(MACs/peak, weights/BW) "
          "| DRAM MB | DRAM / compulsory | DRAM / weights | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.label} | {r.cycles:,} | {r.bound_cycles:,.0f} ({r.bound_limiter}) | {r.cycles / r.bound_cycles:.2f}x "
              f"| {r.cycles / r.weights_bound_cycles:.2f}x | {r.dram_bytes / 1e6:.1f} | {r.dram_bytes / r.compulsory_dram_bytes:.2f}x "
              f"| {r.dram_bytes / r.weight_bytes:.2f}x | {r.wall_s:.2f} |")
    by_label = {r.label: r for r in rows}
    for small, big in (("MiniLM on bert_ner.yaml", "MiniLM on 2x2 of 256x256"),
                       ("BERT-base on bert_ner.yaml", "BERT-base on 2x2 of 256x256")):
        a, b = by_label[small], by_label[big]
        verdict = "ok" if b.cycles <= a.cycles else "SLOWER: the mapper, not the chip"
        print(f"256x256 vs 128x128 arrays, {small.split(' on ')[0]}: {b.cycles:,} vs {a.cycles:,} cycles ({verdict})")
    # a faster DRAM must not come out slower either: every case again at twice its DRAM bandwidth
    for (label, model, sets), r in zip(CASES, rows):
        cfg = load_run_config(ROOT / "bert_ner.yaml", [*sets, f"workload.model={model}"])
        fast = measure(label, model, (*sets, f"chip.dram.bandwidth_gb_per_s={2 * cfg.chip.dram.bandwidth_gb_per_s}"))
        verdict = "ok" if fast.cycles <= r.cycles else "SLOWER: the mapper, not the chip"
        print(f"twice the DRAM bandwidth, {label}: {fast.cycles:,} vs {r.cycles:,} cycles ({verdict})")


if __name__ == "__main__":
    main()
