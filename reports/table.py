"""Sweep results as a pandas table: one row per finished point (axis values, status, error, figures).

Used by `chipsim results` (CSV / Parquet export) and by the report. Axis columns hold the axis values as the
sweep file wrote them (numbers, names, booleans); a mapping value (`core.tensor_core: {rows: 32, cols: 32}`)
appears as its label (`32x32`). `feasible` says whether a point satisfies every constraint of the sweep.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reports.figures import (
    SCALAR_FIGURES,
    Constraint,
    Direction,
    JsonValue,
    Objective,
    SweepError,
    figures_of,
    parse_constraint,
    value_label,
)
from reports.files import write_atomic
from reports.store import PointStatus, StoredPoint, StoredSweep, SweepStore


@dataclass(frozen=True, slots=True)
class SweepResults:
    sweep: StoredSweep
    frame: pd.DataFrame  # one row per finished point
    pending: int  # planned points without a result yet
    records: dict[str, dict[str, JsonValue]]  # key -> full result record (per-layer tables live here)
    constraints: tuple[Constraint, ...]
    objectives: tuple[Objective, ...]

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.sweep.axes)


def _axis_cell(value: JsonValue) -> JsonValue:
    return value_label(value) if isinstance(value, (dict, list)) else value


def _frame(points: list[StoredPoint], sweep: StoredSweep, constraints: tuple[Constraint, ...]) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    for p in points:
        if p.status is None:
            continue
        row: dict[str, object] = {"plan_index": p.plan_index, "key": p.key}
        for name, _, _ in sweep.axes:
            row[name] = _axis_cell(p.axis_values.get(name))
        row["status"] = p.status.value
        row["error"] = p.error
        if p.record is not None:
            row.update(figures_of(p.record))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["plan_index", "key", *[n for n, _, _ in sweep.axes], "status", "error"])
    for figure in SCALAR_FIGURES:  # every figure column exists, even before any point succeeded
        if figure not in frame:
            frame[figure] = np.nan
    for name, _, _ in sweep.axes:  # one type per column (Parquet needs it): mixed kinds become text
        kinds = {type(v) for v in frame[name] if v is not None}
        if len(kinds) > 1 and not kinds <= {int, float}:
            frame[name] = frame[name].map(lambda v: None if v is None else value_label(v))
    ok = frame["status"] == PointStatus.OK.value
    feasible = ok.copy()
    for c in constraints:
        values = pd.to_numeric(frame[c.metric], errors="coerce") if c.metric in frame else pd.Series(np.nan, index=frame.index)
        feasible &= values.map(lambda v, c=c: c.holds(None if pd.isna(v) else float(v))).astype(bool)
    frame["feasible"] = feasible.astype(bool)
    return frame.reset_index(drop=True)


def load_results(directory: Path) -> SweepResults:
    store = SweepStore.open(directory)
    try:
        sweep = store.sweep()
        points = store.points()
    finally:
        store.close()
    constraints = tuple(parse_constraint(text, str(directory)) for text in sweep.constraints)
    objectives = tuple(Objective(metric, Direction(d)) for d, metric in sweep.objectives)
    records = {p.key: p.record for p in points if p.record is not None}
    return SweepResults(
        sweep=sweep, frame=_frame(points, sweep, constraints), pending=sum(p.status is None for p in points),
        records=records, constraints=constraints, objectives=objectives,
    )


def export(results: SweepResults, path: Path, fmt: str, *, force: bool = False) -> int:
    """Write the table as CSV or Parquet in one step (never over an existing file unless `force`); returns the
    number of rows."""
    frame = results.frame
    if fmt == "csv":
        data: bytes | str = frame.to_csv(index=False)
    elif fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    else:
        raise SweepError(f"--format {fmt!r} is not supported; use parquet or csv")
    write_atomic(path, data, force=force)
    return len(frame)


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Rows of `values` (n x d, every column to minimize) that no other row dominates.

    Rows are visited in lexicographic order, so a row can only be dominated by one visited before it.
    """
    keep = np.zeros(values.shape[0], dtype=bool)
    front = np.empty((0, values.shape[1]))
    for i in np.lexsort(values.T[::-1]):
        row = values[i]
        if front.shape[0] and bool(np.any(np.all(front <= row, axis=1) & np.any(front < row, axis=1))):
            continue
        keep[i] = True
        front = np.vstack([front, row])
    return keep


