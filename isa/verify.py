"""Static checks of a Program against a chip's memories and array: every problem, each with its location.

Checks: SRAM operands inside their memory and aligned to their dtype; DMA DRAM ranges inside DRAM and
aligned; overlapping DMA_ST rows; LDW no larger than the array; MATMUL preloaded=1 matching the core's last
LDW; SRAM tiles read as a dtype no unit wrote there in the current phase (between barriers), or that the
previous phases did not leave there; NoC peers inside the mesh (a core may send to itself, through its
router's local port); every NOC_RECV matched by a NOC_SEND with the same (src, dst, tag,
bytes) and vice versa; per core and semaphore, no more WAITs than SIGNALs; HALT last and only last;
the same number of BARRIERs on every core.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from isa.errors import IsaError
from isa.instr import Instr
from isa.operands import Operand, dram_extent
from isa.program import Program
from isa.types import DType, Mem, Opcode

MAX_LISTED_PROBLEMS = 50


class VerifyError(IsaError):
    """A Program failed verification; `problems` lists each one as `core C instr I (OP): what`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        more = f"; and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
        super().__init__(f"program failed verification with {len(problems)} problem(s): {shown}{more}.")


def _at(c: int, idx: int, instr: Instr) -> str:
    return f"core {c} instr {idx} ({instr.op.name})"


class _TypeMap:
    """The dtypes written to each SRAM byte of one core, phase by phase (a phase ends at a BARRIER).

    Units run concurrently, so program order between two units means nothing: a read is checked against every
    dtype any unit wrote to those bytes in the current phase or, for bytes not written in it, against what the
    previous phases left there. Each byte holds a bit per dtype; `ANY` marks untyped writes (NoC payloads).
    """

    ANY = 0x80

    def __init__(self, spad_bytes: int, acc_bytes: int) -> None:
        self.phase = {Mem.SPAD: np.zeros(spad_bytes, np.uint8), Mem.ACC: np.zeros(acc_bytes, np.uint8)}
        self.carried = {Mem.SPAD: np.zeros(spad_bytes, np.uint8), Mem.ACC: np.zeros(acc_bytes, np.uint8)}
        self.dirty: dict[Mem, list[tuple[int, int]]] = {Mem.SPAD: [], Mem.ACC: []}  # byte ranges this phase wrote in

    def write(self, mem: Mem, start: int, end: int, dtype: DType | None, rows: int = 1, pitch: int = 0) -> None:
        """Mark bytes start..end-1 written as `dtype`; with a `pitch`, only `rows` rows of (end - start - (rows - 1)
        * pitch) bytes, `pitch` bytes apart (a strided NOC_RECV)."""
        self.dirty[mem].append((start, end))
        seg = self.phase[mem][start:end]
        if rows > 1 and pitch:
            row = end - start - (rows - 1) * pitch
            seg = np.lib.stride_tricks.as_strided(seg, shape=(rows, row), strides=(pitch, 1), writeable=True)
        seg |= self.ANY if dtype is None else 1 << int(dtype)

    def written_as(self, mem: Mem, start: int, end: int, dtype: DType) -> bool:
        """Whether this phase wrote every byte of start..end-1 as `dtype` (among others): the read is then fine,
        whatever earlier phases left there."""
        return bool((self.phase[mem][start:end] & (self.ANY | 1 << int(dtype))).all())

    def conflict(self, mem: Mem, start: int, end: int, dtype: DType) -> str | None:
        seg = self.phase[mem][start:end]
        allowed = np.where(seg != 0, seg, self.carried[mem][start:end])
        bad = allowed[(allowed != 0) & ((allowed & (self.ANY | 1 << int(dtype))) == 0)]
        if not bad.size:
            return None
        return " or ".join(d.name for d in DType if int(bad[0]) & 1 << int(d))

    def marks(self) -> tuple[tuple[Mem, int, np.ndarray], ...]:
        """This phase's marks: a copy of each range it wrote (merged), to put back for a phase that writes the same."""
        return tuple((mem, lo, self.phase[mem][lo:hi].copy()) for mem, ranges in self.dirty.items() for lo, hi in _merged(ranges))

    def mark(self, marks: tuple[tuple[Mem, int, np.ndarray], ...]) -> None:
        """Put back the marks of a phase that wrote the same (this phase's map is clear: a barrier cleared it)."""
        for mem, lo, seg in marks:
            self.phase[mem][lo : lo + seg.size] = seg
            self.dirty[mem].append((lo, lo + seg.size))

    def barrier(self) -> None:
        for mem, ranges in self.dirty.items():
            # only the ranges the phase wrote (merged): a scratchpad of MiBs has thousands of barriers, and a
            # phase writes at its bottom and top (its buffers, the activations kept on chip)
            for lo, hi in _merged(ranges):
                seg = self.phase[mem][lo:hi]
                np.copyto(self.carried[mem][lo:hi], seg, where=seg != 0)
                seg[:] = 0
            ranges.clear()


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of half-open byte ranges, as disjoint ranges in address order."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


