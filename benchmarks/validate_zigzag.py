"""chipsim against ZigZag on BERT-base layer GEMMs: latency and energy on ZigZag's TPU-like accelerator.

ZigZag (`benchmarks/peers/zigzag_oracle.py`) runs its bundled `tpu_like` accelerator; chipsim runs the same
GEMM through the mapper and executor on `benchmarks/peers/zigzag_tpu_like.yaml`, a chip with ZigZag's array,
memory sizes, DRAM bandwidth and DRAM energy (what chipsim's config cannot express is listed in that file).
Part of `python -m benchmarks.validate`.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.peers.runner import ZIGZAG_ORACLE, num, run_oracle
from chipsim.config import ChipConfig, Dataflow, Precision, load_chip
from chipsim.energy import Event
from chipsim.executor import execute
from chipsim.app.gemm import mapped_program, run_gemm
from chipsim.stats import RunResult

ZIGZAG_CHIP = Path(__file__).resolve().parent / "peers" / "zigzag_tpu_like.yaml"
# ZigZag's constants (zigzag/inputs/hardware/tpu_like.yaml), to price chipsim's own event counts
ZZ_MAC_PJ = 0.04  # operational_array.unit_energy
ZZ_DRAM_READ_PJ_PER_BYTE = 700 / 8  # dram r_cost per 64-bit access
ZZ_DRAM_WRITE_PJ_PER_BYTE = 750 / 8  # dram w_cost per 64-bit access
REPEATS = 3  # chipsim runs per GEMM; the median wall time is reported


@dataclass(frozen=True, slots=True)
class ZigZagCase:
    name: str  # BERT-base layer GEMM
    m: int
    k: int
    n: int


BERT_BASE_LAYER_GEMMS = (
    ZigZagCase("qkv_proj", 128, 768, 768),  # each of Q, K, V (seq 128, hidden 768); also the attention output
    ZigZagCase("ffn1", 128, 768, 3072),
    ZigZagCase("ffn2", 128, 3072, 768),
)


@dataclass(frozen=True, slots=True)
class ZigZagRow:
    case: ZigZagCase
    zz_latency_cycles: float  # onloading + computation + offloading
    zz_onloading_cycles: float
    zz_computation_cycles: float
    zz_offloading_cycles: float
    zz_energy_pj: float
    zz_mac_pj: float
    zz_onchip_pj: float  # registers + SRAM
    zz_dram_pj: float
    zz_dram_read_bytes: float
    zz_dram_write_bytes: float
    zz_wall_s: float
    zz_cpu_s: float
    cs_cycles: int  # chipsim, mapped from DRAM on the ZigZag-like chip
    cs_ideal_cycles: int  # chipsim ideal memory, the same array (what the array alone needs)
    cs_energy_pj: float  # chipsim's own energy model (leakage included)
    cs_mac_pj: float
    cs_onchip_pj: float  # SRAM (scratchpad + accumulator)
    cs_dram_pj: float
    cs_leakage_pj: float
    cs_dram_read_bytes: int
    cs_dram_write_bytes: int
    cs_macs: int
    cs_wall_s: float  # median over REPEATS of mapping + executing the GEMM
    cs_cpu_s: float

    @property
    def latency_error_pct(self) -> float:
        return 100.0 * (self.cs_cycles - self.zz_latency_cycles) / self.zz_latency_cycles

    @property
    def energy_error_pct(self) -> float:
        return 100.0 * (self.cs_energy_pj - self.zz_energy_pj) / self.zz_energy_pj

    @property
    def cs_counts_zz_constants_pj(self) -> float:
        """chipsim's MAC and DRAM counts priced with ZigZag's constants, plus ZigZag's own on-chip energy."""
        return (
            self.cs_macs * ZZ_MAC_PJ
            + self.cs_dram_read_bytes * ZZ_DRAM_READ_PJ_PER_BYTE
            + self.cs_dram_write_bytes * ZZ_DRAM_WRITE_PJ_PER_BYTE
            + self.zz_onchip_pj
        )

    @property
    def speed_ratio(self) -> float:
        return self.zz_wall_s / self.cs_wall_s


def zigzag_chip() -> ChipConfig:
    return load_chip(str(ZIGZAG_CHIP))


def gemm_on_chip(chip: ChipConfig, m: int, k: int, n: int) -> RunResult:
    """One GEMM from DRAM through the mapper and executor on `chip`, its output requantized to int8 as ZigZag's
    `O_final` is (`chipsim.app.gemm.mapped_program`; `run_gemm` builds its chip from the default preset and so
    cannot take ZigZag's)."""
    return execute(mapped_program(m, k, n, chip, quantized_out=True), chip, functional=False)


def _timed(chip: ChipConfig, case: ZigZagCase) -> tuple[RunResult, float, float]:
    walls: list[float] = []
    cpus: list[float] = []
    result: RunResult | None = None
    for _ in range(REPEATS):
        w0, c0 = time.perf_counter(), time.process_time()
        result = gemm_on_chip(chip, case.m, case.k, case.n)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    assert result is not None
    return result, statistics.median(walls), statistics.median(cpus)


