"""chipsim against published hardware: BERT-Base on the A100 preset (TensorRT measurements) and the TPUv1 preset.

Timing-only runs of BERT-base at seq 128 through the whole pipeline (`chipsim.app.runner.run`). Nothing here is
fitted: the presets' numbers come from the vendors' documents cited in `chipsim/chips/{a100,tpuv1}.yaml`.
Part of `python -m benchmarks.validate`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from chipsim.config import Precision
from chipsim.app.runconfig import run_config_from_dict
from chipsim.app.runner import run

SEQ_LEN = 128
FULL_BATCH = 128
# NVIDIA TensorRT demo/BERT README, "Inference performance: NVIDIA A100 (40GB)": BERT-Base, seq 128, ms per batch
PUBLISHED_A100_MS: dict[tuple[Precision, int], float] = {
    (Precision.INT8, 1): 0.58,
    (Precision.BF16, 1): 0.67,  # fp16 measured; bf16 is chipsim's 16-bit float (same tensor-core rate on A100)
    (Precision.INT8, FULL_BATCH): 8.18,
    (Precision.BF16, FULL_BATCH): 16.14,
}
# bf16 on the A100 preset: an SM's 4 tensor cores do 4 x 256 fp16 MACs per clock (312 TFLOPS, half the int8
# rate; NVIDIA A100 whitepaper), a 32 x 32 array (see chipsim/chips/a100.yaml).
A100_BF16 = ("chip.core.tensor_core.rows=32", "chip.core.tensor_core.cols=32", "chip.core.tensor_core.precision=bf16")
# The finer model: every tensor core its own core with a quarter of its SM's resources (chipsim/chips/a100.yaml).
A100_432_CORES = (
    "chip.mesh.rows=18", "chip.mesh.cols=24", "chip.core.tensor_core.rows=32", "chip.core.tensor_core.cols=16",
    "chip.core.scratchpad.size_kib=41", "chip.core.scratchpad.banks=1", "chip.core.scratchpad.bytes_per_cycle=32",
    "chip.core.accumulator.size_kib=64", "chip.core.accumulator.banks=1", "chip.core.accumulator.bytes_per_cycle=128",
    "chip.core.vector.lanes=16", "chip.core.dma.bytes_per_cycle=12", "chip.core.dma.engines=1",
)
# the per-layer kinds in layer order; a projection and the LayerNorm after it may share one phase (attn_out+ln1), the
# fused projection and the attention another (qkv+attn)
PHASES = ("emb", "qkv", "attn", "qkv+attn", "attn_out", "ln1", "attn_out+ln1", "ffn1", "ffn2", "ln2", "ffn2+ln2", "cls")


@dataclass(frozen=True, slots=True)
class HwRun:
    label: str
    chip: str
    precision: Precision
    batch: int
    cycles: int
    latency_ms: float
    bound_ms: float  # the chip's bound (chipsim.bound): compute, compulsory DRAM bytes, vector work
    bound_limiter: str
    utilization: float
    energy_mj_per_seq: float
    dram_mb_per_seq: float  # DRAM bytes read + written over the run, per sequence
    compute_bound_ms: float  # MACs / peak MACs per cycle, at the clock
    phase_cycles: dict[str, int]  # per_layer cycles summed by phase kind (qkv, attn, ffn1, ...)
    wall_s: float


def timing_run(label: str, chip: str, batch: int, overrides: Sequence[str] = ()) -> HwRun:
    cfg = run_config_from_dict(
        {"chip": chip, "workload": {"model": "bert-base", "seq_len": SEQ_LEN, "batch": batch}, "functional": False},
        overrides=list(overrides),
    )
    t0 = time.perf_counter()
    rec = run(cfg, functional=False).record
    wall = time.perf_counter() - t0
    phases: dict[str, int] = {}
    for layer in rec.per_layer:
        phases[layer.kind] = phases.get(layer.kind, 0) + layer.cycles
    dram_bytes = rec.dram_bytes
    compute_ms = rec.macs / cfg.chip.peak_macs_per_cycle / cfg.chip.clock_hz * 1e3
    return HwRun(label, chip, cfg.chip.core.tensor_core.precision, batch, rec.cycles, rec.latency_s * 1e3,
                 rec.bound_cycles / cfg.chip.clock_hz * 1e3, rec.bound_limiter, rec.utilization,
                 rec.energy_j * 1e3, dram_bytes / batch / 1e6, compute_ms, phases, wall)


@dataclass(frozen=True, slots=True)
class Prediction:
    """chipsim's latency for one published point, measured at `FULL_BATCH` or extrapolated from two batches."""

    precision: Precision
    batch: int
    predicted_ms: float
    published_ms: float
    how: str

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.predicted_ms - self.published_ms) / self.published_ms


