"""The hardware cost model: what one instruction costs on one chip, in cycles and in energy events.

One model, used twice: the executor's dispatch (chipsim.dispatch) times every instruction with it, and the
mapper's mapping search (mapper.tiling) costs candidate tiles with it, so the search optimises the model that
runs. The closed forms themselves are chipsim.timing's; this module composes them the one way they are used
(an SRAM port slower than the array or the lanes stretches the instruction; a DMA transfer is bounded by its
engine and the SRAM port, then shares the DRAM channel), and `TimingRule` from the ISA's opcode table picks
which composition an instruction gets.

`TimingModel.of(chip)` is built once per chip and cached. `joules(events, cycles, chip)` prices a count of
events over a run of that many cycles with the energy model the executor reports (chipsim.energy), so the
mapper's search can weigh energy with the same figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from chipsim import timing
from chipsim.config import ChipConfig, Dataflow, Precision, VectorCyclesPerOpConfig, VectorLatencyConfig, VectorOp
from chipsim.energy import Component, Event, energy_breakdown, mac_event, vector_event
from isa import OPCODES, Instr, Mem, Opcode, TimingRule, VecOp
from isa.operands import matmul_out_dtype
from isa.types import DType

_PRECISION_OF: dict[DType, Precision] = {DType.INT8: Precision.INT8, DType.BF16: Precision.BF16}
READ_EVENT = {Mem.SPAD: Event.SPAD_READ_BYTES, Mem.ACC: Event.ACC_READ_BYTES}
WRITE_EVENT = {Mem.SPAD: Event.SPAD_WRITE_BYTES, Mem.ACC: Event.ACC_WRITE_BYTES}

EventCounts = tuple[tuple[Event, int], ...]


class CostError(ValueError):
    """An instruction this chip cannot run (one sentence: what and how to fix it)."""


@dataclass(frozen=True, slots=True)
class ComputeCost:
    """MXU or VEC work: fixed duration, of which `stretched_cycles` are the SRAM port beyond the array/lanes. A
    MATMUL also says its `tail_cycles` (chipsim.timing.MatmulTiming: from its stream front to its end) and its
    `port_cycles` (the SRAM ports' time alone), which the executor needs to continue a run of folds."""

    cycles: int
    stretched_cycles: int
    events: EventCounts
    tail_cycles: int = 0
    port_cycles: int = 0


@dataclass(frozen=True, slots=True)
class DmaCost:
    engine_cycles: int  # the DMA engine and SRAM port alone
    channel_cycles: float  # the transfer's share of the chip-wide DRAM channel
    latency_cycles: int  # DRAM latency, after the last byte
    events: EventCounts


@dataclass(frozen=True, slots=True)
class TimingModel:
    rows: int
    cols: int
    dataflow: Dataflow
    precision: Precision
    weight_double_buffer: bool
    fold_overlap: bool
    partial_folds: bool
    spad_bytes_per_cycle: int
    acc_bytes_per_cycle: int
    lanes: int
    vector_cycles_per_op: VectorCyclesPerOpConfig
    vector_latency_cycles: VectorLatencyConfig
    dma_bytes_per_cycle: int
    dma_engines: int
    dram_bytes_per_cycle: float
    dram_latency_cycles: int
    mesh_cols: int
    link_bytes_per_cycle: int
    hop_cycles: int
    # Costs by their arguments: the mapper's search prices the same few transfers, MATMULs and vector ops many times
    _dma_memo: dict[tuple[int, Mem, bool], DmaCost] = field(default_factory=dict, compare=False, hash=False, repr=False)
    _matmul_memo: dict[tuple[object, ...], ComputeCost] = field(default_factory=dict, compare=False, hash=False, repr=False)
    _vector_memo: dict[tuple[object, ...], ComputeCost] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @staticmethod
    @lru_cache(maxsize=64)  # bounded: a sweep worker meets many chips
    def of(chip: ChipConfig) -> TimingModel:
        core = chip.core
        tc = core.tensor_core
        return TimingModel(
            rows=tc.rows, cols=tc.cols, dataflow=tc.dataflow, precision=tc.precision, weight_double_buffer=tc.weight_double_buffer,
            fold_overlap=tc.fold_overlap, partial_folds=tc.partial_folds,
            spad_bytes_per_cycle=core.scratchpad.bytes_per_cycle, acc_bytes_per_cycle=core.accumulator.bytes_per_cycle,
            lanes=core.vector.lanes, vector_cycles_per_op=core.vector.cycles_per_op, vector_latency_cycles=core.vector.latency_cycles,
            dma_bytes_per_cycle=core.dma.bytes_per_cycle, dma_engines=core.dma.engines,
            dram_bytes_per_cycle=chip.dram_bytes_per_cycle,
            dram_latency_cycles=timing.ns_to_cycles(chip.dram.latency_ns, chip.clock_mhz),
            mesh_cols=chip.mesh.cols, link_bytes_per_cycle=chip.noc.link_bytes_per_cycle, hop_cycles=chip.noc.hop_cycles,
        )

    # -- compositions ------------------------------------------------------------------------------------------
    def port_cycles(self, reads: Mapping[Mem, int], writes: Mapping[Mem, int]) -> int:
        """The busiest SRAM port's cycles for these bytes (reads and writes share a port)."""
        return max(
            timing.sram_port_cycles(reads.get(Mem.SPAD, 0) + writes.get(Mem.SPAD, 0), self.spad_bytes_per_cycle),
            timing.sram_port_cycles(reads.get(Mem.ACC, 0) + writes.get(Mem.ACC, 0), self.acc_bytes_per_cycle),
        )

    def matmul(self, m: int, k: int, n: int, dtype: DType, *, accumulate: bool, preloaded: bool, after_matmul_stream: int = 0) -> ComputeCost:
        """A MATMUL; `after_matmul_stream` > 0 when it continues the run of folds of the MATMUL just before it on
        the same array (pipelined folds: chipsim.timing.matmul_timing)."""
        key = (m, k, n, dtype, accumulate, preloaded, after_matmul_stream)
        found = self._matmul_memo.get(key)
        if found is None:
            found = self._matmul_memo[key] = self._matmul(*key)
        return found

    def chained_matmul(self, m: int, k: int, n: int, dtype: DType, *, accumulate: bool, preloaded: bool,
                       after: tuple[int, int, int] | None) -> int:
        """A MATMUL's cycles as a step of a run of folds on the array: continuing the one of shape `after` (m, k, n)
        right before it (None: the first, from an empty array), its array time or its SRAM ports', the longer. The
        mapper's estimates of chained MATMULs; the executor applies the same rule to each (chipsim.dispatch)."""
        stream = 0 if after is None else timing.matmul_stream_cycles(self.dataflow, *after)
        c = self.matmul(m, k, n, dtype, accumulate=accumulate, preloaded=preloaded, after_matmul_stream=stream)
        return max(c.cycles - c.stretched_cycles, c.port_cycles)

    def _matmul(self, m: int, k: int, n: int, dtype: DType, accumulate: bool, preloaded: bool, after_matmul_stream: int) -> ComputeCost:
        prec = _PRECISION_OF[dtype]
        if prec is not self.precision:
            raise CostError(
                f"MATMUL precision {prec.value} needs a {prec.value} tensor core, but this chip's tensor core is "
                f"{self.precision.value}; use prec={self.precision.value} or set core.tensor_core.precision={prec.value}"
            )
        t = timing.matmul_timing(
            self.dataflow, self.rows, self.cols, m, k, n,
            weight_double_buffer=self.weight_double_buffer, preloaded=preloaded and self.dataflow is Dataflow.WS,
            fold_overlap=self.fold_overlap, after_matmul_stream=after_matmul_stream, partial_folds=self.partial_folds,
        )
        traffic = timing.matmul_traffic(
            self.dataflow, self.rows, self.cols, m, k, n, in_itemsize=dtype.itemsize,
            acc_itemsize=matmul_out_dtype(dtype).itemsize, accumulate=accumulate, preloaded=preloaded,
        )
        array = t.total_cycles
        ports = self.port_cycles({Mem.SPAD: traffic.spad_read_bytes, Mem.ACC: traffic.acc_read_bytes}, {Mem.ACC: traffic.acc_write_bytes})
        cycles = max(array, ports)
        events = (
            (mac_event(prec), m * k * n),
            (Event.SPAD_READ_BYTES, traffic.spad_read_bytes),
            (Event.ACC_READ_BYTES, traffic.acc_read_bytes),
            (Event.ACC_WRITE_BYTES, traffic.acc_write_bytes),
        )
        return ComputeCost(cycles, cycles - array, events, t.tail_cycles, ports)

    def weight_load(self, k: int, n: int, dtype: DType) -> ComputeCost:
        nbytes = k * n * dtype.itemsize
        shift = timing.weight_load_cycles(self.rows, k, partial=self.partial_folds and self.fold_overlap)
        cycles = max(shift, timing.sram_port_cycles(nbytes, self.spad_bytes_per_cycle))
        return ComputeCost(cycles, cycles - shift, ((Event.SPAD_READ_BYTES, nbytes),))

    def vector(self, vec_ops: tuple[VecOp, ...], elements: int, reads: Mapping[Mem, int], writes: Mapping[Mem, int]) -> ComputeCost:
        """A vector instruction over `elements` values doing `vec_ops` (the ISA table's classes for its opcode)."""
        key = (vec_ops, elements, tuple(reads.items()), tuple(writes.items()))
        found = self._vector_memo.get(key)
        if found is None:
            found = self._vector_memo[key] = self._vector(vec_ops, elements, reads, writes)
        return found

    def _vector(self, vec_ops: tuple[VecOp, ...], elements: int, reads: Mapping[Mem, int], writes: Mapping[Mem, int]) -> ComputeCost:
        ops = [VectorOp(v.value) for v in vec_ops]
        compute = sum(timing.vector_cycles(elements, self.lanes, self.vector_cycles_per_op.cycles(op), self.vector_latency_cycles.cycles(op))
                      for op in ops)
        cycles = max(compute, self.port_cycles(reads, writes))
        events = [(vector_event(op), elements) for op in ops]
        events += [(READ_EVENT[m], b) for m, b in reads.items()] + [(WRITE_EVENT[m], b) for m, b in writes.items()]
        return ComputeCost(cycles, cycles - compute, tuple(events))

    def vector_op(self, opcode: Opcode, rows: int, cols: int, reads: Mapping[Mem, int], writes: Mapping[Mem, int]) -> ComputeCost:
        """The same, for an opcode of the ISA table over a rows x cols tile."""
        return self.vector(OPCODES[opcode].vec_ops, rows * cols, reads, writes)

    def dma(self, nbytes: int, mem: Mem, *, load: bool) -> DmaCost:
        found = self._dma_memo.get((nbytes, mem, load))
        if found is None:
            found = self._dma_memo[(nbytes, mem, load)] = self._dma(nbytes, mem, load)
        return found

    def _dma(self, nbytes: int, mem: Mem, load: bool) -> DmaCost:
        engine = max(timing.ceil_div(nbytes, self.dma_bytes_per_cycle),
                     timing.sram_port_cycles(nbytes, self.spad_bytes_per_cycle if mem is Mem.SPAD else self.acc_bytes_per_cycle))
        channel = timing.dram_channel_cycles(nbytes, self.dram_bytes_per_cycle)
        if load:
            events: EventCounts = ((Event.DRAM_READ_BYTES, nbytes), (WRITE_EVENT[mem], nbytes))
        else:
            events = ((Event.DRAM_WRITE_BYTES, nbytes), (READ_EVENT[mem], nbytes))
        return DmaCost(engine, channel, self.dram_latency_cycles, events)

    def noc_serialization_cycles(self, nbytes: int) -> int:
        return timing.noc_serialization_cycles(nbytes, self.link_bytes_per_cycle)

    # -- one instruction ---------------------------------------------------------------------------------------
    def cost(self, i: Instr) -> ComputeCost | DmaCost:
        """The cost of an MXU, VEC or DMA instruction, by its opcode's timing rule (NoC and sync are scheduled by
        the executor: their time depends on the other cores)."""
        rule = OPCODES[i.op].timing
        if rule is TimingRule.MATMUL:
            return self.matmul(i.m, i.k, i.n, i.precision, accumulate=bool(i.accumulate), preloaded=bool(i.preloaded))
        if rule is TimingRule.WEIGHT_LOAD:
            return self.weight_load(i.k, i.n, i.dtype)
        if rule is TimingRule.DMA:
            return self.dma(i.rows * i.cols * i.dtype.itemsize, i.mem, load=i.op is Opcode.DMA_LD)
        if rule in (TimingRule.VECTOR_ELEMENTWISE, TimingRule.VECTOR_REDUCE):
            reads: dict[Mem, int] = {}
            writes: dict[Mem, int] = {}
            for o in i.spec.operands(i):
                side = writes if o.write else reads
                side[o.mem] = side.get(o.mem, 0) + o.nbytes
            return self.vector(i.spec.vec_ops, i.rows * i.cols, reads, writes)
        raise CostError(f"{i.op.name} has timing rule {rule.value}, which the executor schedules; it has no fixed cost")


def joules(events: Mapping[Event, float], cycles: float, chip: ChipConfig) -> float:
    """The energy of `events` (counts by Event) over `cycles` of leakage on `chip`: chipsim.energy's total, the
    figure a run reports."""
    return energy_breakdown({e.value: n for e, n in events.items()}, cycles, chip)[Component.TOTAL.value]

