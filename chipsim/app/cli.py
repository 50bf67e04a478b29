"""The `chipsim` command line: thin commands over the workloads, isa, mapper and chipsim packages."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from threadpoolctl import threadpool_limits
from rich.console import Console
from rich.table import Table

from chipsim.config import ConfigError
from chipsim.dispatch import ExecutionError  # DeadlockError is a subclass
from chipsim.app.sweep_plan import SweepError
from isa.errors import IsaError
from mapper.errors import MapperError
from workloads.errors import WorkloadError
from workloads.model import MODEL_DIR

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="chipsim: simulate a systolic-array AI accelerator running BERT NER.")
console = Console()
err_console = Console(stderr=True)

# Errors that mean "the user's input is wrong": printed as one sentence, exit code 2, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (WorkloadError, ConfigError, ExecutionError, IsaError, SweepError, MapperError)


def print_table(table: Table) -> None:
    """Print a table at its natural width, so figures are never truncated on a narrow (or no) terminal."""
    natural_width = console.measure(table, options=console.options.update_width(10_000)).maximum
    Console(file=console.file, width=max(console.width, natural_width)).print(table)


@app.callback()
def _root() -> None:
    """chipsim: simulate a systolic-array AI accelerator running BERT NER."""
    # A callback keeps `chipsim COMMAND ...` a command group even while only one command is registered.


@app.command("workload")
def workload_cmd(
    name: str = typer.Argument(..., help="Model preset, e.g. bert-base or bert-ner-wnut."),
    seq: int = typer.Option(128, "--seq", help="Sequence length in tokens."),
    batch: int = typer.Option(1, "--batch", help="Number of sequences."),
    csv_path: Path | None = typer.Option(None, "--csv", help="Write the full per-node table to this CSV file."),
    show_all: bool = typer.Option(False, "--all", help="One row per node instead of one row per head-op kind."),
) -> None:
    """Print the operator graph of a BERT NER workload: per-op GEMM shapes, MACs, params and bytes."""

    from workloads.bert import preset
    from workloads.graph import (
        build_graph, encoder_macs, op_rows, param_count, total_bytes_read, total_bytes_written, total_macs,
        write_csv,
    )

    cfg = preset(name)
    g = build_graph(cfg, seq, batch)
    table = Table(title=f"{cfg.name}: seq {seq}, batch {batch}, fp32")
    for col in ("op", "kind", "count", "shape (m,k,n)", "MACs", "params", "bytes read", "bytes written"):
        table.add_column(col, justify="left" if col in ("op", "kind") else "right")
    for r in op_rows(g, group_heads=not show_all):
        shape = "" if r.m is None else f"{r.m},{r.k},{r.n}" + (f" x{r.gemm_batch}" if r.gemm_batch != 1 else "")
        table.add_row(r.name, r.kind.value, str(r.count), shape, f"{r.macs:,}", f"{r.weight_params:,}",
                      f"{r.bytes_read:,}", f"{r.bytes_written:,}")
    print_table(table)
    console.print(f"total MACs: {total_macs(g):,} ({total_macs(g) / 1e9:.3f} GMACs)", highlight=False)
    console.print(f"encoder MACs: {encoder_macs(g):,} ({encoder_macs(g) / 1e9:.3f} GMACs)", highlight=False)
    console.print(f"params: {param_count(g):,}", highlight=False)
    console.print(f"bytes read: {total_bytes_read(g):,}; bytes written: {total_bytes_written(g):,}", highlight=False)
    if csv_path is not None:
        write_csv(g, csv_path)
        console.print(f"wrote {g.number_of_nodes()} rows to {csv_path}", highlight=False)


@app.command()
def infer(
    text: str = typer.Argument(..., help="A sentence to tag, e.g. \"Obama visited Microsoft in Seattle\"."),
    precision: str = typer.Option("fp32", help="Numerics of the reference: fp32, int8 or bf16."),
    model_dir: Path = typer.Option(MODEL_DIR, "--model", help="Folder of an exported model (weights.npz + manifest.json)."),
) -> None:
    """Tag one sentence with the fine-tuned BERT NER model (NumPy reference) and print tokens, tags, entities."""

    from workloads.model import load_model
    from workloads.quantized import forward as forward_q
    from workloads.quantized import load_quantized
    from workloads.reference import tag_text

    model = load_model(model_dir)
    qm = load_quantized(model, _precision(precision), model_dir)
    tagged = tag_text(model, text, lambda m, ids: forward_q(qm, ids))
    console.print(f"tokens ({len(tagged.encoding.tokens)}): {' '.join(tagged.encoding.tokens)}", highlight=False)
    if tagged.encoding.truncated_words:
        console.print(
            f"notice: the text is longer than {model.max_len} tokens; its last {tagged.encoding.truncated_words} "
            "words were not tagged (tagged O).",
            style="yellow",
        )
    table = Table("word", "tag")
    for word, tag in zip(tagged.encoding.words, tagged.tags):
        table.add_row(word, tag)
    console.print(table)
    if tagged.entities:
        for e in tagged.entities:
            console.print(f"{e.type:<5} {e.text}  (words {e.start}..{e.end - 1})", highlight=False)
    else:
        console.print("no entities found")


@app.command("eval")
def eval_cmd(
    precision: str = typer.Option("fp32", help="fp32, int8, bf16, or all."),
    model_dir: Path = typer.Option(MODEL_DIR, "--model", help="Folder of an exported model (weights.npz + manifest.json)."),
) -> None:
    """Entity precision/recall/F1 of the reference on the held-out test split."""
    from rich.progress import Progress

    from workloads.evaluate import evaluate, test_sentences
    from workloads.model import load_model
    from workloads.quantized import Precision

    model = load_model(model_dir)
    wanted = list(Precision) if precision == "all" else [_precision(precision)]
    n = len(test_sentences(model))
    table = Table("precision", "sentences", "entities", "P", "R", "F1", *[f"F1 {t}" for t in ("PER", "ORG", "LOC", "MISC")])
    results = []
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        for p in wanted:
            task = bar.add_task(f"eval {p.value}", total=n)
            ev = evaluate(model, p, progress=lambda k, t=task: bar.update(t, completed=k))
            results.append(ev)
    for ev in results:
        s = ev.scores
        per = [f"{s.per_type[t][2]:.4f}" if t in s.per_type else "-" for t in ("PER", "ORG", "LOC", "MISC")]
        table.add_row(ev.precision.value, str(ev.sentences), str(s.support), f"{s.precision:.4f}", f"{s.recall:.4f}", f"{s.f1:.4f}", *per)
    print_table(table)
    base = next((ev for ev in results if ev.precision.value == "fp32"), None)
    if base is not None:
        for ev in results:
            if ev is not base:
                console.print(f"{ev.precision.value} F1 drop against fp32: {100 * (base.scores.f1 - ev.scores.f1):+.2f} points", highlight=False)


@app.command("run")
def run_cmd(
    file: Path = typer.Argument(..., help="Run file, e.g. bert_ner.yaml."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: a new folder under runs/)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a field: dotted.path=value (repeatable)."),
    timing_only: bool = typer.Option(False, "--timing-only", help="Timing only, no arithmetic (same as functional: false)."),
    eval_split: bool = typer.Option(False, "--eval", help="Also run the whole test split through the chip and report entity F1."),
    trace: Path | None = typer.Option(None, "--trace", help="Write every instruction on every unit as a Chrome/Perfetto trace."),
) -> None:
    """Lower the workload to the chip's ISA, verify, execute, and print cycles, energy, area and validation."""
    import os
    import shutil
    import tempfile
    import time

    from rich.progress import Progress

    from chipsim.app.runconfig import load_run_config
    from chipsim.app.runner import run
    from chipsim.app.trace import write_trace
    from reports.summary import print_summary

    cfg = load_run_config(file, overrides)
    functional = cfg.functional and not timing_only
    if eval_split and not functional:
        raise WorkloadError("--eval runs sentences through the chip, which needs a functional run; drop --timing-only or set functional: true.")
    out_dir = out or (Path(cfg.output.dir) if cfg.output.dir else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.sha256()[:8]}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise WorkloadError(f"output folder {out_dir} is not empty; choose a new --out (results are never overwritten).")
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("sentences through the chip", total=None)
        outcome = run(cfg, functional=functional, test_split=eval_split, trace=bool(trace or cfg.output.trace),
                      progress=lambda done, total: bar.update(task, completed=done, total=total))
    # Write everything to a temporary folder first, then move it into place: never a half-written output.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".chipsim-", dir=out_dir.parent))
    try:
        outcome.record.write(tmp)
        if cfg.output.trace:
            write_trace(outcome.result, tmp / "trace.json")
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if trace:
        write_trace(outcome.result, trace)
    print_summary(outcome.record, console)
    console.print(f"wrote {out_dir / 'result.json'} and {out_dir / 'per_layer.csv'}" + (f"; trace {trace}" if trace else ""), highlight=False)


