"""The emit step: kernel graph -> one ISA program per core.

Each kernel becomes, on every core, the instruction queues of its work items followed by a BARRIER, but for two
edges where the GEMM's result stays on chip. A GEMM whose fp32 result is the input rows of the LayerNorm after it
(kernels.hands_rows) shares that LayerNorm's phase: its last tile goes to the rows' owners in rounds of the
LayerNorm's items (`handoff_sends`), each item normalized as soon as its round is in. The fused Q|K|V projection
shares the attention's phase (kernels.feeds_heads): its tiles, dealt in head order (mapper.place), are gathered in
rounds (`_feed_rounds`) and each head's MATMULs start once the round holding its Q, K and V is in
(`head_rounds`). A phase's kernels share its label for per-layer reporting (`l3.qkv+attn`, `l3.ffn2+ln2`); each
instruction keeps its kernel's name in `Lowered.labels`. Within a phase a core
pipelines its items through DMA -> MXU -> VEC -> DMA with channels of buffer slots (mapper/sync.py): two each,
a GEMM's weight tiles and their scales three where the scratchpad holds them (Tiling.w_slots), or one per tile
where earlier kernels load them ahead (`_plan_ahead`). The vector-unit sequences are exactly the float32
operation orders of `workloads.numerics`, so an int8 chip reproduces the quantized reference bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from isa import (
    Bcast,
    DmaLd,
    DmaSt,
    DType,
    Halt,
    Instr,
    Ldw,
    Matmul,
    Mem,
    NocRecv,
    NocSend,
    Opcode,
    Program,
    Reduce,
    Signal,
    Unit,
    Vadd,
    Vcvt,
    Vdeq,
    Vdeqc,
    Vexp,
    Vgelu,
    Vmul,
    Vquant,
    Vrecip,
    Vrmax,
    Vrsqrt,
    Vrsum,
    Vscale,
    Vsub,
    Wait,
)
from chipsim.config import Dataflow
from chipsim.cost_model import ComputeCost, TimingModel
from isa.semantics import NUM_SEMAPHORES
from mapper.context import MapperContext, first_fastest
from mapper.errors import MapperError
from mapper.kernels import Attention, Gemm, Kernel, KernelGraphFacts, OnChip, Residency, RowNorm, block_offset, block_pieces, feeds_heads, graph_facts, hands_rows
from mapper.kernels import Bcast as AddBcast
from mapper.layout import DramLayout, Tensor
from mapper.place import HeadOwners, owned_rows
from mapper.replay import KernelReplay
from mapper.sync import UNITS, Buf, Channel, CoreBuilder, Pin, interleave, interleave_order, top_address
from mapper.tiling import align, attention_sram_bytes, beside_projection, gemm_sram_bytes, rownorm_sram_bytes

F32 = DType.FP32
Work = tuple[tuple[tuple[int, ...], ...], ...]  # per core, its work items
PROB_SCALE = 127.0  # softmax probabilities onto 0..127 (workloads.quantized.PROB_INV_SCALE)
TAGS = 1 << 16  # NoC tags (16 bits): an item's index, modulo; sends and receives of one key match in order
PARTIAL_TAG = TAGS - 1  # a GEMM's partial sums under stream-K (its items' tags are their index modulo this)


@dataclass(frozen=True)
class Lowered:
    """A mapped workload: the program, the DRAM layout, and for each instruction the phase it belongs to."""

    program: Program
    layout: DramLayout
    labels: tuple[tuple[str, ...], ...]  # per core, per instruction: its kernel (a BARRIER and HALT: the phase)
    phases: tuple[str, ...]
    phase_macs: dict[str, int]
    phase_mapping: dict[str, str]  # per phase name: how its kernels were tiled and placed, in words
    # DRAM bytes a kernel loads for a later one (the next GEMM's first weight tiles): (loading kernel, for kernel, bytes)
    ahead_bytes: tuple[tuple[str, str, int], ...] = ()
    phase_kernels: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # per phase name: its kernels
    # pins that did not fit after a GEMM leaving the DRAM idle kept new slots below its own (emit's `defer_pins`)
    stranded_pins: int = 0


# ---- small instruction helpers ------------------------------------------------------------------------------

def _ld(buf: Buf, t: Tensor, row: int, col: int, rows: int, cols: int) -> Instr:
    return DmaLd(mem=buf.mem, sram_addr=buf.addr, dram_addr=t.addr + row * t.row_bytes + col * t.dtype.itemsize,
                 rows=rows, cols=cols, dram_stride_bytes=t.row_bytes, dtype=t.dtype)


def _st(buf: Buf, t: Tensor, row: int, col: int, rows: int, cols: int) -> Instr:
    return DmaSt(mem=buf.mem, sram_addr=buf.addr, dram_addr=t.addr + row * t.row_bytes + col * t.dtype.itemsize,
                 rows=rows, cols=cols, dram_stride_bytes=t.row_bytes, dtype=t.dtype)


def _bin(cls: type, dst: Buf, a: Buf, b: Buf, rows: int, cols: int, bcast: Bcast) -> Instr:
    return cls(dst_mem=dst.mem, dst_addr=dst.addr, src1_mem=a.mem, src1_addr=a.addr, src2_mem=b.mem, src2_addr=b.addr,
               rows=rows, cols=cols, bcast=bcast)


def _un(cls: type, dst: Buf, src: Buf, rows: int, cols: int) -> Instr:
    return cls(dst_mem=dst.mem, dst_addr=dst.addr, src_mem=src.mem, src_addr=src.addr, rows=rows, cols=cols)


def _scale(buf: Buf, rows: int, cols: int, a: float, b: float = 0.0) -> Instr:
    return Vscale(dst_mem=buf.mem, dst_addr=buf.addr, rows=rows, cols=cols, a=float(np.float32(a)), b=float(np.float32(b)))


def _deq(buf: Buf, rows: int, cols: int, scale: float) -> Instr:
    """int32 sums -> fp32 times `scale`, in place: one pass of the converter (not a convert, a multiply and an add)."""
    return Vdeq(dst_mem=buf.mem, dst_addr=buf.addr, src_mem=buf.mem, src_addr=buf.addr, rows=rows, cols=cols, scale=float(np.float32(scale)))


def _cvt(dst: Buf, src: Buf, rows: int, cols: int, src_t: DType, dst_t: DType) -> Instr:
    return Vcvt(dst_mem=dst.mem, dst_addr=dst.addr, src_mem=src.mem, src_addr=src.addr, rows=rows, cols=cols,
                from_dtype=src_t, to_dtype=dst_t)


def _to_operand(dst: Buf, src: Buf, rows: int, cols: int, int8: bool, inv_scale: float) -> Instr:
    """fp32 -> the next matmul's operand: quantize (int8) or round to bf16."""
    if int8:
        return Vquant(dst_mem=dst.mem, dst_addr=dst.addr, src_mem=src.mem, src_addr=src.addr, rows=rows, cols=cols,
                      scale=float(np.float32(inv_scale)))
    return _cvt(dst, src, rows, cols, F32, DType.BF16)


def _q_dtype(int8: bool) -> DType:
    return DType.INT8 if int8 else DType.BF16


# ---- GEMM ---------------------------------------------------------------------------------------------------