def extrapolate(lo: HwRun, hi: HwRun, batch: int) -> float:
    """Latency at `batch` on the line through two measured batches (a fixed part + a per-sequence part)."""
    slope = (hi.latency_ms - lo.latency_ms) / (hi.batch - lo.batch)
    return hi.latency_ms + slope * (batch - hi.batch)


@dataclass(frozen=True, slots=True)
class HardwareResults:
    runs: tuple[HwRun, ...]
    predictions: tuple[Prediction, ...]
    sensitivity: tuple[HwRun, ...]  # the 432-core A100 model at batch 1
    tpuv1: HwRun


def hardware_results(batches: tuple[int, int] | None, *, sensitivity: bool, progress: bool = True) -> HardwareResults:
    """A100 int8/bf16 at batch 1 and at `batches` (FULL_BATCH measured directly when it is among them; no
    batch-FULL_BATCH point when `batches` is None)."""
    runs: list[HwRun] = []
    preds: list[Prediction] = []
    for prec, sets in ((Precision.INT8, ()), (Precision.BF16, A100_BF16)):
        tag = prec.value
        one = timing_run(f"a100 {tag}", "a100", 1, sets)
        runs.append(one)
        if progress:
            print(f"  a100 {tag} batch 1: {one.latency_ms:.3f} ms ({one.wall_s:.0f} s)", flush=True)
        preds.append(Prediction(prec, 1, one.latency_ms, PUBLISHED_A100_MS[(prec, 1)], "simulated"))
        big: list[HwRun] = []
        for b in batches or ():
            r = timing_run(f"a100 {tag}", "a100", b, sets)
            runs.append(r)
            big.append(r)
            if progress:
                print(f"  a100 {tag} batch {b}: {r.latency_ms:.3f} ms ({r.wall_s:.0f} s)", flush=True)
        full = [r for r in big if r.batch == FULL_BATCH]
        if not big:
            continue
        if full:
            preds.append(Prediction(prec, FULL_BATCH, full[0].latency_ms, PUBLISHED_A100_MS[(prec, FULL_BATCH)], "simulated"))
        else:
            lo, hi = sorted(big, key=lambda r: r.batch)
            how = f"extrapolated linearly from batches {lo.batch} and {hi.batch}"
            preds.append(Prediction(prec, FULL_BATCH, extrapolate(lo, hi, FULL_BATCH), PUBLISHED_A100_MS[(prec, FULL_BATCH)], how))
    sens: list[HwRun] = []
    if sensitivity:
        s = timing_run("a100 int8, 432 cores", "a100", 1, A100_432_CORES)
        sens.append(s)
        if progress:
            print(f"  a100 int8 432 cores batch 1: {s.latency_ms:.3f} ms ({s.wall_s:.0f} s)", flush=True)
    tpu = timing_run("tpuv1 int8", "tpuv1", 1)
    if progress:
        print(f"  tpuv1 int8 batch 1: {tpu.latency_ms:.3f} ms ({tpu.wall_s:.0f} s)", flush=True)
    return HardwareResults(tuple(runs), tuple(preds), tuple(sens), tpu)


def hardware_tables(h: HardwareResults) -> list[str]:
    runs = (*h.runs, *h.sensitivity, h.tpuv1)
    seen = {p for r in runs for p in r.phase_cycles}
    kinds = [p for p in PHASES if p in seen] + sorted(seen - set(PHASES))  # the kinds the runs have, in layer order
    lines = [
        "| precision | batch | published (TensorRT, A100-40GB) ms | chipsim ms | error | how |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for p in h.predictions:
        lines.append(f"| {p.precision.value} | {p.batch} | {p.published_ms:.2f} | {p.predicted_ms:.3f} | {p.error_pct:+.1f}% | {p.how} |")
    lines += [
        "",
        "Every simulated run (wall = time this simulation took here):",
        "",
        "| run | batch | chipsim ms | bound ms (limiter) | compute bound ms | DRAM MB / seq | MAC utilization "
        "| energy mJ / seq | "
        + " | ".join(f"{p} %" for p in kinds)
        + " | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(kinds) + "---:|",
    ]
    for r in runs:
        total = sum(r.phase_cycles.values()) or 1
        shares = " | ".join(f"{100 * r.phase_cycles.get(p, 0) / total:.0f}" for p in kinds)
        lines.append(
            f"| {r.label} | {r.batch} | {r.latency_ms:.3f} | {r.bound_ms:.3f} ({r.bound_limiter}) "
            f"| {r.compute_bound_ms:.3f} | {r.dram_mb_per_seq:.1f} | {100 * r.utilization:.1f}% | {r.energy_mj_per_seq:.2f} | {shares} | {r.wall_s:.0f} |"
        )
    return lines
