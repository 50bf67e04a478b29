"""The executor: runs a Program on a ChipConfig, event-driven across all cores, in timing-only or functional mode.

Model (the `## Timing` section of isa/SPEC.md has the full statement):
- The front-end of each core dispatches its instructions in order, instantly, to four unit queues (DMA, MXU,
  VEC, NOC); SIGNAL/WAIT go to the unit they name, BARRIER is placed in all four, HALT ends them all.
- Each unit runs its queue in program order. MXU, VEC and NOC run one instruction at a time. The DMA unit
  issues in order onto `core.dma.engines` engines, each holding one transfer (latency included), so
  transfers overlap; a SIGNAL in its queue fires when every earlier transfer has completed.
- An instruction starts at max(its unit is free, its condition: semaphore > 0, the matching SEND's bytes have
  arrived, every unit of every core has reached the barrier, a DMA engine is free); its length is the closed
  form of chipsim.timing, stretched by the shared resources: one chip-wide DRAM channel that serialises the
  bytes of all cores' transfers (first come, first served) and NoC links that each carry one transfer at a
  time (XY routing; a transfer reserves every link on its path).
- Events are processed in time order from a heap keyed by (cycle, sequence number), so ties break
  deterministically. MXU/VEC work that touches nothing shared runs ahead without the heap.
- A barrier releases every unit at once; where they then contend for the same cycle (the DRAM channel, a link),
  the lower core and unit go first (a fixed-priority arbiter), not the one that reached the barrier first.
- Timing-only runs without a global buffer time each distinct phase once: a barrier-to-barrier phase that starts
  from an idle chip (nothing pending, every semaphore zero, DRAM and links free) with the instructions of a phase
  already run repeats that phase's record, shifted in time (BERT's identical layers).
- `fastest` races timing-only runs of several programs (the mapper's candidates) in steps of simulated time and
  stops the ones behind once the fastest has ended; each count it gives is the whole run's.
- Functional mode performs each instruction's effect with isa.semantics when the executor processes it; a
  program whose units are ordered by SIGNAL/WAIT (what isa.verify and the mapper guarantee) computes the same
  values as the plain in-order interpreter. Timing-only mode runs the identical schedule without arithmetic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import heapq
import math
import threading
import types
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from chipsim import timing
from chipsim.area import area_breakdown
from chipsim.config import ChipConfig
from chipsim.dispatch import (
    BARRIER,
    CHAIN,
    DMA,
    HALT,
    LOCAL,
    NUM_UNITS,
    RECV,
    SEND,
    SIGNAL,
    WAIT,
    DecodedCore,
    ExecutionError,
    decode_program,
    where,
)
from chipsim.energy import energy_breakdown
from chipsim.global_buffer import GlobalBuffer
from chipsim.stats import CoreStats, PhaseStats, Roofline, RunResult, StallCause, TraceEvent, UnitStats
from isa import CoreState, Instr, IsaError, Program, Unit, apply, read_bytes, verify, write_bytes
from isa.semantics import NUM_SEMAPHORES

__all__ = ["DeadlockError", "ExecutionError", "collector_paused", "execute", "fastest", "timed"]

_EPS = 1e-9
_NEVER = -(1 << 62)  # a cycle before any


class DeadlockError(ExecutionError):
    """Every unit that has work left is blocked on something that can never happen."""


def timed(program: Program, chip: ChipConfig) -> tuple[int, float]:
    """A program's cycles and energy (joules) on `chip`, timing only: what the mapper's search measures its best
    candidates with."""
    run = _simulated(program, chip, None, trace=False, replay=True)
    return run.totals()


_FIRST_STEP_CYCLES = 4096  # the race's first step of simulated time; each later step is 5/4 of the one before

# The race's fastest run, kept for one `execute` of its program in the same thread (a Dask worker may run points
# on several): the application executes the program the mapper picked by a race (mapper.lower), and timing only
# that is the same run, so it is not simulated again.
_kept = threading.local()
# The runs of a race called with `stop`, kept (with their programs) for the next race in the same thread, which
# continues those of its programs from where they stopped.
_stopped = threading.local()
# The last functional run in this thread: its program, chip, result and the values it moved, in the order it moved
# them (_Run.moves). The timing does not depend on the values, so another functional run of the same program on
# the same chip makes the same moves in the same order: `execute` replays them on its DRAM instead of simulating.
_played = threading.local()
# what a functional run does with values, in event order: (kind, core, instruction index, payload number)
_APPLY, _READ, _WRITE = 0, 1, 2


def fastest(programs: Sequence[Program], chip: ChipConfig, *, stop: int | None = None) -> tuple[int | None, ...]:
    """Each program's cycles on `chip` (timing only), or None for one stopped behind the fastest: they
    run side by side in growing steps of simulated time, and one still running when the fastest has ended is
    stopped there, so a candidate several times slower than the best costs about as much simulation as the best
    (at most 5/4 of it; the mapper's re-check of its cheapest tilings: the analytic favourite is not always the
    fastest, and on 16 cores was measured up to 4x slower than the one it ranked fourth). Every
    cycle count given is exactly what running that program whole gives; the fastest, the first of equals, is
    among them.

    `stop`: where none has ended by that cycle, every count is None. The runs of such a race wait where they are
    for the next race in this thread, on this chip, that includes their programs (the same objects; races of
    other programs may come between), which continues them rather than starting over (one that had ended gives
    its count)."""
    with collector_paused():
        before = getattr(_stopped, "runs", None)
        waiting = before[1] if before is not None and before[0] == chip else []
        runs = []
        for p in programs:
            run = next((r for q, r in waiting if q is p), None)
            if run is None:
                run = _Run(p, chip, decode_program(p, chip), None, trace=False)
                run.start()
            else:
                _stopped.runs = None  # continued here
            runs.append(run)
        if stop is not None:
            _stopped.runs = (chip, list(zip(programs, runs)))
        step = _FIRST_STEP_CYCLES
        while True:
            at = step if stop is None else min(step, stop)
            over = [run.advance(at) for run in runs]
            if any(over):
                break
            if at == stop:
                return (None,) * len(runs)
            step += step // 4
        # an ended run's transfers may complete after its last event: run the others to the earliest end
        best = min(run.cycles() for run, o in zip(runs, over) if o)
        over = [o or run.advance(best) for run, o in zip(runs, over)]
        cycles = tuple(run.cycles() if o else None for run, o in zip(runs, over))
        win = min((c, i) for i, c in enumerate(cycles) if c is not None)[1]
        _kept.run = (programs[win], chip, runs[win])
        return cycles


def execute(
    program: Program,
    chip: ChipConfig,
    *,
    functional: bool,
    dram: np.ndarray | None = None,
    trace: bool = False,
    check: bool = False,
    replay: bool = True,
) -> RunResult:
    """Run `program` on `chip` and measure it.

    functional: compute real values on per-core SRAM byte arrays and `dram` (a 1-D np.uint8 array, mutated in
        place; required in functional mode). Timing-only mode (`functional=False`) gives identical figures.
    trace: keep one TraceEvent per executed instruction (see chipsim.app.trace).
    check: run isa.verify against this chip's memories first (VerifyError lists every problem).
    replay: in timing-only mode without a trace or a global buffer, a phase between two barriers that starts from
        an idle chip with the instructions of a phase already run is not simulated again: its
        record is applied (the same cycles, counters and instruction times); in functional mode without a trace, a
        run of the program and chip that this thread ran functionally last is not simulated again: that run's moves
        of values are replayed on `dram` and its result returned (the timing does not depend on the values).
        False simulates every phase and every run.
    """
    if functional and (dram is None or dram.dtype != np.uint8 or dram.ndim != 1):
        raise ExecutionError("functional execution needs dram= a 1-D np.uint8 array holding the DRAM contents")
    if check:
        core = chip.core
        verify(
            program, spad_bytes=core.scratchpad.size_bytes, acc_bytes=core.accumulator.size_bytes,
            dram_bytes=int(dram.size) if dram is not None else 1 << 40,
            array_rows=core.tensor_core.rows, array_cols=core.tensor_core.cols,
        )
    _stopped.runs = None  # the mapper's races are over
    kept = getattr(_kept, "run", None)
    if not functional and not trace and replay and kept is not None and kept[0] is program and kept[1] == chip:
        _kept.run = None
        return kept[2].result()
    if not functional:
        return _simulated(program, chip, None, trace, replay).result()
    assert dram is not None
    played = getattr(_played, "run", None)
    if not trace and replay and played is not None and played[0] is program and played[1] == chip:
        _move_values(program, chip, dram, played[3])
        return played[2] if played[2].trace is None else dataclasses.replace(played[2], trace=None)
    run = _simulated(program, chip, dram, trace, replay)
    result = run.result()
    assert run.moves is not None
    _played.run = (program, chip, result, run.moves)
    return result


def _move_values(program: Program, chip: ChipConfig, dram: np.ndarray, moves: list[tuple[int, int, int, int]]) -> None:
    """A functional run's values without its timing: `moves` (a run of `program` on `chip`: _Run.moves) done in
    their order on fresh cores and `dram`."""
    core_cfg = chip.core
    states = [CoreState.create(core_cfg.scratchpad.size_bytes, core_cfg.accumulator.size_bytes) for _ in program.cores]
    last = {slot: n for n, (kind, _, _, slot) in enumerate(moves) if kind == _WRITE}  # a payload's last landing
    payloads: dict[int, np.ndarray] = {}
    for n, (kind, core, idx, slot) in enumerate(moves):
        instr = program.cores[core][idx]
        try:
            if kind == _APPLY:
                apply(instr, states[core], dram)
            elif kind == _READ:
                payloads[slot] = _payload(states[core], instr)
            else:
                _land(states[core], instr, payloads.pop(slot) if last[slot] == n else payloads[slot])
        except IsaError as exc:
            raise _failed(core, idx, instr, exc) from None


def _payload(state: CoreState, instr: Instr) -> np.ndarray:
    """The bytes a NOC_SEND reads on its core."""
    return read_bytes(state, instr.mem, instr.addr, instr.bytes, instr.rows, instr.stride_bytes)


def _land(state: CoreState, instr: Instr, payload: np.ndarray) -> None:
    """A NOC_RECV's payload landing on its core (stored, or added where the receive reduces)."""
    write_bytes(state, instr.mem, instr.addr, payload, instr.rows, instr.stride_bytes, instr.reduce)