def emit_gemm(b: CoreBuilder, k: Gemm, work: Work, facts: KernelGraphFacts, ctx: MapperContext) -> None:
    assert k.tiling is not None and b.spad is not None and b.acc is not None and facts.dram is not None
    dram = facts.dram
    outq_chip, outf_chip = facts.on_chip_of(k.out_q), facts.on_chip_of(k.out_f)
    items = work[b.core]
    # the fp32 result handed, row block by row block, to the LayerNorm of this phase (kernels.hands_rows)
    handing = b.handoff_rows is not None and outf_chip is not None
    # the operand copy sent in rounds to the attention of this phase, each head starting once it is in (feeds_heads)
    feeding = b.feeding is not None and outq_chip is not None
    base = {u: len(b.queues[u]) for u in (Unit.MXU, Unit.VEC)}
    if not items:
        if handing:
            _handoff_rounds(b, k, work, outf_chip, ctx, [])
        elif feeding:
            _feed_rounds(b, k, work, outq_chip, ctx, [])
        else:
            _gemm_recvs(b, k, work, outq_chip, outf_chip, ctx)
        return
    tm, tn, tk = k.tiling.tm, k.tiling.tn, k.tiling.tk
    int8, q = ctx.int8, ctx.q_itemsize
    prec = _q_dtype(int8)
    a_t, w_t = dram[k.a], dram[k.w]
    bias_t = None if k.raw else dram[k.bias]
    deq_t = dram[k.deq] if int8 and k.deq else None
    outq_t = dram[k.out_q] if k.out_q and outq_chip is None else None
    outf_t = dram[k.out_f] if k.out_f and outf_chip is None else None
    resident = tk >= k.k  # the whole K x tn weight block sits in the scratchpad across row tiles
    # A read in place: kept on chip (whole, or in column blocks of tk under stream-K), or this core's rows loaded once
    # (A-stationary)
    a_once = k.tiling.a_once
    a_in_place = k.a_resident is not None or a_once
    owners = owned_rows(k.m, ctx.cores) if outf_chip is not None else ()
    # stream-K: this core's tile split with a neighbour, if any, at either end of its run: it sends the partial
    # sums of the one it starts (its later chunks) and finishes the one it ends with (its first chunks)
    partner = _split_partners(work, k.k) if k.tiling.split_k else {}

    # the weight slots at the top of the scratchpad, slot 0 highest: where earlier kernels loaded the first tiles
    # (b.slots, b.slots_loaded), or just below what is kept there for later GEMMs
    n_slots = len(b.slots) if b.slots else k.tiling.w_slots
    w_bufs = ([Buf(Mem.SPAD, a) for a in b.slots] if b.slots
              else [b.spad.take_top(tk * tn * q, f"{k.name} weight tile") for _ in range(n_slots)])
    a_bufs = [] if a_in_place else [b.spad.take(tm * tk * q, f"{k.name} A tile") for _ in range(2)]
    a_rows = (min(it[0] for it in items), max(min(it[0] + tm, k.m) for it in items)) if a_once else (0, 0)
    a_base = b.spad.take((a_rows[1] - a_rows[0]) * k.k * q, f"{k.name} A rows").addr if a_once else k.a_resident
    # as many scale and bias slots as weight slots: a block's scales load right behind its weights, not after the
    # epilogue two blocks back
    aux_bufs = [(b.spad.take(tn * 4, f"{k.name} dequant scales"), b.spad.take(tn * 4, f"{k.name} bias"))
                for _ in range(n_slots)]
    out_bufs = [b.spad.take(tm * tn * q, f"{k.name} output tile") for _ in range(2)] if k.out_q else []
    # three accumulator tiles where they fit: a MATMUL then waits for the epilogue two items back, not the last one
    # (and the accumulator buffers of a kernel sharing its phase after it: b.reserved_acc)
    acc_slots = 3 if b.acc.size - b.acc.top - b.reserved_acc >= 3 * align(tm * tn * 4) else 2
    acc_bufs = [b.acc.take(tm * tn * 4, f"{k.name} accumulator tile") for _ in range(acc_slots)]

    ch_a = Channel(b, Unit.DMA, Unit.MXU)
    ch_w = Channel(b, Unit.DMA, Unit.MXU, slots=n_slots)
    ch_aux = None if k.raw else Channel(b, Unit.DMA, Unit.VEC, slots=n_slots)
    # the operand copy goes to DRAM (DMA) or to every core's gathered copy (NOC); the fp32 result likewise to DRAM
    # or, row block by row block, to the cores owning those rows
    ch_out = Channel(b, Unit.VEC, Unit.DMA if outq_t else Unit.NOC) if k.out_q else None
    ch_acc = Channel(b, Unit.MXU, Unit.VEC, slots=acc_slots)
    ready = b.sem() if k.out_f else -1  # VEC -> DMA or NOC: an fp32 result in the accumulator (counted, in item order)
    # MXU -> NOC: a split tile's partial sums are complete here (to send them, or to add the other core's to them)
    summed = b.sem() if any(k0 > 0 or k1 < k.k for _, _, k0, k1 in items) else -1
    add = Reduce.INT32 if int8 else Reduce.FP32
    if a_once:  # the core's rows of A, before everything else on the DMA queue; the MXU waits for them once
        a_ready = b.sem()
        b.emit(Unit.DMA, _ld(Buf(Mem.SPAD, a_base), a_t, a_rows[0], 0, a_rows[1] - a_rows[0], k.k))
        b.signal(Unit.DMA, a_ready)
        b.wait(Unit.MXU, a_ready)

    loads, stores, mxu, vec = [], [], [], []
    handed: list[list[Instr]] = []  # handing: the last tile's sends, round by round (handoff_sends)
    sent: list[list[Instr]] = []  # feeding: each item's NoC instructions, one round each (_feed_rounds)
    w_slot = aux_slot = -1
    w_loads = 0  # weight tiles acquired so far; the first b.slots_loaded are in their slots already
    # the tiles with an epilogue here (a tile whose partial sums go to another core has none) and their scales'
    # and bias's column blocks: loaded for the first tile of a block, released after the last
    finished = [it for it in items if it[2] == 0]
    finished_at = {it: i for i, it in enumerate(finished)}
    for idx, (m0, n0, lo, hi) in enumerate(items):
        rows, cols = min(tm, k.m - m0), k.tile_cols(n0)
        new_block = idx == 0 or items[idx - 1][1] != n0
        last_of_block = idx == len(items) - 1 or items[idx + 1][1] != n0
        chunks = [(k0, min(tk, hi - k0)) for k0 in range(lo, hi, tk)]
        sends_partial, adds_partial = lo > 0, lo == 0 and hi < k.k
        noc_at = len(b.queues[Unit.NOC])
        at = finished_at.get(items[idx], -1)
        aux_first = at == 0 or (at > 0 and finished[at - 1][1] != n0)
        aux_last = at >= 0 and (at == len(finished) - 1 or finished[at + 1][1] != n0)
        # DMA: loads of this item
        with b.capture(Unit.DMA) as dma:
            a_slots, w_slots, w_ahead = [], [], []
            for k0, kc in chunks:
                if new_block or not resident:
                    w_slot = ch_w.acquire()
                    w_ahead.append(w_loads < b.slots_loaded)
                    w_loads += 1
                    if w_ahead[-1]:  # loaded ahead, before the barrier
                        ch_w.filled(w_slot)
                    else:
                        b.emit(Unit.DMA, _ld(w_bufs[w_slot], w_t, k0, n0, kc, cols))
                        ch_w.publish(w_slot)
                    w_slots.append(w_slot)
                if not a_in_place:
                    s = ch_a.acquire()
                    b.emit(Unit.DMA, _ld(a_bufs[s], a_t, m0, k0, rows, kc))
                    ch_a.publish(s)
                    a_slots.append(s)
            # the epilogue's scales and bias after the operands: only the epilogue, after the MATMUL, reads them
            if aux_first and ch_aux is not None and bias_t is not None:
                aux_slot = ch_aux.acquire()
                if deq_t is not None:
                    b.emit(Unit.DMA, _ld(aux_bufs[aux_slot][0], deq_t, 0, n0, 1, cols))
                b.emit(Unit.DMA, _ld(aux_bufs[aux_slot][1], bias_t, 0, n0, 1, cols))
                ch_aux.publish(aux_slot)
        loads.append(dma)
        # MXU: the k-chunks accumulate into one accumulator tile
        with b.capture(Unit.MXU) as mx:
            c = ch_acc.acquire()
            acc_tile = acc_bufs[c]
            for j, (k0, kc) in enumerate(chunks):
                if w_slots and (not resident or j == 0) and not w_ahead[j]:
                    ch_w.consume(w_slots[j])  # a freshly loaded weight tile
                wb = w_bufs[w_slots[j]] if not resident else w_bufs[w_slot]
                if k.a_resident is not None:  # the whole A, in column blocks of tk when the reduction is chunked
                    a_addr = k.a_resident + block_offset(k.m, k.k, tk if tk < k.k else 0, m0, k0)[0] * q
                elif a_in_place:
                    assert a_base is not None
                    a_addr = a_base + (m0 - a_rows[0]) * k.k * q
                else:
                    ch_a.consume(a_slots[j])
                    a_addr = a_bufs[a_slots[j]].addr
                # the first: its first fold in the array already when an LDW put it there before the barrier
                pre = b.preloaded and idx == 0 and j == 0
                assert not pre or w_ahead[0]
                b.emit(Unit.MXU, Matmul(a_addr=a_addr, b_addr=wb.addr, c_addr=acc_tile.addr, m=rows, k=kc, n=cols,
                                        precision=prec, accumulate=j > 0, preloaded=pre, transpose_b=False))
                if not a_in_place:
                    ch_a.release(a_slots[j])
                if not resident:
                    ch_w.release(w_slots[j])
            if resident and last_of_block:
                ch_w.release(w_slot)
            if sends_partial or adds_partial:  # to the NOC first, which publishes it for the epilogue when it adds
                ch_acc.filled(c)
                b.signal(Unit.MXU, summed)
            else:
                ch_acc.publish(c)
        mxu.append(mx)
        if sends_partial:  # no epilogue and no store: the partial sums go to the core finishing the tile
            vec.append([])
            stores.append([])
            b.wait(Unit.NOC, summed)
            b.emit(Unit.NOC, NocSend(dst_core=partner[(m0, n0)][0], mem=Mem.ACC, addr=acc_tile.addr, bytes=rows * cols * 4, tag=PARTIAL_TAG))
            ch_acc.release(c, Unit.NOC)
            continue
        if adds_partial:  # the other core's partial sums (its later chunks, sent first thing) added onto this core's
            b.wait(Unit.NOC, summed)
            b.emit(Unit.NOC, NocRecv(src_core=partner[(m0, n0)][1], mem=Mem.ACC, addr=acc_tile.addr, bytes=rows * cols * 4,
                                     tag=PARTIAL_TAG, reduce=add))
            b.signal(Unit.NOC, ch_acc.full)
        # VEC: epilogue
        with b.capture(Unit.VEC) as vc:
            acc = acc_tile
            ch_acc.consume(c)
            # the last item's epilogue in row pieces, each stored or sent as soon as it is done (epilogue_pieces)
            pieces = epilogue_pieces(k, m0, rows, idx == len(items) - 1, b.core, ctx.cores, outf_chip is not None)
            o_slot = ch_out.acquire() if ch_out is not None else -1
            if ch_aux is not None and aux_first:
                ch_aux.consume(aux_slot)
            for r0, r1 in pieces:
                part, n_rows = Buf(acc.mem, acc.addr + r0 * cols * 4), r1 - r0
                if ch_aux is not None:
                    deq, bias = aux_bufs[aux_slot]
                    if int8:  # int32 sums -> fp32 times the column's scale: one pass of the converter
                        b.emit(Unit.VEC, Vdeqc(dst_mem=part.mem, dst_addr=part.addr, src_mem=part.mem, src_addr=part.addr,
                                               scale_mem=deq.mem, scale_addr=deq.addr, rows=n_rows, cols=cols))
                    b.emit(Unit.VEC, _bin(Vadd, part, part, bias, n_rows, cols, Bcast.ROW))
                if k.gelu:
                    b.emit(Unit.VEC, _un(Vgelu, part, part, n_rows, cols))
                if ch_out is not None and k.raw and int8:  # requantize the int32 sums alone
                    b.emit(Unit.VEC, _cvt(part, part, n_rows, cols, DType.INT32, F32))
                if ch_out is not None:
                    out = out_bufs[o_slot]
                    b.emit(Unit.VEC, _to_operand(Buf(out.mem, out.addr + r0 * cols * q), part, n_rows, cols, int8, k.inv_scale_at(n0)))
                    ch_out.publish(o_slot)  # once a piece: the consumer waits once a piece and releases the slot once
                if k.out_f is not None:
                    b.signal(Unit.VEC, ready)
            if ch_aux is not None and aux_last:
                ch_aux.release(aux_slot)
            if k.out_f is None:
                ch_acc.release(c)
        vec.append(vc)
        # DMA: store of this item (emitted after the next item's loads); NOC: its sends, in item order
        with b.capture(Unit.DMA) as st:
            for r0, r1 in pieces:
                if ch_out is not None and outq_t is not None:
                    ch_out.consume(o_slot)
                    out = out_bufs[o_slot]
                    b.emit(Unit.DMA, _st(Buf(out.mem, out.addr + r0 * cols * q), outq_t, m0 + r0, n0, r1 - r0, cols))
                if outf_t is not None:
                    b.wait(Unit.DMA, ready)
                    b.emit(Unit.DMA, _st(Buf(acc.mem, acc.addr + r0 * cols * 4), outf_t, m0 + r0, n0, r1 - r0, cols))
            if ch_out is not None and outq_t is not None:
                ch_out.release(o_slot)
            if outf_t is not None:
                ch_acc.release(c, Unit.DMA)
        stores.append(st)
        for r0, r1 in pieces:
            if ch_out is not None and outq_chip is not None:
                ch_out.consume(o_slot)
                blocks = block_pieces(outq_chip.block_cols, n0, cols)
                strided = len(blocks) > 1
                at = out_bufs[o_slot].addr + r0 * cols * q
                for c0, c1 in blocks:  # one copy to every core's gathered whole; a piece per column block the tile spans
                    # (feeding the attention: each head block to the cores running that head alone)
                    dests = b.feeding.dests(m0 + r0, m0 + r1, c0) if b.feeding is not None else ()
                    for dst in dests if 0 < len(dests) < ctx.cores else (-1,):
                        b.emit(Unit.NOC, NocSend(dst_core=max(dst, 0), mem=Mem.SPAD, addr=at + (c0 - n0) * q,
                                                 bytes=(r1 - r0) * (c1 - c0) * q, tag=idx % PARTIAL_TAG, multicast=dst < 0,
                                                 rows=r1 - r0 if strided else 1, stride_bytes=cols * q if strided else 0))
            if outf_chip is not None and not (handing and idx == len(items) - 1):
                b.wait(Unit.NOC, ready)
                for dst in owner_order(b.core, ctx.cores):  # a piece lies within one owner's rows
                    first, n_own = owners[dst]
                    lo, hi = max(m0 + r0, first), min(m0 + r1, first + n_own)
                    if lo < hi:
                        b.emit(Unit.NOC, _rows_to_owner(acc, m0, cols, idx, dst, lo, hi))
        if ch_out is not None and outq_chip is not None:
            ch_out.release(o_slot)
        if outf_chip is not None and handing and idx == len(items) - 1:
            assert b.handoff_rows is not None
            # the epilogue's pieces are the owners' row blocks (epilogue_pieces); each send waits for its piece
            piece_owner = [next(o for o, (first, n) in enumerate(owners) if first <= m0 + r0 < first + n) for r0, _ in pieces]
            waited = 0
            rounds = handoff_sends(m0, rows, b.core, ctx.cores, b.handoff_rows)
            for r, sends in enumerate(rounds):
                with b.capture(Unit.NOC) as nq:
                    for dst, lo, hi in sends:
                        while waited <= piece_owner.index(dst):
                            b.wait(Unit.NOC, ready)
                            waited += 1
                        b.emit(Unit.NOC, _rows_to_owner(acc, m0, cols, idx, dst, lo, hi))
                    if r == len(rounds) - 1:
                        for _ in range(waited, len(pieces)):
                            b.wait(Unit.NOC, ready)
                        ch_acc.release(c, Unit.NOC)
                handed.append(nq)
        elif outf_chip is not None:
            ch_acc.release(c, Unit.NOC)
        if feeding:
            sent.append(b.queues[Unit.NOC][noc_at:])
            del b.queues[Unit.NOC][noc_at:]
    _issue_prefetch(b, loads, after=-1)
    # How many items the loads run ahead of the stores. Store i waits for item i's epilogue; a load placed before it
    # must need nothing that waits for store i (MATMUL i+2 does: its accumulator slot). One chunk per item: the
    # loads of item i+2 need slots item i's MATMUL freed. Every item one weight tile and nothing else (A in place,
    # one row tile): item i+slots's too, up to 3 (its epilogue scales reuse item i+1's slot, whose epilogue needs
    # store i-1). Several chunks per item: item i+1 only (its own later chunks wait for its own MATMULs).
    lead = 1 if not resident else min(k.tiling.w_slots, 3) if a_in_place and k.m <= tm else 2
    b.queues[Unit.DMA].extend(interleave(loads, stores, ahead=lead))
    if feeding:  # where each item's array and vector work ends (the attention may go between: _merge_heads)
        b.marks = tuple(tuple(itertools.accumulate((len(stage) for stage in stages), initial=len(b.queues[u]) - base[u]))[1:]
                        for u, stages in ((Unit.MXU, mxu), (Unit.VEC, vec))) + (acc_slots,)
    b.queues[Unit.MXU].extend(instr for stage in mxu for instr in stage)
    b.queues[Unit.VEC].extend(instr for stage in vec for instr in stage)
    if handing:
        assert outf_chip is not None
        _handoff_rounds(b, k, work, outf_chip, ctx, handed)
    elif feeding:
        assert outq_chip is not None
        _feed_rounds(b, k, work, outq_chip, ctx, sent)
    else:
        _gemm_recvs(b, k, work, outq_chip, outf_chip, ctx)
    for ch in (ch_a, ch_w, ch_aux, ch_out, ch_acc):
        if ch is not None:
            ch.drain()


def _gemm_recvs(b: CoreBuilder, k: Gemm, work: Work, outq_chip: OnChip | None, outf_chip: OnChip | None, ctx: MapperContext) -> None:
    """This core's receives of a GEMM's outputs kept on chip, after its own sends (which wait only for this core's
    units, so the NoC queues cannot deadlock): every tile of the operand copy into the gathered whole, and the row
    blocks of the fp32 result this core owns."""
    if outq_chip is None and outf_chip is None:
        return
    first, n_own = owned_rows(k.m, ctx.cores)[b.core] if outf_chip is not None else (0, 0)
    b.queues[Unit.NOC].extend(_recv_list(k, work, outq_chip, outf_chip, ctx.cores, ctx.q_itemsize, first, n_own))


@functools.lru_cache(maxsize=1 << 12)  # bounded: a sweep worker meets many chips
def _recv_list(k: Gemm, work: Work, outq_chip: OnChip | None, outf_chip: OnChip | None, cores: int, q: int, first: int,
               n_own: int) -> tuple[Instr, ...]:
    """_gemm_recvs' instructions for the core owning rows first .. first + n_own - 1 (none: 0, 0), the same on every
    core that owns the same rows (the gathered copy is at the same address on every core), so built once for them."""
    out: list[Instr] = []
    for src, tag, n0, cols, lo_row, hi_row in _recv_pieces(k, work, cores, outf_chip is not None):
        if outq_chip is not None:
            out += _operand_from(k, outq_chip, q, src, tag, n0, cols, lo_row, hi_row)
        lo, hi = max(lo_row, first), min(hi_row, first + n_own)
        if outf_chip is not None and lo < hi:
            out.append(_owned_rows_from(k, outf_chip, first, src, tag, n0, cols, lo, hi))
    return tuple(out)


def _operand_from(k: Gemm, outq_chip: OnChip, q: int, src: int, tag: int, n0: int, cols: int, lo: int, hi: int,
                  owners: HeadOwners | None = None, me: int = -1) -> list[Instr]:
    """The receives of rows lo .. hi - 1, columns n0 .. n0 + cols - 1 of GEMM `k`'s operand copy from core `src` into
    this core's gathered whole: one per column block they span, in the sender's order (with `owners`, only the
    head blocks core `me` reads)."""
    out = []
    for c0, c1 in block_pieces(outq_chip.block_cols, n0, cols):
        if owners is not None and me not in owners.dests(lo, hi, c0):
            continue
        at, stride = block_offset(k.m, k.n, outq_chip.block_cols, lo, c0)
        out.append(NocRecv(src_core=src, mem=outq_chip.mem, addr=outq_chip.addr + at * q, bytes=(hi - lo) * (c1 - c0) * q,
                           tag=tag, rows=hi - lo, stride_bytes=stride * q))
    return out


def _rows_to_owner(acc: Buf, m0: int, cols: int, idx: int, dst: int, lo: int, hi: int) -> Instr:
    """The send of rows lo .. hi - 1 of an fp32 result tile (rows from m0, in the accumulator at `acc`) to their owner."""
    return NocSend(dst_core=dst, mem=Mem.ACC, addr=acc.addr + (lo - m0) * cols * 4, bytes=(hi - lo) * cols * 4, tag=idx % PARTIAL_TAG)


def _owned_rows_from(k: Gemm, outf_chip: OnChip, first: int, src: int, tag: int, n0: int, cols: int, lo: int, hi: int) -> Instr:
    """The receive of rows lo .. hi - 1, columns n0 .. n0 + cols - 1 of GEMM `k`'s fp32 result from core `src` into
    this core's owned rows (from `first`) of it."""
    return NocRecv(src_core=src, mem=outf_chip.mem, addr=outf_chip.addr + ((lo - first) * k.n + n0) * 4,
                   bytes=(hi - lo) * cols * 4, tag=tag, rows=hi - lo, stride_bytes=k.n * 4)


@functools.lru_cache(maxsize=1 << 10)
def _recv_pieces(k: Gemm, work: Work, cores: int, to_owners: bool) -> tuple[tuple[int, int, int, int, int, int], ...]:
    """Every core's finished tiles as the pieces it sends them in, in its order: (source core, tag, first column,
    columns, first row, end row); the same for every receiver, so cut once per kernel."""
    assert k.tiling is not None
    out = []
    for src, src_items in enumerate(work):
        for idx, (m0, n0, k0, _) in enumerate(src_items):
            if k0 > 0:  # partial sums, sent to the core finishing the tile
                continue
            rows, cols = min(k.tiling.tm, k.m - m0), k.tile_cols(n0)
            for r0, r1 in epilogue_pieces(k, m0, rows, idx == len(src_items) - 1, src, cores, to_owners):
                out.append((src, idx % PARTIAL_TAG, n0, cols, m0 + r0, m0 + r1))
    return tuple(out)


def handoff_sends(m0: int, rows: int, core: int, cores: int, norm_items: Work) -> list[list[tuple[int, int, int]]]:
    """The sends of a core's last tile (rows m0 .. m0 + rows) of a GEMM handing its fp32 result to the LayerNorm of
    its phase, in rounds: round r sends every owner its r-th LayerNorm item's rows within the tile, owners in
    owner_order, as (owner, first row, end row). An owner's LayerNorm starts on an item once its round is in,
    while the later rounds are still on the way (its items' rows from every core's last tile, the earlier tiles
    received before the first round)."""
    out = []
    for r in range(max(len(w) for w in norm_items)):
        sends = []
        for dst in owner_order(core, cores):
            if r < len(norm_items[dst]):
                r0, n = norm_items[dst][r]
                lo, hi = max(r0, m0), min(r0 + n, m0 + rows)
                if lo < hi:
                    sends.append((dst, lo, hi))
        out.append(sends)
    return out


