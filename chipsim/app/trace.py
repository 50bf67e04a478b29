"""Chrome / Perfetto trace export of a run: one process per core, one thread (track) per unit.

Open the file in https://ui.perfetto.dev or chrome://tracing. Timestamps are microseconds at the chip's clock
(cycles / clock_mhz), as the Trace Event Format expects; each event's `args` carries its cycles and index.
"""

from __future__ import annotations

import json
from pathlib import Path

from chipsim.stats import RunResult
from reports.files import write_atomic
from isa import Unit

TRACE_UNITS: tuple[Unit, ...] = (Unit.DMA, Unit.MXU, Unit.VEC, Unit.NOC)


def trace_events(result: RunResult) -> list[dict[str, object]]:
    """The `traceEvents` list: metadata naming each core and unit, then one complete ("X") event per instruction."""
    if result.trace is None:
        raise ValueError("this run kept no timeline; run chipsim.executor.execute(..., trace=True) to export a trace")
    per_us = 1.0 / result.clock_mhz
    out: list[dict[str, object]] = []
    for core in range(len(result.cores)):
        out.append({"name": "process_name", "ph": "M", "pid": core, "tid": 0, "args": {"name": f"core {core}"}})
        out.append({"name": "process_sort_index", "ph": "M", "pid": core, "tid": 0, "args": {"sort_index": core}})
        for unit in TRACE_UNITS:
            out.append({"name": "thread_name", "ph": "M", "pid": core, "tid": int(unit), "args": {"name": unit.name}})
            out.append({"name": "thread_sort_index", "ph": "M", "pid": core, "tid": int(unit), "args": {"sort_index": int(unit)}})
    for ev in result.trace:
        out.append({
            "name": ev.name,
            "cat": ev.unit.name.lower(),
            "ph": "X",
            "pid": ev.core,
            "tid": int(ev.unit),
            "ts": ev.start_cycle * per_us,
            "dur": (ev.end_cycle - ev.start_cycle) * per_us,
            "args": {"index": ev.index, "start_cycle": ev.start_cycle, "end_cycle": ev.end_cycle},
        })
    return out


def write_trace(result: RunResult, path: Path | str, *, force: bool = False) -> Path:
    """Write the run's timeline as Trace Event Format JSON to `path` in one step (never over an existing file
    unless `force`); returns the path."""
    path = Path(path)
    doc = {"traceEvents": trace_events(result), "displayTimeUnit": "ns", "otherData": {"chip": result.chip_name, "cycles": result.cycles}}
    write_atomic(path, json.dumps(doc, separators=(",", ":")), force=force)
    return path