@app.command("gemm")
def gemm_cmd(
    m: int = typer.Argument(..., help="Rows of A and C."),
    k: int = typer.Argument(..., help="Reduction dimension."),
    n: int = typer.Argument(..., help="Columns of B and C."),
    rows: int = typer.Option(128, "--rows", help="Array rows."),
    cols: int = typer.Option(128, "--cols", help="Array columns."),
    dataflow: str = typer.Option("ws", "--dataflow", help="ws, os or is."),
    precision: str = typer.Option("int8", "--precision", help="int8 or bf16."),
    ideal_memory: bool = typer.Option(False, "--ideal-memory", help="Operands already on chip, unlimited SRAM bandwidth: array cycles only."),
    weight_double_buffer: bool = typer.Option(True, "--weight-double-buffer/--no-weight-double-buffer", help="Overlap the next fold's weight load (off to match simulators that serialize it)."),
    fold_overlap: bool = typer.Option(True, "--fold-overlap/--no-fold-overlap", help="Pipeline folds (off: SCALE-Sim's convention, every fold fills and drains the array)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """One GEMM C[M,N] = A[M,K] @ B[K,N] through the mapper and executor on one core."""
    import json

    from chipsim.config import Dataflow, Precision
    from chipsim.app.gemm import run_gemm

    try:
        df, prec = Dataflow(dataflow), Precision(precision)
    except ValueError:
        raise WorkloadError(f"--dataflow must be ws, os or is and --precision int8 or bf16, got {dataflow!r} and {precision!r}.") from None
    r = run_gemm(m, k, n, rows, cols, df, prec, ideal_memory=ideal_memory, weight_double_buffer=weight_double_buffer,
                 fold_overlap=fold_overlap)
    if as_json:
        console.print_json(json.dumps(r.to_dict()))
        return
    table = Table(title=f"GEMM {m}x{k}x{n} on a {rows}x{cols} {df.value} array ({prec.value}{', ideal memory' if ideal_memory else ''})", show_header=False)
    for key, value in (("cycles", f"{r.cycles:,}"), ("MACs", f"{r.macs:,}"), ("utilization", f"{100 * r.utilization:.2f} %"),
                       ("roofline bound", f"{r.roofline_cycles:,.0f} cycles"), ("instructions", f"{r.instructions:,}"),
                       ("energy", f"{r.energy_j * 1e6:.3f} uJ"), ("simulated in", f"{r.wall_s * 1e3:.1f} ms")):
        table.add_row(key, value)
    print_table(table)


def _precision(name: str):
    from workloads.quantized import Precision

    try:
        return Precision(name)
    except ValueError:
        raise WorkloadError(f"unknown precision {name!r}; valid precisions are: fp32, int8, bf16.") from None


@app.command("chip")
def chip_cmd(
    source: str = typer.Argument(..., help="A chip YAML file, or a preset name: default, tpuv1, edge."),
    overrides: list[str] = typer.Option([], "--set", help="Override a field, e.g. --set core.tensor_core.rows=64 (repeatable)."),
) -> None:
    """Validate a chip and print its area breakdown, peak TOPS and per-event energies."""

    from chipsim.area import area_breakdown
    from chipsim.config import apply_overrides, chip_from_dict, load_chip_dict
    from chipsim.energy import EnergyModel

    chip = chip_from_dict(apply_overrides(load_chip_dict(source), overrides), source=source)
    tc = chip.core.tensor_core
    console.print(
        f"chip {chip.name!r}: valid. {chip.mesh.rows}x{chip.mesh.cols} cores of {tc.rows}x{tc.cols} "
        f"{tc.precision.value} {tc.dataflow.value} arrays, {chip.clock_mhz:g} MHz, {chip.technology_nm} nm",
        highlight=False,
    )
    console.print(
        f"peak {chip.peak_tops:.2f} TOPS ({chip.peak_macs_per_cycle} MACs/cycle); DRAM {chip.dram.type.value} "
        f"{chip.dram.bandwidth_gb_per_s:g} GB/s = {chip.dram_bytes_per_cycle:.1f} B/cycle",
        highlight=False,
    )
    area = Table("component", "area mm^2", "share", title="area")
    parts = area_breakdown(chip)
    for name, mm2 in parts.items():
        area.add_row(name, f"{mm2:.3f}", f"{100 * mm2 / parts['total']:.1f}%")
    console.print(area)
    model = EnergyModel.of(chip)
    energy = Table("event", "energy pJ", title=f"energy per event at {chip.technology_nm} nm")
    for event, pj in model.event_pj.items():
        if pj or chip.global_buffer is not None:
            energy.add_row(event.value, f"{pj:.4g}")
    console.print(energy)
    console.print(
        f"leakage {model.leakage_w * 1e3:.1f} mW (SRAM {model.sram_leakage_w * 1e3:.1f} mW, logic {model.logic_leakage_w * 1e3:.1f} mW)",
        highlight=False,
    )

@app.command("asm")
def asm_cmd(
    source: Path = typer.Argument(..., exists=True, dir_okay=False, help="Assembly text, e.g. prog.s."),
    output: Path = typer.Option(..., "-o", "--output", help="Binary to write, e.g. prog.bin."),
) -> None:
    """Assemble a text program (isa/SPEC.md syntax) into the 128-bit binary format."""
    from isa import encode, parse

    try:
        program = parse(source.read_text())
    except IsaError as exc:
        raise IsaError(f"{source}: {exc}") from None
    data = encode(program)
    output.write_bytes(data)
    console.print(
        f"wrote {program.num_instructions} instructions for {program.num_cores} cores ({len(data)} bytes) to {output}",
        highlight=False,
    )


@app.command("disasm")
def disasm_cmd(binary: Path = typer.Argument(..., exists=True, dir_okay=False, help="Binary program, e.g. prog.bin.")) -> None:
    """Print a binary program as assembly text (which `chipsim asm` reads back)."""
    from isa import decode, format_program

    try:
        program = decode(binary.read_bytes())
    except IsaError as exc:
        raise IsaError(f"{binary}: {exc}") from None
    typer.echo(format_program(program), nl=False)


@app.command("sweep")
def sweep_cmd(
    sweep_file: Path = typer.Argument(..., help="Sweep file, e.g. sweeps/bert_ner_small.yaml."),
    out: Path | None = typer.Option(None, "--out", help="Results folder (default: runs/sweeps/<sweep name>); running again resumes it."),
    max_points: int | None = typer.Option(None, "--max-points", help="Run only the first N points of the seeded plan."),
    workers: int | None = typer.Option(None, "--workers", help="Local worker processes (default: one per CPU)."),
    dask: str | None = typer.Option(None, "--dask", help="Run on the dask.distributed scheduler at tcp://HOST:PORT."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run points that failed before again."),
) -> None:
    """Run a design-space sweep; every finished point is stored at once, and a second run resumes."""
    from reports.store import SweepStore
    from chipsim.app.sweep import RichProgress, dask_executor, default_workers, local_executor, run_sweep
    from chipsim.app.sweep_plan import SweepError, build_plan, load_sweep
    from reports.table import load_results

    plan = build_plan(load_sweep(sweep_file))
    out = out if out is not None else Path("runs") / "sweeps" / plan.spec.name
    with SweepStore.for_sweep(out, plan.store_header()) as store:
        if retry_failed:
            store.forget_failed()
        excluded = f" ({plan.excluded} excluded by area constraints)" if plan.excluded else ""
        console.print(f"sweep {plan.spec.name}: {len(plan.points)} points planned{excluded}; results in {out}", highlight=False, soft_wrap=True)
        progress = RichProgress(console)
        if dask is not None:
            with dask_executor(dask) as (executor, threads):
                summary = run_sweep(plan, store, executor, parallelism=threads, max_points=max_points, progress=progress)
        else:
            n = workers if workers is not None else default_workers()
            with local_executor(min(n, max(1, len(plan.points)))) as executor:
                summary = run_sweep(plan, store, executor, parallelism=n, max_points=max_points, progress=progress)
    console.print(
        f"{summary.ran} points computed ({summary.failed} failed) in {summary.wall_s:.1f} s, "
        f"{summary.already_done} already done; {summary.remaining} of {summary.planned} still to run",
        highlight=False, soft_wrap=True,
    )
    results = load_results(out)
    ok = results.frame[results.frame["status"] == "ok"]
    if results.constraints and len(ok) and not results.frame["feasible"].any():
        texts = "; ".join(c.text for c in results.constraints)
        raise SweepError(f"none of the {len(ok)} computed points satisfies the constraints ({texts}); the results are kept in {out}; loosen the constraints or change the axes")
    console.print(f"{int(results.frame['feasible'].sum())} points satisfy the constraints; `chipsim report {out}` draws the report", highlight=False, soft_wrap=True)


@app.command("results")
def results_cmd(
    directory: Path = typer.Argument(..., help="A sweep results folder."),
    fmt: str = typer.Option("csv", "--format", help="parquet or csv."),
    output: Path = typer.Option(..., "-o", "--output", help="File to write, e.g. points.parquet."),
) -> None:
    """Export a sweep's results, one row per point (axis values, status, error, figures), as Parquet or CSV."""
    from reports.table import export, load_results

    results = load_results(directory)
    rows = export(results, output, fmt)
    console.print(f"wrote {rows} points to {output} ({results.pending} planned points not run yet)", highlight=False, soft_wrap=True)


@app.command("report")
def report_cmd(
    directory: Path = typer.Argument(..., help="A sweep results folder."),
    heatmap: str | None = typer.Option(None, "--heatmap", help="Two axes for the utilization heatmap, as x,y (default: the sweep's first two)."),
) -> None:
    """Write the sweep's HTML report (plots embedded) and its plots as PNG and SVG into DIR/report/."""
    from chipsim.app.sweep_plan import SweepError
    from reports.report import build_report

    chosen: tuple[str, str] | None = None
    if heatmap is not None:
        parts = [p.strip() for p in heatmap.split(",")]
        if len(parts) != 2 or not all(parts):
            raise SweepError(f"--heatmap {heatmap!r} must name two axes as x,y, e.g. --heatmap core.tensor_core,mesh")
        chosen = (parts[0], parts[1])
    report = build_report(directory, heatmap=chosen)
    console.print(f"wrote {report.html_path} and {len(report.plots)} plots (PNG and SVG) in {report.seconds:.1f} s", highlight=False, soft_wrap=True)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)


def main() -> None:
    # One BLAS thread: chipsim's matmuls are small, and on a loaded machine a second spinning BLAS thread makes
    # them ~30x slower; sweeps get their parallelism from processes instead.
    threadpool_limits(1)
    try:
        app()
    except USER_ERRORS as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
