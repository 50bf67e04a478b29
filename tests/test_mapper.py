"""Mapper passes: invariants between passes, deterministic tiling search, capacity enforcement, placement."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chipsim.config import apply_overrides, chip_from_dict, load_chip_dict
from isa import DType, Opcode, Unit, verify
from mapper import PASSES, MapperContext, MapperError, check_graph, lower
from mapper.fuse import fuse_epilogues
from mapper.kernels import Attention, Bcast, Gemm, RowNorm, graph_facts, kernels
from mapper.place import _deal, owned_rows, split_k_work
from mapper.tiling import ROW_ITEMS_PER_CORE, gemm_sram_bytes, search_gemm
from workloads.bert import preset
from workloads.graph import build_graph


def chip(*sets: str):
    return chip_from_dict(apply_overrides(load_chip_dict("default"), list(sets)))


def run_passes(model: str, seq: int, batch: int, c):
    g = fuse_epilogues(build_graph(preset(model), seq, batch))
    ctx = MapperContext(c)
    for p in PASSES:
        g = p(g, ctx)
        check_graph(g, p.__name__)
    return g, ctx


def test_fused_kernels_cover_every_matmul_mac():
    from workloads.graph import encoder_macs, total_macs

    wl = build_graph(preset("bert-base"), 128, 2)
    g = fuse_epilogues(wl)
    assert sum(k.macs for k in kernels(g)) == total_macs(wl)
    layer0 = [k for k in kernels(g) if k.layer == 0]
    assert [type(k).__name__ for k in layer0] == ["Gemm", "Attention", "Gemm", "RowNorm", "Gemm", "Gemm", "RowNorm"]
    qkv = layer0[0]
    assert (qkv.name, qkv.n, qkv.parts, qkv.part_cols) == ("l0.qkv", 3 * 768, 3, 768)  # Q | K | V as one GEMM
    assert sum(k.macs for k in kernels(g) if k.layer >= 0) == encoder_macs(wl)
    ffn1 = next(k for k in layer0 if k.name == "l0.ffn1")
    assert ffn1.gelu and ffn1.out_q == "hq"
    ln1, ln2 = (next(k for k in layer0 if k.name == n) for n in ("l0.ln1", "l0.ln2"))
    assert (ln1.inp, ln1.addends, ln2.inp, ln2.addends) == ("y", (("x", Bcast.NONE),), "y", (("x1", Bcast.NONE),))


def test_tiling_search_is_deterministic_fits_and_respects_budget():
    c = chip()
    k = Gemm("g", 0, 0, 512, 1024, 4096, "a", "w", "d", "b", "o", None)
    t1 = search_gemm(k, MapperContext(c))
    assert t1 == search_gemm(k, MapperContext(c))
    spad, acc = gemm_sram_bytes(t1.tm, t1.tn, t1.tk, 1, True)
    assert spad <= c.core.scratchpad.size_bytes and acc <= c.core.accumulator.size_bytes
    budget1 = search_gemm(k, MapperContext(c, search_candidates=1))
    assert budget1.cost_cycles >= t1.cost_cycles


@pytest.mark.parametrize(
    ("spad_kib", "message"),
    [
        (1, r"^kernel emb does not fit even one row: one row of 768 needs 1536 B of scratchpad and 27776 B of accumulator, "
            r"or 29312 B of scratchpad alone, the chip has 1024 B and 524288 B; "),
        (8, r"^kernel l0\.qkv \(128x768x2304\) does not fit: its smallest double-buffered tile needs \d+ B of scratchpad "
            r"and \d+ B of accumulator, the chip has 8192 B and 524288 B; give core\.scratchpad\.size_kib"),
        (32, r"^kernel l0\.attn does not fit even one row: one query row with 128 keys needs 34432 B of scratchpad"),
    ],
)
def test_sram_too_small_for_any_tile_is_a_clear_error(spad_kib, message):
    c = chip(f"core.scratchpad.size_kib={spad_kib}", "core.scratchpad.banks=1")
    with pytest.raises(MapperError, match=message):
        run_passes("bert-base", 128, 1, c)


def test_placement_balances_work_across_cores():
    assert [len(w) for w in _deal([(i,) for i in range(6)], 4)] == [2, 2, 1, 1]
    assert [len(w) for w in _deal([(i,) for i in range(8)], 4, group=2)] == [2, 2, 2, 2]
    g, ctx = run_passes("bert-base", 128, 1, chip())
    for name in g.nodes:
        k, work = g.nodes[name]["kernel"], g.nodes[name]["work"]
        assert len(work) == ctx.cores
        if isinstance(k, Gemm):
            items = {t for core in work for t in core}
            assert len(items) == sum(len(core) for core in work)  # no item twice
            # every output element summed over the whole reduction once (a tile split under stream-K in two ranges)
            assert sum(min(k.tiling.tm, k.m - m0) * k.tile_cols(n0) * (k1 - k0) for m0, n0, k0, k1 in items) == k.m * k.n * k.k
        if isinstance(k, Attention):
            heads = [{(b, h) for b, h, _ in core} for core in work]
            assert all(not (a & b) for i, a in enumerate(heads) for b in heads[i + 1 :])  # a head lives on one core
        if isinstance(k, RowNorm):  # each core works the rows it owns, the same rows for every row kernel
            assert sum(rows for core in work for _, rows in core) == k.rows
            for core, (first, n) in zip(work, owned_rows(k.rows, ctx.cores)):
                assert all(first <= r0 and r0 + rows <= first + n and rows <= k.tr for r0, rows in core)


@given(tiles=st.integers(1, 40), chunks=st.integers(1, 30), cores=st.integers(1, 17))
@settings(max_examples=300, deadline=None)
def test_stream_k_deals_every_chunk_once_and_evenly(tiles, chunks, cores):
    """Stream-K placement: every (tile, reduction chunk) pair on exactly one core, the cores' chunk counts within
    one of each other; a split tile in exactly two pieces, its first chunks ending one core's run (that core
    finishes it) and the rest starting the next core's (which sends it its partial sums). None exactly when some
    tile would span three cores."""
    tk, k = 8, 8 * chunks - 3  # a last chunk narrower than tk
    work = split_k_work([(0, 16 * t) for t in range(tiles)], k, tk, cores)
    share = [tiles * chunks // cores + (c < tiles * chunks % cores) for c in range(cores)]
    starts = [sum(share[:c]) for c in range(cores)]
    spans = {t: {c for c in range(cores) for u in range(starts[c], starts[c] + share[c]) if u // chunks == t} for t in range(tiles)}
    if any(len(cs) > 2 for cs in spans.values()):
        assert work is None
        return
    assert work is not None and len(work) == cores
    seen = [(n0 // 16, j) for core in work for _, n0, k0, k1 in core for j in range(k0 // tk, -(-k1 // tk))]
    assert sorted(seen) == [(t, j) for t in range(tiles) for j in range(chunks)]
    assert [sum(-(-k1 // tk) - k0 // tk for _, _, k0, k1 in core) for core in work] == share
    for c, core in enumerate(work):
        for i, (_, n0, k0, k1) in enumerate(core):
            if k0 > 0:  # the later chunks of a split tile: first on this core, the first chunks last on the one before
                assert i == 0 and k1 == k and work[c - 1][-1][1:] == (n0, 0, k0)
            elif k1 < k:
                assert i == len(core) - 1 and work[c + 1][0][1:] == (n0, k1, k)


@pytest.mark.parametrize(("model", "seq", "batch", "sets"), [
    ("bert-mini", 64, 2, ("mesh.rows=1", "core.tensor_core.rows=32", "core.tensor_core.cols=32")),
    # stream-K with row tiles: a core's piece of a split tile (no epilogue) followed by a tile of the same columns
    ("bert-ner-wnut", 128, 1, ("core.tensor_core.rows=16", "core.tensor_core.cols=16", "core.tensor_core.precision=bf16")),
])
def test_lowered_program_verifies_and_is_balanced_per_semaphore(model, seq, batch, sets):
    c = chip(*sets)
    rows = c.core.tensor_core.rows
    g = fuse_epilogues(build_graph(preset(model), seq, batch))
    ctx = MapperContext(c)
    for p in PASSES:
        g = p(g, ctx)
    if model == "bert-ner-wnut":
        split = [w for n in g.nodes if isinstance(k := g.nodes[n]["kernel"], Gemm) and k.tiling.split_k for w in g.nodes[n]["work"]]
        assert any(len(w) > 1 and w[0][2] > 0 and w[1][1] == w[0][1] for w in split)
    low = lower(build_graph(preset(model), seq, batch), ctx, verify=True)
    verify(low.program, spad_bytes=c.core.scratchpad.size_bytes, acc_bytes=c.core.accumulator.size_bytes,
           dram_bytes=low.layout.size_bytes, array_rows=rows, array_cols=rows)
    for core in low.program.cores:
        count: dict[tuple[int, int], int] = {}
        phase = 0
        for i in core:
            phase += i.op is Opcode.BARRIER
            if i.op in (Opcode.SIGNAL, Opcode.WAIT):
                count[phase, i.sem] = count.get((phase, i.sem), 0) + (1 if i.op is Opcode.SIGNAL else -1)
        assert not any(count.values())  # every semaphore is back to zero at each barrier
        assert core[-1].op is Opcode.HALT
    assert len(low.labels[0]) == len(low.program.cores[0])
    assert low.phases[0] == "emb" and low.phases[-1] == "cls" and "l1.qkv+attn" in low.phases


ON_CHIP = ("xq", "x1q", "qkv", "ctx", "hq", "x", "x1", "y")  # every activation, the fused Q|K|V output included


def _dram_touches(low, names):
    """The DMA instructions whose DRAM range starts inside one of the named tensors."""
    spans = [(low.layout[n].addr, low.layout[n].addr + low.layout[n].nbytes) for n in names]
    return [i for core in low.program.cores for i in core
            if i.op in (Opcode.DMA_LD, Opcode.DMA_ST) and any(a <= i.dram_addr < b for a, b in spans)]


def _mapping_of(low, kernel: str) -> str:
    """The mapping record of the phase that runs `kernel` (a phase may run two: `l0.qkv+attn`)."""
    return next(low.phase_mapping[p] for p, ks in low.phase_kernels.items() if kernel in ks)


def test_activations_stay_on_chip():
    """On the default chip every activation stays on chip: the LayerNorm outputs, the FFN1 output and the attention
    context gathered on every core (the next GEMM reads A in place), Q|K|V gathered in column blocks of a head
    (the attention reads every head's Q, K and V in place), the residual stream with the rows its owner core
    normalizes, the projections' fp32 outputs sent to those owners. No DMA touches them in DRAM."""
    c = chip()
    low = lower(build_graph(preset("bert-mini"), 64, 1), MapperContext(c), verify=True)
    assert _dram_touches(low, ON_CHIP) == []
    assert "Q|K|V read in place" in _mapping_of(low, "l0.attn") and "output on chip" in _mapping_of(low, "l0.qkv")
    # bert-mini's 64-wide heads: a Q|K|V tile wider than a head leaves as one strided send per head block it spans,
    # each landing dense (its rows one head wide, back to back), and only on the core running that head (the
    # attention shares the projection's phase: mapper.place.HeadOwners)
    head_bytes = 64
    pieces = [i for core in low.program.cores for i in core if i.op is Opcode.NOC_SEND and i.rows > 1]
    assert pieces and all(i.bytes // i.rows == head_bytes and i.stride_bytes > head_bytes for i in pieces)
    dense = [i for core in low.program.cores for i in core
             if i.op is Opcode.NOC_RECV and i.rows > 1 and i.stride_bytes == i.bytes // i.rows == head_bytes]
    assert not any(i.multicast for i in pieces) and len(dense) == len(pieces)  # each piece to one core
    sends = [i for core in low.program.cores for i in core if i.op is Opcode.NOC_SEND]
    strided = [i for core in low.program.cores for i in core if i.op is Opcode.NOC_RECV and i.rows > 1]
    assert strided and all(i.stride_bytes >= i.bytes // i.rows for i in strided)  # tiles land as blocks of the whole
    # the LayerNorm rows go from their owner to every core in one multicast: 64 rows, 16 per core, in items of 4
    norm_sends = [i for core, labels in zip(low.program.cores, low.labels) for i, label in zip(core, labels)
                  if i.op is Opcode.NOC_SEND and label.rpartition(".")[2] in ("emb", "ln1", "ln2")]
    assert all(i.bytes == 16 // ROW_ITEMS_PER_CORE * 256 for i in norm_sends)
    assert len(norm_sends) == (1 + 2 * preset("bert-mini").layers) * 4 * ROW_ITEMS_PER_CORE
    assert all(i.multicast for i in norm_sends)
    # gathered tiles are multicast; the fp32 row blocks go to their one owner each
    assert any(i.multicast for i in sends) and any(not i.multicast for i in sends)
    assert "fp32 rows on chip (rows on their owner core)" in low.phase_mapping["l0.attn_out+ln1"]  # one phase: hands_rows
    assert "output on chip (gathered on every core)" in low.phase_mapping["l0.ffn1"]


def test_one_core_keeps_activations_on_chip_through_its_local_port():
    one = lower(build_graph(preset("bert-mini"), 64, 1), MapperContext(chip("mesh.rows=1", "mesh.cols=1")), verify=True)
    sends = [i for core in one.program.cores for i in core if i.op is Opcode.NOC_SEND]
    assert sends and all(i.dst_core == 0 for i in sends)
    assert _dram_touches(one, ON_CHIP) == []


def test_gathered_activations_share_bytes_only_when_never_live_together():
    """Q|K|V and the FFN1 output share the region's bytes (no kernel holds both); Q|K|V and the context the attention
    writes while reading it do not, nor a GEMM's A and its output. The region is no larger than without Q|K|V."""
    g, _ = run_passes("bert-base", 128, 1, chip())
    where = {t.tensor: (t.addr, t.addr + 128 * t.cols) for t in graph_facts(g).on_chip if t.mem.name == "SPAD"}

    def overlap(a: str, b: str) -> bool:
        return where[a][0] < where[b][1] and where[b][0] < where[a][1]

    assert overlap("qkv", "hq")
    assert not overlap("qkv", "ctx") and not overlap("qkv", "x1q") and not overlap("x1q", "hq") and not overlap("xq", "qkv")
    assert min(lo for lo, _ in where.values()) >= chip().core.scratchpad.size_bytes - (128 * 3072 + 128 * 768)
    attn = next(k for k in kernels(g) if isinstance(k, Attention))
    assert attn.q_resident == where["qkv"][0]


SLOW_NOC = ("core.tensor_core.precision=bf16", "noc.link_bytes_per_cycle=32", "core.tensor_core.rows=64", "core.tensor_core.cols=64")


@pytest.mark.parametrize(("base", "sets"), [("tpuv1", ()), ("default", SLOW_NOC)])
def test_qkv_stays_on_chip_only_where_that_program_is_faster(base, sets):
    """With a measure, lower keeps the program whose attention reads Q|K|V in place or the one that sends Q|K|V
    through DRAM, whichever runs faster: on TPUv1 (one core, DDR3) the gather saves two DRAM crossings; on a 2x2
    mesh with 32-byte links and bf16 operands, bert-mini's gather over the NoC is not hidden behind its projection."""
    from chipsim.executor import timed
    from mapper import _run_passes

    c = chip_from_dict(apply_overrides(load_chip_dict(base), list(sets)))
    g = build_graph(preset("bert-mini"), 64, 1)
    ctx = MapperContext(c, measure=timed)
    on = _run_passes(fuse_epilogues(g), ctx, False)
    off = lower(g, dataclasses.replace(ctx, attention_inputs_on_chip=False))
    assert "Q|K|V read in place" in _mapping_of(on, "l0.attn") and "Q|K|V via DRAM" in _mapping_of(off, "l0.attn")
    assert _dram_touches(on, ("qkv",)) == [] and _dram_touches(off, ("qkv",)) != []
    best = lower(g, ctx)
    cycles = {name: timed(low.program, c)[0] for name, low in (("on", on), ("off", off), ("best", best))}
    # (lower may pick the layout deferring a GEMM's new weight slots instead: no slower than either)
    assert cycles["best"] <= min(cycles["on"], cycles["off"])
    assert ("Q|K|V read in place" in _mapping_of(best, "l0.attn")) == (cycles["on"] <= cycles["off"]) == (base == "tpuv1")


@given(st.integers(0, 64), st.integers(0, 300), st.integers(1, 300))
def test_block_pieces_cut_a_tile_at_block_edges(block, c0, width):
    from mapper.kernels import block_pieces

    pieces = block_pieces(block, c0, width)
    assert pieces[0][0] == c0 and pieces[-1][1] == c0 + width
    assert all(a < b for a, b in pieces) and all(p[1] == q[0] for p, q in zip(pieces, pieces[1:]))
    if block:
        assert all((a // block) == ((b - 1) // block) for a, b in pieces)  # each inside one block
        assert all(a % block == 0 for a, _ in pieces[1:])
    else:
        assert len(pieces) == 1


def test_activations_that_do_not_fit_go_through_dram():
    # 2048 rows: the gathered operands (2048 x 768 and 2048 x 3072 int8) pass half of the 2 MiB scratchpad and the
    # residual rows per core (512 x 768 fp32, twice) half of the 512 KiB accumulator
    big = lower(build_graph(preset("bert-base"), 512, 4), MapperContext(chip()))
    assert not any(i.op is Opcode.NOC_SEND for core in big.program.cores for i in core)
    assert _dram_touches(big, ("xq", "hq", "x", "y")) != []
    assert "output via DRAM" in big.phase_mapping["l0.ffn1"] and "fp32 rows via DRAM" in big.phase_mapping["l0.ln1"]
    # a smaller accumulator keeps the gathered operands on chip but sends the residual stream through DRAM
    mid = lower(build_graph(preset("bert-mini"), 64, 1), MapperContext(chip("core.accumulator.size_kib=48")), verify=True)
    assert _dram_touches(mid, ("xq", "hq", "ctx")) == [] and _dram_touches(mid, ("x", "y")) != []


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_the_search_costs_the_epilogue_the_emitter_issues(precision):
    """One cost model: the tiling search costs gemm_epilogue's instructions; the emitter must issue exactly those
    (opcode, rows, cols) for every output tile of every GEMM, or the search optimises a program that never runs."""
    from isa import Unit
    from mapper.emit import emit_gemm, epilogue_pieces
    from mapper.sync import CoreBuilder
    from mapper.tiling import gemm_epilogue

    c = chip("mesh.rows=1", "mesh.cols=2", f"core.tensor_core.precision={precision}")
    g, ctx = run_passes("bert-tiny", 64, 1, c)
    gemms = [k for k in kernels(g) if isinstance(k, Gemm)]
    assert any(k.gelu and k.out_q for k in gemms) and any(k.out_f for k in gemms)  # every epilogue step occurs
    pieced = 0
    for k in gemms:
        work = g.nodes[k.name]["work"]
        for core in range(ctx.cores):
            facts = graph_facts(g)
            b = CoreBuilder(core, c.core.scratchpad.size_bytes - facts.resident_spad_bytes,
                            c.core.accumulator.size_bytes - facts.resident_acc_bytes)
            emit_gemm(b, k, work, facts, ctx)
            issued = [(i.op, i.rows, i.cols) for i in b.queues[Unit.VEC] if i.op not in (Opcode.SIGNAL, Opcode.WAIT)]
            expected = []
            for idx, (m0, n0, k0, _) in enumerate(work[core]):
                if k0 > 0:  # stream-K: this core sends the tile's partial sums, the other one finishes it
                    continue
                rows, cols = min(k.tiling.tm, k.m - m0), min(k.tiling.tn, k.n - n0)
                # the core's last tile in row pieces, each the same instructions on its rows
                pieces = epilogue_pieces(k, m0, rows, idx == len(work[core]) - 1, core, ctx.cores, facts.on_chip_of(k.out_f) is not None)
                assert sum(r1 - r0 for r0, r1 in pieces) == rows
                pieced += len(pieces) > 1
                expected += [(i.op, i.rows, i.cols) for r0, r1 in pieces for i in gemm_epilogue(
                    r1 - r0, cols, ctx.int8, gelu=k.gelu, out_q=k.out_q is not None, raw=k.raw)]
            assert issued == expected, k.name
    assert pieced


def test_search_and_executor_cost_an_instruction_alike():
    """The old drift: the search priced a GEMM's MATMULs without the SRAM port and its DMA at a rate of its own; now
    both sides ask the chip's TimingModel, so a tile's instruction costs the same in both."""
    from chipsim.cost_model import TimingModel
    from chipsim.dispatch import CHAIN, Decoder
    from isa import DType, Matmul

    c = chip("core.scratchpad.bytes_per_cycle=64")  # a slow port: the array is stretched
    model = TimingModel.of(c)
    mm = Matmul(a_addr=0, b_addr=0, c_addr=0, m=128, k=256, n=128, precision=DType.INT8, accumulate=False, preloaded=False, transpose_b=False)
    kind, info, _ = Decoder(c)._miss(mm, ("probe",))
    cost = model.matmul(128, 256, 128, DType.INT8, accumulate=False, preloaded=False)
    # a MATMUL's entry: its front and tail from an empty array (their sum the array's cycles) and the ports' cycles
    assert kind == CHAIN and info == (cost.cycles - cost.stretched_cycles - cost.tail_cycles, -1, cost.tail_cycles,
                                      cost.port_cycles, False)
    assert cost.stretched_cycles > 0 and cost.port_cycles == cost.cycles


def test_the_search_rechecks_its_best_candidates_in_the_measure():
    """With a measure (the executor, in the application) the few analytically cheapest tilings run as programs and
    the fastest measured wins, of those within 2% of the fewest DRAM bytes: here the third (128x128 tiles) re-reads
    A for twice as many column blocks and is not run, and a measure that finds the analytic favourite (256x128)
    slow makes the second win."""
    c = chip()
    k = Gemm("g", 0, 0, 256, 512, 1024, "a", "w", "d", "b", "o", None)
    analytic = search_gemm(k, MapperContext(c))
    seen = []

    def tile(program):
        matmul = next(i for core in program.cores for i in core if i.op is Opcode.MATMUL)
        return matmul.m, matmul.n

    def measure(program, chip_):
        assert chip_ is c and len(program.cores) == c.num_cores
        seen.append(tile(program))
        return (10**9 if len(seen) == 1 else 1000 + len(seen)), 1.0  # the analytically cheapest one is the slowest

    picked = search_gemm(k, MapperContext(c, measure=measure, recheck=3))
    assert seen == [(256, 128), (128, 256)] and (analytic.tm, analytic.tn) == (256, 128)
    assert (picked.tm, picked.tn) == seen[1]


def test_racing_the_candidates_picks_what_measuring_each_whole_picks():
    """The application races the re-check's candidates and lower's program variants (executor.fastest: the ones
    that fall behind the fastest are stopped there) instead of timing each whole: the same programs come out, on a
    chip where the race stops some (a 64x64 bf16 core whose analytic favourites are not the fastest)."""
    from chipsim.executor import fastest, timed
    from mapper.recheck import _best

    c = chip("mesh.rows=1", "mesh.cols=1", "core.tensor_core.rows=64", "core.tensor_core.cols=64",
             "core.tensor_core.precision=bf16", "core.scratchpad.size_kib=1024", "core.accumulator.size_kib=1024",
             "clock_mhz=800", "noc.link_bytes_per_cycle=32")
    graph = build_graph(preset("bert-mini"), 128, 1)
    raced = []

    def race(programs, chip_, stop=None):
        raced.append(fastest(programs, chip_, stop=stop))
        return raced[-1]

    _best.cache_clear()
    with_race = lower(graph, MapperContext(c, measure=timed, race=race)).program
    _best.cache_clear()
    whole = lower(graph, MapperContext(c, measure=timed)).program
    assert any(cycles is None for r in raced for cycles in r)
    assert with_race == whole


def test_fused_qkv_tiles_stay_within_one_part_and_every_core_works():
    for cores, model in (("mesh.cols=2", "bert-base"), ("mesh.cols=5", "bert-base"), ("mesh.cols=3", "bert-mini")):
        g, _ = run_passes(model, 128, 1, chip(cores))
        qkv, work = g.nodes["l0.qkv"]["kernel"], g.nodes["l0.qkv"]["work"]
        covered = np.zeros((qkv.m, qkv.n), dtype=int)
        for core in work:
            for m0, n0, _, _ in core:
                cols = qkv.tile_cols(n0)
                assert n0 // qkv.part_cols == (n0 + cols - 1) // qkv.part_cols  # inside Q, K or V
                covered[m0 : m0 + qkv.tiling.tm, n0 : n0 + cols] += 1
        assert (covered == 1).all()  # every output element once
        counts = [len(core) for core in work]
        assert min(counts) >= 1 and max(counts) - min(counts) <= 1  # even shares over the cores


def test_later_gemms_weight_tiles_are_loaded_ahead_into_their_slots():
    """Weight prefetch across barriers: vector-bound kernels (attention, LayerNorm) load the weight tiles of the
    GEMMs among the next few kernels into slots kept for them at the top of the scratchpad (FFN1's during the
    attention already, across the output projection), as far as the DRAM would idle, and so does a GEMM that leaves
    the DRAM idle (the output projection); each GEMM's first MATMULs read them there and no tile is loaded twice.
    Behind a GEMM that streams its own weights (FFN1 -> FFN2) only the next GEMM's first tile is loaded, just below
    the earlier GEMM's own slots."""
    c = chip()
    low = lower(build_graph(preset("bert-base"), 128, 1), MapperContext(c), verify=True)
    core, labels = low.program.cores[0], low.labels[0]
    # the output projection (its DRAM idle: a small weight, its results over the NoC) loads ahead as well
    for w_name, gemm, loaders in (("l0.o.w", "l0.attn_out", {"l0.attn"}), ("l0.ffn1.w", "l0.ffn1", {"l0.attn", "l0.attn_out", "l0.ln1"})):
        w = low.layout[w_name]
        loads = [(i, label) for i, label in zip(core, labels) if i.op is Opcode.DMA_LD and w.addr <= i.dram_addr < w.addr + w.nbytes]
        ahead = [i for i, label in loads if label != gemm]
        assert {label for _, label in loads if label != gemm} == loaders
        matmuls = [i for i, label in zip(core, labels) if label == gemm and i.op is Opcode.MATMUL]
        assert len(ahead) >= 2 and [m.b_addr for m in matmuls[: len(ahead)]] == [i.sram_addr for i in ahead]
        assert len({i.dram_addr for i, _ in loads}) == len(loads) == len(matmuls)  # every tile once (one per item here)
        assert sorted(i.sram_addr for i in ahead) == [i.sram_addr for i in reversed(ahead)]  # slot 0 highest
    pairs = {(src, dst) for src, dst, _ in low.ahead_bytes}
    assert {("l0.attn", "l0.attn_out"), ("l0.attn", "l0.ffn1"), ("l0.attn_out", "l0.ffn1"), ("l0.ln1", "l0.ffn1")} <= pairs
    # on LPDDR5 every GEMM streams its own weights: FFN1 loads FFN2's first tile alone
    slow = lower(build_graph(preset("bert-base"), 128, 1), MapperContext(chip("dram.type=lpddr5")), verify=True)
    core, labels = slow.program.cores[0], slow.labels[0]
    assert ("l0.ffn1", "l0.ffn2") in {(src, dst) for src, dst, _ in slow.ahead_bytes}
    ffn1_slots = {i.b_addr for i, label in zip(core, labels) if label == "l0.ffn1" and i.op is Opcode.MATMUL}
    w2 = slow.layout["l0.ffn2.w"]
    behind = [i for i, label in zip(core, labels) if label == "l0.ffn1" and i.op is Opcode.DMA_LD and w2.addr <= i.dram_addr < w2.addr + w2.nbytes]
    assert len(behind) == 1 and behind[0].sram_addr < min(ffn1_slots)  # below the FFN1 tiles still in use


def test_a_gemms_first_weight_fold_is_in_the_array_before_its_barrier():
    """Behind a vector-bound kernel whose array has the time, an LDW after its last MATMUL (before its closing
    WAITs) puts the next GEMM's first weight fold (its first tile, loaded ahead into slot 0) into the array, waiting for that load when
    it happens in the same kernel; the GEMM's first MATMUL then has preloaded=1 and skips the load: R fewer
    cycles on the array. The program verifies and computes the same (tests/test_run.py: bit-exact)."""
    from chipsim.cost_model import TimingModel

    c = chip()
    rows = c.core.tensor_core.rows
    low = lower(build_graph(preset("bert-ner-wnut"), 128, 1), MapperContext(c), verify=True)
    model = TimingModel.of(c)
    preloaded_gemms = set()
    for core, labels in zip(low.program.cores, low.labels):
        for i, ins in enumerate(core):
            if ins.op is not Opcode.LDW:
                continue
            barrier = next(j for j in range(i + 1, len(core)) if core[j].op is Opcode.BARRIER)
            if any(m.op is Opcode.MATMUL for m in core[i + 1:barrier]):  # the attention's last P V, preloaded in its phase
                assert labels[i].endswith(".attn")  # (test_the_attentions_last_context_starts_with_v_in_the_array)
                continue
            at = next(j for j in range(barrier, len(core)) if core[j].op is Opcode.MATMUL)
            first = core[at]
            assert first.preloaded and (ins.w_addr, ins.k, ins.n) == (first.b_addr, min(first.k, rows), first.n)
            fresh = model.matmul(first.m, first.k, first.n, first.precision, accumulate=False, preloaded=False).cycles
            pre = model.matmul(first.m, first.k, first.n, first.precision, accumulate=False, preloaded=True).cycles
            assert fresh - pre == min(first.k, rows)
            preloaded_gemms.add(labels[at])
            start = max((j for j in range(i) if core[j].op is Opcode.BARRIER), default=-1)
            before = i - 1
            if any(d.op is Opcode.DMA_LD and d.sram_addr == ins.w_addr for d in core[start + 1:i]):  # loaded this phase
                assert core[i - 1].op is Opcode.WAIT and core[i - 1].unit is Unit.MXU
                before -= 1
            # ahead of the kernel's closing WAITs (its accumulator tiles read out): it runs under the last epilogue
            assert not (core[before].op is Opcode.WAIT and core[before].unit is Unit.MXU), (labels[i], core[before])
    # every layer's QKV and FFN1 behind a LayerNorm and output projection behind the attention; not layer 0's QKV,
    # behind the embeddings, whose rows are loaded item by item: the tile comes in pieces between them, its last
    # too late for an LDW that would not hold up the barrier (test_a_prefetch_tile_is_cut_in_pieces_between_items)
    assert {f"l{n}.{g}" for n in range(6) for g in ("qkv", "attn_out", "ffn1") if (n, g) != (0, "qkv")} <= preloaded_gemms


@pytest.mark.parametrize("on_chip", [False, True])
def test_the_attentions_first_scores_wait_only_for_k_and_q(on_chip):
    """The attention's first MATMUL (Q K^T) waits for the DMA's loads of its head's K and Q tile alone, read from
    DRAM, or for nothing the DMA signals when Q | K | V is read in place; V and the mask load meanwhile, and the
    vector unit waits for the mask itself before it adds it (the program verifies: no race on the mask)."""
    from isa import queue_of

    graph = build_graph(preset("bert-ner-wnut"), 128, 1)
    ctx = dataclasses.replace(MapperContext(chip()), attention_inputs_on_chip=on_chip)
    g = fuse_epilogues(graph)
    for p in PASSES:
        g = p(g, ctx)
    low = lower(graph, ctx, verify=True)
    att = next(k for k in kernels(g) if isinstance(k, Attention))
    assert (att.q_resident is not None) is on_chip
    checked = 0
    for core, labels in zip(low.program.cores, low.labels):
        phase = [ins for ins, label in zip(core, labels) if label == att.name and ins.op is not Opcode.BARRIER]
        dma = [ins for ins in phase if queue_of(ins) is Unit.DMA]
        mxu = [ins for ins in phase if queue_of(ins) is Unit.MXU]
        vec = [ins for ins in phase if queue_of(ins) is Unit.VEC]
        first = next(j for j, ins in enumerate(mxu) if ins.op is Opcode.MATMUL)
        waited = {ins.sem for ins in mxu[:first] if ins.op is Opcode.WAIT}
        signals = [j for j, ins in enumerate(dma) if ins.op is Opcode.SIGNAL]
        from_dma = [j for j in signals if dma[j].sem in waited and j == next(i for i in signals if dma[i].sem == dma[j].sem)]
        if on_chip:
            assert not from_dma
            assert all(ins.rows == 1 for ins in dma if ins.op is Opcode.DMA_LD and ins.dtype is DType.FP32)
        else:
            before = [ins for ins in dma[:max(from_dma)] if ins.op is Opcode.DMA_LD]
            d = att.head_dim
            assert [(ins.rows, ins.cols) for ins in before] == [(att.seq, d), (att.tq, d)]  # K, then the first Q tile
        vadd = next(j for j, ins in enumerate(vec) if ins.op is Opcode.VADD)
        assert any(ins.op is Opcode.WAIT and ins.sem in {dma[j].sem for j in signals} for ins in vec[:vadd])
        checked += 1
    assert checked == len(low.program.cores)


@pytest.mark.parametrize(("sets", "preloads"), [((), True), (("core.vector.lanes=4096", "core.tensor_core.rows=32", "core.tensor_core.cols=32"), False)])
def test_the_attentions_last_context_starts_with_v_in_the_array(sets, preloads):
    """Where the vector unit is the attention's busier unit, the array waits for the last item's probabilities with
    that item's V already in it: an LDW of V (after V's own wait) before the wait for the probabilities, and the
    P V MATMUL preloaded=1. Not with a wide vector unit beside a 32x32 array, the busier (its P V then continues
    the run of folds, which an LDW would end). The program verifies."""
    from isa import queue_of

    c = chip(*sets)
    rows = c.core.tensor_core.rows
    ctx = dataclasses.replace(MapperContext(c), attention_inputs_on_chip=False)
    low = lower(build_graph(preset("bert-ner-wnut"), 128, 1), ctx, verify=True)
    for core, labels in zip(low.program.cores, low.labels):
        mxu = [ins for ins, label in zip(core, labels) if label == "l1.attn" and queue_of(ins) is Unit.MXU and ins.op is not Opcode.BARRIER]
        last = max(j for j, ins in enumerate(mxu) if ins.op is Opcode.MATMUL)
        ldws = [j for j, ins in enumerate(mxu[:last]) if ins.op is Opcode.LDW]
        assert bool(mxu[last].preloaded) is preloads and len(ldws) == int(preloads)
        if preloads:
            ldw, pv = mxu[ldws[0]], mxu[last]
            assert (ldw.w_addr, ldw.k, ldw.n) == (pv.b_addr, min(pv.k, rows), pv.n) and not pv.transpose_b
            assert all(ins.op is Opcode.WAIT for ins in mxu[ldws[0] + 1:last])


def test_a_prefetch_tile_is_cut_in_pieces_between_items():
    """The embeddings load rows item by item; the one weight tile of QKV they load ahead comes in row pieces, one
    after each item's loads from the second on, so no item's loads wait behind the whole tile: together the pieces
    are the tile (its rows in order, dense in its slot, its DRAM rows), and the program verifies."""
    c = chip()
    low = lower(build_graph(preset("bert-ner-wnut"), 128, 1), MapperContext(c), verify=True)
    for core, labels in zip(low.program.cores, low.labels):
        emb = [i for i, label in enumerate(labels) if label == "emb" and core[i].op is Opcode.DMA_LD]
        qkv_tile = [i for i in emb if core[i].dtype is not DType.FP32]  # the emb phase's own loads are fp32 rows
        pieces = [core[i] for i in qkv_tile]
        assert len(pieces) >= 2
        first = pieces[0]
        row_bytes = first.cols * first.dtype.itemsize
        at = 0
        for p in pieces:
            assert (p.cols, p.dram_stride_bytes) == (first.cols, first.dram_stride_bytes)
            assert p.sram_addr == first.sram_addr + at * row_bytes and p.dram_addr == first.dram_addr + at * first.dram_stride_bytes
            at += p.rows
        assert at == 384  # the whole tile: all of MiniLM's K = 384 rows (QKV reads its A in place, tk = K)
        between = [sum(1 for i in emb if a < i < b and i not in qkv_tile) for a, b in zip(qkv_tile, qkv_tile[1:])]
        assert all(n >= 1 for n in between), between  # an item's own loads between every two pieces


def test_a_gemm_loaded_ahead_below_another_keeps_its_other_slots_and_buffers_below():
    """Batch 16: a tile of FFN2 loaded during FFN1 would sit below FFN1's weight slots; FFN2's other weight slots and
    its A tiles must fit below it too, else nothing is loaded ahead there. The program lowers and verifies."""
    from chipsim.executor import timed

    c = chip()
    low = lower(build_graph(preset("bert-ner-wnut"), 128, 16), MapperContext(c, measure=timed), verify=True)
    verify(low.program, spad_bytes=c.core.scratchpad.size_bytes, acc_bytes=c.core.accumulator.size_bytes,
           dram_bytes=low.layout.size_bytes, array_rows=c.core.tensor_core.rows, array_cols=c.core.tensor_core.cols)
    assert any(dst == "l0.ffn1" for _, dst, _ in low.ahead_bytes)


@pytest.mark.parametrize(("model", "seq", "batch", "sets"), [
    ("bert-base", 128, 1, ()),
    ("bert-ner-wnut", 64, 2, ("mesh.rows=1", "mesh.cols=1")),
    ("bert-ner-wnut", 128, 1, ("mesh.rows=4", "mesh.cols=4", "core.tensor_core.rows=16", "core.tensor_core.cols=16",
                               "core.tensor_core.precision=bf16")),
    ("bert-ner-wnut", 128, 1, ("core.accumulator.size_kib=48",)),  # the partial on-chip plan
    ("bert-base", 128, 1, ("global_buffer.size_kib=8192", "global_buffer.bytes_per_cycle=1024", "dram.type=ddr4")),
])
def test_replayed_kernels_lower_to_the_program_emitted_kernel_by_kernel(monkeypatch, model, seq, batch, sets):
    """Identical kernels are emitted once per core and replayed with their parameters' addresses moved
    (mapper/replay.py): the program, its labels and the bytes loaded ahead are those of emitting every kernel."""
    import importlib

    from mapper.replay import KernelReplay

    emit_mod = importlib.import_module("mapper.emit")  # the module (the package exports the function `emit`)

    replays: list[KernelReplay] = []

    class Counting(KernelReplay):
        def __init__(self, facts):
            super().__init__(facts)
            replays.append(self)

    monkeypatch.setattr(emit_mod, "KernelReplay", Counting)
    g, ctx = run_passes(model, seq, batch, chip(*sets))
    every = emit_mod.emit(g, ctx, replay=False)
    replayed = emit_mod.emit(g, ctx)
    assert replays and replays[0].hits >= (preset(model).layers - 2) * ctx.cores  # layer 1.. replays at least its GEMMs
    assert replayed.program == every.program
    assert (replayed.labels, replayed.ahead_bytes, replayed.phase_mapping) == (every.labels, every.ahead_bytes, every.phase_mapping)
    dma = [i for core in replayed.program.cores for i in core if i.op in (Opcode.DMA_LD, Opcode.DMA_ST)]
    assert len({i.dram_addr for i in dma}) > len(dma) // 4  # the moved addresses are really other weights'


def test_row_blocks_go_to_their_owners_round_the_ring():
    """An fp32 result goes row block by row block to the cores owning the rows (the LayerNorm after it reads them
    there): each core sends a tile's blocks in owner_order, its own first, then the next cores round the ring, so
    at each step of the all-to-all every core receives from one sender (all sending to core 0 first stalled the
    links). The receivers take each sender's blocks in the order sent (the program verifies and runs)."""
    from chipsim.executor import execute
    from isa import queue_of
    from mapper.emit import PARTIAL_TAG, owner_order

    c = chip()
    low = lower(build_graph(preset("bert-ner-wnut"), 128, 1), MapperContext(c), verify=True)
    cores = len(low.program.cores)
    senders = 0
    for me, (core, labels) in enumerate(zip(low.program.cores, low.labels)):
        sends = [ins.dst_core for ins, label in zip(core, labels)  # not a split tile's partial sums (stream-K)
                 if label == "l1.ffn2" and queue_of(ins) is Unit.NOC and ins.op is Opcode.NOC_SEND and ins.tag != PARTIAL_TAG]
        assert sends == owner_order(me, cores) * (len(sends) // cores)
        senders += bool(sends)
    assert senders >= 3
    assert owner_order(2, 4) == [2, 3, 0, 1]
    execute(low.program, c, functional=False)


def test_a_cores_last_epilogue_is_stored_piece_by_piece():
    """A core's last GEMM tile has nothing left to overlap its epilogue and store with, so its epilogue runs in row
    pieces and each piece's store starts as soon as that piece is done: the pieces' stores cover the tile's rows
    once, in order, and the first begins before the epilogue's last instruction ends. The GEMM computes A @ W
    (tests/test_run.py checks whole models bit-exact)."""
    from chipsim.executor import execute
    from mapper import lower_gemm
    from mapper.emit import EPILOGUE_PIECES

    c = chip("mesh.rows=1", "mesh.cols=1")
    low = lower_gemm(128, 256, 128, MapperContext(c), quantized_out=True, verify=True)
    run = execute(low.program, c, functional=False, trace=True)
    core = low.program.cores[0]
    stores = [e for e in run.trace if e.unit is Unit.DMA and core[e.index].op is Opcode.DMA_ST]
    vec = [e for e in run.trace if e.unit is Unit.VEC and core[e.index].op not in (Opcode.SIGNAL, Opcode.WAIT)]
    rows = 128 // EPILOGUE_PIECES
    assert [(core[e.index].rows, core[e.index].dram_addr - core[stores[0].index].dram_addr) for e in stores] == \
        [(rows, p * rows * 128) for p in range(EPILOGUE_PIECES)]  # one 128-row tile: int8 rows of 128 bytes
    assert stores[0].start_cycle < vec[-1].end_cycle


@pytest.mark.parametrize("quantized_out", [False, True])
def test_a_stationary_gemm_reads_every_operand_once_and_computes_a_at_w(quantized_out):
    """A lone GEMM with several blocks of output columns per core: the search keeps A stationary (each core's rows
    of A loaded once, read in place by every column block), so DRAM reads are A and W once and writes C once
    (int8 with quantized_out, int32 raw); the values are A @ W, and the search costs the epilogue it emits."""
    from chipsim.executor import execute
    from mapper import lower_gemm
    from mapper.emit import EPILOGUE_PIECE_ROWS, EPILOGUE_PIECES
    from mapper.tiling import gemm_epilogue

    c = chip("mesh.rows=1", "mesh.cols=1", "core.tensor_core.rows=32", "core.tensor_core.cols=32",
             "dram.bandwidth_gb_per_s=8", "core.dma.bytes_per_cycle=8")  # DRAM-bound: re-reading A would cost
    m, k, n = 64, 96, 256
    low = lower_gemm(m, k, n, MapperContext(c), quantized_out=quantized_out)
    assert "A loaded once per core and kept" in low.phase_mapping["gemm"]
    rng = np.random.default_rng(0)
    a = rng.integers(-1, 2, (m, k), dtype=np.int8)
    w = rng.integers(-1, 2, (k, n), dtype=np.int8)  # |sums| <= 96: requantizing by 1.0 keeps them exact
    dram = np.zeros(low.layout.size_bytes, np.uint8)
    for name, x in (("a", a), ("w", w)):
        t = low.layout[name]
        dram[t.addr : t.addr + t.nbytes] = x.view(np.uint8).ravel()
    r = execute(low.program, c, functional=True, dram=dram)
    out_t = low.layout["out"]
    out = dram[out_t.addr : out_t.addr + out_t.nbytes].view(np.int8 if quantized_out else np.int32).reshape(m, n)
    np.testing.assert_array_equal(out, a.astype(np.int32) @ w.astype(np.int32))
    assert r.dram_read_bytes == m * k + k * n
    assert r.dram_write_bytes == m * n * (1 if quantized_out else 4)
    vec = [(i.op, i.rows, i.cols) for i in low.program.cores[0] if i.op in (Opcode.VCVT, Opcode.VQUANT)]
    tiles = [i for i in low.program.cores[0] if i.op is Opcode.MATMUL]  # one per tile: the whole K in one chunk
    # the last tile's epilogue in row pieces (mapper.emit.epilogue_pieces), each the same instructions on its rows
    n = max(1, min(EPILOGUE_PIECES, tiles[-1].m // EPILOGUE_PIECE_ROWS))
    rows = [[t.m] for t in tiles[:-1]] + [[tiles[-1].m // n] * n]
    assert vec == [(i.op, i.rows, i.cols) for t, piece_rows in zip(tiles, rows) for r in piece_rows
                   for i in gemm_epilogue(r, t.n, True, gelu=False, out_q=quantized_out, raw=True)]


@pytest.mark.parametrize("unit", [Unit.DMA, Unit.MXU, Unit.VEC, Unit.NOC])
def test_a_channel_slot_is_released_on_the_unit_that_frees_it(unit):
    """Any unit may free a slot (the DMA after storing an accumulator tile): the signal goes on that unit's queue
    (Unit.DMA is 0, so a truthiness test would put it on the consumer's and free the slot before the store)."""
    from mapper.sync import Channel, CoreBuilder

    b = CoreBuilder(0, 1 << 16, 1 << 16)
    ch = Channel(b, Unit.MXU, Unit.VEC)
    ch.release(0, unit)
    ch.release(1)
    assert [(i.unit, i.sem) for u in (unit, Unit.VEC) for i in b.queues[u][-1:]] == [(unit, ch.free), (Unit.VEC, ch.free)]


def test_the_recheck_keeps_tilings_that_move_the_fewest_dram_bytes():
    """The search re-checks its best tilings as lone programs, their first tiles loaded ahead as in the program; a
    tiling that loads a weight block on two cores (or re-reads A) looks fast there because the earlier kernel pays
    for the tiles. Even a measure that prefers the most DRAM traffic must not pick one: the re-check keeps only
    tilings within 2% of the fewest DRAM bytes (tiles loaded ahead counted)."""
    from mapper.recheck import _dram_bytes

    c = chip("core.tensor_core.rows=256", "core.tensor_core.cols=256")
    graph = build_graph(preset("bert-ner-wnut"), 128, 1)

    def moved(measure) -> int:  # Q|K|V through DRAM both ways: lower's own choice of it follows the measure too
        low = lower(graph, MapperContext(c, measure=measure, attention_inputs_on_chip=False))
        return _dram_bytes(low.program)

    fewest = moved(lambda program, chip: (_dram_bytes(program), 1.0))
    most = moved(lambda program, chip: (-_dram_bytes(program), 1.0))  # the fastest is the one moving the most bytes
    weights = sum(t.nbytes for name, t in lower(graph, MapperContext(c)).layout.tensors.items() if name.endswith(".w"))
    assert most <= fewest * 1.02 and most <= 1.25 * weights


@pytest.mark.parametrize("sets", [(), ("mesh.cols=3", "core.tensor_core.rows=32", "core.tensor_core.cols=32"),
                                  ("core.tensor_core.precision=bf16",)])
def test_the_searchs_gemm_events_are_the_executors(sets):
    """The events the search prices a tiling's energy by (mapper.tiling.gemm_events) are the ones the executor
    counts running that tiling's program, to within 1% (edge tiles counted as full ones): MACs, scratchpad and
    accumulator bytes, DRAM bytes (A per item or once, weight blocks kept or reloaded, a block split between two
    cores loaded by both), lane-ops. A chip without a global buffer (whose hits the search does not model)."""
    import dataclasses

    from chipsim.executor import execute
    from mapper.recheck import _program
    from mapper.tiling import _best_tiling, gemm_events

    c = chip(*sets)
    ctx = MapperContext(c)
    checked = set()
    for m, k, n, out_q in ((256, 512, 1024, False), (128, 768, 3072, True), (512, 768, 768, True)):
        g = Gemm("gemm", 0, 0, m, k, n, "a", "w", "deq" if ctx.int8 else None, "bias", "out_q" if out_q else None, None if out_q else "out_f")
        ranked, _ = _best_tiling(c, m, k, n, ctx.q_itemsize, out_q, False, False, 512, 0, False, 1, 40)
        # tilings whose tiles divide the GEMM (gemm_events counts edge tiles as full ones)
        exact = [t for t in ranked if m % t.tm == 0 and (n % t.tn == 0 or t.tn >= n)]
        first_of_way: dict[tuple[bool, bool], object] = {}  # and the cheapest of each way of loading A and the weights
        for t in exact:
            first_of_way.setdefault((t.a_once, t.tk >= k), t)
        for t in dict.fromkeys([*exact[::10], *first_of_way.values()]):
            checked.add((t.a_once, t.tk >= k))
            ran = execute(_program(dataclasses.replace(g, tiling=t), ctx, 0, 0).program, c, functional=False).events
            counted = gemm_events(c, m, k, n, ctx.q_itemsize, out_q, False, t.tm, t.tn, t.tk, a_once=t.a_once)
            assert set(counted) == set(ran), (t, set(counted) ^ set(ran))
            for event, n_ran in ran.items():
                assert counted[event] == pytest.approx(n_ran, rel=0.01), (t, event)
    assert {(True, True), (False, True), (False, False)} <= checked  # every way of loading A and the weights


def test_the_searchs_gemm_events_are_the_executors_under_stream_k():
    """The same for stream-K tilings (A kept on chip, read in column blocks): the split tiles' partial sums are
    counted as the executor counts them (NoC byte-hops, the accumulator read to send and read and written to add)."""
    import dataclasses

    from chipsim.executor import execute
    from mapper.recheck import _program
    from mapper.tiling import _best_tiling, gemm_events

    c = chip()
    g, ctx = run_passes("bert-base", 128, 1, c)
    facts = g.graph["kernel_facts"]
    ffn2 = next(k for k in kernels(g) if k.name == "l0.ffn2")
    ranked, _ = _best_tiling(c, ffn2.m, ffn2.k, ffn2.n, 1, False, False, True, 512, facts.resident_spad_bytes, False, 1, 40,
                             facts.resident_acc_bytes, a_block=c.core.tensor_core.rows)
    split = [t for t in ranked if t.split_k]
    assert split
    shape = dataclasses.replace(ffn2, name="gemm", a="a", w="w", deq="deq", bias="bias", out_f="out_f")
    for t in split[:3]:
        ran = execute(_program(dataclasses.replace(shape, tiling=t), ctx, facts.resident_spad_bytes, facts.resident_acc_bytes).program,
                      c, functional=False).events
        counted = gemm_events(c, ffn2.m, ffn2.k, ffn2.n, 1, False, False, t.tm, t.tn, t.tk, a_resident=True, split_k=True)
        assert set(counted) == set(ran) and ran["noc_byte_hops"] > 0, t
        for event, n_ran in ran.items():
            assert counted[event] == pytest.approx(n_ran, rel=0.01), (t, event)


def test_the_analytic_search_ranks_tilings_by_the_objective():
    """`mapper.objective` orders the search's candidates: by cycles, by joules, or by their product; on BERT-base's
    FFN2 the cheapest by energy is not the fastest."""
    from mapper.context import Objective
    from mapper.tiling import _best_tiling

    c = chip()
    best = {}
    for objective in Objective:
        ranked, _ = _best_tiling(c, 128, 3072, 768, 1, False, False, False, 512, 0, False, 1, 1000, 0, objective)
        scores = [objective.score(t.cost_cycles, t.energy_j) for t in ranked]
        assert scores == sorted(scores) and len(ranked) > 10
        best[objective] = ranked[0]
    assert best[Objective.LATENCY].energy_j == 0.0  # the latency objective does not price energy
    priced = {dataclasses.replace(t, energy_j=0.0): t for t in ranked}  # the last (EDP) ranking: every tiling priced
    fast, frugal, edp = priced[best[Objective.LATENCY]], best[Objective.ENERGY], best[Objective.EDP]
    assert fast != frugal and frugal.energy_j < fast.energy_j and fast.cost_cycles < frugal.cost_cycles
    assert edp.cost_cycles * edp.energy_j <= min(fast.cost_cycles * fast.energy_j, frugal.cost_cycles * frugal.energy_j)


def test_the_recheck_keeps_the_best_measured_by_the_objective():
    """The re-check runs the few best candidates and keeps, of those within 2% of the fewest DRAM bytes, the one
    the measure (cycles, joules) finds best by the objective: the fastest, the most frugal, or the best product."""
    from mapper.context import Objective

    c = chip()
    k = Gemm("g", 0, 0, 256, 512, 1024, "a", "w", "d", "b", "o", None)
    figures = [(1000, 9.0), (3000, 1.0), (1500, 1.5)]  # in the order run: fastest, most frugal, best product
    for objective, want in ((Objective.LATENCY, 0), (Objective.ENERGY, 1), (Objective.EDP, 2)):
        seen = []

        def measure(program, chip_):
            seen.append(next((i.m, i.n) for core in program.cores for i in core if i.op is Opcode.MATMUL))
            return figures[len(seen) - 1] if len(seen) <= len(figures) else (10**9, 10.0**9)

        picked = search_gemm(k, MapperContext(c, measure=measure, recheck=8, objective=objective))
        assert len(seen) >= 3 and (picked.tm, picked.tn) == seen[want], (objective, seen)


def test_the_recheck_runs_a_gemm_with_its_outputs_where_the_program_keeps_them():
    """A GEMM whose outputs stay on chip sends them over the NoC in the program; the re-check measures it so (the
    fp32 rows to their owner cores, no store to DRAM), and a stream-K candidate is measured beside the cheapest
    whole-tile ones, not instead of them."""
    from mapper.recheck import _best
    from mapper.tiling import _best_tiling

    c = chip()
    g, ctx = run_passes("bert-base", 128, 1, c)
    facts = g.graph["kernel_facts"]
    ffn2 = next(k for k in kernels(g) if k.name == "l0.ffn2")
    kept = facts.on_chip_of(ffn2.out_f)
    assert kept is not None and ffn2.out_q is None
    seen = []

    def measure(program, chip_):
        seen.append(program)
        return 1000 + len(seen), 1.0

    ranked, _ = _best_tiling(c, ffn2.m, ffn2.k, ffn2.n, 1, False, False, True, 512, facts.resident_spad_bytes, False, 1, 4,
                             facts.resident_acc_bytes, a_block=c.core.tensor_core.rows)
    assert sum(not t.split_k for t in ranked) == 4 and any(t.split_k for t in ranked)
    shape = dataclasses.replace(ffn2, name="gemm", a="a", w="w", deq="deq", bias="bias", out_f="out_f", tiling=None)
    _best(shape, ranked, c, facts.resident_spad_bytes, facts.resident_acc_bytes, measure, 1, kept=(dataclasses.replace(kept, tensor="out_f"),))
    assert seen
    for program in seen:
        ops = [i.op for core in program.cores for i in core]
        assert Opcode.NOC_SEND in ops and Opcode.DMA_ST not in ops


def test_an_objective_keeps_the_best_whole_program_by_its_figure():
    """The whole program is checked too: GEMM choices each the best measured alone can make a program that is
    worse by the objective's own figure than another objective's program, as on BERT-base on a 2x2 of 256x256,
    where the energy objective's GEMM choices cost more energy than the latency objective's (the weight tiles
    loaded ahead across kernels change with them). So `lower` keeps, of the three objectives' programs, the best
    by the objective: the energy objective's has the fewest joules of them, the EDP one's the least product."""
    from chipsim.executor import execute, timed
    from mapper.context import Objective

    graph = build_graph(preset("bert-base"), 128, 1)
    for c in (chip("core.tensor_core.rows=256", "core.tensor_core.cols=256"), chip_from_dict(load_chip_dict("tpuv1"))):
        figures = {}
        for objective in Objective:
            low = lower(graph, MapperContext(c, measure=timed, objective=objective))
            r = execute(low.program, c, functional=False)
            figures[objective] = (r.cycles, r.energy_j["total"])
        joules = [e for _, e in figures.values()]
        products = [n * e for n, e in figures.values()]
        assert figures[Objective.ENERGY][1] == min(joules)
        assert figures[Objective.EDP][0] * figures[Objective.EDP][1] == min(products)


def _phase_trace(low, res, phase: str) -> list[list]:
    """Per core, the trace events of `res` (a run of `low`) within its barrier phase `phase`."""
    start = sum(p.cycles for p in res.phases[:low.phases.index(phase)])
    end = start + res.phases[low.phases.index(phase)].cycles
    return [[e for e in res.trace if e.core == core and start <= e.start_cycle and e.end_cycle <= end] for core in range(len(low.program.cores))]


def _emitted_without_handoff(model: str, c):
    """`model` at seq 64 lowered on chip `c` with a barrier after every kernel (emit(handoff=False))."""
    from mapper.emit import emit

    g, ctx = run_passes(model, 64, 1, c)
    return emit(g, ctx, handoff=False)


def test_a_projection_hands_its_rows_to_the_layernorm_within_one_phase():
    """The output projection and FFN2 send their fp32 rows to the owners of those rows and the LayerNorm after each
    normalizes them: one phase, no barrier between the two (the LayerNorm's instructions and the GEMM's share it),
    the last tile's rows sent in rounds of the LayerNorm's items, so each core's LayerNorm starts on its first item
    while later rounds are still on the NoC. Without the handoff (emit(handoff=False)) a barrier separates them."""
    from chipsim.executor import execute

    c = chip()
    low = lower(build_graph(preset("bert-mini"), 64, 1), MapperContext(c), verify=True)
    assert "l0.attn_out+ln1" in low.phases and "l0.ffn2+ln2" in low.phases and "l0.ln2" not in low.phases
    for core, labels in zip(low.program.cores, low.labels):
        at = [j for j, label in enumerate(labels) if label in ("l0.ffn2", "l0.ln2")]
        assert {labels[j] for j in at} == {"l0.ffn2", "l0.ln2"}
        assert not any(core[j].op is Opcode.BARRIER for j in range(at[0], at[-1]))  # one phase: no barrier inside
    res = execute(low.program, c, trace=True, functional=False)
    for mine in _phase_trace(low, res, "l0.ffn2+ln2"):
        first_norm = min(e.start_cycle for e in mine if e.name == "vrsum")  # the LayerNorm's (the epilogue has none)
        last_recv = max(e.end_cycle for e in mine if e.name == "noc_recv")
        assert first_norm < last_recv  # it normalizes its first rows while its last rows are still coming in
    apart = _emitted_without_handoff("bert-mini", c)
    assert "l0.ffn2" in apart.phases and "l0.ln2" in apart.phases and "l0.ffn2+ln2" not in apart.phases


def test_the_fused_projection_feeds_the_attention_head_by_head_within_one_phase():
    """Q|K|V gathered on chip: the fused projection and the attention share one phase (no barrier between them).
    The projection's column blocks are dealt to the cores in head order and sent in rounds (every core's r-th
    tile), each core's NoC signalling its array once a round is in, so every core's attention starts on its first
    head while later tiles are still on the NoC (bert-small: 8 heads on 4 cores). emit(handoff=False) puts a
    barrier between them."""
    from chipsim.executor import execute

    c = chip()
    low = lower(build_graph(preset("bert-small"), 64, 1), MapperContext(c), verify=True)
    assert "l0.qkv+attn" in low.phases and "l0.attn" not in low.phases
    for core, labels in zip(low.program.cores, low.labels):
        at = [j for j, label in enumerate(labels) if label in ("l0.qkv", "l0.attn")]
        assert {labels[j] for j in at} == {"l0.qkv", "l0.attn"}
        assert not any(core[j].op is Opcode.BARRIER for j in range(at[0], at[-1]))
    res = execute(low.program, c, trace=True, functional=False)
    for labels, mine in zip(low.labels, _phase_trace(low, res, "l0.qkv+attn")):
        first_scores = min(e.start_cycle for e in mine if e.name == "matmul" and labels[e.index] == "l0.attn")
        last_tile_in = max(e.end_cycle for e in mine if e.name == "noc_recv" and labels[e.index] == "l0.qkv")
        assert first_scores < last_tile_in  # its first head's scores while the projection's last tiles come in
    # each core receives the Q, K and V blocks of the heads it runs, and no others (mapper.place.HeadOwners)
    g, _ = run_passes("bert-small", 64, 1, c)
    qkv = next(t for t in graph_facts(g).on_chip if t.tensor == "qkv")
    attn = g.nodes["l0.attn"]["kernel"]
    block = 64 * attn.head_dim  # a head block of the gathered Q|K|V: its 64 rows, one head wide
    for core, labels, items in zip(low.program.cores, low.labels, g.nodes["l0.attn"]["work"]):
        heads = {(i.addr - qkv.addr) // block % attn.heads for i, label in zip(core, labels) if label == "l0.qkv" and i.op is Opcode.NOC_RECV}
        assert heads == {h for _, h, _ in items}
    apart = _emitted_without_handoff("bert-small", c)
    assert "l0.qkv" in apart.phases and "l0.attn" in apart.phases and "l0.qkv+attn" not in apart.phases


def test_the_attention_goes_in_among_the_projection_tiles_where_its_phase_runs_faster(monkeypatch):
    """Sharing the fused projection's phase, the attention's blocks (scores, softmax, context) go in among the
    projection's tiles on every core where the phase alone then runs faster (mapper.emit._merge_heads: its list
    schedule's order and the first head alone pulled in, raced against the attention after the projection). For
    MiniLM on 64x64 arrays the projection's tiles leave the vector unit idle: the softmax runs while the array still works
    the projection's tiles, the program passes the verifier, and the run is faster than without the merge."""
    import importlib

    from chipsim.executor import execute, fastest, timed

    emit_module = importlib.import_module("mapper.emit")  # the package's `emit` is the function

    small = chip("core.tensor_core.rows=64", "core.tensor_core.cols=64")
    graph = build_graph(preset("bert-ner-wnut"), 128, 1)
    emit_module._MERGE_MEMO.clear()
    merged = lower(graph, MapperContext(small, measure=timed, race=fastest), verify=True)
    res = execute(merged.program, small, trace=True, functional=False)
    pulled = 0
    for core, labels, mine in zip(merged.program.cores, merged.labels, _phase_trace(merged, res, "l0.qkv+attn")):
        mats = [label for i, label in zip(core, labels) if i.op is Opcode.MATMUL and label in ("l0.qkv", "l0.attn")]
        if mats.index("l0.attn") < len(mats) - 1 - mats[::-1].index("l0.qkv"):
            pulled += 1
            softmax = min(e.start_cycle for e in mine if e.name == "vexp")
            assert softmax < max(e.end_cycle for e in mine if e.name == "matmul" and labels[e.index] == "l0.qkv")
    assert pulled == len(merged.program.cores)
    monkeypatch.setattr(emit_module, "_merge_heads", lambda *args: None)
    apart = lower(graph, MapperContext(small, measure=timed, race=fastest))
    kept = execute(apart.program, small, functional=False)
    phase = merged.phases.index("l0.qkv+attn")
    assert res.phases[phase].cycles < kept.phases[phase].cycles
    assert res.cycles < kept.cycles


def test_dram_bound_tilings_that_tie_rank_by_their_time_with_the_weights_loaded_ahead():
    """Where the DRAM channel binds a GEMM, every tiling that reads each weight once costs the analytic model the
    same but for its short head and tail, which favour the smallest tiles. Behind a vector-bound kernel the
    weights are loaded ahead (mapper.emit), so such ties rank by the time with them in their slots
    (mapper.tiling.TIE): on a 4x4 of 64x64 bf16 cores with DDR4, Q|K|V's favourite without that rule is far
    slower, run as the re-check runs it, than the one with it, and holds more instructions."""
    from chipsim.executor import timed
    from isa import MAX_DIM
    from mapper.recheck import best_measured
    from mapper.tiling import TIE, _best_tiling, _gemm_cost

    c = chip("mesh.rows=4", "mesh.cols=4", "core.tensor_core.rows=64", "core.tensor_core.cols=64", "core.tensor_core.precision=bf16",
             "clock_mhz=1400", "dram.type=ddr4", "dram.bandwidth_gb_per_s=25.6", "dram.latency_ns=80")
    g, ctx = run_passes("bert-base", 128, 1, c)
    facts = graph_facts(g)
    qkv = next(k for k in kernels(g) if k.name == "l1.qkv")  # behind l0.ln2: its weights are loaded ahead
    assert qkv.a_resident is not None
    args = (c, qkv.m, qkv.k, qkv.part_cols, 2, True, False, True, 512, facts.resident_spad_bytes, False, qkv.parts, 4,
            facts.resident_acc_bytes)
    plain, _ = _best_tiling(*args)
    ranked, _ = _best_tiling(*args, ahead=MAX_DIM)
    cheapest = min(t.cost_cycles for t in plain)
    assert all(t.cost_cycles <= cheapest * (1 + TIE) for t in ranked)  # every one tied, DRAM-bound

    def ahead_cycles(t):
        return _gemm_cost(c, qkv.m, qkv.k, qkv.part_cols, 2, True, False, t.tm, t.tn, t.tk, True, False, qkv.parts, t.a_once,
                          t.w_slots, t.split_k, MAX_DIM, c.core.scratchpad.size_bytes - facts.resident_spad_bytes)
    times = [ahead_cycles(t) for t in ranked]
    assert times == sorted(times) and times[0] < ahead_cycles(plain[0]) / 2

    seen = []

    def measure(program, chip_):  # the re-check's programs: the kernel alone, its weights loaded ahead
        cycles, joules = timed(program, chip_)
        seen.append((cycles, sum(len(core) for core in program.cores)))
        return cycles, joules
    best_measured(qkv, (ranked[0], plain[0]), MapperContext(c, measure=measure), facts.resident_spad_bytes,
                  facts.resident_acc_bytes, MAX_DIM, (facts.on_chip_of(qkv.out_q), facts.on_chip_of(qkv.out_f)))
    (new, new_instrs), (old, old_instrs) = seen
    assert new < old / 2 and new_instrs < old_instrs


def test_the_program_through_dram_is_lowered_only_where_the_kept_one_runs_past_its_dram_floor(monkeypatch):
    """lower races the program keeping Q|K|V on chip against the one sending it through DRAM, unless the kept one
    ends by the fewest cycles the other could take (every parameter, input and output once and every Q|K|V written
    and read back, through the DRAM channel): then the other is not lowered, and the pick is the same as racing both.
    On a chip with fast DRAM the kept one runs past that floor and the two are raced, the kept one's run continued.
    (Each program alone, without the sibling layout of its weight slots that lower may race beside it.)"""
    import mapper as mapper_package
    from chipsim.executor import fastest, timed

    monkeypatch.setattr(mapper_package, "_layouts", lambda passed, ctx, first=None: [first or mapper_package.emit(passed, ctx)])

    graph = build_graph(preset("bert-mini"), 128, 1)
    for sets, skipped in ((("dram.bandwidth_gb_per_s=6",), True), ((), False)):
        c = chip(*sets)
        calls = []

        def race(programs, chip_, stop=None, calls=calls):
            calls.append((tuple(programs), stop))
            return fastest(programs, chip_, stop=stop)

        lowered = lower(graph, MapperContext(c, measure=timed, race=race))
        whole = [(programs, stop) for programs, stop in calls if lowered.program in programs]
        assert whole[0] == ((lowered.program,), whole[0][1]) and whole[0][1] is not None  # the kept one alone, to the floor
        assert len(whole) == (1 if skipped else 2)
        if not skipped:
            assert len(whole[1][0]) == 2 and whole[1][1] is None  # then both, the kept one first

        def without_floor(programs, chip_, stop=None):  # every probe runs past its floor: both always lowered and raced
            return (None,) * len(programs) if stop is not None else fastest(programs, chip_)
        assert lower(graph, MapperContext(c, measure=timed, race=without_floor)).program == lowered.program
