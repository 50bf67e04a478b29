"""A sweep file (`sweeps/*.yaml`) and the seeded plan of points it describes.

    name: bert-ner-array-sram            # optional; default: the file's stem
    base: default                        # a run file (path relative to this file), a chip preset, or a run mapping
    functional: false                    # default for every point (timing only); an axis `functional` overrides it
    axes:                                # dotted paths into the run config; chip paths may omit `chip.`
      core.tensor_core: [{rows: 32, cols: 32}, {rows: 128, cols: 128}]   # a mapping sets several fields at once
      core.scratchpad.size_kib: [256, 1024, 4096]
      dram.type: [hbm2e, lpddr5, ddr4]
      workload.seq_len: [64, 128]
    sampling: {method: grid}             # grid (every combination) | random | lhs, with points: N and seed: S;
                                         # or a search: {method: nsga2 | tpe, budget: N, seed: S}
    constraints: ["area_mm2 <= 400", "power_w <= 75"]
    objectives: [{minimize: latency_s}, {minimize: energy_j}]

A search (nsga2, tpe: chipsim.app.search) plans no points up front; it asks for them as results come in.
Otherwise the plan is a list of points in a seeded order (a grid is shuffled, so the first N points are a spread over the
space and `--max-points N` gives a useful quick look). Each point is the base run config with the axis values
set, validated as a `RunConfig` and keyed by the sha256 of that resolved config and the chipsim version.
Constraints on `area_mm2` are checked before running (the area model needs only the chip); the others after.
"""

from __future__ import annotations

import copy
import enum
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

import chipsim
from chipsim.app.runconfig import RunConfig, resolve_chip, run_config_from_dict
from chipsim.cost import chip_cost_usd
from chipsim.config import (
    ChipConfig,
    ConfigError,
    apply_overrides,
    load_chip_dict,
    load_yaml_file,
    preset_names,
    problems_of,
    set_dotted,
)
from reports.figures import (
    METRICS,
    STATIC_METRICS,
    Constraint,
    Direction,
    JsonValue,
    Objective,
    SweepError,
    closest,
    parse_constraint,
    value_label,
)
from reports.store import StoreHeader

# Planning validates every point's run config (about 1 ms each here), so a plan of 100,000 points takes a couple of
# minutes before the first point runs; a larger space is for a search (method: nsga2 or tpe), which plans as it goes.
MAX_PLAN_POINTS = 100_000


class SamplingMethod(enum.Enum):
    GRID = "grid"  # every combination of the axis values
    RANDOM = "random"  # `points` distinct combinations drawn uniformly
    LHS = "lhs"  # Latin hypercube over the axis indices (every value of each axis used about equally often)
    NSGA2 = "nsga2"  # multi-objective search: optuna's NSGA-II, `budget` points evaluated (chipsim.app.search)
    TPE = "tpe"  # multi-objective search: optuna's tree-structured Parzen estimator

    @property
    def searches(self) -> bool:
        """Whether points are chosen as results come in (a search), not planned up front."""
        return self in (SamplingMethod.NSGA2, SamplingMethod.TPE)


@dataclass(frozen=True, slots=True)
class Sampling:
    method: SamplingMethod = SamplingMethod.GRID
    points: int | None = None  # random and lhs: how many points
    seed: int = 0
    budget: int | None = None  # nsga2 and tpe: how many distinct points to evaluate in all (a later run may raise it)

    def describe(self) -> str:
        if self.method.searches:
            return f"{self.method.value} search, budget {self.budget}, seed {self.seed}"
        count = f", {self.points} points" if self.points is not None else ""
        return f"{self.method.value}{count}, seed {self.seed}"


@dataclass(frozen=True, slots=True)
class Axis:
    name: str  # as written in the sweep file
    path: str  # resolved dotted path into the run config (`chip.core.tensor_core.rows`)
    values: tuple[JsonValue, ...]
    labels: tuple[str, ...]  # short text per value, for tables and plots

    def __post_init__(self) -> None:
        assert len(self.values) == len(self.labels)


