"""A run file (`bert_ner.yaml`): the chip, the workload, mapper options and outputs, validated as one model.

Sections: `chip` (inline, a preset name such as `default`, or a path to a chip YAML relative to the run file),
`workload`, `mapper`, `output`, and the switch `functional`. Every error carries its dotted path
(`chip.core.tensor_core.rowz: unknown field; did you mean 'rows'?`) and all are reported at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import Field, Strict, ValidationError, model_validator

from chipsim.config import (
    ChipConfig,
    ConfigError,
    _Model,
    apply_overrides,
    load_chip_dict,
    load_yaml_file,
    problems_of,
)
from isa import MAX_DIM
from mapper import Objective

PositiveInt = Annotated[int, Strict(), Field(ge=1)]


# One inference run's token rows (batch x seq_len) are the rows of its activations, which every kernel addresses
# through the ISA's 14-bit dimension fields: at most MAX_DIM rows in one run (bert-base at seq 128: batch <= 127).
MAX_TOKEN_ROWS = MAX_DIM


class WorkloadConfig(_Model):
    model: str = "bert-ner-wnut"  # a preset name (bert-tiny .. bert-large) or the fine-tuned bert-ner-wnut
    seq_len: Annotated[int, Strict(), Field(ge=1, le=MAX_TOKEN_ROWS)] = 128
    batch: Annotated[int, Strict(), Field(ge=1, le=MAX_TOKEN_ROWS)] = 1
    sentences: tuple[str, ...] = ()  # real sentences to tag (fine-tuned model, functional runs)
    test_sentences: Annotated[int, Strict(), Field(ge=0, le=478)] = 0  # held-out test tweets (with gold tags) to add

    @model_validator(mode="after")
    def _rows_fit_the_isa(self) -> WorkloadConfig:
        if self.batch * self.seq_len > MAX_TOKEN_ROWS:
            raise ValueError(
                f"batch x seq_len is {self.batch} x {self.seq_len} = {self.batch * self.seq_len:,} token rows, more than the "
                f"{MAX_TOKEN_ROWS:,} one run can address (the ISA's 14-bit dimensions); use batch <= {MAX_TOKEN_ROWS // self.seq_len}")
        return self


class MapperConfig(_Model):
    search_candidates: Annotated[int, Strict(), Field(ge=1, le=1_000_000)] = 512  # tilings scored per GEMM (deterministic budget)
    verify: Annotated[bool, Strict()] = True  # run the ISA verifier on the program before executing it
    # what the mapping search minimises per GEMM: cycles (latency), joules (energy) or their product (edp)
    objective: Objective = Objective.LATENCY


class OutputConfig(_Model):
    dir: str | None = None  # default: a new folder under runs/
    trace: Annotated[bool, Strict()] = False  # write trace.json (Chrome / Perfetto)


class RunConfig(_Model):
    chip: ChipConfig
    workload: WorkloadConfig = WorkloadConfig()
    mapper: MapperConfig = MapperConfig()
    output: OutputConfig = OutputConfig()
    functional: Annotated[bool, Strict()] = True  # false: timing only (no arithmetic)

    def sha256(self) -> str:
        """Hash of the resolved configuration (what determines the result), independent of key order."""
        doc = self.model_dump(mode="json", exclude={"output"})
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def resolve_chip(data: Mapping[str, object], base_dir: Path | None) -> dict[str, object]:
    """`data` with `chip` given as a preset name or a path replaced by that chip's mapping."""
    resolved = dict(data)
    chip = resolved.get("chip")
    if isinstance(chip, str):
        path = Path(chip)
        if base_dir is not None and not path.is_absolute() and (base_dir / path).is_file():
            chip = str(base_dir / path)
        try:
            resolved["chip"] = load_chip_dict(chip)
        except ConfigError as exc:
            raise ConfigError([f"chip: {p}" for p in exc.problems], exc.source, "run config") from None
    return resolved


def run_config_from_dict(data: Mapping[str, object], *, overrides: Sequence[str] = (), source: str | None = None, base_dir: Path | None = None) -> RunConfig:
    """Validate a run mapping after resolving its chip and applying `dotted.path=value` overrides."""
    if not isinstance(data, Mapping):
        raise ConfigError([f"(top level): must be a mapping with sections {', '.join(RunConfig.model_fields)}"], source, "run config")
    # `chip=PRESET` (a whole chip) applies first, so field overrides such as `chip.mesh.rows=1` refine it.
    whole = [o for o in overrides if o.partition("=")[0].strip() == "chip"]
    fields = [o for o in overrides if o not in whole]
    try:
        resolved = resolve_chip(apply_overrides(data, whole, RunConfig) if whole else data, base_dir)
        if fields:
            resolved = apply_overrides(resolved, fields, RunConfig)
    except ConfigError as exc:
        raise ConfigError(exc.problems, "--set" if overrides else source, "run config") from None
    try:
        return RunConfig.model_validate(resolved)
    except ValidationError as exc:
        problems = problems_of(exc, RunConfig)
        set_paths = [o.partition("=")[0].strip() for o in overrides]
        # A problem at a path that an override set (or inside it) is the override's, not the file's.
        if set_paths and all(any(p.startswith(sp + ":") or p.startswith(sp + ".") or p.startswith(f"chip.{sp}")
                                 or p.startswith(sp) for sp in set_paths) for p in problems):
            where = "--set " + ", ".join(o for o in overrides)
        else:
            where = source
        raise ConfigError(problems, where, "run config") from None


def load_run_config(path: Path, overrides: Sequence[str] = ()) -> RunConfig:
    if not path.is_file():
        raise ConfigError([f"{path}: no such run file; pass a YAML file such as bert_ner.yaml"], None, "run config")
    data = load_yaml_file(path, "run file")
    return run_config_from_dict(data, overrides=overrides, source=str(path), base_dir=path.parent)  # type: ignore[arg-type]
