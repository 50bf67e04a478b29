"""Cost: dollars of one chip, the die from its area and node plus its DRAM from its capacity (as LLMCompass does).

`chip_cost_usd(chip)` is a pure function of the chip config:

    die_usd  = wafer price at the node / (gross dies per wafer x die yield)
    dram_usd = DRAM capacity (GB) x price per GB of the DRAM type
    total    = die_usd + dram_usd

- Die area: `chipsim.area.area_breakdown(chip)["total"]`, the modelled blocks (PEs, SRAM, vector lanes, NoC
  routers, DRAM PHYs). Control, host I/O, pads and whitespace are not modelled, so this is a lower bound on
  the die and on its cost (for TPUv1 the modelled blocks are ~60% of the die).
- Gross dies per wafer on a 300 mm wafer: pi (d/2)^2 / A - pi d / sqrt(2 A) (the usual edge-loss formula,
  J. L. Hennessy and D. A. Patterson, "Computer Architecture: A Quantitative Approach", 6th ed., Sec. 1.6).
- Die yield: Murphy's model, Y = ((1 - exp(-A D0)) / (A D0))^2 (B. T. Murphy, "Cost-size optima of monolithic
  integrated circuits", Proc. IEEE 52(12), 1964), with one defect density for every node (below).
- Not counted: packaging (interposer, substrate), test, masks and design (NRE), and margins; the cost is the
  silicon and memory a design consumes, for comparing design points, not a price.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from chipsim.area import area_breakdown
from chipsim.config import ChipConfig, DramType

WAFER_DIAMETER_MM = 300.0

# Foundry sale price of one processed 300 mm wafer in 2020, USD: S. M. Khan and A. Mann, "AI Chips: What They
# Are and Why They Matter", Center for Security and Emerging Technology (CSET), April 2020, Table 9 / App. C.
# CSET quotes 16 nm and 12 nm as one node. Between tabulated nodes the price is interpolated linearly in
# log(price) against log(node).
WAFER_USD_BY_NODE_NM: tuple[tuple[int, float], ...] = (
    (90, 1650.0),
    (65, 1937.0),
    (40, 2274.0),
    (28, 2891.0),
    (20, 3677.0),
    (16, 3984.0),
    (12, 3984.0),
    (10, 5992.0),
    (7, 9346.0),
    (5, 16988.0),
)

# Defect density, defects per cm^2: TSMC reported N7 and N5 at ~0.1 defects/cm^2 in volume production (TSMC
# 2020 Technology Symposium, as reported by AnandTech, "TSMC: We have 5nm in high volume production", Aug.
# 2020). Used for every node: mature nodes run at or below it, so older-node dies are, if anything, costed high.
DEFECTS_PER_CM2 = 0.1

# DRAM price per GB, USD. Market estimates, which move with supply: HBM at $8-10 per GB against $1.5-2 per GB
# for DDR5 ("What is HBM memory, and why does it matter for AI pricing", AsiaTechFeed, 2026); we take the top
# of each range. LPDDR5, DDR4 and DDR3 take the DDR5 figure (no separate published figure found; commodity DRAM
# of the same order).
HBM_USD_PER_GB = 10.0
COMMODITY_DRAM_USD_PER_GB = 2.0
DRAM_USD_PER_GB: Mapping[DramType, float] = types.MappingProxyType(
    {
        DramType.HBM2E: HBM_USD_PER_GB,
        DramType.LPDDR5: COMMODITY_DRAM_USD_PER_GB,
        DramType.DDR4: COMMODITY_DRAM_USD_PER_GB,
        DramType.DDR3: COMMODITY_DRAM_USD_PER_GB,
    }
)


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """What one chip costs, and the figures the cost comes from."""

    die_area_mm2: float
    wafer_usd: float
    gross_dies_per_wafer: float
    die_yield: float  # fraction of dies without a killing defect (Murphy)
    die_usd: float  # one good die: wafer_usd / (gross_dies_per_wafer x die_yield)
    dram_capacity_gb: float
    dram_usd_per_gb: float
    dram_usd: float

    @property
    def total_usd(self) -> float:
        return self.die_usd + self.dram_usd


def wafer_usd(technology_nm: float) -> float:
    """Price of one processed 300 mm wafer at `technology_nm` (CSET 2020, interpolated between nodes)."""
    table = WAFER_USD_BY_NODE_NM
    if not table[-1][0] <= technology_nm <= table[0][0]:
        raise ValueError(f"technology node {technology_nm} nm has no wafer price; use {table[-1][0]}..{table[0][0]} nm")
    for node, price in table:
        if technology_nm == node:
            return price
    for (n_hi, p_hi), (n_lo, p_lo) in zip(table, table[1:]):
        if n_lo < technology_nm < n_hi:
            t = math.log(n_hi / technology_nm) / math.log(n_hi / n_lo)
            return math.exp(math.log(p_hi) + t * (math.log(p_lo) - math.log(p_hi)))
    raise AssertionError("unreachable: the node lies in the table's range")  # pragma: no cover


def gross_dies_per_wafer(die_area_mm2: float) -> float:
    """Whole-die sites on a 300 mm wafer, edge loss included (Hennessy & Patterson)."""
    if not die_area_mm2 > 0:
        raise ValueError(f"die area {die_area_mm2} mm^2 is not positive")
    d = WAFER_DIAMETER_MM
    dies = math.pi * (d / 2) ** 2 / die_area_mm2 - math.pi * d / math.sqrt(2 * die_area_mm2)
    if dies < 1:
        raise ValueError(f"a die of {die_area_mm2:.0f} mm^2 does not fit on a {d:.0f} mm wafer; make the chip smaller")
    return dies


def murphy_yield(die_area_mm2: float, defects_per_cm2: float = DEFECTS_PER_CM2) -> float:
    """Murphy's yield model: ((1 - exp(-A D0)) / (A D0))^2, A in cm^2."""
    ad = die_area_mm2 / 100 * defects_per_cm2
    if ad == 0:
        return 1.0
    return ((1 - math.exp(-ad)) / ad) ** 2


@cache
def chip_cost_usd(chip: ChipConfig) -> CostBreakdown:
    """The silicon and DRAM cost of one `chip` (see the module docstring for what is and is not counted)."""
    area_mm2 = area_breakdown(chip)["total"]
    wafer = wafer_usd(chip.technology_nm)
    dies = gross_dies_per_wafer(area_mm2)
    yield_fraction = murphy_yield(area_mm2)
    per_gb = DRAM_USD_PER_GB[chip.dram.type]
    return CostBreakdown(
        die_area_mm2=area_mm2,
        wafer_usd=wafer,
        gross_dies_per_wafer=dies,
        die_yield=yield_fraction,
        die_usd=wafer / (dies * yield_fraction),
        dram_capacity_gb=chip.dram.capacity_gb,
        dram_usd_per_gb=per_gb,
        dram_usd=chip.dram.capacity_gb * per_gb,
    )