@dataclass(frozen=True, slots=True)
class SweepSpec:
    name: str
    source: str
    base: dict[str, JsonValue]  # the run mapping with its chip resolved to a mapping
    functional: bool
    axes: tuple[Axis, ...]
    sampling: Sampling
    constraints: tuple[Constraint, ...]
    objectives: tuple[Objective, ...]

    def identity_sha256(self) -> str:
        """What determines the set of points: base, axes, sampling and the functional default (not constraints;
        not a search's budget either, so a search can be continued with a larger one)."""
        doc = {
            "base": self.base,
            "functional": self.functional,
            "axes": [[a.path, list(a.values)] for a in self.axes],
            "sampling": [self.sampling.method.value, self.sampling.points, self.sampling.seed],
        }
        if self.sampling.method.searches:  # a search's points depend on the objectives and constraints it steers by
            doc["steering"] = [[o.direction.value, o.metric] for o in self.objectives] + [c.text for c in self.constraints]
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PlannedPoint:
    index: int  # position in the seeded plan
    value_indices: tuple[int, ...]  # one index per axis
    key: str  # sha256 of the resolved config (of the raw mapping when invalid) + chipsim version
    config: dict[str, JsonValue] | None  # the resolved RunConfig as JSON, or None when invalid
    error: str | None  # why this combination is not a valid run config


@dataclass(frozen=True, slots=True)
class SweepPlan:
    spec: SweepSpec
    points: tuple[PlannedPoint, ...]
    excluded: int  # points removed before running by constraints on static figures (area)

    def store_header(self) -> StoreHeader:
        """What the results store records of this sweep (reports/ knows no sweep file)."""
        spec = self.spec
        return StoreHeader(
            name=spec.name, source=spec.source, identity_sha256=spec.identity_sha256(), chipsim_version=chipsim.__version__,
            axes=tuple((a.name, a.path, a.labels) for a in spec.axes),
            constraints=tuple(c.text for c in spec.constraints),
            objectives=tuple((o.direction.value, o.metric) for o in spec.objectives),
            points=tuple((p.index, p.key, axis_values_of(spec, p)) for p in self.points),
            adaptive=spec.sampling.method.searches,
            sampling=spec.sampling.describe(),
        )


# ----------------------------------------------------------------------------------------------------------
# Parsing


_TOP_KEYS = ("name", "base", "functional", "axes", "sampling", "constraints", "objectives")


def point_key(config_sha256: str) -> str:
    """The store key of a point: its resolved config and the chipsim version that computes it."""
    return hashlib.sha256(f"{config_sha256}:{chipsim.__version__}".encode()).hexdigest()


def _leaf_assignments(path: str, value: JsonValue) -> list[tuple[str, JsonValue]]:
    """A mapping value sets each of its fields: `core.tensor_core: {rows: 32}` -> `core.tensor_core.rows = 32`."""
    if isinstance(value, dict) and value:
        out: list[tuple[str, JsonValue]] = []
        for k, v in value.items():
            out.extend(_leaf_assignments(f"{path}.{k}", v))
        return out
    return [(path, value)]


def _set_path(data: dict[str, JsonValue], path: str, value: JsonValue) -> None:
    set_dotted(data, path.split("."), copy.deepcopy(value))  # type: ignore[arg-type]


def _resolve_axis_path(name: str, where: str) -> str:
    first = name.split(".")[0]
    if first in RunConfig.model_fields:
        return name
    if first in ChipConfig.model_fields:
        return f"chip.{name}"
    names = [*RunConfig.model_fields, *ChipConfig.model_fields]
    raise SweepError(f"{where}: axis '{name}' names an unknown field; {closest(first, names)}")


def _check_path(path: str, where: str) -> None:
    """Raise SweepError naming the unknown part of `path` (with a suggestion), using the config's own checks."""
    try:
        apply_overrides({}, [f"{path}=null"], RunConfig)
    except ConfigError as exc:
        problem = exc.problems[0]
        raise SweepError(f"{where}: axis {problem}") from None


