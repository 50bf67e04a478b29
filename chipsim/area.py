"""Area: mm^2 of a chip by component (PE arrays, SRAM, vector lanes, NoC routers, DRAM PHYs), by node.

A bottom-up cell count: logic from published 45 nm arithmetic-unit areas plus flip-flops, divided by a
standard-cell placement utilisation and scaled to the node (Stillmaker & Baas); SRAM from the node's published
bitcell divided by an array efficiency; PHYs and routers from published blocks. Clock tree, control, DMA
engines, pads and whitespace between blocks are not counted, so a real die is larger (see the TPUv1 check in
tests/test_chip_energy_area.py: the model's MXU and buffer areas come out ~2-4x under the published floor plan).
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping

from chipsim.config import DRAM_PRESETS, ChipConfig, DramType, Precision
from chipsim.technology import logic_area_scale, sram_bitcell_um2


class AreaComponent(enum.StrEnum):
    """The parts of `area_breakdown`; TOTAL is their sum."""

    PE = "pe"
    SRAM = "sram"
    VECTOR = "vector"
    NOC = "noc"
    DRAM_PHY = "dram_phy"
    TOTAL = "total"


# ---- 45 nm logic (M. Horowitz, ISSCC 2014, "rough area costs in 45 nm"), um^2 ---------------------------
INT8_MULT_UM2_45NM = 282.0
INT32_ADD_UM2_45NM = 137.0
FP16_MULT_UM2_45NM = 1640.0  # stands in for the bf16 multiplier (8-bit mantissa: smaller)
FP32_ADD_UM2_45NM = 4184.0
FP32_MULT_UM2_45NM = 7700.0
DFF_UM2_45NM = 4.522  # DFF_X1 of the NanGate 45 nm Open Cell Library
# Placement utilisation: cells cover ~70% of a placed-and-routed logic block (the usual target row utilisation).
LOGIC_UTILIZATION = 0.7

# ---- SRAM: compiled macros spend ~30-40% of their area on decoders, sense amps, I/O and redundancy, so the
# bitcell array is ~60-70% of the macro (typical array efficiency of compiler macros); we take 0.65.
SRAM_ARRAY_EFFICIENCY = 0.65

# ---- NoC router: the 5-port router of Intel's 80-tile TeraFLOPS chip is 0.34 mm^2 at 65 nm with 39-bit links
# (S. Vangal et al., IEEE JSSC 43(1), 2008). We scale it linearly with link width and by logic area to the node.
ROUTER_MM2_65NM = 0.34
ROUTER_LINK_BITS = 39

# ---- DRAM PHYs, mm^2 per unit of the type's preset bandwidth (one HBM2E stack, one x64 DDR channel, an x64
# LPDDR5 interface). PHYs are I/O- and analog-dominated and barely shrink, so they are not scaled by node.
# Estimates, not datasheet values: HBM2/2E PHYs measure ~10-15 mm^2 per stack in die-photo analyses of HBM2
# GPUs and accelerators; a DDR3/DDR4 x64 PHY ~5 mm^2 (TPUv1's two DDR3 ports take ~3% of its < 331 mm^2 die,
# Jouppi et al., ISCA 2017, Fig. 2); LPDDR5 x64 ~3 mm^2 (narrower, shorter-reach I/O). A chip with part of a
# unit's bandwidth (e.g. one x16 LPDDR5 channel) gets that fraction of the PHY.
DRAM_PHY_MM2_PER_UNIT: Mapping[DramType, float] = types.MappingProxyType(
    {DramType.HBM2E: 12.0, DramType.LPDDR5: 3.0, DramType.DDR4: 5.0, DramType.DDR3: 5.0}
)


def pe_um2_45nm(precision: Precision, weight_double_buffer: bool) -> float:
    """One PE at 45 nm: multiplier + accumulator adder + operand/partial-sum flip-flops, over utilisation.

    Flip-flops: activation and weight registers of the operand width, a second weight register when weights
    are double-buffered, and a 32-bit partial sum (int32 or fp32).
    """
    if precision is Precision.INT8:
        arith, operand_bits = INT8_MULT_UM2_45NM + INT32_ADD_UM2_45NM, 8
    else:
        arith, operand_bits = FP16_MULT_UM2_45NM + FP32_ADD_UM2_45NM, 16
    flops = operand_bits * (3 if weight_double_buffer else 2) + 32
    return (arith + flops * DFF_UM2_45NM) / LOGIC_UTILIZATION


def vector_lane_um2_45nm() -> float:
    """One fp32 vector lane at 45 nm: a multiplier, an adder and four 32-bit pipeline registers."""
    return (FP32_MULT_UM2_45NM + FP32_ADD_UM2_45NM + 4 * 32 * DFF_UM2_45NM) / LOGIC_UTILIZATION


def sram_mm2(size_kib: float, technology_nm: float) -> float:
    """Macro area of `size_kib` KiB of SRAM: bits x bitcell / array efficiency."""
    bits = size_kib * 1024 * 8
    return bits * sram_bitcell_um2(technology_nm) / SRAM_ARRAY_EFFICIENCY * 1e-6


def router_mm2(link_bytes_per_cycle: int, technology_nm: float) -> float:
    scale = logic_area_scale(technology_nm) / logic_area_scale(65)
    return ROUTER_MM2_65NM * (8 * link_bytes_per_cycle / ROUTER_LINK_BITS) * scale


def dram_phy_mm2(chip: ChipConfig) -> float:
    units = chip.dram.bandwidth_gb_per_s / DRAM_PRESETS[chip.dram.type].bandwidth_gb_per_s
    return units * DRAM_PHY_MM2_PER_UNIT[chip.dram.type]


def area_breakdown(chip: ChipConfig) -> dict[str, float]:
    """mm^2 by component (pe, sram, vector, noc, dram_phy) and their left-to-right sum as `total`."""
    node = chip.technology_nm
    logic = logic_area_scale(node) * 1e-6  # um^2 at 45 nm -> mm^2 at the node
    core = chip.core
    tc = core.tensor_core
    sram_kib = chip.num_cores * (core.scratchpad.size_kib + core.accumulator.size_kib)
    if chip.global_buffer is not None:
        sram_kib += chip.global_buffer.size_kib
    parts: dict[str, float] = {
        AreaComponent.PE.value: chip.peak_macs_per_cycle * pe_um2_45nm(tc.precision, tc.weight_double_buffer) * logic,
        AreaComponent.SRAM.value: sram_mm2(sram_kib, node),
        AreaComponent.VECTOR.value: chip.num_cores * core.vector.lanes * vector_lane_um2_45nm() * logic,
        # One router per core; a single core needs none.
        AreaComponent.NOC.value: chip.num_cores * router_mm2(chip.noc.link_bytes_per_cycle, node) if chip.num_cores > 1 else 0.0,
        AreaComponent.DRAM_PHY.value: dram_phy_mm2(chip),
    }
    total = 0.0
    for value in parts.values():
        total += value
    parts[AreaComponent.TOTAL.value] = total
    return parts
