"""`chipsim run`: the whole BERT NER model lowered, verified and executed on the simulated chip."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chipsim.app.runconfig import load_run_config
from chipsim.app.runner import run

ROOT = Path(__file__).resolve().parent.parent
RUN_FILE = ROOT / "bert_ner.yaml"


def chipsim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chipsim", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def cfg(*overrides: str):
    return load_run_config(RUN_FILE, list(overrides))


def test_bert_ner_yaml_prints_summary_and_writes_result(tmp_path):
    r = chipsim("run", str(RUN_FILE), "--out", str(tmp_path / "out"), "--trace", str(tmp_path / "trace.json"))
    assert r.returncode == 0, r.stderr
    for text in ("cycles", "latency at 1000 MHz", "TOPS/W", "energy per inference", "layers by kind", "chip bound",
                 "mapping efficiency", "program roofline", "DRAM traffic / compulsory", "stalls",
                 "int8 logits bit-exact vs quantized reference", "yes"):
        assert text in r.stdout
    rec = json.loads((tmp_path / "out" / "result.json").read_text())
    for key in ("cycles", "latency_s", "inferences_per_s", "energy_j", "energy_breakdown_j", "area_mm2", "tops_per_w",
                "utilization", "per_layer", "validation", "config_sha256", "chipsim_version", "dram_read_bytes",
                "dram_write_bytes", "dram_bytes", "compulsory_dram_bytes", "bound_cycles", "bound_limiter",
                "mapping_efficiency", "program_roofline_cycles", "program_roofline_limiter", "stall_share"):
        assert key in rec
    assert set(rec["energy_breakdown_j"]) == {"mac", "sram", "dram", "noc", "vector", "leakage", "total"}
    assert rec["validation"]["bit_exact"] is True and rec["validation"]["max_abs_logit_diff"] == 0.0
    assert rec["validation"]["sentences"] == 4 and rec["validation"]["tag_agreement"] > 0.9
    assert rec["latency_s"] == pytest.approx(rec["cycles"] / 1e9)
    assert {layer["bound"] for layer in rec["per_layer"]} <= {"compute", "dram", "vector", "noc"}
    assert sum(layer["cycles"] for layer in rec["per_layer"]) == rec["cycles"]
    assert sum(layer["dram_read_bytes"] for layer in rec["per_layer"]) == rec["dram_read_bytes"]
    assert all(layer["mapping"] for layer in rec["per_layer"] if layer["macs"])
    csv = (tmp_path / "out" / "per_layer.csv").read_text().splitlines()
    assert csv[0].startswith("name,kind,cycles,macs,utilization,dram_read_bytes,dram_write_bytes,dram_bytes,")
    assert csv[0].endswith(",energy_leakage_j,energy_mac_j,energy_noc_j,energy_sram_j,energy_vector_j")
    assert len(csv) == 1 + len(rec["per_layer"])
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert len(trace["traceEvents"]) >= rec["instructions"] // 2


@pytest.mark.parametrize(
    "overrides",
    [
        ("workload.seq_len=32", "chip.mesh.rows=1", "chip.mesh.cols=1", "chip.core.tensor_core.rows=16", "chip.core.tensor_core.cols=16"),
        # a small scratchpad forces reduction chunks (weights not resident) and row tiles
        ("workload.seq_len=48", "chip.mesh.cols=1", "chip.core.scratchpad.size_kib=96", "chip.core.scratchpad.banks=1",
         "chip.core.accumulator.size_kib=64", "chip.core.accumulator.banks=1", "chip.core.tensor_core.dataflow=os"),
        ("workload.seq_len=40", "workload.batch=2", "chip.core.tensor_core.dataflow=is", "chip.core.tensor_core.rows=32",
         "chip.core.tensor_core.cols=8"),
        # a small accumulator: the gathered operands stay on chip, the residual stream goes through DRAM
        ("workload.seq_len=64", "chip.core.accumulator.size_kib=48"),
        # 64x64 arrays: the fused projection's tiles leave the vector unit idle, and the attention's blocks go in
        # among them (mapper.emit._merge_heads)
        ("chip.core.tensor_core.rows=64", "chip.core.tensor_core.cols=64"),
    ],
)
def test_int8_chip_logits_bit_exact_on_other_chips_and_tilings(overrides):
    rec = run(cfg(*overrides)).record
    assert rec.validation is not None
    assert rec.validation.bit_exact is True and rec.validation.max_abs_logit_diff == 0.0


def test_bf16_chip_within_tolerance_of_bf16_reference():
    rec = run(cfg("workload.seq_len=32", "chip.core.tensor_core.precision=bf16")).record
    assert rec.validation is not None and rec.validation.bit_exact is None
    # fp32 accumulation order differs from the reference's BLAS only by rounding
    assert rec.validation.max_abs_logit_diff < 0.05
    assert rec.validation.tag_agreement > 0.9


@pytest.mark.parametrize(("precision", "seq"), [("int8", 32), ("bf16", 64)])
def test_stream_k_split_tiles_reach_the_reference(precision, seq):
    """On two cores FFN2's three 128-wide tiles go stream-K: its A (the FFN1 output, gathered on both cores) is laid
    out in column blocks so each reduction chunk is read in place, one tile is split between the cores, one core's
    partial sums added onto the other's by a reducing NOC_RECV. int8 logits stay bit-exact; bf16 within the
    rounding of a different summation order."""
    from isa import Opcode, Reduce

    o = run(cfg(f"workload.seq_len={seq}", "chip.mesh.rows=1", "chip.mesh.cols=2", f"chip.core.tensor_core.precision={precision}",
                "mapper.verify=true"))
    assert any("stream-K" in layer.mapping for layer in o.record.per_layer if layer.kind.startswith("ffn2"))
    adds = [i for core in o.lowered.program.cores for i in core if i.op is Opcode.NOC_RECV and i.reduce != Reduce.NONE]
    assert adds and all(i.reduce == (Reduce.INT32 if precision == "int8" else Reduce.FP32) for i in adds)
    v = o.record.validation
    assert v is not None
    if precision == "int8":
        assert v.bit_exact is True and v.max_abs_logit_diff == 0.0
    else:
        assert v.max_abs_logit_diff < 0.05 and v.tag_agreement > 0.9


def test_timing_only_matches_functional_figures():
    functional = run(cfg("workload.seq_len=32")).record
    started = time.perf_counter()
    outcome = run(cfg("workload.seq_len=32", "functional=false"))
    elapsed = time.perf_counter() - started
    timing = outcome.record
    # the mapper's and the verifier's parts of the run (benchmarks/bench_run.py prints them)
    assert outcome.mapping_s > 0 and outcome.verify_s > 0 and outcome.mapping_s + outcome.verify_s < elapsed
    assert timing.validation is None
    for field in ("cycles", "utilization", "energy_j", "instructions", "macs"):
        assert getattr(functional, field) == getattr(timing, field), field


@pytest.mark.parametrize(("model", "seq", "batch"), [("bert-base", 128, 1), ("bert-tiny", 512, 3)])
def test_timing_only_any_bert_size(model, seq, batch):
    rec = run(cfg(f"workload.model={model}", f"workload.seq_len={seq}", f"workload.batch={batch}", "functional=false")).record
    assert rec.cycles >= rec.program_roofline_cycles and rec.cycles >= rec.bound_cycles
    assert 0 < rec.utilization <= 1
    parts = [v for k, v in rec.energy_breakdown_j.items() if k != "total"]
    assert sum(parts) == pytest.approx(rec.energy_breakdown_j["total"], rel=1e-12)
    from workloads.bert import preset
    from workloads.graph import build_graph, total_macs

    g = build_graph(preset(model), seq, batch)
    assert rec.macs == total_macs(g)


def test_more_dram_bandwidth_never_slower():
    slow = run(cfg("workload.seq_len=64", "functional=false", "chip.dram.bandwidth_gb_per_s=100")).record
    fast = run(cfg("workload.seq_len=64", "functional=false", "chip.dram.bandwidth_gb_per_s=1000")).record
    assert fast.cycles <= slow.cycles


@pytest.mark.parametrize("array", [128, 256])
def test_twice_the_dram_bandwidth_never_slower_for_bert_base(array):
    """With a faster DRAM the GEMMs that leave it idle load later GEMMs' weights ahead, and where their slots went
    below the GEMM's own they pushed FFN2's slots out of the scratchpad, which then streamed its weights in its own
    phase: 16% (128x128) and 10% (256x256) slower at twice the bandwidth (mapper.emit._plan_ahead keeps them apart
    and lower keeps the layout loading more ahead; _within_idle_dram counts the DMA engines' rate where it is the limit)."""
    base = ("workload.model=bert-base", "functional=false", "mapper.verify=false",
            f"chip.core.tensor_core.rows={array}", f"chip.core.tensor_core.cols={array}")
    slow = run(cfg(*base)).record
    fast = run(cfg(*base, "chip.dram.bandwidth_gb_per_s=921.6")).record
    assert fast.cycles <= slow.cycles


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "chip.core.tensor_core.rowz=64"), "chip.core.tensor_core.rowz: unknown field; did you mean 'rows'?"),
        (("--set", "workload.seq_len=abc"), "workload.seq_len: got 'abc'; must be an integer >= 1"),
        (("--set", "chip.mesh.rows=0"), "chip.mesh.rows: got 0; must be an integer >= 1"),
        (("--set", "mapper.objective=fast"), "mapper.objective: got 'fast'; must be one of latency, energy, edp"),
        (("--set", "chip.core.tensor_core.rows=0"), "chip.core.tensor_core.rows: got 0; must be an integer >= 1"),
        (("--set", "workload.seq_len=600"), "workload.seq_len 600 exceeds the maximum 512 positions of 'bert-ner-wnut'; use 1..512."),
        (("--set", "chip.core.scratchpad.size_kib=1", "--set", "chip.core.scratchpad.banks=1"), "does not fit"),
    ],
)
def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    r = chipsim("run", str(RUN_FILE), "--out", str(out), *args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and message in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_existing_results_are_never_overwritten(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text("{}")
    r = chipsim("run", str(RUN_FILE), "--out", str(out), "--timing-only")
    assert r.returncode == 2 and "is not empty" in r.stderr
    assert (out / "result.json").read_text() == "{}"


def test_gemm_ideal_memory_is_the_array_formula():
    from chipsim import timing
    from chipsim.config import Dataflow

    for df in ("ws", "os", "is"):
        r = chipsim("gemm", "100", "70", "50", "--rows", "16", "--cols", "8", "--dataflow", df, "--ideal-memory",
                    "--no-weight-double-buffer", "--json")
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        want = timing.matmul_timing(Dataflow(df), 16, 8, 100, 70, 50, weight_double_buffer=False, partial_folds=True).total_cycles
        assert got["cycles"] == want and got["macs"] == 100 * 70 * 50
        # k = 70 on 16 rows: each column block (ws: ceil(50/8) = 7, is: ceil(100/8) = 13) ends in a fold of 6 rows,
        # which loads 6 rows, not 16, without a shadow to hide it, and the last block is narrower than 8 (ws 2, is
        # 4 columns); os loads no weights and its folds are the whole array
        full = chipsim("gemm", "100", "70", "50", "--rows", "16", "--cols", "8", "--dataflow", df, "--ideal-memory",
                       "--no-weight-double-buffer", "--no-partial-folds", "--json")
        whole = timing.matmul_timing(Dataflow(df), 16, 8, 100, 70, 50, weight_double_buffer=False, partial_folds=False)
        assert json.loads(full.stdout)["cycles"] == whole.total_cycles
        assert whole.total_cycles - want >= (0 if df == "os" else 10 * 7 if df == "ws" else 10 * 13)
        assert (whole.total_cycles == want) == (df == "os")


def test_pipelined_folds_fill_a_128x128_ws_array_past_90_percent():
    """Issue 11: 108 folds of m = 128 rows stream back to back (one fill and drain), where SCALE-Sim's per-fold
    convention pays 128 + 128 + 254 cycles for every 128 useful ones."""
    from chipsim import timing
    from chipsim.app.gemm import run_gemm
    from chipsim.config import Dataflow, Precision

    piped = run_gemm(128, 768, 2304, 128, 128, Dataflow.WS, Precision.INT8, ideal_memory=True)
    assert piped.utilization > 0.90
    per_fold = run_gemm(128, 768, 2304, 128, 128, Dataflow.WS, Precision.INT8, ideal_memory=True, fold_overlap=False)
    assert per_fold.cycles == timing.matmul_timing(Dataflow.WS, 128, 128, 128, 768, 2304, weight_double_buffer=True,
                                                   fold_overlap=False).total_cycles
    assert per_fold.utilization < 0.34 and piped.macs == per_fold.macs


def test_gemm_with_memory_is_slower_than_ideal_and_mapped():
    from chipsim.config import Dataflow, Precision
    from chipsim.app.gemm import run_gemm

    ideal = run_gemm(128, 768, 768, 32, 32, Dataflow.WS, Precision.INT8, ideal_memory=True)
    real = run_gemm(128, 768, 768, 32, 32, Dataflow.WS, Precision.INT8)
    assert real.cycles >= ideal.cycles and real.instructions > ideal.instructions
    assert np.isclose(real.macs, ideal.macs)


@pytest.mark.slow  # about 90 s: every test-split tweet through the simulated chip; CI runs it
def test_eval_whole_test_split_through_the_chip_f1_within_one_point():
    """`chipsim run bert_ner.yaml --eval`: every test tweet through the simulated int8 chip, bit-exact."""
    rec = run(cfg("workload.batch=16"), test_split=True).record
    v = rec.validation
    assert v is not None and v.sentences == 4 + 478
    assert v.bit_exact is True
    assert v.f1_chip is not None and v.f1_reference is not None
    assert abs(v.f1_chip - v.f1_reference) < 0.01
    assert v.f1_reference == pytest.approx(0.5783, abs=0.005)


def test_set_a_whole_chip_preset_then_refine_it():
    c = cfg("chip=tpuv1", "chip.mesh.cols=2", "functional=false")
    assert c.chip.name == "tpuv1" and c.chip.core.tensor_core.rows == 256 and c.chip.mesh.cols == 2


def test_a_second_run_into_a_claimed_folder_fails_before_simulating(tmp_path):
    """Two `chipsim run` into one new --out: the one that finds the folder claimed stops at once (before: it finished
    its whole simulation, then failed with OSError: Directory not empty)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / ".chipsim-run-in-progress").write_text("")
    r = chipsim("run", str(RUN_FILE), "--timing-only", "--out", str(out))
    assert r.returncode == 2 and "is being written by another chipsim run" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == [".chipsim-run-in-progress"]


def test_run_saves_its_resolved_config_and_it_runs_again_identically(tmp_path):
    out = tmp_path / "out"
    r = chipsim("run", str(RUN_FILE), "--timing-only", "--set", "workload.model=bert-tiny", "--set", "workload.seq_len=32", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o755"
    saved = load_run_config(out / "config.yaml")
    assert saved.sha256() == json.loads((out / "result.json").read_text())["config_sha256"]
    again = chipsim("run", str(out / "config.yaml"), "--timing-only", "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again" / "result.json").read_text())["cycles"] == json.loads((out / "result.json").read_text())["cycles"]