def _load_base(raw: object, sweep_dir: Path, where: str) -> dict[str, JsonValue]:
    if isinstance(raw, str):
        path = Path(raw)
        if not path.is_absolute():
            path = sweep_dir / path
        if path.is_file():
            try:
                data = load_yaml_file(path, "run file")
            except ConfigError as exc:
                raise SweepError(f"{where}: base {exc}") from None
            if not isinstance(data, dict):
                raise SweepError(f"{where}: base file {raw!r} must hold a run mapping (chip, workload, ...)")
            if "chip" not in data:  # a chip file by itself
                data = {"chip": load_chip_dict(path)}
            base_dir = path.parent
        elif raw in preset_names():
            data = {"chip": raw}
            base_dir = sweep_dir
        else:
            raise SweepError(
                f"{where}: base {raw!r} is neither a file (relative to the sweep file) nor a chip preset "
                f"({', '.join(preset_names())})"
            )
    elif isinstance(raw, dict):
        data, base_dir = raw, sweep_dir
    else:
        raise SweepError(f"{where}: base must be a run file path, a chip preset name or a run mapping; got {type(raw).__name__}")
    try:
        resolved = resolve_chip(data, base_dir)
        run_config_from_dict(resolved, source=f"{where} base")
    except ConfigError as exc:
        raise SweepError(str(exc)) from None
    resolved.pop("output", None)
    return resolved  # type: ignore[return-value]


def _parse_sampling(raw: object, where: str) -> Sampling:
    if raw is None:
        return Sampling()
    if not isinstance(raw, dict):
        raise SweepError(f"{where}: sampling must be a mapping such as {{method: random, points: 100, seed: 0}}")
    fields = ("method", "points", "seed", "budget")
    for key in raw:
        if key not in fields:
            raise SweepError(f"{where}: sampling.{key}: unknown field; {closest(str(key), fields)}")
    method_text = raw.get("method", "grid")
    try:
        method = SamplingMethod(method_text)
    except ValueError:
        valid = ", ".join(m.value for m in SamplingMethod)
        raise SweepError(f"{where}: sampling.method: got {method_text!r}; must be one of {valid}") from None
    points = raw.get("points")
    seed = raw.get("seed", 0)
    budget = raw.get("budget")
    for name, value in (("points", points), ("budget", budget)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PLAN_POINTS):
            raise SweepError(f"{where}: sampling.{name}: got {value!r}; must be an integer from 1 to {MAX_PLAN_POINTS:,}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SweepError(f"{where}: sampling.seed: got {seed!r}; must be an integer >= 0")
    if method.searches:
        if points is not None:
            raise SweepError(f"{where}: sampling.points: a {method.value} search evaluates `budget` points; write budget: {points} instead")
        if budget is None:
            raise SweepError(f"{where}: sampling.budget: a {method.value} search needs the number of points to evaluate, e.g. budget: 150")
        return Sampling(method, None, seed, budget)
    if budget is not None:
        raise SweepError(f"{where}: sampling.budget: only a search (method: nsga2 or tpe) has a budget; {method.value} sampling takes points")
    if method is SamplingMethod.GRID and points is not None:
        raise SweepError(f"{where}: sampling.points: grid sampling runs every combination; drop points or use method: random or lhs")
    if method is not SamplingMethod.GRID and points is None:
        raise SweepError(f"{where}: sampling.points: {method.value} sampling needs the number of points, e.g. points: 200")
    return Sampling(method, points, seed)


def _parse_objective(raw: object, where: str) -> Objective:
    if not (isinstance(raw, dict) and len(raw) == 1):
        raise SweepError(f"{where}: objective {raw!r} must be a one-key mapping such as {{minimize: latency_s}}")
    (direction_text, metric), = raw.items()
    try:
        direction = Direction(direction_text)
    except ValueError:
        raise SweepError(f"{where}: objective {raw!r}: '{direction_text}' must be minimize or maximize") from None
    if metric not in METRICS:
        raise SweepError(f"{where}: objective {raw!r} names unknown metric '{metric}'; {closest(str(metric), METRICS)}")
    return Objective(str(metric), direction)


def _parse_axes(raw: object, base: dict[str, JsonValue], where: str) -> tuple[Axis, ...]:
    if not isinstance(raw, dict) or not raw:
        raise SweepError(f"{where}: axes must be a non-empty mapping of dotted paths to value lists, e.g. core.tensor_core.rows: [32, 64]")
    axes: list[Axis] = []
    seen: set[str] = set()
    for name, values in raw.items():
        name = str(name)
        path = _resolve_axis_path(name, where)
        if path in seen:
            raise SweepError(f"{where}: axis '{name}' is given twice (as '{path}'); keep one")
        seen.add(path)
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}: axis '{name}' must be a non-empty list of values, e.g. [32, 64, 128]")
        for value in values:
            for leaf, leaf_value in _leaf_assignments(path, value):
                _check_path(leaf, where)
                trial = copy.deepcopy(base)
                _set_path(trial, leaf, leaf_value)
                try:
                    RunConfig.model_validate(trial)
                except ValidationError as exc:
                    # Only problems of the field this value sets; cross-field rules are judged per point.
                    problems = [p for p in problems_of(exc, RunConfig) if p.startswith((leaf + ":", leaf + "."))]
                    if problems:
                        raise SweepError(f"{where}: axis '{name}' value {value_label(value)!r}: {problems[0]}") from None
        labels = tuple(value_label(v) for v in values)
        if len(set(labels)) != len(labels):
            raise SweepError(f"{where}: axis '{name}' repeats a value ({', '.join(labels)}); list each value once")
        axes.append(Axis(name, path, tuple(values), labels))
    return tuple(axes)


