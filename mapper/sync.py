"""Per-core program building: unit queues, semaphore channels between units, and scratchpad allocation.

A `Channel` is a ring of buffer slots between a producer unit and a consumer unit, guarded by two counting
semaphores: the producer WAITs `free` before it overwrites a slot it used before and SIGNALs `full` when the
slot holds data; the consumer WAITs `full` before reading and SIGNALs `free` when done (any unit may release,
e.g. DMA after storing an accumulator tile). Both sides take the slots in ring order, so one count per
direction is enough. `drain` consumes the outstanding `free` signals, so every semaphore is back to zero at the
end of a kernel and a later kernel can reuse the indices.

Instructions are appended to one queue per unit; only the order within a unit matters (units run
concurrently and meet through semaphores), which is how loads are scheduled ahead of compute: the DMA queue
holds the loads of item i+1 (up to i+3, `interleave`) before the store of item i. A `Pin` keeps weight slots at
the top of the scratchpad for a later GEMM across barriers, so earlier kernels can fill them (mapper.emit).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from isa import Barrier, Instr, Mem, Signal, Unit, Wait
from isa.semantics import NUM_SEMAPHORES
from mapper.context import ALIGN_BYTES
from mapper.errors import MapperError
from mapper.place import HeadOwners

UNITS = (Unit.DMA, Unit.MXU, Unit.VEC, Unit.NOC)


@functools.cache
def _sync(cls: type[Instr], unit: Unit, sem: int) -> Instr:
    """SIGNAL / WAIT instructions are immutable and few: each (unit, semaphore) pair is built once and shared."""
    return cls(unit=unit, sem=sem)


@dataclass(frozen=True, slots=True)
class Buf:
    mem: Mem
    addr: int


def top_address(size_bytes: int, nbytes: int) -> int:
    """The aligned address of an `nbytes` buffer ending at most at `size_bytes`."""
    return (size_bytes - nbytes) // ALIGN_BYTES * ALIGN_BYTES


class SramAllocator:
    """Bump allocation of one phase's buffers in one SRAM; capacity checked (the tiling pass sized them)."""

    def __init__(self, mem: Mem, size_bytes: int) -> None:
        self.mem, self.size, self.top = mem, size_bytes, 0

    def take_top(self, nbytes: int, what: str, at: int | None = None) -> Buf:
        """A buffer at the very top of the memory (below what is reserved), or at `at` below it: where the previous
        kernel may have loaded it ahead (mapper.emit's weight prefetch); later `take`s stay below it."""
        addr = top_address(self.size, nbytes) if at is None else at
        if addr < self.top:
            raise MapperError(f"{what} overflows the {self.mem.name.lower()} ({self.top + nbytes} B needed, {self.size} B available).")
        self.size = addr
        return Buf(self.mem, addr)

    def take(self, nbytes: int, what: str) -> Buf:
        addr = self.top
        self.top += -(-nbytes // ALIGN_BYTES) * ALIGN_BYTES
        if self.top > self.size:
            raise MapperError(f"{what} overflows the {self.mem.name.lower()} ({self.top} B needed, {self.size} B available).")
        return Buf(self.mem, addr)


@dataclass
class Pin:
    """Weight slots kept at the top of the scratchpad for a later GEMM, which earlier kernels fill ahead."""

    at: int  # the GEMM's position in the kernel order
    slots: tuple[int, ...]  # its weight slot addresses, slot 0 highest
    loaded: int  # its first tiles already loaded into slots 0, 1, ...


@dataclass
class CoreBuilder:
    """One core's program under construction, phase by phase."""

    core: int
    spad_bytes: int
    acc_bytes: int
    program: list[Instr] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    queues: dict[Unit, list[Instr]] = field(default_factory=dict)
    next_sem: int = 0
    spad: SramAllocator | None = None
    acc: SramAllocator | None = None
    # weight prefetch across barriers: DMA loads of later GEMMs' first weight tiles for the current kernel's emitter
    # to issue early in its DMA queue; the slots kept for later GEMMs; and the current GEMM's kept slots, if any,
    # with how many of its first tiles are in them already
    prefetch: list[Instr] = field(default_factory=list)
    split_prefetch: bool = False  # cut them in row pieces over the items (mapper.emit._issue_prefetch)
    prefetch_places: int = 0  # the places the last emitter had for them among items with loads of their own
    pins: list[Pin] = field(default_factory=list)
    slots: tuple[int, ...] | None = None
    slots_loaded: int = 0
    # the array holds the current GEMM's first weight fold, put there by an LDW before the barrier (mapper.emit)
    preloaded: bool = False
    # a GEMM handing its fp32 rows to the LayerNorm after it in one phase (mapper.emit): that LayerNorm's items on
    # every core, and the semaphore by which this core's NoC unit tells its vector unit that an item's rows are in
    handoff_rows: tuple[tuple[tuple[int, int], ...], ...] | None = None
    handoff: int = -1
    # the fused projection sharing a phase with the attention after it (mapper.emit): it sends its tiles in rounds
    # (its r-th tile on every core), each head block only to the core running that head (`feeding`), each core's
    # NoC unit signalling `handoff` once a round is in; and, for that attention, per item on this core the round
    # whose receives it needs, and how many rounds there are
    feeding: HeadOwners | None = None
    head_rounds: tuple[tuple[int, ...], int] | None = None
    reserved_acc: int = 0  # accumulator bytes the GEMM leaves free for the kernel after it in its phase
    # what an emitter says of where its work lies in the MXU and VEC queues (mapper.emit, `_merge_heads`): set by the
    # emitter, returned with the emission (so a replayed one has it too), offsets from the emission's start
    marks: tuple[object, ...] | None = None
    # per unit, the (start, end) ranges of the second kernel's instructions moved in among the first's
    moved: dict[Unit, list[tuple[int, int]]] = field(default_factory=dict)
    # while that LayerNorm (or attention) is emitted: the lowest scratchpad address the GEMM's buffers reach from the
    # top (the LayerNorm's buffers and the weight slots it keeps for later GEMMs stay below it), and the GEMM's closing
    # WAITs (Channel.drain), put back at the end of the phase so that the LayerNorm's loads need not wait for them
    reserved_top: int | None = None
    closing: dict[Unit, list[Instr]] = field(default_factory=dict)
    handed: dict[Unit, int] = field(default_factory=dict)  # each unit queue's length where the GEMM's part ended
    array_done: int = -1  # the semaphore the array signals once it has run the GEMM's last MATMUL

    def __post_init__(self) -> None:
        self.begin_phase()

    def state(self) -> tuple[int, ...]:
        """What an emission changes besides the queues: semaphores and buffers taken so far."""
        assert self.spad is not None and self.acc is not None
        return (self.next_sem, self.spad.top, self.spad.size, self.acc.top, self.acc.size)

    def set_state(self, state: tuple[int, ...]) -> None:
        assert self.spad is not None and self.acc is not None
        self.next_sem, self.spad.top, self.spad.size, self.acc.top, self.acc.size = state

    def kept_top(self) -> int:
        """The lowest address of the weight slots kept for later GEMMs (the scratchpad's top if none)."""
        return min((p.slots[-1] for p in self.pins), default=self.spad_bytes)

    def begin_phase(self) -> None:
        self.queues = {u: [] for u in UNITS}
        self.next_sem = 0
        self.spad = SramAllocator(Mem.SPAD, self.spad_bytes)
        self.acc = SramAllocator(Mem.ACC, self.acc_bytes)

    def sem(self) -> int:
        if self.next_sem >= NUM_SEMAPHORES:
            raise MapperError(f"core {self.core} needs more than {NUM_SEMAPHORES} semaphores in one phase.")
        self.next_sem += 1
        return self.next_sem - 1

    def emit(self, unit: Unit, instr: Instr) -> None:
        self.queues[unit].append(instr)

    def signal(self, unit: Unit, sem: int) -> None:
        self.queues[unit].append(_sync(Signal, unit, sem))

    def wait(self, unit: Unit, sem: int) -> None:
        self.queues[unit].append(_sync(Wait, unit, sem))

    def capture(self, unit: Unit) -> _Capture:
        """Collect what is emitted to `unit` meanwhile into a separate list (one stage of one work item)."""
        return _Capture(self, unit)

    def end_phase(self, label: str, kernel_labels: dict[Unit, list[str]] | None = None) -> None:
        """Append the phase's unit queues and a barrier (labelled with the phase) to the program; each instruction
        labelled with the phase, or with its kernel's name from `kernel_labels` (per unit, one per instruction)."""
        for u in UNITS:
            self.program.extend(self.queues[u])
            self.labels.extend([label] * len(self.queues[u]) if kernel_labels is None else kernel_labels[u])
        self.program.append(Barrier())
        self.labels.append(label)
        self.begin_phase()


class _Capture:
    """`with b.capture(unit) as buf`: the unit's queue is `buf` inside the block (a class, not a generator: the
    emitters enter one per stage of every work item)."""

    __slots__ = ("b", "unit", "saved")

    def __init__(self, b: CoreBuilder, unit: Unit) -> None:
        self.b, self.unit = b, unit

    def __enter__(self) -> list[Instr]:
        self.saved = self.b.queues[self.unit]
        buf: list[Instr] = []
        self.b.queues[self.unit] = buf
        return buf

    def __exit__(self, *exc: object) -> None:
        self.b.queues[self.unit] = self.saved


class Channel:
    """Double-buffered (by default) slots from a producer unit to a consumer unit."""

    def __init__(self, b: CoreBuilder, producer: Unit, consumer: Unit, slots: int = 2) -> None:
        self.b, self.producer, self.consumer = b, producer, consumer
        self.full, self.free = b.sem(), b.sem()
        self.used = [False] * slots
        self.next = 0

    def acquire(self) -> int:
        s = self.next
        self.next = (s + 1) % len(self.used)
        if self.used[s]:
            self.b.wait(self.producer, self.free)
        return s

    def publish(self, s: int) -> None:
        self.b.signal(self.producer, self.full)
        self.used[s] = True

    def filled(self, s: int) -> None:
        """Slot `s` already holds its data (loaded before the barrier): no signal, but a later reuse waits."""
        self.used[s] = True

    def consume(self, s: int) -> None:  # noqa: ARG002 - the slot is implied by the ring order
        self.b.wait(self.consumer, self.full)

    def release(self, s: int, unit: Unit | None = None) -> None:  # noqa: ARG002
        self.b.signal(self.consumer if unit is None else unit, self.free)  # Unit.DMA is 0: no `or`

    def drain(self) -> None:
        for used in self.used:
            if used:
                self.b.wait(self.producer, self.free)


def interleave(first: list[list[Instr]], second: list[list[Instr]], ahead: int = 1) -> list[Instr]:
    """Stage one of item i+ahead before stage two of item i: with ahead=1, first[0], first[1], second[0], first[2],
    second[1], ...; a producer with two slots runs two items ahead of the stage that follows its consumer."""
    stages = (first, second)
    return [instr for stage, i in interleave_order(len(first), len(second), ahead) for instr in stages[stage][i]]


def interleave_order(firsts: int, seconds: int, ahead: int = 1) -> list[tuple[int, int]]:
    """The order `interleave` puts its blocks in: (0, i) for first[i], (1, i) for second[i]."""
    out = [(0, i) for i in range(min(ahead, firsts))]
    for i in range(seconds):
        if i + ahead < firsts:
            out.append((0, i + ahead))
        out.append((1, i))
    return out
