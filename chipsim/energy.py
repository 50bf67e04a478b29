"""Energy: per-event dynamic energies (pJ) and leakage power (W) of a chip, and a run's energy by component.

The executor counts `Event`s (MACs, SRAM bytes, DRAM bytes, NoC byte-hops, vector lane-ops by kind);
`energy_breakdown(events, cycles, chip)` turns the counts and the run's cycles into joules per component.

Every arithmetic and SRAM energy is quoted at the two nodes where one consistent table was published: 45 nm
(M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014) and 7 nm (N. P. Jouppi et
al., "Ten Lessons From Three Generations Shaped Google's TPUv4i", ISCA 2021, Table 2: the same operations
re-evaluated on Google's 7 nm design flow; SRAM energies per 64-bit access). `chipsim.technology.
energy_between_anchors` takes them to the chip's node (a power law between the two, Stillmaker & Baas beyond).
Where the sources disagree: scaling Horowitz's 45 nm figures by the Stillmaker & Baas logic factor (0.047x from
45 to 7 nm, a projection) gives an int8 MAC of 0.014 pJ and an 8 KB SRAM read of 0.47 pJ; the TPUv4i
table, measured at 7 nm, gives 0.10 pJ and 7.5 pJ. We use the TPUv4i table at 7 nm because it is a published
evaluation at the node rather than a projection, and the projection is known to miss that SRAM and wire
energy scaled far less than logic (the paper's point). DRAM and NoC energies come from the config as given
(interface and wire energies the architect states for the chip, not scaled).

What is and is not counted: the MAC energy is the arithmetic (multiplier + accumulator adder); operand
movement is counted where it happens, as SRAM bytes (scratchpad reads, accumulator read/write). Clock tree,
control and the PE pipeline registers are not modelled separately.
"""

from __future__ import annotations

import enum
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from chipsim.config import ChipConfig, Precision, VectorOp
from chipsim.technology import energy_between_anchors, energy_scale


class Event(enum.StrEnum):
    """What the executor counts. Values are the keys of the counts mapping (and of result records)."""

    MAC_INT8 = "mac_int8"  # one int8 x int8 -> int32 multiply-accumulate
    MAC_BF16 = "mac_bf16"  # one bf16 x bf16 -> fp32 multiply-accumulate
    SPAD_READ_BYTES = "spad_read_bytes"
    SPAD_WRITE_BYTES = "spad_write_bytes"
    ACC_READ_BYTES = "acc_read_bytes"
    ACC_WRITE_BYTES = "acc_write_bytes"
    GBUF_READ_BYTES = "gbuf_read_bytes"
    GBUF_WRITE_BYTES = "gbuf_write_bytes"
    DRAM_READ_BYTES = "dram_read_bytes"
    DRAM_WRITE_BYTES = "dram_write_bytes"
    NOC_BYTE_HOPS = "noc_byte_hops"  # bytes x links crossed
    VEC_ADD_LANE_OPS = "vec_add_lane_ops"  # one element of one vector op on one lane, by kind:
    VEC_MUL_LANE_OPS = "vec_mul_lane_ops"
    VEC_MAX_LANE_OPS = "vec_max_lane_ops"
    VEC_EXP_LANE_OPS = "vec_exp_lane_ops"
    VEC_GELU_LANE_OPS = "vec_gelu_lane_ops"
    VEC_RSQRT_LANE_OPS = "vec_rsqrt_lane_ops"
    VEC_RECIP_LANE_OPS = "vec_recip_lane_ops"
    VEC_REDUCE_LANE_OPS = "vec_reduce_lane_ops"
    VEC_QUANT_LANE_OPS = "vec_quant_lane_ops"
    VEC_CONVERT_LANE_OPS = "vec_convert_lane_ops"


def vector_event(op: VectorOp) -> Event:
    """The lane-op event of a vector op kind (`VectorOp.EXP` -> `Event.VEC_EXP_LANE_OPS`)."""
    return Event(f"vec_{op.value}_lane_ops")


def mac_event(precision: Precision) -> Event:
    return Event.MAC_INT8 if precision is Precision.INT8 else Event.MAC_BF16


class Component(enum.StrEnum):
    """The parts of `energy_breakdown`; TOTAL is their sum."""

    MAC = "mac"
    SRAM = "sram"
    DRAM = "dram"
    NOC = "noc"
    VECTOR = "vector"
    LEAKAGE = "leakage"
    TOTAL = "total"


