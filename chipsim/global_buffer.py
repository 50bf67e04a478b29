"""The global buffer: shared on-chip SRAM between DRAM and the cores, modelled as a chip-wide cache of DRAM bytes.

It holds exactly the bytes that were moved: a DMA transfer covers `rows` byte ranges of `cols x itemsize` bytes
at `dram_stride_bytes` apart, and only those bytes become present, so a strided tile never claims the bytes
between its rows (the next column tile of the same rows is a miss, as on the real chip).

Bookkeeping is by 4 KiB block for recency and by byte for content: each block holds a bitmask of its present
bytes; capacity counts present bytes (not blocks), and when it is exceeded the least recently used blocks are
evicted whole. A load's bytes that are present are served by the global buffer (its own shared channel at
`bytes_per_cycle`, `latency_cycles`), the rest by DRAM, and afterwards all its bytes are present. Stores write
through to DRAM and leave their bytes present, so a tile one core writes and another reads next comes from the
buffer. Timing-only and functional runs see the same addresses, so the same hits.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import cache

from isa import Instr, Opcode

BLOCK_BYTES = 4096


@cache
def _footprint(offset: int, rows: int, row_bytes: int, stride: int) -> tuple[tuple[int, int, int], ...]:
    """(block relative to the first, byte mask within the block, bytes) of a transfer starting `offset` bytes
    into its first block; cached, since a program repeats few transfer shapes at few alignments."""
    masks: dict[int, int] = {}
    for r in range(rows):
        start = offset + r * stride
        end = start + row_bytes
        while start < end:
            block, lo = divmod(start, BLOCK_BYTES)
            hi = min(end - block * BLOCK_BYTES, BLOCK_BYTES)
            masks[block] = masks.get(block, 0) | (((1 << (hi - lo)) - 1) << lo)
            start = block * BLOCK_BYTES + hi
    return tuple((b, m, m.bit_count()) for b, m in sorted(masks.items()))


class GlobalBuffer:
    def __init__(self, size_bytes: int) -> None:
        self.capacity_bytes = max(1, size_bytes)
        self.present_bytes = 0
        self.blocks: OrderedDict[int, int] = OrderedDict()  # block -> mask of present bytes, least recent first

    def access(self, instr: Instr) -> int:
        """Touch the bytes of one DMA transfer; returns how many of a load's bytes were present (0 for stores)."""
        first, offset = divmod(instr.dram_addr, BLOCK_BYTES)
        row_bytes = instr.cols * instr.dtype.itemsize
        stride = instr.dram_stride_bytes if instr.rows > 1 else row_bytes
        blocks = self.blocks
        hits = 0
        for rel, mask, nbytes in _footprint(offset, instr.rows, row_bytes, stride):
            b = first + rel
            have = blocks.get(b)
            if have is None:
                blocks[b] = mask
                self.present_bytes += nbytes
            else:
                hits += (have & mask).bit_count()
                merged = have | mask
                self.present_bytes += merged.bit_count() - have.bit_count()
                blocks[b] = merged
                blocks.move_to_end(b)
            while self.present_bytes > self.capacity_bytes:  # evict least recently used blocks, this one last
                _, evicted = blocks.popitem(last=False)
                self.present_bytes -= evicted.bit_count()
        return 0 if instr.op is Opcode.DMA_ST else hits
