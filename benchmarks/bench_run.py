"""Whole-run speed: `chipsim run` timing-only, in process, on real models.

    python -m benchmarks.bench_run

Per case: the first run in the process (the mapping search and its executor re-checks included: what a sweep
point on a new chip pays) and the mapper's part of it, the best of three more (the search cached per chip and GEMM
shape), the instructions executed and the phases the executor simulated (the others repeat an identical earlier
phase and are timed once). Targets: the whole run of BERT-base seq 128 <= 50 ms and of BERT-large seq 512 <= 0.5 s;
mapping BERT-base on a new chip <= 0.5 s. These runs leave the ISA verifier off (as a sweep does); `chipsim run`
has it on by default (mapper.verify), and the last column is its time on the same program, from one more run.
"""

from __future__ import annotations

import time
from pathlib import Path

from chipsim.app.runconfig import load_run_config
from chipsim.app.runner import run

ROOT = Path(__file__).resolve().parent.parent

# (label, overrides, target for the whole run in s, target for the first run's mapping in s; 0: none)
CASES: tuple[tuple[str, tuple[str, ...], float, float], ...] = (
    ("BERT-base seq 128, bert_ner.yaml chip", ("workload.model=bert-base", "workload.seq_len=128"), 0.05, 0.5),
    ("BERT-large seq 512, bert_ner.yaml chip", ("workload.model=bert-large", "workload.seq_len=512"), 0.5, 0.0),
    ("BERT-base seq 128, 4x4 of 32x32 bf16", ("workload.model=bert-base", "workload.seq_len=128", "chip.mesh.rows=4",
                                               "chip.mesh.cols=4", "chip.core.tensor_core.rows=32",
                                               "chip.core.tensor_core.cols=32", "chip.core.tensor_core.precision=bf16"), 0.0, 0.0),
)


def main() -> None:
    print(f"{'case':<40} {'first s':>8} {'mapping s':>10} {'target':>7} {'warm s':>8} {'target':>7} {'instructions':>13} {'phases timed once':>18} {'verify s':>9}")
    for label, sets, target, map_target in CASES:
        cfg = load_run_config(ROOT / "bert_ner.yaml", [*sets, "functional=false", "mapper.verify=false", "workload.batch=1"])
        t0 = time.perf_counter()
        o = run(cfg)
        first = time.perf_counter() - t0
        mapping = o.mapping_s
        warm = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            o = run(cfg)
            warm = min(warm, time.perf_counter() - t0)
        checked = run(cfg.model_copy(update={"mapper": cfg.mapper.model_copy(update={"verify": True})}))
        phases = len(o.result.phases)
        once = phases - o.result.replayed_phases
        goal = f"{target:.2f}" if target else "-"
        map_goal = f"{map_target:.2f}" if map_target else "-"
        print(f"{label:<40} {first:>8.3f} {mapping:>10.3f} {map_goal:>7} {warm:>8.3f} {goal:>7} {o.result.instructions:>13,} {once:>8} of {phases:<8} {checked.verify_s:>9.3f}")


if __name__ == "__main__":
    main()
