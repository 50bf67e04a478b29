"""Dispatch: a Program becomes, per core, one queue per unit (DMA, MXU, VEC, NOC) of plain tuples that carry
each instruction's closed-form cost from the chip's cost model (chipsim.cost_model), plus the energy-event
counts of every barrier-delimited phase (which do not depend on the schedule, so they are counted here once).
Not to be confused with isa.decode, which turns bytes into a Program.

Costing is cached per instruction *shape* (every field but the addresses), so a program of 100k
instructions with a few hundred distinct shapes costs one dict lookup per instruction.

A core's queues come phase by phase (a phase: the instructions between two barriers): per phase, per unit, a
tuple of entries (kind, rel, info) that ends with the phase's closing BARRIER or HALT entry. kind is one of the
constants below, rel the instruction's index from the phase's first instruction (`DecodedCore.phase_lo`), so
phases with the same instruction shapes share one tuple, on every core (but for the NoC queue: a NoC instruction's
entry, its route, is its core's own), and info by kind:
    LOCAL    (cycles, structural_cycles)                 MXU and VEC work but MATMUL: fixed duration
    CHAIN    (fresh front, continued front or -1, tail, port cycles, right behind)   a MATMUL, which may continue
             the run of the MATMUL before it on the MXU queue (see below)
    DMA      (engine_cycles, dram_channel_cycles, latency_cycles)
    SEND     (((dst_core, hops, message key), ...), nbytes, ((link, depth), ...), serialization_cycles, hop_cycles)
    RECV     its message key
             a message key is (src_core, dst_core, tag, nbytes): a RECV takes the oldest message of its key
    SIGNAL / WAIT: the semaphore; BARRIER (closing phase k: barrier k) and HALT: None

Pipelined folds (`core.tensor_core.fold_overlap`): a MATMUL whose predecessor on the MXU queue is a MATMUL
(nothing between them but SIGNALs and WAITs: no LDW or BARRIER) continues that MATMUL's run of folds, so its
entry carries how far it moves the run's stream front (`timing.matmul_timing(..., after_matmul_stream=...)`)
besides its front from an empty array, and its tail (front to end). The executor ends it at max(end of the
MATMUL before, front + tail), the front being max(the run's front + the continued front, the latest signal
its WAITs consumed + the fresh front) (`timing.continued_run`; right behind it, with nothing between, the
run's alone); the SRAM ports hold it to at least its port cycles after the later of the two. A MATMUL
that continues no run (the first of a phase, one after an LDW, any under the per-fold convention) has -1 for
the continued front: it ends at its start + max(fresh front + tail, port cycles).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter

from chipsim import timing
from chipsim.config import ChipConfig
from chipsim.cost_model import READ_EVENT, WRITE_EVENT, CostError, DmaCost, TimingModel
from chipsim.energy import Event
from isa import OPCODES, Instr, IsaError, Mem, Opcode, Program, Unit, format_instr

LOCAL, DMA, SEND, RECV, SIGNAL, WAIT, BARRIER, HALT, CHAIN = range(9)
NUM_UNITS = 4  # DMA, MXU, VEC, NOC: the queues of one core (CTRL instructions are replicated or handled)

Info = tuple[int | float | tuple[tuple[int, int], ...], ...]
QueueEntry = tuple[int, int, Info | int | None]
EventCounts = tuple[tuple[Event, int], ...]
Decoded = tuple[int, Info, EventCounts]



class ExecutionError(ValueError):
    """A program cannot run on this chip (or failed while running): one sentence naming where and why."""


def where(core: int, idx: int, instr: Instr) -> str:
    return f"core {core} instruction {idx} ({format_instr(instr)})"


def _shape_key_getter(op: Opcode) -> Callable[[Instr], tuple[object, ...]]:
    """Every field that can change the cycles or the events of `op` (the addresses cannot)."""
    keep = [0] + [i + 1 for i, f in enumerate(OPCODES[op].fields) if f.mem is None and f.name != "dram_addr"]
    getter = itemgetter(*keep)
    return getter  # type: ignore[no-any-return]


_SHAPE_KEY: dict[Opcode, Callable[[Instr], tuple[object, ...]]] = {op: _shape_key_getter(op) for op in Opcode}
_SHAPED, _SYNC, _NOC, _BARRIER, _HALT = range(5)
_CATEGORY: dict[Opcode, int] = {
    op: _SYNC if op in (Opcode.SIGNAL, Opcode.WAIT) else _NOC if op in (Opcode.NOC_SEND, Opcode.NOC_RECV)
    else _BARRIER if op is Opcode.BARRIER else _HALT if op is Opcode.HALT else _SHAPED
    for op in Opcode
}
_UNIT_OF: dict[Opcode, Unit] = {op: spec.unit for op, spec in OPCODES.items()}


def _in_mesh(peer: int, num_cores: int) -> None:
    """A NoC instruction's other core must be on the mesh."""
    if peer >= num_cores:
        raise ExecutionError(f"core {peer} is outside the mesh of {num_cores} cores (0..{num_cores - 1})")