def parse_sweep(data: object, *, source: str, sweep_dir: Path) -> SweepSpec:
    """Validate a parsed sweep mapping; raises SweepError with one sentence on the first problem."""
    where = source
    if not isinstance(data, dict):
        raise SweepError(f"{where}: a sweep file must be a mapping with keys {', '.join(_TOP_KEYS)}")
    for key in data:
        if key not in _TOP_KEYS:
            raise SweepError(f"{where}: '{key}' is not a sweep key; {closest(str(key), _TOP_KEYS)}")
    if "base" not in data:
        raise SweepError(f"{where}: 'base' is missing; name a run file, a chip preset ({', '.join(preset_names())}) or give a run mapping")
    if "axes" not in data:
        raise SweepError(f"{where}: 'axes' is missing; give at least one axis, e.g. core.tensor_core.rows: [32, 64, 128]")
    functional = data.get("functional", False)
    if not isinstance(functional, bool):
        raise SweepError(f"{where}: functional: got {functional!r}; must be true or false")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise SweepError(f"{where}: name {name!r} must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or "
                         "digit (it names the results folder runs/sweeps/NAME), e.g. bert_ner_small")
    base = _load_base(data["base"], sweep_dir, where)
    base["functional"] = functional
    axes = _parse_axes(data["axes"], base, where)
    sampling = _parse_sampling(data.get("sampling"), where)
    raw_constraints = data.get("constraints") or []
    if not isinstance(raw_constraints, list):
        raise SweepError(f"{where}: constraints must be a list of strings such as [\"area_mm2 <= 400\"]")
    raw_objectives = data.get("objectives") or [{"minimize": "latency_s"}, {"minimize": "energy_per_inference_j"}]
    if not isinstance(raw_objectives, list):
        raise SweepError(f"{where}: objectives must be a list such as [{{minimize: latency_s}}, {{minimize: energy_j}}]")
    return SweepSpec(
        name=name, source=source, base=base, functional=functional, axes=axes, sampling=sampling,
        constraints=tuple(parse_constraint(c, where) for c in raw_constraints),
        objectives=tuple(_parse_objective(o, where) for o in raw_objectives),
    )


def load_sweep(path: Path) -> SweepSpec:
    if not path.is_file():
        raise SweepError(f"{path}: no such sweep file; pass a YAML file such as sweeps/bert_ner_small.yaml")
    try:
        data = load_yaml_file(path, "sweep file")
    except ConfigError as exc:
        raise SweepError(str(exc)) from None
    return parse_sweep(data, source=str(path), sweep_dir=path.parent)


# ----------------------------------------------------------------------------------------------------------
# The plan


