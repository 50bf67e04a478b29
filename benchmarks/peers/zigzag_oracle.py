"""ZigZag (PyPI `zigzag-dse` 3.9.x, needs `six`) as an oracle: GEMM layers on its bundled TPU-like
accelerator in, latency (cycles) and energy (pJ) out, as JSON on stdout.

Run by the peers' interpreter only (`.venv-peers/bin/python benchmarks/peers/zigzag_oracle.py M K N` or
`--batch FILE` with a JSON list of {"name","m","k","n"}), never imported by chipsim's environment.

Each GEMM C[m,n] = A[m,k] @ B[k,n] becomes one ZigZag `Gemm` layer `O[b][k] += I[b][c] * W[c][k]` with
B = m, C = k (reduction), K = n, operand precision I 8, W 8, O 16 (partial sums; the TPU-like output register
`rf_2B` holds 16 bits), O_final 8 (int8 activations leave the layer). ZigZag searches the temporal mapping
(LOMA, `opt="latency"`); the spatial mapping is fixed by `inputs/mapping/tpu_like.yaml`: D1 <- K 32 (output
columns), D2 <- C 32 (reduction), i.e. a weight-stationary 32 x 32 array.

Constants of the bundled TPU-like accelerator (`zigzag/inputs/hardware/tpu_like.yaml`, ZigZag 3.9.1). ZigZag's
units: sizes in bits, bandwidths in bits/cycle, energies in pJ per access of `bandwidth_min` bits, cycles with
no clock. The values are the YAML's own (no CACTI: no memory sets `auto_cost_extraction`).

| level     | operands      | size                    | r / w pJ per access  | access width (min..max bits) | per byte r / w   |
|-----------|---------------|-------------------------|----------------------|------------------------------|------------------|
| MAC       | -             | 32 x 32 array           | 0.04 pJ per MAC      | -                            | -                |
| rf_128B   | W (I2)        | 1024 bit = 128 B per PE | 0.095 / 0.095        | 8                            | 0.095 / 0.095 pJ |
| rf_2B     | O             | 16 bit = 2 B per PE     | 0.021 / 0.021        | 16                           | 0.0105 pJ        |
| sram_2MB  | I (I1), O     | 16777216 bit = 2 MiB    | 416.16 / 378.4       | 64 .. 2048                   | 52.02 / 47.30 pJ |
| dram      | I, W, O       | 1e10 bit (unbounded)    | 700 / 750            | 64 .. 64 (64 bit/cycle)      | 87.5 / 93.75 pJ  |

Per-PE registers are private (`served_dimensions: []`); the SRAM and DRAM serve the whole array. Weights go
DRAM -> rf_128B directly (no SRAM level for W); inputs DRAM -> SRAM -> array; outputs rf_2B -> SRAM -> DRAM.
All memories have latency 1. DRAM: one read/write port of 64 bit/cycle = 8 B/cycle.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

ACCELERATOR = "tpu_like"
ARRAY_ROWS = 32  # D1 of tpu_like.yaml
ARRAY_COLS = 32  # D2 of tpu_like.yaml
MAC_ENERGY_PJ = 0.04  # tpu_like.yaml operational_array.unit_energy
DRAM_READ_PJ_PER_BYTE = 700 / 8  # tpu_like.yaml dram r_cost: 700 pJ per 64-bit access
DRAM_WRITE_PJ_PER_BYTE = 750 / 8  # tpu_like.yaml dram w_cost: 750 pJ per 64-bit access


@dataclass(frozen=True, slots=True)
class ZigZagResult:
    name: str
    m: int
    k: int
    n: int
    latency_cycles: float  # latency_total2: onloading + computation + offloading
    computation_cycles: float  # latency_total0: ideal temporal loops + memory stalls during compute
    onloading_cycles: float  # filling the memories before the first MAC
    offloading_cycles: float  # writing the last outputs out after the last MAC (not overlapped)
    ideal_cycles: float  # MACs / (32 * 32)
    energy_pj: float
    mac_energy_pj: float
    memory_energy_pj: float
    memory_energy_pj_by_level: dict[str, list[float]]  # operand -> energy per level, innermost first
    dram_read_bytes: float  # from the DRAM level's read energy / the YAML's cost per access (exact: fixed cost)
    dram_write_bytes: float
    temporal_mapping: dict[str, list[list[str]]]  # operand -> loops per memory level, innermost first
    wall_s: float  # wall time spent inside get_hardware_performance_zigzag
    cpu_s: float  # CPU time of the same span


def _layer_yaml(name: str, m: int, k: int, n: int) -> str:
    return (
        f"- id: 0\n  name: {name}\n  operator_type: Gemm\n  equation: O[b][k]+=I[b][c]*W[c][k]\n"
        f"  loop_dims: [B, C, K]\n  loop_sizes: [{m}, {k}, {n}]\n"
        "  operand_precision:\n    I: 8\n    W: 8\n    O: 16\n    O_final: 8\n"
    )


def run_gemm(name: str, m: int, k: int, n: int) -> ZigZagResult:
    """Latency and energy of one GEMM layer on ZigZag's bundled TPU-like accelerator (opt = latency)."""
    if min(m, k, n) < 1:
        raise ValueError(f"GEMM dimensions must be >= 1, got m={m} k={k} n={n}")
    import zigzag  # only the peers' interpreter gets here
    from zigzag.api import get_hardware_performance_zigzag

    inputs = os.path.join(os.path.dirname(zigzag.__file__), "inputs")
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="zigzag_oracle_") as tmp:
        workload = os.path.join(tmp, "gemm.yaml")
        with open(workload, "w") as f:
            f.write(_layer_yaml(name, m, k, n))
        dump = os.path.join(tmp, "out")
        start, start_cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            energy_pj, latency, _cmes = get_hardware_performance_zigzag(
                workload,
                os.path.join(inputs, "hardware", f"{ACCELERATOR}.yaml"),
                os.path.join(inputs, "mapping", f"{ACCELERATOR}.yaml"),
                opt="latency",
                dump_folder=dump,
                loma_show_progress_bar=False,
            )
        wall_s, cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
        with open(os.path.join(dump, f"{name}_complete.json")) as f:
            out = json.load(f)
    o = out["outputs"]
    lat = o["latency"]
    dram_read_pj = dram_write_pj = 0.0
    for levels in o["energy"]["memory_energy_breakdown_per_level_per_operand"].values():
        dram = levels[-1]  # every operand's outermost level is the DRAM
        dram_read_pj += float(dram["rd_out_to_low"]) + float(dram["rd_out_to_high"])
        dram_write_pj += float(dram["wr_in_by_low"]) + float(dram["wr_in_by_high"])
    return ZigZagResult(
        name=name,
        m=m,
        k=k,
        n=n,
        latency_cycles=float(latency),
        computation_cycles=float(lat["computation"]),
        onloading_cycles=float(lat["data_onloading"]),
        offloading_cycles=float(lat["data_offloading"]),
        ideal_cycles=m * k * n / (ARRAY_ROWS * ARRAY_COLS),
        energy_pj=float(energy_pj),
        mac_energy_pj=float(o["energy"]["operational_energy"]),
        memory_energy_pj=float(o["energy"]["memory_energy"]),
        memory_energy_pj_by_level={
            op: [float(x) for x in v] for op, v in o["energy"]["memory_energy_breakdown_per_level"].items()
        },
        dram_read_bytes=dram_read_pj / DRAM_READ_PJ_PER_BYTE,
        dram_write_bytes=dram_write_pj / DRAM_WRITE_PJ_PER_BYTE,
        temporal_mapping={op: [list(map(str, lv)) for lv in v] for op, v in out["inputs"]["temporal_mapping"].items()},
        wall_s=wall_s,
        cpu_s=cpu_s,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("m", type=int, nargs="?")
    p.add_argument("k", type=int, nargs="?")
    p.add_argument("n", type=int, nargs="?")
    p.add_argument("--name", default="gemm")
    p.add_argument("--batch", help="JSON file with a list of {name, m, k, n}; prints one JSON list")
    a = p.parse_args(argv)
    if a.batch:
        with open(a.batch) as f:
            cases = json.load(f)
        json.dump([asdict(run_gemm(c["name"], c["m"], c["k"], c["n"])) for c in cases], sys.stdout)
    else:
        if a.m is None or a.k is None or a.n is None:
            p.error("give M K N, or --batch FILE")
        json.dump(asdict(run_gemm(a.name, a.m, a.k, a.n)), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
