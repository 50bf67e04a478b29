"""Run orchestration: a RunConfig -> lowered program -> executor -> result record (kept apart from the hardware).

A functional run needs the fine-tuned model: its sentences are tokenized, padded to `seq_len`, grouped into
batches, and each batch runs through the simulated chip with real values; the chip's logits are compared with
the quantized reference (bit for bit on int8) and its tags with the fp32 reference (and gold tags, for
test-split sentences). Timing does not depend on the values, so every batch has the same cycles, and the
executor replays the first batch's moves of values for the others (chipsim.executor.execute).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np

import chipsim
from chipsim.app.bound import layer_bounds, workload_bound
from chipsim.bound import ChipBound
from chipsim.app.runconfig import RunConfig
from chipsim.config import ConfigError, Precision
from chipsim.cost import chip_cost_usd
from chipsim.executor import collector_paused, execute, fastest, timed
from chipsim.stats import PhaseStats, RunResult, StallCause
from isa import Opcode, Unit, verify
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
    mapping_s: float = 0.0  # wall seconds the mapper took (lowering, its tiling search and re-checks)
    verify_s: float = 0.0  # wall seconds the ISA verifier took (0 with mapper.verify off)


_WORK_UNITS = (Unit.DMA, Unit.MXU, Unit.VEC, Unit.NOC)


def _phase_labels(lowered: Lowered, result: RunResult) -> list[str]:
    """The layer label of every phase the executor measured (phase k ends at barrier k; the last at HALT)."""
    core0 = lowered.program.cores[0]
    labels = lowered.labels[0]
    barriers = [i for i, ins in enumerate(core0) if ins.op is Opcode.BARRIER]
    out = [labels[i] for i in barriers[: len(result.phases) - 1]]
    return out + [labels[-1]]  # after the last barrier: HALT, labelled as the last phase


def layer_kind(name: str) -> str:
    """`l3.ffn1` -> `ffn1`; names outside the encoder (`emb`, `cls`) are their own kind."""
    head, _, rest = name.partition(".")
    return rest if rest and head[:1] == "l" and head[1:].isdigit() else name


def per_layer(cfg: RunConfig, lowered: Lowered, result: RunResult, bounds: dict[str, ChipBound]) -> tuple[LayerRecord, ...]:
    """The executor's per-phase statistics, summed by layer label (phases of one label are that layer's kernels),
    against the layer's own bound: where the cycles go."""
    chip, batch = cfg.chip, cfg.workload.batch
    pes = chip.pes_per_core * chip.num_cores
    groups: dict[str, list[PhaseStats]] = {}
    for label, phase in zip(_phase_labels(lowered, result), result.phases):
        groups.setdefault(label, []).append(phase)
    out = []
    for label, phases in groups.items():
        cycles = sum(p.cycles for p in phases)
        macs = sum(p.macs for p in phases)

        def total(event: str, phases: list[PhaseStats] = phases) -> int:
            return sum(p.events.get(event, 0) for p in phases)

        energy: dict[str, float] = {}
        for p in phases:
            for part, joules in p.energy_j.items():
                energy[part] = energy.get(part, 0.0) + joules / batch
        read, write = total("dram_read_bytes"), total("dram_write_bytes")
        # The roofline sense: which throughput alone would take longest (the busiest core's unit for vector and NoC).
        limits = {
            "compute": macs / chip.peak_macs_per_cycle,
            "dram": (read + write) / chip.dram_bytes_per_cycle,
            "vector": sum(max(core[Unit.VEC] for core in p.busy_cycles) for p in phases),
            "noc": sum(max(core[Unit.NOC] for core in p.busy_cycles) for p in phases),
        }
        # Where the cycles go: the busiest resource of the schedule (summed over the layer's phases, the busiest
        # core's unit; DRAM as its channel time), and how far it and the whole layer are from the layer's bound.
        busiest_unit = {
            "dram": max(limits["dram"], sum(max(core[Unit.DMA] for core in p.busy_cycles) for p in phases)),
            "array": sum(max(core[Unit.MXU] for core in p.busy_cycles) for p in phases),
            "vector": limits["vector"], "noc": limits["noc"],
        }
        busiest = max(busiest_unit, key=lambda k: busiest_unit[k])
        # The same resource's work spread evenly over every core (the DRAM channel is one for the chip): what is
        # left between it and the busiest core's is work the other cores did not share.
        unit_of = {"dram": Unit.DMA, "array": Unit.MXU, "vector": Unit.VEC, "noc": Unit.NOC}[busiest]
        even = sum(sum(core[unit_of] for core in p.busy_cycles) / len(p.busy_cycles) for p in phases)
        if busiest == "dram":
            even = max(limits["dram"], even)
        layer_bound = bounds[label].bound_cycles if label in bounds else 0.0
        out.append(LayerRecord(
            name=label, kind=layer_kind(label), cycles=cycles, macs=macs,
            bound_cycles=layer_bound, busiest_unit=busiest, busiest_unit_cycles=busiest_unit[busiest],
            busiest_unit_even_cycles=min(even, busiest_unit[busiest]),
            utilization=macs / (pes * cycles) if cycles else 0.0,
            dram_read_bytes=read, dram_write_bytes=write, dram_bytes=read + write,
            dram_bandwidth_utilization=(read + write) / (cycles * chip.dram_bytes_per_cycle) if cycles else 0.0,
            sram_read_bytes=total("spad_read_bytes") + total("acc_read_bytes"),
            sram_write_bytes=total("spad_write_bytes") + total("acc_write_bytes"),
            energy_j=energy.get("total", 0.0), energy_breakdown_j=energy,
            bound=max(limits, key=lambda k: limits[k]), mapping=lowered.phase_mapping.get(label, ""),
        ))
    return tuple(out)


