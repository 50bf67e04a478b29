"""Re-check the mapping search's best candidates in the executor.

The analytic model (mapper.tiling) prices a GEMM tiling from per-item costs; the executor runs the program with
everything the model leaves out (DRAM contention between cores, semaphore waits, pipeline fill and drain). For
each GEMM shape the search keeps its few cheapest tilings, and this module runs each as a program of that one
kernel (placed and emitted exactly as in the full program, where a barrier delimits every kernel) and keeps the
fastest measured, ties going to the analytically cheaper. Results are cached per chip and shape: every layer
repeats the same shapes.
"""

from __future__ import annotations

import dataclasses
from functools import cache

from chipsim.config import ChipConfig
from isa import DType
from mapper.context import MapperContext, Measure
from mapper.emit import emit
from mapper.kernels import Gemm, KernelGraphFacts, Tiling, kernel_graph
from mapper.layout import TensorRole, TensorShape, allocate_dram
from mapper.place import place_on_cores


def fastest_measured(k: Gemm, ranked: tuple[Tiling, ...], ctx: MapperContext, reserved_spad: int, reserved_acc: int = 0) -> Tiling:
    assert ctx.measure is not None
    shape = dataclasses.replace(k, name="gemm", layer=0, phase=0, a="a", w="w", deq="deq" if k.deq else None, bias="bias",
                                out_q="out_q" if k.out_q else None,
                                out_f="out_f" if k.out_f else None, out_inv_scale=1.0, part_inv_scales=(), tiling=None)
    return _fastest(shape, ranked, ctx.chip, reserved_spad, reserved_acc, ctx.measure)


@cache
def _fastest(k: Gemm, ranked: tuple[Tiling, ...], chip: ChipConfig, reserved_spad: int, reserved_acc: int, measure: Measure) -> Tiling:
    ctx = MapperContext(chip)
    cycles = [measure(_program(dataclasses.replace(k, tiling=t), ctx, reserved_spad, reserved_acc), chip) for t in ranked]
    return ranked[min(range(len(ranked)), key=lambda i: (cycles[i], i))]


def _program(k: Gemm, ctx: MapperContext, reserved_spad: int, reserved_acc: int):
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
    facts = KernelGraphFacts(tensors=tuple(tensors), resident_spad_bytes=reserved_spad, resident_acc_bytes=reserved_acc)
    g = kernel_graph([k], facts)
    return emit(allocate_dram(place_on_cores(g, ctx), ctx), ctx).program