def _failed(core: int, idx: int, instr: Instr, exc: IsaError) -> ExecutionError:
    """The error of instruction `idx` of `core` failing with `exc`, naming where it is."""
    return ExecutionError(f"{where(core, idx, instr)}: {exc}".rstrip(".") + ".")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (where it was running) for the block: lowering, decoding and
    scheduling allocate millions of small acyclic tuples (the instructions, the queue entries), which reference
    counting frees, and the collector's repeated scans of them would double a run's time (measured in
    benchmarks/bench_executor.py; on sweep points it took a fifth of the mapping's). What the block allocates is
    scanned once, at the first collection after it; cyclic garbage it made is collected then. Nested blocks
    resume the collector at the outermost one's end."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _simulated(program: Program, chip: ChipConfig, dram: np.ndarray | None, trace: bool, replay: bool) -> _Run:
    """The program decoded and run to its end (values computed on `dram` unless None)."""
    with collector_paused():
        run = _Run(program, chip, decode_program(program, chip), dram, trace, replay)
        run.simulate()
        return run


@dataclass(frozen=True, slots=True)
class _PhaseRecord:
    """What one barrier-to-barrier phase did, relative to the cycle it started."""

    length: int  # cycles from its start to the release of its closing barrier
    deltas: tuple[tuple[int, ...], ...]  # per unit: busy, DRAM, NoC, dependency and structural stalls, count
    waiting: tuple[tuple[int, int], ...]  # the closing barrier's arrivals: (unit, cycle), in arrival order
    times: tuple[tuple[np.ndarray, np.ndarray], ...]  # per core: start and end of each of its instructions in the phase


class _Run:
    """The mutable state of one simulation; flat lists indexed by g = core * NUM_UNITS + unit."""

    def __init__(self, program: Program, chip: ChipConfig, decoded: tuple[DecodedCore, ...], dram: np.ndarray | None, trace: bool,
                 replay: bool = True) -> None:
        self.program, self.chip, self.decoded, self.dram = program, chip, decoded, dram
        ncores = len(decoded)
        g_count = ncores * NUM_UNITS
        self.ncores = ncores
        self.instrs = program.cores
        # Each unit runs the queue of its current phase (a barrier moves it to the next): entry `ptr` of `queues`,
        # whose instruction indices are relative to `base`, the phase's first instruction.
        self.phase = [0] * g_count
        self.queues = [q for d in decoded for q in d.phase_queues[0]]
        self.base = [0] * g_count
        self.ptr = [0] * g_count
        self.avail = [0] * g_count  # cycle at which the head instruction's unit became free for it
        self.done = [0] * g_count  # completion of everything the unit has issued
        self.finished = [False] * g_count
        self.busy = [0] * g_count
        self.covered = [0] * g_count  # DMA: busy time is the union of transfer intervals
        self.st_dram = [0] * g_count
        self.st_noc = [0] * g_count
        self.st_dep = [0] * g_count
        self.st_struct = [0] * g_count
        self.count = [0] * g_count
        self.engines = [[0] * chip.core.dma.engines for _ in range(ncores)]
        self.sems = [[0] * NUM_SEMAPHORES for _ in range(ncores)]
        self.fired: list[list[deque[int]]] = [[deque() for _ in range(NUM_SEMAPHORES)] for _ in range(ncores)]  # per count, when
        # Pipelined folds (CHAIN entries, MATMULs): per unit, when its last MXU / VEC instruction ended, the latest
        # signal a WAIT of it has consumed since, and the stream front of its last MATMUL (chipsim.timing.continued_run)
        self.run_end = [0] * g_count
        self.wait_ready = [_NEVER] * g_count
        self.run_front = [0] * g_count
        self.sem_waiters: dict[tuple[int, int], deque[int]] = {}
        self.messages: dict[tuple[int, int, int, int], deque[tuple[int, int, int, tuple[int, np.ndarray] | None]]] = {}  # payload: (number, bytes)
        self.recv_waiter: dict[tuple[int, int, int, int], int] = {}
        nbar = max((d.barriers for d in decoded), default=0)
        self.bar_count = [0] * nbar
        self.bar_time = [0] * nbar
        self.bar_waiting: list[list[tuple[int, int]]] = [[] for _ in range(nbar)]
        self.link_free: dict[tuple[int, int], int] = {}
        # The DRAM channel is free from dram_base + dram_free; the base moves to every barrier that finds the chip
        # idle (the channel free among the rest), so a phase's float arithmetic does not depend on when it runs
        # (the phase replay below is exact).
        self.dram_base = 0
        self.dram_free = 0.0
        gb = chip.global_buffer
        self.gbuf = GlobalBuffer(gb.size_bytes) if gb is not None else None
        self.gbuf_bpc = gb.bytes_per_cycle if gb is not None else 1
        self.gbuf_latency = gb.latency_cycles if gb is not None else 0
        self.gbuf_free = 0.0
        # Per phase (barrier-delimited): DMA load bytes served by the global buffer instead of DRAM, and bytes
        # written into it (DRAM reads that missed, and stores).
        self.gbuf_hit_bytes = [0] * (nbar + 1)
        self.gbuf_fill_bytes = [0] * (nbar + 1)
        # Each unit's counters at every barrier it has passed; their number is the phase its instructions belong to.
        self.snaps: list[list[tuple[int, int, int, int, int]]] = [[] for _ in range(g_count)]
        self.heap: list[tuple[int, int, int, int]] = []
        self.seq = 0
        self.starts = [[-1] * len(instrs) for instrs in program.cores]
        self.ends = [[-1] * len(instrs) for instrs in program.cores]
        self.events: list[tuple[int, int, int, int, int]] | None = [] if trace else None
        # Phases timed once: a timing-only run without a global buffer (whose contents carry from phase to phase)
        # keeps, per phase signature, what the phase did; see _release.
        self.replays: dict[tuple[object, ...], _PhaseRecord] | None = {} if dram is None and not trace and gb is None and replay else None
        self.recording: tuple[tuple[object, ...], int, list[tuple[int, ...]]] | None = None  # key, start, counters
        self.replayed: list[tuple[int, int, _PhaseRecord]] = []  # (phase, start cycle, record)
        self.states = (
            [CoreState.create(chip.core.scratchpad.size_bytes, chip.core.accumulator.size_bytes) for _ in range(ncores)]
            if dram is not None else []
        )
        self.moves: list[tuple[int, int, int, int]] | None = [] if dram is not None else None  # functional: what it did with values

    # -- scheduling helpers -------------------------------------------------------------------------------------
    def _push(self, time: int, g: int, sem: int = -1) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (time, self.seq, g, sem))

    def _fire_signal(self, core: int, sem: int, now: int) -> None:
        self.sems[core][sem] += 1
        self.fired[core][sem].append(now)
        waiters = self.sem_waiters.get((core, sem))
        if waiters:
            self._push(now, waiters.popleft())

    def _fail(self, core: int, idx: int, exc: IsaError) -> ExecutionError:
        return _failed(core, idx, self.program.cores[core][idx], exc)

    def simulate(self) -> None:
        self.start()
        self.advance(math.inf)

    def start(self) -> None:
        for g, q in enumerate(self.queues):
            if q:
                self._push(0, g)

    def advance(self, until: float) -> bool:
        """Process the events up to cycle `until`; True once the run is over (False: events after `until` remain)."""
        heap = self.heap
        pop = heapq.heappop
        while heap and heap[0][0] <= until:
            now, _, g, sem = pop(heap)
            if sem >= 0:
                self._fire_signal(g // NUM_UNITS, sem, now)
            else:
                self._step(g, now)
        if heap:
            return False
        if not all(self.finished):
            raise self._deadlock()
        return True

    def cycles(self) -> int:
        return max(self.done, default=0)

    def _step(self, g: int, now: int) -> None:
        """Advance unit g at cycle `now` until it must wait for a later cycle or a condition."""
        core, unit = divmod(g, NUM_UNITS)
        q = self.queues[g]
        p = self.ptr[g]
        t = self.avail[g]
        base = self.base[g]
        instrs = self.instrs[core]
        starts, ends = self.starts[core], self.ends[core]
        events = self.events
        state = self.states[core] if self.states else None
        dram = self.dram
        while True:
            op = q[p]
            kind = op[0]
            if kind == LOCAL or kind == CHAIN:  # run ahead: MXU/VEC work depends only on its own unit being free
                busy = struct = 0
                n = 0
                while kind == LOCAL or kind == CHAIN:
                    idx = base + op[1]
                    if kind == CHAIN:  # a MATMUL: continues the run before it as far as what it waited for allows
                        fresh, chained, tail, ports, behind = op[2]  # type: ignore[misc]
                        if chained < 0:  # from an empty array
                            front = t + fresh
                            array_end = front + tail
                            start = t
                        else:
                            prev = t if behind else self.run_end[g]
                            ready = _NEVER if behind else self.wait_ready[g]
                            array_end, front = timing.continued_run(prev, self.run_front[g], ready, fresh, chained, tail)
                            start = ready if ready > prev else prev
                        end = start + ports if start + ports > array_end else array_end
                        stretched = end - array_end
                        self.run_front[g] = end - tail if end - tail > front else front  # ports slow the stream
                        cycles = end - t
                    else:
                        cycles, stretched = op[2]  # type: ignore[misc]
                        end = t + cycles
                    starts[idx] = t
                    ends[idx] = end
                    busy += cycles
                    struct += stretched
                    if state is not None:
                        try:
                            apply(instrs[idx], state, dram)
                        except IsaError as exc:
                            raise self._fail(core, idx, exc) from None
                        self.moves.append((_APPLY, core, idx, 0))  # type: ignore[union-attr]
                    if events is not None:
                        events.append((core, unit, idx, t, end))
                    t = end
                    n += 1
                    p += 1
                    op = q[p]
                    kind = op[0]
                self.busy[g] += busy
                self.st_struct[g] += struct
                self.count[g] += n
                self.done[g] = t
                self.run_end[g], self.wait_ready[g] = t, _NEVER
                continue
            if kind == HALT:
                self.finished[g] = True
                self.ptr[g], self.avail[g] = p, t
                return
            if t > now:
                self.ptr[g], self.avail[g] = p, t
                self._push(t, g)
                return
            idx = base + op[1]
            if kind == DMA:
                engines = self.engines[core]
                free_at = min(engines)
                if free_at > now:  # every engine holds a transfer: retry when one frees
                    self.ptr[g], self.avail[g] = p, t
                    self._push(free_at, g)
                    return
                engine_cycles, channel, latency = op[2]  # type: ignore[misc]
                own_end = now + engine_cycles
                xfer_end = own_end
                if self.gbuf is not None:
                    instr = instrs[idx]
                    nbytes = instr.rows * instr.cols * instr.dtype.itemsize
                    hit_bytes = self.gbuf.access(instr)
                    phase = len(self.snaps[g])
                    self.gbuf_hit_bytes[phase] += hit_bytes
                    self.gbuf_fill_bytes[phase] += nbytes - hit_bytes
                    if hit_bytes:
                        gb_start = self.gbuf_free if self.gbuf_free > now else float(now)
                        self.gbuf_free = gb_start + hit_bytes / self.gbuf_bpc
                        xfer_end = max(xfer_end, math.ceil(self.gbuf_free - _EPS))
                        channel *= (nbytes - hit_bytes) / nbytes
                        if hit_bytes == nbytes:
                            latency = self.gbuf_latency
                if channel:
                    rel = now - self.dram_base
                    channel_start = self.dram_free if self.dram_free > rel else float(rel)
                    self.dram_free = channel_start + channel
                    xfer_end = max(xfer_end, self.dram_base + math.ceil(self.dram_free - _EPS))
                end = xfer_end + latency
                engines[engines.index(free_at)] = end
                self.st_dram[g] += xfer_end - own_end
                self.st_struct[g] += now - t
                cov = self.covered[g]
                self.busy[g] += end - (now if now > cov else cov) if end > cov else 0
                if end > cov:
                    self.covered[g] = end
                if end > self.done[g]:
                    self.done[g] = end
                if state is not None:
                    try:
                        apply(instrs[idx], state, dram)
                    except IsaError as exc:
                        raise self._fail(core, idx, exc) from None
                    self.moves.append((_APPLY, core, idx, 0))  # type: ignore[union-attr]
                starts[idx], ends[idx] = now, end
                t = now
            elif kind == SEND:
                dsts, nbytes, links, ser, hop = op[2]  # type: ignore[misc]
                link_free = self.link_free
                head = now
                for link, depth in links:  # a path, or a multicast's XY tree: each link at its depth
                    ready = link_free.get(link, 0) - depth * hop
                    if ready > head:
                        head = ready
                for link, depth in links:
                    link_free[link] = head + depth * hop + ser
                end = head + ser
                payload = None
                if state is not None:
                    instr: Instr = instrs[idx]
                    try:
                        payload = (len(self.moves), _payload(state, instr))  # type: ignore[arg-type]
                    except IsaError as exc:
                        raise self._fail(core, idx, exc) from None
                    self.moves.append((_READ, core, idx, payload[0]))  # type: ignore[union-attr]
                for _, hops, key in dsts:  # type: ignore[misc]
                    arrive = head + hops * hop + ser
                    self.messages.setdefault(key, deque()).append((head, arrive, nbytes, payload))  # type: ignore[arg-type]
                    waiter = self.recv_waiter.pop(key, None)
                    if waiter is not None:
                        self._push(arrive, waiter)
                self.st_noc[g] += head - now
                self.busy[g] += end - now
                self.done[g] = end
                starts[idx], ends[idx] = now, end
                t = end
                if events is not None:
                    events.append((core, unit, idx, now, end))
                self.count[g] += 1
                p += 1
                continue
            elif kind == RECV:
                key = op[2]
                pending = self.messages.get(key)
                if not pending:
                    self.recv_waiter[key] = g
                    self.ptr[g], self.avail[g] = p, t
                    return
                head, arrive, nbytes, payload = pending[0]
                if arrive > now:
                    self.ptr[g], self.avail[g] = p, t
                    self._push(arrive, g)
                    return
                pending.popleft()
                if not pending:
                    del self.messages[key]
                if state is not None and payload is not None:
                    instr = instrs[idx]
                    try:
                        _land(state, instr, payload[1])
                    except IsaError as exc:
                        raise self._fail(core, idx, exc) from None
                    self.moves.append((_WRITE, core, idx, payload[0]))  # type: ignore[union-attr]
                began = head if head > t else t
                self.st_dep[g] += began - t
                self.st_noc[g] += now - began
                self.busy[g] += now - began
                self.done[g] = now
                starts[idx], ends[idx] = t, now
                t = now
            elif kind == WAIT:
                sems = self.sems[core]
                sem = op[2]
                if sems[sem] <= 0:
                    self.sem_waiters.setdefault((core, sem), deque()).append(g)
                    self.ptr[g], self.avail[g] = p, t
                    return
                sems[sem] -= 1
                fired = self.fired[core][sem].popleft()
                if fired > self.wait_ready[g]:
                    self.wait_ready[g] = fired
                self.st_dep[g] += now - t
                if now > self.done[g]:
                    self.done[g] = now
                starts[idx], ends[idx] = t, now
                t = now
            elif kind == SIGNAL:
                fire = self.done[g]
                if fire > now:  # DMA transfers still in flight: the increment happens when they complete
                    self._push(fire, g, op[2])  # type: ignore[arg-type]
                else:
                    fire = now
                    sem = op[2]  # type: ignore[assignment]
                    self.sems[core][sem] += 1
                    self.fired[core][sem].append(now)
                    waiters = self.sem_waiters.get((core, sem))
                    if waiters:
                        self._push(now, waiters.popleft())
                starts[idx], ends[idx] = now, fire
                t = now
            else:  # BARRIER
                if self.done[g] > now:  # arrive once everything issued before the barrier has completed
                    self.ptr[g], self.avail[g] = p, t
                    self._push(self.done[g], g)
                    return
                self.ptr[g], self.avail[g] = p, t
                self._arrive(g, self.phase[g], now)
                return
            if events is not None:
                events.append((core, unit, idx, starts[idx], ends[idx]))
            self.count[g] += 1
            p += 1

    def _arrive(self, g: int, barrier: int, now: int) -> None:
        self.bar_count[barrier] += 1
        if now > self.bar_time[barrier]:
            self.bar_time[barrier] = now
        waiting = self.bar_waiting[barrier]
        waiting.append((g, now))
        if self.bar_count[barrier] < len(self.queues):
            return
        release = self.bar_time[barrier]
        arrival = [-1] * self.ncores
        for w, at in waiting:
            arrival[w // NUM_UNITS] = max(arrival[w // NUM_UNITS], at)
        for w, at in waiting:
            core, unit = divmod(w, NUM_UNITS)
            idx = self.base[w] + self.queues[w][self.ptr[w]][1]
            self.st_dep[w] += release - at
            self.count[w] += 1
            self.snaps[w].append(self._counters(w))
            self._enter(w, barrier + 1)
            self.avail[w] = release
            if release > self.done[w]:
                self.done[w] = release
            self.starts[core][idx], self.ends[core][idx] = arrival[core], release  # type: ignore[index]
            if self.events is not None:
                self.events.append((core, unit, idx, at, release))  # type: ignore[arg-type]
        self._release(barrier, release)

    def _enter(self, g: int, phase: int) -> None:
        """Unit g starts phase `phase`'s queue."""
        core, unit = divmod(g, NUM_UNITS)
        d = self.decoded[core]
        self.phase[g] = phase
        self.queues[g] = d.phase_queues[phase][unit]
        self.base[g] = d.phase_lo[phase]
        self.ptr[g] = 0

    # -- phases timed once --------------------------------------------------------------------------------------
    def _idle(self, release: int) -> bool:
        """Nothing of the past can reach past `release`: no event pending, no message or waiter left, every
        semaphore zero, the DRAM channel and every link free. From such a state a phase's schedule is a function
        of its instructions alone (the units are released in core and unit order)."""
        return (not self.heap and not self.messages and not self.recv_waiter and self.dram_base + self.dram_free <= release
                and all(v <= release for v in self.link_free.values()) and not any(self.sem_waiters.values())
                and not any(any(s) for s in self.sems))

    def _release(self, barrier: int, release: int) -> None:
        """Every unit has passed `barrier` at cycle `release`: start the phase after it, or (its instructions seen
        before, from an idle state) replay that phase's record and go on from the barrier after."""
        while True:
            idle = self._idle(release)
            if idle:  # the DRAM channel among the rest
                self.dram_base, self.dram_free = release, 0.0
            if self.recording is not None:
                key, start, before = self.recording
                self.recording = None
                if idle:
                    self.replays[key] = self._record(barrier, start, release, before)  # type: ignore[index]
            phase = barrier + 1
            if self.replays is None or not idle or phase >= len(self.bar_time):  # the phase after the last barrier runs
                break
            key = tuple(d.phase_ids[phase] for d in self.decoded)
            rec = self.replays.get(key)
            if rec is None:
                self.recording = (key, release, [self._all_counters(g) for g in range(len(self.queues))])
                break
            release = self._replay(phase, release, rec)
            barrier = phase
        for g in sorted(w for w, _ in self.bar_waiting[barrier]):  # all at once: ties go by core and unit, not by arrival
            self._push(release, g)

    def _all_counters(self, g: int) -> tuple[int, ...]:
        return (*self._counters(g), self.count[g])

    def _record(self, barrier: int, start: int, release: int, before: list[tuple[int, ...]]) -> _PhaseRecord:
        """What the phase ending at `barrier` did, relative to its `start`."""
        times = []
        for c, d in enumerate(self.decoded):
            lo, hi = d.phase_lo[barrier], d.phase_lo[barrier + 1]
            times.append((np.array(self.starts[c][lo:hi], dtype=np.int64) - start, np.array(self.ends[c][lo:hi], dtype=np.int64) - start))
        deltas = tuple(tuple(a - b for a, b in zip(self._all_counters(g), before[g])) for g in range(len(self.queues)))
        waiting = tuple((w, at - start) for w, at in self.bar_waiting[barrier])
        return _PhaseRecord(release - start, deltas, waiting, tuple(times))

    def _replay(self, phase: int, start: int, rec: _PhaseRecord) -> int:
        """Apply phase `phase`'s record from cycle `start`, as if it had run; the cycle its closing barrier releases."""
        release = start + rec.length
        for g, d in enumerate(rec.deltas):
            self.busy[g] += d[0]
            self.st_dram[g] += d[1]
            self.st_noc[g] += d[2]
            self.st_dep[g] += d[3]
            self.st_struct[g] += d[4]
            self.count[g] += d[5]
            self._enter(g, phase + 1)
            self.snaps[g].append(self._counters(g))
            self.avail[g] = self.done[g] = release
        self.bar_count[phase] = len(self.queues)
        self.bar_time[phase] = release
        self.bar_waiting[phase] = [(w, start + at) for w, at in rec.waiting]
        self.replayed.append((phase, start, rec))
        return release

    def _counters(self, g: int) -> tuple[int, int, int, int, int]:
        return self.busy[g], self.st_dram[g], self.st_noc[g], self.st_dep[g], self.st_struct[g]

    # -- deadlock ---------------------------------------------------------------------------------------------
    def _deadlock(self) -> DeadlockError:
        blocked = [g for g in range(len(self.queues)) if not self.finished[g]]
        # Report a unit stuck on a semaphore or a message first: a barrier wait is usually its consequence.
        blocked.sort(key=lambda g: (self.queues[g][self.ptr[g]][0] == BARRIER, g))
        g = blocked[0]
        core, unit = divmod(g, NUM_UNITS)
        op = self.queues[g][self.ptr[g]]
        idx = self.base[g] + op[1]
        instr = self.program.cores[core][idx]
        if op[0] == WAIT:
            why = f"semaphore {op[2]} is never signalled"
        elif op[0] == RECV:
            src, _, tag, nbytes = op[2]  # type: ignore[misc]
            why = f"no NOC_SEND from core {src} with tag {tag} and {nbytes} bytes ever reaches it"
        else:
            barrier = self.phase[g]
            arrived = [0] * self.ncores
            for w, _ in self.bar_waiting[barrier]:
                arrived[w // NUM_UNITS] += 1
            late = [c for c in range(self.ncores) if arrived[c] < NUM_UNITS]
            why = f"barrier {barrier} is never reached by every unit of core {late[0]}"
        return DeadlockError(f"core {core} {Unit(unit).name} blocked forever at instruction {idx} ({instr}): {why}")

    # -- results ----------------------------------------------------------------------------------------------
    def result(self) -> RunResult:
        chip = self.chip
        cycles = max(self.done, default=0)
        cores: list[CoreStats] = []
        for c, d in enumerate(self.decoded):
            units = tuple(
                UnitStats(
                    Unit(u), self.count[g], self.busy[g], self.st_dram[g], self.st_noc[g], self.st_dep[g], self.st_struct[g]
                )
                for u in range(NUM_UNITS)
                for g in (c * NUM_UNITS + u,)
            )
            finish = max(self.done[c * NUM_UNITS : (c + 1) * NUM_UNITS])
            if d.halt_idx >= 0:
                self.starts[c][d.halt_idx] = self.ends[c][d.halt_idx] = finish
            cores.append(CoreStats(c, finish, d.macs, units))
        phases = self._phases(cycles)
        events: dict[str, int] = {}
        for ph in phases:
            for ev, n in ph.events.items():
                events[ev] = events.get(ev, 0) + n
        useful = sum(d.macs for d in self.decoded)
        peak = chip.peak_macs_per_cycle
        dram_bytes = events.get("dram_read_bytes", 0) + events.get("dram_write_bytes", 0)
        links = 2 * (chip.mesh.rows * (chip.mesh.cols - 1) + chip.mesh.cols * (chip.mesh.rows - 1))
        byte_hops = events.get("noc_byte_hops", 0)
        roofline = Roofline(
            compute_cycles=useful / peak,
            dram_cycles=dram_bytes / chip.dram_bytes_per_cycle,
            noc_cycles=byte_hops / (links * chip.noc.link_bytes_per_cycle) if links else 0.0,
        )
        starts = tuple(np.array(st, dtype=np.int64) for st in self.starts)
        ends = tuple(np.array(e, dtype=np.int64) for e in self.ends)
        for phase, start, rec in self.replayed:
            for c, (rel_starts, rel_ends) in enumerate(rec.times):
                lo = self.decoded[c].phase_lo[phase]
                starts[c][lo : lo + len(rel_starts)] = rel_starts + start
                ends[c][lo : lo + len(rel_ends)] = rel_ends + start
        trace = None
        if self.events is not None:
            names = [[i.op.name.lower() for i in instrs] for instrs in self.program.cores]
            trace = tuple(
                TraceEvent(c, Unit(u), idx, names[c][idx], s, e) for c, u, idx, s, e in sorted(self.events, key=lambda ev: (ev[3], ev[0], ev[1]))
            )
        return RunResult(
            chip_name=chip.name,
            functional=self.dram is not None,
            cycles=cycles,
            clock_mhz=chip.clock_mhz,
            instructions=sum(d.executed for d in self.decoded),
            cores=tuple(cores),
            useful_macs=useful,
            peak_macs_per_cycle=peak,
            utilization=useful / (peak * cycles) if cycles else 0.0,
            events=types.MappingProxyType(events),
            energy_j=types.MappingProxyType(energy_breakdown(events, float(cycles), chip)),
            area_mm2=types.MappingProxyType(area_breakdown(chip)),
            roofline=roofline,
            instr_start=starts,
            instr_end=ends,
            trace=trace,
            phases=phases,
            replayed_phases=len(self.replayed),
        )

    def totals(self) -> tuple[int, float]:
        """The run's cycles and joules, as result() gives them (the same events, summed in the same order), without
        the per-phase and per-instruction figures: what the mapper's search measures."""
        cycles = max(self.done, default=0)
        events: dict[str, int] = {}
        for k in range(len(self.bar_time) + 1):
            for ev, n in self._phase_events(k).items():
                events[ev] = events.get(ev, 0) + n
        return cycles, energy_breakdown(events, float(cycles), self.chip)["total"]

    def _phase_events(self, k: int) -> dict[str, int]:
        """The events of phase k over every core, global-buffer hits applied."""
        events: dict[str, int] = {}
        for d in self.decoded:
            if k < len(d.phase_events):
                for ev, n in d.phase_events[k].items():
                    events[ev.value] = events.get(ev.value, 0) + n
        if self.gbuf is not None:  # loads served by the global buffer read it instead of DRAM; misses and stores fill it
            hit = self.gbuf_hit_bytes[k]
            events["dram_read_bytes"] = events.get("dram_read_bytes", 0) - hit
            events["gbuf_read_bytes"] = events.get("gbuf_read_bytes", 0) + hit
            events["gbuf_write_bytes"] = events.get("gbuf_write_bytes", 0) + self.gbuf_fill_bytes[k]
        return events

    def _phases(self, cycles: int) -> tuple[PhaseStats, ...]:
        """What happened between consecutive barriers: events (global-buffer hits applied), time, unit busy and stalls."""
        chip = self.chip
        nphases = len(self.bar_time) + 1
        g_count = len(self.queues)
        finals = [self._counters(g) for g in range(g_count)]
        out = []
        for k in range(nphases):
            start = self.bar_time[k - 1] if k else 0
            end = self.bar_time[k] if k < nphases - 1 else cycles
            events = self._phase_events(k)
            deltas = []
            for g in range(g_count):
                snaps = self.snaps[g]
                after = snaps[k] if k < len(snaps) else finals[g]  # every unit passed every barrier (no deadlock)
                before = snaps[k - 1] if k else (0, 0, 0, 0, 0)
                deltas.append(tuple(a - b for a, b in zip(after, before)))
            busy = tuple(tuple(deltas[c * NUM_UNITS + u][0] for u in range(NUM_UNITS)) for c in range(self.ncores))
            stalls = {cause.value: sum(dl[i + 1] for dl in deltas) for i, cause in enumerate(StallCause)}
            macs = events.get("mac_int8", 0) + events.get("mac_bf16", 0)
            out.append(PhaseStats(
                index=k, start_cycle=start, end_cycle=end, macs=macs, events=types.MappingProxyType(events),
                energy_j=types.MappingProxyType(energy_breakdown(events, float(end - start), chip)),
                busy_cycles=busy, stall_cycles=types.MappingProxyType(stalls),
            ))
        return tuple(out)
