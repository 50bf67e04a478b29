"""Search instead of enumeration: a multi-objective optimiser picks the next chips from the results so far.

    sampling: {method: nsga2, budget: 150, seed: 0}     # or method: tpe

The optimiser is optuna's (NSGA-II or multi-objective TPE). We chose optuna over pymoo because its ask-and-tell
interface fits a store that commits every point as it finishes and a pool of workers that evaluates several at
once, because it handles categorical axes (ours are lists of values, not ranges) natively, and because a study
can be rebuilt from stored trials, so a killed search continues from what it had instead of starting over.

How a search runs:
- Each axis is a categorical parameter over its value indices. The search asks for a batch of points (twice the
  workers), evaluates them in parallel, and tells the optimiser their objectives in the order it asked, so a
  seeded search is the same whatever the workers' timing.
- Constraints steer it: area constraints are checked before running (a point that breaks one is never run; the
  optimiser is told it failed); the others are passed to optuna as constraint values (value - bound, <= 0 when
  met). A point that fails to run (for example SRAM too small) is told as failed and stored with its error.
- `budget` counts distinct points evaluated (stored with a result or an error), at most every combination of the
  axes. A combination asked again, or one that resolves to a point already stored, is answered from the store
  without running; so that a space mostly excluded by area constraints cannot keep the search asking forever, it
  stops after 20 x budget asks.
- Every evaluated point is first appended to the store's plan (plan order is evaluation order), then its outcome
  is committed. A rerun rebuilds the study from the stored points, first finishes any point that was planned but
  not finished, and asks for the rest of the budget; a larger budget continues a finished search.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import time
from collections.abc import Sequence

from chipsim.app.sweep import (
    Evaluator,
    Health,
    collect_finished,
    PointTask,
    ProgressSink,
    SweepSummary,
    evaluate_point,
    evaluate_with_runner,
)
from chipsim.app.sweep_plan import (
    JsonValue,
    PlannedPoint,
    SamplingMethod,
    SweepPlan,
    SweepSpec,
    plan_point,
    static_constraints_hold,
)
from reports.figures import Constraint, Direction, figures_of
from reports.store import PointOutcome, PointStatus, StoredPoint, SweepStore

ASKS_PER_BUDGET = 20  # asks allowed per point of budget before the search stops (a small space is exhausted)


def _optuna():  # type: ignore[no-untyped-def]
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _violation(c: Constraint, value: float | None) -> float:
    """optuna's convention: <= 0 when the constraint holds; else how far it is broken, relative to the bound."""
    if value is None or math.isnan(value):
        return 1.0
    if c.holds(value):
        return 0.0
    return max(abs(value - c.bound) / max(abs(c.bound), 1e-12), 1e-9)


def _values_and_constraints(spec: SweepSpec, record: dict[str, JsonValue]) -> tuple[list[float] | None, dict[str, float]]:
    figures = figures_of(record)
    values = [figures.get(o.metric) for o in spec.objectives]
    constraints = {c.text: _violation(c, figures.get(c.metric)) for c in spec.constraints}
    if any(v is None or math.isnan(v) for v in values):
        return None, constraints
    return [float(v) for v in values if v is not None], constraints


def _combo_of(spec: SweepSpec, axis_values: dict[str, JsonValue]) -> tuple[int, ...] | None:
    """The value indices of a stored point (None when the sweep file's axes changed under the store)."""
    out = []
    for axis in spec.axes:
        want = json.dumps(axis_values.get(axis.name), sort_keys=True)
        found = [i for i, v in enumerate(axis.values) if json.dumps(v, sort_keys=True) == want]
        if not found:
            return None
        out.append(found[0])
    return tuple(out)