def zigzag_rows() -> list[ZigZagRow]:
    zz = run_oracle(ZIGZAG_ORACLE, [{"name": c.name, "m": c.m, "k": c.k, "n": c.n} for c in BERT_BASE_LAYER_GEMMS])
    chip = zigzag_chip()
    tc = chip.core.tensor_core
    rows: list[ZigZagRow] = []
    gemm_on_chip(chip, 32, 32, 32)  # warm the imports and caches before timing
    for case, r in zip(BERT_BASE_LAYER_GEMMS, zz, strict=True):
        result, wall_s, cpu_s = _timed(chip, case)
        ideal = run_gemm(case.m, case.k, case.n, tc.rows, tc.cols, Dataflow.WS, Precision.INT8, ideal_memory=True,
                         weight_double_buffer=tc.weight_double_buffer)
        by_level = r["memory_energy_pj_by_level"]
        assert isinstance(by_level, dict)
        zz_dram = sum(float(levels[-1]) for levels in by_level.values())
        e = result.energy_j
        rows.append(
            ZigZagRow(
                case=case,
                zz_latency_cycles=num(r, "latency_cycles"),
                zz_onloading_cycles=num(r, "onloading_cycles"),
                zz_computation_cycles=num(r, "computation_cycles"),
                zz_offloading_cycles=num(r, "offloading_cycles"),
                zz_energy_pj=num(r, "energy_pj"),
                zz_mac_pj=num(r, "mac_energy_pj"),
                zz_onchip_pj=num(r, "memory_energy_pj") - zz_dram,
                zz_dram_pj=zz_dram,
                zz_dram_read_bytes=num(r, "dram_read_bytes"),
                zz_dram_write_bytes=num(r, "dram_write_bytes"),
                zz_wall_s=num(r, "wall_s"),
                zz_cpu_s=num(r, "cpu_s"),
                cs_cycles=result.cycles,
                cs_ideal_cycles=ideal.cycles,
                cs_energy_pj=e["total"] * 1e12,
                cs_mac_pj=e["mac"] * 1e12,
                cs_onchip_pj=e["sram"] * 1e12,
                cs_dram_pj=e["dram"] * 1e12,
                cs_leakage_pj=e["leakage"] * 1e12,
                cs_dram_read_bytes=int(result.events.get(Event.DRAM_READ_BYTES.value, 0)),
                cs_dram_write_bytes=int(result.events.get(Event.DRAM_WRITE_BYTES.value, 0)),
                cs_macs=result.useful_macs,
                cs_wall_s=wall_s,
                cs_cpu_s=cpu_s,
            )
        )
    return rows


def _uj(pj: float) -> str:
    return f"{pj / 1e6:.2f}"


