"""Area: mm^2 of a chip by component (PE arrays, SRAM, vector lanes, NoC routers, DRAM PHYs), by node.

Logic (PEs, vector lanes) is a bottom-up cell count (published 45 nm arithmetic-unit areas plus flip-flops,
over a placement utilisation, scaled to the node by Stillmaker & Baas) times one block overhead for the
wiring, pipelining, clocking and control a real array adds; that overhead is calibrated on a published
7 nm block, the TPUv4i matrix units. SRAM is a block-level density (mm^2 per MiB, macros plus their share of
the floor plan) taken from the TPUv1 floor plan at 28 nm and scaled to the node by the published bitcell.
Routers and PHYs come from published blocks. Control, DMA engines, host interfaces, pads and whitespace
between blocks are not counted, so a real die is larger than the total. The TPUv1 check in
tests/test_chip_energy_area.py holds the matrix unit (an independent check: calibrated on TPUv4i, not TPUv1)
and the accumulators (the unified buffer is the SRAM calibration point) within 25% of the floor plan.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

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

# ---- PE array overhead, calibrated on TPUv4i (Jouppi et al., ISCA 2021: 7 nm, four 128 x 128 bf16 MXUs at
# 1050 MHz, 138 TOPS). Its MXUs take ~100 mm^2 of the die: 0.72 mm^2 per peak TOPS, as measured from the die
# floor plan by H. Peng et al., "Chiplet Cloud: Building AI Supercomputers for Serving Large Generative
# Language Models", arXiv 2307.02666, 2023 (their MAC-density constant). The overhead is that area over our
# cell count of the same 65,536 double-buffered bf16 PEs at 7 nm (it comes out ~2.9x: the cell count has no
# wires, pipeline balancing, clock tree or test logic).
TPUV4I_MXU_MM2_PER_TOPS = 0.72
TPUV4I_MXU_MACS = 4 * 128 * 128
TPUV4I_CLOCK_GHZ = 1.05
TPUV4I_NODE_NM = 7

# ---- SRAM block density from the TPUv1 floor plan (N. P. Jouppi et al., "In-Datacenter Performance Analysis of
# a Tensor Processing Unit", ISCA 2017, Fig. 2: die < 331 mm^2 at 28 nm; the 24 MiB Unified Buffer is 29% of
# it): 4.0 mm^2 per MiB, which includes the macros' periphery, their wiring and the buffer's datapath. Other
# nodes scale it by the published HD bitcell (chipsim.technology.sram_bitcell_um2), so at 7 nm it is
# 0.85 mm^2/MiB, about 1.8x the 0.45 mm^2/MB macro-only density Peng et al. (above) list for 7 nm: a block
# costs more than its macros. The accumulators (6% of the TPUv1 die) are not used to calibrate: they are the
# check.
TPUV1_DIE_MM2 = 331.0
TPUV1_UNIFIED_BUFFER_SHARE = 0.29
TPUV1_UNIFIED_BUFFER_MIB = 24.0
TPUV1_NODE_NM = 28
SRAM_MM2_PER_MIB_AT_TPUV1_NODE = TPUV1_DIE_MM2 * TPUV1_UNIFIED_BUFFER_SHARE / TPUV1_UNIFIED_BUFFER_MIB

# ---- NoC router: the 5-port router of Intel's 80-tile TeraFLOPS chip is 0.34 mm^2 at 65 nm with 39-bit links
# (S. Vangal et al., IEEE JSSC 43(1), 2008). We scale it linearly with link width and by logic area to the node.
ROUTER_MM2_65NM = 0.34
ROUTER_LINK_BITS = 39

# ---- DRAM PHYs, mm^2 per unit of the type's preset bandwidth (one HBM2E stack, one x64 DDR channel, an x64
# LPDDR5 interface). PHYs are I/O- and analog-dominated and barely shrink, so they are not scaled by node.
# HBM2E: 8 channels per stack (JESD235) x 1.04 mm^2 of PHY and controller per channel (Peng et al., Chiplet
# Cloud, 2023, above) = 8.3 mm^2. DDR3/DDR4 x64: ~5 mm^2, from TPUv1's two DDR3 ports taking ~3% of its
# < 331 mm^2 die (Jouppi et al., ISCA 2017, Fig. 2). LPDDR5 x64: ~3 mm^2, an estimate (narrower,
# shorter-reach I/O than DDR4; no published die figure found). A chip with part of a unit's bandwidth (e.g.
# one x16 LPDDR5 channel) gets that fraction of the PHY.
HBM_CHANNELS_PER_STACK = 8
HBM_PHY_MM2_PER_CHANNEL = 1.04
DRAM_PHY_MM2_PER_UNIT: Mapping[DramType, float] = types.MappingProxyType(
    {DramType.HBM2E: HBM_CHANNELS_PER_STACK * HBM_PHY_MM2_PER_CHANNEL, DramType.LPDDR5: 3.0, DramType.DDR4: 5.0, DramType.DDR3: 5.0}
)


def pe_um2_45nm(precision: Precision, weight_double_buffer: bool) -> float:
    """One PE's cells at 45 nm: multiplier + accumulator adder + operand/partial-sum flip-flops, over utilisation.

    Flip-flops: activation and weight registers of the operand width, a second weight register when weights
    are double-buffered, and a 32-bit partial sum (int32 or fp32). The bf16 multiplier is Horowitz's fp16 one
    (an 8-bit mantissa costs less: an upper bound).
    """
    if precision is Precision.INT8:
        arith, operand_bits = INT8_MULT_UM2_45NM + INT32_ADD_UM2_45NM, 8
    else:
        arith, operand_bits = FP16_MULT_UM2_45NM + FP32_ADD_UM2_45NM, 16
    flops = operand_bits * (3 if weight_double_buffer else 2) + 32
    return (arith + flops * DFF_UM2_45NM) / LOGIC_UTILIZATION


@cache
def logic_block_overhead() -> float:
    """Published TPUv4i MXU area over our cell count of the same PEs at 7 nm (see TPUV4I_MXU_MM2_PER_TOPS)."""
    peak_tops = TPUV4I_MXU_MACS * 2 * TPUV4I_CLOCK_GHZ * 1e9 / 1e12
    published_um2_per_pe = TPUV4I_MXU_MM2_PER_TOPS * peak_tops * 1e6 / TPUV4I_MXU_MACS
    modelled_um2_per_pe = pe_um2_45nm(Precision.BF16, True) * logic_area_scale(TPUV4I_NODE_NM)
    return published_um2_per_pe / modelled_um2_per_pe


def pe_mm2(precision: Precision, weight_double_buffer: bool, technology_nm: float) -> float:
    """One PE as placed in an array at `technology_nm`, wiring and pipelining included."""
    return pe_um2_45nm(precision, weight_double_buffer) * logic_area_scale(technology_nm) * logic_block_overhead() * 1e-6


def vector_lane_um2_45nm() -> float:
    """One fp32 vector lane's cells at 45 nm: a multiplier, an adder and four 32-bit pipeline registers."""
    return (FP32_MULT_UM2_45NM + FP32_ADD_UM2_45NM + 4 * 32 * DFF_UM2_45NM) / LOGIC_UTILIZATION