_WriteKey = tuple[Mem, int, int, DType | None, int, int]  # memory, start, end, dtype (None: untyped), rows, pitch
_ReadKey = tuple[Mem, int, int, DType]  # memory, start, end, dtype


@dataclass(frozen=True, slots=True)
class _Touches:
    """What the checks need of one instruction (the same for every instruction of equal fields, so worked out once
    per distinct instruction: the layers of a program repeat theirs): its SRAM writes and typed reads that lie
    inside their memory, and what is wrong with its operands' addresses (each message without its location)."""

    writes: tuple[_WriteKey, ...]
    reads: tuple[tuple[_ReadKey, Operand], ...]
    problems: tuple[str, ...]


def _touches(instr: Instr, sizes: dict[Mem, int]) -> _Touches:
    untyped = instr.op in (Opcode.NOC_SEND, Opcode.NOC_RECV)
    writes: list[_WriteKey] = []
    reads: list[tuple[_ReadKey, Operand]] = []
    problems: list[str] = []
    seen: set[tuple[str, bool]] = set()
    for o in instr.spec.operands(instr):
        end = o.end
        size = sizes[o.mem]
        if (o.name, False) not in seen and (o.name, True) not in seen:
            if o.addr % o.dtype.itemsize:
                problems.append(f"{o.name} address {o.mem.name.lower()}:0x{o.addr:x} is not aligned to the {o.dtype.itemsize}-byte {o.dtype.name}")
            if o.addr >= size:
                problems.append(f"{o.name} address {o.mem.name.lower()}:0x{o.addr:x} is outside the {size}-byte {o.mem.name}")
            elif end > size:
                problems.append(
                    f"{o.name} tile {o.mem.name.lower()}:0x{o.addr:x} of {o.rows}x{o.cols} {o.dtype.name} "
                    f"({o.nbytes} bytes{f', rows {o.pitch} bytes apart' if o.pitch else ''}) "
                    f"overruns the {size}-byte {o.mem.name} (ends at 0x{end:x})"
                )
        seen.add((o.name, o.write))
        if end > size:
            continue
        if o.write:
            writes.append((o.mem, o.addr, end, None if untyped else o.dtype, o.rows, o.pitch))
        elif not untyped:
            reads.append(((o.mem, o.addr, end, o.dtype), o))
    return _Touches(tuple(writes), tuple(reads), tuple(problems))