_EVENT_COMPONENT: Mapping[Event, Component] = types.MappingProxyType(
    {
        Event.MAC_INT8: Component.MAC,
        Event.MAC_BF16: Component.MAC,
        Event.SPAD_READ_BYTES: Component.SRAM,
        Event.SPAD_WRITE_BYTES: Component.SRAM,
        Event.ACC_READ_BYTES: Component.SRAM,
        Event.ACC_WRITE_BYTES: Component.SRAM,
        Event.GBUF_READ_BYTES: Component.SRAM,
        Event.GBUF_WRITE_BYTES: Component.SRAM,
        Event.DRAM_READ_BYTES: Component.DRAM,
        Event.DRAM_WRITE_BYTES: Component.DRAM,
        Event.NOC_BYTE_HOPS: Component.NOC,
        **{vector_event(op): Component.VECTOR for op in VectorOp},
    }
)

# ---- Published arithmetic energies, pJ per operation: 45 nm (Horowitz, ISSCC 2014) and 7 nm (Jouppi et al.,
# ISCA 2021, Table 2) --------------------------------------------------------------------------------------
INT8_MULT_PJ_45NM, INT8_MULT_PJ_7NM = 0.2, 0.07  # 8-bit integer multiply
INT32_ADD_PJ_45NM, INT32_ADD_PJ_7NM = 0.1, 0.03  # 32-bit integer add (the int8 MAC's accumulator)
FP16_MULT_PJ_45NM, FP16_MULT_PJ_7NM = 1.1, 0.34  # 16-bit IEEE float multiply
FP32_ADD_PJ_45NM, FP32_ADD_PJ_7NM = 0.9, 0.38  # 32-bit float add (the bf16 MAC's accumulator; vector lanes)
FP32_MULT_PJ_45NM, FP32_MULT_PJ_7NM = 3.7, 1.31  # 32-bit float multiply (vector lanes)
BF16_MULT_PJ_7NM = 0.21  # bfloat16 multiply, 7 nm (Jouppi et al., Table 2; Horowitz has no bf16 row)
# Horowitz has no bf16 multiply: its 45 nm value is the 7 nm one scaled by the fp16 multiplier's published
# 45-to-7 nm ratio (1.1 / 0.34), the nearest operation with both values. 0.68 pJ.
BF16_MULT_PJ_45NM = BF16_MULT_PJ_7NM * FP16_MULT_PJ_45NM / FP16_MULT_PJ_7NM

MAC_INT8_PJ_45NM = INT8_MULT_PJ_45NM + INT32_ADD_PJ_45NM  # int8 multiply, int32 accumulate: 0.3 pJ
MAC_INT8_PJ_7NM = INT8_MULT_PJ_7NM + INT32_ADD_PJ_7NM  # 0.10 pJ
MAC_BF16_PJ_45NM = BF16_MULT_PJ_45NM + FP32_ADD_PJ_45NM  # bf16 multiply, fp32 accumulate: 1.58 pJ
MAC_BF16_PJ_7NM = BF16_MULT_PJ_7NM + FP32_ADD_PJ_7NM  # 0.59 pJ

# ---- SRAM: energy of one 64-bit read by array size, both tables: 8 KB 10 / 7.5 pJ, 32 KB 20 / 8.5 pJ,
# 1 MB 100 / 14 pJ (45 nm / 7 nm). At a node, each size's energy is taken there by the node law; between sizes
# we interpolate in log-log. No published point lies outside [8 KB, 1 MB]: above 1 MB we extend with the slope
# of the last segment at that node (0.14 at 7 nm, 0.46 at 45 nm, the sqrt(size) growth of bitline and wordline
# length CACTI shows for 45 nm arrays); below 8 KB we keep the 8 KB energy (periphery dominates small arrays,
# and the two tables' first-segment slopes, 0.09 and 0.5, disagree too much to extrapolate). Writes are taken
# to cost the same as reads (both tables quote one access energy; CACTI's read and write dynamic energies are
# of the same order for these sizes). An access touches one bank, so the size is the bank's (the tables' KB
# taken as KiB).
SRAM_ACCESS_BYTES = 8  # the tables' access width, 64 bits
SRAM_ANCHORS_KIB_PJ_45NM_7NM: tuple[tuple[float, float, float], ...] = ((8.0, 10.0, 7.5), (32.0, 20.0, 8.5), (1024.0, 100.0, 14.0))