def _sentences(cfg: RunConfig, tokenizer, test_split: list[ner.Sentence] | None) -> list[Sentence]:
    out = [Sentence(tuple(split_words(tokenizer, text)), None) for text in cfg.workload.sentences]
    if any(not s.words for s in out):
        raise WorkloadError("workload.sentences holds an empty sentence; give each one some words.")
    if test_split is not None:
        out += [Sentence(s.words, s.tags) for s in test_split]
    return out


def _record(cfg: RunConfig, graph: nx.DiGraph, lowered: Lowered, result: RunResult, validation: Validation | None,
            functional: bool) -> RunRecord:
    chip, batch = cfg.chip, cfg.workload.batch
    latency = result.latency_s
    energy_run = result.energy_total_j
    macs = result.useful_macs
    stalls = {cause.value: sum(u.stall_cycles(cause) for core in result.cores for u in core.units) for cause in StallCause}
    unit_time = len(result.cores) * result.cycles
    share = {
        unit.name.lower(): {cause.value: sum(core.unit(unit).stall_cycles(cause) for core in result.cores) / unit_time for cause in StallCause}
        for unit in _WORK_UNITS
    } if unit_time else {}
    bound, compulsory = workload_bound(chip, graph, lowered.layout)
    cost = chip_cost_usd(chip)
    return RunRecord(
        chipsim_version=chipsim.__version__, config_sha256=cfg.sha256(), chip=chip.name, model=cfg.workload.model,
        seq_len=cfg.workload.seq_len, batch=batch, precision=chip.core.tensor_core.precision.value, functional=functional,
        clock_mhz=chip.clock_mhz, cycles=result.cycles, latency_s=latency, inferences_per_s=batch / latency,
        macs=macs, energy_j=energy_run / batch,
        energy_breakdown_j={k: v / batch for k, v in result.energy_j.items()},
        power_w=energy_run / latency, tops=2 * macs / latency / 1e12, tops_per_w=2 * macs / energy_run / 1e12,
        area_mm2=result.area_mm2["total"], area_breakdown_mm2=dict(result.area_mm2),
        cost_usd=cost.total_usd, cost_breakdown_usd={"die_usd": cost.die_usd, "dram_usd": cost.dram_usd, "die_yield": cost.die_yield,
                                                      "gross_dies_per_wafer": cost.gross_dies_per_wafer, "wafer_usd": cost.wafer_usd},
        utilization=result.utilization,
        dram_read_bytes=result.dram_read_bytes, dram_write_bytes=result.dram_write_bytes,
        dram_bytes=result.dram_read_bytes + result.dram_write_bytes, compulsory_dram_bytes=compulsory,
        bound_cycles=bound.bound_cycles, bound_limiter=bound.limiter,
        mapping_efficiency=bound.bound_cycles / result.cycles if result.cycles else 0.0,
        program_roofline_cycles=result.roofline.bound_cycles, program_roofline_limiter=result.roofline.limiter,
        peak_macs_per_cycle=chip.peak_macs_per_cycle, dram_bytes_per_cycle=chip.dram_bytes_per_cycle,
        instructions=result.instructions, stall_cycles=stalls, stall_share=share, per_layer=per_layer(cfg, lowered, result, layer_bounds(chip, graph, lowered.layout, lowered.ahead_bytes, lowered.phase_kernels)),
        validation=validation,
    )


def _pad(enc: Encoding, seq: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros(seq, dtype=np.int64)
    mask = np.zeros(seq, dtype=np.int32)
    ids[: len(enc.input_ids)] = enc.input_ids
    mask[: len(enc.input_ids)] = 1
    return ids, mask


@collector_paused()  # the mapper's and the executor's instructions: see collector_paused
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
    graph = build_graph(bert, w.seq_len, w.batch)
    started = time.perf_counter()
    lowered = lower(graph, MapperContext(chip, qm, cfg.mapper.search_candidates, measure=timed, race=fastest, objective=cfg.mapper.objective), verify=cfg.mapper.verify)
    mapping_s = time.perf_counter() - started
    if cfg.mapper.verify:
        verify(lowered.program, spad_bytes=chip.core.scratchpad.size_bytes, acc_bytes=chip.core.accumulator.size_bytes,
               dram_bytes=lowered.layout.size_bytes, array_rows=chip.core.tensor_core.rows, array_cols=chip.core.tensor_core.cols)
    verify_s = time.perf_counter() - started - mapping_s if cfg.mapper.verify else 0.0
    if qm is None:
        result = execute(lowered.program, chip, functional=False, trace=trace)
        return RunOutcome(_record(cfg, graph, lowered, result, None, False), result, lowered, mapping_s, verify_s)

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
    return RunOutcome(_record(cfg, graph, lowered, result, validation, True), result, lowered, mapping_s, verify_s)
