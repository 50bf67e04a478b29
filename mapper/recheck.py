"""Re-check the mapping search's best candidates in the executor.

The analytic model (mapper.tiling) prices a GEMM tiling from per-item costs; the executor runs the program with
everything the model leaves out (DRAM contention between cores, semaphore waits, pipeline fill and drain). For
each GEMM shape the search keeps its few cheapest tilings, and this module runs each as a program of that one
kernel (placed and emitted exactly as in the full program, where a barrier delimits every kernel, with the first
weight tiles the kernel before it loads ahead already in their slots) and keeps, among those within 2% of the
fewest DRAM bytes, the best measured by the mapper's objective (cycles, joules with the tiles loaded ahead
priced, or their product), ties going to the analytically cheaper. Results are cached per chip and shape: every
layer repeats the same shapes. Where the objective is latency and the context has the executor's race
(`MapperContext.race`), the candidates run side by side and those behind the fastest are stopped where it ends:
the same pick, without simulating to the end a tiling several times slower than the best.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from chipsim.config import ChipConfig
from chipsim.cost_model import TimingModel, joules
from isa import DType, Mem, Opcode, Program
from mapper.context import MapperContext, Measure, Objective, Race, first_fastest
from mapper.emit import Lowered, emit
from mapper.kernels import Gemm, KernelGraphFacts, OnChip, Tiling, kernel_graph
from mapper.layout import TensorRole, TensorShape, allocate_dram
from mapper.place import place_on_cores


def best_measured(k: Gemm, ranked: tuple[Tiling, ...], ctx: MapperContext, reserved_spad: int, reserved_acc: int = 0,
                     ahead: int = 0, outputs: tuple[OnChip | None, OnChip | None] = (None, None)) -> Tiling:
    """The best of `ranked` by `ctx.objective`, each measured as a program of `k` alone whose first `ahead` weight
    tiles (at most one per slot) are in their slots already, as the kernel before it leaves them in the full
    program (their load's joules added), and whose operand copy and fp32 result stay on chip where `outputs` (their
    OnChip, or None) say so, sent over the NoC as in the full program; among the tilings whose DRAM bytes (the
    tiles loaded ahead counted) are within 2% of the fewest, so one that loads a weight block on two cores or
    re-reads A is not picked for a speed the earlier kernel pays for. The DRAM guard holds for every objective:
    DRAM bytes are a target of their own."""
    assert ctx.measure is not None
    # A kept on chip: at the bottom of the reserved region wherever the plan put it (no time depends on an
    # address), so programs that place their activations differently share the measurement
    a_at = None if k.a_resident is None else ctx.chip.core.scratchpad.size_bytes - reserved_spad
    shape = dataclasses.replace(k, name="gemm", layer=0, phase=0, a="a", w="w", a_resident=a_at, deq="deq" if k.deq else None, bias="bias",
                                out_q="out_q" if k.out_q else None,
                                out_f="out_f" if k.out_f else None, out_inv_scale=1.0, part_inv_scales=(), tiling=None)
    kept = tuple(dataclasses.replace(t, tensor=name) for t, name in zip(outputs, ("out_q", "out_f")) if t is not None)
    race = ctx.race if ctx.objective is Objective.LATENCY else None
    return _best(shape, ranked, ctx.chip, reserved_spad, reserved_acc, ctx.measure, ahead, ctx.objective, kept, race)


@lru_cache(maxsize=1 << 10)  # bounded: a sweep worker meets many chips
def _best(k: Gemm, ranked: tuple[Tiling, ...], chip: ChipConfig, reserved_spad: int, reserved_acc: int, measure: Measure,
             ahead: int = 0, objective: Objective = Objective.LATENCY, kept: tuple[OnChip, ...] = (), race: Race | None = None) -> Tiling:
    ctx = MapperContext(chip)
    lowered = [_program(dataclasses.replace(k, tiling=t), ctx, reserved_spad, reserved_acc, ahead, kept) for t in ranked]
    preloaded = [sum(n for _, _, n in low.ahead_bytes) for low in lowered]
    moved = [_dram_bytes(low.program) + pre for low, pre in zip(lowered, preloaded)]
    fewest = min(moved)
    keep = [i for i in range(len(ranked)) if moved[i] <= fewest * 1.02]
    if len(keep) == 1:  # the guard leaves one: nothing to measure
        return ranked[keep[0]]
    if race is not None:  # latency: the first of the fastest; the slower ones are stopped once they fall behind
        return ranked[keep[first_fastest(race([lowered[i].program for i in keep], chip))]]
    model = TimingModel.of(chip)
    score = {}
    for i in keep:
        cycles, energy = measure(lowered[i].program, chip)
        if preloaded[i]:  # the earlier kernel's loads of these tiles (their leakage is in its time)
            energy += joules(dict(model.dma(preloaded[i], Mem.SPAD, load=True).events), 0, chip)
        score[i] = objective.score(cycles, energy)
    return ranked[min(keep, key=lambda i: (score[i], i))]


def _dram_bytes(program: Program) -> int:
    dma = (Opcode.DMA_LD, Opcode.DMA_ST)
    return sum(i.rows * i.cols * i.dtype.itemsize for core in program.cores for i in core if i[0] in dma)


def _program(k: Gemm, ctx: MapperContext, reserved_spad: int, reserved_acc: int, ahead: int = 0, kept: tuple[OnChip, ...] = ()) -> Lowered:
    q = DType.INT8 if ctx.int8 else DType.BF16
    f32 = DType.FP32
    inp, par, out = TensorRole.INPUT, TensorRole.PARAMETER, TensorRole.OUTPUT
    tensors: list[TensorShape] = [("a", k.m, k.k, q, inp), ("w", k.k, k.n, q, par), ("bias", 1, k.n, f32, par)]
    if k.deq:
        tensors.append(("deq", 1, k.n, f32, par))
    if k.out_q:
        tensors.append(("out_q", k.m, k.n, q, out))
    if k.out_f:
        tensors.append(("out_f", k.m, k.n, DType.INT32 if k.raw and ctx.int8 else f32, out))
    facts = KernelGraphFacts(tensors=tuple(tensors), resident_spad_bytes=reserved_spad, resident_acc_bytes=reserved_acc, on_chip=kept)
    g = kernel_graph([k], facts)
    return emit(allocate_dram(place_on_cores(g, ctx), ctx), ctx, replay=False, ahead=ahead)  # one kernel: nothing repeats