# Vector lane-op energy, from the count of fp32 multiplies and adds each op kind takes (our decomposition of
# typical implementations: range reduction + ~7-term polynomial for exp; an ~8-term erf polynomial plus
# 3 mul + 1 add for GELU; a table seed + 3 Newton steps for rsqrt (3 mul + 1 add each) and recip (2 mul +
# 1 add each); max, reduce and int/float conversion cost about one fp32 add; quantize is a multiply and a
# round). Operand reads and writes are SRAM events, counted separately. The fp32 multiply and add energies
# are the two tables' (above), taken to the node by the same law.
VECTOR_OP_MULS_ADDS: Mapping[VectorOp, tuple[int, int]] = types.MappingProxyType(
    {
        VectorOp.ADD: (0, 1),
        VectorOp.MUL: (1, 0),
        VectorOp.MAX: (0, 1),
        VectorOp.EXP: (7, 7),
        VectorOp.GELU: (11, 9),
        VectorOp.RSQRT: (9, 3),
        VectorOp.RECIP: (6, 3),
        VectorOp.REDUCE: (0, 1),
        VectorOp.QUANT: (1, 1),
        VectorOp.CONVERT: (0, 1),
    }
)

# ---- Leakage ---------------------------------------------------------------------------------------------
# SRAM: 25 mW per MiB at 45 nm with low-leakage cells, the order of magnitude CACTI 6.5 (Muralimanohar et
# al., HPL-2009-85) reports for 45 nm LOP/LSTP arrays of this size; scaled with the node like dynamic energy
# (as Accelergy's technology-scaling plug-in does for leakage). A coarse figure: leakage is a small term for
# the chips here, and this lets it grow with SRAM capacity and idle time as it should.
SRAM_LEAKAGE_MW_PER_MIB_45NM = 25.0
# Logic (PE array, vector lanes): a fraction of the logic's peak dynamic power. 10% is the low end of the
# 10-30% static share of total power reported for recent CMOS logic (N. S. Kim et al., "Leakage current:
# Moore's law meets static power", IEEE Computer 36(12), 2003, projecting the sub-100 nm trend).
LOGIC_LEAKAGE_FRACTION_OF_PEAK = 0.10


def sram_pj_per_byte(bank_kib: float, technology_nm: float) -> float:
    """Dynamic energy per byte accessed in an SRAM bank of `bank_kib` KiB at `technology_nm`."""
    if not bank_kib > 0:
        raise ValueError(f"SRAM bank size {bank_kib} KiB is not positive; give a size > 0")
    anchors = tuple(
        (size, energy_between_anchors(pj45, pj7, technology_nm) / SRAM_ACCESS_BYTES) for size, pj45, pj7 in SRAM_ANCHORS_KIB_PJ_45NM_7NM
    )
    bank_kib = max(bank_kib, anchors[0][0])
    segment = 0
    while segment < len(anchors) - 2 and bank_kib > anchors[segment + 1][0]:
        segment += 1
    (s0, e0), (s1, e1) = anchors[segment], anchors[segment + 1]
    slope = math.log(e1 / e0) / math.log(s1 / s0)
    return e0 * math.exp(slope * math.log(bank_kib / s0))


def vector_lane_op_pj(op: VectorOp, technology_nm: float) -> float:
    muls, adds = VECTOR_OP_MULS_ADDS[op]
    mul_pj = energy_between_anchors(FP32_MULT_PJ_45NM, FP32_MULT_PJ_7NM, technology_nm)
    add_pj = energy_between_anchors(FP32_ADD_PJ_45NM, FP32_ADD_PJ_7NM, technology_nm)
    return muls * mul_pj + adds * add_pj


def mac_op_pj(precision: Precision, technology_nm: float) -> float:
    """Energy of one multiply-accumulate of `precision` at `technology_nm` (arithmetic only)."""
    if precision is Precision.INT8:
        return energy_between_anchors(MAC_INT8_PJ_45NM, MAC_INT8_PJ_7NM, technology_nm)
    return energy_between_anchors(MAC_BF16_PJ_45NM, MAC_BF16_PJ_7NM, technology_nm)


@dataclass(frozen=True, slots=True)
class EnergyModel:
    """Per-event energies (pJ) and leakage power (W) of one chip. Build it with `EnergyModel.of(chip)`."""

    technology_nm: int
    node_energy_scale: float  # dynamic energy relative to 45 nm
    event_pj: Mapping[Event, float]  # energy of one unit of each event (one MAC, one byte, one byte-hop...)
    sram_leakage_w: float
    logic_leakage_w: float

    @property
    def leakage_w(self) -> float:
        return self.sram_leakage_w + self.logic_leakage_w

    @property
    def mac_int8_pj(self) -> float:
        return self.event_pj[Event.MAC_INT8]

    @property
    def mac_bf16_pj(self) -> float:
        return self.event_pj[Event.MAC_BF16]

    def pj(self, event: Event) -> float:
        return self.event_pj[event]

    @staticmethod
    def of(chip: ChipConfig) -> EnergyModel:
        return _energy_model(chip)