def _handoff_rounds(b: CoreBuilder, k: Gemm, work: Work, outf_chip: OnChip, ctx: MapperContext, handed: list[list[Instr]]) -> None:
    """The NoC queue's end on a core of a GEMM handing its rows to the LayerNorm of its phase: per round, this
    core's sends of it (`handed`, from emit_gemm; none on a core without a last tile), then its receives of the
    round, then a SIGNAL telling its vector unit that its LayerNorm item of that round has every row in. Every
    core's round-r sends come before its round-r receives, so no NoC queue waits on one that waits on it."""
    assert b.handoff_rows is not None
    _noc_rounds(b, handed, _handoff_recvs(k, work, outf_chip, ctx.cores, b.core, b.handoff_rows), len(b.handoff_rows[b.core]))


def _noc_rounds(b: CoreBuilder, sent: list[list[Instr]], received: tuple[tuple[Instr, ...], ...], signalled: int) -> None:
    """A core's NoC queue in rounds: per round r, its sends of that round (`sent[r]`, none past their end), its
    receives of it, then (for the first `signalled` rounds) a SIGNAL of b.handoff to the unit that waits for them."""
    for r, recvs in enumerate(received):
        if r < len(sent):
            b.queues[Unit.NOC].extend(sent[r])
        b.queues[Unit.NOC].extend(recvs)
        if r < signalled:
            b.signal(Unit.NOC, b.handoff)


@functools.lru_cache(maxsize=1 << 10)  # bounded: a sweep worker meets many chips
def _handoff_recvs(k: Gemm, work: Work, outf_chip: OnChip, cores: int, me: int, norm_items: Work) -> tuple[tuple[Instr, ...], ...]:
    """Per round of handoff_sends, core `me`'s receives of the fp32 rows it owns: into the first round every core's
    tiles before its last (each sent whole, owner by owner), and in round r every core's round-r piece of its last
    tile."""
    assert k.tiling is not None
    first, n_own = owned_rows(k.m, cores)[me]
    rounds: list[list[Instr]] = [[] for _ in range(max(len(w) for w in norm_items))]

    for src, src_items in enumerate(work):
        for idx, (m0, n0, k0, _) in enumerate(src_items):
            if k0 > 0:  # partial sums, sent to the core finishing the tile
                continue
            rows, cols, tag = min(k.tiling.tm, k.m - m0), k.tile_cols(n0), idx % PARTIAL_TAG
            if idx == len(src_items) - 1:
                for r, sends in enumerate(handoff_sends(m0, rows, src, cores, norm_items)):
                    rounds[r] += [_owned_rows_from(k, outf_chip, first, src, tag, n0, cols, lo, hi) for dst, lo, hi in sends if dst == me]
            else:
                lo, hi = max(m0, first), min(m0 + rows, first + n_own)
                if lo < hi:
                    rounds[0].append(_owned_rows_from(k, outf_chip, first, src, tag, n0, cols, lo, hi))
    return tuple(tuple(r) for r in rounds)


def _feed_rounds(b: CoreBuilder, k: Gemm, work: Work, outq_chip: OnChip, ctx: MapperContext, sent: list[list[Instr]]) -> None:
    """The NoC queue of a core in the fused projection feeding the attention of its phase (kernels.feeds_heads): per
    round r, this core's sends of its r-th tile (`sent`, from emit_gemm; none past its last), then its receives of
    every core's r-th tile into the gathered Q | K | V, then a SIGNAL telling its array that the heads of those
    tiles are in (`head_rounds`). Every core's round-r sends come before its round-r receives, and a send waits
    only for its own core's units, so no NoC queue waits on one that waits on it."""
    assert b.feeding is not None
    received = _feed_recvs(k, work, outq_chip, ctx.cores, ctx.q_itemsize, b.feeding, b.core)
    _noc_rounds(b, sent, received, len(received))


@functools.lru_cache(maxsize=1 << 10)  # bounded: a sweep worker meets many chips
def _feed_recvs(k: Gemm, work: Work, outq_chip: OnChip, cores: int, q: int, owners: HeadOwners, me: int) -> tuple[tuple[Instr, ...], ...]:
    """Per round of _feed_rounds, core `me`'s receives of the head blocks it reads (`owners`) of every core's tile of
    that round."""
    rounds: list[list[Instr]] = [[] for _ in range(max(len(w) for w in work))]
    assert len(rounds) < PARTIAL_TAG  # a tile's tag is its index on its core
    for src, tag, n0, cols, lo, hi in _recv_pieces(k, work, cores, False):
        rounds[tag] += _operand_from(k, outq_chip, q, src, tag, n0, cols, lo, hi, owners, me)
    return tuple(tuple(r) for r in rounds)


def head_rounds(g: Gemm, g_work: Work, k: Attention, items: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], int]:
    """Per item (sequence, head, query block) of attention `k` on a core, the round of the fused projection `g`'s
    sends (_feed_rounds) by which every tile holding its head's Q, K and V columns for its sequence is in (the
    latest such tile's index on its core); and the number of rounds."""
    need = _head_need(g, g_work, k.seq, k.heads, k.head_dim)
    return tuple(need[(bi, h)] for bi, h, _ in items), max(len(w) for w in g_work)