def _dtype_problems(c: int, instrs: tuple[Instr, ...], touches: list[_Touches], spad_bytes: int, acc_bytes: int) -> list[str]:
    """Reads of SRAM as a dtype not written there: per phase, all writes first, then every read. Within a phase
    the map is fixed once its writes are in, so a write repeated (the same bytes as the same dtype) marks nothing
    new and a read repeated has the answer of the first: each is done once per phase.

    A phase with the same writes and reads as an earlier one (`touches` holds one object per distinct
    instruction's, so the layers of a program repeat theirs) puts back that phase's marks, and checks again only
    the reads that phase found not written in it: the others read what the phase wrote itself, fine again."""
    types = _TypeMap(spad_bytes, acc_bytes)
    problems: list[str] = []
    start = 0
    bounds = [i for i, instr in enumerate(instrs) if instr.op == Opcode.BARRIER] + [len(instrs)]
    seen: dict[tuple[int, ...], tuple[tuple[tuple[Mem, int, np.ndarray], ...], list[tuple[int, _ReadKey, Operand]]]] = {}
    for stop in bounds:
        key = tuple(map(id, touches[start:stop]))
        known = seen.get(key)
        if known is None:
            written: set[_WriteKey] = set()
            reads: list[tuple[int, _ReadKey, Operand]] = []
            for idx in range(start, stop):
                t = touches[idx]
                for w in t.writes:
                    if w not in written:
                        written.add(w)
                        types.write(*w)
                for read, o in t.reads:
                    reads.append((idx - start, read, o))
            outside = [r for r in reads if not types.written_as(*r[1])]  # reads of what earlier phases left
            seen[key] = (types.marks(), outside)
        else:
            types.mark(known[0])
            outside = known[1]
        checked: dict[_ReadKey, str | None] = {}
        for rel, read, o in outside:
            held = checked[read] if read in checked else checked.setdefault(read, types.conflict(*read))
            if held is not None:
                idx = start + rel
                problems.append(f"{_at(c, idx, instrs[idx])}: {o.name} reads {o.mem.name.lower()}:0x{o.addr:x} as {o.dtype.name} but it holds {held}")
        types.barrier()
        start = stop + 1
    return problems


# the opcodes with checks of their own in `verify`'s loop (beyond their operands)
_CHECKED = frozenset({Opcode.DMA_LD, Opcode.DMA_ST, Opcode.LDW, Opcode.MATMUL, Opcode.NOC_SEND, Opcode.NOC_RECV, Opcode.WAIT,
                      Opcode.BARRIER, Opcode.HALT})


