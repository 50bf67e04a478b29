"""A whole-chip program: one instruction tuple per core of a mesh, cores numbered row-major."""

from __future__ import annotations

from dataclasses import dataclass

from isa.errors import IsaError
from isa.instr import Instr
from isa.opcodes import CORE_BITS

MAX_CORES = 1 << CORE_BITS  # NOC_SEND / NOC_RECV name a core in CORE_BITS bits: a mesh holds at most this many
MAX_MESH_DIM = MAX_CORES  # a 1 x 4096 mesh is the longest


@dataclass(frozen=True, slots=True)
class Program:
    """`cores[c]` is the instruction stream of core c = y * mesh_cols + x."""

    cores: tuple[tuple[Instr, ...], ...]
    mesh_rows: int = 1
    mesh_cols: int = 1

    def __post_init__(self) -> None:
        for name in ("mesh_rows", "mesh_cols"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_MESH_DIM:
                raise IsaError(f"Program {name} must be an integer in 1..{MAX_MESH_DIM}, got {v!r}.")
        if self.mesh_rows * self.mesh_cols > MAX_CORES:
            raise IsaError(f"Program mesh {self.mesh_rows}x{self.mesh_cols} has more than the ISA's {MAX_CORES} cores.")
        if not isinstance(self.cores, tuple) or not all(isinstance(c, tuple) for c in self.cores):
            raise IsaError("Program cores must be a tuple of per-core instruction tuples.")
        if len(self.cores) != self.mesh_rows * self.mesh_cols:
            raise IsaError(
                f"Program has {len(self.cores)} core programs but a {self.mesh_rows}x{self.mesh_cols} mesh has "
                f"{self.mesh_rows * self.mesh_cols} cores."
            )
        for c, instrs in enumerate(self.cores):
            if all(issubclass(t, Instr) for t in set(map(type, instrs))):  # a few classes for many instructions
                continue
            idx, instr = next((i, x) for i, x in enumerate(instrs) if not isinstance(x, Instr))
            raise IsaError(f"core {c} instruction {idx} is {type(instr).__name__}, not an isa instruction.")

    @property
    def num_cores(self) -> int:
        return self.mesh_rows * self.mesh_cols

    @property
    def num_instructions(self) -> int:
        return sum(len(c) for c in self.cores)

    def __str__(self) -> str:
        from isa.asm import format_program

        return format_program(self)
