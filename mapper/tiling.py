"""Tile every kernel to fit the scratchpad and accumulator with double buffering (a GEMM's weight tiles triple
buffered where they fit: Tiling.w_slots).

GEMMs get a mapping search: candidate tilings (tm rows of A, tn output columns, tk reduction chunk; powers of
two times the array size, plus the whole dimension; with tk < K also stream-K, Tiling.split_k, where the cores
do not divide the tiles and A is kept on chip) are scored with an analytic model built on the executor's
own cost model (chipsim.cost_model.TimingModel, the one that times every instruction in the executor): per work
item max(array cycles, DMA cycles, vector cycles), items spread over the cores, plus one exposed load; and
their energy, every item's events priced by the chip's energy model plus leakage over those cycles. The
`mapper.objective` (latency, energy or edp) ranks them. Candidates are visited in a fixed order and the search stops after
`search_candidates` of them, so the result is deterministic. A chip whose SRAM cannot hold the smallest legal
tile is a MapperError naming the kernel, the need and the capacity.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter
from functools import cache, lru_cache

import networkx as nx

from chipsim import timing
from chipsim.config import ChipConfig
from chipsim.cost_model import Event, TimingModel, joules
from isa import MAX_DIM, Bcast, DType, Instr, Mem, Vadd, Vcvt, Vdeqc, Vgelu, Vquant
from mapper.context import ALIGN_BYTES, MapperContext, Objective
from mapper.errors import MapperError
from mapper.kernels import (
    FACTS_KEY,
    Attention,
    Gemm,
    Kernel,
    OnChip,
    RowNorm,
    Tiling,
    feeds_heads,
    graph_facts,
    kernels,
    replace_kernels,
)
from mapper.place import _deal, gemm_tiles, split_k_work

SLOTS = 2  # double buffering
# Tilings whose analytic cost is within this share of the cheapest's are tied; they rank by their time with the
# weights the kernel before loads ahead. Where the DRAM channel binds a GEMM, every tiling that reads each weight once
# costs the same but for its short head and tail, which favour the smallest tiles; but behind a vector-bound
# kernel the weights are loaded ahead (mapper.emit), and the array then decides. On a 4x4 of 64x64 bf16 cores
# with DDR4, Q|K|V ranked tiles of 8 x 12 first (array time 147,650 cycles alone, its weights loaded ahead) over
# 32 x 12 (37,230): the re-check measured only such tilings, and their programs held 4-10x the instructions.
TIE = 0.005
# Slots of the attention's inputs (Q tile, K, V, mask) where they fit: the third and fourth items' inputs load
# behind the first two's, without waiting for P x V to free their K and V (measured on BERT-base at seq 128: 3
# slots against 2 take tpuv1 from 2,272,481 to 2,203,433 cycles, 4 to 2,195,465; more change nothing).
ATTENTION_IN_SLOTS = 4


def align(n: int) -> int:
    return -(-n // ALIGN_BYTES) * ALIGN_BYTES


def gemm_sram_bytes(tm: int, tn: int, tk: int, q: int, out_q: bool, a_resident: bool = False, a_rows: int = 0,
                    w_slots: int = SLOTS) -> tuple[int, int]:
    """(scratchpad, accumulator) bytes of one core's GEMM buffers, every buffer double-buffered but the weight
    tiles and their scales and bias (`w_slots` of each); `a_rows` rows of A (tk wide) loaded once and kept
    (Tiling.a_once) instead of A tiles."""
    spad = (SLOTS * (0 if a_resident or a_rows else align(tm * tk * q)) + w_slots * (align(tk * tn * q) + 2 * align(tn * 4))
            + align(a_rows * tk * q))
    if out_q:
        spad += SLOTS * align(tm * tn * q)
    return spad, SLOTS * align(tm * tn * 4)


def _candidates(full: int, unit: int, cores: int = 1, parts: int = 1) -> list[int]:
    """Tile sizes along one dimension of `parts` equal parts of `full` each: the whole part, powers of two times
    the array, and the exact shares that give every core 1..4 tiles (ragged: 384 on four cores is four tiles of 96,
    not 256 + 128; three parts of 384 on four cores are twelve tiles of 96)."""
    sizes = {min(full, MAX_DIM)}
    t = unit
    while t < full and t <= MAX_DIM:
        sizes.add(t)
        t *= 2
    for tiles in range(2, 4 * cores + 1):  # tiles per part
        share = -(-full // tiles)
        if share <= MAX_DIM and ((tiles * parts) % cores == 0 or tiles * parts < cores):
            sizes.add(share)
    return sorted(sizes, reverse=True)


def gemm_epilogue(rows: int, cols: int, int8: bool, *, gelu: bool, out_q: bool, raw: bool) -> tuple[Instr, ...]:
    """The vector instructions `emit_gemm` issues for one rows x cols output tile, in order, at placeholder
    addresses (addresses do not change a cost): what the search costs. tests/test_mapper.py checks that the
    emitter issues exactly these opcodes and shapes for every GEMM tile."""
    acc, spad = dict(dst_mem=Mem.ACC, dst_addr=0), dict(src2_mem=Mem.SPAD, src2_addr=0)
    out: list[Instr] = []
    if not raw:
        if int8:
            out.append(Vdeqc(**acc, src_mem=Mem.ACC, src_addr=0, scale_mem=Mem.SPAD, scale_addr=0, rows=rows, cols=cols))
        out.append(Vadd(**acc, src1_mem=Mem.ACC, src1_addr=0, **spad, rows=rows, cols=cols, bcast=Bcast.ROW))
    if gelu:
        out.append(Vgelu(**acc, src_mem=Mem.ACC, src_addr=0, rows=rows, cols=cols))
    if out_q and raw and int8:  # requantize the int32 sums alone
        out.append(Vcvt(**acc, src_mem=Mem.ACC, src_addr=0, rows=rows, cols=cols, from_dtype=DType.INT32, to_dtype=DType.FP32))
    if out_q:
        to = dict(dst_mem=Mem.SPAD, dst_addr=0, src_mem=Mem.ACC, src_addr=0, rows=rows, cols=cols)
        out.append(Vquant(**to, scale=1.0) if int8 else Vcvt(**to, from_dtype=DType.FP32, to_dtype=DType.BF16))
    return tuple(out)


def _dma_cycles(model: TimingModel, transfers: list[int], active_cores: int) -> float:
    """Cycles of a core's transfers (bytes each) while `active_cores` cores share the DRAM channel: the engines
    work in parallel, the channel carries every active core's bytes."""
    costs = [model.dma(nbytes, Mem.SPAD, load=True) for nbytes in transfers if nbytes]
    engines = sum(c.engine_cycles for c in costs) / model.dma_engines
    channel = sum(c.channel_cycles for c in costs) * active_cores
    return max(engines, channel)


