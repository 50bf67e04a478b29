"""The vocabulary of results: the figures a result record carries, and the constraints and objectives that
name them. The sweep planner, the store, the tables and the report all read these names from here.
"""

from __future__ import annotations

import difflib
import enum
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

JsonValue = Union[None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]]


class SweepError(ValueError):
    """A sweep file, a sweep output folder or a results query is invalid (one sentence: what, where, what is valid)."""


class Direction(enum.Enum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class Comparison(enum.Enum):
    LE = "<="
    LT = "<"
    GE = ">="
    GT = ">"
    EQ = "=="
    NE = "!="

    def holds(self, value: float, bound: float) -> bool:
        match self:
            case Comparison.LE:
                return value <= bound
            case Comparison.LT:
                return value < bound
            case Comparison.GE:
                return value >= bound
            case Comparison.GT:
                return value > bound
            case Comparison.EQ:
                return value == bound
            case Comparison.NE:
                return value != bound


SCALAR_FIGURES: tuple[str, ...] = (
    "cycles", "latency_s", "inferences_per_s", "energy_j", "energy_per_inference_j", "area_mm2", "power_w",
    "tops_per_w", "utilization", "dram_bytes", "bound_cycles", "mapping_efficiency", "cost_usd",
)
VALIDATION_FIGURES: tuple[str, ...] = ("bit_exact", "max_abs_logit_diff", "tag_agreement", "f1_chip", "f1_reference")
# Figures of a result record that constraints and objectives may name (see figures_of).
METRICS: tuple[str, ...] = SCALAR_FIGURES + tuple(f for f in VALIDATION_FIGURES if f != "bit_exact")
STATIC_METRICS: frozenset[str] = frozenset({"area_mm2", "cost_usd"})  # known from the chip alone, checked before running

_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True, slots=True)
class Constraint:
    metric: str
    comparison: Comparison
    bound: float
    text: str

    def holds(self, value: float | None) -> bool:
        """Whether a point with this figure satisfies the constraint (a missing figure never does)."""
        return value is not None and not math.isnan(value) and self.comparison.holds(value, self.bound)


@dataclass(frozen=True, slots=True)
class Objective:
    metric: str
    direction: Direction


def closest(word: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.5)
    close = close or [n for n in names if n.startswith(word[:3])][:1]
    return f"did you mean '{close[0]}'?" if close else "valid are " + ", ".join(names)


def value_label(value: JsonValue) -> str:
    """Short text for an axis value: `128`, `hbm2e`, `true`, `32x32` for {rows: 32, cols: 32}."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        parts = list(value.values())
        if parts and all(isinstance(p, int) and not isinstance(p, bool) for p in parts):
            return "x".join(str(p) for p in parts)
        return ",".join(f"{k}={value_label(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ",".join(value_label(v) for v in value) + "]"
    return str(value)


def parse_constraint(text: object, where: str) -> Constraint:
    """`"area_mm2 <= 400"` -> Constraint (a figure, a comparison, a number; nothing is evaluated)."""
    if not isinstance(text, str):
        raise SweepError(f"{where}: constraint {text!r} must be a string such as \"area_mm2 <= 400\"")
    match = _CONSTRAINT_RE.match(text)
    if match is None:
        raise SweepError(f"{where}: constraint {text!r} is not of the form 'metric <op> number' (op one of <=, <, >=, >, ==, !=), e.g. \"power_w <= 75\"")
    metric, op, bound = match.groups()
    if metric not in METRICS:
        raise SweepError(f"{where}: constraint {text!r} names unknown metric '{metric}'; {closest(metric, METRICS)}")
    return Constraint(metric, Comparison(op), float(bound), text.strip())




def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def figures_of(record: Mapping[str, JsonValue]) -> dict[str, float | None]:
    """The flat numeric figures of a result record: scalars, `energy_<part>_j`, `area_<part>_mm2`, validation.

    A record's `energy_j` is already per inference (per sequence of the batch); `energy_per_inference_j` names
    the same figure, for readers of the tables and the report.
    """
    out: dict[str, float | None] = {name: _number(record.get(name)) for name in SCALAR_FIGURES}
    if out["energy_per_inference_j"] is None:
        out["energy_per_inference_j"] = out["energy_j"]
    energy = record.get("energy_breakdown_j")
    if isinstance(energy, dict):
        for part, value in energy.items():
            out[f"energy_{part}_j"] = _number(value)
    area = record.get("area_breakdown_mm2")
    if isinstance(area, dict):
        for part, value in area.items():
            if part != "total":
                out[f"area_{part}_mm2"] = _number(value)
    validation = record.get("validation")
    for name in VALIDATION_FIGURES:
        out[name] = _number(validation.get(name)) if isinstance(validation, dict) else None
    return out