def vector_lane_mm2(technology_nm: float) -> float:
    """One vector lane at `technology_nm`, with the same block overhead as the PE array (no separate anchor)."""
    return vector_lane_um2_45nm() * logic_area_scale(technology_nm) * logic_block_overhead() * 1e-6


def sram_mm2(size_kib: float, technology_nm: float) -> float:
    """Block area of `size_kib` KiB of SRAM at `technology_nm` (TPUv1 block density, bitcell-scaled)."""
    bitcell_ratio = sram_bitcell_um2(technology_nm) / sram_bitcell_um2(TPUV1_NODE_NM)
    return size_kib / 1024 * SRAM_MM2_PER_MIB_AT_TPUV1_NODE * bitcell_ratio


@dataclass(frozen=True, slots=True)
class SramAreas:
    """SRAM area by memory level, mm^2, whole chip."""

    scratchpad_mm2: float
    accumulator_mm2: float
    global_buffer_mm2: float

    @property
    def total_mm2(self) -> float:
        return self.scratchpad_mm2 + self.accumulator_mm2 + self.global_buffer_mm2


def sram_areas(chip: ChipConfig) -> SramAreas:
    node = chip.technology_nm
    core = chip.core
    gbuf = chip.global_buffer
    return SramAreas(
        scratchpad_mm2=sram_mm2(chip.num_cores * core.scratchpad.size_kib, node),
        accumulator_mm2=sram_mm2(chip.num_cores * core.accumulator.size_kib, node),
        global_buffer_mm2=sram_mm2(gbuf.size_kib, node) if gbuf is not None else 0.0,
    )


def router_mm2(link_bytes_per_cycle: int, technology_nm: float) -> float:
    scale = logic_area_scale(technology_nm) / logic_area_scale(65)
    return ROUTER_MM2_65NM * (8 * link_bytes_per_cycle / ROUTER_LINK_BITS) * scale


def dram_phy_mm2(chip: ChipConfig) -> float:
    units = chip.dram.bandwidth_gb_per_s / DRAM_PRESETS[chip.dram.type].bandwidth_gb_per_s
    return units * DRAM_PHY_MM2_PER_UNIT[chip.dram.type]


def area_breakdown(chip: ChipConfig) -> dict[str, float]:
    """mm^2 by component (pe, sram, vector, noc, dram_phy) and their left-to-right sum as `total`."""
    node = chip.technology_nm
    core = chip.core
    tc = core.tensor_core
    parts: dict[str, float] = {
        AreaComponent.PE.value: chip.peak_macs_per_cycle * pe_mm2(tc.precision, tc.weight_double_buffer, node),
        AreaComponent.SRAM.value: sram_areas(chip).total_mm2,
        AreaComponent.VECTOR.value: chip.num_cores * core.vector.lanes * vector_lane_mm2(node),
        # One router per core; a single core needs none.
        AreaComponent.NOC.value: chip.num_cores * router_mm2(chip.noc.link_bytes_per_cycle, node) if chip.num_cores > 1 else 0.0,
        AreaComponent.DRAM_PHY.value: dram_phy_mm2(chip),
    }
    total = 0.0
    for value in parts.values():
        total += value
    parts[AreaComponent.TOTAL.value] = total
    return parts
