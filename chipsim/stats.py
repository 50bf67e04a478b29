"""What a run of the executor reports: cycles, per-unit busy and stall time, MACs, utilization, event counts,
energy, area, the program's roofline, per-phase statistics, per-instruction start/end cycles and (optionally) a
timeline.

Definitions (the executor fills these; tests pin them):
- `cycles`: from cycle 0 to the completion of the last instruction of any unit of any core.
- A unit is *busy* from the start to the end of each of its instructions (a DMA unit with several engines:
  while at least one transfer is in flight). Its *stall* cycles by cause count the time it could not make
  progress at its own rate, either waiting before an instruction could start or inside a stretched one:
  `dram` (a transfer stretched beyond its DMA engine's own rate by the DRAM channel: its bandwidth, and
  other cores' bytes queued ahead), `noc` (a SEND waiting for busy links,
  a RECV waiting for bytes in flight), `dependency` (WAIT on a semaphore, RECV before its SEND was issued,
  BARRIER), `structural` (an SRAM port slower than the array or lanes; a DMA waiting for a free engine).
- `utilization` = useful MACs / (PEs per core x cores x cycles): over all cores of the chip, idle ones included.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from isa import Unit


class StallCause(enum.Enum):
    DRAM = "dram"
    NOC = "noc"
    DEPENDENCY = "dependency"
    STRUCTURAL = "structural"


@dataclass(frozen=True, slots=True)
class UnitStats:
    """One unit of one core over a run."""

    unit: Unit
    instructions: int  # instructions of this unit's queue that ran (SIGNAL/WAIT/BARRIER included)
    busy_cycles: int
    stall_dram_cycles: int
    stall_noc_cycles: int
    stall_dependency_cycles: int
    stall_structural_cycles: int

    def stall_cycles(self, cause: StallCause) -> int:
        value: int = getattr(self, f"stall_{cause.value}_cycles")
        return value

    @property
    def total_stall_cycles(self) -> int:
        return sum(self.stall_cycles(c) for c in StallCause)


@dataclass(frozen=True, slots=True)
class CoreStats:
    core: int
    finish_cycle: int  # completion of the core's last instruction
    macs: int  # useful MACs (m * k * n summed over its MATMULs)
    units: tuple[UnitStats, ...]  # DMA, MXU, VEC, NOC in that order

    def unit(self, unit: Unit) -> UnitStats:
        return self.units[int(unit)]


@dataclass(frozen=True, slots=True)
class Roofline:
    """Lower bounds on the run's cycles from each shared throughput; `bound_cycles` is the largest."""

    compute_cycles: float  # useful MACs / peak MACs per cycle of the whole chip
    dram_cycles: float  # DRAM bytes / DRAM bytes per cycle
    noc_cycles: float  # byte-hops / (directed links x link bytes per cycle)

    @property
    def bound_cycles(self) -> float:
        return max(self.compute_cycles, self.dram_cycles, self.noc_cycles)

    @property
    def limiter(self) -> str:
        """Which resource sets the bound: `compute`, `dram` or `noc`."""
        best = self.bound_cycles
        return "compute" if best == self.compute_cycles else "dram" if best == self.dram_cycles else "noc"


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """One barrier-delimited phase of a run (phase k ends at barrier k; the last runs from the last barrier to
    the end). The executor counts these as it runs; phases partition the run, so their cycles, events and
    energies sum to the run's."""

    index: int
    start_cycle: int  # release of the previous barrier (0 for the first phase)
    end_cycle: int  # release of this phase's barrier (the run's last cycle for the last phase)
    macs: int
    events: Mapping[str, int]  # chipsim.energy.Event value -> count, global-buffer hits applied
    energy_j: Mapping[str, float]  # chipsim.energy.Component value -> joules over this phase, `total` their sum
    busy_cycles: tuple[tuple[int, ...], ...]  # per core, per unit (DMA, MXU, VEC, NOC)
    stall_cycles: Mapping[str, int]  # StallCause value -> cycles, summed over every unit of every core

    @property
    def cycles(self) -> int:
        return self.end_cycle - self.start_cycle


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One instruction on one unit's timeline (for chipsim.app.trace)."""

    core: int
    unit: Unit
    index: int  # instruction index in the core's program
    name: str  # the opcode mnemonic
    start_cycle: int
    end_cycle: int


@dataclass(frozen=True, slots=True, eq=False)
class RunResult:
    """Everything one `chipsim.executor.execute` call measured."""

    chip_name: str
    functional: bool
    cycles: int
    clock_mhz: float
    instructions: int  # instructions executed over all cores (up to and including each HALT)
    cores: tuple[CoreStats, ...]
    useful_macs: int
    peak_macs_per_cycle: int  # whole chip
    utilization: float
    events: Mapping[str, int]  # chipsim.energy.Event value -> count
    energy_j: Mapping[str, float]  # chipsim.energy.Component value -> joules, `total` their sum
    area_mm2: Mapping[str, float]  # chipsim.area.AreaComponent value -> mm^2, `total` their sum
    roofline: Roofline
    instr_start: tuple[np.ndarray, ...]  # per core, int64 start cycle of each instruction (-1: never ran)
    instr_end: tuple[np.ndarray, ...]  # per core, int64 end cycle of each instruction (-1: never ran)
    trace: tuple[TraceEvent, ...] | None  # present when execute(..., trace=True)
    phases: tuple[PhaseStats, ...]  # barrier-delimited phases in order; they partition the run
    replayed_phases: int = 0  # phases not simulated but replayed from an identical one (chipsim.executor)

    @property
    def dram_read_bytes(self) -> int:
        return self.events.get("dram_read_bytes", 0)

    @property
    def dram_write_bytes(self) -> int:
        return self.events.get("dram_write_bytes", 0)

    @property
    def latency_s(self) -> float:
        return self.cycles / (self.clock_mhz * 1e6)

    @property
    def energy_total_j(self) -> float:
        return self.energy_j["total"]

    def unit_stats(self, core: int, unit: Unit) -> UnitStats:
        return self.cores[core].units[int(unit)]