@dataclass(frozen=True, slots=True)
class DecodedCore:
    phase_queues: tuple[tuple[tuple[QueueEntry, ...], ...], ...]  # per phase, per unit (DMA MXU VEC NOC) its entries
    phase_lo: tuple[int, ...]  # per phase, the index of its first instruction
    executed: int  # instructions up to and including HALT (or all, without one)
    halt_idx: int  # the HALT instruction's index, -1 without one
    macs: int
    phase_events: tuple[dict[Event, int], ...]  # per phase: before barrier 0, ..., after the last barrier
    # per phase, a number standing for its instructions' shapes (every field but the addresses, in program order):
    # two phases with equal numbers, started from the same idle state, run the same (chipsim.executor)
    phase_ids: tuple[int, ...]

    @property
    def barriers(self) -> int:
        return len(self.phase_lo) - 1


@dataclass(frozen=True, slots=True)
class _Phase:
    """One decoded phase of one core: per unit its queue entries, closing entry included, and the energy events it
    counts."""

    id: int
    queues: tuple[tuple[QueueEntry, ...], ...]
    events: dict[Event, int]


@dataclass(frozen=True, slots=True)
class _Shared:
    """What a phase's instruction shapes decode to on any core: the phase itself where it has no NoC instruction;
    else its entries with a gap (None) in the NOC queue for each NoC instruction, at (instruction, queue position)
    in `noc`, which every core fills with its own entries and events."""

    phase: _Phase
    noc: tuple[tuple[int, int], ...]


