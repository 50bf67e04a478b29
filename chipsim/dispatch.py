"""Pre-decoding a Program for the executor: each core's instructions become per-unit queues of plain tuples
that carry their closed-form cycle counts, plus the run's energy-event counts (which do not depend on the
schedule, so they are counted here once).

Decoding is cached per instruction *shape* (every field but the addresses), so a program of 100k
instructions with a few hundred distinct shapes costs one dict lookup per instruction.

Queue entry layouts (element 0 is the kind, element 1 the instruction index in the core's program):
    (LOCAL,   idx, cycles, structural_cycles, instr)          MXU and VEC work: fixed duration
    (DMA,     idx, engine_cycles, dram_channel_cycles, latency_cycles, instr)
    (SEND,    idx, dst_core, tag, nbytes, links, serialization_cycles, hop_cycles, instr)
    (RECV,    idx, src_core, tag, nbytes, instr)
    (SIGNAL,  idx, sem)   (WAIT, idx, sem)   (BARRIER, idx, barrier_number)   (HALT, idx)

Pipelined folds (`core.tensor_core.fold_overlap`): a MATMUL whose predecessor on the MXU queue is a MATMUL
(nothing between them: no WAIT, SIGNAL, LDW or BARRIER) continues that MATMUL's run of folds, so its entry
carries the cycles it adds to the run (`timing.matmul_timing(..., after_matmul_stream=...)`). Consecutive
MXU entries run back to back in the executor, so the saving is exact; anything between them ends the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter

from chipsim import timing
from chipsim.config import ChipConfig, Dataflow, Precision, VectorOp
from chipsim.energy import Event, mac_event, vector_event
from isa import OPCODES, Instr, IsaError, Mem, Opcode, Program, Unit, format_instr
from isa.operands import matmul_out_dtype
from isa.types import DType

LOCAL, DMA, SEND, RECV, SIGNAL, WAIT, BARRIER, HALT = range(8)
NUM_UNITS = 4  # DMA, MXU, VEC, NOC: the queues of one core (CTRL instructions are replicated or handled)

Info = tuple[int | float | tuple[tuple[int, int], ...], ...]
QueueEntry = tuple[int, int, Info | int | None, Instr | None]
EventCounts = tuple[tuple[Event, int], ...]
Decoded = tuple[int, Info, EventCounts]

_PRECISION_OF: dict[DType, Precision] = {DType.INT8: Precision.INT8, DType.BF16: Precision.BF16}
_READ_EVENT = {Mem.SPAD: Event.SPAD_READ_BYTES, Mem.ACC: Event.ACC_READ_BYTES}
_WRITE_EVENT = {Mem.SPAD: Event.SPAD_WRITE_BYTES, Mem.ACC: Event.ACC_WRITE_BYTES}


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


@dataclass(frozen=True, slots=True)
class DecodedCore:
    queues: tuple[tuple[QueueEntry, ...], ...]  # one per unit, DMA MXU VEC NOC
    executed: int  # instructions up to and including HALT (or all, without one)
    barriers: int
    events: dict[Event, int]
    macs: int


class Decoder:
    """Turns instructions into queue entries on one chip; caches work per instruction shape."""

    def __init__(self, chip: ChipConfig) -> None:
        core = chip.core
        tc = core.tensor_core
        self.chip = chip
        self.rows, self.cols = tc.rows, tc.cols
        self.dataflow = tc.dataflow
        self.precision = tc.precision
        self.double_buffer = tc.weight_double_buffer
        self.fold_overlap = tc.fold_overlap
        self.port_bpc = {Mem.SPAD: core.scratchpad.bytes_per_cycle, Mem.ACC: core.accumulator.bytes_per_cycle}
        self.lanes = core.vector.lanes
        self.vec_cycles = core.vector.cycles_per_op
        self.vec_latency = core.vector.latency_cycles
        self.dma_bpc = core.dma.bytes_per_cycle
        self.dram_bpc = chip.dram_bytes_per_cycle
        self.dram_latency = timing.ns_to_cycles(chip.dram.latency_ns, chip.clock_mhz)
        self.mesh_cols = chip.mesh.cols
        self.link_bpc = chip.noc.link_bytes_per_cycle
        self.hop_cycles = chip.noc.hop_cycles
        self._cache: dict[tuple[object, ...], Decoded] = {}  # shape key -> (kind, info, events)
        self._chain_cache: dict[tuple[object, ...], Info] = {}  # (shape key, previous stream) -> info

    # -- per-shape work (cache misses only) -------------------------------------------------------------------
    def _port_cycles(self, reads: dict[Mem, int], writes: dict[Mem, int]) -> int:
        return max(timing.sram_port_cycles(reads.get(m, 0) + writes.get(m, 0), bpc) for m, bpc in self.port_bpc.items())

    def _matmul(self, i: Instr, after_matmul_stream: int = 0) -> Decoded:
        prec = _PRECISION_OF[i.precision]
        if prec is not self.precision:
            raise ExecutionError(
                f"MATMUL precision {prec.value} needs a {prec.value} tensor core, but this chip's tensor core is "
                f"{self.precision.value}; use prec={self.precision.value} or set core.tensor_core.precision={prec.value}"
            )
        preloaded = bool(i.preloaded)
        t = timing.matmul_timing(
            self.dataflow, self.rows, self.cols, i.m, i.k, i.n,
            weight_double_buffer=self.double_buffer, preloaded=preloaded and self.dataflow is Dataflow.WS,
            fold_overlap=self.fold_overlap, after_matmul_stream=after_matmul_stream,
        )
        traffic = timing.matmul_traffic(
            self.dataflow, self.rows, self.cols, i.m, i.k, i.n,
            in_itemsize=i.precision.itemsize, acc_itemsize=matmul_out_dtype(i.precision).itemsize,
            accumulate=bool(i.accumulate), preloaded=preloaded,
        )
        array = t.total_cycles
        ports = self._port_cycles({Mem.SPAD: traffic.spad_read_bytes, Mem.ACC: traffic.acc_read_bytes}, {Mem.ACC: traffic.acc_write_bytes})
        cycles = max(array, ports)
        events = (
            (mac_event(prec), i.m * i.k * i.n),
            (Event.SPAD_READ_BYTES, traffic.spad_read_bytes),
            (Event.ACC_READ_BYTES, traffic.acc_read_bytes),
            (Event.ACC_WRITE_BYTES, traffic.acc_write_bytes),
        )
        return LOCAL, (cycles, cycles - array), events

    def _ldw(self, i: Instr) -> Decoded:
        nbytes = i.k * i.n * i.dtype.itemsize
        shift = timing.weight_load_cycles(self.rows)
        cycles = max(shift, timing.sram_port_cycles(nbytes, self.port_bpc[Mem.SPAD]))
        return LOCAL, (cycles, cycles - shift), ((Event.SPAD_READ_BYTES, nbytes),)

    def _vector(self, i: Instr) -> Decoded:
        spec = i.spec
        elements = i.rows * i.cols
        ops = [VectorOp(v.value) for v in spec.vec_ops]
        compute = sum(timing.vector_cycles(elements, self.lanes, self.vec_cycles.cycles(op), self.vec_latency.cycles(op))
                      for op in ops)
        reads: dict[Mem, int] = {}
        writes: dict[Mem, int] = {}
        for o in spec.operands(i):
            side = writes if o.write else reads
            side[o.mem] = side.get(o.mem, 0) + o.nbytes
        cycles = max(compute, self._port_cycles(reads, writes))
        events = [(vector_event(op), elements) for op in ops]
        events += [(_READ_EVENT[m], b) for m, b in reads.items()] + [(_WRITE_EVENT[m], b) for m, b in writes.items()]
        return LOCAL, (cycles, cycles - compute), tuple(events)

    def _dma(self, i: Instr) -> Decoded:
        nbytes = i.rows * i.cols * i.dtype.itemsize
        engine = max(timing.ceil_div(nbytes, self.dma_bpc), timing.sram_port_cycles(nbytes, self.port_bpc[i.mem]))
        channel = timing.dram_channel_cycles(nbytes, self.dram_bpc)
        if i.op is Opcode.DMA_LD:
            events: EventCounts = ((Event.DRAM_READ_BYTES, nbytes), (_WRITE_EVENT[i.mem], nbytes))
        else:
            events = ((Event.DRAM_WRITE_BYTES, nbytes), (_READ_EVENT[i.mem], nbytes))
        return DMA, (engine, channel, self.dram_latency), events

    def _noc(self, i: Instr, core: int, num_cores: int) -> Decoded:
        peer = i.dst_core if i.op is Opcode.NOC_SEND else i.src_core
        if peer >= num_cores:
            raise ExecutionError(f"core {peer} is outside the mesh of {num_cores} cores (0..{num_cores - 1})")
        if i.op is Opcode.NOC_RECV:
            return RECV, (i.src_core, i.tag, i.bytes), ((_WRITE_EVENT[i.mem], i.bytes),)
        links = timing.xy_route(core, i.dst_core, self.mesh_cols)
        ser = timing.noc_serialization_cycles(i.bytes, self.link_bpc)
        events = ((_READ_EVENT[i.mem], i.bytes), (Event.NOC_BYTE_HOPS, i.bytes * len(links)))
        return SEND, (i.dst_core, i.tag, i.bytes, links, ser, self.hop_cycles), events

    def _miss(self, i: Instr, key: tuple[object, ...]) -> Decoded:
        op = i.op
        if op is Opcode.MATMUL:
            found = self._matmul(i)
        elif op is Opcode.LDW:
            found = self._ldw(i)
        elif op is Opcode.DMA_LD or op is Opcode.DMA_ST:
            found = self._dma(i)
        else:
            found = self._vector(i)
        self._cache[key] = found
        return found

    def _chained(self, prev: Instr, i: Instr, key: tuple[object, ...]) -> Info:
        """Queue info of MATMUL `i` continuing the run of folds of MATMUL `prev`, just before it on the MXU
        queue: it adds its folds to the running array without a fill and drain of its own (`isa/SPEC.md`,
        `## Timing`, pipelined folds). Events are those of the shape, counted once per instruction."""
        chain_key = (key, timing.matmul_stream_cycles(self.dataflow, prev.m, prev.k, prev.n))
        found = self._chain_cache.get(chain_key)
        if found is None:
            found = self._matmul(i, after_matmul_stream=chain_key[1])[1]
            self._chain_cache[chain_key] = found
        return found

    # -- whole program ----------------------------------------------------------------------------------------
    def decode_core(self, core: int, instrs: tuple[Instr, ...], num_cores: int) -> DecodedCore:
        queues: list[list[QueueEntry]] = [[] for _ in range(NUM_UNITS)]
        keys: list[tuple[object, ...]] = []
        events: dict[Event, int] = {}
        cache, shape_key, category, unit_of = self._cache, _SHAPE_KEY, _CATEGORY, _UNIT_OF
        barriers = 0
        executed = len(instrs)
        halt_idx = -1
        idx = 0
        try:
            for idx, instr in enumerate(instrs):
                op = instr[0]
                cat = category[op]
                if cat == _SHAPED:
                    key = shape_key[op](instr)
                    found = cache.get(key)
                    if found is None:
                        found = self._miss(instr, key)
                    keys.append(key)
                    queue = queues[unit_of[op]]
                    info = found[1]
                    if op is Opcode.MATMUL and self.fold_overlap and queue and queue[-1][0] == LOCAL:
                        prev = queue[-1][3]
                        if prev is not None and prev[0] is Opcode.MATMUL:
                            info = self._chained(prev, instr, key)
                    queue.append((found[0], idx, info, instr))
                elif cat == _SYNC:
                    unit = instr[1]  # the unit field (isa.queue_of)
                    if unit is Unit.CTRL:
                        raise ExecutionError(f"{op.name} names the ctrl unit, which has no queue; name dma, mxu, vec or noc")
                    queues[unit].append((SIGNAL if op is Opcode.SIGNAL else WAIT, idx, instr[2], instr))
                elif cat == _NOC:
                    kind, info, noc_events = self._noc(instr, core, num_cores)
                    for ev, n in noc_events:
                        events[ev] = events.get(ev, 0) + n
                    queues[Unit.NOC].append((kind, idx, info, instr))
                elif cat == _BARRIER:
                    for q in queues:
                        q.append((BARRIER, idx, barriers, instr))
                    barriers += 1
                else:
                    executed, halt_idx = idx + 1, idx
                    break
        except (ExecutionError, IsaError) as exc:
            raise ExecutionError(f"{where(core, idx, instrs[idx])}: {exc}".rstrip(".") + ".") from None
        for q in queues:
            q.append((HALT, halt_idx, None, None))
        for key, n in Counter(keys).items():
            for ev, per in cache[key][2]:
                events[ev] = events.get(ev, 0) + n * per
        macs = events.get(Event.MAC_INT8, 0) + events.get(Event.MAC_BF16, 0)
        return DecodedCore(tuple(tuple(q) for q in queues), executed, barriers, events, macs)


def decode_program(program: Program, chip: ChipConfig) -> tuple[DecodedCore, ...]:
    """Per-core queues for `program` on `chip` (ExecutionError if the mesh differs or an instruction cannot run)."""
    if (program.mesh_rows, program.mesh_cols) != (chip.mesh.rows, chip.mesh.cols):
        raise ExecutionError(
            f"the program is for a {program.mesh_rows}x{program.mesh_cols} mesh but chip {chip.name!r} has a "
            f"{chip.mesh.rows}x{chip.mesh.cols} mesh; compile the program for this chip or set mesh.rows/mesh.cols"
        )
    decoder = Decoder(chip)
    return tuple(decoder.decode_core(c, instrs, program.num_cores) for c, instrs in enumerate(program.cores))