def zigzag_tables(rows: list[ZigZagRow]) -> list[str]:
    lines = [
        "### Latency (cycles)",
        "",
        "| layer | M x K x N | ZigZag latency | = onload + compute + offload | chipsim (from DRAM) | error "
        "| chipsim array alone (ideal memory) | DRAM bytes read / written: ZigZag | chipsim |",
        "|---|---|---:|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        c = r.case
        lines.append(
            f"| {c.name} | {c.m}x{c.k}x{c.n} | {r.zz_latency_cycles:,.0f} | {r.zz_onloading_cycles:,.0f} + "
            f"{r.zz_computation_cycles:,.0f} + {r.zz_offloading_cycles:,.0f} | {r.cs_cycles:,} "
            f"| {r.latency_error_pct:+.1f}% | {r.cs_ideal_cycles:,} | {r.zz_dram_read_bytes:,.0f} / "
            f"{r.zz_dram_write_bytes:,.0f} | {r.cs_dram_read_bytes:,} / {r.cs_dram_write_bytes:,} |"
        )
    bpc = zigzag_chip().dram_bytes_per_cycle
    lines += [
        "",
        "Where the latency difference comes from (cycles at 8 B/cycle of DRAM):",
        "",
        "| layer | ZigZag: DRAM bytes / 8 | its latency beyond that | chipsim: DRAM bytes / 8 | of which extra output "
        "bytes | extra reads (operands re-read) | chipsim latency beyond its DRAM time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        zz_dram = (r.zz_dram_read_bytes + r.zz_dram_write_bytes) / bpc
        cs_dram = (r.cs_dram_read_bytes + r.cs_dram_write_bytes) / bpc
        lines.append(
            f"| {r.case.name} | {zz_dram:,.0f} | {r.zz_latency_cycles - zz_dram:+,.0f} | {cs_dram:,.0f} "
            f"| {(r.cs_dram_write_bytes - r.zz_dram_write_bytes) / bpc:+,.0f} "
            f"| {(r.cs_dram_read_bytes - r.zz_dram_read_bytes) / bpc:+,.0f} | {r.cs_cycles - cs_dram:+,.0f} "
            f"({100 * (r.cs_cycles - cs_dram) / cs_dram:+.0f}%) |"
        )
    lines += [
        "",
        "### Energy (uJ)",
        "",
        "| layer | ZigZag total | MAC / on-chip / DRAM | chipsim total | MAC / SRAM / DRAM / leakage | error "
        "| chipsim counts at ZigZag's MAC and DRAM prices (+ ZigZag's on-chip) | error |",
        "|---|---:|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        alt = r.cs_counts_zz_constants_pj
        lines.append(
            f"| {r.case.name} | {_uj(r.zz_energy_pj)} | {_uj(r.zz_mac_pj)} / {_uj(r.zz_onchip_pj)} / "
            f"{_uj(r.zz_dram_pj)} | {_uj(r.cs_energy_pj)} | {_uj(r.cs_mac_pj)} / {_uj(r.cs_onchip_pj)} / "
            f"{_uj(r.cs_dram_pj)} / {_uj(r.cs_leakage_pj)} | {r.energy_error_pct:+.1f}% | {_uj(alt)} "
            f"| {100 * (alt - r.zz_energy_pj) / r.zz_energy_pj:+.1f}% |"
        )
    lines += [
        "",
        "### Speed (same run, one GEMM)",
        "",
        "| layer | ZigZag wall s | ZigZag CPU s | chipsim wall ms | chipsim CPU ms | speed ratio (wall) | (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.case.name} | {r.zz_wall_s:.2f} | {r.zz_cpu_s:.2f} | {r.cs_wall_s * 1e3:.1f} | {r.cs_cpu_s * 1e3:.1f} "
            f"| {r.speed_ratio:,.0f}x | {r.zz_cpu_s / r.cs_cpu_s:,.0f}x |"
        )
    return lines


INTRO = """## Against ZigZag 3.9.1 (TPU-like accelerator, BERT-base layer GEMMs at seq 128)

ZigZag's bundled `tpu_like` accelerator is a 32 x 32 weight-stationary array (spatial mapping K 32 x C 32) with
128 B of weight registers and a 16-bit output register per PE, a 2 MB SRAM for inputs and outputs, and a DRAM
port of 64 bit/cycle; ZigZag searches the temporal mapping (LOMA, `opt="latency"`). chipsim runs the same GEMM
(int8 operands, int8 outputs) from DRAM through its mapper and executor on `benchmarks/peers/zigzag_tpu_like.yaml`: ZigZag's
array, its memory sizes, its DRAM bandwidth (8 B/cycle at a nominal 1 GHz), latency and read energy
(700 pJ per 64 bits). The file lists what chipsim's config cannot express: the energy per MAC and per SRAM
byte (chipsim's come from its calibration at 28 nm, docs/CALIBRATION.md: 0.23 pJ per int8 MAC against ZigZag's
0.04, about 6-9 pJ/B of SRAM against 52), separate DRAM write energy, per-PE output registers, and weights that
skip the SRAM.
So the energy table also prices chipsim's own counts of MACs and DRAM bytes with ZigZag's constants.
The attention output projection has the QKV shape and is not repeated.
"""

DIFFERENCES = """### Why they differ

- *Both are DRAM-bound and move the same bytes.* At 8 B/cycle the weights alone take MACs / 1024 cycles to
  arrive, which is why ZigZag's computation phase is exactly its ideal loop count and its latency is its DRAM
  time to within a few dozen cycles. ZigZag's traffic is the compulsory bytes: every operand read once, every
  output written once at 8 bits. chipsim's mapping search keeps A stationary (each core's rows of A loaded once
  and read in place by every block of output columns, `Tiling.a_once`) and requantizes the int32 sums to int8
  before storing them, so it moves exactly those bytes too (the table above shows any extra).
- *Overlap.* ZigZag's latency is onload + compute + offload, its output writes not overlapped with compute;
  chipsim's DMA, array and stores run concurrently, but its latency is still above its own DRAM time (last
  column): the pipeline's first loads and last stores do not overlap compute either.
- *Fill and drain.* ZigZag's compute is the temporal loop count (MACs / 1024) plus stalls, with no wavefront
  skew; chipsim's array alone (the ideal-memory column) pipelines its folds and pays the fill and drain once per
  run of folds, so it is within 0.1% of ZigZag's compute. Under SCALE-Sim's per-fold convention
  (`--no-fold-overlap`) it would pay R + C - 2 per fold: (128 + 62) / 128 = 1.48x at M = 128 on a 32 x 32 array.
- *Energy.* DRAM dominates ZigZag's total. Priced with ZigZag's MAC and DRAM constants, chipsim's counts differ
  from ZigZag's total only by its extra DRAM bytes. chipsim's own model is higher still for two reasons: its
  MAC is 0.23 pJ against 0.04 (its calibration at 28 nm), and its SRAM energy counts int32 partial sums written
  to and read back from the accumulator SRAM once per 32-row K fold (K / 32 = 24 round trips for K = 768),
  where ZigZag accumulates in 16-bit registers inside each PE (0.021 pJ per access); that traffic outweighs
  ZigZag's dearer SRAM bytes (52 pJ/B against about 6).
- *Mapping search.* ZigZag searches loop orders and per-level tilings for the least latency; chipsim's mapper
  searches tile sizes with the executor's own closed-form costs and always double-buffers.
"""
