"""The global buffer: a shared LRU cache of DRAM blocks between DRAM and the cores' DMA engines."""

from __future__ import annotations

import numpy as np
import pytest

from chipsim.executor import execute
from isa import parse
from test_chip_executor import make_chip

# Core 0 loads a 4 KiB tile; after the barrier core 1 loads the same tile. 16 B/cycle DRAM, 10-cycle latency;
# one 8 B/cycle DMA engine per core; global buffer 64 B/cycle, 3-cycle hits.
SHARED = """
.mesh 1 2
.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=64 cols=64 stride=64 dtype=int8
    barrier
    halt
.core 1
    barrier
    dma_ld sram=spad:0x0 dram=0x0 rows=64 cols=64 stride=64 dtype=int8
    halt
"""


def chip(gb: dict | None):
    return make_chip(**{"mesh.cols": 2, "global_buffer": gb})


def test_second_core_reads_the_shared_tile_from_the_buffer():
    # Without a buffer: each load is max(4096/8 engine, 4096/16 channel) = 512 cycles + 10 latency = 522.
    plain = execute(parse(SHARED), chip(None), functional=False)
    assert plain.cycles == 2 * 522
    assert plain.events["dram_read_bytes"] == 2 * 4096
    # With one: the second load hits: max(512 engine, 4096/64 = 64 buffer) + 3 latency = 515.
    gb = execute(parse(SHARED), chip({"size_kib": 64, "bytes_per_cycle": 64, "latency_cycles": 3}), functional=False)
    assert gb.cycles == 522 + 515
    assert gb.events["dram_read_bytes"] == 4096
    assert gb.events["gbuf_read_bytes"] == 4096 and gb.events["gbuf_write_bytes"] == 4096
    assert gb.energy_j["total"] == pytest.approx(sum(v for k, v in gb.energy_j.items() if k != "total"), rel=1e-12)
    assert gb.energy_j["dram"] < plain.energy_j["dram"]
    assert gb.roofline.dram_cycles == 4096 / 16


def test_a_buffer_too_small_for_the_tile_never_hits():
    # An 8 KiB tile (two 4 KiB blocks) through a one-block buffer: each block evicts the other.
    text = SHARED.replace("rows=64", "rows=128")
    small = execute(parse(text), chip({"size_kib": 4, "bytes_per_cycle": 64}), functional=False)
    assert small.events["dram_read_bytes"] == 2 * 8192 and small.events["gbuf_read_bytes"] == 0
    big = execute(parse(text), chip({"size_kib": 8, "bytes_per_cycle": 64}), functional=False)
    assert big.events["gbuf_read_bytes"] == 8192


def test_stores_leave_their_blocks_for_the_next_reader_and_values_are_unchanged():
    text = """
.mesh 1 2
.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=16 cols=16 stride=16 dtype=int8
    signal unit=dma sem=0
    wait unit=dma sem=0
    dma_st sram=spad:0x0 dram=0x1000 rows=16 cols=16 stride=16 dtype=int8
    barrier
    halt
.core 1
    barrier
    dma_ld sram=spad:0x100 dram=0x1000 rows=16 cols=16 stride=16 dtype=int8
    signal unit=dma sem=0
    wait unit=dma sem=0
    dma_st sram=spad:0x100 dram=0x2000 rows=16 cols=16 stride=16 dtype=int8
    halt
"""
    c = chip({"size_kib": 16, "bytes_per_cycle": 32})
    dram = np.zeros(0x3000, dtype=np.uint8)
    dram[:256] = np.arange(256, dtype=np.uint8)
    functional = execute(parse(text), c, functional=True, dram=dram)
    timing = execute(parse(text), c, functional=False)
    assert np.array_equal(dram[0x2000:0x2100], np.arange(256, dtype=np.uint8))
    assert functional.cycles == timing.cycles and dict(functional.events) == dict(timing.events)
    assert timing.events["gbuf_read_bytes"] == 256  # core 1's load of what core 0 stored


def test_more_buffer_never_slower_on_bert():
    from pathlib import Path

    from chipsim.app.runconfig import load_run_config
    from chipsim.app.runner import run

    root = Path(__file__).resolve().parent.parent
    base = ["functional=false", "workload.seq_len=64", "mapper.verify=false"]
    none = run(load_run_config(root / "bert_ner.yaml", base)).record
    some = run(load_run_config(root / "bert_ner.yaml", [*base, "chip.global_buffer.size_kib=4096", "chip.global_buffer.bytes_per_cycle=1024"])).record
    assert some.cycles <= none.cycles
    assert some.energy_breakdown_j["dram"] < none.energy_breakdown_j["dram"]


@pytest.mark.parametrize("gb", [None, {"size_kib": 4096, "bytes_per_cycle": 1024}])
def test_the_searchs_measure_gives_the_runs_cycles_and_joules(gb):
    """executor.timed (what the mapper's re-check measures) gives exactly the full result's cycles and total energy,
    with and without a global buffer (whose hits move bytes from DRAM to the buffer)."""
    from pathlib import Path

    from chipsim.app.runconfig import load_run_config
    from chipsim.app.runner import run
    from chipsim.executor import timed

    root = Path(__file__).resolve().parent.parent
    sets = ["functional=false", "workload.seq_len=64", "mapper.verify=false"]
    if gb is not None:
        sets += [f"chip.global_buffer.{k}={v}" for k, v in gb.items()]
    o = run(load_run_config(root / "bert_ner.yaml", sets))
    chip = load_run_config(root / "bert_ner.yaml", sets).chip
    r = execute(o.lowered.program, chip, functional=False)
    assert (gb is not None) == (r.events.get("gbuf_read_bytes", 0) > 0)
    assert timed(o.lowered.program, chip) == (r.cycles, r.energy_j["total"])