class Decoder:
    """Turns instructions into queue entries on one chip; caches work per instruction shape, across the programs
    it decodes (`Decoder.of`: the mapper's search runs many small programs on one chip, then the whole one). Every
    cost comes from the chip's TimingModel (chipsim.cost_model), the one the mapper's search uses too."""

    def __init__(self, chip: ChipConfig) -> None:
        self.chip = chip
        self.model = TimingModel.of(chip)
        self._cache: dict[tuple[object, ...], Decoded] = {}  # shape key -> (kind, info, events)
        self._chain_cache: dict[tuple[object, ...], int] = {}  # (shape key, previous stream) -> continued front
        self._noc_cache: dict[int, dict[tuple[object, ...], Decoded]] = {}  # per core: send shape key -> (kind, info, events)
        self._phase_count = 0
        self._routes: dict[tuple[int, int], tuple[tuple[tuple[int, int], ...], tuple[tuple[tuple[int, int], int], ...]]] = {}

    @staticmethod
    @lru_cache(maxsize=2)  # bounded: a sweep worker meets many chips, one after another
    def of(chip: ChipConfig) -> Decoder:
        return Decoder(chip)

    # -- per-shape work (cache misses only) -------------------------------------------------------------------
    def _send(self, i: Instr, core: int, num_cores: int) -> Decoded:
        _in_mesh(i.dst_core, num_cores)
        m = self.model
        route_key = (core, -1 if i.multicast else i.dst_core)
        route = self._routes.get(route_key)
        if route is None:
            if i.multicast:
                tree = timing.xy_multicast_tree(core, num_cores, m.mesh_cols)
                dsts = tuple((d, timing.noc_hops(core, d, m.mesh_cols)) for d in range(num_cores))
            else:
                tree = tuple((link, depth) for depth, link in enumerate(timing.xy_route(core, i.dst_core, m.mesh_cols)))
                dsts = ((i.dst_core, len(tree)),)
            route = self._routes[route_key] = (dsts, tree)
        dsts = tuple((dst, hops, (core, dst, i.tag, i.bytes)) for dst, hops in route[0])
        tree = route[1]
        events = ((READ_EVENT[i.mem], i.bytes), (Event.NOC_BYTE_HOPS, i.bytes * len(tree)))
        return SEND, (dsts, i.bytes, tree, m.noc_serialization_cycles(i.bytes), m.hop_cycles), events

    def _miss(self, i: Instr, key: tuple[object, ...]) -> Decoded:
        try:
            c = self.model.cost(i)
        except CostError as exc:
            raise ExecutionError(str(exc)) from None
        if isinstance(c, DmaCost):
            found: Decoded = (DMA, (c.engine_cycles, c.channel_cycles, c.latency_cycles), c.events)
        elif i.op is Opcode.MATMUL:
            array = c.cycles - c.stretched_cycles
            found = (CHAIN, (array - c.tail_cycles, -1, c.tail_cycles, c.port_cycles, False), c.events)
        else:
            found = (LOCAL, (c.cycles, c.stretched_cycles), c.events)
        self._cache[key] = found
        return found

    def _chained(self, prev: Instr, i: Instr, key: tuple[object, ...]) -> int:
        """How far MATMUL `i` moves the stream front of the run of folds of MATMUL `prev`, before it on the MXU
        queue: it adds its folds to the running array without a fill and drain of its own (`isa/SPEC.md`,
        `## Timing`, pipelined folds)."""
        chain_key = (key, timing.matmul_stream_cycles(self.model.dataflow, prev.m, prev.k, prev.n))
        found = self._chain_cache.get(chain_key)
        if found is None:
            try:
                c = self.model.matmul(i.m, i.k, i.n, i.precision, accumulate=bool(i.accumulate), preloaded=bool(i.preloaded),
                                      after_matmul_stream=chain_key[1])
            except CostError as exc:
                raise ExecutionError(str(exc)) from None
            found = c.cycles - c.stretched_cycles
            self._chain_cache[chain_key] = found
        return found

    # -- whole program ----------------------------------------------------------------------------------------
    def _new_phase(self, queues: tuple[tuple[QueueEntry | None, ...], ...], events: dict[Event, int]) -> _Phase:
        self._phase_count += 1
        return _Phase(self._phase_count, queues, events)  # type: ignore[arg-type]

    def _shared(self, core: int, instrs: tuple[Instr, ...], lo: int, hi: int, keys: tuple[object, ...], closing: int) -> _Shared:
        """The queue entries of instructions lo..hi-1 (no BARRIER or HALT among them; `keys` their shapes), indices
        relative to lo, each unit's closed by a `closing` (BARRIER or HALT) entry at hi; a gap for each NoC
        instruction (`_Shared`). `core` only names the instruction of an error."""
        queues: list[list[QueueEntry | None]] = [[] for _ in range(NUM_UNITS)]
        noc: list[tuple[int, int]] = []
        run_of: Instr | None = None  # the MXU's last MATMUL while only SIGNAL / WAIT follow it
        counts: Counter[tuple[object, ...]] = Counter()
        cache, category, unit_of = self._cache, _CATEGORY, _UNIT_OF
        idx = lo
        try:
            for idx in range(lo, hi):
                instr = instrs[idx]
                op = instr[0]
                cat = category[op]
                if cat == _SHAPED:
                    key = keys[idx - lo]
                    found = cache.get(key)  # type: ignore[call-overload]
                    if found is None:
                        found = self._miss(instr, key)  # type: ignore[arg-type]
                    counts[key] += 1  # type: ignore[index]
                    u = unit_of[op]
                    queue = queues[u]
                    kind, info = found[0], found[1]
                    if op is Opcode.MATMUL and run_of is not None and self.model.fold_overlap:
                        fresh, _, tail, ports, _ = info  # type: ignore[misc]
                        # right behind it (nothing between): the run alone decides
                        info = (fresh, self._chained(run_of, instr, key), tail, ports, queue[-1][0] == CHAIN)  # type: ignore[arg-type,index]
                    queue.append((kind, idx - lo, info))
                    if u == Unit.MXU:
                        run_of = instr if op is Opcode.MATMUL else None
                elif cat == _SYNC:
                    unit = instr[1]  # the unit field (isa.queue_of)
                    if unit is Unit.CTRL:
                        raise ExecutionError(f"{op.name} names the ctrl unit, which has no queue; name dma, mxu, vec or noc")
                    queues[unit].append((SIGNAL if op is Opcode.SIGNAL else WAIT, idx - lo, instr[2]))
                else:  # NoC: each core's own
                    noc.append((idx - lo, len(queues[Unit.NOC])))
                    queues[Unit.NOC].append(None)
        except (ExecutionError, IsaError) as exc:
            raise ExecutionError(f"{where(core, idx, instrs[idx])}: {exc}".rstrip(".") + ".") from None
        events: dict[Event, int] = {}
        for key, n in counts.items():
            for ev, per in cache[key][2]:
                events[ev] = events.get(ev, 0) + n * per
        for queue in queues:
            queue.append((closing, hi - lo, None))
        return _Shared(self._new_phase(tuple(tuple(q) for q in queues), events), tuple(noc))

    def _on_core(self, core: int, instrs: tuple[Instr, ...], lo: int, keys: tuple[object, ...], shared: _Shared, num_cores: int) -> _Phase:
        """A shared phase with `core`'s own NoC entries and events in its gaps. A receive's entry is its message
        key, read off the instruction (nearly every one differs: source, tag, bytes); a send's is cached per shape."""
        phase = shared.phase
        noc_queue = list(phase.queues[Unit.NOC])
        cache = self._noc_cache.get(core)
        if cache is None:
            cache = self._noc_cache[core] = {}
        sends: list[tuple[object, ...]] = []
        landed: Counter[tuple[Mem, bool]] = Counter()  # received bytes by memory and whether they were added
        recv_op = Opcode.NOC_RECV
        for rel, pos in shared.noc:
            instr = instrs[lo + rel]
            try:
                if instr[0] is recv_op:
                    src, nbytes = instr.src_core, instr.bytes
                    _in_mesh(src, num_cores)
                    noc_queue[pos] = (RECV, rel, (src, core, instr.tag, nbytes))
                    landed[(instr.mem, bool(instr.reduce))] += nbytes
                    continue
                key = keys[rel]
                found = cache.get(key)
                if found is None:
                    found = cache[key] = self._send(instr, core, num_cores)
            except (ExecutionError, IsaError) as exc:
                raise ExecutionError(f"{where(core, lo + rel, instr)}: {exc}".rstrip(".") + ".") from None
            noc_queue[pos] = (found[0], rel, found[1])
            sends.append(key)
        events = dict(phase.events)
        for key, n in Counter(sends).items():  # per distinct send shape
            for ev, per in cache[key][2]:
                events[ev] = events.get(ev, 0) + n * per
        for (mem, added), nbytes in landed.items():  # an add reads what is there first
            for ev in (WRITE_EVENT[mem], READ_EVENT[mem]) if added else (WRITE_EVENT[mem],):
                events[ev] = events.get(ev, 0) + nbytes
        queues = list(phase.queues)
        queues[Unit.NOC] = tuple(noc_queue)
        return self._new_phase(tuple(queues), events)

    def decode_core(self, core: int, instrs: tuple[Instr, ...], num_cores: int, seen: dict[tuple[object, ...], object]) -> DecodedCore:
        """Per unit queue entries, phase by phase: a phase whose instructions have the shapes (every field but the
        addresses) of one decoded before (kept in `seen`) takes its entries, on any core, so repeated layers are
        decoded once and so are the phases that several cores run (with each core's own NoC entries, `_Shared`)."""
        phase_queues: list[tuple[tuple[QueueEntry, ...], ...]] = []
        phase_lo: list[int] = []
        phases: list[dict[Event, int]] = []
        ids: list[int] = []
        shape_key = _SHAPE_KEY
        n = len(instrs)
        ops = [i[0] for i in instrs]
        end = ops.index(Opcode.HALT) if Opcode.HALT in ops else n  # what follows a HALT never runs
        executed, halt_idx = (end + 1, end) if end < n else (n, -1)
        lo = 0
        while True:
            try:
                hi, closing = ops.index(Opcode.BARRIER, lo, end), BARRIER
            except ValueError:
                hi, closing = end, HALT
            keys = tuple([shape_key[i[0]](i) for i in instrs[lo:hi]])
            shared = seen.get((closing, keys))
            if shared is None:
                shared = seen[(closing, keys)] = self._shared(core, instrs, lo, hi, keys, closing)
            assert isinstance(shared, _Shared)
            phase = shared.phase
            if shared.noc:  # the same NoC instructions (their shapes are in the key) on another core: other routes
                found = seen.get((core, phase.id))
                if found is None:
                    found = seen[(core, phase.id)] = self._on_core(core, instrs, lo, keys, shared, num_cores)
                assert isinstance(found, _Phase)
                phase = found
            phase_queues.append(phase.queues)
            phase_lo.append(lo)
            phases.append(phase.events)
            ids.append(phase.id)
            if closing == HALT:
                break
            lo = hi + 1
        macs = sum(p.get(Event.MAC_INT8, 0) + p.get(Event.MAC_BF16, 0) for p in phases)
        return DecodedCore(tuple(phase_queues), tuple(phase_lo), executed, halt_idx, macs, tuple(dict(p) for p in phases), tuple(ids))


def decode_program(program: Program, chip: ChipConfig) -> tuple[DecodedCore, ...]:
    """Per-core queues for `program` on `chip` (ExecutionError if the mesh differs or an instruction cannot run)."""
    if (program.mesh_rows, program.mesh_cols) != (chip.mesh.rows, chip.mesh.cols):
        raise ExecutionError(
            f"the program is for a {program.mesh_rows}x{program.mesh_cols} mesh but chip {chip.name!r} has a "
            f"{chip.mesh.rows}x{chip.mesh.cols} mesh; compile the program for this chip or set mesh.rows/mesh.cols"
        )
    decoder = Decoder.of(chip)
    phases: dict[tuple[object, ...], object] = {}  # this program's only: their keys hold every instruction's shape
    return tuple(decoder.decode_core(c, instrs, program.num_cores, phases) for c, instrs in enumerate(program.cores))
