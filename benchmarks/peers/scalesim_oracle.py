"""SCALE-Sim 3.0.0 as an oracle: one GEMM in, its compute cycles out (JSON on stdout).

Run by the peers' interpreter only (`.venv-peers/bin/python benchmarks/peers/scalesim_oracle.py M K N
--rows R --cols C --dataflow ws`), never imported by chipsim's environment. Several GEMMs can be batched in
one process with `--batch FILE` (a JSON list of {"m","k","n","rows","cols","dataflow"}), which saves the
interpreter start-up per case; each case still gets its own temp dir and its own `scalesim` object.

What is compared: SCALE-Sim's `total_cycles` (COMPUTE_REPORT.csv "Total Cycles") with
`InterfaceBandwidth: CALC`, where the memory system never stalls the array, so the number is the length of its
per-fold demand matrices. Per fold (read from scalesim/compute/systolic_compute_{ws,os,is}.py):
- ws: ifmap demand = R (weight load) + T + (C - 1) rows, skewed by R - 1  ->  2R + C + T - 2, T = M;
- is: the mirror of ws with the ifmap stationary                        ->  2R + C + T - 2, T = N;
- os: operands stream T + (C - 1) rows, skewed by R - 1                  ->  R + C + T - 2,  T = K
  (no output drain: the paper's Table 1 says 2R + C + T - 2 for os as well).
Folds are summed with no overlap (no double buffering of the stationary operand), and the reported total is
`max(ofmap serviced cycle)`, i.e. the index of the last demand row: (sum of fold lengths) - 1.
GEMM topology rows are `Layer, M, N, K,` which SCALE-Sim turns into a conv with ifmap M x K, a 1 x K filter
and N filters: M = ofmap pixels (Sr of os), K = window (Sr of ws/is), N = filters.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

_CONFIG = """[general]
run_name = oracle

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 65536
FilterSramSzkB: 65536
OfmapSramSzkB: 65536
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: {dataflow}
Bandwidth: 10
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

# The layout file is parsed even with custom layouts off; one row of unit factors / identity orders suffices.
_LAYOUT = (
    "Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, Filter Height Intraline Factor,"
    " Filter Width Intraline Factor, Channel Intraline Factor, Num Filter Intraline Factor,"
    " IFMAP Height Intraline Order, IFMAP Width Intraline Order, Channel Intraline Order,"
    " IFMAP Height Interline Order, IFMAP Width Interline Order, Channel Interline Order,"
    " Num Filter Intraline Order, Channel Intraline Order, Filter Height Intraline Order,"
    " Filter Width Intraline Order, Num Filter Interline Order, Channel Interline Order,"
    " Filter Height Interline Order, Filter Width Interline Order,\n"
    "gemm, 1, 1, 1, 1, 1, 1, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0,\n"
)

DATAFLOWS = ("ws", "os", "is")


@dataclass(frozen=True, slots=True)
class ScaleSimResult:
    m: int
    k: int
    n: int
    rows: int
    cols: int
    dataflow: str
    total_cycles: int  # COMPUTE_REPORT "Total Cycles" (CALC bandwidth: no stalls)
    stall_cycles: int  # COMPUTE_REPORT "Stall Cycles" (0 under CALC)
    wall_s: float  # wall time inside SCALE-Sim (config parse + simulation + reports), not interpreter start-up
    cpu_s: float  # CPU time of the same span (the fair figure on a shared machine; SCALE-Sim is single-threaded)


def run_gemm(m: int, k: int, n: int, rows: int, cols: int, dataflow: str) -> ScaleSimResult:
    """Run one GEMM C[m,n] = A[m,k] @ B[k,n] through SCALE-Sim in GEMM mode in a temp dir."""
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {DATAFLOWS}, got {dataflow!r}")
    if min(m, k, n, rows, cols) < 1:
        raise ValueError(f"GEMM and array dimensions must be >= 1, got m={m} k={k} n={n} array {rows}x{cols}")
    from scalesim.scale_sim import scalesim  # only the peers' interpreter gets here

    with tempfile.TemporaryDirectory(prefix="scalesim_oracle_") as tmp:
        cfg = os.path.join(tmp, "oracle.cfg")
        topo = os.path.join(tmp, "gemm.csv")
        layout = os.path.join(tmp, "layout.csv")
        with open(cfg, "w") as f:
            f.write(_CONFIG.format(rows=rows, cols=cols, dataflow=dataflow))
        with open(topo, "w") as f:
            f.write(f"Layer, M, N, K,\ngemm, {m}, {n}, {k},\n")
        with open(layout, "w") as f:
            f.write(_LAYOUT)
        out_dir = os.path.join(tmp, "out")
        os.makedirs(out_dir)
        start, start_cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            sim = scalesim(
                save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout, input_type_gemm=True
            )
            sim.run_scale(top_path=out_dir)
        wall_s, cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
        report = _find(out_dir, "COMPUTE_REPORT.csv")
        with open(report) as f:
            rows_ = [[c.strip() for c in r] for r in csv.reader(f) if r]
    header, values = rows_[0], rows_[1]
    total = int(float(values[header.index("Total Cycles")]))
    stalls = int(float(values[header.index("Stall Cycles")]))
    return ScaleSimResult(m, k, n, rows, cols, dataflow, total, stalls, wall_s, cpu_s)


def _find(root: str, name: str) -> str:
    for dirpath, _dirs, files in os.walk(root):
        if name in files:
            return os.path.join(dirpath, name)
    raise FileNotFoundError(f"SCALE-Sim wrote no {name} under {root}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("m", type=int, nargs="?")
    p.add_argument("k", type=int, nargs="?")
    p.add_argument("n", type=int, nargs="?")
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--cols", type=int, default=32)
    p.add_argument("--dataflow", choices=DATAFLOWS, default="ws")
    p.add_argument("--batch", help="JSON file with a list of cases; prints one JSON list")
    a = p.parse_args(argv)
    if a.batch:
        with open(a.batch) as f:
            cases = json.load(f)
        out = [asdict(run_gemm(c["m"], c["k"], c["n"], c["rows"], c["cols"], c["dataflow"])) for c in cases]
        json.dump(out, sys.stdout)
    else:
        if a.m is None or a.k is None or a.n is None:
            p.error("give M K N, or --batch FILE")
        json.dump(asdict(run_gemm(a.m, a.k, a.n, a.rows, a.cols, a.dataflow)), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
