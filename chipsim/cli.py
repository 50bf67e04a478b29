"""The `chipsim` command line: thin commands over the workloads, isa, mapper and chipsim packages."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from chipsim.config import ConfigError
from chipsim.decode import ExecutionError  # DeadlockError is a subclass
from isa.errors import IsaError
from workloads.errors import WorkloadError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="chipsim: simulate a systolic-array AI accelerator running BERT NER.")
console = Console()
err_console = Console(stderr=True)

# Errors that mean "the user's input is wrong": printed as one sentence, exit code 2, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (WorkloadError, ConfigError, ExecutionError, IsaError)


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
    from rich.table import Table

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
    # Never truncate the figures: render at the table's natural width even on a narrow (or no) terminal.
    natural_width = console.measure(table, options=console.options.update_width(10_000)).maximum
    Console(file=console.file, width=max(console.width, natural_width)).print(table)
    console.print(f"total MACs: {total_macs(g):,} ({total_macs(g) / 1e9:.3f} GMACs)", highlight=False)
    console.print(f"encoder MACs: {encoder_macs(g):,} ({encoder_macs(g) / 1e9:.3f} GMACs)", highlight=False)
    console.print(f"params: {param_count(g):,}", highlight=False)
    console.print(f"bytes read: {total_bytes_read(g):,}; bytes written: {total_bytes_written(g):,}", highlight=False)
    if csv_path is not None:
        write_csv(g, csv_path)
        console.print(f"wrote {g.number_of_nodes()} rows to {csv_path}", highlight=False)


@app.command("chip")
def chip_cmd(
    source: str = typer.Argument(..., help="A chip YAML file, or a preset name: default, tpuv1, edge."),
    overrides: list[str] = typer.Option([], "--set", help="Override a field, e.g. --set core.tensor_core.rows=64 (repeatable)."),
) -> None:
    """Validate a chip and print its area breakdown, peak TOPS and per-event energies."""
    from rich.table import Table

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


def main() -> None:
    try:
        app()
    except USER_ERRORS as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(2)
