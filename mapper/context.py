"""What every mapper pass may read: the chip, the mapper options, and (for functional runs) the quantized model."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from chipsim.config import ChipConfig, Precision
from isa import Program
from workloads.quantized import QuantizedModel

Measure = Callable[[Program, ChipConfig], tuple[int, float]]  # a program's cycles and joules on a chip, timing only


class Race(Protocol):
    """The cycles of each of several programs on a chip, timing only, None for one stopped behind the fastest (not
    run to its end); with `stop`, all None where none has ended by that cycle (a later race continues them)."""

    def __call__(self, programs: Sequence[Program], chip: ChipConfig, *, stop: int | None = None) -> tuple[int | None, ...]: ...


def first_fastest(raced: Sequence[int | None]) -> int:
    """The index of a race's fastest program, the first of equals (None: stopped behind it)."""
    return min((c, i) for i, c in enumerate(raced) if c is not None)[1]


class Objective(enum.StrEnum):
    """What the mapping search minimises (`mapper.objective`): cycles, joules, or their product."""

    LATENCY = "latency"
    ENERGY = "energy"
    EDP = "edp"  # energy x delay

    def score(self, cycles: float, energy_j: float) -> float:
        return cycles if self is Objective.LATENCY else energy_j if self is Objective.ENERGY else cycles * energy_j

ALIGN_BYTES = 64  # SRAM and DRAM tensors start on 64-byte boundaries (a DMA burst)


@dataclass(frozen=True)
class MapperContext:
    chip: ChipConfig
    qmodel: QuantizedModel | None = None  # None: timing only (no values, scales 1.0)
    search_candidates: int = 512  # tilings the search may score per GEMM shape
    # The executor, handed in by the application (the mapper does not import it): the search runs its `recheck`
    # analytically cheapest tilings per GEMM shape as programs and keeps the fastest measured.
    measure: Measure | None = None
    recheck: int = 4
    # the same executor's race, where the objective is latency: only the fastest candidate is run to its end
    race: Race | None = None
    objective: Objective = Objective.LATENCY
    # mapper.on_chip may keep the attention's Q|K|V on chip (lower measures the program without it beside)
    attention_inputs_on_chip: bool = True

    @property
    def int8(self) -> bool:
        return self.chip.core.tensor_core.precision is Precision.INT8

    @property
    def q_itemsize(self) -> int:
        """Bytes of a matmul operand element: int8 or bf16."""
        return 1 if self.int8 else 2

    @property
    def cores(self) -> int:
        return self.chip.num_cores
