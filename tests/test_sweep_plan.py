"""Sweep files and plans: parsing, seeded sampling (grid, random, LHS), constraints, and pinned bad-input errors."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest

from chipsim.app.sweep_plan import SamplingMethod, SweepError, build_plan, parse_sweep
from reports.figures import Comparison, parse_constraint

AXES = {
    "core.tensor_core": [{"rows": 32, "cols": 32}, {"rows": 64, "cols": 64}, {"rows": 128, "cols": 128}],
    "dram.type": ["hbm2e", "lpddr5"],
    "workload.seq_len": [16, 32],
    "core.tensor_core.precision": ["int8", "bf16"],
}


def spec(**changes: object):
    data: dict[str, object] = {"base": {"chip": "default", "workload": {"model": "bert-tiny", "seq_len": 16}}, "axes": AXES}
    data.update(changes)
    return parse_sweep(data, source="s.yaml", sweep_dir=Path("."))


def error(**changes: object) -> str:
    with pytest.raises(SweepError) as info:
        build_plan(spec(**changes))
    return str(info.value)


def test_grid_covers_every_combination_once_in_a_seeded_order() -> None:
    plan = build_plan(spec())
    combos = [p.value_indices for p in plan.points]
    assert sorted(combos) == sorted(itertools.product(range(3), range(2), range(2), range(2)))
    again = build_plan(spec())
    assert [p.key for p in again.points] == [p.key for p in plan.points]
    other = build_plan(spec(sampling={"method": "grid", "seed": 7}))
    assert [p.key for p in other.points] != [p.key for p in plan.points]
    assert sorted(p.key for p in other.points) == sorted(p.key for p in plan.points)


def test_points_are_resolved_configs_with_axis_values_set() -> None:
    plan = build_plan(spec())
    for p in plan.points:
        cfg = p.config
        assert cfg is not None and p.error is None
        tc = cfg["chip"]["core"]["tensor_core"]  # type: ignore[index]
        assert tc["rows"] == AXES["core.tensor_core"][p.value_indices[0]]["rows"]  # type: ignore[index]
        assert tc["cols"] == tc["rows"] and tc["dataflow"] == "ws"  # a mapping value sets only its own fields
        assert cfg["chip"]["dram"]["type"] == AXES["dram.type"][p.value_indices[1]]  # type: ignore[index]
        assert cfg["workload"]["seq_len"] == AXES["workload.seq_len"][p.value_indices[2]]  # type: ignore[index]
        assert cfg["functional"] is False  # sweeps are timing-only unless told otherwise
    assert len({p.key for p in plan.points}) == len(plan.points)


def test_random_sampling_draws_distinct_points_reproducibly() -> None:
    plan = build_plan(spec(sampling={"method": "random", "points": 10, "seed": 3}))
    assert len(plan.points) == 10 and len({p.value_indices for p in plan.points}) == 10
    assert [p.key for p in build_plan(spec(sampling={"method": "random", "points": 10, "seed": 3})).points] == [p.key for p in plan.points]
    assert spec(sampling={"method": "random", "points": 10, "seed": 3}).sampling.method is SamplingMethod.RANDOM


def test_latin_hypercube_uses_each_value_of_each_axis_equally() -> None:
    axes = {"core.scratchpad.size_kib": [256, 512, 1024, 2048], "clock_mhz": [500.0, 1000.0], "noc.hop_cycles": [1, 2, 3, 4]}
    plan = build_plan(spec(axes=axes, sampling={"method": "lhs", "points": 8, "seed": 1}))
    counts = [Counter(p.value_indices[a] for p in plan.points) for a in range(3)]
    assert len(plan.points) == 8  # 8 of 32 combinations: a Latin hypercube of 8 rows repeats none here
    assert counts[0] == Counter({0: 2, 1: 2, 2: 2, 3: 2})
    assert counts[1] == Counter({0: 4, 1: 4})


def test_functional_axis_and_chip_paths_with_the_chip_prefix() -> None:
    plan = build_plan(spec(axes={"functional": [False, True], "chip.mesh.rows": [1, 2]}))
    seen = {(p.config["functional"], p.config["chip"]["mesh"]["rows"]) for p in plan.points}  # type: ignore[index]
    assert seen == {(False, 1), (False, 2), (True, 1), (True, 2)}


def test_area_constraints_prune_before_running() -> None:
    full = build_plan(spec())
    pruned = build_plan(spec(constraints=["area_mm2 <= 20"]))
    assert pruned.excluded > 0 and len(pruned.points) + pruned.excluded == len(full.points)


def test_constraints_are_parsed_not_evaluated() -> None:
    c = parse_constraint("power_w <= 75", "s.yaml")
    assert (c.metric, c.comparison, c.bound) == ("power_w", Comparison.LE, 75.0)
    assert c.holds(75.0) and not c.holds(75.1) and not c.holds(None)
    assert parse_constraint("f1_chip>=0.5", "s.yaml").holds(0.6)
    assert parse_constraint("latency_s < 1e-3", "s.yaml").bound == 1e-3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"axes": {"core.tensor_core.rowz": [1]}}, "s.yaml: axis chip.core.tensor_core.rowz: unknown field; did you mean 'rows'?"),
        ({"axes": {"cores.tensor_core.rows": [1]}}, "s.yaml: axis 'cores.tensor_core.rows' names an unknown field; did you mean 'core'?"),
        ({"axes": {"core.tensor_core.rows": ["big"]}}, "s.yaml: axis 'core.tensor_core.rows' value 'big': chip.core.tensor_core.rows: got 'big'; must be an integer >= 1 and <= 1024"),
        ({"axes": {"dram.type": ["hbm9"]}}, "s.yaml: axis 'dram.type' value 'hbm9': chip.dram.type: got 'hbm9'; must be one of hbm2e, lpddr5, ddr4, ddr3"),
        ({"axes": {"mesh.rows": 4}}, "s.yaml: axis 'mesh.rows' must be a non-empty list of values, e.g. [32, 64, 128]"),
        ({"constraints": ["area_mm2 <= 0.5"]}, "s.yaml: the constraints (area_mm2 <= 0.5) exclude every one of the 24 points"),
        ({"constraints": ["aera_mm2 <= 400"]}, "s.yaml: constraint 'aera_mm2 <= 400' names unknown metric 'aera_mm2'; did you mean 'area_mm2'?"),
        ({"constraints": ["__import__('os').system('x') or 1 <= 2"]}, "is not of the form 'metric <op> number'"),
        ({"objectives": [{"minimise": "latency_s"}]}, "'minimise' must be minimize or maximize"),
        ({"sampling": {"method": "random", "points": 100}}, "sampling.points is 100 but the axes have only 24 combinations"),
        ({"sampling": {"method": "sobol"}}, "sampling.method: got 'sobol'; must be one of grid, random, lhs"),
        ({"axis": {}}, "s.yaml: 'axis' is not a sweep key; did you mean 'axes'?"),
        ({"base": "no_such_chip"}, "base 'no_such_chip' is neither a file (relative to the sweep file) nor a chip preset"),
    ],
)
def test_bad_input_is_one_clear_sentence(changes: dict[str, object], message: str) -> None:
    text = error(**changes)
    assert message in text
    assert "\n" not in text and "Traceback" not in text


def test_cost_constraints_prune_before_running_like_area():
    """cost_usd needs only the chip: a constraint on it prunes the plan, on the real cost model."""
    from chipsim.app.sweep_plan import build_plan, parse_sweep
    from chipsim.config import apply_overrides, chip_from_dict, load_chip_dict
    from chipsim.cost import chip_cost_usd

    axes = {"dram.type": ["hbm2e", "lpddr5"]}
    hbm = chip_cost_usd(chip_from_dict(apply_overrides(load_chip_dict("default"), ["dram.type=hbm2e"]))).total_usd
    lp = chip_cost_usd(chip_from_dict(apply_overrides(load_chip_dict("default"), ["dram.type=lpddr5"]))).total_usd
    limit = (hbm + lp) / 2
    plan = build_plan(parse_sweep({"base": "default", "axes": axes, "constraints": [f"cost_usd <= {limit}"]},
                                  source="c.yaml", sweep_dir=Path(".")))
    assert plan.excluded == 1 and len(plan.points) == 1
    assert plan.points[0].config["chip"]["dram"]["type"] == ("hbm2e" if hbm < lp else "lpddr5")