@cache
def core_runs(m: int, tm: int, items: int, cores: int) -> tuple[tuple[int, int], ...]:
    """Per working core, (rows of A its row tiles span, column blocks it touches), as mapper.place deals a GEMM's
    tiles (column block by column block, row tiles inner, in contiguous runs): the rows a core loads under
    Tiling.a_once (mapper.emit loads from its first row tile's first row to its last one's last), and the weight
    blocks it loads when a block stays put across row tiles (a block split between two cores is loaded by both)."""
    m_tiles = -(-m // tm)
    runs = []
    for run in _deal([(i,) for i in range(items)], cores):
        if not run:
            continue
        (at,), (end,) = run[0], run[-1]
        blocks = end // m_tiles - at // m_tiles + 1
        rows = m if blocks > 1 else min(m, (end % m_tiles + 1) * tm) - (at % m_tiles) * tm
        runs.append((rows, blocks))
    return tuple(runs)


@lru_cache(maxsize=1 << 12)  # bounded: a sweep worker meets many chips
def _epilogue_cycles(chip: ChipConfig, rows: int, cols: int, int8: bool, gelu: bool, out_q: bool, raw: bool) -> int:
    """The vector unit's cycles for one tile's epilogue (gemm_epilogue), by the chip's TimingModel."""
    model = TimingModel.of(chip)
    return sum(model.cost(i).cycles for i in gemm_epilogue(rows, cols, int8, gelu=gelu, out_q=out_q, raw=raw))  # type: ignore[union-attr]


@lru_cache(maxsize=1 << 14)  # bounded: a sweep worker meets many chips
def _gemm_cost(chip: ChipConfig, m: int, k: int, n: int, q: int, out_q: bool, gelu: bool, tm: int, tn: int, tk: int,
               a_resident: bool = False, raw: bool = False, parts: int = 1, a_once: bool = False, w_slots: int = SLOTS,
               split_k: bool = False, ahead: int = 0, spad_cap: int = 0) -> float:
    """The analytic time of the whole GEMM with this tiling, every per-instruction cost from the chip's
    TimingModel (the executor's): per core, items pipeline as max(array, DMA, vector) each, plus what cannot
    overlap: the first chunk's load with the DRAM latency, the last epilogue and the last store. `n` is the
    width of one of `parts` column parts that no tile straddles. Under stream-K a core's share is its chunks
    over the chunks of an item (the partial sums' transfer overlaps the core's other tiles).

    `ahead` > 0: the kernel before loads up to that many of each core's first weight tiles into their slots
    (`_preloaded_tiles`), and only the rest load in the GEMM's own time."""
    model = TimingModel.of(chip)
    dtype = DType.INT8 if q == 1 else DType.BF16
    items = -(-m // tm) * -(-n // tn) * parts
    chunks = [min(tk, k - k0) for k0 in range(0, k, tk)]
    if split_k:
        active = min(chip.num_cores, items * len(chunks))
        per_core: float = -(-items * len(chunks) // active) / len(chunks)
    else:
        active = min(chip.num_cores, items)
        per_core = -(-items // active)
    run = 0.0  # the fill and drain of a core's one run of folds, where its MATMULs chain
    if a_resident and len(chunks) > 1:
        # A read in place in column blocks: nothing but the weight chunks between one MATMUL and the next, so the
        # chunks, and the items, chain into one run of folds on the array (each continued, ports permitting)
        def continued(kc: int, prev: int) -> int:
            return model.chained_matmul(tm, kc, tn, dtype, accumulate=True, preloaded=False, after=(tm, prev, tn))
        mxu = sum(continued(kc, chunks[j - 1]) for j, kc in enumerate(chunks))
        run = model.matmul(tm, chunks[0], tn, dtype, accumulate=False, preloaded=False).cycles - continued(chunks[0], chunks[-1])
    else:
        # the first chunk starts the accumulation, the rest add to it: at most three distinct MATMULs
        mxu = model.matmul(tm, chunks[0], tn, dtype, accumulate=False, preloaded=False).cycles + sum(
            times * model.matmul(tm, kc, tn, dtype, accumulate=True, preloaded=False).cycles for kc, times in Counter(chunks[1:]).items())
    m_tiles = -(-m // tm)
    resident_w = tk >= k  # a whole weight block stays put across row tiles
    w_loads = [kc * tn * q for kc in chunks] if not resident_w else [k * tn * q // m_tiles]
    loaded, tiles = _preloaded_tiles(m, tm, tn, tk, q, items, len(chunks), active, per_core, resident_w, w_slots, ahead, spad_cap)
    if loaded:  # the share of the weight bytes the GEMM still loads itself
        w_loads = [nbytes * (tiles - loaded) // tiles for nbytes in w_loads]
    a_loads = [] if a_resident or a_once else [tm * kc * q for kc in chunks]
    stores = [tm * tn * (q if out_q else 4)]
    dma = _dma_cycles(model, w_loads + a_loads + stores, active)
    vec = _epilogue_cycles(chip, tm, tn, q == 1, gelu, out_q, raw)
    first_a = max(r for r, _ in core_runs(m, tm, items, active)) * k * q if a_once else 0 if a_resident else tm * chunks[0] * q
    head = _dma_cycles(model, [first_a, 0 if loaded else chunks[0] * tn * q], active)
    tail = _dma_cycles(model, stores, active)
    return per_core * max(mxu, dma, vec) + run + model.dram_latency_cycles + head + vec + tail


def _preloaded_tiles(m: int, tm: int, tn: int, tk: int, q: int, items: int, chunks: int, active: int, per_core: float,
                     resident_w: bool, w_slots: int, ahead: int, spad_cap: int) -> tuple[int, int]:
    """(weight tiles loaded ahead, weight tiles) of the busiest core when the kernel before loads up to `ahead` of
    them: one per slot, and a slot per tile where they fit in half of `spad_cap` (as mapper.emit pins them)."""
    if not ahead:
        return 0, 0
    if resident_w:  # one tile per column block the core touches
        tiles = max(blocks for _, blocks in core_runs(m, tm, items, active))
    else:
        tiles = math.ceil(per_core * chunks)
    slots = tiles if tiles <= w_slots or tiles * align(tk * tn * q) <= spad_cap // 2 else w_slots
    return min(ahead, slots), tiles


def gemm_events(chip: ChipConfig, m: int, k: int, n: int, q: int, out_q: bool, gelu: bool, tm: int, tn: int, tk: int,
                a_resident: bool = False, raw: bool = False, parts: int = 1, a_once: bool = False,
                split_k: bool = False) -> dict[Event, float]:
    """What the whole GEMM with this tiling counts, in the executor's events (chipsim.cost_model's per-instruction
    events: MACs, scratchpad and accumulator bytes, DRAM bytes, vector lane-ops): every work item's MATMULs, DMA
    transfers and epilogue, items as full tiles (an int8 GEMM with an epilogue has dequantization scales). What
    tilings differ in: DRAM bytes (A and weights re-read, a weight block split between two cores loaded by both)
    and the accumulator traffic of a reduction in chunks; under stream-K, the split tiles' partial sums (NoC
    byte-hops, read to send, read and written to add)."""
    model = TimingModel.of(chip)
    dtype = DType.INT8 if q == 1 else DType.BF16
    items = -(-m // tm) * -(-n // tn) * parts
    chunks = [min(tk, k - k0) for k0 in range(0, k, tk)]
    events: dict[Event, float] = {}

    def add(counts: tuple[tuple[Event, int], ...], times: float) -> None:
        for e, c in counts:
            events[e] = events.get(e, 0.0) + c * times

    for j, kc in enumerate(chunks):
        add(model.matmul(tm, kc, tn, dtype, accumulate=j > 0, preloaded=False).events, items)
        if tk < k:  # the weight chunk of every item
            add(model.dma(kc * tn * q, Mem.SPAD, load=True).events, items)
        if not (a_resident or a_once):
            add(model.dma(tm * kc * q, Mem.SPAD, load=True).events, items)
    if split_k:
        work = split_k_work(gemm_tiles(m, n, parts, tm, tn), k, tk, chip.num_cores)
        assert work is not None
        aux = 0
        for core, its in enumerate(work):
            ends = [it[1] for it in its if it[2] == 0]  # the column blocks of the tiles finished here
            aux += sum(1 for i, n0 in enumerate(ends) if i == 0 or ends[i - 1] != n0)
            if its and its[0][2] > 0:  # a piece starting mid-reduction: its first MATMUL starts the sums, sent to core - 1
                kc = min(tk, k - its[0][2])
                add(model.matmul(tm, kc, tn, dtype, accumulate=False, preloaded=False).events, 1)
                add(model.matmul(tm, kc, tn, dtype, accumulate=True, preloaded=False).events, -1)
                nbytes = tm * tn * 4
                hops = timing.noc_hops(core, core - 1, chip.mesh.cols)
                add(((Event.NOC_BYTE_HOPS, nbytes * hops), (Event.ACC_READ_BYTES, 2 * nbytes), (Event.ACC_WRITE_BYTES, nbytes)), 1)
        if not raw:
            add(model.dma(tn * 4, Mem.SPAD, load=True).events, aux * (2 if q == 1 else 1))
    for rows, blocks in () if split_k else core_runs(m, tm, items, chip.num_cores):
        if tk >= k:  # a weight block kept across the row tiles: loaded once by each core working on it
            add(model.dma(k * tn * q, Mem.SPAD, load=True).events, blocks)
        if a_once:
            add(model.dma(rows * k * q, Mem.SPAD, load=True).events, 1)
        if not raw:  # the epilogue's bias (and int8 dequantization scales) of each block
            add(model.dma(tn * 4, Mem.SPAD, load=True).events, blocks * (2 if q == 1 else 1))
    add(model.dma(tm * tn * (q if out_q else 4), Mem.SPAD if out_q else Mem.ACC, load=False).events, items)
    for i in gemm_epilogue(tm, tn, q == 1, gelu=gelu, out_q=out_q, raw=raw):
        add(model.cost(i).events, items)
    return events


@lru_cache(maxsize=1 << 14)  # bounded: a sweep worker meets many chips
def _gemm_energy(chip: ChipConfig, m: int, k: int, n: int, q: int, out_q: bool, gelu: bool, tm: int, tn: int, tk: int,
                 a_resident: bool, raw: bool, parts: int, a_once: bool, cycles: float, split_k: bool = False) -> float:
    """The analytic energy (joules) of the whole GEMM with this tiling: its events (gemm_events) priced by the
    chip's energy model, plus leakage over `cycles`."""
    return joules(gemm_events(chip, m, k, n, q, out_q, gelu, tm, tn, tk, a_resident, raw, parts, a_once, split_k), cycles, chip)


def search_gemm(k: Gemm, ctx: MapperContext, reserved_spad: int = 0, reserved_acc: int = 0, ahead: int = 0,
                a_block: int = 0, outputs: tuple[OnChip | None, OnChip | None] = (None, None)) -> Tiling:
    """The cheapest tiling of `k` that fits by `ctx.objective` (latency, energy or their product), by the analytic
    model, within the candidate budget; with a `ctx.measure` (the executor), the `ctx.recheck` cheapest are run as
    programs (mapper.recheck: its first `ahead` weight tiles loaded ahead and its `outputs` kept on chip, as in
    the program) and the best measured of those moving the fewest DRAM bytes wins.

    With A resident in the scratchpad (kept on chip, mapper.on_chip), only tilings that read A in place are legal:
    the whole reduction in one chunk, or (`a_block`, where its producer's tiles allow A stored in column blocks of
    that width) chunks of exactly that block, which stream-K needs."""
    chip = ctx.chip
    # the re-check's candidates also without a measure: the first is the same, and a search with one (after the trial
    # tilings of mapper.on_chip, which have none) finds them cached
    ranked, smallest_need = _best_tiling(chip, k.m, k.k, k.part_cols, ctx.q_itemsize, k.out_q is not None,
                                         k.gelu, k.a_resident is not None, ctx.search_candidates, reserved_spad, k.raw, k.parts,
                                         ctx.recheck, reserved_acc, ctx.objective, a_block, ahead)
    if not ranked:
        raise MapperError(
            f"kernel {k.name} ({k.m}x{k.k}x{k.n}) does not fit: its smallest double-buffered tile needs "
            f"{smallest_need[0]} B of scratchpad and {smallest_need[1]} B of accumulator, the chip has "
            f"{chip.core.scratchpad.size_bytes - reserved_spad} B and {chip.core.accumulator.size_bytes - reserved_acc} B; "
            "give core.scratchpad.size_kib / core.accumulator.size_kib more room."
        )
    if len(ranked) == 1 or ctx.measure is None:
        return ranked[0]
    from mapper.recheck import best_measured  # it emits programs: imported here, past the passes it uses

    return best_measured(k, ranked, ctx, reserved_spad, reserved_acc, ahead, outputs)


@lru_cache(maxsize=1 << 10)  # bounded: a sweep worker meets many chips
def _best_tiling(chip: ChipConfig, m: int, k: int, n: int, q: int, out_q: bool, gelu: bool,
                 a_resident: bool, candidates: int, reserved_spad: int, raw: bool = False, parts: int = 1,
                 keep: int = 1, reserved_acc: int = 0, objective: Objective = Objective.LATENCY, a_block: int = 0,
                 ahead: int = 0) -> tuple[tuple[Tiling, ...], tuple[int, int]]:
    """The search itself, per GEMM shape (the same shape recurs in every layer): the `keep` cheapest tilings by
    the analytic model and `objective` (and, if it is among them, the cheapest stream-K one beside the `keep`
    cheapest with whole tiles), cheapest first (those within TIE of the cheapest by their time with the
    first `ahead` weight tiles loaded ahead; ties in visiting order; none when nothing fits), and the
    SRAM need of the smallest candidate (for the error message). `n` is the width of one of `parts` column parts; the even shares
    of the columns over the cores count every part. With A kept on chip, a tiling with tk < K is stream-K
    (Tiling.split_k), where the cores do not divide the tiles and no tile is split over three."""
    tc = chip.core.tensor_core
    spad_cap, acc_cap = chip.core.scratchpad.size_bytes - reserved_spad, chip.core.accumulator.size_bytes - reserved_acc
    scored: list[Tiling] = []
    smallest_need: tuple[int, int] | None = None
    tried = 0
    # A kept on chip is read in place: the whole reduction in one chunk, or chunks of its column blocks
    depths = [k] + ([a_block] if 0 < a_block < k else []) if a_resident else _candidates(k, tc.rows)
    for tm, tn, tk in itertools.product(_candidates(m, tc.rows, chip.num_cores), _candidates(n, tc.cols, chip.num_cores, parts), depths):
        resident = a_resident
        spad, acc = gemm_sram_bytes(tm, tn, tk, q, out_q, resident)
        if smallest_need is None or spad + acc < sum(smallest_need):
            smallest_need = (spad, acc)
        if spad > spad_cap or acc > acc_cap:
            continue
        # A tiles per item (or A resident), then A-stationary: the rows of A this core needs, loaded once by one DMA,
        # serve all its column blocks; each with three weight slots where they fit, else two
        a_once_ok = not resident and tk >= k and m <= MAX_DIM and k <= MAX_DIM and -(-n // tn) * parts > 1
        tiles = -(-m // tm) * -(-n // tn) * parts
        # stream-K where A is kept on chip, in column blocks for it alone (with A from DRAM a GEMM alone, as the
        # re-check runs it, measured faster split than it then ran in the program: Q|K|V and FFN1 on the A100
        # preset at batch 32, bf16, +5% and +8%)
        splits: tuple[bool, ...] = (False,)
        if resident and tk < k:
            splits = (True,) if _splits_evenly(tiles, -(-k // tk), chip.num_cores) else ()
        for a_once, split in itertools.product((False, True) if a_once_ok else (False,), splits):
            fitting = [w for w in (3, 2) if gemm_sram_bytes(tm, tn, tk, q, out_q, resident, m if a_once else 0, w)[0] <= spad_cap]
            if fitting:
                w_slots = fitting[0]
                cycles = _gemm_cost(chip, m, k, n, q, out_q, gelu, tm, tn, tk, resident, raw, parts, a_once, w_slots, split)
                energy = 0.0 if objective is Objective.LATENCY else _gemm_energy(
                    chip, m, k, n, q, out_q, gelu, tm, tn, tk, resident, raw, parts, a_once, cycles, split)
                scored.append(Tiling(tm, tn, tk, cycles, a_once, w_slots, energy, split))
        tried += 1
        if tried >= candidates:
            break
    assert smallest_need is not None
    score = [objective.score(t.cost_cycles, t.energy_j) for t in scored]
    order = sorted(range(len(scored)), key=lambda i: (score[i], i))
    if order and ahead:  # ties (DRAM-bound tilings), a prefix of `order`: by the time with the weights loaded ahead

        def preloaded(i: int) -> float:
            t = scored[i]
            cycles = _gemm_cost(chip, m, k, n, q, out_q, gelu, t.tm, t.tn, t.tk, a_resident, raw, parts, t.a_once, t.w_slots,
                                t.split_k, ahead, spad_cap)
            return objective.score(cycles, t.energy_j)
        tied = list(itertools.takewhile(lambda i: score[i] <= score[order[0]] * (1 + TIE), order))
        order = sorted(tied, key=lambda i: (preloaded(i), i)) + order[len(tied):]
    # for the re-check, the `keep` cheapest with whole tiles per core and, where one ranks among the `keep`
    # cheapest, the cheapest stream-K one: the split ones must not crowd the others out
    picked = order[:keep]
    if 1 < keep < len(order):
        rank = {i: r for r, i in enumerate(order)}
        split = next((i for i in picked if scored[i].split_k), None)
        picked = [i for i in order if not scored[i].split_k][:keep] + ([split] if split is not None else [])
        picked.sort(key=rank.__getitem__)
    return tuple(scored[i] for i in picked), smallest_need


@cache
def _splits_evenly(tiles: int, chunks: int, cores: int) -> bool:
    """Whether stream-K changes anything for `tiles` of `chunks` reduction chunks on `cores` (the cores do not
    divide the tiles) and can place them (no tile over three cores)."""
    return cores > 1 and tiles % cores != 0 and split_k_work([(t, 0) for t in range(tiles)], chunks, 1, cores) is not None


def attention_sram_bytes(tq: int, seq: int, d: int, q: int, in_slots: int = SLOTS, in_place: bool = False) -> tuple[int, int]:
    """(scratchpad, accumulator) bytes of one core's attention buffers: `in_slots` of each input (a Q tile, a
    head's K, V and mask; the mask alone with Q | K | V read `in_place`), every other buffer double-buffered."""
    inputs = in_slots * ((0 if in_place else align(tq * d * q) + 2 * align(seq * d * q)) + align(seq * 4))
    spad = inputs + SLOTS * (align(tq * seq * q) + align(tq * d * q)) + 2 * align(tq * 4)
    return spad, SLOTS * (align(tq * seq * 4) + align(tq * d * 4))


def beside_projection(acc_free: int, attention_acc: int, tm: int, tn: int) -> bool:
    """Whether an attention's accumulator tiles (`attention_acc` bytes) fit in `acc_free` beside two of the fused
    projection's tm x tn fp32 accumulator tiles, sharing its phase (else they lie over the projection's once its
    last epilogue has freed them: mapper.emit)."""
    return attention_acc <= acc_free - 2 * align(tm * tn * 4)


def rownorm_sram_bytes(tr: int, cols: int, q: int, in_acc: bool = False) -> tuple[int, int]:
    """(scratchpad, accumulator) bytes of one core's row-kernel buffers: the fp32 rows, position rows, squares,
    per-row statistics and the gamma / beta / addend rows sit in the accumulator when `in_acc` (its port is the
    wider one), else in the scratchpad; the operand rows for the next matmul are always in the scratchpad."""
    fp32 = SLOTS * 2 * align(tr * cols * 4) + 4 * align(cols * 4) + 2 * align(tr * 4) + align(tr * cols * 4)
    operand = SLOTS * align(tr * cols * q)
    return (operand, fp32) if in_acc else (operand + fp32, 0)


def _largest_fitting(name: str, full: int, fits, describe) -> int:
    t = min(full, MAX_DIM)
    while t >= 1:
        if fits(t):
            return t
        t = t // 2 if t > 1 else 0
    raise MapperError(f"kernel {name} does not fit even one row: {describe()}; give core.scratchpad.size_kib / core.accumulator.size_kib more room.")


def tile_to_sram(g: nx.DiGraph, ctx: MapperContext) -> nx.DiGraph:
    chip, q = ctx.chip, ctx.q_itemsize
    facts = graph_facts(g)
    reserved, reserved_acc = facts.resident_spad_bytes, facts.resident_acc_bytes
    spad_cap, acc_cap = chip.core.scratchpad.size_bytes - reserved, chip.core.accumulator.size_bytes - reserved_acc
    new: dict[str, Kernel] = {}
    blocked: dict[str, int] = {}
    ks = kernels(g)
    for i, k in enumerate(ks):
        if isinstance(k, Gemm):
            # measured as the program runs it: behind a vector-bound kernel its first tiles (one per slot) are loaded
            # ahead (mapper.emit), behind a GEMM its first
            after = ks[i - 1] if i else None
            ahead = 0 if after is None else 1 if isinstance(after, Gemm) else MAX_DIM
            block = _a_block(k, ks[:i], new, chip.core.tensor_core.rows) if k.a_resident is not None else 0
            t = search_gemm(k, ctx, reserved, reserved_acc, ahead, block, (facts.on_chip_of(k.out_q), facts.on_chip_of(k.out_f)))
            new[k.name] = dataclasses.replace(k, tiling=t)
            if k.a_resident is not None:  # its producer lays A out in column blocks of tk (or row-major)
                layout = t.tk if t.tk < k.k else 0
                # the tensor names recur in every layer, and so do the shapes and their tilings
                assert blocked.setdefault(k.a, layout) == layout, f"{k.name}: the layers disagree on how {k.a} is laid out"
        elif isinstance(k, Attention):
            in_place = k.q_resident is not None

            def fits(t: int, k: Attention = k) -> bool:
                spad, acc = attention_sram_bytes(t, k.seq, k.head_dim, q, in_place=in_place)
                return spad <= spad_cap and acc <= acc_cap
            need = attention_sram_bytes(1, k.seq, k.head_dim, q, in_place=in_place)
            tq = _largest_fitting(k.name, k.seq, fits, lambda: f"one query row with {k.seq} keys needs {need[0]} B of scratchpad and {need[1]} B of accumulator, the chip has {spad_cap} B and {acc_cap} B")
            prev = new.get(ks[i - 1].name) if i else None
            if isinstance(prev, Gemm) and prev.tiling is not None and feeds_heads(prev, k) and tq > 1:
                # sharing the fused projection's phase, its accumulator tiles beside two of the projection's (else
                # they wait for its last epilogue, and its blocks cannot go among its tiles: mapper.emit._merge_heads),
                # by half the query rows where the whole do not fit so
                t = prev.tiling

                def beside(rows: int, k: Attention = k) -> bool:
                    return beside_projection(acc_cap, attention_sram_bytes(rows, k.seq, k.head_dim, q, in_place=in_place)[1], t.tm, t.tn)
                if not beside(tq) and beside(tq // 2):
                    tq //= 2
            in_slots = ATTENTION_IN_SLOTS if attention_sram_bytes(tq, k.seq, k.head_dim, q, ATTENTION_IN_SLOTS, in_place)[0] <= spad_cap else SLOTS
            new[k.name] = dataclasses.replace(k, tq=tq, in_slots=in_slots)
        elif isinstance(k, RowNorm):
            new[k.name] = _tile_rownorm(k, ctx, spad_cap, acc_cap)
    out = replace_kernels(g, new)
    if any(blocked.values()):  # (`out` is a copy already: its facts are replaced in place)
        on_chip = tuple(dataclasses.replace(t, block_cols=blocked.get(t.tensor, t.block_cols)) for t in facts.on_chip)
        out.graph[FACTS_KEY] = dataclasses.replace(facts, on_chip=on_chip)
    return out


def _a_block(k: Gemm, ks: list[Kernel], tiled: dict[str, Kernel], rows: int) -> int:
    """The column-block width GEMM `k`'s A (kept on chip, gathered from its producer's output tiles) could be stored
    in, so that `k` reads a reduction chunk of it in place: a multiple of the array's rows (whole folds) and of
    the producer's tile width (each tile lands inside one block, through one strided NOC_RECV); 0 where no
    block narrower than K and within one instruction exists, or the producer writes whole rows (a LayerNorm)."""
    width = 0
    for p in reversed(ks):  # the kernels before `k`: the last to write its A
        if isinstance(p, Gemm) and p.out_q == k.a:
            t = tiled[p.name].tiling
            assert t is not None
            width = t.tn if p.part_cols % t.tn == 0 else 0  # tiles at multiples of tn
            break
        if isinstance(p, Attention) and p.out == k.a:
            width = p.head_dim
            break
        if isinstance(p, RowNorm) and p.out_q == k.a:
            break
    block = math.lcm(rows, width) if width else 0
    return block if block < k.k and block <= MAX_DIM else 0


ROW_ITEMS_PER_CORE = 4  # row kernels cut each core's rows in this many items, so loads, vector work and stores overlap


def _tile_rownorm(k: RowNorm, ctx: MapperContext, spad_cap: int, acc_cap: int) -> RowNorm:
    """Rows per item for a row kernel: a quarter of each core's rows (or fewer where they do not fit), with the
    fp32 work in the accumulator when it fits there, else in the scratchpad."""
    q = ctx.q_itemsize
    rows_per_core = -(-k.rows // ctx.cores)
    want = -(-rows_per_core // ROW_ITEMS_PER_CORE)
    for in_acc in (True, False):
        def fits(t: int, in_acc: bool = in_acc) -> bool:
            spad, acc = rownorm_sram_bytes(t, k.cols, q, in_acc)
            return spad <= spad_cap and acc <= acc_cap
        if fits(1):
            return dataclasses.replace(k, tr=_largest_fitting(k.name, want, fits, lambda: ""), in_acc=in_acc)
    split, alone = rownorm_sram_bytes(1, k.cols, q, True), rownorm_sram_bytes(1, k.cols, q)[0]
    raise MapperError(f"kernel {k.name} does not fit even one row: one row of {k.cols} needs {split[0]} B of scratchpad and "
                      f"{split[1]} B of accumulator, or {alone} B of scratchpad alone, the chip has {spad_cap} B and {acc_cap} B; "
                      "give core.scratchpad.size_kib / core.accumulator.size_kib more room.")
