"""The chip's bound: the fewest cycles any program could take for a given amount of work on this chip.

It is the most binding of three throughput limits of the whole chip, each a rate from the chip config:
- compute: MACs / (PEs x cores) per cycle;
- DRAM: compulsory bytes / DRAM bytes per cycle, where compulsory means what must cross the pins at least once
  whatever the schedule (every parameter and input read once, every output written once), not what a
  particular program moves;
- vector: the lane-ops the model's non-matmul math needs (softmax, LayerNorm, GELU, residual adds), each at its
  kind's issue interval, spread over every lane of every core.
The program's own roofline (chipsim.stats.Roofline) uses the bytes the program moved, so a wasteful program
raises it; this bound does not move with the program, so `bound / cycles` measures the schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chipsim.config import ChipConfig, VectorOp


@dataclass(frozen=True, slots=True)
class ChipBound:
    compute_cycles: float  # MACs / peak MACs per cycle
    dram_cycles: float  # compulsory DRAM bytes / DRAM bytes per cycle
    vector_cycles: float  # compulsory vector lane-ops x issue interval / (lanes x cores)

    @property
    def bound_cycles(self) -> float:
        return max(self.compute_cycles, self.dram_cycles, self.vector_cycles)

    @property
    def limiter(self) -> str:
        """Which limit binds: `compute`, `dram` or `vector`."""
        best = self.bound_cycles
        return "compute" if best == self.compute_cycles else "dram" if best == self.dram_cycles else "vector"


def vector_lane_cycles(chip: ChipConfig, lane_ops: Mapping[VectorOp, int]) -> float:
    """Cycles of `lane_ops` (element-ops by kind) with every lane of every core busy, no rounding to lane-groups
    (chipsim.timing.vector_cycles rounds each instruction up to whole lane-groups; this is its lower bound)."""
    cpo = chip.core.vector.cycles_per_op
    lanes = chip.core.vector.lanes * chip.num_cores
    return sum(n * cpo.cycles(op) for op, n in lane_ops.items()) / lanes


def chip_bound(chip: ChipConfig, *, macs: int, dram_bytes: int, vector_lane_ops: Mapping[VectorOp, int]) -> ChipBound:
    return ChipBound(
        compute_cycles=macs / chip.peak_macs_per_cycle,
        dram_cycles=dram_bytes / chip.dram_bytes_per_cycle,
        vector_cycles=vector_lane_cycles(chip, vector_lane_ops),
    )
