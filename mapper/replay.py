"""Identical kernels lowered once: a kernel whose emission on a core was seen before is replayed, not re-emitted.

The encoder layers of a BERT model are the same kernels over other weights. A kernel's instructions on a core
depend on its shapes, tiling, scales and work, on where its activations live (the same DRAM tensors or on-chip
regions in every layer: `x`, `xq`, `qkv`, `ctx`, `y`, `hq`), on the builder's state when it starts (semaphores
and buffers taken so far, the weight tile loaded ahead) and, through DMA addresses only, on where its parameters
lie in DRAM. So the first emission is recorded with every DMA address that falls in a parameter tensor written
as (which parameter, offset); a later kernel with the same key gets the recorded instructions with those
addresses moved to its own parameters. Every other instruction object is shared (instructions are immutable).

What the key leaves out cannot change the emission: kernel and parameter names (only error messages use them,
and an emission that raised is never recorded) and the layer and phase numbers. `emit(..., replay=False)`
lowers without it; tests/test_mapper.py checks both lower to the same program.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from isa import Instr, Opcode
from mapper.kernels import Kernel, KernelGraphFacts
from mapper.layout import Tensor, TensorRole
from mapper.sync import UNITS, CoreBuilder

if TYPE_CHECKING:
    from mapper.emit import Ahead

_ANONYMOUS = ("name", "layer", "phase")  # fields no emission depends on
_DMA = (Opcode.DMA_LD, Opcode.DMA_ST)

# what one unit's queue gained: the instructions as first emitted, and the DMA instructions among them whose
# address lies in a parameter: (position, parameter index, offset into that parameter)
Appended = tuple[tuple[Instr, ...], tuple[tuple[int, int, int], ...]]


@dataclass(frozen=True, slots=True)
class Operands:
    """The DRAM tensors a kernel's key names: its parameters (in key order) and the others (same in every layer)."""

    params: list[Tensor]
    others: tuple[Tensor, ...]


@dataclass(frozen=True, slots=True)
class _Recording:
    appended: tuple[Appended, ...]  # per unit (sync.UNITS order), what the emission appended
    end: tuple[int, ...]  # the builder's state afterwards (CoreBuilder.state)
    result: object  # what the emission returned


class KernelReplay:
    """The recorded emissions of one `emit` call (one chip, one kernel graph)."""

    def __init__(self, facts: KernelGraphFacts) -> None:
        assert facts.dram is not None
        self.tensors = facts.dram.tensors
        self._seen: dict[tuple[object, ...], _Recording | None] = {}  # None: seen, but not replayable
        self._kernels: dict[int, tuple[Kernel, tuple[object, ...], tuple[Tensor, ...], tuple[Tensor, ...]]] = {}  # by id
        self._on_chip = {t.tensor: t for t in facts.on_chip}
        self.hits = 0

    def _anon(self, value: object, params: list[Tensor], others: list[Tensor]) -> object:
        """A field value for the key: a parameter tensor's name becomes its index and shape; any other tensor's
        name stays, with where it lives on chip (if it does)."""
        if isinstance(value, str):
            t = self.tensors.get(value)
            if t is not None and t.role is TensorRole.PARAMETER:
                params.append(t)
                return (len(params) - 1, t.rows, t.cols, t.dtype)
            if t is not None:
                others.append(t)
            return (value, self._on_chip.get(value))
        if isinstance(value, tuple):
            return tuple(self._anon(v, params, others) for v in value)
        return value

    def key(self, k: Kernel, work: object, b: CoreBuilder, ahead: list[Ahead], fresh: int,
            pins: tuple[object, ...]) -> tuple[tuple[object, ...], Operands]:
        """The key of emitting `k` on `b`'s core with `ahead` (later GEMMs' weight tiles, mapper.emit.Ahead: the
        parameter, slot and tile of each; the last `fresh` into slots kept from now on) to place in its DMA queue,
        the slots kept then (`pins`, relative to this kernel); and the kernel's tensors."""
        known = self._kernels.get(id(k))
        if known is None or known[0] is not k:  # the same for every core: worked out once per kernel
            ps: list[Tensor] = []
            os_: list[Tensor] = []
            fields = tuple(self._anon(getattr(k, f.name), ps, os_) for f in dataclasses.fields(k) if f.name not in _ANONYMOUS)
            known = self._kernels[id(k)] = (k, fields, tuple(ps), tuple(os_))
        _, fields, kernel_params, others = known
        params = list(kernel_params)
        pre: list[object] = []
        for a in ahead:
            t = self.tensors[a.w]
            if t not in params:
                params.append(t)
            pre.append((params.index(t), t.rows, t.cols, t.dtype, a.sram_addr, a.k0, a.n0, a.rows, a.cols))
        start = (b.core, b.slots, b.slots_loaded, b.preloaded, pins, fresh, b.handoff, b.handoff_rows, b.feeding, b.reserved_acc, b.head_rounds, b.reserved_top, *b.state(), *(len(b.queues[u]) for u in UNITS))
        return (type(k), fields, work, tuple(pre), start), Operands(params, others)

    def run(self, emit: Callable[[], object], b: CoreBuilder, key: tuple[object, ...], tensors: Operands) -> object:
        """`emit()` (which appends to `b`'s queues) or, for a key seen before, its recorded effect on `b`."""
        rec = self._seen.get(key, False)
        if isinstance(rec, _Recording):
            self.hits += 1
            params = tensors.params
            for u, (instrs, moved) in zip(UNITS, rec.appended):
                q = b.queues[u]
                n = len(q)
                q.extend(instrs)
                for pos, j, offset in moved:
                    q[n + pos] = instrs[pos].at_dram(params[j].addr + offset)
            b.set_state(rec.end)
            return rec.result
        lens = [len(b.queues[u]) for u in UNITS]
        result = emit()
        if rec is False:
            appended = tuple(self._entries(b.queues[u][n:], tensors) for u, n in zip(UNITS, lens))
            self._seen[key] = None if any(a is None for a in appended) else _Recording(appended, b.state(), result)  # type: ignore[arg-type]
        return result

    @staticmethod
    def _entries(instrs: list[Instr], tensors: Operands) -> Appended | None:
        """Instructions with their parameter addresses made relative; None if a DMA address lies in no tensor the
        key names (nothing then says it would be the same for another kernel)."""
        moved: list[tuple[int, int, int]] = []
        params = tensors.params
        for pos, i in enumerate(instrs):
            if i[0] not in _DMA:
                continue
            addr = i.dram_addr
            hit = next((j for j, t in enumerate(params) if t.addr <= addr < t.addr + t.nbytes), None)
            if hit is not None:
                moved.append((pos, hit, addr - params[hit].addr))
            elif not any(t.addr <= addr < t.addr + t.nbytes for t in tensors.others):
                return None
        return tuple(instrs), tuple(moved)
