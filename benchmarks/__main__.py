"""Run every chipsim benchmark and print one table.

    python -m benchmarks            # the whole suite (under ~10 minutes on two cores)
    python -m benchmarks --quick    # smaller figures of the same benchmarks (about 3 minutes)

Rows: `chipsim run bert_ner.yaml` wall time (functional, the four sentences), timing-only BERT-base seq 128 and
BERT-large seq 512 (each a `chipsim run` process, start-up included), executor instructions/s
(`benchmarks.bench_executor`), sweep points/s (`benchmarks.bench_sweep`), one GEMM's estimate against SCALE-Sim
and one layer against ZigZag (speed ratio and cycle difference, side by side in this run; peers from
`.venv-peers`), achieved versus bound on real models (`benchmarks.bench_bound`: cycles / the chip's bound, DRAM
bytes / compulsory bytes), and peak memory (the largest resident set of this process and of the `chipsim` processes).
Speed figures depend on the machine and its load; the table says what each was measured on.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import bench_executor
from benchmarks.peers.runner import MISSING_HINT, SCALESIM_ORACLE, ZIGZAG_ORACLE, num, peers_available, run_oracle

ROOT = Path(__file__).resolve().parent.parent
TARGET_SCALESIM_RATIO = 1000.0
TARGET_SCALESIM_ERROR_PCT = 2.0
TARGET_ZIGZAG_RATIO = 100.0


@dataclass(frozen=True, slots=True)
class Row:
    benchmark: str
    value: str
    target: str
    note: str


def _children_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _self_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def chipsim_run(label: str, args: list[str]) -> Row:
    """Wall time of one `chipsim run` process (start-up, lowering, verification, execution, writing results)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "chipsim", "run", "bert_ner.yaml", "--out", str(Path(tmp) / "out"), *args]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return Row(label, "failed", "", proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    return Row(label, f"{wall:.1f} s", "", "chipsim run " + " ".join(["bert_ner.yaml", *args]))


def executor_rate(quick: bool) -> Row:
    program = bench_executor.build(400 if quick else 1800)
    wall, cpu, _cycles = bench_executor.rate(program, functional=False, repeats=1 if quick else 3)
    fwall, _fcpu, _ = bench_executor.rate(program, functional=True, repeats=1 if quick else 3)
    return Row("executor instructions/s", f"{wall / 1e3:,.0f} k/s", "",
               f"timing-only, {program.num_instructions:,} instructions on 4 cores (functional: {fwall / 1e3:,.0f} k/s)")


def sweep_rate(quick: bool) -> Row:
    try:
        from benchmarks import bench_sweep
    except ImportError:
        return Row("sweep points/s", "n/a", ">= 10", "benchmarks/bench_sweep.py is not there")
    points = 8 if quick else 24
    rate = bench_sweep.bench_sweep(points, 2, "bert-base")
    return Row("sweep points/s", f"{rate:.2f}", ">= 10", f"BERT-base seq 128 timing-only, {points} random chips, 2 workers")


def bound_rows() -> list[Row]:
    """Achieved versus bound (benchmarks.bench_bound): cycles / the chip's bound, DRAM bytes / compulsory bytes."""
    from benchmarks import bench_bound

    rows = []
    for case in bench_bound.CASES:
        r = bench_bound.measure(*case)
        rows.append(Row(f"cycles / bound: {r.label}", f"{r.cycles / r.bound_cycles:.2f}x", "1.0 is the chip's limit",
                        f"bound {r.bound_cycles:,.0f} cycles ({r.bound_limiter}); DRAM {r.dram_bytes / r.compulsory_dram_bytes:.2f}x "
                        f"the compulsory bytes, {r.dram_bytes / r.weight_bytes:.2f}x the weights"))
    return rows


def scalesim_ratio() -> Row:
    """One BERT-size GEMM: SCALE-Sim against `chipsim gemm --ideal-memory` (run_gemm in process)."""
    from chipsim.config import Dataflow, Precision
    from chipsim.app.gemm import run_gemm

    m, k, n, r, c = 128, 768, 768, 32, 32
    peer = run_oracle(SCALESIM_ORACLE, [{"m": m, "k": k, "n": n, "rows": r, "cols": c, "dataflow": "ws"}])[0]
    run_gemm(32, 32, 32, 8, 8, Dataflow.WS, Precision.INT8, ideal_memory=True)  # warm imports and caches
    walls = []
    cycles = 0
    for _ in range(3):
        g = run_gemm(m, k, n, r, c, Dataflow.WS, Precision.INT8, ideal_memory=True, weight_double_buffer=False)
        walls.append(g.wall_s)
        cycles = g.cycles
    wall = sorted(walls)[1]
    ss_cycles = num(peer, "total_cycles")
    err = 100 * (cycles - ss_cycles) / ss_cycles
    ratio = num(peer, "wall_s") / wall
    ok = ratio >= TARGET_SCALESIM_RATIO and abs(err) <= TARGET_SCALESIM_ERROR_PCT
    return Row("GEMM estimate vs SCALE-Sim", f"{ratio:,.0f}x at {err:+.3f}% cycles", f">= 1000x at <= 2% ({'met' if ok else 'NOT met'})",
               f"{m}x{k}x{n} ws on {r}x{c}: SCALE-Sim {num(peer, 'wall_s'):.2f} s, chipsim gemm --ideal-memory {wall * 1e3:.1f} ms")


def zigzag_ratio() -> Row:
    """One BERT-base layer GEMM (FFN1): ZigZag on its TPU-like accelerator against chipsim on the matching chip."""
    from benchmarks.validate_zigzag import gemm_on_chip, zigzag_chip

    m, k, n = 128, 768, 3072
    peer = run_oracle(ZIGZAG_ORACLE, [{"name": "ffn1", "m": m, "k": k, "n": n}])[0]
    chip = zigzag_chip()
    gemm_on_chip(chip, 32, 32, 32)
    walls = []
    cycles = 0
    for _ in range(3):
        t0 = time.perf_counter()
        cycles = gemm_on_chip(chip, m, k, n).cycles
        walls.append(time.perf_counter() - t0)
    wall = sorted(walls)[1]
    ratio = num(peer, "wall_s") / wall
    err = 100 * (cycles - num(peer, "latency_cycles")) / num(peer, "latency_cycles")
    return Row("layer vs ZigZag", f"{ratio:,.0f}x ({err:+.0f}% latency)", f">= 100x ({'met' if ratio >= TARGET_ZIGZAG_RATIO else 'NOT met'})",
               f"BERT-base FFN1 {m}x{k}x{n}: ZigZag {num(peer, 'wall_s'):.2f} s, chipsim {wall * 1e3:.1f} ms; latency "
               "difference explained in docs/VALIDATION.md")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run every chipsim benchmark and print one table.")
    p.add_argument("--quick", action="store_true", help="smaller figures (about 3 minutes)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    steps: list[tuple[str, Callable[[], Row]]] = [
        ("chipsim run (functional)", lambda: chipsim_run("chipsim run bert_ner.yaml (functional)", [])),
        ("BERT-base seq 128", lambda: chipsim_run("timing-only BERT-base seq 128", ["--timing-only", "--set", "workload.model=bert-base"])),
    ]
    if not a.quick:
        steps.append(("BERT-large seq 512", lambda: chipsim_run(
            "timing-only BERT-large seq 512", ["--timing-only", "--set", "workload.model=bert-large", "--set", "workload.seq_len=512"])))
    steps += [("executor", lambda: executor_rate(a.quick)), ("sweep", lambda: sweep_rate(a.quick))]
    if peers_available():
        steps += [("SCALE-Sim", scalesim_ratio), ("ZigZag", zigzag_ratio)]
    rows: list[Row] = []
    for name, step in steps:
        print(f"[{time.perf_counter() - t0:5.0f} s] {name} ...", flush=True)
        try:
            rows.append(step())
        except Exception as exc:  # a broken benchmark is reported in the table, the others still run
            rows.append(Row(name, "failed", "", f"{type(exc).__name__}: {exc}"[:160]))
    print(f"[{time.perf_counter() - t0:5.0f} s] achieved vs bound ...", flush=True)
    try:
        rows += bound_rows()
    except Exception as exc:  # noqa: BLE001 - reported in the table like the others
        rows.append(Row("cycles / bound", "failed", "", f"{type(exc).__name__}: {exc}"[:160]))
    if not peers_available():
        rows.append(Row("GEMM / layer vs SCALE-Sim, ZigZag", "skipped", "", MISSING_HINT))
    if a.quick:
        rows.append(Row("timing-only BERT-large seq 512", "skipped", "", "--quick"))
    rows.append(Row("peak memory", f"{max(_self_peak_mib(), _children_peak_mib()):,.0f} MiB", "",
                    f"largest resident set: this process {_self_peak_mib():,.0f} MiB, child processes {_children_peak_mib():,.0f} MiB"))
    total = time.perf_counter() - t0
    width = max(len(r.benchmark) for r in rows)
    vwidth = max(len(r.value) for r in rows)
    twidth = max(len(r.target) for r in rows)
    print()
    print(f"{'benchmark':<{width}}  {'value':>{vwidth}}  {'target':<{twidth}}  note")
    print(f"{'-' * width}  {'-' * vwidth}  {'-' * twidth}  ----")
    for r in rows:
        print(f"{r.benchmark:<{width}}  {r.value:>{vwidth}}  {r.target:<{twidth}}  {r.note}")
    print(f"\nsuite: {total:.0f} s on {os.cpu_count()} CPUs{' (--quick)' if a.quick else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
