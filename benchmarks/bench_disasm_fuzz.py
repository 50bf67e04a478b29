"""Fuzzing the binary decoder behind `chipsim disasm`: 10^5 random inputs, each must decode or be an IsaError.

    python -m benchmarks.bench_disasm_fuzz [N]

Inputs (seeded): a third pure random bytes; a third a valid header (magic, version, a small mesh, instruction
counts) followed by random words; a third valid programs with random bit flips and truncations. Printed: inputs per
second, how many decoded, how many were refused with an IsaError, and any other exception (there must be none;
the script exits 1 if there is one, naming the first input's seed).
"""

from __future__ import annotations

import random
import sys
import time

from isa import IsaError, decode, encode, parse

SAMPLE = parse("""\
.mesh 1 2
.core 0
    dma_ld sram=spad:0x0 dram=0x40 rows=4 cols=16 stride=64 dtype=int8
    matmul a=spad:0x0 b=spad:0x100 c=acc:0x0 m=4 k=16 n=8 prec=int8 acc=0 pre=0 tb=0
    vexp dst=acc:0x0 src=acc:0x0 rows=4 cols=8
    noc_send dst_core=1 addr=acc:0x0 bytes=64 tag=1
    halt
.core 1
    noc_recv src_core=0 addr=spad:0x0 bytes=64 tag=1
    barrier
    halt
""")


def inputs(n: int, seed: int = 20161):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    valid = encode(SAMPLE)
    for i in range(n):
        kind = i % 3
        if kind == 0:
            yield rng.randbytes(rng.randrange(0, 200))
        elif kind == 1:
            rows, cols = rng.randrange(0, 4), rng.randrange(0, 4)
            head = b"CISA" + bytes([1, 0]) + rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(6)
            counts = b"".join(rng.randrange(0, 4).to_bytes(4, "little") for _ in range(max(rows * cols, 0)))
            yield head + counts + rng.randbytes(16 * rng.randrange(0, 8))
        else:
            data = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                bit = rng.randrange(len(data) * 8)
                data[bit // 8] ^= 1 << (bit % 8)
            yield bytes(data[: rng.randrange(len(data) + 1)] if rng.random() < 0.2 else data)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 100_000
    decoded = refused = 0
    other: list[tuple[int, BaseException]] = []
    t0 = time.perf_counter()
    for i, data in enumerate(inputs(n)):
        try:
            decode(data)
            decoded += 1
        except IsaError:
            refused += 1
        except Exception as exc:  # noqa: BLE001 - what this benchmark looks for
            other.append((i, exc))
    wall = time.perf_counter() - t0
    print(f"{n:,} inputs in {wall:.1f} s ({n / wall:,.0f} inputs/s): {decoded:,} decoded, {refused:,} refused with an IsaError, "
          f"{len(other)} other exceptions")
    if other:
        i, exc = other[0]
        print(f"first other exception at input {i}: {type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
