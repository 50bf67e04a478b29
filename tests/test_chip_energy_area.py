"""Energy and area models: published anchors, monotonicity, sums of parts, preset sanity, TPUv1 check."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chipsim import cost, technology
from chipsim.area import AreaComponent, area_breakdown, logic_block_overhead, pe_mm2, pe_um2_45nm, sram_areas, sram_mm2
from chipsim.config import ChipConfig, Precision, VectorOp, apply_overrides, chip_from_dict, load_chip, load_chip_dict, preset_names
from chipsim.energy import (
    Component,
    EnergyModel,
    Event,
    energy_breakdown,
    mac_event,
    mac_op_pj,
    sram_pj_per_byte,
    vector_event,
    vector_lane_op_pj,
)

NODES = (90, 65, 45, 32, 28, 22, 20, 16, 14, 12, 10, 7, 5)


def chip_with(*overrides: str, preset: str = "default") -> ChipConfig:
    return chip_from_dict(apply_overrides(load_chip_dict(preset), list(overrides)))


# ---- technology scaling ------------------------------------------------------------------------------------


def test_scaling_is_one_at_45nm_and_monotone_in_node() -> None:
    assert technology.energy_scale(45) == 1.0 and technology.logic_area_scale(45) == 1.0
    for big, small in zip(NODES, NODES[1:]):
        assert technology.energy_scale(small) < technology.energy_scale(big)
        assert technology.logic_area_scale(small) < technology.logic_area_scale(big)
        assert technology.sram_bitcell_um2(small) < technology.sram_bitcell_um2(big)


def test_scaling_reproduces_the_tables() -> None:
    # Stillmaker & Baas area table (45 nm row) and the published bitcells, at tabulated nodes.
    assert technology.logic_area_scale(7) == pytest.approx(0.059)
    assert technology.logic_area_scale(65) == pytest.approx(1.5)
    assert technology.sram_bitcell_um2(7) == pytest.approx(0.027)
    assert technology.sram_bitcell_um2(28) == pytest.approx(0.127)
    # Energy 45 -> 7 nm at nominal supplies: ~21x lower (a factor between the 45->7 nm area gain of ~17x and
    # the ~30x that ideal C V^2 scaling would give).
    assert 0.03 < technology.energy_scale(7) < 0.07


def test_nodes_outside_the_tables_are_rejected() -> None:
    with pytest.raises(ValueError, match="technology node 3 nm is outside the modelled range; use 5..90 nm"):
        technology.energy_scale(3)
    with pytest.raises(ValueError, match="technology node 3 nm is outside the modelled range; use 5..90 nm"):
        technology.energy_between_anchors(1.0, 0.5, 3)


def test_energy_law_hits_both_published_nodes_and_is_continuous() -> None:
    law = technology.energy_between_anchors
    assert law(0.9, 0.38, 45) == pytest.approx(0.9) and law(0.9, 0.38, 7) == pytest.approx(0.38)
    # A power law between the anchors: the geometric mean of the two energies at the geometric-mean node.
    assert law(0.9, 0.38, math.sqrt(45 * 7)) == pytest.approx(math.sqrt(0.9 * 0.38))
    # Continuous where the law hands over to Stillmaker & Baas, and monotone across the whole range.
    for edge in (7, 45):
        assert law(0.9, 0.38, edge - 1e-9) == pytest.approx(law(0.9, 0.38, edge + 1e-9), rel=1e-6)
    values = [law(0.9, 0.38, n) for n in NODES]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert law(0.9, 0.38, 5) == pytest.approx(0.38 * technology.energy_scale(5) / technology.energy_scale(7))
    assert law(0.9, 0.38, 90) == pytest.approx(0.9 * technology.energy_scale(90))
    with pytest.raises(ValueError, match="published energies must be positive"):
        law(0.0, 0.38, 16)


# ---- energy: published anchors -----------------------------------------------------------------------------


def test_energy_anchors_at_45nm() -> None:
    # Horowitz ISSCC 2014, 45 nm: 64-bit SRAM reads of 10 / 20 / 100 pJ at 8 KB / 32 KB / 1 MB.
    assert sram_pj_per_byte(8, 45) * 8 == pytest.approx(10.0)
    assert sram_pj_per_byte(32, 45) * 8 == pytest.approx(20.0)
    assert sram_pj_per_byte(1024, 45) * 8 == pytest.approx(100.0)
    chip45 = chip_with("technology_nm=45")
    model = EnergyModel.of(chip45)
    assert model.mac_int8_pj == pytest.approx(0.2 + 0.1)  # 8-bit mult + 32-bit add
    assert model.mac_bf16_pj == pytest.approx(0.21 * 1.1 / 0.34 + 0.9)  # bf16 mult (via fp16's ratio) + fp32 add
    assert model.pj(Event.VEC_ADD_LANE_OPS) == pytest.approx(0.9)
    assert model.pj(Event.VEC_MUL_LANE_OPS) == pytest.approx(3.7)
    assert model.pj(Event.DRAM_READ_BYTES) == pytest.approx(8 * 3.9)  # HBM2E 3.9 pJ/bit, not node-scaled


def test_energy_anchors_at_7nm() -> None:
    # Jouppi et al., ISCA 2021 (TPUv4i), Table 2, 7 nm: int8 mult 0.07 + int32 add 0.03; bf16 mult 0.21 + fp32
    # add 0.38; fp32 mult 1.31; 64-bit SRAM reads of 7.5 / 8.5 / 14 pJ at 8 KB / 32 KB / 1 MB.
    model = EnergyModel.of(chip_with("technology_nm=7"))
    assert model.mac_int8_pj == pytest.approx(0.07 + 0.03)
    assert model.mac_bf16_pj == pytest.approx(0.21 + 0.38)
    assert model.pj(Event.VEC_ADD_LANE_OPS) == pytest.approx(0.38)
    assert model.pj(Event.VEC_MUL_LANE_OPS) == pytest.approx(1.31)
    assert [sram_pj_per_byte(kib, 7) * 8 for kib in (8, 32, 1024)] == pytest.approx([7.5, 8.5, 14.0])


def test_7nm_energies_are_several_times_the_single_factor_projection() -> None:
    # The projection (Horowitz 45 nm x Stillmaker & Baas 45 -> 7 nm) against the published 7 nm values: the
    # published int8 MAC, fp32 add and 8 KB SRAM read are 5-20x the projection (the TPUv4i paper's point).
    projection = technology.energy_scale(7)
    assert 5 < mac_op_pj(Precision.INT8, 7) / (0.3 * projection) < 10
    assert 5 < vector_lane_op_pj(VectorOp.ADD, 7) / (0.9 * projection) < 10
    assert 10 < sram_pj_per_byte(8, 7) / (10 / 8 * projection) < 20


def test_sram_energy_follows_the_published_sizes() -> None:
    sizes = [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 16384]
    for node in (45, 28, 7):
        energies = [sram_pj_per_byte(s, node) for s in sizes]
        assert all(a <= b for a, b in zip(energies, energies[1:]))
        assert energies[0] == energies[sizes.index(8)]  # below 8 KB: the 8 KB energy (no smaller published point)
    # Between and beyond the published sizes the growth exponent is the table's own segment slope at that node.
    for node, (pj8, pj32, pj1m) in ((45, (10.0, 20.0, 100.0)), (7, (7.5, 8.5, 14.0))):
        low, high = math.log(pj32 / pj8) / math.log(4), math.log(pj1m / pj32) / math.log(32)
        assert math.log(sram_pj_per_byte(16, node) / sram_pj_per_byte(8, node)) / math.log(2) == pytest.approx(low)
        assert math.log(sram_pj_per_byte(128, node) / sram_pj_per_byte(64, node)) / math.log(2) == pytest.approx(high)
        assert math.log(sram_pj_per_byte(4096, node) / sram_pj_per_byte(2048, node)) / math.log(2) == pytest.approx(high)


def test_more_banks_means_cheaper_accesses() -> None:
    few = EnergyModel.of(chip_with("core.scratchpad.banks=2"))
    many = EnergyModel.of(chip_with("core.scratchpad.banks=64"))
    assert many.pj(Event.SPAD_READ_BYTES) < few.pj(Event.SPAD_READ_BYTES)


@pytest.mark.parametrize("event", [Event.MAC_INT8, Event.MAC_BF16, Event.SPAD_READ_BYTES, Event.ACC_WRITE_BYTES, Event.VEC_EXP_LANE_OPS])
def test_dynamic_energy_falls_with_the_node(event: Event) -> None:
    energies = [EnergyModel.of(chip_with(f"technology_nm={n}")).pj(event) for n in NODES]
    assert all(a > b for a, b in zip(energies, energies[1:]))


def test_energy_hierarchy_on_every_preset() -> None:
    # DRAM byte >> SRAM byte > int8 MAC; bf16 MAC > int8 MAC; transcendental lane-ops > add.
    for name in preset_names():
        m = EnergyModel.of(load_chip(name))
        assert m.pj(Event.DRAM_READ_BYTES) > 10 * m.pj(Event.SPAD_READ_BYTES) > 10 * m.mac_int8_pj
        assert m.mac_bf16_pj > m.mac_int8_pj
        for op in (VectorOp.EXP, VectorOp.GELU, VectorOp.RSQRT, VectorOp.RECIP):
            assert m.pj(vector_event(op)) > m.pj(Event.VEC_MUL_LANE_OPS) > m.pj(Event.VEC_ADD_LANE_OPS)


def test_every_event_has_an_energy_and_a_component() -> None:
    m = EnergyModel.of(load_chip("tpuv1"))  # has a global buffer, so every event applies
    assert set(m.event_pj) == set(Event)
    assert {vector_event(op) for op in VectorOp} <= set(Event)
    assert mac_event(Precision.INT8) is Event.MAC_INT8 and mac_event(Precision.BF16) is Event.MAC_BF16
    assert vector_lane_op_pj(VectorOp.GELU, 28) == m.pj(Event.VEC_GELU_LANE_OPS)
    for event in Event:
        parts = energy_breakdown({event: 1.0}, 0, load_chip("tpuv1"))
        assert parts["total"] == pytest.approx(m.pj(event) * 1e-12)
        assert sum(1 for k, v in parts.items() if v and k != "total") == 1


def test_every_preset_is_finite_and_positive() -> None:
    for name in preset_names():
        chip = load_chip(name)
        m = EnergyModel.of(chip)
        for event, pj in m.event_pj.items():
            if chip.global_buffer is None and event in (Event.GBUF_READ_BYTES, Event.GBUF_WRITE_BYTES):
                assert pj == 0.0
            else:
                assert math.isfinite(pj) and pj > 0, (name, event)
        assert math.isfinite(m.leakage_w) and m.sram_leakage_w > 0 and m.logic_leakage_w > 0
        area = area_breakdown(chip)
        assert all(math.isfinite(v) and v >= 0 for v in area.values())
        assert area["total"] > 0 and area["pe"] > 0 and area["sram"] > 0 and area["dram_phy"] > 0
        assert (area["noc"] > 0) == (chip.num_cores > 1)
        assert math.isfinite(chip.peak_tops) and chip.peak_tops > 0


# ---- energy_breakdown --------------------------------------------------------------------------------------


counts = st.floats(0, 1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=30, deadline=None)
@given(
    events=st.dictionaries(st.sampled_from(list(Event)), counts, max_size=len(Event)),
    cycles=st.floats(0, 1e10, allow_nan=False, allow_infinity=False),
    preset=st.sampled_from(["default", "tpuv1", "edge"]),
)
def test_energy_total_is_exactly_the_sum_of_parts(events: dict[Event, float], cycles: float, preset: str) -> None:
    chip = load_chip(preset)
    if chip.global_buffer is None:
        events = {e: c for e, c in events.items() if e not in (Event.GBUF_READ_BYTES, Event.GBUF_WRITE_BYTES)}
    parts = energy_breakdown(events, cycles, chip)
    assert list(parts) == [c.value for c in Component]
    total = 0.0
    for key, value in parts.items():
        if key != "total":
            total += value
            assert value >= 0
    assert parts["total"] == total


def test_energy_breakdown_by_hand() -> None:
    chip = load_chip("default")
    m = EnergyModel.of(chip)
    parts = energy_breakdown({"mac_int8": 1e9, Event.DRAM_READ_BYTES: 1e6, "noc_byte_hops": 10.0}, 2_000_000, chip)
    assert parts["mac"] == pytest.approx(1e9 * m.mac_int8_pj * 1e-12)
    assert parts["dram"] == pytest.approx(1e6 * 8 * 3.9 * 1e-12)
    assert parts["noc"] == pytest.approx(10 * 1.0 * 1e-12)
    assert parts["leakage"] == pytest.approx(m.leakage_w * 2e-3)  # 2e6 cycles at 1 GHz = 2 ms
    assert parts["sram"] == parts["vector"] == 0.0


def test_energy_breakdown_rejects_bad_input() -> None:
    chip = load_chip("default")
    with pytest.raises(ValueError, match="unknown energy event 'mac_int4'; valid events are mac_int8, mac_bf16, "):
        energy_breakdown({"mac_int4": 1}, 0, chip)
    with pytest.raises(ValueError, match="event 'mac_int8' has count -1; counts must be finite and >= 0"):
        energy_breakdown({"mac_int8": -1}, 0, chip)
    with pytest.raises(ValueError, match="cycles must be a finite number >= 0"):
        energy_breakdown({}, -5, chip)
    with pytest.raises(ValueError, match="event 'gbuf_read_bytes' counted on chip 'default', which has no global buffer"):
        energy_breakdown({"gbuf_read_bytes": 64}, 0, chip)


def test_leakage_grows_with_sram_and_array() -> None:
    base = EnergyModel.of(load_chip("default"))
    assert EnergyModel.of(chip_with("core.scratchpad.size_kib=8192")).sram_leakage_w > base.sram_leakage_w
    assert EnergyModel.of(chip_with("core.tensor_core.rows=256")).logic_leakage_w > base.logic_leakage_w


# ---- area --------------------------------------------------------------------------------------------------


def test_area_total_is_exactly_the_sum_of_parts() -> None:
    for name in preset_names():
        parts = area_breakdown(load_chip(name))
        assert list(parts) == [c.value for c in AreaComponent]
        total = 0.0
        for key, value in parts.items():
            if key != "total":
                total += value
        assert parts["total"] == total


@pytest.mark.parametrize(
    ("path", "small", "big", "component"),
    [
        ("core.tensor_core.rows", 64, 256, "pe"),
        ("mesh.cols", 1, 4, "pe"),
        ("core.scratchpad.size_kib", 512, 8192, "sram"),
        ("core.vector.lanes", 32, 256, "vector"),
        ("noc.link_bytes_per_cycle", 16, 128, "noc"),
        ("dram.bandwidth_gb_per_s", 460.8, 921.6, "dram_phy"),
    ],
)
def test_area_grows_with_size(path: str, small: object, big: object, component: str) -> None:
    a = area_breakdown(chip_with(f"{path}={small}"))
    b = area_breakdown(chip_with(f"{path}={big}"))
    assert b[component] > a[component]
    assert b["total"] > a["total"]


def test_area_shrinks_with_the_node() -> None:
    areas = [area_breakdown(chip_with(f"technology_nm={n}")) for n in NODES]
    for big, small in zip(areas, areas[1:]):
        for component in ("pe", "sram", "vector", "noc"):
            assert small[component] < big[component]
        assert small["dram_phy"] == big["dram_phy"]  # PHYs are I/O-bound: not node-scaled


def test_bf16_and_weight_double_buffering_cost_area() -> None:
    assert pe_um2_45nm(Precision.BF16, True) > 5 * pe_um2_45nm(Precision.INT8, True)
    assert pe_um2_45nm(Precision.INT8, True) > pe_um2_45nm(Precision.INT8, False)
    assert area_breakdown(chip_with("core.tensor_core.precision=bf16"))["pe"] > area_breakdown(load_chip("default"))["pe"]


def test_sram_density_at_7nm() -> None:
    # The TPUv1 block density scaled by the bitcell to 7 nm must cost more than Peng et al.'s 0.45 mm^2 per MB of
    # macros alone (a block adds wiring and datapath) but not absurdly more.
    mm2_per_mb = sram_mm2(1e6 / 1024, 7)
    assert 1.0 < mm2_per_mb / 0.45 < 2.0
    assert sram_mm2(24 * 1024, 28) == pytest.approx(0.29 * 331)  # the calibration point itself


def test_logic_overhead_reproduces_the_tpuv4i_matrix_units() -> None:
    # 4 x 128 x 128 bf16 PEs at 7 nm and 1.05 GHz = 137.6 TOPS at 0.72 mm^2/TOPS = ~99 mm^2 of MXU.
    mxu_mm2 = 4 * 128 * 128 * pe_mm2(Precision.BF16, True, 7)
    assert mxu_mm2 == pytest.approx(0.72 * 4 * 128 * 128 * 2 * 1.05e9 / 1e12)
    assert 2.0 < logic_block_overhead() < 4.0  # wires, pipelining, clock and test over a bare cell count


def test_default_chip_area_is_the_sum_of_its_blocks() -> None:
    chip = load_chip("default")
    parts = area_breakdown(chip)
    tc = chip.core.tensor_core
    assert parts["pe"] == pytest.approx(chip.peak_macs_per_cycle * pe_mm2(tc.precision, tc.weight_double_buffer, 7))
    assert parts["sram"] == pytest.approx(sram_mm2(4 * (2048 + 512), 7))
    assert parts["dram_phy"] == pytest.approx(8 * 1.04)  # one HBM2E stack: 8 channels of PHY + controller
    # 4 x 128x128 int8 PEs, 10 MiB SRAM, one HBM PHY: a small die (~30 mm^2 of modelled blocks).
    assert 20 < parts["total"] < 40


# ---- TPUv1 and A100 (Jouppi et al., ISCA 2017; NVIDIA A100 whitepaper) ---------------------------------------


def test_tpuv1_mac_energy_is_within_a_documented_factor_of_the_chip() -> None:
    # TPUv1 measured 40 W busy at 92 TOPS peak = 46e12 MAC/s: 0.87 pJ per peak MAC for the whole chip (MACs,
    # buffers, DDR3, I/O, control, idle power). Our 28 nm int8 MAC alone must be below that and, being the
    # arithmetic core of it, within 10x of it.
    chip = load_chip("tpuv1")
    chip_level_pj_per_mac = 40.0 / (chip.peak_tops * 1e12 / 2) * 1e12
    assert chip_level_pj_per_mac == pytest.approx(0.87, abs=0.01)
    mac_pj = EnergyModel.of(chip).mac_int8_pj
    assert chip_level_pj_per_mac / 10 < mac_pj < chip_level_pj_per_mac
    # Peak MAC power alone (65536 MACs x 0.7 GHz x the MAC energy) stays well inside the 40 W busy figure.
    assert chip.peak_macs_per_cycle * chip.clock_hz * mac_pj * 1e-12 < 40.0 / 2


@pytest.mark.parametrize(
    ("block", "die_share"),
    [("matrix unit", 0.24), ("unified buffer", 0.29), ("accumulators", 0.06)],
)
def test_tpuv1_blocks_are_within_25_percent_of_the_floor_plan(block: str, die_share: float) -> None:
    # Floor plan of the < 331 mm^2 28 nm die (Jouppi et al., ISCA 2017, Fig. 2). The matrix unit's PE area is
    # calibrated on TPUv4i (7 nm), not on TPUv1; the unified buffer is the SRAM calibration point; the
    # accumulators check the SRAM density on a second block.
    chip = load_chip("tpuv1")
    srams = sram_areas(chip)
    modelled = {
        "matrix unit": area_breakdown(chip)["pe"],
        "unified buffer": srams.scratchpad_mm2 + srams.global_buffer_mm2,  # 16 MiB scratchpad + 8 MiB buffer
        "accumulators": srams.accumulator_mm2,
    }[block]
    assert 0.75 <= modelled / (die_share * 331.0) <= 1.25
    assert area_breakdown(chip)["total"] < 331.0


def test_a100_modelled_blocks_fit_its_die() -> None:
    # No published block-level area estimate of A100 was found to check against (docs/VALIDATION.md); the
    # modelled blocks must at least fit the 826 mm^2 die (NVIDIA A100 whitepaper) with room for what is not
    # modelled (CUDA cores' control, L1/texture, NVLink and PCIe PHYs, the GPU's front end).
    assert area_breakdown(load_chip("a100"))["total"] < 0.5 * 826.0


# ---- cost --------------------------------------------------------------------------------------------------


def test_wafer_prices_are_cset_2020_and_rise_as_the_node_shrinks() -> None:
    assert cost.wafer_usd(7) == 9346.0 and cost.wafer_usd(5) == 16988.0 and cost.wafer_usd(28) == 2891.0
    prices = [cost.wafer_usd(n) for n in NODES]
    assert all(a <= b * (1 + 1e-12) for a, b in zip(prices, prices[1:]))
    assert cost.wafer_usd(14) == pytest.approx(3984.0)  # CSET's 16/12 nm node
    with pytest.raises(ValueError, match="technology node 3 nm has no wafer price; use 5..90 nm"):
        cost.wafer_usd(3)


def test_dies_per_wafer_and_murphy_yield_by_hand() -> None:
    # 100 mm^2 on a 300 mm wafer: pi 150^2 / 100 - pi 300 / sqrt(200) = 706.86 - 66.64 = 640.2 sites.
    assert cost.gross_dies_per_wafer(100.0) == pytest.approx(640.2, abs=0.05)
    # 1 cm^2 at 0.1 defects/cm^2: ((1 - e^-0.1) / 0.1)^2 = 0.9056.
    assert cost.murphy_yield(100.0) == pytest.approx(0.905592, abs=1e-6)
    assert cost.murphy_yield(800.0) < cost.murphy_yield(100.0) < 1.0
    with pytest.raises(ValueError, match="a die of 20000 mm\\^2 does not fit on a 300 mm wafer; make the chip smaller"):
        cost.gross_dies_per_wafer(20000.0)


@pytest.mark.parametrize("preset", ["default", "tpuv1", "a100", "edge"])
def test_chip_cost_is_die_plus_dram(preset: str) -> None:
    chip = load_chip(preset)
    c = cost.chip_cost_usd(chip)
    assert c.die_area_mm2 == area_breakdown(chip)["total"]
    assert c.die_usd == pytest.approx(cost.wafer_usd(chip.technology_nm) / (c.gross_dies_per_wafer * c.die_yield))
    assert c.dram_usd == pytest.approx(chip.dram.capacity_gb * cost.DRAM_USD_PER_GB[chip.dram.type])
    assert c.total_usd == c.die_usd + c.dram_usd
    assert 0 < c.die_yield < 1 and c.total_usd > 0


def test_a_bigger_chip_costs_more_and_dram_capacity_follows_bandwidth() -> None:
    small, big = cost.chip_cost_usd(load_chip("default")), cost.chip_cost_usd(chip_with("mesh.cols=4"))
    # Twice the cores: more area, and each mm^2 costs more (fewer sites per wafer by edge loss, lower yield).
    assert big.die_area_mm2 > small.die_area_mm2
    assert big.die_usd / big.die_area_mm2 > small.die_usd / small.die_area_mm2
    assert cost.chip_cost_usd(load_chip("a100")).dram_capacity_gb == 40.0  # the preset states it
    two_stacks = chip_with("dram.bandwidth_gb_per_s=921.6")
    assert two_stacks.dram.capacity_gb == pytest.approx(2 * 16.0)  # default: the type's capacity per unit
    assert chip_with("dram.capacity_gb=24.0").dram.capacity_gb == 24.0