@functools.lru_cache(maxsize=1 << 8)  # the same for every core; bounded: a sweep worker meets many chips
def _head_need(g: Gemm, work: Work, seq: int, heads: int, d: int) -> dict[tuple[int, int], int]:
    """Per (sequence, head), the latest round (a tile's index on its core) holding a block of its Q, K or V among
    the fused projection `g`'s tiles; not to be changed."""
    assert g.tiling is not None
    need: dict[tuple[int, int], int] = {}
    for src_items in work:
        for idx, (m0, n0, k0, _) in enumerate(src_items):
            if k0:
                continue
            rows, w = min(g.tiling.tm, g.m - m0), g.tile_cols(n0)
            for bi in range(m0 // seq, (m0 + rows - 1) // seq + 1):
                for block in range(n0 // d, (n0 + w - 1) // d + 1):  # Q, K and V blocks of head_dim columns
                    key = (bi, block % heads)
                    if need.get(key, -1) < idx:
                        need[key] = idx
    return need


EPILOGUE_PIECES = 4  # row pieces of a core's last GEMM epilogue, each at least EPILOGUE_PIECE_ROWS rows
EPILOGUE_PIECE_ROWS = 32


def owner_order(core: int, cores: int) -> list[int]:
    """The order a core sends row blocks to their owners in: itself first, then the next cores round the ring, so
    that at every step of an all-to-all each core receives from one sender, not all of them from the same."""
    return [(core + j) % cores for j in range(cores)]


def epilogue_pieces(k: Gemm, m0: int, rows: int, last: bool, core: int, cores: int, to_owners: bool) -> list[tuple[int, int]]:
    """The row ranges (from the tile's first row) a GEMM tile's epilogue on `core` is issued in, each stored or sent
    as soon as it is done: the whole tile, but for a core's last item, whose epilogue and store (or sends) would
    otherwise run one after the other at the end of the kernel with nothing else left to overlap: that one in
    pieces, at the row blocks of the cores owning them when the fp32 result goes to its owners (one send a piece,
    in owner_order), else in up to EPILOGUE_PIECES even pieces. The receivers cut the same pieces (_gemm_recvs). The
    search (mapper.tiling) still costs the last epilogue and store one after the other: costed as pieces, its
    ranking left the best tiling out of the re-check on some chips."""
    if not last:
        return [(0, rows)]
    if to_owners:
        owners = owned_rows(k.m, cores)
        return [(max(m0, first) - m0, min(m0 + rows, first + n) - m0) for first, n in (owners[o] for o in owner_order(core, cores))
                if max(m0, first) < min(m0 + rows, first + n)]
    step = -(-rows // max(1, min(EPILOGUE_PIECES, rows // EPILOGUE_PIECE_ROWS)))
    return [(r0, min(rows, r0 + step)) for r0 in range(0, rows, step)]


def _split_partners(work: Work, k: int) -> dict[tuple[int, int], tuple[int, int]]:
    """Stream-K: per tile split between two cores, (the core finishing it, the core sending it partial sums)."""
    cores: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for core, items in enumerate(work):
        for m0, n0, k0, k1 in items:
            if k0 > 0 or k1 < k:
                cores.setdefault((m0, n0), []).append((k0, core))
    return {tile: (min(pair)[1], max(pair)[1]) for tile, pair in cores.items()}


# ---- attention ----------------------------------------------------------------------------------------------

def emit_attention(b: CoreBuilder, k: Attention, work: Work, facts: KernelGraphFacts, ctx: MapperContext) -> None:
    """Per (sequence, head, query block): scores = Q K^T on the array, softmax on the vector unit, context =
    P V on the array, all on chip; K and V of a head stay in the scratchpad across its query blocks. The context
    goes to DRAM, or (kept on chip) to every core's gathered copy."""
    assert b.spad is not None and b.acc is not None and facts.dram is not None
    dram = facts.dram
    out_chip = facts.on_chip_of(k.out)
    items = work[b.core]
    # fed by the fused projection of this phase: per item, the round of its sends by which the item's head is in
    rounds = b.head_rounds
    base = {u: len(b.queues[u]) for u in (Unit.MXU, Unit.VEC)}
    if not items:
        _attention_recvs(b, k, work, out_chip, ctx)
        if rounds is not None:
            for _ in range(rounds[1]):
                b.wait(Unit.MXU, b.handoff)
        return
    int8, q = ctx.int8, ctx.q_itemsize
    prec = _q_dtype(int8)
    s_len, d, tq = k.seq, k.head_dim, k.tq
    qkv_t, mask_t = dram[k.q], dram[k.mask]
    k_col, v_col = k.hidden, 2 * k.hidden  # Q | K | V side by side
    in_place = k.q_resident is not None
    if in_place:  # gathered in column blocks of d: each head's Q, K and V a dense block read where it lies
        at = k.q_resident

        def kept(row: int, col: int) -> Buf:
            return Buf(Mem.SPAD, at + block_offset(k.batch * s_len, 3 * k.hidden, d, row, col)[0] * q)

        q_bufs, kv_bufs = [], []
    else:
        q_bufs = [b.spad.take(tq * d * q, f"{k.name} Q tile") for _ in range(k.in_slots)]
        kv_bufs = [(b.spad.take(s_len * d * q, f"{k.name} K"), b.spad.take(s_len * d * q, f"{k.name} V")) for _ in range(k.in_slots)]
    m_bufs = [b.spad.take(s_len * 4, f"{k.name} mask") for _ in range(k.in_slots)]
    p_bufs = [b.spad.take(tq * s_len * q, f"{k.name} probabilities") for _ in range(2)]
    out_bufs = [b.spad.take(tq * d * q, f"{k.name} context tile") for _ in range(2)]
    row_max, row_sum = b.spad.take(tq * 4, f"{k.name} row max"), b.spad.take(tq * 4, f"{k.name} row sum")
    sc_bufs = [b.acc.take(tq * s_len * 4, f"{k.name} scores") for _ in range(2)]
    cx_bufs = [b.acc.take(tq * d * 4, f"{k.name} context accumulator") for _ in range(2)]
    # a head's K (with its first Q tile) and V go to the array, its mask to the vector unit, each on its own channel,
    # so the first scores wait only for K and Q (read in place: for nothing), and V and the mask load meanwhile
    ch_q = Channel(b, Unit.DMA, Unit.MXU, slots=k.in_slots)
    ch_k, ch_v = (None, None) if in_place else (Channel(b, Unit.DMA, Unit.MXU, slots=k.in_slots), Channel(b, Unit.DMA, Unit.MXU, slots=k.in_slots))
    ch_m = Channel(b, Unit.DMA, Unit.VEC, slots=k.in_slots)
    ch_sc, ch_p = Channel(b, Unit.MXU, Unit.VEC), Channel(b, Unit.VEC, Unit.MXU)
    ch_cx, ch_out = Channel(b, Unit.MXU, Unit.VEC), Channel(b, Unit.VEC, Unit.DMA if out_chip is None else Unit.NOC)

    loads, stores, scores, pv, soft, post = [], [], [], [], [], []
    kv = -1
    waited = 0  # rounds of the fused projection's sends the array has waited for
    for idx, (bi, h, q0) in enumerate(items):
        rows = min(tq, s_len - q0)
        new_head = idx == 0 or items[idx - 1][:2] != (bi, h)
        last_of_head = idx == len(items) - 1 or items[idx + 1][:2] != (bi, h)
        row0 = bi * s_len
        with b.capture(Unit.DMA) as dma:  # K and Q first (the scores need them), then V and the mask
            if new_head:
                kv = ch_m.acquire()
                if ch_k is not None and ch_v is not None:  # the three rings turn together: the same slot
                    ch_k.acquire()
                    ch_v.acquire()
                    b.emit(Unit.DMA, _ld(kv_bufs[kv][0], qkv_t, row0, k_col + h * d, s_len, d))
                    ch_k.publish(kv)
            if not in_place:
                qs = ch_q.acquire()
                b.emit(Unit.DMA, _ld(q_bufs[qs], qkv_t, row0 + q0, h * d, rows, d))
                ch_q.publish(qs)
            if new_head:
                if ch_v is not None:
                    b.emit(Unit.DMA, _ld(kv_bufs[kv][1], qkv_t, row0, v_col + h * d, s_len, d))
                    ch_v.publish(kv)
                b.emit(Unit.DMA, _ld(m_bufs[kv], mask_t, bi, 0, 1, s_len))
                ch_m.publish(kv)
        loads.append(dma)
        if in_place:
            q_buf, kbuf, vbuf = kept(row0 + q0, h * d), kept(row0, k_col + h * d), kept(row0, v_col + h * d)
        else:
            q_buf, (kbuf, vbuf) = q_bufs[qs], kv_bufs[kv]
        mbuf = m_bufs[kv]
        with b.capture(Unit.MXU) as m1:
            while rounds is not None and waited <= rounds[0][idx]:
                b.wait(Unit.MXU, b.handoff)
                waited += 1
            if new_head and ch_k is not None:
                ch_k.consume(kv)
            if not in_place:
                ch_q.consume(qs)
            sc = ch_sc.acquire()
            b.emit(Unit.MXU, Matmul(a_addr=q_buf.addr, b_addr=kbuf.addr, c_addr=sc_bufs[sc].addr, m=rows, k=d, n=s_len,
                                    precision=prec, accumulate=False, preloaded=False, transpose_b=True))
            if not in_place:
                ch_q.release(qs)
            if last_of_head and ch_k is not None:
                ch_k.release(kv)
            ch_sc.publish(sc)
        scores.append(m1)
        with b.capture(Unit.VEC) as v1:
            x = sc_bufs[sc]
            ch_sc.consume(sc)
            if new_head:
                ch_m.consume(kv)
            b.emit(Unit.VEC, _deq(x, rows, s_len, k.score_scale) if int8 else _scale(x, rows, s_len, k.score_scale))
            b.emit(Unit.VEC, _bin(Vadd, x, x, mbuf, rows, s_len, Bcast.ROW))
            if last_of_head:
                ch_m.release(kv)
            b.emit(Unit.VEC, _un(Vrmax, row_max, x, rows, s_len))
            b.emit(Unit.VEC, _bin(Vsub, x, x, row_max, rows, s_len, Bcast.COL))
            b.emit(Unit.VEC, _un(Vexp, x, x, rows, s_len))
            b.emit(Unit.VEC, _un(Vrsum, row_sum, x, rows, s_len))
            b.emit(Unit.VEC, _un(Vrecip, row_sum, row_sum, rows, 1))
            b.emit(Unit.VEC, _bin(Vmul, x, x, row_sum, rows, s_len, Bcast.COL))
            ps = ch_p.acquire()
            b.emit(Unit.VEC, _to_operand(p_bufs[ps], x, rows, s_len, int8, PROB_SCALE))
            ch_p.publish(ps)
            ch_sc.release(sc)
        soft.append(v1)
        with b.capture(Unit.MXU) as m2:  # V's wait first: an LDW of V may go between it and the probabilities' (below)
            if new_head and ch_v is not None:
                ch_v.consume(kv)
            ch_p.consume(ps)
            cx = ch_cx.acquire()
            b.emit(Unit.MXU, Matmul(a_addr=p_bufs[ps].addr, b_addr=vbuf.addr, c_addr=cx_bufs[cx].addr, m=rows, k=s_len, n=d,
                                    precision=prec, accumulate=False, preloaded=False, transpose_b=False))
            ch_p.release(ps)
            ch_cx.publish(cx)
            if last_of_head and ch_v is not None:
                ch_v.release(kv)
        pv.append(m2)
        with b.capture(Unit.VEC) as v2:
            y = cx_bufs[cx]
            ch_cx.consume(cx)
            if int8:
                b.emit(Unit.VEC, _deq(y, rows, d, k.ctx_scale))
            os_ = ch_out.acquire()
            b.emit(Unit.VEC, _to_operand(out_bufs[os_], y, rows, d, int8, k.out_inv_scale))
            ch_out.publish(os_)
            ch_cx.release(cx)
        post.append(v2)
        with b.capture(Unit.DMA) as st:
            if out_chip is None:
                ch_out.consume(os_)
                b.emit(Unit.DMA, _st(out_bufs[os_], dram[k.out], row0 + q0, h * d, rows, d))
                ch_out.release(os_)
        stores.append(st)
        if out_chip is not None:
            ch_out.consume(os_)
            b.emit(Unit.NOC, NocSend(dst_core=0, mem=Mem.SPAD, addr=out_bufs[os_].addr, bytes=rows * d * q, tag=idx % TAGS,
                                     multicast=True))
            ch_out.release(os_)
    _preload_last_context(pv[-1], ch_p.full, soft + post, interleave(scores, pv), ctx)
    # the later GEMMs' weight tiles queue from an item's loads on, the first waiting for a projection sharing the
    # phase to end its array work (_close_handoff), and so do the loads of the items after (_merge_heads): sharing
    # it, from the last item whose loads fill fresh slots (its mask, tiny), so that those items' softmax may go
    # among the projection's tiles
    after = 1 if rounds is None else max(1, min(len(loads), k.in_slots) - 1)
    gated = after + 1 if b.prefetch else len(loads)
    _issue_prefetch(b, loads, after=after)
    if rounds is not None:  # its blocks may go in among the projection's tiles (_merge_heads): where each lies
        b.marks = (tuple(_block_spans(len(b.queues[u]) - base[u], stages) for u, stages in ((Unit.MXU, (scores, pv)), (Unit.VEC, (soft, post))))
                   + (rounds[0], gated))
    b.queues[Unit.DMA].extend(interleave(loads, stores))
    b.queues[Unit.MXU].extend(interleave(scores, pv))
    b.queues[Unit.VEC].extend(interleave(soft, post))
    for _ in range(waited, rounds[1] if rounds is not None else 0):  # every round's SIGNAL has its WAIT
        b.wait(Unit.MXU, b.handoff)
    _attention_recvs(b, k, work, out_chip, ctx)
    for ch in (ch_q, ch_k, ch_v, ch_m, ch_sc, ch_p, ch_cx, ch_out):
        if ch is not None:
            ch.drain()


def _block_spans(at: int, stages: tuple[list[list[Instr]], list[list[Instr]]]) -> tuple[tuple[int, int, int, int], ...]:
    """Where `interleave(*stages)` put each block, from queue position `at`: (stage, item, start, end)."""
    out = []
    for stage, i in interleave_order(len(stages[0]), len(stages[1])):
        n = len(stages[stage][i])
        out.append((stage, i, at, at + n))
        at += n
    return tuple(out)


def _preload_last_context(last: list[Instr], p_full: int, vec: list[list[Instr]], mxu: list[Instr], ctx: MapperContext) -> None:
    """Where the vector unit is the attention's busier unit, the array waits idle for the last item's probabilities:
    an LDW of that item's V there (once V is in) puts the P V MATMUL's first fold in the array, which then starts
    without loading it, and the kernel ends the fold's rows sooner (isa/SPEC.md, LDW). Not where the array is the
    busier: there the probabilities are ready early and the P V MATMUL continues the run of the scores before it,
    which an LDW would end. Weight-stationary arrays only, and V no wider than the array."""
    tc = ctx.chip.core.tensor_core
    at = next(j for j, ins in enumerate(last) if ins.op is Opcode.MATMUL)
    mm = last[at]
    if tc.dataflow is not Dataflow.WS or mm.n > tc.cols:
        return
    model = TimingModel.of(ctx.chip)
    vec_cycles = sum(_vec_cycles(model, i) for stage in vec for i in stage if i.op not in (Opcode.SIGNAL, Opcode.WAIT))
    if vec_cycles <= _run_cycles(model, [i for i in mxu if i.op is Opcode.MATMUL]):
        return
    p_wait = next(j for j, ins in enumerate(last) if ins.op is Opcode.WAIT and ins.sem == p_full)  # after V's wait, if any
    last[at] = mm._replace(preloaded=True)
    last.insert(p_wait, Ldw(w_addr=mm.b_addr, k=min(mm.k, tc.rows), n=mm.n, dtype=mm.precision))


def _attention_recvs(b: CoreBuilder, k: Attention, work: Work, out_chip: OnChip | None, ctx: MapperContext) -> None:
    """This core's receives of every core's context tiles into its gathered copy (after its own sends)."""
    if out_chip is None:
        return
    q = ctx.q_itemsize
    for src, src_items in enumerate(work):
        for idx, (bi, h, q0) in enumerate(src_items):
            rows = min(k.tq, k.seq - q0)
            at, stride = block_offset(k.batch * k.seq, k.hidden, out_chip.block_cols, bi * k.seq + q0, h * k.head_dim)
            b.emit(Unit.NOC, NocRecv(src_core=src, mem=out_chip.mem, addr=out_chip.addr + at * q,
                                     bytes=rows * k.head_dim * q, tag=idx % TAGS, rows=rows, stride_bytes=stride * q))


# ---- row kernels: embeddings and LayerNorm ------------------------------------------------------------------

def emit_rownorm(b: CoreBuilder, k: RowNorm, work: Work, facts: KernelGraphFacts, ctx: MapperContext) -> None:
    """Rows of fp32 plus their addends (in order), then LayerNorm in the vector unit's exact sequence (mean,
    centre, variance, rsqrt, scale, shift); kept as fp32 and as the next matmul's operand.

    Each tensor comes from DRAM or stays on chip (facts.on_chip): input rows and per-row addends owned by this core
    are read where they sit (the input rows are then worked in place), the fp32 result is written over this core's
    rows of the residual stream, and the operand rows go straight to this core's gathered copy and, over the NoC,
    to every other core's (which receive the blocks the other cores own). What is not on chip is loaded and stored
    by DMA, double-buffered."""
    assert b.spad is not None and facts.dram is not None
    dram = facts.dram
    items = work[b.core]
    outq_chip = facts.on_chip_of(k.out_q)
    if not items:
        _rownorm_recvs(b, k, work, outq_chip, ctx)
        return
    int8, q, tr, h = ctx.int8, ctx.q_itemsize, k.tr, k.cols
    first = owned_rows(k.rows, ctx.cores)[b.core][0]
    inp_chip, outf_chip = facts.on_chip_of(k.inp), facts.on_chip_of(k.out_f)
    hot = b.acc if k.in_acc else b.spad  # where the fp32 rows live and the vector unit works on them
    assert hot is not None

    def owned(t: OnChip, r0: int) -> Buf:  # this core's rows from r0 of a tensor kept on chip
        return Buf(t.mem, t.addr + (r0 - first) * h * 4)

    gamma, beta = hot.take(h * 4, f"{k.name} gamma"), hot.take(h * 4, f"{k.name} beta")
    consts = [(dram[k.gamma], gamma), (dram[k.beta], beta)]
    # per addend: a constant row (loaded once), rows from DRAM (through a channel), or rows kept on chip
    adds: list[tuple[str, AddBcast, Buf | None, Channel | None, list[Buf]]] = []
    for name, how in k.addends:
        chip_t = facts.on_chip_of(name)
        if how is AddBcast.ROW:
            buf = hot.take(h * 4, f"{k.name} {name}")
            consts.append((dram[name], buf))
            adds.append((name, how, buf, None, []))
        elif chip_t is not None:
            adds.append((name, how, None, None, []))
        else:
            adds.append((name, how, None, Channel(b, Unit.DMA, Unit.VEC), [hot.take(tr * h * 4, f"{k.name} {name} rows") for _ in range(2)]))
    in_bufs = [] if inp_chip else [hot.take(tr * h * 4, f"{k.name} rows") for _ in range(2)]
    out_bufs = [b.spad.take(tr * h * q, f"{k.name} operand rows") for _ in range(2)] if outq_chip is None else []
    sq = hot.take(tr * h * 4, f"{k.name} squares")
    mean, var = hot.take(tr * 4, f"{k.name} mean"), hot.take(tr * 4, f"{k.name} variance")
    ready_consts = b.sem()
    ch_in = Channel(b, Unit.DMA, Unit.VEC) if not inp_chip else None
    ch_out = Channel(b, Unit.VEC, Unit.DMA) if outq_chip is None else None
    ready = b.sem() if outf_chip is None else -1  # VEC -> DMA: rows normalized (counted, in item order)
    sent = b.sem() if outq_chip is not None else -1

    for t, buf in consts:
        b.emit(Unit.DMA, _ld(buf, t, 0, 0, 1, h))
    b.signal(Unit.DMA, ready_consts)
    b.wait(Unit.VEC, ready_consts)
    inv_n = float(np.float32(1.0 / h))
    loads, stores = [], []
    for r0, rows in items:
        with b.capture(Unit.DMA) as dma:
            s = -1
            if ch_in is not None:
                s = ch_in.acquire()
                b.emit(Unit.DMA, _ld(in_bufs[s], dram[k.inp], r0, 0, rows, h))
                ch_in.publish(s)
            slots = []
            for name, how, _, ch, bufs in adds:
                if ch is None:
                    slots.append(-1)
                    continue
                a_slot = ch.acquire()
                if how is AddBcast.POS:  # position rows restart at every sequence boundary
                    r = r0
                    while r < r0 + rows:
                        pos = r % k.seq
                        run = min(r0 + rows - r, k.seq - pos)
                        b.emit(Unit.DMA, _ld(Buf(hot.mem, bufs[a_slot].addr + (r - r0) * h * 4), dram[name], pos, 0, run, h))
                        r += run
                else:
                    b.emit(Unit.DMA, _ld(bufs[a_slot], dram[name], r0, 0, rows, h))
                ch.publish(a_slot)
                slots.append(a_slot)
        loads.append(dma)
        if ch_in is not None:
            x = in_bufs[s]
            ch_in.consume(s)
        else:
            assert inp_chip is not None
            x = owned(inp_chip, r0)  # worked in place: the rows are this kernel's alone
        if b.handoff >= 0:  # the input rows, handed over by the GEMM of this phase (handoff_sends), are in
            b.wait(Unit.VEC, b.handoff)
        for (name, how, const, ch, bufs), a_slot in zip(adds, slots):
            if const is not None:
                b.emit(Unit.VEC, _bin(Vadd, x, x, const, rows, h, Bcast.ROW))
            elif ch is not None:
                ch.consume(a_slot)
                b.emit(Unit.VEC, _bin(Vadd, x, x, bufs[a_slot], rows, h, Bcast.NONE))
                ch.release(a_slot)
            else:
                chip_t = facts.on_chip_of(name)
                assert chip_t is not None
                b.emit(Unit.VEC, _bin(Vadd, x, x, owned(chip_t, r0), rows, h, Bcast.NONE))
        b.emit(Unit.VEC, _un(Vrsum, mean, x, rows, h))
        b.emit(Unit.VEC, _scale(mean, rows, 1, inv_n))
        b.emit(Unit.VEC, _bin(Vsub, x, x, mean, rows, h, Bcast.COL))
        b.emit(Unit.VEC, _bin(Vmul, sq, x, x, rows, h, Bcast.NONE))
        b.emit(Unit.VEC, _un(Vrsum, var, sq, rows, h))
        b.emit(Unit.VEC, _scale(var, rows, 1, inv_n, k.eps))
        b.emit(Unit.VEC, _un(Vrsqrt, var, var, rows, 1))
        b.emit(Unit.VEC, _bin(Vmul, x, x, var, rows, h, Bcast.COL))
        b.emit(Unit.VEC, _bin(Vmul, x, x, gamma, rows, h, Bcast.ROW))
        y = owned(outf_chip, r0) if outf_chip is not None else x  # the residual stream's rows are overwritten here
        b.emit(Unit.VEC, _bin(Vadd, y, x, beta, rows, h, Bcast.ROW))
        if ch_out is not None:
            os_ = ch_out.acquire()
            operand = out_bufs[os_]
            b.emit(Unit.VEC, _to_operand(operand, y, rows, h, int8, k.out_inv_scale))
            ch_out.publish(os_)
        else:
            assert outq_chip is not None
            operand = Buf(outq_chip.mem, outq_chip.addr + r0 * h * q)  # written once per phase: no slot reuse to guard
            b.emit(Unit.VEC, _to_operand(operand, y, rows, h, int8, k.out_inv_scale))
            b.signal(Unit.VEC, sent)
            b.wait(Unit.NOC, sent)
            if ctx.cores > 1:  # one multicast; this core's own copy lands again, unchanged
                b.emit(Unit.NOC, NocSend(dst_core=0, mem=Mem.SPAD, addr=operand.addr, bytes=rows * h * q, tag=r0 % TAGS, multicast=True))
        if outf_chip is None:
            b.signal(Unit.VEC, ready)
        elif ch_in is not None:
            ch_in.release(s)
        with b.capture(Unit.DMA) as st:
            if outf_chip is None:
                b.wait(Unit.DMA, ready)
                b.emit(Unit.DMA, _st(y, dram[k.out_f], r0, 0, rows, h))
                if ch_in is not None:
                    ch_in.release(s, Unit.DMA)
            if ch_out is not None:
                ch_out.consume(os_)
                b.emit(Unit.DMA, _st(operand, dram[k.out_q], r0, 0, rows, h))
                ch_out.release(os_)
        stores.append(st)
    _issue_prefetch(b, loads)
    b.queues[Unit.DMA].extend(interleave(loads, stores))
    _rownorm_recvs(b, k, work, outq_chip, ctx)
    for ch in (ch_in, ch_out, *(a[3] for a in adds)):
        if ch is not None:
            ch.drain()


def _rownorm_recvs(b: CoreBuilder, k: RowNorm, work: Work, outq_chip: OnChip | None, ctx: MapperContext) -> None:
    """Post the receives of every core's row blocks into this core's gathered copy (after its own sends, which only
    wait for this core's vector unit, so the NoC queues cannot deadlock)."""
    if outq_chip is None or ctx.cores == 1:
        return
    for src, items in enumerate(work):
        for r0, rows in items:
            b.emit(Unit.NOC, NocRecv(src_core=src, mem=outq_chip.mem, addr=outq_chip.addr + r0 * k.cols * ctx.q_itemsize,
                                     bytes=rows * k.cols * ctx.q_itemsize, tag=r0 % TAGS))


EMITTERS = {Gemm: emit_gemm, Attention: emit_attention, RowNorm: emit_rownorm}


def _issue_prefetch(b: CoreBuilder, loads: list[list[Instr]], after: int = 1) -> None:
    """Later GEMMs' weight tiles go into the DMA queue after the loads of this kernel's item `after` (-1, the last:
    a GEMM streams its own weights until then), all of them; or (a vector-bound kernel, which leaves the DRAM
    idle) one after each item's loads from item `after` on, and those left after the last. From the second item
    on: the first two items' loads go back to back into their double buffers, and only the third item's wait for
    the first to release its slots, so a tile behind the second item's loads fills that wait instead of holding
    up the second item (on a 2x2 of 256x256, BERT-base's attention lost a thousand cycles a layer so).

    Fewer tiles than items with loads of their own (`b.split_prefetch`, the emission once the tiles kept are known)
    are cut in row pieces, about one a place: one tile whole would hold up the next items' loads behind it for as
    long as it takes (on tpuv1's one DMA engine, BERT-base's attention waited 2,200 cycles a layer for Q, K and V
    behind a 147 KB tile of the output projection)."""
    b.prefetch_places = 0
    if not b.prefetch or not loads:
        return
    if after == -1:
        loads[-1] = [*loads[-1], *b.prefetch]
    else:
        places = max(1, len(loads) - after)
        if any(ld.op is Opcode.DMA_LD for item in loads[after:] for ld in item):
            b.prefetch_places = places
        prefetch = _pieces(b.prefetch, places) if b.split_prefetch and len(b.prefetch) < places else b.prefetch
        for i, ld in enumerate(prefetch):
            at = min(after + i, len(loads) - 1)
            loads[at] = [*loads[at], ld]
    b.prefetch = []


def _pieces(tiles: list[Instr], places: int) -> list[Instr]:
    """The loads `tiles` cut in about `places` row pieces in all (each tile in a share of them by its bytes, at least
    one), in order: the same bytes into the same dense tiles."""
    total = sum(t.rows * t.cols for t in tiles)
    out: list[Instr] = []
    for t in tiles:
        n = min(t.rows, max(1, places * t.rows * t.cols // total))
        step = -(-t.rows // n)
        row_bytes = t.cols * t.dtype.itemsize
        out += [DmaLd(mem=t.mem, sram_addr=t.sram_addr + r0 * row_bytes, dram_addr=t.dram_addr + r0 * t.dram_stride_bytes,
                      rows=min(step, t.rows - r0), cols=t.cols, dram_stride_bytes=t.dram_stride_bytes, dtype=t.dtype)
                for r0 in range(0, t.rows, step)]
    return out


def _tile_bytes(k: Gemm, ctx: MapperContext) -> int:
    assert k.tiling is not None
    return align(k.tiling.tk * k.tiling.tn * ctx.q_itemsize)


def _pin_tile(g: Kernel, ctx: MapperContext) -> int:
    """The bytes of one weight slot of GEMM `g`."""
    assert isinstance(g, Gemm) and g.tiling is not None
    return g.tiling.tk * g.tiling.tn * ctx.q_itemsize


def _gap_slots(taken: list[tuple[tuple[int, ...], int]], lo: int, hi: int, tile: int, n: int) -> list[int]:
    """Up to `n` slot addresses of `tile` bytes between `lo` and `hi` clear of the slots `taken` (addresses and
    their slot bytes), highest first."""
    busy = sorted((a, a + size) for slots, size in taken for a in slots if a + size > lo and a < hi)
    out: list[int] = []
    top = hi
    for start, end in [*reversed(busy), (lo, lo)]:
        while len(out) < n and top_address(top, tile) >= max(end, lo):
            out.append(top_address(top, tile))
            top = out[-1]
        top = min(top, start)
    return out


def _slot_addresses(top: int, tile: int, n: int) -> list[int]:
    """Addresses of `n` weight slots of `tile` bytes just below `top`, slot 0 highest (as SramAllocator.take_top
    hands them out)."""
    addrs = [top_address(top, tile)]
    for _ in range(n - 1):
        addrs.append(top_address(addrs[-1], tile))
    return addrs


def _ahead_tiles(g: Gemm, pin: Pin, tiles: list[tuple[int, int]], upto: int) -> list[Ahead]:
    """GEMM `g`'s weight tiles (its emitter's order) pin.loaded .. upto - 1, each into its slot of `pin` (at most
    one per slot)."""
    assert g.tiling is not None
    return [Ahead(g.w, pin.slots[s], tiles[s][0], tiles[s][1], min(g.tiling.tk, g.k - tiles[s][0]), g.tile_cols(tiles[s][1]))
            for s in range(pin.loaded, min(upto, len(tiles), len(pin.slots)))]


def _weight_tiles(k: Gemm, items: tuple[tuple[int, ...], ...]) -> list[tuple[int, int]]:
    """(k0, n0) of every weight tile GEMM `k`'s emitter loads on a core, in the order it takes slots for them."""
    assert k.tiling is not None
    resident = k.tiling.tk >= k.k
    return [(k0, n0) for idx, (_, n0, lo, hi) in enumerate(items) if not resident or idx == 0 or items[idx - 1][1] != n0
            for k0 in range(lo, hi, k.tiling.tk)]


def _slot_count(k: Gemm, items: tuple[tuple[int, ...], ...], ctx: MapperContext, spad: int) -> int:
    """Weight slots of a GEMM whose first tiles are loaded ahead: one for each of its tiles on the core when they
    are no more than the tiling's slots or all fit in half the scratchpad (the GEMM then reuses no slot), else
    the tiling's."""
    assert k.tiling is not None
    tiles = len(_weight_tiles(k, items))
    return tiles if tiles <= k.tiling.w_slots or tiles * _tile_bytes(k, ctx) <= spad // 2 else k.tiling.w_slots


def _footprint(k: Kernel, ctx: MapperContext, slots: int | None) -> int:
    """The scratchpad bytes a kernel allocates from the bottom up, plus (`slots` None: it has no slots kept for it)
    its weight slots at the top, if a GEMM."""
    q = ctx.q_itemsize
    if isinstance(k, Gemm):
        t = k.tiling
        assert t is not None
        n = t.w_slots if slots is None else slots
        spad = gemm_sram_bytes(t.tm, t.tn, t.tk, q, k.out_q is not None, k.a_resident is not None, k.m if t.a_once else 0, n)[0]
        return spad if slots is None else spad - n * _tile_bytes(k, ctx)
    if isinstance(k, Attention):
        return attention_sram_bytes(k.tq, k.seq, k.head_dim, q, k.in_slots, k.q_resident is not None)[0]
    assert isinstance(k, RowNorm)
    return rownorm_sram_bytes(k.tr, k.cols, q, k.in_acc)[0]


@functools.lru_cache(maxsize=1 << 16)  # bounded: a sweep worker meets many chips
def _vec_cycles(model: TimingModel, i: Instr) -> int:
    return model.cost(i).cycles  # type: ignore[union-attr]


def _run_cycles(model: TimingModel, matmuls: list[Instr]) -> int:
    """The array's cycles for `matmuls` as one run of folds (each continuing the one before: chipsim.timing)."""
    return sum(_run_terms(model, matmuls))


def _run_terms(model: TimingModel, matmuls: list[Instr]) -> list[int]:
    """What each of `matmuls` adds to their run of folds (_run_cycles)."""
    return [model.chained_matmul(i.m, i.k, i.n, i.precision, accumulate=bool(i.accumulate), preloaded=bool(i.preloaded),
                                 after=(p.m, p.k, p.n) if p is not None else None)
            for p, i in zip([None, *matmuls], matmuls)]


def _within_idle_dram(b: CoreBuilder, pre: list[Instr], ctx: MapperContext, gemm: bool = False, start: tuple[int, int, int] = (0, 0, 0)) -> int:
    """How many of the loads `pre` (in order) this core's share of the DRAM (or its DMA engines, where slower:
    with a fast DRAM they are the limit) carries while its vector unit runs the kernel just emitted (a GEMM: its
    array, vector unit or NoC interface, the busiest), next to the kernel's own DMA traffic (instruction costs
    from the executor's TimingModel; the DRAM shared evenly by every core). The
    attention's vector unit starts only once its first item's loads are in and its first scores are out of the
    array: that ramp is part of its time (without it, BERT-base on a 2x2 of 256x256 left its DRAM idle in the
    attention and streamed 1,300 cycles a layer more in FFN1). `start`: where the kernel's part of the DMA, MXU and
    VEC queues begins (a LayerNorm sharing a GEMM's phase: its loads go after the GEMM's, in its own time)."""
    model = TimingModel.of(ctx.chip)
    ahead = {id(i) for i in pre}
    dma, mxu, vecq = (b.queues[u][at:] for u, at in zip((Unit.DMA, Unit.MXU, Unit.VEC), start))
    vec = sum(_vec_cycles(model, i) for i in vecq if i.op not in (Opcode.SIGNAL, Opcode.WAIT))
    if gemm:
        vec = max(vec, _run_cycles(model, [i for i in mxu if i.op is Opcode.MATMUL]),
                  sum(i.bytes for i in b.queues[Unit.NOC] if i.op is Opcode.NOC_SEND) / ctx.chip.noc.link_bytes_per_cycle)
    else:
        first = next((i for i in mxu if i.op is Opcode.MATMUL), None)
        if first is not None:
            head = dma[:next((j for j, i in enumerate(dma) if i.op is Opcode.SIGNAL), len(dma))]
            costs = [model.dma(i.rows * i.cols * i.dtype.itemsize, i.mem, load=True) for i in head if i.op is Opcode.DMA_LD and id(i) not in ahead]
            vec += sum(c.engine_cycles + c.latency_cycles for c in costs) + model.cost(first).cycles  # type: ignore[union-attr]
    own = sum(i.rows * i.cols * i.dtype.itemsize for i in dma if i.op in (Opcode.DMA_LD, Opcode.DMA_ST) and id(i) not in ahead)
    # this core's share of the DRAM, or its DMA engines where they are slower (a fast DRAM)
    core = ctx.chip.core
    budget = vec * min(ctx.chip.dram_bytes_per_cycle / ctx.cores, core.dma.engines * core.dma.bytes_per_cycle) - own
    n = 0
    for i in pre:
        budget -= i.rows * i.cols * i.dtype.itemsize
        if budget < 0:
            break
        n += 1
    return n


@dataclass(frozen=True, slots=True)
class Ahead:
    """One weight tile of a later GEMM to load ahead: rows k0.. and columns n0.. of parameter `w` into `sram_addr`."""

    w: str
    sram_addr: int
    k0: int
    n0: int
    rows: int
    cols: int

    def load(self, dram: DramLayout) -> Instr:
        return _ld(Buf(Mem.SPAD, self.sram_addr), dram[self.w], self.k0, self.n0, self.rows, self.cols)


LOOKAHEAD = 3  # a vector-bound kernel loads the weight tiles of the GEMMs among the next this many kernels


def _streams_weights(k: Gemm, facts: KernelGraphFacts, ctx: MapperContext) -> bool:
    """Whether GEMM `k` keeps the DRAM busy for at least half of its time (the search's estimate of it): its weights,
    its A unless kept on chip, its outputs that go to DRAM. Else the DRAM would idle behind it (an output
    projection bound by the NoC), as behind a vector-bound kernel."""
    assert k.tiling is not None
    q = ctx.q_itemsize
    moved = k.k * k.n * q + (0 if k.a_resident is not None else k.m * k.k * q)
    for out, size in ((k.out_q, q), (k.out_f, 4)):
        if out is not None and facts.on_chip_of(out) is None:
            moved += k.m * k.n * size
    return moved / ctx.chip.dram_bytes_per_cycle >= k.tiling.cost_cycles / 2


def _plan_ahead(i: int, seq: list[tuple[Kernel, Work]], b: CoreBuilder, facts: KernelGraphFacts, ctx: MapperContext,
                memo: dict[object, object], defer: bool = False) -> tuple[list[tuple[Pin, list[Ahead], bool]], int]:
    """What kernel `i` of `seq` loads ahead on `b`'s core: per later GEMM, its pin (the slots kept for it), the
    loads into them, and whether the pin is new; and the ceiling of kernel i's own buffers (the lowest kept slot).

    A vector-bound kernel, or a GEMM whose own DRAM traffic leaves the DRAM idle most of its time (one bound by
    the NoC: `_streams_weights`), loads a tile for every slot of the GEMMs among the next LOOKAHEAD kernels; any
    other GEMM only the first tile of a GEMM right after it (its own weights stream until its end). A new pin goes
    below everything kept at the top, and only where every kernel up to its GEMM, that GEMM included, still fits
    below it; where not, its slots fill the stretches above what is kept that pins used up since have left free
    first (a pin kept below one used up first pushes the next ones down: on the `bert_ner.yaml` chip with twice
    its DRAM bandwidth, FFN2's 36 slots no longer fitted below, and BERT-base ran 16% slower). `memo` keeps what
    depends on a kernel's position alone, across cores and calls."""
    assert facts.dram is not None

    def footprint(m: int, slots: int | None) -> int:
        key = ("footprint", m, slots)
        if key not in memo:
            memo[key] = _footprint(seq[m][0], ctx, slots)
        return memo[key]  # type: ignore[return-value]

    k, _ = seq[i]
    pins = {p.at: p for p in b.pins}
    kept_top = b.kept_top()
    # kernel i's own buffers below what is kept and below a GEMM sharing its phase (CoreBuilder.reserved_top); new
    # slots below what is kept, and below kernel i's own slots if it has none kept: over that GEMM's slots too, which
    # its loads into them wait for (mapper.emit: the GEMM's closing WAITs go before them)
    ceiling = kept_top if b.reserved_top is None else min(kept_top, b.reserved_top)
    floor = kept_top
    if isinstance(k, Gemm) and i not in pins and seq[i][1][b.core]:
        t = k.tiling
        assert t is not None
        floor = _slot_addresses(floor, _pin_tile(k, ctx), t.w_slots)[-1]
    plan: list[tuple[Pin, list[Ahead], bool]] = []
    streams = isinstance(k, Gemm) and _streams_weights(k, facts, ctx)
    targets = [i + 1] if streams else range(i + 1, min(len(seq), i + 1 + LOOKAHEAD))
    # a GEMM with the DRAM idle keeps new slots only for GEMMs of its own layer (new ones for the next layer's,
    # below its own, would drift from layer to layer)
    only_kept = isinstance(k, Gemm) and not streams
    for j in targets:
        if j >= len(seq):
            break
        g, work = seq[j]
        if not isinstance(g, Gemm) or not work[b.core]:
            continue
        assert g.tiling is not None
        items = work[b.core]
        tkey = ("tiles", j, items)
        if tkey not in memo:
            memo[tkey] = (_weight_tiles(g, items), _slot_count(g, items, ctx, b.spad_bytes))
        tiles, n = memo[tkey]  # type: ignore[misc]
        pin, new, below_own = pins.get(j), False, False
        if pin is None and only_kept and g.layer != k.layer:
            continue
        if pin is None and only_kept and i in pins:
            # nor, with `defer`, below its own kept slots, which it frees first: the kernel after it puts them at
            # the top instead. Below, they push later pins down (BERT-base on 2x2 of 256x256 with twice the DRAM
            # bandwidth ran 10% slower so); where a later pin then does not fit, lower weighs the deferring layout
            if defer:
                continue
            below_own = True
        if pin is None:
            tile = _pin_tile(g, ctx)
            addrs = _slot_addresses(floor, tile, n)
            # every kernel after this one up to the GEMM, and the GEMM's own buffers, must fit below the new slots
            later = [footprint(m, len(pins[m].slots) if m in pins else None) for m in range(i + 1, j)]
            need = max([footprint(j, n), *later])
            if need > addrs[-1]:
                # else the free stretches above what is kept first (left by pins used up since, above a GEMM
                # sharing the phase, whose loads there wait for its array work), then below it
                taken = [(p.slots, _pin_tile(seq[p.at][0], ctx)) for p in [*b.pins, *(p for p, _, _ in plan)]]
                addrs = _gap_slots(taken, max(kept_top, b.reserved_top or 0), b.spad_bytes, tile, n)
                addrs += _slot_addresses(floor, tile, n - len(addrs))
                if need > addrs[-1]:
                    # it might fit but for slots this layer's GEMMs kept below their own (those slots and the
                    # GEMMs' own, which the deferring layout uses instead): lower weighs that layout
                    if need - addrs[-1] <= memo.get(("below own", b.core, g.layer), 0):  # type: ignore[operator]
                        memo["stranded"] = memo.get("stranded", 0) + 1  # type: ignore[operator]
                    continue
            pin, new = Pin(j, tuple(addrs), 0), True
            if below_own:
                key = ("below own", b.core, k.layer)
                memo[key] = memo.get(key, 0) + (len(addrs) * tile + len(pins[i].slots) * _pin_tile(k, ctx))  # type: ignore[operator]
            floor = addrs[-1]
        loads = _ahead_tiles(g, pin, tiles, 1 if streams else len(pin.slots))
        if loads:
            plan.append((pin, loads, new))
    return plan, ceiling


def _preload_first_fold(at: int, seq: list[tuple[Kernel, Work]], b: CoreBuilder, ctx: MapperContext,
                        cycles: _UnitCycles, memo: dict[tuple[object, ...], bool], emitted: object) -> bool:
    """After kernel `at`'s last MATMUL on `b`'s core (before its closing WAITs), an LDW of the next kernel's first
    weight fold, when that kernel is a GEMM whose first tile is loaded ahead into its slot 0 and no wider than the
    array (ws only): the array is idle before the barrier, and the GEMM's first MATMUL then starts with its first
    fold in place instead of loading it (isa/SPEC.md, LDW). A load of that tile in this kernel's DMA queue signals the LDW, which waits
    for it, and then only where the array has the time (else the LDW, waiting for a late load, would hold up the
    barrier: tpuv1, DRAM-bound, lost 7,400 cycles so). Whether the next GEMM's first MATMUL is preloaded.
    `emitted` names what this kernel emitted on the core (its replay key, or None): the same emission on the same
    chip gets the same verdict from `memo`."""
    tc = ctx.chip.core.tensor_core
    if at + 1 >= len(seq) or tc.dataflow is not Dataflow.WS:
        return False
    g, work = seq[at + 1]
    pin = next((p for p in b.pins if p.at == at + 1), None)
    if not isinstance(g, Gemm) or not work[b.core] or pin is None or pin.loaded < 1:
        return False
    assert g.tiling is not None
    cols = g.tile_cols(work[b.core][0][1])
    if cols > tc.cols or b.next_sem >= NUM_SEMAPHORES:
        return False
    slot = pin.slots[0]
    dma = b.queues[Unit.DMA]
    tile = _tile_bytes(g, ctx)  # its load, or the last of its pieces
    here = max((i for i, ins in enumerate(dma) if ins.op is Opcode.DMA_LD and slot <= ins.sram_addr < slot + tile), default=None)
    _, _, lo, hi = work[b.core][0]
    ldw = Ldw(w_addr=slot, k=min(g.tiling.tk, hi - lo, tc.rows), n=cols, dtype=_q_dtype(ctx.int8))
    if here is not None:  # loaded during this kernel: the LDW waits for the load
        # only where the array has the time: its own work and the tile's load, then the LDW, end before the
        # kernel's busiest unit would (else the LDW would hold up the barrier by what it saves the next kernel)
        key = (ctx.chip, emitted, slot, ldw.k, ldw.n, here)
        fits = memo.get(key) if emitted is not None else None
        if fits is None:
            work_of = [sum(map(cycles, b.queues[u])) for u in (Unit.DMA, Unit.MXU, Unit.VEC)]
            busiest = max(work_of)
            if b.reserved_top is not None:  # a LayerNorm sharing a GEMM's phase: its vector work follows the array's
                busiest = max(busiest, work_of[1] + sum(map(cycles, b.queues[Unit.VEC][b.handed[Unit.VEC]:])))
            fits = max(work_of[1], sum(map(cycles, dma[:here + 1]))) + cycles(ldw) <= busiest
            if emitted is not None:
                if len(memo) >= 1 << 12:  # bounded: a sweep worker meets many chips
                    memo.clear()
                memo[key] = fits
        if not fits:
            return False
    # before the kernel's closing WAITs (for its accumulator tiles to be read out): the array is free once its last
    # MATMUL is, and the LDW then runs while the vector unit finishes the last epilogue
    mxu = b.queues[Unit.MXU]
    pos = len(mxu)
    while pos and mxu[pos - 1].op is Opcode.WAIT:
        pos -= 1
    loads: list[Instr] = [ldw]
    if here is not None:
        sem = b.sem()
        dma.insert(here + 1, Signal(unit=Unit.DMA, sem=sem))
        loads.insert(0, Wait(unit=Unit.MXU, sem=sem))
    mxu[pos:pos] = loads
    return True


def _unit_cycles(model: TimingModel, i: Instr, cores: int) -> float:
    """A rough time of `i` on its unit for the estimate above: a DMA transfer with the DRAM shared by every core."""
    if i.op in (Opcode.SIGNAL, Opcode.WAIT):
        return 0
    c = model.cost(i)
    return c.cycles if isinstance(c, ComputeCost) else max(c.engine_cycles, c.channel_cycles * cores)


_PRELOAD_MEMO: dict[tuple[object, ...], bool] = {}  # _preload_first_fold's verdicts, by chip and emission


class _UnitCycles:
    """_unit_cycles of the instructions of one program being emitted, kept by object (they live in the program
    until it is done; replayed kernels share theirs), so an estimate over a kernel's queues hashes no instruction."""

    def __init__(self, ctx: MapperContext) -> None:
        self.model, self.cores = TimingModel.of(ctx.chip), ctx.cores
        self.seen: dict[int, tuple[Instr, float]] = {}

    def __call__(self, i: Instr) -> float:
        found = self.seen.get(id(i))
        if found is None or found[0] is not i:
            found = self.seen[id(i)] = (i, _unit_cycles(self.model, i, self.cores))
        return found[1]


def phase_name(ks: list[Kernel]) -> str:
    """`l3.ffn1`; kernels of one phase `l3.qkv`, of one barrier-free phase `l3.ffn2+ln2`."""
    if len(ks) == 1:
        return ks[0].name
    prefix = ks[0].name.rsplit(".", 1)[0]
    return f"{prefix}." + ("" if all(k.phase == ks[0].phase for k in ks) else "+").join(k.name.rsplit(".", 1)[1] for k in ks)


def describe_mapping(k: Kernel, work: tuple[tuple[object, ...], ...], facts: KernelGraphFacts) -> str:
    """One kernel's mapping in words: tile sizes, where its operands come from and its results go, and how its
    items are placed."""
    items = [len(w) for w in work]
    placed = f"{sum(items)} items on {sum(1 for n in items if n)} of {len(items)} cores (max {max(items, default=0)} per core)"

    def where(t: str | None, what: str) -> str:
        kept = facts.on_chip_of(t)
        if kept is None:
            return f"{what} via DRAM"
        return f"{what} on chip ({'gathered on every core' if kept.residency is Residency.GATHERED else 'rows on their owner core'})"

    if isinstance(k, Gemm):
        t = k.tiling
        tiles = f"tm={t.tm} tn={t.tn} tk={t.tk}" if t is not None else "untiled"
        a_from = ("A read in place (kept on chip)" if k.a_resident is not None
                  else "A loaded once per core and kept" if t is not None and t.a_once else "A from DRAM")
        w_kept = "weights kept across row tiles" if t is not None and t.tk >= k.k else "weights reloaded per row tile"
        out = ", ".join(where(o, "output") for o in (k.out_q, k.out_f) if o is not None)
        if t is not None and t.split_k:
            split = sum(1 for core in work for it in core if it[2] > 0)  # type: ignore[index]
            placed += f", stream-K: chunks dealt evenly, {split} tiles split between two cores (partial sums over the NoC)"
        return f"{k.name}: {k.m}x{k.k}x{k.n} {tiles}, loops n > m > k, {w_kept}, {a_from}, {out}, {placed}"
    if isinstance(k, Attention):
        q_from = "Q|K|V read in place (kept on chip, gathered on every core)" if k.q_resident is not None else "Q|K|V via DRAM"
        return f"{k.name}: {k.batch * k.heads} heads of {k.seq}x{k.head_dim}, tq={k.tq} query rows per item, {q_from}, {where(k.out, 'context')}, {placed}"
    flows = [where(k.inp, "input")] + [where(n, f"addend {n}") for n, how in k.addends if how is AddBcast.NONE]
    flows += [where(k.out_f, "fp32 rows"), where(k.out_q, "operand")]
    return f"{k.name}: {k.rows}x{k.cols}, tr={k.tr} rows per item, {', '.join(flows)}, {placed}"


def _emit_on_core(b: CoreBuilder, k: Kernel, work: Work, facts: KernelGraphFacts, ctx: MapperContext,
                  pre: list[Instr], fresh: int) -> tuple[int, tuple[object, ...] | None]:
    """Kernel `k`'s instructions on `b`'s core, with `pre` (later GEMMs' weight tiles; the last `fresh` of them into
    slots kept from now on, slot 0 highest) in its DMA queue as far as its buffers leave room for them; how many of
    them were kept (the first ones: a new slot the kernel's own buffers reach is dropped, and every one after it),
    and what the emitter marked of where its work lies in the queues (CoreBuilder.marks)."""
    assert b.spad is not None
    start = b.state(), [len(b.queues[u]) for u in UNITS]
    b.prefetch, b.split_prefetch, b.prefetch_places = list(pre), False, 0  # places: set where the emitter issues them
    b.marks = None
    EMITTERS[type(k)](b, k, work, facts, ctx)
    if b.prefetch:  # no items here: the DMA queue is free for them
        b.queues[Unit.DMA].extend(b.prefetch)
        b.prefetch = []
    kept, first_fresh = 0, len(pre) - fresh
    # new slots between the kernel's buffers and what is kept (over the slots of a GEMM sharing the phase, if any),
    # or in the stretches above what is kept (_gap_slots: clear of every kept slot, and above a GEMM sharing the phase)
    top = b.spad.size if b.reserved_top is None else b.kept_top()
    above = max(b.kept_top(), b.reserved_top or 0)
    while kept < len(pre) and (kept < first_fresh or (b.spad.top <= pre[kept].sram_addr
                                                      and (pre[kept].sram_addr + pre[kept].rows * pre[kept].cols * ctx.q_itemsize <= top
                                                           or pre[kept].sram_addr >= above))):
        kept += 1
    if not isinstance(k, Gemm) or not _streams_weights(k, facts, ctx):
        # only what the DRAM would carry while the kernel's busiest unit works (but one tile at least)
        shared = tuple(b.handed[u] for u in (Unit.DMA, Unit.MXU, Unit.VEC)) if b.reserved_top is not None else (0, 0, 0)  # after a GEMM's part
        kept = min(kept, max(1, _within_idle_dram(b, pre[:kept], ctx, gemm=isinstance(k, Gemm), start=shared)))
    if 0 < kept < b.prefetch_places:  # the tiles kept are fewer than the items: emitted again, cut in pieces
        b.set_state(start[0])
        for u, n in zip(UNITS, start[1]):
            del b.queues[u][n:]
        b.prefetch, b.split_prefetch = list(pre[:kept]), True
        EMITTERS[type(k)](b, k, work, facts, ctx)
        b.split_prefetch = False
        assert not b.prefetch, f"{k.name}: the emitter issued the tiles the first time, not the second"
    elif kept < len(pre):  # the rest would overwrite a buffer in use
        dropped = {id(i) for i in pre[kept:]}
        b.queues[Unit.DMA] = [i for i in b.queues[Unit.DMA] if id(i) not in dropped]
    return kept, b.marks


def emit(g: nx.DiGraph, ctx: MapperContext, *, replay: bool = True, ahead: int = 0, handoff: bool = True,
         defer_pins: bool = False) -> Lowered:
    """One program per core for the kernel graph `g`. replay: kernels identical up to their parameters' DRAM
    addresses are emitted once per core and replayed (mapper/replay.py); False emits every one. ahead: the first
    kernel, a GEMM, starts with that many of its first weight tiles (at most one per slot) in its slots, as a kernel
    before it would have left them, and `ahead_bytes` counts them (from a phase named `before`): the mapping
    search measures a GEMM alone so. handoff: a GEMM whose fp32 result feeds the LayerNorm right after it, kept on
    chip, shares that LayerNorm's phase (no barrier between them: `handoff_sends`), and the fused projection the
    attention's (`_feed_rounds`), where both kernels' buffers and semaphores fit side by side (else the attention
    gets its barrier back, then the LayerNorm); False puts a barrier after every kernel. defer_pins: a GEMM that
    leaves the DRAM idle keeps no new weight slots below its own (_plan_ahead); without it `stranded_pins` counts
    the later pins that then did not fit."""
    for joins in ((True, True), (True, False)) if handoff else ():
        try:
            return _emit(g, ctx, replay, ahead, *joins, defer_pins)
        except MapperError:  # two kernels' buffers or semaphores do not fit together: a barrier between them
            pass
    return _emit(g, ctx, replay, ahead, False, False, defer_pins)


def _close_handoff(b: CoreBuilder, ctx: MapperContext, gemm: str, norm: str) -> dict[Unit, list[str]]:
    """The end of a phase a GEMM shares with the kernel after it (its LayerNorm, or the attention the fused
    projection feeds; `norm` names it): the GEMM's closing WAITs (its channels' drains) back in at the end; and on
    the DMA queue, before the second kernel's first load into the GEMM's buffers at the top of the scratchpad
    (weight tiles of a later GEMM into slots over the GEMM's own), a WAIT for the array to have run the GEMM's last
    MATMUL (else at the end: every SIGNAL has its WAIT). Each instruction's kernel name, per unit (`gemm` or
    `norm`)."""
    assert b.reserved_top is not None
    labels = {u: _kernel_labels(len(b.queues[u]), b.handed[u], b.moved.get(u, []), gemm, norm) for u in UNITS if u is not Unit.DMA}
    first, consts, split = _close_queues(b, b.queues, ctx)
    dma = b.queues[Unit.DMA]
    labels[Unit.DMA] = [gemm] * first + [norm] * consts + [gemm] * (split - consts - first) + [norm] * (len(dma) - split - len(b.closing.get(Unit.DMA, [])))
    for u, closing in b.closing.items():
        labels[u] += [gemm] * len(closing)
    b.handoff, b.reserved_top, b.closing, b.head_rounds, b.moved = -1, None, {}, None, {}
    return labels


def _close_queues(b: CoreBuilder, queues: dict[Unit, list[Instr]], ctx: MapperContext) -> tuple[int, int, int]:
    """_close_handoff's edits of the unit queues `queues` (b's own, or copies): on the DMA queue, where the second
    kernel's first loads went, how many, and where the GEMM's part then ends; the closing WAITs appended."""
    assert b.reserved_top is not None
    dma, split = queues[Unit.DMA], b.handed[Unit.DMA]
    q = ctx.q_itemsize
    # the second kernel's first loads (up to its first SIGNAL: the LayerNorm's constants, the attention's first mask)
    # right behind the GEMM's first loads, ahead of the weight tiles the GEMM loads for later GEMMs: its buffers lie
    # below the GEMM's, untouched by it
    lead = next((j + 1 for j in range(split, len(dma)) if dma[j].op is Opcode.SIGNAL), split)
    consts = dma[split:lead]
    del dma[split:lead]
    first = next((j + 1 for j in range(split) if dma[j].op is Opcode.SIGNAL), 0)
    dma[first:first] = consts
    split += len(consts)
    at = next((j for j in range(split, len(dma)) if dma[j].op is Opcode.DMA_LD and dma[j].mem is Mem.SPAD
               and dma[j].sram_addr + dma[j].rows * dma[j].cols * q > b.reserved_top), len(dma))
    dma.insert(at, Wait(unit=Unit.DMA, sem=b.array_done))
    for u, closing in b.closing.items():
        queues[u].extend(closing)
    return first, len(consts), split


def _kernel_labels(n: int, handed: int, moved: list[tuple[int, int]], first: str, second: str) -> list[str]:
    """Per instruction of a unit queue of `n` shared by two kernels, its kernel: the first's `handed` instructions
    come first, but for the second's `moved` in among them (_merge_heads), the rest are the second's."""
    out: list[str] = []
    for lo, hi in moved:
        out += [first] * (lo - len(out)) + [second] * (hi - lo)
    rest = handed - sum(1 for label in out if label == first)
    return out + [first] * rest + [second] * (n - len(out) - rest)


def _handing(seq: list[tuple[Kernel, Work]], i: int, facts: KernelGraphFacts) -> bool:
    """Whether kernel i of `seq` hands its fp32 rows to the LayerNorm after it within one phase: the result and the
    LayerNorm's input rows kept on chip, with their owners."""
    k, nxt = seq[i][0], seq[i + 1][0] if i + 1 < len(seq) else None
    if not hands_rows(k, nxt):
        return False
    assert isinstance(k, Gemm)
    kept = facts.on_chip_of(k.out_f)
    return kept is not None and kept.residency is Residency.OWNED_ROWS


@dataclass
class _Fed:
    """One core's part of a fused projection and the attention it feeds, as emitted, for _merge_heads: where each
    projection tile's work ends per unit (MXU, VEC) and the tiles' accumulator slots; where the attention's emission
    began per unit; its blocks per unit (stage, item, start, end) from there, each item's round, the first item
    whose loads queue behind the later GEMMs' weight tiles (which wait for the projection's array work), and where
    the next GEMM's weights lie in DRAM."""

    b: CoreBuilder
    mx_ends: tuple[int, ...]
    vec_ends: tuple[int, ...]
    acc_slots: int
    starts: dict[Unit, int]
    blocks: dict[Unit, tuple[tuple[int, int, int, int], ...]]
    need: tuple[int, ...]
    gated: int
    next_weights: tuple[int, int]  # the DRAM bytes [lo, hi) of the weights of the GEMM after the attention

    def ahead_cycles(self, cycles: _UnitCycles) -> float:
        """The DMA time of the next GEMM's weight tiles loaded ahead in the attention, which wait for the projection's
        array work (_close_handoff) and which that GEMM starts on (later GEMMs' tiles load under it)."""
        lo, hi = self.next_weights
        return sum(cycles(i) for i in self.b.queues[Unit.DMA][self.starts[Unit.DMA]:]
                   if i.op is Opcode.DMA_LD and lo <= i.dram_addr < hi)


def _attention_marks(marks: tuple[object, ...] | None) -> tuple[dict[Unit, tuple[tuple[int, int, int, int], ...]], tuple[int, ...], int]:
    """emit_attention's marks as _Fed's blocks, rounds and first gated item (none on a core without items)."""
    if marks is None:
        return {Unit.MXU: (), Unit.VEC: ()}, (), 0
    mx, vec, need, gated = marks
    return {Unit.MXU: mx, Unit.VEC: vec}, need, gated  # type: ignore[return-value]


Block = tuple[int, str, int]  # (core, kind, index): T, E a projection tile on the array, its epilogue; S, X, P, O an
# attention item's scores, softmax, context and context epilogue; R a round of the projection's sends, D a core's
# weight tiles loaded ahead behind the projection (neither on the array or vector unit)


def _merge_heads(fed: list[_Fed], cycles: _UnitCycles, builders: list[CoreBuilder], ctx: MapperContext) -> None:
    """The attention sharing the fused projection's phase: its blocks (per item: the scores MATMUL, the softmax, the
    context MATMUL and its epilogue) go in among the projection's tiles and epilogues, on every core at once, in the
    order that runs the phase fastest of three: the attention after the projection (as emitted), its first scores
    and softmax alone after the tile following the round their head waits for, and a list schedule of both kernels
    on the cores' arrays and vector units. With the executor at hand (`ctx.race` or `ctx.measure`) each order is
    run as the phase alone (_phase_program; a phase starts and ends on a barrier, so it runs alone as it does in
    the program) and the fastest kept, the first of equals; an order that cannot run is left out. Without it the
    second is kept where the schedule's estimate of it ends sooner than the first's.

    The schedule estimates each block's time by the executor's costs (a tile's MATMULs as a run of folds, from an
    empty array after another block) and keeps each kernel's own order on each unit. A block starts no sooner than
    what it waits for: a tile the epilogue whose accumulator tile it reuses; the scores of an item the round of the
    projection's sends holding its head (every core's epilogue of that tile, then its sends over the core's NoC
    link, and the round before); the attention's blocks their buffer rings (two slots each); the softmax of an
    item after the first its mask, which the DMA queue loads behind the projection's loads and, from item `gated`
    on, behind the later GEMMs' weight tiles, which wait for the projection's last tile; a context epilogue its
    slot's send, which the NoC queue makes after every round. Each step starts the unit that can start first on
    the block, of its two next ones whose dependencies are scheduled, with the longest path to the end among those
    ready then, else the one ready first. The estimate counts the phase done when every unit is and the next
    GEMM's tiles loaded ahead behind the projection are in. A block goes before another on its unit only where it
    starts first in the schedule, after every block it waits for there (isa/SPEC.md: a unit runs its queue in
    order); what the estimate does not model, the executor's run of the order checks."""
    model = cycles.model
    link, hop = model.link_bytes_per_cycle, model.hop_cycles
    seqs: dict[tuple[int, Unit], tuple[list[tuple[Block, list[Instr]]], list[tuple[Block, list[Instr]]]]] = {}
    took: dict[Block, float] = {}  # after a block of the same kernel on the unit (a tile: continuing the run of folds)
    fresh: dict[Block, float] = {}  # a tile after another block or first
    sends: dict[tuple[int, int], int] = {}
    att_end: dict[tuple[int, Unit], int] = {}
    rounds = 0
    for f in fed:
        c, b = f.b.core, f.b
        mxq, vecq = b.queues[Unit.MXU], b.queues[Unit.VEC]
        gemm_mx = [((c, "T", j), mxq[lo:hi]) for j, (lo, hi) in enumerate(zip((0, *f.mx_ends), f.mx_ends))]
        gemm_vec = [((c, "E", j), vecq[lo:hi]) for j, (lo, hi) in enumerate(zip((0, *f.vec_ends), f.vec_ends))]
        kinds = {Unit.MXU: ("S", "P"), Unit.VEC: ("X", "O")}
        for u, gemm in ((Unit.MXU, gemm_mx), (Unit.VEC, gemm_vec)):
            q, blocks = b.queues[u], f.blocks[u]
            att = [((c, kinds[u][stage], i), q[f.starts[u] + lo:f.starts[u] + hi]) for stage, i, lo, hi in blocks]
            seqs[(c, u)] = (gemm, att)
            att_end[(c, u)] = f.starts[u] + (blocks[-1][3] if blocks else 0)
            for name, blk in gemm + att:
                took[name] = fresh[name] = sum(map(cycles, blk))
        chained: dict[int, float] = {}
        for (j, term) in zip([j for j, (_, blk) in enumerate(gemm_mx) for i in blk if i.op is Opcode.MATMUL],
                             _run_terms(model, [i for _, blk in gemm_mx for i in blk if i.op is Opcode.MATMUL])):
            chained[j] = chained.get(j, 0) + term
        for j, (_, blk) in enumerate(gemm_mx):
            took[(c, "T", j)] = chained.get(j, 0)
            sends[(c, j)] = -(-sum(i.m * i.n * i.precision.itemsize for i in blk if i.op is Opcode.MATMUL) // link) + hop
        rounds = max(rounds, len(f.mx_ends))
    by_core = {f.b.core: f for f in fed}

    def deps(name: Block) -> list[tuple[Block, float]]:  # (block, cycles after its end)
        c, kind, i = name
        if kind == "D":
            return [((c, "T", len(by_core[c].mx_ends) - 1), 0)]
        if kind == "R":
            return [((c2, "E", i), sends[(c2, i)]) for c2, f in by_core.items() if i < len(f.mx_ends)] + ([((-1, "R", i - 1), 0)] if i else [])
        f = by_core[c]
        if kind == "T":
            return [((c, "E", i - f.acc_slots), 0)] if i >= f.acc_slots else []
        if kind == "E":
            return [((c, "T", i), 0)]
        if kind == "S":
            return [((-1, "R", f.need[i]), 0)] + ([((c, "X", i - 2), 0)] if i >= 2 else [])
        if kind == "X":
            # its mask: the first item's goes with the projection's first loads (_close_handoff), the others queue
            # behind the projection's loads, whose last waits for its slots' release, by the epilogue three tiles
            # back at the latest (two slots at least), and behind the later GEMMs' tiles from item `gated` on
            tiles = len(f.mx_ends)
            gate = [((c, "E", tiles - 3), 0)] if i and tiles >= 3 else []
            gate += [((c, "T", tiles - 1), 0)] if i >= f.gated else []
            return [((c, "S", i), 0)] + ([((c, "P", i - 2), 0)] if i >= 2 else []) + gate
        if kind == "P":
            return [((c, "X", i), 0)] + ([((c, "O", i - 2), 0)] if i >= 2 else [])
        # its slot of the context's two, freed by the NoC's send two items back, which queues behind every round
        return [((c, "P", i), 0)] + ([((-1, "R", rounds - 1), 0)] if i >= 2 and rounds else [])

    after: dict[Block, list[tuple[Block, float]]] = {}  # the reverse of deps, and of each kernel's order on a unit
    names: list[Block] = [(-1, "R", r) for r in range(rounds)] + [(f.b.core, "D", 0) for f in fed]
    for f in fed:
        took[(f.b.core, "D", 0)] = f.ahead_cycles(cycles)
    for pair in seqs.values():
        for part in pair:
            names += [name for name, _ in part]
            for (x, _), (y, _) in zip(part, part[1:]):
                after.setdefault(x, []).append((y, 0))
    waits = {y: deps(y) for y in names}  # each block's dependencies, looked up by the schedules below
    for y in names:
        for x, lag in waits[y]:
            after.setdefault(x, []).append((y, lag))
    rank: dict[Block, float] = {}

    def upward(name: Block) -> float:  # the longest path from the block's start to the end (blocks before it first)
        stack = [name]
        while stack:
            x = stack[-1]
            todo = [y for y, _ in after.get(x, ()) if y not in rank]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            rank[x] = took.get(x, 0) + max((lag + rank[y] for y, lag in after.get(x, ())), default=0)
        return rank[name]

    for name in names:
        upward(name)

    def schedule(merge: bool, fixed: Order | None = None) -> tuple[float, Order]:
        """The list schedule (merge: of both kernels' blocks, else the projection's first on each unit), or the
        estimate of the `fixed` order of every unit (its end infinite where the order would deadlock)."""
        pairs = seqs if fixed is None else {key: (fixed[key], []) for key in seqs}
        at = {(key, s): 0 for key in pairs for s in (0, 1)}
        end: dict[Block, float] = {}
        free = {key: 0.0 for key in seqs}
        last: dict[tuple[int, Unit], str] = {}
        order: dict[tuple[int, Unit], list[tuple[Block, list[Instr]]]] = {key: [] for key in seqs}
        left = sum(len(x) for pair in pairs.values() for x in pair)
        r_next = 0
        while left:
            while r_next < rounds and all(x in end for x, _ in waits[(-1, "R", r_next)]):
                end[(-1, "R", r_next)] = max([0.0] + [end[x] + lag for x, lag in waits[(-1, "R", r_next)]])
                r_next += 1
            best = None
            for key, pair in pairs.items():
                cands = []
                for s in (0, 1):
                    if at[(key, s)] >= len(pair[s]) or (not merge and s == 1 and at[(key, 0)] < len(pair[0])):
                        continue
                    name, _ = pair[s][at[(key, s)]]
                    d = waits[name]
                    if all(x in end for x, _ in d):
                        cands.append((max([0.0] + [end[x] + lag for x, lag in d]), s, name))
                if not cands:
                    continue
                now = [x for x in cands if x[0] <= free[key]]
                ready, s, name = max(now, key=lambda x: (rank[x[2]], -x[1])) if now else min(cands, key=lambda x: (x[0], -rank[x[2]], x[1]))
                start = max(ready, free[key])
                if best is None or start < best[0]:
                    best = (start, key, s)
            if best is None:
                assert fixed is not None, "the merge's dependencies have a cycle"
                return math.inf, fixed
            start, key, s = best
            name, blk = pairs[key][s][at[(key, s)]]
            at[(key, s)] += 1
            t = took[name] if name[1] != "T" or last.get(key) == "T" else fresh[name]
            end[name] = free[key] = start + t
            last[key] = name[1]
            order[key].append((name, blk))
            left -= 1
        loads = [end[(f.b.core, "T", len(f.mx_ends) - 1)] + took[(f.b.core, "D", 0)] for f in fed]
        return max([*free.values(), *loads]), order

    kept_end, kept = schedule(False)
    merged_end, merged = schedule(True)
    pulled = _pulled(fed, kept)
    orders = [kept, pulled, merged]
    if ctx.race is None and ctx.measure is None:
        # estimated: the first scores and softmax pulled in where that ends sooner (the merge is left to a measure)
        pick = 1 if pulled is not None and schedule(False, pulled)[0] < kept_end else 0
    else:  # the phase alone as a program, for each order: the fastest (the first of equals), whatever the objective
        key = tuple((f.b.core, f.need, f.gated, f.acc_slots, took[(f.b.core, "D", 0)],
                     tuple(took[n] for pair in (seqs[(f.b.core, Unit.MXU)], seqs[(f.b.core, Unit.VEC)]) for part in pair for n, _ in part))
                    for f in fed)
        pick = _MERGE_MEMO.get((ctx.chip, key), -1)
        if pick < 0:
            names = [None if o is None else {k: [n for n, _ in v] for k, v in o.items()} for o in orders]
            distinct = [n for n, o in enumerate(names) if o is not None and o not in names[:n]]
            programs = [_phase_program(builders, fed, orders[n], att_end, ctx) for n in distinct]  # type: ignore[arg-type]
            pick = distinct[_fastest_running(programs, ctx)]
            if len(_MERGE_MEMO) >= 1 << 12:  # bounded: a sweep worker meets many chips
                _MERGE_MEMO.clear()
            _MERGE_MEMO[(ctx.chip, key)] = pick
    if pick == 0:
        return
    order = orders[pick]
    assert order is not None
    for f in fed:
        for u in (Unit.MXU, Unit.VEC):
            new, moved = _merged_queue(f, u, order[(f.b.core, u)])
            f.b.queues[u][:att_end[(f.b.core, u)]] = new
            f.b.moved[u] = moved


def _fastest_running(programs: list[Program], ctx: MapperContext) -> int:
    """The index of the fastest of `programs` (the first of equals) by the executor's race, or its measure of each,
    leaving out any that cannot run (the executor raises ValueError: a deadlock the merge's estimate did not
    foresee); the first must run."""
    if ctx.race is not None:
        try:
            return first_fastest(ctx.race(programs, ctx.chip))
        except ValueError:
            pass

    def cycles(n: int, p: Program) -> int | None:
        try:
            return ctx.race([p], ctx.chip)[0] if ctx.race is not None else ctx.measure(p, ctx.chip)[0]  # type: ignore[misc]
        except ValueError:
            if not n:
                raise
            return None

    return first_fastest([cycles(n, p) for n, p in enumerate(programs)])


_MERGE_MEMO: dict[tuple[object, ...], int] = {}  # _merge_heads' picks, by chip and the phase's blocks and times
Order = dict[tuple[int, Unit], list[tuple[Block, list[Instr]]]]


def _pulled(fed: list[_Fed], kept: Order) -> Order | None:
    """The attention's first scores MATMUL and softmax alone moved in among the projection's tiles, on every core: on
    the array and the vector unit after the tile following the round its head waits for (None where some core's
    projection has no tile left after that one)."""
    out = {}
    for f in fed:
        c = f.b.core
        if not f.blocks[Unit.MXU]:
            out.update({(c, u): kept[(c, u)] for u in (Unit.MXU, Unit.VEC)})
            continue
        after = f.need[0] + 1
        if after >= len(f.mx_ends) - 1:
            return None
        for u, first in ((Unit.MXU, "S"), (Unit.VEC, "X")):
            seq = list(kept[(c, u)])
            at = next(n for n, (name, _) in enumerate(seq) if name[1:] == (first, 0))
            block = seq.pop(at)
            seq.insert(after + 1, block)
            out[(c, u)] = seq
    return out


def _merged_queue(f: _Fed, u: Unit, order: list[tuple[Block, list[Instr]]]) -> tuple[list[Instr], list[tuple[int, int]]]:
    """Core f's queue of unit u up to the attention's last block, its blocks in `order`, and where the attention's
    blocks lie among the projection's (their kernel labels, _kernel_labels)."""
    ends, blocks, q = (f.mx_ends if u is Unit.MXU else f.vec_ends), f.blocks[u], f.b.queues[u]
    # between the projection's last tile and the attention's first block: stays after that tile
    middle = q[ends[-1]:f.starts[u] + (blocks[0][2] if blocks else 0)]
    new: list[Instr] = []
    moved: list[tuple[int, int]] = []
    gemm_left = len(ends)
    for name, blk in order:
        lo = len(new)
        new.extend(blk)
        if name[1] in "TE":
            gemm_left -= 1
            if not gemm_left:
                new.extend(middle)
        elif gemm_left:
            moved.append((lo, len(new)))
    return new, moved


def _phase_program(builders: list[CoreBuilder], fed: list[_Fed], order: Order, att_end: dict[tuple[int, Unit], int],
                   ctx: MapperContext) -> Program:
    """The phase being emitted alone, as a program, with the fed cores' queues in `order` and closed as the phase
    will be (_close_handoff): a barrier leaves no unit busy and no semaphore up, so it runs as it will in the
    program (the next GEMM's first fold, which its attention's array loads after its last block, left out)."""
    by_core = {f.b.core: f for f in fed}
    cores = []
    for b in builders:
        queues = {u: list(q) for u, q in b.queues.items()}
        f = by_core.get(b.core)
        if f is not None:
            for u in (Unit.MXU, Unit.VEC):
                queues[u][:att_end[(b.core, u)]] = _merged_queue(f, u, order[(b.core, u)])[0]
        if b.reserved_top is not None:
            _close_queues(b, queues, ctx)
        cores.append((*(i for u in UNITS for i in queues[u]), Halt()))
    return Program(tuple(cores), ctx.chip.mesh.rows, ctx.chip.mesh.cols)


def _feeding(seq: list[tuple[Kernel, Work]], i: int, facts: KernelGraphFacts) -> bool:
    """Whether kernel i of `seq`, the fused projection, feeds the attention after it within one phase: its Q | K | V
    gathered on chip and read there in place, and no tile split between cores (a partial sum's send and receive
    would fall in different rounds of the feed, _feed_rounds)."""
    k, nxt = seq[i][0], seq[i + 1][0] if i + 1 < len(seq) else None
    if not feeds_heads(k, nxt):
        return False
    assert isinstance(k, Gemm) and isinstance(nxt, Attention) and k.tiling is not None
    kept = facts.on_chip_of(k.out_q)
    return kept is not None and kept.residency is Residency.GATHERED and nxt.q_resident is not None and not k.tiling.split_k


def _emit(g: nx.DiGraph, ctx: MapperContext, replay: bool, ahead: int, handoff: bool, heads: bool, defer: bool = False) -> Lowered:
    chip = ctx.chip
    facts = graph_facts(g)
    if facts.dram is None:
        raise AssertionError("emit needs the DRAM layout: run allocate_dram first")
    replayer = KernelReplay(facts) if replay else None
    dram = facts.dram
    # the tops of the scratchpad and accumulator hold the activations kept on chip (mapper.on_chip)
    spad = chip.core.scratchpad.size_bytes - facts.resident_spad_bytes
    acc = chip.core.accumulator.size_bytes - facts.resident_acc_bytes
    builders = [CoreBuilder(c, spad, acc) for c in range(ctx.cores)]
    phases, phase_macs, phase_mapping = [], {}, {}
    seq = [(g.nodes[n]["kernel"], g.nodes[n]["work"]) for n in g.nodes]  # execution order (and phase order)
    memo: dict[object, object] = {}
    ahead_bytes: dict[tuple[str, str], int] = {}
    unit_cycles = _UnitCycles(ctx)
    tile_ends: dict[int, tuple[tuple[int, ...], ...]] = {}  # per core, where the fused projection's items end (MXU, VEC)
    first, first_work = seq[0]
    if ahead and isinstance(first, Gemm):
        assert first.tiling is not None
        for b in builders:
            items = first_work[b.core]
            if not items:
                continue
            n = _slot_count(first, items, ctx, b.spad_bytes)
            pin = Pin(0, tuple(_slot_addresses(b.spad_bytes, _pin_tile(first, ctx), n)), 0)
            if _footprint(first, ctx, n) <= pin.slots[-1]:
                loads = _ahead_tiles(first, pin, _weight_tiles(first, items), ahead)
                pin.loaded = len(loads)
                b.pins.append(pin)
                pair = ("before", first.name)
                ahead_bytes[pair] = ahead_bytes.get(pair, 0) + sum(a.rows * a.cols * ctx.q_itemsize for a in loads)
    # a barrier after every kernel but one handing its fp32 rows to the LayerNorm right after it (_handing); the
    # kernels between two barriers, or of one phase, share a label
    hand = [handoff and _handing(seq, i, facts) for i in range(len(seq))]
    feed = [heads and _feeding(seq, i, facts) for i in range(len(seq))]
    joined = [h or f for h, f in zip(hand, feed)]
    groups: list[list[int]] = []
    for i, (k, _) in enumerate(seq):
        if i and (joined[i - 1] or k.phase == seq[i - 1][0].phase):
            groups[-1].append(i)
        else:
            groups.append([i])
    phase_kernels: dict[str, tuple[str, ...]] = {}
    for group in groups:
        ks = [seq[i][0] for i in group]
        label = phase_name(ks)
        phases.append(label)
        phase_kernels[label] = tuple(k.name for k in ks)
        phase_macs[label] = sum(k.macs for k in ks)
        phase_mapping[label] = "; ".join(describe_mapping(k, seq[i][1], facts) for i, k in zip(group, ks))
        def finish(at: int, k: Kernel, work: Work, label: str, c: int, b: CoreBuilder, marks: tuple[object, ...] | None,
                   starts: dict[Unit, int], emitted: object, shared_acc: bool, acc_from: int) -> None:
            """After a kernel's emission on core c: the next GEMM's first fold, a shared phase's hand-off, the barrier."""
            b.preloaded = _preload_first_fold(at, seq, b, ctx, unit_cycles, _PRELOAD_MEMO, emitted)
            if feed[at] and not shared_acc and marks is not None:  # where the projection's tiles end on this core
                tile_ends[c] = (*(tuple(starts[u] + e for e in ends) for u, ends in zip((Unit.MXU, Unit.VEC), marks)), marks[2])  # type: ignore[call-overload, index]
            if joined[at]:  # the kernel next waits on b.handoff, its loads not on the GEMM's closing WAITs
                if feed[at]:
                    b.feeding, b.reserved_acc = None, 0
                    b.head_rounds = head_rounds(k, work, seq[at + 1][0], seq[at + 1][1][b.core])
                for u in UNITS:
                    q = b.queues[u]
                    n = len(q)
                    while n and q[n - 1].op is Opcode.WAIT and not (shared_acc and u is Unit.MXU):
                        n -= 1
                    b.closing[u] = q[n:]
                    del q[n:]
                if shared_acc:  # the array's WAITs for its accumulator tiles' release stay
                    assert b.acc is not None
                    b.acc.top = acc_from
                b.handoff_rows, b.reserved_top = None, b.spad.size
                b.array_done = b.sem()
                b.signal(Unit.MXU, b.array_done)
                b.handed = {u: len(b.queues[u]) for u in UNITS}
                return
            # A barrier after every kernel (but a GEMM handing its rows to this one): its semaphores are back to
            # zero and its buffers free for the next.
            b.end_phase(label, _close_handoff(b, ctx, seq[at - 1][0].name, k.name) if b.closing else None)
        for at, k in zip(group, ks):
            work = seq[at][1]
            fed_attention = bool(at and feed[at - 1])
            pending: list[tuple[int, CoreBuilder, tuple[object, ...] | None, dict[Unit, int], object, bool, int]] = []
            for c, b in enumerate(builders):
                # Later GEMMs' first weight tiles are loaded during this kernel into slots kept for them at the top of
                # the scratchpad, where this kernel's buffers leave room, so those GEMMs start with their weights in.
                plan, ceiling = _plan_ahead(at, seq, b, facts, ctx, memo, defer)
                plan.sort(key=lambda e: e[2])  # loads into slots kept already first, then the new ones
                ahead = [a for _, loads, _ in plan for a in loads]
                fresh = sum(len(loads) for _, loads, new in plan if new)
                own = next((p for p in b.pins if p.at == at), None)
                b.slots, b.slots_loaded = (own.slots, own.loaded) if own is not None else (None, 0)
                assert b.spad is not None
                b.spad.size = ceiling
                shared_acc, acc_from = False, 0
                if hand[at]:  # the LayerNorm's items on every core, and the semaphore of its rows coming in
                    b.handoff, b.handoff_rows = b.sem(), seq[at + 1][1]
                elif feed[at]:  # the semaphore of the attention's heads coming in, and who runs each head
                    nxt, t = seq[at + 1][0], k.tiling
                    assert isinstance(nxt, Attention) and isinstance(k, Gemm) and t is not None and b.acc is not None
                    b.handoff, b.feeding = b.sem(), HeadOwners.of(nxt, seq[at + 1][1])
                    # the attention's accumulator tiles beside the GEMM's two at least, else over them once the
                    # GEMM's last epilogue has freed them (its array then waits for that: shared_acc)
                    need = attention_sram_bytes(nxt.tq, nxt.seq, nxt.head_dim, ctx.q_itemsize, nxt.in_slots, True)[1]
                    shared_acc = not beside_projection(b.acc.size - b.acc.top, need, t.tm, t.tn)
                    b.reserved_acc, acc_from = 0 if shared_acc else need, b.acc.top

                def once(b: CoreBuilder = b, k: Kernel = k, work: Work = work, ahead: list[Ahead] = ahead,
                         fresh: int = fresh) -> tuple[int, tuple[object, ...] | None]:
                    return _emit_on_core(b, k, work, facts, ctx, [a.load(dram) for a in ahead], fresh)

                starts = {u: len(b.queues[u]) for u in (Unit.DMA, Unit.MXU, Unit.VEC)}
                if replayer is None:
                    (kept, marks), emitted = once(), None
                else:
                    key, tensors = replayer.key(k, work, b, ahead, fresh, tuple((p.at - at, p.slots, p.loaded) for p in b.pins))
                    (kept, marks), emitted = replayer.run(once, b, key, tensors), key
                done = 0
                for pin, loads, new in plan:
                    n = max(0, min(len(loads), kept - done))
                    done += len(loads)
                    if new and n:
                        b.pins.append(pin)
                    pin.loaded += n
                    if n:
                        pair = (k.name, seq[pin.at][0].name)
                        ahead_bytes[pair] = ahead_bytes.get(pair, 0) + sum(a.rows * a.cols * ctx.q_itemsize for a in loads[:n])
                b.pins = [p for p in b.pins if p.at != at]
                if fed_attention:  # merged with the projection on every core at once, then finished
                    pending.append((c, b, marks, starts, emitted, shared_acc, acc_from))
                    continue
                finish(at, k, work, label, c, b, marks, starts, emitted, shared_acc, acc_from)
            if fed_attention:
                after_k = seq[at + 1][0] if at + 1 < len(seq) else None
                w = dram[after_k.w] if isinstance(after_k, Gemm) else None
                span = (0, 0) if w is None else (w.addr, w.addr + w.nbytes)
                fed = [_Fed(b, *tile_ends.pop(c), starts, *_attention_marks(marks), span)
                       for c, b, marks, starts, *_ in pending if c in tile_ends]
                if fed and any(f.blocks[Unit.MXU] for f in fed):
                    _merge_heads(fed, unit_cycles, builders, ctx)
                for args in pending:
                    finish(at, k, work, label, *args)
    for b in builders:
        b.program.append(Halt())
        b.labels.append(phases[-1])
    program = Program(tuple(tuple(b.program) for b in builders), chip.mesh.rows, chip.mesh.cols)
    ahead = tuple((src, dst, n) for (src, dst), n in ahead_bytes.items())
    return Lowered(program, dram, tuple(tuple(b.labels) for b in builders), tuple(phases), phase_macs, phase_mapping, ahead,
                   phase_kernels, memo.get("stranded", 0))  # type: ignore[arg-type]
