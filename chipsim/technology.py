"""Technology-node scaling: how logic energy, logic area and SRAM bitcell area change from node to node.

Energy: the energy model quotes every per-operation and per-access energy at two published nodes, 45 nm
(M. Horowitz, ISSCC 2014) and 7 nm (N. P. Jouppi et al., "Ten Lessons From Three Generations Shaped Google's
TPUv4i", ISCA 2021, Table 2, which re-measured Horowitz's table on a 7 nm design). `energy_between_anchors`
is the node scaling law: between 7 and 45 nm an energy follows a power law in the node, E(n) = E7 (n / 7)^k,
with k fitted per operation to its two published values (so each operation keeps the unequal scaling the
TPUv4i paper documents: SRAM and wires scale far less than arithmetic); outside [7, 45] nm it follows the
Stillmaker & Baas factor below from the nearer anchor. Area: logic area and SRAM bitcells scale with the
factors below. Between tabulated nodes the factors are interpolated linearly in log(factor) against log(node);
outside [MIN_NODE_NM, MAX_NODE_NM] they are undefined (the chip config rejects such nodes).

Sources:
- Logic energy and area: A. Stillmaker and B. Baas, "Scaling equations for the accurate prediction of CMOS
  device performance from 180 nm to 7 nm", Integration, the VLSI Journal 58 (2017) 74-81. Energy per operation
  is their per-node quadratic in Vdd, E(V) = a V^2 + b V + c (coefficients as tabulated in the paper, also
  transcribed in Accelergy's technology-scaling plug-in), evaluated at each node's nominal supply of the PTM
  models the paper fits (PTM bulk 90..32 nm and PTM-MG 20..7 nm: 1.2, 1.1, 1.0, 0.9, 0.9, 0.85, 0.8, 0.75,
  0.7 V). Area factors are the paper's area-scaling table, 45 nm row.
- 5 nm is beyond the paper: TSMC N5 vs N7 is 1.84x logic density and -30% power at iso-speed (G. Yeap et al.,
  IEDM 2019, "5nm CMOS production technology platform"), applied to the 7 nm factors.
- SRAM bitcells: the published high-density 6T cell of each node (references next to each entry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

REFERENCE_NODE_NM = 45  # the Stillmaker & Baas factors below are relative to this node (1.0 at 45 nm)
ENERGY_ANCHOR_LOW_NM = 7  # the TPUv4i table's node (Jouppi et al., ISCA 2021)
ENERGY_ANCHOR_HIGH_NM = 45  # Horowitz's table's node (ISSCC 2014)
MIN_NODE_NM = 5
MAX_NODE_NM = 90


@dataclass(frozen=True, slots=True)
class _LogicNode:
    node_nm: int
    vdd_nominal_v: float  # PTM nominal supply at this node
    energy_a: float  # Stillmaker & Baas energy polynomial: a V^2 + b V + c (relative units)
    energy_b: float
    energy_c: float
    area_vs_45nm: float  # Stillmaker & Baas area-scaling table, 45 nm row

    @property
    def energy_rel(self) -> float:
        v = self.vdd_nominal_v
        return self.energy_a * v * v + self.energy_b * v + self.energy_c


# Stillmaker & Baas (Integration 2017): energy coefficients and area factors per node (see module docstring).
_LOGIC_NODES: tuple[_LogicNode, ...] = (
    _LogicNode(90, 1.2, 4.762, -4.781, 2.092, 2.8),
    _LogicNode(65, 1.1, 3.755, -4.398, 1.975, 1.5),
    _LogicNode(45, 1.0, 1.103, -0.362, 0.2767, 1.0),
    _LogicNode(32, 0.9, 0.9559, -0.7823, 0.471, 0.46),
    _LogicNode(20, 0.9, 0.373, -0.1582, 0.04104, 0.21),
    _LogicNode(16, 0.85, 0.2958, -0.1241, 0.03024, 0.19),
    _LogicNode(14, 0.8, 0.2363, -0.09675, 0.02239, 0.17),
    _LogicNode(10, 0.75, 0.2068, -0.09311, 0.02375, 0.10),
    _LogicNode(7, 0.7, 0.1776, -0.09097, 0.02447, 0.059),
)
_N5_DENSITY_GAIN = 1.84  # TSMC N5 vs N7 logic density (Yeap et al., IEDM 2019)
_N5_POWER_FACTOR = 0.70  # TSMC N5 vs N7: -30% power at iso-speed (Yeap et al., IEDM 2019)

# Published high-density 6T SRAM bitcell areas, um^2.
_SRAM_BITCELL_UM2: tuple[tuple[int, float], ...] = (
    (90, 1.0),  # Intel 90 nm, 1.0 um^2 (Thompson et al., IEDM 2002)
    (65, 0.570),  # Intel 65 nm, 0.57 um^2 (Bai et al., IEDM 2004)
    (45, 0.346),  # Intel 45 nm, 0.346 um^2 (Mistry et al., IEDM 2007)
    (32, 0.171),  # Intel 32 nm, 0.171 um^2 (Natarajan et al., IEDM 2008)
    (28, 0.127),  # TSMC 28 nm HD, 0.127 um^2 (Wu et al., IEDM 2010)
    (22, 0.092),  # Intel 22 nm HD, 0.092 um^2 (Auth et al., VLSI 2012)
    (16, 0.070),  # TSMC 16 nm FinFET, 0.07 um^2 (Wu et al., IEDM 2013)
    (14, 0.0588),  # Intel 14 nm, 0.0588 um^2 (Natarajan et al., IEDM 2014)
    (10, 0.0312),  # Intel 10 nm HD, 0.0312 um^2 (Auth et al., IEDM 2017)
    (7, 0.027),  # TSMC N7 HD, 0.027 um^2 (J. Chang et al., ISSCC 2017, 7 nm 256 Mb SRAM)
    (5, 0.021),  # TSMC N5 HD, 0.021 um^2 (Yeap et al., IEDM 2019)
)


def _check_node(node_nm: float) -> None:
    if not MIN_NODE_NM <= node_nm <= MAX_NODE_NM:
        raise ValueError(f"technology node {node_nm} nm is outside the modelled range; use {MIN_NODE_NM}..{MAX_NODE_NM} nm")


def _log_interp(points: tuple[tuple[float, float], ...], node_nm: float) -> float:
    """Interpolate y(node) linearly in (log node, log y); `points` sorted by decreasing node."""
    for (n_hi, y_hi), (n_lo, y_lo) in zip(points, points[1:]):
        if n_lo <= node_nm <= n_hi:
            if node_nm == n_hi:
                return y_hi
            t = math.log(n_hi / node_nm) / math.log(n_hi / n_lo)
            return math.exp(math.log(y_hi) + t * (math.log(y_lo) - math.log(y_hi)))
    raise ValueError(f"technology node {node_nm} nm is outside the table")  # pragma: no cover (checked first)


@cache
def _energy_points() -> tuple[tuple[float, float], ...]:
    ref = next(n.energy_rel for n in _LOGIC_NODES if n.node_nm == REFERENCE_NODE_NM)
    pts = [(float(n.node_nm), n.energy_rel / ref) for n in _LOGIC_NODES]
    pts.append((5.0, pts[-1][1] * _N5_POWER_FACTOR))
    return tuple(pts)


@cache
def _area_points() -> tuple[tuple[float, float], ...]:
    pts = [(float(n.node_nm), n.area_vs_45nm) for n in _LOGIC_NODES]
    pts.append((5.0, pts[-1][1] / _N5_DENSITY_GAIN))
    return tuple(pts)


@cache
def energy_scale(node_nm: float) -> float:
    """Dynamic energy per operation at `node_nm` relative to 45 nm (1.0 at 45 nm)."""
    _check_node(node_nm)
    return _log_interp(_energy_points(), node_nm)


@cache
def logic_area_scale(node_nm: float) -> float:
    """Standard-cell logic area at `node_nm` relative to 45 nm (1.0 at 45 nm)."""
    _check_node(node_nm)
    return _log_interp(_area_points(), node_nm)


@cache
def sram_bitcell_um2(node_nm: float) -> float:
    """High-density 6T SRAM bitcell area at `node_nm`, um^2."""
    _check_node(node_nm)
    return _log_interp(tuple((float(n), a) for n, a in _SRAM_BITCELL_UM2), node_nm)


def energy_between_anchors(pj_at_45nm: float, pj_at_7nm: float, node_nm: float) -> float:
    """Energy at `node_nm` of an operation published as `pj_at_45nm` (Horowitz) and `pj_at_7nm` (TPUv4i).

    Between 7 and 45 nm: the power law through both published values. Below 7 nm or above 45 nm: the nearer
    published value times the Stillmaker & Baas energy factor from that node (see the module docstring).
    """
    _check_node(node_nm)
    if not (pj_at_45nm > 0 and pj_at_7nm > 0):
        raise ValueError(f"published energies must be positive, got {pj_at_45nm} pJ at 45 nm and {pj_at_7nm} pJ at 7 nm")
    lo, hi = ENERGY_ANCHOR_LOW_NM, ENERGY_ANCHOR_HIGH_NM
    if node_nm < lo:
        return pj_at_7nm * energy_scale(node_nm) / energy_scale(lo)
    if node_nm > hi:
        return pj_at_45nm * energy_scale(node_nm) / energy_scale(hi)
    exponent = math.log(pj_at_45nm / pj_at_7nm) / math.log(hi / lo)
    return pj_at_7nm * (node_nm / lo) ** exponent
