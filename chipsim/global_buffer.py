"""The global buffer: shared on-chip SRAM between DRAM and the cores, modelled as a chip-wide LRU cache of DRAM.

DMA loads look up the DRAM blocks they cover (4 KiB blocks over the transfer's DRAM extent): the share of the
bytes whose blocks are present is served by the global buffer (its own shared channel at `bytes_per_cycle`,
`latency_cycles`), the rest by DRAM, and every block is then present (least recently used evicted first).
DMA stores write through to DRAM and leave their blocks present, so a tile one core writes and another reads
next comes from the buffer. Timing-only and functional runs see the same addresses, so the same hits.
"""

from __future__ import annotations

from collections import OrderedDict

from isa import Instr, Opcode

BLOCK_BYTES = 4096


class GlobalBuffer:
    def __init__(self, size_bytes: int) -> None:
        self.capacity = max(1, size_bytes // BLOCK_BYTES)
        self.blocks: OrderedDict[int, None] = OrderedDict()

    def access(self, instr: Instr) -> float:
        """Touch the blocks of one DMA transfer; the fraction of its bytes that hit (0 for stores)."""
        item = instr.dtype.itemsize
        first = instr.dram_addr // BLOCK_BYTES
        last = (instr.dram_addr + (instr.rows - 1) * instr.dram_stride_bytes + instr.cols * item - 1) // BLOCK_BYTES
        blocks = self.blocks
        hits = 0
        for b in range(first, last + 1):
            if b in blocks:
                hits += 1
                blocks.move_to_end(b)
            else:
                blocks[b] = None
                if len(blocks) > self.capacity:
                    blocks.popitem(last=False)
        return 0.0 if instr.op is Opcode.DMA_ST else hits / (last - first + 1)
