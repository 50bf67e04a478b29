"""ChipConfig: presets, pinned error messages, overrides and derived properties."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from chipsim import technology
from chipsim.app import cli
from chipsim.config import (
    DRAM_PRESETS,
    ChipConfig,
    ConfigError,
    Dataflow,
    DramType,
    Precision,
    VectorOp,
    apply_overrides,
    chip_from_dict,
    load_chip,
    load_chip_dict,
    preset_names,
)


def base() -> dict[str, object]:
    """A small valid chip mapping, as YAML would give it."""
    return {
        "name": "t",
        "clock_mhz": 1000.0,
        "technology_nm": 7,
        "mesh": {"rows": 2, "cols": 2},
        "core": {
            "tensor_core": {"rows": 16, "cols": 8},
            "scratchpad": {"size_kib": 256, "banks": 4, "bytes_per_cycle": 32},
            "accumulator": {"size_kib": 64, "banks": 2, "bytes_per_cycle": 64},
            "vector": {"lanes": 8},
            "dma": {"engines": 1, "bytes_per_cycle": 32},
        },
        "dram": {"type": "hbm2e"},
        "noc": {"link_bytes_per_cycle": 16, "hop_cycles": 1},
    }


def with_(path: str, value: object, d: dict[str, object] | None = None) -> dict[str, object]:
    d = copy.deepcopy(d if d is not None else base())
    *parents, last = path.split(".")
    node = d
    for p in parents:
        node = node[p]  # type: ignore[assignment,index]
    node[last] = value  # type: ignore[index]
    return d


def problems_of(d: object) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        chip_from_dict(d)  # type: ignore[arg-type]
    return info.value.problems


# ---- presets -----------------------------------------------------------------------------------------------


def test_presets_are_shipped_and_load() -> None:
    assert set(preset_names()) >= {"default", "tpuv1", "edge"}
    for name in preset_names():
        chip = load_chip(name)
        assert chip.name == name


def test_default_preset_matches_its_description() -> None:
    chip = load_chip("default")
    tc = chip.core.tensor_core
    assert (chip.mesh.rows, chip.mesh.cols, tc.rows, tc.cols) == (2, 2, 128, 128)
    assert (tc.precision, tc.dataflow) == (Precision.INT8, Dataflow.WS)
    assert chip.core.scratchpad.size_bytes == 2 * 1024 * 1024
    assert chip.core.accumulator.size_bytes == 512 * 1024
    assert chip.dram.type is DramType.HBM2E and chip.dram.bandwidth_gb_per_s == 460.8
    assert (chip.clock_mhz, chip.technology_nm) == (1000.0, 7)
    assert chip.peak_tops == pytest.approx(131.072)


def test_tpuv1_preset_matches_jouppi_2017() -> None:
    # Jouppi et al., ISCA 2017: 256x256 int8 MACs at 700 MHz = 92 TOPS; 24 MiB Unified Buffer (our 16 MiB
    # scratchpad + 8 MiB global buffer); 4 MiB accumulators; 34 GB/s DDR3; 28 nm.
    chip = load_chip("tpuv1")
    assert chip.peak_tops == pytest.approx(91.75, abs=0.01)
    gbuf = chip.global_buffer
    assert gbuf is not None
    assert chip.core.scratchpad.size_kib + gbuf.size_kib == 24 * 1024
    assert chip.core.accumulator.size_kib == 4 * 1024
    assert chip.dram.type is DramType.DDR3 and chip.dram.bandwidth_gb_per_s == 34.0
    assert chip.technology_nm == 28


def test_load_chip_accepts_path_str_and_mapping(tmp_path: Path) -> None:
    import yaml

    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(base()))
    assert load_chip(p) == load_chip(str(p)) == load_chip(base())
    assert load_chip_dict(p) == base()


def test_config_is_frozen_and_hashable() -> None:
    chip = load_chip("default")
    with pytest.raises(Exception):
        chip.clock_mhz = 5.0  # type: ignore[misc]
    assert hash(chip) == hash(load_chip("default"))


# ---- DRAM type defaults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dram_type", list(DramType))
def test_dram_type_fills_defaults(dram_type: DramType) -> None:
    chip = chip_from_dict(with_("dram", {"type": dram_type.value}))
    preset = DRAM_PRESETS[dram_type]
    assert chip.dram.bandwidth_gb_per_s == preset.bandwidth_gb_per_s
    assert chip.dram.latency_ns == preset.latency_ns
    assert chip.dram.energy_pj_per_bit == preset.energy_pj_per_bit


def test_explicit_dram_fields_override_type_defaults() -> None:
    chip = chip_from_dict(with_("dram", {"type": "hbm2e", "bandwidth_gb_per_s": 921.6, "energy_pj_per_bit": 3.0}))
    assert chip.dram.bandwidth_gb_per_s == 921.6
    assert chip.dram.energy_pj_per_bit == 3.0
    assert chip.dram.latency_ns == DRAM_PRESETS[DramType.HBM2E].latency_ns


def test_dram_presets_are_ordered_as_published() -> None:
    # HBM2E is the most energy-efficient and the widest; DDR3 the least efficient.
    e = {t: DRAM_PRESETS[t].energy_pj_per_bit for t in DramType}
    assert e[DramType.HBM2E] < e[DramType.LPDDR5] < e[DramType.DDR4] < e[DramType.DDR3]
    assert max(DRAM_PRESETS.values(), key=lambda p: p.bandwidth_gb_per_s) is DRAM_PRESETS[DramType.HBM2E]


# ---- pinned error messages ---------------------------------------------------------------------------------


def test_unknown_key_gets_a_suggestion_and_no_duplicate_missing_error() -> None:
    d = base()
    tc = d["core"]["tensor_core"]  # type: ignore[index]
    tc["rowz"] = tc.pop("rows")  # type: ignore[union-attr]
    assert problems_of(d) == ("core.tensor_core.rowz: unknown field; did you mean 'rows'?",)


def test_unknown_key_without_close_match_lists_valid_fields() -> None:
    assert problems_of(with_("mesh.zzz", 1)) == ("mesh.zzz: unknown field; valid fields are rows, cols",)


def test_unknown_top_level_key() -> None:
    assert problems_of(with_("clock_mz", 5.0)) == ("clock_mz: unknown field; did you mean 'clock_mhz'?",)


def test_wrong_type() -> None:
    assert problems_of(with_("clock_mhz", "fast")) == ("clock_mhz: got 'fast'; must be a number > 0 and <= 10000",)
    assert problems_of(with_("core.tensor_core.rows", "64")) == (
        "core.tensor_core.rows: got '64'; must be an integer >= 1 and <= 1024",
    )
    assert problems_of(with_("core.tensor_core.rows", 64.5)) == (
        "core.tensor_core.rows: got 64.5; must be an integer >= 1 and <= 1024",
    )
    assert problems_of(with_("core.tensor_core.weight_double_buffer", "yes")) == (
        "core.tensor_core.weight_double_buffer: got 'yes'; must be true or false",
    )
    assert problems_of(with_("mesh", 4)) == ("mesh: got 4; must be a mapping with fields rows, cols",)
    assert problems_of(with_("core.tensor_core.fold_overlap", "no")) == (
        "core.tensor_core.fold_overlap: got 'no'; must be true or false",
    )
    assert problems_of(with_("core.vector.latency_cycles", {"gelu": 0})) == (
        "core.vector.latency_cycles.gelu: got 0; must be an integer >= 1 and <= 4096",
    )


def test_bad_enum_lists_the_valid_values() -> None:
    assert problems_of(with_("core.tensor_core.dataflow", "rs")) == (
        "core.tensor_core.dataflow: got 'rs'; must be one of ws, os, is",
    )
    # A bad DRAM type is one problem, not four (the fields it would fill are not reported missing).
    assert problems_of(with_("dram", {"type": "hbm3"})) == ("dram.type: got 'hbm3'; must be one of hbm2e, lpddr5, ddr4, ddr3",)


def test_negative_size() -> None:
    assert problems_of(with_("core.scratchpad.size_kib", -4)) == (
        "core.scratchpad.size_kib: got -4; must be an integer >= 1 and <= 16384",
    )


def test_zero_cores_and_zero_row_array_are_errors() -> None:
    assert problems_of(with_("mesh.rows", 0)) == ("mesh.rows: got 0; must be an integer >= 1 and <= 32",)
    assert problems_of(with_("core.tensor_core.rows", 0)) == (
        "core.tensor_core.rows: got 0; must be an integer >= 1 and <= 1024",
    )


def test_infinite_and_missing_values() -> None:
    assert problems_of(with_("clock_mhz", float("inf"))) == ("clock_mhz: got inf; must be a number > 0 and <= 10000",)
    d = base()
    del d["noc"]["hop_cycles"]  # type: ignore[attr-defined]
    assert problems_of(d) == ("noc.hop_cycles: required field is missing; must be an integer >= 1 and <= 1024",)


def test_banks_must_divide_the_sram() -> None:
    assert problems_of(with_("core.scratchpad.banks", 3)) == (
        "core.scratchpad.banks: 3 banks do not split 256 KiB into equal banks; must divide 262144 bytes (e.g. a power of two)",
    )


def test_several_errors_at_once_in_one_message() -> None:
    d = with_("mesh.rows", 0)
    d = with_("core.accumulator.bankz", 2, d)
    d = with_("dram.latency_ns", -1.0, d)
    with pytest.raises(ConfigError) as info:
        chip_from_dict(d, source="chip.yaml")
    err = info.value
    assert err.problems == (
        "mesh.rows: got 0; must be an integer >= 1 and <= 32",
        "core.accumulator.bankz: unknown field; did you mean 'banks'?",
        "dram.latency_ns: got -1.0; must be a number >= 0 and <= 100000",
    )
    assert str(err) == "invalid chip config in chip.yaml (3 problems): " + "; ".join(err.problems)
    assert isinstance(err, ValueError)


def test_top_level_must_be_a_mapping() -> None:
    assert problems_of([1, 2])[0].startswith("(top level): got a list; must be a mapping with fields name, clock_mhz")


def test_technology_bounds_match_the_scaling_tables() -> None:
    field = ChipConfig.model_fields["technology_nm"]
    bounds = {type(m).__name__: m for m in field.metadata}
    assert bounds["Ge"].ge == technology.MIN_NODE_NM and bounds["Le"].le == technology.MAX_NODE_NM
    assert problems_of(with_("technology_nm", 3)) == ("technology_nm: got 3; must be an integer >= 5 and <= 90",)


# ---- YAML files --------------------------------------------------------------------------------------------


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nmesh:\n  rows: 1\n cols: 2\n")
    with pytest.raises(ConfigError) as info:
        load_chip(p)
    assert info.value.problems[0].startswith(f"{p}:4:2: invalid YAML: ")


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "dup.yaml"
    p.write_text("name: x\nmesh:\n  rows: 1\n  rows: 2\n")
    with pytest.raises(ConfigError) as info:
        load_chip(p)
    assert info.value.problems == (f"{p}:4:3: invalid YAML: duplicate key 'rows'; keep only one of them",)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    import yaml

    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(with_("mesh.rows", 0)))
    with pytest.raises(ConfigError, match=rf"^invalid chip config in {p}: mesh.rows: got 0;"):
        load_chip(p)


def test_missing_file_suggests_presets() -> None:
    with pytest.raises(ConfigError, match="chip file 'nope.yaml' not found; give a path to a YAML file or a preset name \\(.*default"):
        load_chip("nope.yaml")


# ---- overrides ---------------------------------------------------------------------------------------------


def test_overrides_set_typed_values_without_touching_the_input() -> None:
    d = base()
    out = apply_overrides(d, ["core.tensor_core.rows=64", "core.tensor_core.precision=bf16", "clock_mhz=1.5e3"])
    chip = chip_from_dict(out)
    assert chip.core.tensor_core.rows == 64
    assert chip.core.tensor_core.precision is Precision.BF16
    assert chip.clock_mhz == 1500.0
    assert d == base()


def test_overrides_can_create_optional_sections_and_unset_them() -> None:
    out = apply_overrides(base(), ["global_buffer.size_kib=1024", "global_buffer.bytes_per_cycle=64"])
    gbuf = chip_from_dict(out).global_buffer
    assert gbuf is not None and gbuf.size_kib == 1024
    assert chip_from_dict(apply_overrides(out, ["global_buffer=null"])).global_buffer is None
    out = apply_overrides(base(), ["core.vector.cycles_per_op.exp=9", "dram.type=ddr4"])
    chip = chip_from_dict(out)
    assert chip.core.vector.cycles_per_op.cycles(VectorOp.EXP) == 9
    assert chip.dram.bandwidth_gb_per_s == DRAM_PRESETS[DramType.DDR4].bandwidth_gb_per_s


def test_override_errors_are_all_reported_with_suggestions() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(base(), ["core.tensor_core.rowz=64", "core.tensr_core.rows=1", "clock_mhz.x=1", "mesh.rows"])
    assert info.value.problems == (
        "core.tensor_core.rowz: unknown field; did you mean 'rows'?",
        "core.tensr_core: unknown field; did you mean 'tensor_core'?",
        "clock_mhz: is a value, not a section; cannot set clock_mhz.x",
        "override 'mesh.rows': not of the form dotted.path=value; e.g. core.tensor_core.rows=64",
    )


def test_override_values_are_validated_afterwards() -> None:
    assert problems_of(apply_overrides(base(), ["core.tensor_core.rows=0"])) == (
        "core.tensor_core.rows: got 0; must be an integer >= 1 and <= 1024",
    )


# ---- derived properties ------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    mr=st.integers(1, 8),
    mc=st.integers(1, 8),
    r=st.integers(1, 512),
    c=st.integers(1, 512),
    clock=st.floats(1.0, 5000.0),
    bw=st.floats(0.5, 5000.0),
)
def test_derived_properties(mr: int, mc: int, r: int, c: int, clock: float, bw: float) -> None:
    d = with_("mesh", {"rows": mr, "cols": mc})
    d = with_("core.tensor_core", {"rows": r, "cols": c}, d)
    d = with_("clock_mhz", clock, d)
    d = with_("dram", {"type": "ddr4", "bandwidth_gb_per_s": bw}, d)
    chip = chip_from_dict(d)
    assert chip.num_cores == mr * mc
    assert chip.pes_per_core == r * c
    assert chip.peak_macs_per_cycle == mr * mc * r * c
    assert chip.peak_tops == pytest.approx(2 * mr * mc * r * c * clock * 1e6 / 1e12)
    assert chip.dram_bytes_per_cycle == pytest.approx(bw * 1e9 / (clock * 1e6))


# ---- the `chipsim chip` command ----------------------------------------------------------------------------


def test_chip_command_prints_area_tops_and_energies() -> None:
    result = CliRunner().invoke(cli.app, ["chip", "default"])
    assert result.exit_code == 0, result.output
    assert "peak 131.07 TOPS" in result.output
    for word in ("dram_phy", "total", "mac_int8", "spad_read_bytes", "leakage"):
        assert word in result.output


def test_chip_command_reports_config_errors_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["chipsim", "chip", "default", "--set", "core.tensor_core.rowz=3"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "core.tensor_core.rowz: unknown field; did you mean 'rows'?" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("text", ["chip: default\x00\n", "name: x\x07\n", "a: \x1b[31m\n"])
def test_a_yaml_reader_error_is_one_line(text: str) -> None:
    """PyYAML words an unprintable character over two lines (`... in "<unicode string>", position N`)."""
    from chipsim.config import parse_yaml

    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "f.yaml")
    message = str(info.value)
    assert "\n" not in message and "unacceptable character" in message and "(at character " in message, message