def _sample(spec: SweepSpec) -> list[tuple[int, ...]]:
    sizes = [len(a.values) for a in spec.axes]
    total = math.prod(sizes)
    rng = np.random.default_rng(spec.sampling.seed)
    method = spec.sampling.method
    if method is SamplingMethod.GRID:
        if total > MAX_PLAN_POINTS:
            raise SweepError(f"{spec.source}: the grid has {total:,} points, more than the {MAX_PLAN_POINTS:,} a plan may hold; "
                             "search it instead (sampling: {method: nsga2, budget: 2000}) or sample it (method: random or lhs with points: N)")
        flat = rng.permutation(total).tolist()
    elif method is SamplingMethod.RANDOM:
        assert spec.sampling.points is not None
        if spec.sampling.points > total:
            raise SweepError(f"{spec.source}: sampling.points is {spec.sampling.points} but the axes have only {total} combinations; use at most {total} or method: grid")
        flat = rng.choice(total, size=spec.sampling.points, replace=False).tolist()
    else:
        from scipy.stats import qmc

        assert spec.sampling.points is not None
        if spec.sampling.points > MAX_PLAN_POINTS:
            raise SweepError(f"{spec.source}: sampling.points is {spec.sampling.points:,}; use at most {MAX_PLAN_POINTS:,}")
        unit = qmc.LatinHypercube(d=len(sizes), seed=rng).random(spec.sampling.points)
        idx = np.minimum((unit * np.array(sizes)).astype(np.int64), np.array(sizes) - 1)
        flat = []
        seen: set[int] = set()
        for row in idx:
            code = int(np.ravel_multi_index(tuple(int(i) for i in row), sizes))
            if code not in seen:  # a Latin hypercube over few values repeats combinations: keep each once
                seen.add(code)
                flat.append(code)
    return [tuple(int(i) for i in np.unravel_index(code, sizes)) for code in flat]


StaticFigures = dict[str, float]


def _static_figures(config: RunConfig) -> StaticFigures:
    """The figures known from the chip alone (area and cost), checked before a point runs."""
    cost = chip_cost_usd(config.chip)  # prices the area model's total die area: one area computation serves both
    return {"area_mm2": cost.die_area_mm2, "cost_usd": cost.total_usd}


def plan_point(spec: SweepSpec, combo: tuple[int, ...], index: int) -> tuple[PlannedPoint, StaticFigures | None]:
    """The point for one combination of axis value indices, and its static figures when a static constraint needs
    them (the caller drops the point when one breaks a constraint); an invalid combination carries its error."""
    data = copy.deepcopy(spec.base)
    for axis, i in zip(spec.axes, combo):
        for leaf, leaf_value in _leaf_assignments(axis.path, axis.values[i]):
            _set_path(data, leaf, leaf_value)
    try:
        config = run_config_from_dict(data, source="this point")
    except ConfigError as exc:
        raw_sha = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        return PlannedPoint(index, combo, point_key("invalid:" + raw_sha), None, str(exc)), None
    static = _static_figures(config) if any(c.metric in STATIC_METRICS for c in spec.constraints) else None
    return PlannedPoint(index, combo, point_key(config.sha256()), config.model_dump(mode="json", exclude={"output"}), None), static


def static_constraints_hold(spec: SweepSpec, static: StaticFigures | None) -> bool:
    return static is None or all(c.holds(static[c.metric]) for c in spec.constraints if c.metric in STATIC_METRICS)


def build_plan(spec: SweepSpec) -> SweepPlan:
    """The seeded list of points; a combination that is not a valid run config is kept, with its error. A search
    (nsga2, tpe) plans nothing up front: chipsim.app.search asks for points as results come in."""
    static = [c for c in spec.constraints if c.metric in STATIC_METRICS]
    points: list[PlannedPoint] = []
    keys: set[str] = set()
    excluded = 0
    seen: list[StaticFigures] = []
    for combo in (() if spec.sampling.method.searches else _sample(spec)):
        point, figures = plan_point(spec, combo, len(points))
        if figures is not None:
            seen.append(figures)
            if not static_constraints_hold(spec, figures):
                excluded += 1
                continue
        if point.config is not None and point.key in keys:  # two combinations that resolve to the same config
            continue
        keys.add(point.key)
        points.append(point)
    if excluded and not points:
        texts = "; ".join(c.text for c in static)
        ranges = ", ".join(f"{m} from {min(f[m] for f in seen):.1f} to {max(f[m] for f in seen):.1f}"
                           for m in sorted({c.metric for c in static}))
        raise SweepError(
            f"{spec.source}: the constraints ({texts}) exclude every one of the {excluded} points "
            f"({ranges}); loosen them or change the axes"
        )
    return SweepPlan(spec, tuple(points), excluded)


def axis_values_of(spec: SweepSpec, point: PlannedPoint) -> dict[str, JsonValue]:
    return {a.name: a.values[i] for a, i in zip(spec.axes, point.value_indices)}
