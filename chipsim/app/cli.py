"""The `chipsim` command line: thin commands over the workloads, isa, mapper and chipsim packages."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from chipsim.app.sweep_plan import SweepError
from chipsim.config import ConfigError
from chipsim.dispatch import ExecutionError  # DeadlockError is a subclass
from isa.errors import IsaError
from mapper.errors import MapperError
from reports.files import OutputError
from workloads.errors import WorkloadError
from workloads.model import MODEL_DIR

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="chipsim: simulate a systolic-array AI accelerator running BERT NER.")
console = Console()
err_console = Console(stderr=True)

# Errors that mean "the user's input is wrong": printed as one sentence, exit code 2, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (WorkloadError, ConfigError, ExecutionError, IsaError, SweepError, MapperError, OutputError)


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
    force: bool = typer.Option(False, "--force", help="Replace an existing --csv file."),
) -> None:
    """Print the operator graph of a BERT NER workload: per-op GEMM shapes, MACs, params and bytes."""
    from reports.files import check_new_file

    if csv_path is not None:
        check_new_file(csv_path, "--csv file", force=force)

    from reports.files import write_atomic
    from workloads.bert import preset
    from workloads.graph import (
        build_graph,
        csv_text,
        encoder_macs,
        op_rows,
        param_count,
        total_bytes_read,
        total_bytes_written,
        total_macs,
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
        write_atomic(csv_path, csv_text(g), force=force)
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

    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise WorkloadError("the text to tag is not valid UTF-8 (undecodable bytes on the command line); pass UTF-8 text.") from None
    prec = _precision(precision)
    model = load_model(model_dir)
    qm = load_quantized(model, prec, model_dir)
    tagged = tag_text(model, text, lambda m, ids: forward_q(qm, ids))
    console.print(f"precision: {prec.value} ({'the fine-tuned fp32 reference' if prec.value == 'fp32' else 'the quantized reference, the chip numerics'})", highlight=False)
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
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
) -> None:
    """Entity precision/recall/F1 of the reference on the held-out test split."""
    from rich.progress import Progress

    from workloads.evaluate import evaluate, test_sentences
    from workloads.model import load_model
    from workloads.quantized import Precision

    model = load_model(model_dir)
    wanted = list(Precision) if precision == "all" else [_precision(precision)]
    if as_json:
        err_console.print(f"evaluating {', '.join(p.value for p in wanted)} on the test split ...", highlight=False)
    n = len(test_sentences(model))
    table = Table("precision", "sentences", "entities", "P", "R", "F1", *[f"F1 {t}" for t in ("PER", "ORG", "LOC", "MISC")])
    results = []
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        for p in wanted:
            task = bar.add_task(f"eval {p.value}", total=n)
            ev = evaluate(model, p, progress=lambda k, t=task: bar.update(t, completed=k))
            results.append(ev)
    if as_json:
        import json

        console.print_json(json.dumps([
            {"precision": ev.precision.value, "sentences": ev.sentences, "entities": ev.scores.support,
             "precision_score": ev.scores.precision, "recall": ev.scores.recall, "f1": ev.scores.f1,
             "f1_by_type": {t: v[2] for t, v in ev.scores.per_type.items()}}
            for ev in results
        ]))
        return
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
    force: bool = typer.Option(False, "--force", help="Replace an existing --trace file."),
) -> None:
    """Lower the workload to the chip's ISA, verify, execute, and print cycles, energy, area and validation."""
    import time

    import yaml
    from rich.progress import Progress

    from chipsim.app.runconfig import load_run_config
    from chipsim.app.runner import run
    from chipsim.app.trace import write_trace
    from reports.files import check_new_dir, check_new_file, write_atomic
    from reports.summary import print_summary

    cfg = load_run_config(file, overrides)
    functional = cfg.functional and not timing_only
    if eval_split and not functional:
        raise WorkloadError("--eval runs sentences through the chip, which needs a functional run; drop --timing-only or set functional: true.")
    out_dir = out or (Path(cfg.output.dir) if cfg.output.dir else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.sha256()[:8]}")
    # Every output is checked before the simulation, and the folder is claimed, so a second run into it fails now.
    if (out_dir / _claimed.CLAIM).exists():
        raise OutputError(f"output folder {out_dir} is being written by another chipsim run; choose another --out")
    check_new_dir(out_dir, "output folder")
    if trace is not None:
        check_new_file(trace, "--trace file", force=force)
    with _claimed(out_dir):
        with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
            task = bar.add_task("sentences through the chip", total=None)
            outcome = run(cfg, functional=functional, test_split=eval_split, trace=bool(trace or cfg.output.trace),
                          progress=lambda done, total: bar.update(task, completed=done, total=total))
        if trace is not None:
            write_trace(outcome.result, trace, force=force)
        if cfg.output.trace:
            write_trace(outcome.result, out_dir / "trace.json")
        write_atomic(out_dir / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        outcome.record.write(out_dir)
    print_summary(outcome.record, console)
    console.print(f"wrote {out_dir / 'result.json'}, {out_dir / 'per_layer.csv'} and {out_dir / 'config.yaml'}"
                  + (f"; trace {trace}" if trace else ""), highlight=False)


class _claimed:
    """Hold an output folder for one run: created if needed (mode 0755 under the usual umask) with a claim file
    inside, so a second run into the same folder fails at once; on failure everything written is removed again,
    and a folder this run created is removed too."""

    CLAIM = ".chipsim-run-in-progress"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.created = False

    def __enter__(self) -> Path:
        import os

        from reports.files import OutputError

        try:
            self.directory.mkdir(parents=True)
            self.created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise OutputError(f"output folder {self.directory} cannot be created ({exc.strerror})") from None
        try:
            os.close(os.open(self.directory / self.CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            raise OutputError(f"output folder {self.directory} is being written by another chipsim run; choose another --out") from None
        if [p for p in self.directory.iterdir() if p.name != self.CLAIM]:
            (self.directory / self.CLAIM).unlink()
            raise OutputError(f"output folder {self.directory} is not empty; choose a new folder (results are never overwritten)")
        return self.directory

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        import shutil

        (self.directory / self.CLAIM).unlink(missing_ok=True)
        if kind is not None:  # a failed run leaves nothing behind
            if self.created:
                shutil.rmtree(self.directory, ignore_errors=True)
            else:
                for p in self.directory.iterdir():
                    p.unlink()


@app.command("gemm", context_settings={"ignore_unknown_options": True})
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
    partial_folds: bool = typer.Option(True, "--partial-folds/--no-partial-folds", help="A fold smaller than the array loads only its rows (off: every fold loads the whole zero-padded tile)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """One GEMM C[M,N] = A[M,K] @ B[K,N] through the mapper and executor on one core."""
    import json

    from chipsim.app.gemm import run_gemm
    from chipsim.config import Dataflow, Precision

    try:
        df, prec = Dataflow(dataflow), Precision(precision)
    except ValueError:
        raise WorkloadError(f"--dataflow must be ws, os or is and --precision int8 or bf16, got {dataflow!r} and {precision!r}.") from None
    r = run_gemm(m, k, n, rows, cols, df, prec, ideal_memory=ideal_memory, weight_double_buffer=weight_double_buffer,
                 fold_overlap=fold_overlap, partial_folds=partial_folds)
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
    from chipsim.cost import chip_cost_usd

    cost = chip_cost_usd(chip)
    console.print(
        f"cost ${cost.total_usd:,.2f}: die ${cost.die_usd:,.2f} ({cost.die_area_mm2:.1f} mm^2 of modelled blocks, "
        f"{cost.gross_dies_per_wafer:,.0f} dies per wafer at ${cost.wafer_usd:,.0f}, yield {100 * cost.die_yield:.1f}%) "
        f"+ DRAM ${cost.dram_usd:,.2f} ({cost.dram_capacity_gb:g} GB at ${cost.dram_usd_per_gb:g}/GB)",
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
    source: Path = typer.Argument(..., help="Assembly text, e.g. prog.s."),
    output: Path = typer.Option(..., "-o", "--output", help="Binary to write, e.g. prog.bin."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
) -> None:
    """Assemble a text program (isa/SPEC.md syntax) into the 128-bit binary format."""
    from chipsim.config import read_text_file
    from isa import encode, parse
    from reports.files import check_new_file, write_atomic

    check_new_file(output, "output", force=force)
    text = read_text_file(source, "assembly file", max_bytes=MAX_PROGRAM_BYTES)
    try:
        program = parse(text)
    except IsaError as exc:
        raise IsaError(f"{source}: {exc}") from None
    data = encode(program)
    write_atomic(output, data, force=force)
    console.print(
        f"wrote {program.num_instructions} instructions for {program.num_cores} cores ({len(data)} bytes) to {output}",
        highlight=False,
    )


@app.command("disasm")
def disasm_cmd(binary: Path = typer.Argument(..., help="Binary program, e.g. prog.bin.")) -> None:
    """Print a binary program as assembly text (which `chipsim asm` reads back)."""
    from isa import decode, format_program

    try:
        program = decode(_read_program_bytes(binary))
    except IsaError as exc:
        raise IsaError(f"{binary}: {exc}") from None
    typer.echo(format_program(program), nl=False)


@app.command("exec")
def exec_cmd(
    program_file: Path = typer.Argument(..., help="A program: assembly text (prog.s) or a binary from `chipsim asm` (prog.bin)."),
    chip_name: str = typer.Option("default", "--chip", help="A chip preset (default, tpuv1, edge, a100) or a chip YAML file."),
    overrides: list[str] = typer.Option([], "--set", help="Override a chip field, e.g. --set core.tensor_core.rows=64 (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Run a hand-written program on a chip (timing only): cycles, per-unit busy and stall time, DRAM traffic, energy."""
    import json

    from chipsim.config import apply_overrides, chip_from_dict, decode_text, load_chip_dict
    from chipsim.executor import execute
    from chipsim.stats import StallCause
    from isa import decode, parse
    from isa.encoding import MAGIC

    raw = _read_program_bytes(program_file)
    if raw.startswith(MAGIC):
        program = decode(raw)
    else:
        try:
            program = parse(decode_text(raw, program_file, "assembly file"))
        except IsaError as exc:
            raise IsaError(f"{program_file}: {exc}") from None
    chip = chip_from_dict(apply_overrides(load_chip_dict(chip_name), overrides), source=chip_name)
    r = execute(program, chip, functional=False, check=True)
    units = {
        f"core{c.core}.{u.unit.name.lower()}": {"instructions": u.instructions, "busy_cycles": u.busy_cycles,
                                                 **{f"stall_{k.value}_cycles": u.stall_cycles(k) for k in StallCause}}
        for c in r.cores for u in c.units if u.instructions
    }
    figures = {"cycles": r.cycles, "latency_s": r.latency_s, "instructions": r.instructions, "macs": r.useful_macs,
               "utilization": r.utilization, "dram_read_bytes": r.dram_read_bytes, "dram_write_bytes": r.dram_write_bytes,
               "energy_j": dict(r.energy_j), "phases": len(r.phases), "units": units}
    if as_json:
        console.print_json(json.dumps(figures))
        return
    head = Table(title=f"{program_file} on {chip.name} ({program.num_cores} cores, {program.num_instructions:,} instructions)", show_header=False)
    for key, value in (("cycles", f"{r.cycles:,}"), (f"latency at {chip.clock_mhz:g} MHz", f"{r.latency_s * 1e6:.3f} us"),
                       ("MACs", f"{r.useful_macs:,}"), ("utilization", f"{100 * r.utilization:.2f} %"),
                       ("DRAM read + write", f"{r.dram_read_bytes:,} + {r.dram_write_bytes:,} B"),
                       ("energy", f"{r.energy_total_j * 1e6:.3f} uJ"), ("barrier phases", str(len(r.phases)))):
        head.add_row(key, value)
    print_table(head)
    table = Table("unit", "instructions", "busy", *[f"stall {k.value}" for k in StallCause], title="per unit (cycles)")
    for name, u in units.items():
        table.add_row(name, str(u["instructions"]), f"{u['busy_cycles']:,}", *[f"{u[f'stall_{k.value}_cycles']:,}" for k in StallCause])
    print_table(table)


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
    from contextlib import ExitStack

    from chipsim.app.search import run_search
    from chipsim.app.sweep import (
        RichProgress,
        check_dask_address,
        check_sweep_options,
        dask_executor,
        default_workers,
        local_executor,
        run_sweep,
    )
    from chipsim.app.sweep_plan import SweepError, build_plan, load_sweep
    from reports.store import SweepStore
    from reports.table import load_results

    # Every option is checked, and the cluster reached, before a results folder is created.
    check_sweep_options(max_points=max_points, workers=workers)
    if dask is not None:
        check_dask_address(dask)
    plan = build_plan(load_sweep(sweep_file))
    searching = plan.spec.sampling.method.searches
    if searching and max_points is not None:
        raise SweepError(f"--max-points does not apply to a {plan.spec.sampling.method.value} search; set sampling.budget in {sweep_file} instead")
    out = out if out is not None else Path("runs") / "sweeps" / plan.spec.name
    with ExitStack() as stack:
        health = None
        if dask is not None:
            executor, parallelism, health = stack.enter_context(dask_executor(dask))
        else:
            parallelism = workers if workers is not None else default_workers()
            executor = stack.enter_context(local_executor(min(parallelism, max(1, len(plan.points)) if not searching else parallelism)))
        store = stack.enter_context(SweepStore.for_sweep(out, plan.store_header()))
        if retry_failed:
            store.forget_failed()
        excluded = f" ({plan.excluded} excluded by area constraints)" if plan.excluded else ""
        sampling = plan.spec.sampling
        planned = (f"a {sampling.method.value} search of {sampling.budget} points" if searching
                   else f"{len(plan.points)} points planned{excluded}")
        console.print(f"sweep {plan.spec.name}: {planned}; results in {out}", highlight=False, soft_wrap=True)
        progress = RichProgress(console)
        if searching:
            summary = run_search(plan, store, executor, parallelism=parallelism, progress=progress, health=health)
        else:
            summary = run_sweep(plan, store, executor, parallelism=parallelism, max_points=max_points, progress=progress, health=health)
    console.print(
        f"{summary.ran} points computed ({summary.failed} failed) in {summary.wall_s:.1f} s, "
        f"{summary.already_done} already done; {summary.remaining} of {summary.planned} still to run",
        highlight=False, soft_wrap=True,
    )
    results = load_results(out)
    ok = results.frame[results.frame["status"] == "ok"]
    if len(results.frame) and not len(ok):
        errors = results.frame["error"].dropna()
        first = str(errors.iloc[0]) if len(errors) else "no error recorded"
        raise SweepError(f"every one of the {len(results.frame)} computed points failed (the first: {first}); the results are kept in {out}")
    if results.constraints and len(ok) and not results.frame["feasible"].any():
        texts = "; ".join(c.text for c in results.constraints)
        raise SweepError(f"none of the {len(ok)} computed points satisfies the constraints ({texts}); the results are kept in {out}; loosen the constraints or change the axes")
    console.print(f"{int(results.frame['feasible'].sum())} points satisfy the constraints; `chipsim report {out}` draws the report", highlight=False, soft_wrap=True)


@app.command("results")
def results_cmd(
    directory: Path = typer.Argument(..., help="A sweep results folder."),
    fmt: str = typer.Option("csv", "--format", help="parquet or csv."),
    output: Path | None = typer.Option(None, "-o", "--output", help="File to write, e.g. points.parquet (default: CSV to standard output)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
) -> None:
    """Export a sweep's results, one row per point (axis values, status, error, figures), as Parquet or CSV."""
    from reports.files import check_new_file
    from reports.table import export, load_results

    if fmt not in ("csv", "parquet"):
        raise SweepError(f"--format {fmt!r} is not supported; use parquet or csv")
    if output is None:
        if fmt != "csv":
            raise SweepError("--format parquet needs a file: give -o points.parquet (standard output gets CSV)")
        results = load_results(directory)
        sys.stdout.write(results.frame.to_csv(index=False))
        return
    check_new_file(output, "output", force=force)
    results = load_results(directory)
    rows = export(results, output, fmt, force=force)
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


MAX_PROGRAM_BYTES = 64 * 1024 * 1024  # 4 M instructions of 16 bytes: far more than any mapped BERT program


def _read_program_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise IsaError(f"{path}: no such file; give a binary program written by `chipsim asm`")
    size = path.stat().st_size
    if size > MAX_PROGRAM_BYTES:
        raise IsaError(f"{path} is {size:,} bytes, more than the {MAX_PROGRAM_BYTES:,} a program may have; is it the right file?")
    return path.read_bytes()


def main(argv: list[str] | None = None) -> None:
    """The `chipsim` command. Every user error is one line on stderr and exit code 2: bad options and values as the
    command-line parser reports them, bad files and configs as the packages' own errors."""
    try:  # typer >= 0.20 carries its own copy of click; earlier ones use the click package
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions as click_errors  # type: ignore[no-redef]

    # One BLAS thread: chipsim's matmuls are small, and on a loaded machine a second spinning BLAS thread makes
    # them ~30x slower; sweeps get their parallelism from processes instead.
    threadpool_limits(1)
    try:
        code = app(args=argv, standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        if exc.ctx is not None:
            print(exc.ctx.get_help())
        sys.exit(0)
    except click_errors.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "chipsim"
        message = " ".join(exc.format_message().split()).rstrip(".")
        err_console.print(f"error: {command}: {message}; see `{command} --help`", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except click_errors.ClickException as exc:
        err_console.print(f"error: {' '.join(exc.format_message().split())}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
    except USER_ERRORS as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