@cache
def _energy_model(chip: ChipConfig) -> EnergyModel:
    node = chip.technology_nm
    scale = energy_scale(node)
    core = chip.core
    spad_pj = sram_pj_per_byte(core.scratchpad.bank_kib, node)
    acc_pj = sram_pj_per_byte(core.accumulator.bank_kib, node)
    # The global buffer has no bank count in the config: it is taken as 1 MiB banks (or one bank if smaller).
    gbuf = chip.global_buffer
    gbuf_pj = sram_pj_per_byte(min(float(gbuf.size_kib), 1024.0), node) if gbuf is not None else 0.0
    dram_pj_per_byte = chip.dram.energy_pj_per_bit * 8
    event_pj: dict[Event, float] = {
        Event.MAC_INT8: mac_op_pj(Precision.INT8, node),
        Event.MAC_BF16: mac_op_pj(Precision.BF16, node),
        Event.SPAD_READ_BYTES: spad_pj,
        Event.SPAD_WRITE_BYTES: spad_pj,
        Event.ACC_READ_BYTES: acc_pj,
        Event.ACC_WRITE_BYTES: acc_pj,
        Event.GBUF_READ_BYTES: gbuf_pj,
        Event.GBUF_WRITE_BYTES: gbuf_pj,
        Event.DRAM_READ_BYTES: dram_pj_per_byte,
        Event.DRAM_WRITE_BYTES: dram_pj_per_byte,
        Event.NOC_BYTE_HOPS: chip.noc.energy_pj_per_byte_hop,
    }
    for op in VectorOp:
        event_pj[vector_event(op)] = vector_lane_op_pj(op, node)

    sram_mib = chip.num_cores * (core.scratchpad.size_kib + core.accumulator.size_kib) / 1024
    if gbuf is not None:
        sram_mib += gbuf.size_kib / 1024
    sram_leakage_w = sram_mib * SRAM_LEAKAGE_MW_PER_MIB_45NM * 1e-3 * scale
    mac_pj = event_pj[mac_event(core.tensor_core.precision)]
    peak_logic_pj_per_cycle = chip.num_cores * (chip.pes_per_core * mac_pj + core.vector.lanes * event_pj[Event.VEC_ADD_LANE_OPS])
    logic_leakage_w = LOGIC_LEAKAGE_FRACTION_OF_PEAK * peak_logic_pj_per_cycle * 1e-12 * chip.clock_hz
    return EnergyModel(
        technology_nm=node,
        node_energy_scale=scale,
        event_pj=types.MappingProxyType(event_pj),
        sram_leakage_w=sram_leakage_w,
        logic_leakage_w=logic_leakage_w,
    )


def _as_event(key: str) -> Event:
    try:
        return Event(key)
    except ValueError:
        raise ValueError(f"unknown energy event {key!r}; valid events are " + ", ".join(e.value for e in Event)) from None


def energy_breakdown(events: Mapping[str, float], cycles: float, chip: ChipConfig) -> dict[str, float]:
    """Joules by component (mac, sram, dram, noc, vector, leakage) and their sum as `total`.

    `events` maps `Event` values to counts (missing events count zero); `cycles` is the run's length in core
    clock cycles, over which every component leaks. `total` is computed as the left-to-right sum of the other
    entries in the order returned, so summing them gives `total` exactly.
    """
    if not (math.isfinite(cycles) and cycles >= 0):
        raise ValueError(f"cycles must be a finite number >= 0, got {cycles!r}")
    model = EnergyModel.of(chip)
    parts: dict[str, float] = {c.value: 0.0 for c in Component if c is not Component.TOTAL}
    for key, count in events.items():
        event = _as_event(key)
        if not (math.isfinite(count) and count >= 0):
            raise ValueError(f"event {event.value!r} has count {count!r}; counts must be finite and >= 0")
        if count and chip.global_buffer is None and event in (Event.GBUF_READ_BYTES, Event.GBUF_WRITE_BYTES):
            raise ValueError(f"event {event.value!r} counted on chip {chip.name!r}, which has no global buffer")
        parts[_EVENT_COMPONENT[event].value] += count * model.event_pj[event] * 1e-12
    parts[Component.LEAKAGE.value] = model.leakage_w * cycles / chip.clock_hz
    total = 0.0
    for value in parts.values():
        total += value
    parts[Component.TOTAL.value] = total
    return parts