class Search:
    """One optuna study steered by the sweep's objectives and constraints, fed from and into the store."""

    def __init__(self, spec: SweepSpec, warm: int) -> None:
        optuna = _optuna()
        self.spec = spec
        self.optuna = optuna
        assert spec.sampling.budget is not None
        seed = spec.sampling.seed + warm  # a rerun asks new points, not generation 0 again
        if spec.sampling.method is SamplingMethod.NSGA2:
            # Small budgets need small generations to evolve at all: about six generations over the budget.
            population = max(8, min(50, spec.sampling.budget // 6))
            sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
        else:
            sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=min(20, max(4, spec.sampling.budget // 8)))
        directions = ["minimize" if o.direction is Direction.MINIMIZE else "maximize" for o in spec.objectives]
        self.study = optuna.create_study(directions=directions, sampler=sampler)
        self.distributions = {a.name: optuna.distributions.CategoricalDistribution(list(range(len(a.values)))) for a in spec.axes}

    def _result(self, point: StoredPoint | None) -> tuple[list[float], dict[str, float]] | None:
        """A finished point's objective values and constraint values, or None when the optimiser must be told it
        failed (never run, failed, or missing an objective)."""
        if point is None or point.status is not PointStatus.OK or point.record is None:
            return None
        values, constraints = _values_and_constraints(self.spec, point.record)
        return None if values is None else (values, constraints)

    def tell_stored(self, combo: tuple[int, ...], point: StoredPoint) -> None:
        """Add a point the store already holds to the study, as a trial at those axis value indices."""
        params = {a.name: i for a, i in zip(self.spec.axes, combo)}
        result = self._result(point)
        if result is None:
            trial = self.optuna.trial.create_trial(params=params, distributions=self.distributions, state=self.optuna.trial.TrialState.FAIL)
        else:
            trial = self.optuna.trial.create_trial(params=params, distributions=self.distributions, values=result[0], constraints=result[1])
        self.study.add_trial(trial)

    def ask(self):  # type: ignore[no-untyped-def]
        return self.study.ask(self.distributions)

    def tell(self, trial, point: StoredPoint | None) -> None:  # type: ignore[no-untyped-def]
        """Tell the result of one asked trial: the stored point it resolved to, or None for a point never run (a
        static constraint)."""
        result = self._result(point)
        if result is None:
            self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            return
        for name, v in result[1].items():
            trial.set_constraint(name, v)
        self.study.tell(trial, result[0])


def run_search(
    plan: SweepPlan,
    store: SweepStore,
    executor: cf.Executor,
    *,
    parallelism: int,
    evaluator: Evaluator = evaluate_with_runner,
    progress: ProgressSink | None = None,
    health: Health | None = None,
) -> SweepSummary:
    """Evaluate up to the search's budget of distinct points, steering by the sweep's objectives (a lost worker or
    cluster stops it as it stops a grid: chipsim.app.sweep.run_sweep)."""
    start = time.perf_counter()
    spec = plan.spec
    assert spec.sampling.method.searches and spec.sampling.budget is not None
    budget = min(spec.sampling.budget, math.prod(len(a.values) for a in spec.axes))  # a small space: all of it
    stored = store.points()
    done = {p.key: p for p in stored if p.status is not None}
    unfinished = [p for p in stored if p.status is None]
    search = Search(spec, len(stored))
    for p in stored:
        combo = _combo_of(spec, p.axis_values)
        if combo is not None and p.status is not None:
            search.tell_stored(combo, p)
    evaluated = len(stored)
    already_done = len(done)
    if progress is not None:
        progress.start(max(budget, evaluated), already_done)
    ran = failed = 0

    def commit(outcome: PointOutcome) -> None:
        nonlocal ran, failed
        store.add(outcome)
        done[outcome.key] = StoredPoint(0, outcome.key, {}, outcome.status, outcome.error, outcome.record, store.run)
        ran += 1
        failed += outcome.status is PointStatus.FAILED
        if progress is not None:
            progress.advance(outcome)

    def evaluate(points: Sequence[PlannedPoint]) -> None:
        """Run points in parallel (invalid ones fail without running); commit each as it finishes."""
        pending: dict[cf.Future[PointOutcome], str] = {}
        try:
            for point in points:
                if point.config is None:
                    commit(PointOutcome(point.key, PointStatus.FAILED, point.error, None, 0.0))
                else:
                    pending[executor.submit(evaluate_point, PointTask(point.key, point.config), evaluator)] = point.key
            while pending:
                for outcome in collect_finished(pending, health):
                    commit(outcome)
        finally:
            for future in pending:
                future.cancel()

    try:
        # Points a killed run had planned but not finished: run them first, then tell the study.
        if unfinished:
            evaluate([p for p in (_replan(spec, u) for u in unfinished) if p is not None])
            for u in unfinished:
                combo = _combo_of(spec, u.axis_values)
                if combo is not None and u.key in done:
                    search.tell_stored(combo, done[u.key])
        asks = 0
        window = max(2, 2 * parallelism)
        while evaluated < budget and asks < ASKS_PER_BUDGET * budget:
            batch: list[tuple[object, PlannedPoint | None]] = []
            new: dict[str, PlannedPoint] = {}
            while len(new) < min(window, budget - evaluated) and asks < ASKS_PER_BUDGET * budget:
                trial = search.ask()
                asks += 1
                combo = tuple(int(trial.params[a.name]) for a in spec.axes)
                point, static = plan_point(spec, combo, evaluated + len(new))
                if not static_constraints_hold(spec, static):
                    batch.append((trial, None))  # never run: told as failed
                    continue
                batch.append((trial, point))
                if point.key not in done and point.key not in new:
                    new[point.key] = point
            for point in new.values():
                store.add_planned(point.index, point.key, {a.name: a.values[i] for a, i in zip(spec.axes, point.value_indices)})
            evaluated += len(new)
            evaluate(list(new.values()))
            for trial, maybe in batch:  # tell in ask order: the same study whatever the workers' timing
                search.tell(trial, None if maybe is None else done[maybe.key])
    finally:
        if progress is not None:
            progress.stop()
    total = max(budget, evaluated)
    return SweepSummary(total, total, already_done, ran, failed, time.perf_counter() - start)


def _replan(spec: SweepSpec, stored: StoredPoint) -> PlannedPoint | None:
    combo = _combo_of(spec, stored.axis_values)
    if combo is None:
        return None
    point, _ = plan_point(spec, combo, stored.plan_index)
    return point if point.key == stored.key else None
