"""Validate chipsim against SCALE-Sim, ZigZag and published hardware; regenerate docs/VALIDATION.md.

    python -m benchmarks.validate                 # everything (about 15 minutes on two busy cores)
    python -m benchmarks.validate --quick         # small SCALE-Sim shapes, ZigZag, A100 at batch 1 only
    python -m benchmarks.validate --no-write      # print the tables, leave docs/VALIDATION.md alone

The peers run in their own virtualenv (`.venv-peers`, made by `.ci/run` or by hand:
`python3 -m venv .venv-peers && .venv-peers/bin/pip install scalesim==3.0.0 zigzag-dse six 'numpy<2.3'`),
through `benchmarks/peers/*_oracle.py` as subprocesses (`benchmarks.peers.runner`), so this environment never
imports them. chipsim's side is the real command path: `chipsim.app.gemm.run_gemm` (what `chipsim gemm` runs) with
`ideal_memory=True` for SCALE-Sim, the mapper and executor on a ZigZag-like chip for ZigZag
(`benchmarks.validate_zigzag`), and whole timing-only BERT runs for published hardware
(`benchmarks.validate_hardware`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.peers.runner import MISSING_HINT, SCALESIM_ORACLE, OracleRow, collect, num, peers_available, start_oracle
from benchmarks.validate_hardware import FULL_BATCH, HardwareResults, hardware_results, hardware_tables
from benchmarks.validate_zigzag import DIFFERENCES as ZIGZAG_DIFFERENCES
from benchmarks.validate_zigzag import INTRO as ZIGZAG_INTRO
from benchmarks.validate_zigzag import ZigZagRow, zigzag_rows, zigzag_tables
from chipsim import timing
from chipsim.config import Dataflow, Precision
from chipsim.app.gemm import run_gemm

ROOT = Path(__file__).resolve().parent.parent
VALIDATION_MD = ROOT / "docs" / "VALIDATION.md"
TARGET_ERROR_PCT = 2.0
TARGET_SCALESIM_RATIO = 1000.0
CHIPSIM_REPEATS = 3  # run_gemm calls per GEMM; the median wall time is reported


@dataclass(frozen=True, slots=True)
class GemmCase:
    """C[m,n] = A[m,k] @ B[k,n] on a `rows x cols` array with one dataflow."""

    m: int
    k: int
    n: int
    rows: int
    cols: int
    dataflow: Dataflow

    def as_json(self) -> dict[str, int | str]:
        return {"m": self.m, "k": self.k, "n": self.n, "rows": self.rows, "cols": self.cols, "dataflow": self.dataflow.value}


@dataclass(frozen=True, slots=True)
class ChipsimEstimate:
    cycles: int  # `chipsim gemm ... --ideal-memory --no-weight-double-buffer --no-fold-overlap` cycles
    wall_s: float  # median wall time of one run_gemm call (mapping-free ideal program + executor)
    cpu_s: float


@dataclass(frozen=True, slots=True)
class ScaleSimRow:
    case: GemmCase
    scalesim_cycles: int  # as reported (COMPUTE_REPORT "Total Cycles", CALC bandwidth)
    chipsim_cycles: int  # chipsim gemm --ideal-memory --no-weight-double-buffer --no-fold-overlap
    os_drain_cycles: int  # chipsim's output drain that SCALE-Sim's os code omits (0 for ws/is)
    scalesim_wall_s: float
    scalesim_cpu_s: float
    chipsim_wall_s: float
    chipsim_cpu_s: float

    @property
    def raw_error_pct(self) -> float:
        return 100.0 * (self.chipsim_cycles - self.scalesim_cycles) / self.scalesim_cycles

    @property
    def adjusted_residual_cycles(self) -> int:
        """chipsim minus SCALE-Sim after the documented conventions: SCALE-Sim reports the 0-based index of its
        last cycle (+1 to count cycles), and its os code has no output drain (chipsim's drain removed)."""
        return (self.chipsim_cycles - self.os_drain_cycles) - (self.scalesim_cycles + 1)

    @property
    def adjusted_error_pct(self) -> float:
        return 100.0 * self.adjusted_residual_cycles / (self.scalesim_cycles + 1)

    @property
    def speed_ratio(self) -> float:
        return self.scalesim_wall_s / self.chipsim_wall_s

    @property
    def cpu_speed_ratio(self) -> float:
        return self.scalesim_cpu_s / self.chipsim_cpu_s


# ---------------------------------------------------------------------------------------------------------
# chipsim side: `chipsim gemm M K N --rows R --cols C --dataflow D --ideal-memory --no-weight-double-buffer --no-fold-overlap`


def chipsim_ideal(case: GemmCase, *, repeats: int = CHIPSIM_REPEATS) -> ChipsimEstimate:
    """chipsim's ideal-memory cycles for one GEMM, and the wall and CPU time of one `run_gemm` call.

    SCALE-Sim loads every fold's stationary operand with the array idle, so the matched comparison turns weight
    double buffering and fold pipelining off (`--no-weight-double-buffer --no-fold-overlap`).
    """
    walls: list[float] = []
    cpus: list[float] = []
    cycles = 0
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        g = run_gemm(case.m, case.k, case.n, case.rows, case.cols, case.dataflow, Precision.INT8, ideal_memory=True,
                     weight_double_buffer=False, fold_overlap=False)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        cycles = g.cycles
    return ChipsimEstimate(cycles, statistics.median(walls), statistics.median(cpus))


def os_output_drain_cycles(case: GemmCase) -> int:
    """The R-cycle output drain per os fold that chipsim (and SCALE-Sim's paper) count and SCALE-Sim's code
    does not: ceil(m/R) * ceil(n/C) folds x R cycles; 0 for ws and is."""
    if case.dataflow is not Dataflow.OS:
        return 0
    return math.ceil(case.m / case.rows) * math.ceil(case.n / case.cols) * case.rows


# ---------------------------------------------------------------------------------------------------------
# SCALE-Sim (subprocesses in .venv-peers)


def scalesim_estimated_work(case: GemmCase) -> int:
    """SCALE-Sim's run time grows with its demand-matrix elements: (sum of fold lengths) x array columns."""
    return timing.scalesim_matmul_cycles(
        case.dataflow, case.rows, case.cols, case.m, case.k, case.n, timing.ScaleSimConvention.CODE
    ) * case.cols


def run_scalesim(cases: Sequence[GemmCase], jobs: int) -> list[OracleRow]:
    """Run the cases through SCALE-Sim in `jobs` parallel batches (balanced by estimated work), input order kept."""
    order = sorted(range(len(cases)), key=lambda i: -scalesim_estimated_work(cases[i]))
    buckets: list[list[int]] = [[] for _ in range(max(1, jobs))]
    loads = [0] * len(buckets)
    for i in order:
        b = loads.index(min(loads))
        buckets[b].append(i)
        loads[b] += scalesim_estimated_work(cases[i])
    procs = [(b, start_oracle(SCALESIM_ORACLE, [cases[i].as_json() for i in b])) for b in buckets if b]
    results: list[OracleRow | None] = [None] * len(cases)
    for b, proc in procs:
        for i, r in zip(b, collect(proc), strict=True):
            results[i] = r
    return [r for r in results if r is not None]


ARRAYS_SQUARE = ((8, 8), (16, 16), (32, 32), (64, 64), (128, 128), (256, 256))
ARRAYS_ODD = ((8, 32), (32, 8), (16, 64))
SMALL_SHAPES = ((1, 1, 1), (4, 4, 4), (13, 7, 29), (37, 50, 23), (100, 33, 65), (3, 200, 5))
BERT_SHAPES = (  # (m, k, n, arrays): BERT layer GEMMs where SCALE-Sim finishes in reasonable time
    (128, 768, 768, ((32, 32), (128, 128), (256, 256))),  # BERT-base QKV / attention output, seq 128
    (128, 768, 3072, ((128, 128),)),  # BERT-base FFN1
    (128, 3072, 768, ((256, 256),)),  # BERT-base FFN2
    (512, 1024, 4096, ((256, 256),)),  # BERT-large FFN1, seq 512
)
BERT_SIZE_MACS = 128 * 768 * 768  # the cases at or above this count as BERT-size GEMMs for the speed target


def scalesim_cases(quick: bool) -> list[GemmCase]:
    cases = [
        GemmCase(m, k, n, r, c, df)
        for (r, c) in ARRAYS_SQUARE + ARRAYS_ODD
        for (m, k, n) in SMALL_SHAPES
        for df in Dataflow
    ]
    if not quick:
        cases += [GemmCase(m, k, n, r, c, df) for (m, k, n, arrays) in BERT_SHAPES for (r, c) in arrays for df in Dataflow]
    else:
        cases += [GemmCase(128, 768, 768, 32, 32, df) for df in Dataflow]  # one BERT-size GEMM for the speed ratio
    return cases


def scalesim_rows(cases: Sequence[GemmCase], jobs: int) -> list[ScaleSimRow]:
    peer = run_scalesim(cases, jobs)  # first, alone: chipsim is timed after the peers finish
    run_gemm(32, 32, 32, 8, 8, Dataflow.WS, Precision.INT8, ideal_memory=True)  # warm imports and caches
    rows: list[ScaleSimRow] = []
    for case, r in zip(cases, peer, strict=True):
        est = chipsim_ideal(case)
        rows.append(
            ScaleSimRow(
                case=case,
                scalesim_cycles=int(num(r, "total_cycles")),
                chipsim_cycles=est.cycles,
                os_drain_cycles=os_output_drain_cycles(case),
                scalesim_wall_s=num(r, "wall_s"),
                scalesim_cpu_s=num(r, "cpu_s"),
                chipsim_wall_s=est.wall_s,
                chipsim_cpu_s=est.cpu_s,
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------------------
# report


def _geomean(xs: Sequence[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def _fmt_ratio(x: float) -> str:
    return f"{x:,.0f}x"


def _is_bert_size(r: ScaleSimRow) -> bool:
    return r.case.m * r.case.k * r.case.n >= BERT_SIZE_MACS


def scalesim_summary(rows: Sequence[ScaleSimRow]) -> list[str]:
    lines = [
        "| dataflow | cases | max abs raw error | mean abs raw error | cases within 2% raw "
        "| max abs error after conventions | speed ratio, all cases (geomean) | speed ratio, BERT-size GEMMs (min .. max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for df in Dataflow:
        rs = [r for r in rows if r.case.dataflow is df]
        if not rs:
            continue
        raw = [abs(r.raw_error_pct) for r in rs]
        adj = [abs(r.adjusted_error_pct) for r in rs]
        within = sum(1 for x in raw if x <= TARGET_ERROR_PCT)
        big = [r.speed_ratio for r in rs if _is_bert_size(r)]
        big_s = f"{_fmt_ratio(min(big))} .. {_fmt_ratio(max(big))}" if big else "-"
        lines.append(
            f"| {df.value} | {len(rs)} | {max(raw):.3f}% | {statistics.fmean(raw):.3f}% | {within}/{len(rs)} "
            f"| {max(adj):.3f}% | {_fmt_ratio(_geomean([r.speed_ratio for r in rs]))} | {big_s} |"
        )
    return lines


def scalesim_headline(rows: Sequence[ScaleSimRow]) -> str:
    """The speed target: >= 1000x on BERT-size GEMMs at <= 2% cycle difference."""
    ok = [r for r in rows if _is_bert_size(r) and abs(r.raw_error_pct) <= TARGET_ERROR_PCT]
    if not ok:
        return "No BERT-size GEMM in this run is within 2% raw (run without --quick for the ws and is cases)."
    worst = min(ok, key=lambda r: r.speed_ratio)
    verdict = "met" if worst.speed_ratio >= TARGET_SCALESIM_RATIO else "NOT met"
    return (
        f"Target (>= {TARGET_SCALESIM_RATIO:,.0f}x at <= 2% cycle difference on BERT-size GEMMs): {verdict}. "
        f"{len(ok)} BERT-size GEMMs within 2% raw; slowest ratio {_fmt_ratio(worst.speed_ratio)} "
        f"({worst.case.m}x{worst.case.k}x{worst.case.n} {worst.case.dataflow.value} on {worst.case.rows}x{worst.case.cols}: "
        f"SCALE-Sim {worst.scalesim_wall_s:.1f} s, chipsim {worst.chipsim_wall_s * 1e3:.1f} ms). "
        f"os is outside the 2% set by convention 4 (R cycles per fold), not by a disagreement on the folds."
    )


def chip_build_share(case: GemmCase, repeats: int = 20) -> tuple[float, float]:
    """(wall s of one run_gemm call, the part of it spent building the chip config) for `case`."""
    from chipsim.app.gemm import gemm_chip

    t0 = time.perf_counter()
    for _ in range(repeats):
        run_gemm(case.m, case.k, case.n, case.rows, case.cols, case.dataflow, Precision.INT8, ideal_memory=True,
                 weight_double_buffer=False, fold_overlap=False)
    t1 = time.perf_counter()
    for _ in range(repeats):
        gemm_chip(case.rows, case.cols, case.dataflow, Precision.INT8, ideal_memory=True, weight_double_buffer=False,
                  fold_overlap=False, partial_folds=True)  # as run_gemm calls it, so the same cached config
    t2 = time.perf_counter()
    return (t1 - t0) / repeats, (t2 - t1) / repeats


def speed_note(rows: Sequence[ScaleSimRow]) -> str:
    big = [r for r in rows if _is_bert_size(r)]
    if not big:
        return ""
    slow = min(big, key=lambda r: r.speed_ratio)
    total, chip = chip_build_share(slow.case)
    return (
        f"Where chipsim's time goes: on {slow.case.m}x{slow.case.k}x{slow.case.n} {slow.case.dataflow.value} on "
        f"{slow.case.rows}x{slow.case.cols}, one `run_gemm` call takes {total * 1e3:.2f} ms, of which "
        f"{chip * 1e3:.2f} ms ({100 * chip / total:.0f}%) is `chipsim.app.gemm.gemm_chip` building the chip config; "
        f"the GEMM's program and its execution take the other {(total - chip) * 1e3:.2f} ms (measured after the "
        f"table, in this run). SCALE-Sim's time grows with the folds, so the "
        f"ratio is lowest on the largest arrays, where SCALE-Sim has few folds to simulate."
    )


def scalesim_table(rows: Sequence[ScaleSimRow]) -> list[str]:
    lines = [
        "| array | df | M x K x N | SCALE-Sim cycles | chipsim cycles | raw error | after conventions (cycles) "
        "| SCALE-Sim wall s | chipsim wall ms | speed ratio (wall) | (CPU) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        c = r.case
        lines.append(
            f"| {c.rows}x{c.cols} | {c.dataflow.value} | {c.m}x{c.k}x{c.n} | {r.scalesim_cycles:,} | {r.chipsim_cycles:,} "
            f"| {r.raw_error_pct:+.3f}% | {r.adjusted_residual_cycles:+d} | {r.scalesim_wall_s:.2f} "
            f"| {r.chipsim_wall_s * 1e3:.2f} | {_fmt_ratio(r.speed_ratio)} | {_fmt_ratio(r.cpu_speed_ratio)} |"
        )
    return lines


def render(ss: Sequence[ScaleSimRow], zz: Sequence[ZigZagRow], hw: HardwareResults | None, *, command: str,
           total_s: float) -> str:
    parts = [HEADER.format(command=command, total_s=total_s)]
    parts += [SCALESIM_INTRO, "### Summary per dataflow", "", *scalesim_summary(ss), "", scalesim_headline(ss), "", speed_note(ss), ""]
    parts += ["### Every case", "", *scalesim_table(ss), ""]
    parts += [CONVENTIONS, ARRAY_REFERENCE]
    if zz:
        parts += [ZIGZAG_INTRO, *zigzag_tables(list(zz)), "", ZIGZAG_DIFFERENCES]
    if hw is not None:
        errors = {f"{x.precision.value}_{x.batch}": f"{x.error_pct:+.0f}%" for x in hw.predictions}
        parts += [HARDWARE_INTRO, *hardware_tables(hw), "", HARDWARE_NOTES.format_map(_Missing(errors))]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Validate chipsim against SCALE-Sim, ZigZag and published hardware.")
    p.add_argument("--quick", action="store_true", help="small SCALE-Sim shapes (+ one BERT GEMM); A100 at batch 1 only")
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)), help="parallel SCALE-Sim batches")
    p.add_argument("--no-zigzag", action="store_true", help="skip the ZigZag comparison")
    p.add_argument("--no-hardware", action="store_true", help="skip the published-hardware comparison")
    p.add_argument("--batches", type=int, nargs=2, default=(16, 32), metavar=("B1", "B2"),
                   help=f"A100 batches simulated for the batch-{FULL_BATCH} point: extrapolated from B1 and B2 unless "
                   f"one is {FULL_BATCH} (default 16 32)")
    p.add_argument("--no-write", action="store_true", help="print only; do not rewrite docs/VALIDATION.md")
    p.add_argument("--json", type=Path, help="also write the raw rows as JSON to this path")
    a = p.parse_args(argv)
    if not peers_available():
        print(f"error: {MISSING_HINT}", file=sys.stderr)
        return 2
    if min(a.batches) < 2 or a.batches[0] == a.batches[1]:
        print("error: --batches needs two different batches >= 2, e.g. --batches 16 32", file=sys.stderr)
        return 2
    start = time.perf_counter()
    cases = scalesim_cases(a.quick)
    print(f"SCALE-Sim: {len(cases)} GEMMs in {a.jobs} parallel batches ...", flush=True)
    ss = scalesim_rows(cases, a.jobs)
    print("\n".join(scalesim_summary(ss)), flush=True)
    print(scalesim_headline(ss), flush=True)
    zz: list[ZigZagRow] = []
    if not a.no_zigzag:
        print("ZigZag: BERT-base layer GEMMs ...", flush=True)
        zz = zigzag_rows()
        print("\n".join(zigzag_tables(zz)), flush=True)
    hw: HardwareResults | None = None
    if not a.no_hardware:
        print("Published hardware: BERT-base seq 128 on the A100 and TPUv1 presets ...", flush=True)
        hw = hardware_results(tuple(sorted(a.batches)) if not a.quick else None, sensitivity=not a.quick)
        print("\n".join(hardware_tables(hw)), flush=True)
    total_s = time.perf_counter() - start
    if a.json:
        a.json.write_text(json.dumps({
            "scalesim": [{**r.case.as_json(), **{k: v for k, v in asdict(r).items() if k != "case"}} for r in ss],
            "zigzag": [{"name": r.case.name, **{k: v for k, v in asdict(r).items() if k != "case"}} for r in zz],
            "hardware": None if hw is None else {
                "runs": [{**asdict(r), "precision": r.precision.value} for r in (*hw.runs, *hw.sensitivity, hw.tpuv1)],
                "predictions": [{**asdict(x), "precision": x.precision.value, "error_pct": x.error_pct} for x in hw.predictions],
            },
        }, indent=1))
    if not a.no_write:
        command = "python -m benchmarks.validate" + (" --quick" if a.quick else "")
        VALIDATION_MD.parent.mkdir(parents=True, exist_ok=True)
        VALIDATION_MD.write_text(render(ss, zz, hw, command=command, total_s=total_s))
        print(f"wrote {VALIDATION_MD.relative_to(ROOT)} ({total_s:.0f} s)")
    return 0


# ---------------------------------------------------------------------------------------------------------
# the fixed text of docs/VALIDATION.md

HEADER = """# Validation

How far chipsim agrees with peer simulators and with published hardware, case by case. This file is generated:
edit `benchmarks/validate*.py` and rerun `{command}` (this run: {total_s:.0f} s wall). The peers run from their
own virtualenv `.venv-peers` (SCALE-Sim 3.0.0, ZigZag 3.9.1, numpy < 2.3) as subprocesses; `.ci/run` creates it,
and `tests/test_validation_scalesim.py` repeats a handful of the SCALE-Sim cases live in CI.

chipsim's side goes through its real entry points: `chipsim.app.gemm.run_gemm`, the function behind
`chipsim gemm M K N --rows R --cols C --dataflow D [--ideal-memory] [--no-weight-double-buffer] [--no-fold-overlap]`, called in
process, and `chipsim.app.runner.run`, the function behind `chipsim run`. Speed ratios divide the peer's wall time
for one GEMM (inside the peer: configuration, simulation and reports; interpreter start-up excluded) by the
median wall time of one `run_gemm` call on the same GEMM in the same run, timed after the peers have finished
(CPU-time ratios are given too: the machine is shared, and both sides are single-threaded).

Energy, area and cost are calibrated against their published sources in `docs/CALIBRATION.md` (written by hand:
the TPUv1 floor-plan check per block, the 45 nm and 7 nm energy tables, the cost model). Every figure below was
produced by this code. Since the regeneration before it the attention sharing the fused projection's phase goes in
among its tiles by the fastest of three orders, each run as the phase alone, the weight tiles loaded ahead count the
DMA engines' rate where it is below the DRAM's, and new weight slots fill stretches that used-up ones freed (TPUv1
2.803 -> 2.791 ms and 29.81 -> 29.80 mJ; A100 int8 batch 1 0.290 -> 0.284 ms; A100 bf16 batch 16 3.604 -> 3.611 ms
and batch 32 5.359 -> 5.376 ms, so its batch-128 extrapolation 15.889 -> 15.962 ms; every other figure below but the
wall times is as it was). Before that the LDW that puts a GEMM's first weight fold into the
array runs right after the last MATMUL of the kernel before, under its last epilogue (TPUv1 2.804 -> 2.803 ms and
29.82 -> 29.81 mJ; every other figure below but the wall times is as it was). Before that the fused Q|K|V projection and the attention came to share one
phase (no barrier between them: the projection's tiles, dealt in head order, go in rounds to the cores running
their heads, each head starting once its round is in, and where the vector unit would idle between the
projection's epilogues the first head's softmax goes in among them). Before that the output projection and FFN2
came to share one phase with the LayerNorm after each (their fp32 rows go to their owners in rounds of the
LayerNorm's items, and each item is normalized as soon as its round is in), and the mapper to keep
the attention's Q|K|V on chip where that program runs faster (gathered in column blocks of one head; TPUv1's DRAM
traffic fell from 90.1 MB to 86.6 MB, 1.02x its weights), to let the attention's first scores wait only for their head's K and Q, to put the last
P V's V into the array while it waits, to run a core's last GEMM epilogue in row pieces stored or sent one by one,
and to send row blocks to their owner cores round the ring (TPUv1 3.004 ms -> 2.833 ms, A100 int8 batch 1 0.263 ->
0.257 ms). Before that the array came to count partial folds (a fold smaller than the array loads only its rows
and is done with its last used column: `core.tensor_core.partial_folds`), and the mapper to put a GEMM's first
weight fold into the array before the barrier in front of it (LDW, then MATMUL preloaded=1), to keep activations
on chip where they fit (117.7 MB to 90.1 MB), to move each residual add into the LayerNorm after it, and to load
weight tiles during the vector-bound kernels before their GEMM.
"""

SCALESIM_INTRO = """## Against SCALE-Sim 3.0.0 (compute cycles, ideal memory)

SCALE-Sim runs each GEMM in GEMM mode (topology `Layer, M, N, K,`) with `InterfaceBandwidth: CALC`, where its
memory never stalls the array, and 64 MiB SRAMs; its "Total Cycles" is compared with
`chipsim gemm M K N --ideal-memory --no-weight-double-buffer --no-fold-overlap` (operands on chip, unlimited SRAM ports; every fold
loads its stationary operand with the array idle, as SCALE-Sim does). *Raw error* is
(chipsim - SCALE-Sim) / SCALE-Sim. *After conventions* is the difference in cycles once the two conventions below
are applied (SCALE-Sim's 0-based last-cycle index, +1; SCALE-Sim's missing os output drain, chipsim's R cycles
per os fold removed). Zero there means the two models agree cycle for cycle on every fold.
"""

HARDWARE_INTRO = """## Against published hardware (BERT-Base, seq 128, timing-only runs)

`chipsim run` with `workload: {model: bert-base, seq_len: 128, batch: B}` and `functional: false` on the presets
`chipsim/chips/a100.yaml` (one core per SM, 108 cores, each SM's 4 tensor cores as one 64 x 32 int8 array, or
32 x 32 bf16 at half the int8 rate, 1410 MHz, 1555 GB/s HBM2; every number sourced in the file) and
`chipsim/chips/tpuv1.yaml`. The published figures are NVIDIA's TensorRT measurements on A100-40GB (TensorRT
demo/BERT README): 0.58 ms int8 and 0.67 ms fp16 at batch 1, 8.18 ms int8 and 16.14 ms fp16 at batch 128.
chipsim has no fp16; bf16 stands in for it (the same tensor-core rate on the A100, the same bytes).
Nothing is fitted to these numbers. A batch-128 run takes long here (the simulation's cost grows with the
instructions, about linearly in batch), so unless `--batches` includes 128 the batch-128 point is extrapolated
along the line through two simulated batches (latency = fixed part + per-sequence part), which is exact once
every phase is throughput-bound and per-sequence cost no longer falls with batch; the table says which. A direct
batch-128 simulation (`--batches 32 128`) takes about 12 minutes and 3 GB of memory per precision on one busy
core here; one made during this work landed within 7% of the extrapolated int8 figure.
"""

class _Missing(dict):
    """str.format_map that leaves a figure this run did not measure as "not measured"."""

    def __missing__(self, key: str) -> str:
        return "not measured"


HARDWARE_NOTES = """### Why the A100 prediction differs (modelling gaps, not fitted away)

- *The L2, as a cache of DRAM bytes.* The preset's 40 MB L2 is chipsim's global buffer: a chip-wide LRU cache
  holding exactly the bytes moved (recency per 4 KiB block), read at 5120 B/clock (`chipsim/global_buffer.py`). The mapper's re-reads (at batch 1 each
  of the 108 cores that computes a block of output columns reads the whole activation matrix; from batch 16 up
  a layer's weights are re-read for every block of rows, since an SM's 164 KiB of shared memory holds few rows)
  now mostly hit it, as on the GPU; the "DRAM MB / seq" column counts what reaches HBM (hits excluded), never
  less than the weights. Before the buffer was modelled the batch-128 predictions were 2.0-2.2x the
  measurements; with it int8 is at {int8_128} and bf16 at {bf16_128}. The buffer is an idealised cache: no sectors,
  no set conflicts, no L2 partitions (the A100 splits its L2 in two halves with a slower crossbar between them).
- *Batch 1 is faster than measured (int8 {int8_1}, bf16 {bf16_1}; pipelined folds, the pipelined vector unit and
  weight tiles loaded during the kernels before their GEMM made chipsim faster still).* What chipsim leaves
  out costs the GPU most at
  batch 1: about 100 kernel launches per inference (a few microseconds each), synchronisation between them,
  and TensorRT's int8 kernels keeping some layers in fp16/fp32. chipsim's barriers between kernels are free.
- *Kernels separated by barriers, results through DRAM.* chipsim's mapper runs one kernel at a time (but a projection
  and the LayerNorm after it, where the projection's rows stay on chip). It keeps
  activations on chip where a core's memory holds them (`mapper/on_chip.py`), but an SM's 164 KiB does not, so on
  this preset every kernel writes its result to the L2 / DRAM; TensorRT fuses more (e.g. the whole attention of
  a head in one kernel, as chipsim also does, but also bias/GELU/residual/LayerNorm into GEMM epilogues and
  across layers).
- *Attention at batch 1.* chipsim places attention per head: 12 heads keep 12 of 108 cores busy at batch 1, so
  the attention phase is a large share of the batch-1 latency (see the phase columns). TensorRT splits a head's
  query rows over several SMs.
- *Array granularity.* An SM's 4 tensor cores are one 64 x 32 array here: a fold's wavefront skew is 94 cycles,
  where 4 independent 32 x 16 arrays pay 46 but each holds a quarter of the SM's memory. The 432-core row shows
  how much the granularity alone moves the batch-1 figure (the mapper then splits every GEMM 4x finer and
  attention still runs on 12 cores).
- *Not modelled:* kernel launch gaps (a few microseconds each, about 100 kernels per BERT-base inference on the
  GPU), warp scheduling and register-file bank conflicts, the CUDA cores' epilogue throughput beyond 64 fp32
  lanes per SM, clock throttling under load (the 1410 MHz boost clock is assumed throughout), and TensorRT's
  int8 kernels keeping some layers (softmax, LayerNorm) in fp16/fp32.

### TPUv1

The preset's numbers match Jouppi et al., ISCA 2017: 256 x 256 = 65,536 int8 MACs at 700 MHz (chipsim's peak
91.75 TOPS against the paper's 92), 24 MiB Unified Buffer (16 MiB scratchpad + 8 MiB global buffer, the ISA's
24-bit addresses cap a scratchpad at 16 MiB) and 4 MiB of accumulators, two DDR3-2133 channels at 34 GB/s,
28 nm. No BERT measurement on TPUv1 has been published, so its row is a prediction only: BERT-base's 85 MB of
int8 weights alone take 2.5 ms at 34 GB/s, and chipsim's run is DRAM-bound (the bound column). On the real
TPUv1 activations stay in the 24 MiB Unified Buffer (the host fills it over PCIe) and only weights come from
DDR3; chipsim keeps them on chip too, the fused Q|K|V output included (gathered in column blocks of a head).
"""

ARRAY_REFERENCE = """## The cycle-level array model, the closed forms and SCALE-Sim

`chipsim/array_reference.py` runs the systolic array one clock at a time (numba): PE registers, operand skew,
weight double-buffering with the swap travelling with the wavefront (ws/is), output registers read out of each
column (os), accumulation, and real values (int8 with int32 accumulation, bf16 with fp32 accumulation). It
records the cycle each output leaves the array and the cycle each MATMUL's last wavefront leaves. Its kernels
check every register rule (a MAC uses the weight of its own fold and row, operands that meet belong together,
an output register is empty when a sum moves into it), so a fold schedule that overlapped too much would stop
with a hazard rather than compute wrong numbers; tests/test_array_reference.py shows the checks firing when a
fold is issued one cycle early.

| | cycle-level model | closed forms (`chipsim/timing.py`) | SCALE-Sim 3.0.0 |
|---|---|---|---|
| what it is | registers advanced one clock at a time, real values | one formula per MATMUL (cached) | per-fold demand matrices (Python), no values |
| folds | pipelined (default) or per fold, both run | both, `core.tensor_core.fold_overlap` | per fold only |
| weight double-buffering | shadow registers, swap with the wavefront | `weight_double_buffer` | none |
| back-to-back MATMULs | one run of folds across instructions | `after_matmul_stream` (executor: consecutive MXU MATMULs) | one GEMM per run |
| agreement | ground truth | exactly equal to the model on every case tested | exactly equal to the closed forms under `--no-weight-double-buffer --no-fold-overlap` after conventions 1 and 4 |
| speed | ~30,000-110,000 simulated cycles/s on a 32x32 array | ~100,000-300,000 MATMULs/s uncached, 10^8-10^9 cycles/s | see the speed ratios above |

How they are tied. tests/test_array_reference.py draws random arrays (1..32 rows and columns), every dataflow,
one to three back-to-back MATMULs of 1..40 per dimension, with and without weight double-buffering,
pipelined folds and partial folds, int8 and bf16, and asserts that the model's end of each MATMUL equals the
closed forms' (each continuing the run before it: `chipsim.timing.continued_run`) exactly, and that its outputs
equal A @ B (int8 bit-exact, bf16 within fp32 rounding); a one-off run of 400 further random cases up to 69 per
dimension found no difference, nor did 500 with partial folds (arrays up to 12 x 12, up to four MATMULs of
1..30 per dimension). SCALE-Sim is tied to the
closed forms under its convention by the table above (tests/test_validation_scalesim.py runs some cases live),
and so, through them, to the model with `fold_overlap=False`.

What pipelining changes. With the fill and drain paid once per run of folds, an ideal-memory 128x768x2304 GEMM
on a 128x128 ws array takes 14,206 cycles (97.3% utilization) against 41,384 (33.4%) per fold, which was the
ceiling at M = 128 whatever the mapper did (tests/test_run.py). The rules, derived in `## Timing` of
isa/SPEC.md: ws/is with a shadow pay `R + (F - 1) * max(T, R) + T + R + C - 2` (a load shows only when the
stream T is shorter than R), without one `F * (T + R) + R + C - 2`; os pays `(F - 1) * max(T, R) + T + 2R + C - 2`.
The default BERT NER run (`chipsim run bert_ner.yaml --timing-only`) went from 255,889 to 237,093 cycles (-7.3%)
with pipelined folds: its MATMULs are mostly DRAM- and dependency-bound, so the array's saving shows only in
part. The pipelined vector unit with per-op latencies (`## Timing` in isa/SPEC.md) then brings it to 239,456.

Speeds from `python -m benchmarks.bench_array_reference` on the shared 2-core development machine (int8, 32x32,
pipelined; numba's one-off compile 7-13 s; three runs, which varied with the machine's load): ws and is 50,000 to
110,000 simulated cycles/s, os 30,000 to 43,000; the uncached closed form 100,000 to 300,000 evaluations/s,
10^4 to 10^5 times faster in cycles covered per second.
"""

CONVENTIONS = """## Conventions, and why chipsim's are what they are

Read from `scalesim/compute/systolic_compute_{ws,os,is}.py` and `scalesim/memory/double_buffered_scratchpad_mem.py`
of the installed 3.0.0 wheel. T is the streamed dimension: ws T = M, os T = K, is T = N.

| # | convention | SCALE-Sim 3.0.0 | chipsim | agree? |
|---|---|---|---|---|
| 1 | what "cycles" counts | `total_cycles = max(ofmap serviced cycle)`: the 0-based index of the last cycle, one less than the number of cycles (reported: 9 cycles where its own trace has 10, scalesim-project/SCALE-Sim#125) | cycles from the first to the last, both included (a one-cycle operation costs 1) | no: SCALE-Sim + 1 = chipsim on every case; 1 cycle per GEMM, so above 2% only for GEMMs under 50 cycles |
| 2 | ws fold | ifmap demand: R weight-load rows + T + (C - 1) drain, skewed by R - 1: 2R + C + T - 2 | R load + T stream + (R + C - 2) skew | yes |
| 3 | is fold | the ws mirror, A^T stationary (Sr = K, Sc = M): 2R + C + T - 2 | the same | yes |
| 4 | os fold | T + (C - 1), skewed by R - 1: R + C + T - 2 (the ISPASS 2020 paper, Table 1: 2R + C + T - 2; the maintainers agree the code is short by R, scalesim-project/scale-sim-v3#4) | T + (R + C - 2) skew + R output drain = 2R + C + T - 2, as the paper | no: chipsim is R per os fold above SCALE-Sim's code |
| 5 | first stationary load | counted in every fold, the first included | counted; `weight_double_buffer` hides all but the first, `preloaded` (an earlier LDW) the first as well | yes with `weight_double_buffer=False, fold_overlap=False` |
| 6 | overlap between folds | none: fold demand matrices are concatenated | with `fold_overlap=False`, none without double buffering, and with it the next fold's load hides under the current stream; with `fold_overlap` (the default) folds pipeline as the cycle-level array model runs them: one fill and drain per run of folds | yes with `weight_double_buffer=False, fold_overlap=False` (`--no-weight-double-buffer --no-fold-overlap`) |
| 7 | partial folds (edge tiles) | padded with null requests to the full R x C array: full skew and load | the same under the per-fold convention (skew R + C - 2, load R, whatever the tile uses); with pipelined folds, `partial_folds` (the default) loads only the rows a fold uses and ends it with its last used column (R + w - 2) | yes with `fold_overlap=False` (or `--no-partial-folds`) |
| 8 | memory | CALC bandwidth: no stalls, zero stall cycles on every case | `--ideal-memory`: no DMA or SRAM-port stalls | yes |
| 9 | GEMM mapping | `M, N, K` -> conv with an M x K ifmap, a 1 x K filter, N filters: ws folds ceil(K/R) ceil(N/C), os ceil(M/R) ceil(N/C), is ceil(K/R) ceil(M/C) | the same fold counts | yes |

Why chipsim keeps its two differing conventions:

1. *Counting cycles.* A count of cycles is what a latency at a clock is made of (cycles / f); an index is not.
   SCALE-Sim's own per-fold bookkeeping (`cycles_this_fold = rows + cols - 1` of its demand matrices) counts
   lengths, and only its final report takes the last index; its issue tracker has the same off-by-one reported.
2. *os output drain.* In an output-stationary array the R x C sums sit in the PEs after the last operand pair
   (PE (R-1, C-1) does its last MAC in cycle T + R + C - 2, counting the first input's cycle as 1) and leave through the bottom edge over the
   column links, one array row per cycle, which takes R more cycles; SCALE-Sim's comment in the same function
   says the outputs stream out of the bottom edge, but its demand matrix writes each output row in the cycle
   its last MAC happens, as if every PE had its own port to the output SRAM. The paper and the maintainers
   give 2R + C + T - 2. Under pipelined folds (the default) the drain overlaps the next fold's stream, as the
   cycle-level array model shows (below); under `fold_overlap=False` every fold pays it.

chipsim's default chip double-buffers the stationary operand and pipelines folds, which SCALE-Sim cannot
express: a ws or is fold then costs max(T, R) instead of 2R + C + T - 2, and the fill and drain are paid once
(e.g. 128x768x768 ws on 32x32: 73,822 cycles against the matched 127,872, 42% fewer; see the next section).
"""


if __name__ == "__main__":
    sys.exit(main())