def objective_matrix(frame: pd.DataFrame, objectives: tuple[Objective, ...]) -> np.ndarray:
    """The objectives as columns to minimize (maximized figures negated)."""
    cols = []
    for o in objectives:
        v = pd.to_numeric(frame[o.metric], errors="coerce").to_numpy(dtype=float) if o.metric in frame else np.full(len(frame), np.nan)
        cols.append(v if o.direction is Direction.MINIMIZE else -v)
    return np.column_stack(cols) if cols else np.zeros((len(frame), 0))


def best_designs(results: SweepResults, limit: int = 10) -> pd.DataFrame:
    """Feasible points on the Pareto front of the sweep's objectives, best first by the first objective."""
    frame = results.frame[results.frame["feasible"]]
    if frame.empty or not results.objectives:
        return frame.head(0)
    matrix = objective_matrix(frame, results.objectives)
    finite = np.all(np.isfinite(matrix), axis=1)
    frame, matrix = frame[finite], matrix[finite]
    front = frame[pareto_mask(matrix)] if len(frame) else frame
    first = results.objectives[0]
    return front.sort_values(first.metric, ascending=first.direction is Direction.MINIMIZE).head(limit)


def hypervolume_2d(points: np.ndarray, ref: np.ndarray) -> float:
    """Area that `points` (n x 2, both columns to minimize) dominate within the box below `ref`."""
    inside = points[np.all(np.isfinite(points), axis=1) & np.all(points < ref, axis=1)]
    if not len(inside):
        return 0.0
    front = inside[pareto_mask(inside)]
    front = front[np.argsort(front[:, 0])]  # x ascending, so y descending along the front
    xs = np.append(front[1:, 0], ref[0])
    return float(np.sum((xs - front[:, 0]) * (ref[1] - front[:, 1])))


def _log_objectives(frame: pd.DataFrame, objectives: tuple[Objective, ...]) -> np.ndarray:
    """The first two objectives to minimize, in decades (latency and energy span orders of magnitude, so a linear
    hypervolume would be all but full for any point near the good corner)."""
    m = objective_matrix(frame, objectives[:2])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m > 0, np.log10(np.abs(m)), np.where(m < 0, -np.log10(np.abs(m)), np.nan))


def hypervolume_box(frame: pd.DataFrame, objectives: tuple[Objective, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """(ideal, reference) for the hypervolume of the first two objectives, in decades, from the Pareto front of
    `frame`'s feasible points: the ideal is the best of each objective on it, the reference its worst (the
    front's nadir) plus a tenth of the front's range, the usual normalisation (Ishibuchi et al., "How to specify
    a reference point in hypervolume calculation", Evolutionary Computation 26(3), 2018). Points beyond the front's
    nadir add nothing, so the measure tells how much of the front itself was found."""
    if len(objectives) < 2:
        return None
    m = _log_objectives(frame[frame["feasible"]], objectives)
    m = m[np.all(np.isfinite(m), axis=1)]
    if not len(m):
        return None
    front = m[pareto_mask(m)]
    ideal, nadir = front.min(axis=0), front.max(axis=0)
    span = np.where(nadir - ideal > 0, nadir - ideal, np.maximum(np.abs(nadir), 1.0) * 1e-3)  # a one-point front
    return ideal, nadir + 0.1 * span


def hypervolume_fraction(frame: pd.DataFrame, objectives: tuple[Objective, ...], box: tuple[np.ndarray, np.ndarray]) -> float:
    """The hypervolume of `frame`'s feasible front as a fraction of the box (ideal, reference)."""
    ideal, ref = box
    m = _log_objectives(frame[frame["feasible"]], objectives)
    return hypervolume_2d(m, ref) / float(np.prod(ref - ideal))


def hypervolume_curve(results: SweepResults, checkpoints: int = 200) -> tuple[np.ndarray, np.ndarray] | None:
    """Evaluations (points in plan order, which is evaluation order for a search) and the hypervolume of the
    feasible front found after each, as a fraction of the sweep's own box (at most `checkpoints` samples)."""
    frame = results.frame.sort_values("plan_index")
    box = hypervolume_box(frame, results.objectives)
    if box is None:
        return None
    n = len(frame)
    steps = np.unique(np.linspace(1, n, min(n, checkpoints)).astype(int))
    return steps, np.array([hypervolume_fraction(frame.iloc[:s], results.objectives, box) for s in steps])
