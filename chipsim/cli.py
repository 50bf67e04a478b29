"""The `chipsim` command line: thin commands over the workloads, isa, mapper and chipsim packages."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from workloads.errors import WorkloadError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="chipsim: simulate a systolic-array AI accelerator running BERT NER.")
console = Console()
err_console = Console(stderr=True)

# Errors that mean "the user's input is wrong": printed as one sentence, exit code 2, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (WorkloadError,)


def main() -> None:
    try:
        app()
    except USER_ERRORS as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(2)