def verify(program: Program, *, spad_bytes: int, acc_bytes: int, dram_bytes: int, array_rows: int, array_cols: int) -> None:
    """Raise VerifyError (an IsaError) listing every problem of `program` on this chip; return None if clean."""
    problems: list[str] = []
    sizes = {Mem.SPAD: spad_bytes, Mem.ACC: acc_bytes}
    ncores = program.num_cores
    sends: dict[tuple[int, int, int, int], list[tuple[int, int]]] = defaultdict(list)  # (core, index) of each
    recvs: dict[tuple[int, int, int, int], list[tuple[int, int]]] = defaultdict(list)
    barriers: list[int] = []
    known: dict[Instr, _Touches] = {}
    distinct: dict[_Touches, _Touches] = {}  # one object per distinct value (DMA instructions differ by DRAM address only)
    for c, instrs in enumerate(program.cores):
        touches = []
        for instr in instrs:
            t = known.get(instr)
            if t is None:
                t = _touches(instr, sizes)
                t = known[instr] = distinct.setdefault(t, t)
            touches.append(t)
        problems += _dtype_problems(c, instrs, touches, spad_bytes, acc_bytes)
        last_ldw: Instr | None = None
        signals: Counter[int] = Counter(i.sem for i in instrs if i.op == Opcode.SIGNAL)
        waits: Counter[int] = Counter()
        nbarrier = 0
        for idx, instr in enumerate(instrs):
            op = instr.op
            own = touches[idx].problems
            if own:
                problems += [f"{_at(c, idx, instr)}: {p}" for p in own]
            if op not in _CHECKED:  # the vector unit's instructions and SIGNAL: nothing more to check
                continue
            if op in (Opcode.DMA_LD, Opcode.DMA_ST):
                ext = dram_extent(instr)
                assert ext is not None
                item = instr.dtype.itemsize
                if ext[1] > dram_bytes:
                    problems.append(f"{_at(c, idx, instr)}: DRAM range 0x{ext[0]:x}..0x{ext[1]:x} overruns the {dram_bytes}-byte DRAM")
                if instr.dram_addr % item or instr.dram_stride_bytes % item:
                    problems.append(
                        f"{_at(c, idx, instr)}: DRAM address 0x{instr.dram_addr:x} and stride {instr.dram_stride_bytes} must be multiples of the {item}-byte {instr.dtype.name}"
                    )
                if op == Opcode.DMA_ST and instr.rows > 1 and instr.dram_stride_bytes < instr.cols * item:
                    problems.append(f"{_at(c, idx, instr)}: DRAM rows overlap (stride {instr.dram_stride_bytes} < row of {instr.cols * item} bytes)")
            elif op == Opcode.LDW:
                if instr.k > array_rows or instr.n > array_cols:
                    problems.append(f"{_at(c, idx, instr)}: weight tile {instr.k}x{instr.n} is larger than the {array_rows}x{array_cols} array")
                last_ldw = instr
            elif op == Opcode.MATMUL and instr.preloaded:
                fold = min(instr.k, array_rows)  # B's first fold: what the LDW must have put in the array
                if last_ldw is None:
                    problems.append(f"{_at(c, idx, instr)}: preloaded=1 but no LDW comes before it on this core")
                elif (last_ldw.k, last_ldw.n, last_ldw.dtype) != (fold, instr.n, instr.precision):
                    problems.append(
                        f"{_at(c, idx, instr)}: preloaded=1 needs a {fold}x{instr.n} {instr.precision.name} weight tile but the last LDW "
                        f"loads {last_ldw.k}x{last_ldw.n} {last_ldw.dtype.name}"
                    )
            elif op == Opcode.MATMUL:
                last_ldw = None  # its own weights replace the LDW's in the array
            elif op == Opcode.NOC_SEND and instr.multicast:
                for dst in range(ncores):
                    sends[(c, dst, instr.tag, instr.bytes)].append((c, idx))
            elif op in (Opcode.NOC_SEND, Opcode.NOC_RECV):
                peer = instr.dst_core if op == Opcode.NOC_SEND else instr.src_core
                if peer >= ncores:
                    problems.append(f"{_at(c, idx, instr)}: core {peer} is outside the {program.mesh_rows}x{program.mesh_cols} mesh (cores 0..{ncores - 1})")
                else:
                    key = (c, peer, instr.tag, instr.bytes) if op == Opcode.NOC_SEND else (peer, c, instr.tag, instr.bytes)
                    (sends if op == Opcode.NOC_SEND else recvs)[key].append((c, idx))
            elif op == Opcode.WAIT:
                waits[instr.sem] += 1
                if waits[instr.sem] == signals[instr.sem] + 1:
                    problems.append(
                        f"{_at(c, idx, instr)}: semaphore {instr.sem} is waited on more often than it is signalled on this core, "
                        "so this WAIT can never complete"
                    )
            elif op == Opcode.BARRIER:
                nbarrier += 1
            elif op == Opcode.HALT and idx != len(instrs) - 1:
                problems.append(f"{_at(c, idx, instr)}: HALT must be the last instruction, but {len(instrs) - 1 - idx} follow it")
        if not instrs or instrs[-1].op != Opcode.HALT:
            problems.append(f"core {c} instr {len(instrs)}: the program does not end with HALT")
        barriers.append(nbarrier)
    for key in sorted(set(sends) | set(recvs)):
        src, dst, tag, nbytes = key
        s, r = sends.get(key, []), recvs.get(key, [])
        for c, idx in r[len(s):]:
            problems.append(f"{_at(c, idx, program.cores[c][idx])}: no NOC_SEND on core {src} matches this receive (dst {dst}, tag {tag}, {nbytes} bytes)")
        for c, idx in s[len(r):]:
            problems.append(f"{_at(c, idx, program.cores[c][idx])}: no NOC_RECV on core {dst} matches this send (src {src}, tag {tag}, {nbytes} bytes)")
    if len(set(barriers)) > 1:
        counts = ", ".join(f"core {c} has {n}" for c, n in enumerate(barriers))
        problems.append(f"BARRIER counts differ between cores ({counts}); every core must reach each barrier")
    if problems:
        raise VerifyError(problems)

