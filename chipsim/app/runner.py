"""Run orchestration: a RunConfig -> lowered program -> executor -> result record (kept apart from the hardware).

A functional run needs the fine-tuned model: its sentences are tokenized, padded to `seq_len`, grouped into
batches, and each batch runs through the simulated chip with real values; the chip's logits are compared with
the quantized reference (bit for bit on int8) and its tags with the fp32 reference (and gold tags, for
test-split sentences). Timing does not depend on the values, so every batch has the same cycles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import chipsim
from chipsim.config import ConfigError, Precision
from chipsim.dispatch import Decoder
from chipsim.energy import Event, energy_breakdown
from chipsim.executor import execute
from chipsim.app.runconfig import RunConfig
from chipsim.stats import RunResult, StallCause
from isa import OPCODES, Opcode, Unit, verify
from mapper import Lowered, MapperContext, lower
from mapper.layout import dram_image, read_tensor
from reports.record import LayerRecord, RunRecord, Validation
from workloads import ner
from workloads.bert import FINETUNED_MODEL, preset
from workloads.errors import WorkloadError
from workloads.graph import build_graph
from workloads.quantized import Precision as QPrecision
from workloads.quantized import QuantizedModel, load_quantized
from workloads.quantized import forward as forward_q
from workloads.reference import forward as forward_fp32
from workloads.reference import word_tags
from workloads.tokenizer import Encoding, encode_words, split_words


@dataclass(frozen=True, slots=True)
class Sentence:
    words: tuple[str, ...]
    gold: tuple[str, ...] | None  # BIO tags when the sentence comes from the labelled test split


@dataclass(frozen=True)
class RunOutcome:
    record: RunRecord
    result: RunResult  # the executor's last run (for traces)
    lowered: Lowered


_WORK_UNITS = (Unit.DMA, Unit.MXU, Unit.VEC, Unit.NOC)
_SYNC_OPS = frozenset({Opcode.SIGNAL, Opcode.WAIT, Opcode.BARRIER, Opcode.HALT})


def _phase_spans(lowered: Lowered, result: RunResult) -> list[tuple[str, int, int, list[tuple[int, int, int]]]]:
    """(label, start, end, [(core, first index, stop index)]) of every barrier-delimited phase."""
    prog = lowered.program
    barrier_idx = [[i for i, ins in enumerate(core) if ins.op is Opcode.BARRIER] for core in prog.cores]
    spans = []
    prev_end, prev_idx = 0, [0] * prog.num_cores
    for k in range(len(barrier_idx[0])):
        end = max(int(result.instr_end[c][barrier_idx[c][k]]) for c in range(prog.num_cores))
        label = lowered.labels[0][barrier_idx[0][k]]
        ranges = [(c, prev_idx[c], barrier_idx[c][k] + 1) for c in range(prog.num_cores)]
        spans.append((label, prev_end, end, ranges))
        prev_end, prev_idx = end, [barrier_idx[c][k] + 1 for c in range(prog.num_cores)]
    return spans


def per_layer(cfg: RunConfig, lowered: Lowered, result: RunResult) -> tuple[LayerRecord, ...]:
    """Cycles, MACs, utilization, energy and the binding resource of every phase (layer) of the program."""
    chip = cfg.chip
    decoder = Decoder(chip)
    pes = chip.pes_per_core * chip.num_cores
    # The unit of every instruction, per core (SIGNAL/WAIT/BARRIER/HALT count for no unit's work).
    units = [np.array([int(OPCODES[i.op].unit) if i.op not in _SYNC_OPS else -1 for i in core], dtype=np.int8)
             for core in lowered.program.cores]
    acc: dict[str, tuple[int, dict[str, int], dict[Unit, int]]] = {}
    for label, start, end, ranges in _phase_spans(lowered, result):
        cycles, events, busy = acc.get(label, (0, {}, {u: 0 for u in _WORK_UNITS}))
        phase_busy = {u: 0 for u in _WORK_UNITS}
        for c, lo, hi in ranges:
            for ev, n in decoder.decode_core(c, lowered.program.cores[c][lo:hi], lowered.program.num_cores).events.items():
                events[ev] = events.get(ev, 0) + n
            span = result.instr_end[c][lo:hi] - result.instr_start[c][lo:hi]
            for u in _WORK_UNITS:  # the busiest core's unit time
                phase_busy[u] = max(phase_busy[u], int(span[units[c][lo:hi] == int(u)].sum()))
        acc[label] = (cycles + end - start, events, {u: busy[u] + phase_busy[u] for u in _WORK_UNITS})
    out = []
    for label, (cycles, events, busy) in acc.items():
        macs = lowered.phase_macs.get(label, 0)
        compute = max(busy[Unit.MXU], busy[Unit.VEC])  # the array or the vector unit
        bound = max(((compute, "compute"), (busy[Unit.DMA], "memory"), (busy[Unit.NOC], "noc")))[1]
        dram = int(events.get(Event.DRAM_READ_BYTES, 0) + events.get(Event.DRAM_WRITE_BYTES, 0))
        out.append(LayerRecord(label, cycles, macs, dram, macs / (pes * cycles) if cycles else 0.0,
                               energy_breakdown(events, cycles, chip)["total"] / cfg.workload.batch, bound))
    return tuple(out)


def _sentences(cfg: RunConfig, tokenizer, test_split: list[ner.Sentence] | None) -> list[Sentence]:
    out = [Sentence(tuple(split_words(tokenizer, text)), None) for text in cfg.workload.sentences]
    if any(not s.words for s in out):
        raise WorkloadError("workload.sentences holds an empty sentence; give each one some words.")
    if test_split is not None:
        out += [Sentence(s.words, s.tags) for s in test_split]
    return out


def _record(cfg: RunConfig, lowered: Lowered, result: RunResult, validation: Validation | None, functional: bool) -> RunRecord:
    chip, batch = cfg.chip, cfg.workload.batch
    latency = result.latency_s
    energy_run = result.energy_total_j
    macs = result.useful_macs
    stalls = {cause.value: sum(u.stall_cycles(cause) for core in result.cores for u in core.units) for cause in StallCause}
    return RunRecord(
        chipsim_version=chipsim.__version__, config_sha256=cfg.sha256(), chip=chip.name, model=cfg.workload.model,
        seq_len=cfg.workload.seq_len, batch=batch, precision=chip.core.tensor_core.precision.value, functional=functional,
        clock_mhz=chip.clock_mhz, cycles=result.cycles, latency_s=latency, inferences_per_s=batch / latency,
        macs=macs, energy_j=energy_run / batch,
        energy_breakdown_j={k: v / batch for k, v in result.energy_j.items()},
        power_w=energy_run / latency, tops=2 * macs / latency / 1e12, tops_per_w=2 * macs / energy_run / 1e12,
        area_mm2=result.area_mm2["total"], area_breakdown_mm2=dict(result.area_mm2), utilization=result.utilization,
        roofline_cycles=result.roofline.bound_cycles, roofline_limiter=result.roofline.limiter,
        peak_macs_per_cycle=chip.peak_macs_per_cycle, dram_bytes_per_cycle=chip.dram_bytes_per_cycle,
        instructions=result.instructions, stall_cycles=stalls, per_layer=per_layer(cfg, lowered, result),
        validation=validation,
    )


def _pad(enc: Encoding, seq: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros(seq, dtype=np.int64)
    mask = np.zeros(seq, dtype=np.int32)
    ids[: len(enc.input_ids)] = enc.input_ids
    mask[: len(enc.input_ids)] = 1
    return ids, mask


def run(
    cfg: RunConfig,
    *,
    functional: bool | None = None,
    test_split: bool = False,  # the whole held-out test split (`--eval`); else workload.test_sentences of it
    trace: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RunOutcome:
    """Lower, verify and execute the workload of `cfg`; functional runs also validate the chip's answers."""
    functional = cfg.functional if functional is None else functional
    w, chip = cfg.workload, cfg.chip
    bert = preset(w.model)
    if w.seq_len > bert.max_positions:
        raise WorkloadError(f"workload.seq_len {w.seq_len} exceeds the maximum {bert.max_positions} positions of {w.model!r}; use 1..{bert.max_positions}.")
    qm: QuantizedModel | None = None
    if functional:
        if w.model != FINETUNED_MODEL:
            raise WorkloadError(f"a functional run needs real weights, which only {FINETUNED_MODEL!r} ships; set workload.model: {FINETUNED_MODEL} or functional: false.")
        from workloads.model import load_model

        model = load_model()
        qprec = QPrecision.INT8 if chip.core.tensor_core.precision is Precision.INT8 else QPrecision.BF16
        qm = load_quantized(model, qprec)
    lowered = lower(build_graph(bert, w.seq_len, w.batch), MapperContext(chip, qm, cfg.mapper.search_candidates), verify=cfg.mapper.verify)
    if cfg.mapper.verify:
        verify(lowered.program, spad_bytes=chip.core.scratchpad.size_bytes, acc_bytes=chip.core.accumulator.size_bytes,
               dram_bytes=lowered.layout.size_bytes, array_rows=chip.core.tensor_core.rows, array_cols=chip.core.tensor_core.cols)
    if qm is None:
        result = execute(lowered.program, chip, functional=False, trace=trace)
        return RunOutcome(_record(cfg, lowered, result, None, False), result, lowered)

    model = qm.model
    split = None
    wanted = len(model.manifest["split"]["test"]) if test_split else w.test_sentences  # type: ignore[index]
    if wanted:
        corpus = ner.load_corpus()
        split = [corpus[i] for i in model.manifest["split"]["test"][:wanted]]  # type: ignore[index]
    sentences = _sentences(cfg, model.tokenizer, split)
    if not sentences:
        raise ConfigError(["workload.sentences: a functional run needs at least one sentence (or workload.test_sentences, or --eval); add some or set functional: false"], None, "run config")
    chip_tags, ref_tags, max_q, max_f, exact = [], [], 0.0, 0.0, True
    result = None
    for start in range(0, len(sentences), w.batch):
        group = sentences[start : start + w.batch]
        encs = [encode_words(model.tokenizer, s.words, w.seq_len) for s in group]
        padded = [_pad(e, w.seq_len) for e in encs] + [_pad(encs[0], w.seq_len)] * (w.batch - len(group))
        ids = np.stack([p[0] for p in padded])
        masks = np.stack([p[1] for p in padded])
        dram = dram_image(lowered.layout, qm, ids, masks, qm.precision is QPrecision.INT8)
        this = execute(lowered.program, chip, functional=True, dram=dram, trace=trace and start == 0)
        result = result or this  # every batch has the same timing; the first keeps the timeline
        logits = read_tensor(dram, lowered.layout["logits"]).reshape(w.batch, w.seq_len, -1)
        for j, enc in enumerate(encs):
            ref_q = forward_q(qm, ids[j], masks[j])
            ref_f = forward_fp32(model, ids[j], masks[j])
            real = masks[j] > 0
            exact &= bool(np.array_equal(logits[j], ref_q))
            max_q = max(max_q, float(np.abs(logits[j][real] - ref_q[real]).max()))
            max_f = max(max_f, float(np.abs(logits[j][real] - ref_f[real]).max()))
            chip_tags.append(word_tags(model, enc, logits[j]))
            ref_tags.append(word_tags(model, enc, ref_f))
        if progress:
            progress(min(start + w.batch, len(sentences)), len(sentences))
    assert result is not None
    words = sum(len(t) for t in chip_tags)
    agree = sum(a == b for ct, rt in zip(chip_tags, ref_tags) for a, b in zip(ct, rt))
    gold_idx = [i for i, s in enumerate(sentences) if s.gold is not None]
    f1_chip = f1_ref = None
    if gold_idx:
        gold = [list(sentences[i].gold or ()) for i in gold_idx]
        f1_chip = ner.score(gold, [chip_tags[i] for i in gold_idx]).f1
        f1_ref = ner.score(gold, [ref_tags[i] for i in gold_idx]).f1
    validation = Validation(len(sentences), exact if qm.precision is QPrecision.INT8 else None, max_q, max_f,
                            agree / words if words else 1.0, f1_chip, f1_ref)
    return RunOutcome(_record(cfg, lowered, result, validation, True), result, lowered)
