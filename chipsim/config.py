"""The chip description: `ChipConfig`, parsed from YAML by pydantic into frozen models.

An architect writes a chip as YAML (a file by itself, or the `chip:` section of a run file). `load_chip` and
`chip_from_dict` validate it and raise one `ConfigError` that lists every problem, each as
`dotted.path: what is wrong; what would be valid` (unknown keys get a did-you-mean suggestion).
`apply_overrides` sets dotted paths (`core.tensor_core.rows=64`) on the raw mapping before validation, for
`--set` and sweeps. Field names are a contract (users write them in files and override paths): keep them stable.

Units are in the names. 1 KiB = 1024 B; 1 GB/s = 1e9 B/s; clock in MHz.
"""

from __future__ import annotations

import copy
import difflib
import enum
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Union

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from chipsim import technology
from isa.types import VecOp

CHIPS_DIR = Path(__file__).with_name("chips")


class ConfigError(ValueError):
    """A chip description is invalid. `problems` holds one line per problem; the message lists them all."""

    def __init__(self, problems: Sequence[str], source: str | None = None, what: str = "chip config") -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        self.source = source
        where = f" in {source}" if source else ""
        if len(self.problems) == 1:
            message = f"invalid {what}{where}: {self.problems[0]}"
        else:  # all of them at once, on one line: `a: ...; b: ...`
            message = f"invalid {what}{where} ({len(self.problems)} problems): " + "; ".join(self.problems)
        super().__init__(message)


class Dataflow(enum.Enum):
    WS = "ws"  # weight stationary
    OS = "os"  # output stationary
    IS = "is"  # input stationary


class Precision(enum.Enum):
    INT8 = "int8"  # int8 x int8 -> int32 accumulate
    BF16 = "bf16"  # bf16 x bf16 -> fp32 accumulate


class DramType(enum.Enum):
    HBM2E = "hbm2e"
    LPDDR5 = "lpddr5"
    DDR4 = "ddr4"
    DDR3 = "ddr3"


# Vector-unit operation kinds, the keys of `core.vector.cycles_per_op` and of the energy model: the ISA's enum.
VectorOp = VecOp


# Strict numbers: YAML gives real ints/floats/bools, and a quoted "64" or `true` where a count belongs is a
# mistake worth reporting rather than coercing. Floats accept ints; inf/nan are rejected by the model config.
SizeKiB = Annotated[int, Strict(), Field(ge=1, le=16 * 1024)]  # ISA: SPAD/ACC hold up to 16 MiB (24-bit addresses)
BytesPerCycle = Annotated[int, Strict(), Field(ge=1, le=1 << 16)]
Bool = Annotated[bool, Strict()]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=False)


class MeshConfig(_Model):
    """The 2D mesh of cores; cores are numbered row-major (core = y * cols + x)."""

    # At most 32 x 32 = 1,024 cores: the ISA names 4,096 (12-bit core fields), but a program per core and the
    # executor's per-core state grow with the mesh: a 64x64 mesh took 2.75 GB to lower MiniLM, 32x32 about a quarter.
    rows: Annotated[int, Strict(), Field(ge=1, le=32)]
    cols: Annotated[int, Strict(), Field(ge=1, le=32)]


class TensorCoreConfig(_Model):
    """The systolic array: rows x cols PEs."""

    rows: Annotated[int, Strict(), Field(ge=1, le=1024)]
    cols: Annotated[int, Strict(), Field(ge=1, le=1024)]
    dataflow: Dataflow = Dataflow.WS
    precision: Precision = Precision.INT8
    weight_double_buffer: Bool = True  # a shadow weight register per PE: LDW overlaps the running MATMUL
    # Pipelined folds: the next fold (and a MATMUL right behind a MATMUL) streams while the current one drains,
    # as chipsim/array_reference.py runs them; false is SCALE-Sim's convention (each fold fills and drains).
    fold_overlap: Bool = True
    # With pipelined folds, a fold that covers fewer rows than the array (the last of a reduction the rows do not
    # divide, a head of 64 on 128 rows) loads only its rows, in that many cycles, and the rows below pass its
    # partial sums through (a valid bit per row on the streamed operand); one that covers fewer columns is done
    # when its last column's outputs leave. false: every fold is its zero-padded R x C tile (R cycles to load,
    # done when column C - 1 is), as fold_overlap=false (SCALE-Sim's convention) always counts it.
    partial_folds: Bool = True


class SramConfig(_Model):
    """A per-core SRAM (scratchpad or accumulator). `bytes_per_cycle` is the aggregate over all banks."""

    size_kib: SizeKiB
    banks: Annotated[int, Strict(), Field(ge=1, le=1024)]
    bytes_per_cycle: BytesPerCycle

    @property
    def size_bytes(self) -> int:
        return self.size_kib * 1024

    @property
    def bank_kib(self) -> float:
        return self.size_kib / self.banks

    @model_validator(mode="after")
    def _banks_divide_size(self) -> SramConfig:
        if self.size_bytes % self.banks:
            raise _rule(
                "banks",
                f"{self.banks} banks do not split {self.size_kib} KiB into equal banks",
                f"must divide {self.size_bytes} bytes (e.g. a power of two)",
            )
        return self


class VectorCyclesPerOpConfig(_Model):
    """Issue interval of each vector op kind, in cycles per lane-group of elements: 1 (every default) is a fully
    pipelined unit that accepts one op per lane per cycle. A value above 1 models a unit that iterates on each
    lane-group (chipsim's earlier convention was exp 4, gelu 8, rsqrt 4, recip 4 with no separate latency)."""

    add: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1
    mul: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1
    max: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1
    exp: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1
    gelu: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1
    rsqrt: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1
    recip: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1
    reduce: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1
    quant: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1
    convert: Annotated[int, Strict(), Field(ge=1, le=1024)] = 1

    def cycles(self, op: VectorOp) -> int:
        value: int = getattr(self, op.value)
        return value


# fp32 add, multiply and fused multiply-add: 4 cycles from issue to a dependent issue on NVIDIA Volta (Jia et al.,
# "Dissecting the NVIDIA Volta GPU Architecture via Microbenchmarking", arXiv:1804.06826, 2018, ch. 4).
_FP32_ALU_LATENCY_CYCLES = 4
# rsqrt, recip: a table lookup then the quadratic C0 + C1*x + C2*x^2 of a multifunction interpolator (Oberman and
# Siu, "A High-Performance Area-Efficient Multifunction Interpolator", ARITH 2005): 1 + two dependent multiply-
# adds = 1 + 2 * 4 cycles. Derived from the two sources above, not measured.
_SFU_LATENCY_CYCLES = 1 + 2 * _FP32_ALU_LATENCY_CYCLES
# exp: range reduction (one multiply by log2(e)) before the interpolator: 4 + 9. Derived, not measured.
_EXP_LATENCY_CYCLES = _FP32_ALU_LATENCY_CYCLES + _SFU_LATENCY_CYCLES
# gelu, tanh form 0.5 x (1 + tanh(k (x + 0.044715 x^3))) with tanh(v) = 1 - 2 / (exp(2v) + 1), as a dependent
# chain: x*x, *x, fma, *k (4 ALU ops), exp, add, recip, fma, add, *0.5x (4 more ALU ops). Derived, not measured.
_GELU_LATENCY_CYCLES = 8 * _FP32_ALU_LATENCY_CYCLES + _EXP_LATENCY_CYCLES + _SFU_LATENCY_CYCLES


class VectorLatencyConfig(_Model):
    """Pipeline latency of each vector op kind, in cycles from a lane-group's issue to its result: what the last
    lane-group adds after the others have issued (sources next to the defaults above)."""

    add: Annotated[int, Strict(), Field(ge=1, le=4096)] = _FP32_ALU_LATENCY_CYCLES
    mul: Annotated[int, Strict(), Field(ge=1, le=4096)] = _FP32_ALU_LATENCY_CYCLES
    max: Annotated[int, Strict(), Field(ge=1, le=4096)] = _FP32_ALU_LATENCY_CYCLES
    exp: Annotated[int, Strict(), Field(ge=1, le=4096)] = _EXP_LATENCY_CYCLES
    gelu: Annotated[int, Strict(), Field(ge=1, le=4096)] = _GELU_LATENCY_CYCLES
    rsqrt: Annotated[int, Strict(), Field(ge=1, le=4096)] = _SFU_LATENCY_CYCLES
    recip: Annotated[int, Strict(), Field(ge=1, le=4096)] = _SFU_LATENCY_CYCLES
    reduce: Annotated[int, Strict(), Field(ge=1, le=4096)] = _FP32_ALU_LATENCY_CYCLES
    quant: Annotated[int, Strict(), Field(ge=1, le=4096)] = _FP32_ALU_LATENCY_CYCLES
    convert: Annotated[int, Strict(), Field(ge=1, le=4096)] = _FP32_ALU_LATENCY_CYCLES

    def cycles(self, op: VectorOp) -> int:
        value: int = getattr(self, op.value)
        return value


class VectorConfig(_Model):
    lanes: Annotated[int, Strict(), Field(ge=1, le=4096)]
    cycles_per_op: VectorCyclesPerOpConfig = VectorCyclesPerOpConfig()  # issue interval per lane-group
    latency_cycles: VectorLatencyConfig = VectorLatencyConfig()


class DmaConfig(_Model):
    engines: Annotated[int, Strict(), Field(ge=1, le=64)]
    bytes_per_cycle: BytesPerCycle


class CoreConfig(_Model):
    tensor_core: TensorCoreConfig
    scratchpad: SramConfig
    accumulator: SramConfig
    vector: VectorConfig
    dma: DmaConfig


class GlobalBufferConfig(_Model):
    """Optional shared SRAM between DRAM and the cores."""

    size_kib: Annotated[int, Strict(), Field(ge=1, le=1 << 20)]
    bytes_per_cycle: BytesPerCycle
    # Hit latency. Default 20 cycles: a multi-MiB SRAM array reads in ~2-5 ns (CACTI 7, Balasubramonian et al.,
    # ACM TACO 2017) plus the on-chip network to it, at ~1 GHz.
    latency_cycles: Annotated[int, Strict(), Field(ge=0, le=100_000)] = 20

    @property
    def size_bytes(self) -> int:
        return self.size_kib * 1024


@dataclass(frozen=True, slots=True)
class DramPreset:
    """Defaults that `dram.type` fills in; explicit fields override them."""

    bandwidth_gb_per_s: float
    latency_ns: float
    energy_pj_per_bit: float
    capacity_gb: float  # one unit's capacity; a chip's default scales it with the chip's bandwidth (units)


# Latency: DRAM core timing (tRCD + CL ~ 28-30 ns in the JEDEC speed bins) plus controller, PHY and queueing
# gives the ~80-120 ns load-to-use latency typically measured; the figures below are representative, not
# datasheet values. One "unit" of each type is what `area.py` counts as one PHY.
DRAM_PRESETS: Mapping[DramType, DramPreset] = types.MappingProxyType(
    {
        # One HBM2E stack: 1024 pins x 3.6 Gb/s = 460.8 GB/s (JEDEC JESD235C; SK hynix HBM2E datasheet).
        # 3.9 pJ/bit: HBM2 access energy (O'Connor et al., "Fine-Grained DRAM", MICRO 2017). 16 GB: an 8-high
        # stack of 16 Gb dies (JESD235C; SK hynix HBM2E 16 GB).
        DramType.HBM2E: DramPreset(bandwidth_gb_per_s=460.8, latency_ns=100.0, energy_pj_per_bit=3.9, capacity_gb=16.0),
        # LPDDR5-6400, x64 (four x16 channels): 51.2 GB/s (JEDEC JESD209-5). 4.5 pJ/bit: middle of the
        # ~4-5 pJ/bit device + I/O energy reported for LPDDR4X/LPDDR5 (vendor briefs; O'Connor et al. MICRO 2017
        # compare LPDDR-class interfaces in the same range). 8 GB: one 16 Gb die per x16 channel (JESD209-5
        # densities; a representative part, not a limit).
        DramType.LPDDR5: DramPreset(bandwidth_gb_per_s=51.2, latency_ns=120.0, energy_pj_per_bit=4.5, capacity_gb=8.0),
        # DDR4-3200, one x64 channel: 25.6 GB/s (JEDEC JESD79-4). 15 pJ/bit: low end of the ~15-20 pJ/bit a
        # loaded x64 channel gives in Micron's DDR4 system-power calculator (TN-40-07). 16 GB: one single-rank
        # x8 DIMM of 16 Gb dies (JESD79-4 densities; representative).
        DramType.DDR4: DramPreset(bandwidth_gb_per_s=25.6, latency_ns=80.0, energy_pj_per_bit=15.0, capacity_gb=16.0),
        # DDR3-2133, one x64 channel: 17.06 GB/s (JEDEC JESD79-3). 20 pJ/bit: Micron DDR3 system-power
        # calculator (TN-41-01) for a loaded x64 channel. 4.29 GB (4 GiB) per channel: TPUv1's 8 GiB on two
        # DDR3-2133 channels (Jouppi et al., ISCA 2017).
        DramType.DDR3: DramPreset(bandwidth_gb_per_s=17.06, latency_ns=80.0, energy_pj_per_bit=20.0, capacity_gb=4 * 2**30 / 1e9),
    }
)


class DramConfig(_Model):
    """Off-chip memory as one chip-wide channel. `type` fills bandwidth, latency and energy defaults."""

    type: DramType
    bandwidth_gb_per_s: Annotated[float, Strict(), Field(gt=0, le=100_000)]
    latency_ns: Annotated[float, Strict(), Field(ge=0, le=100_000)]
    energy_pj_per_bit: Annotated[float, Strict(), Field(gt=0, le=1000)]
    capacity_gb: Annotated[float, Strict(), Field(gt=0, le=100_000)]  # for the cost model (chipsim/cost.py)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_type(cls, data: object) -> object:
        if not isinstance(data, Mapping):
            return data
        try:
            preset = DRAM_PRESETS[DramType(data.get("type"))]
        except (ValueError, TypeError):
            return data  # the bad or missing type is reported by field validation
        filled = dict(data)
        filled.setdefault("bandwidth_gb_per_s", preset.bandwidth_gb_per_s)
        filled.setdefault("latency_ns", preset.latency_ns)
        filled.setdefault("energy_pj_per_bit", preset.energy_pj_per_bit)
        bandwidth = filled["bandwidth_gb_per_s"]
        units = bandwidth / preset.bandwidth_gb_per_s if type(bandwidth) in (int, float) and bandwidth > 0 else 1.0
        filled.setdefault("capacity_gb", preset.capacity_gb * units)  # a bad bandwidth is reported by its own field
        return filled

    @property
    def preset(self) -> DramPreset:
        return DRAM_PRESETS[self.type]


class NocConfig(_Model):
    link_bytes_per_cycle: BytesPerCycle
    hop_cycles: Annotated[int, Strict(), Field(ge=1, le=1024)]
    # Default 1.0 pJ/byte/hop: ~1 mm of on-chip wire at ~0.1 pJ/bit/mm (W. Dally, "Challenges for future
    # computing systems", HiPEAC 2015 keynote: 256-bit bus across 1 mm = 26 pJ at 28 nm) plus a router
    # traversal of similar cost; set it per chip for a real floor plan.
    energy_pj_per_byte_hop: Annotated[float, Strict(), Field(ge=0, le=1000)] = 1.0


class ChipConfig(_Model):
    """One accelerator chip. See the module docstring for units; presets live in chipsim/chips/."""

    name: Annotated[str, Strict(), Field(min_length=1, max_length=200)]
    clock_mhz: Annotated[float, Strict(), Field(gt=0, le=10_000)]
    technology_nm: Annotated[int, Strict(), Field(ge=technology.MIN_NODE_NM, le=technology.MAX_NODE_NM)]
    mesh: MeshConfig
    core: CoreConfig
    global_buffer: GlobalBufferConfig | None = None
    dram: DramConfig
    noc: NocConfig

    @property
    def num_cores(self) -> int:
        return self.mesh.rows * self.mesh.cols

    @property
    def pes_per_core(self) -> int:
        return self.core.tensor_core.rows * self.core.tensor_core.cols

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.num_cores * self.pes_per_core

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def peak_tops(self) -> float:
        """Peak tera-operations per second, counting a MAC as 2 operations (the usual convention)."""
        return 2.0 * self.peak_macs_per_cycle * self.clock_hz / 1e12

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bandwidth in bytes per core-clock cycle (1 GB/s = 1e9 B/s)."""
        return self.dram.bandwidth_gb_per_s * 1e9 / self.clock_hz


# ----------------------------------------------------------------------------------------------------------
# Loading and error reporting


def _rule(field: str, problem: str, valid: str) -> PydanticCustomError:
    """A cross-field rule violation, reported against `field` of the model that raised it."""
    return PydanticCustomError("chip_rule", "{problem}", {"field": field, "problem": problem, "valid": valid})


def _unwrap(annotation: object) -> tuple[object, tuple[object, ...], bool]:
    """(bare type, Annotated metadata, is_optional) of a field annotation."""
    metadata: tuple[object, ...] = ()
    optional = False
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0]
    if typing.get_origin(annotation) is Annotated:
        annotation, *meta = typing.get_args(annotation)
        metadata = tuple(meta)
    return annotation, metadata, optional


def _model_at(path: Sequence[str | int], root: type[_Model]) -> type[_Model] | None:
    """The model class that the (dotted) path leads into from `root`, or None if the path leaves the schema."""
    model: type[_Model] = root
    for part in path:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        bare, _, _ = _unwrap(field.annotation)
        if not (isinstance(bare, type) and issubclass(bare, _Model)):
            return None
        model = bare
    return model


def _describe(model: type[_Model], name: str) -> str:
    """What a valid value of `model.name` looks like, in words."""
    field = model.model_fields[name]
    bare, _, optional = _unwrap(field.annotation)
    bounds: list[str] = []
    for meta in (*field.metadata,):
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(meta, getattr(annotated_types, attr.capitalize())):
                bound = getattr(meta, attr)
                bounds.append(f"{sym} {int(bound) if float(bound).is_integer() else bound}")
    if isinstance(bare, type) and issubclass(bare, enum.Enum):
        text = "one of " + ", ".join(str(m.value) for m in bare)
    elif isinstance(bare, type) and issubclass(bare, _Model):
        text = "a mapping with fields " + ", ".join(bare.model_fields)
    elif bare is bool:
        text = "true or false"
    elif bare is int:
        text = "an integer"
    elif bare is float:
        text = "a number"
    elif bare is str:
        text = "a non-empty string"
    else:  # pragma: no cover (every schema type is listed above)
        text = str(bare)
    if bounds:
        text += " " + " and ".join(bounds)
    return f"null or {text}" if optional else text


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return str(value)
    return f"{value!r}"


def _dotted(path: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in path) if path else "(top level)"


def unknown_field_problem(path: Sequence[str | int], valid_names: Sequence[str]) -> str:
    """`a.b.rowz: unknown field; did you mean 'rows'?` (or the list of valid fields when nothing is close)."""
    key = str(path[-1])
    close = difflib.get_close_matches(key, list(valid_names), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "valid fields are " + ", ".join(valid_names)
    return f"{_dotted(path)}: unknown field; {hint}"


def _problem(err: ErrorDetails, root: type[_Model]) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "chip_rule":
        ctx = err.get("ctx", {})
        return f"{_dotted((*loc, ctx['field']))}: {ctx['problem']}; {ctx['valid']}"
    parent = _model_at(loc[:-1], root) if loc else root
    if kind == "extra_forbidden" and parent is not None:
        return unknown_field_problem(loc, list(parent.model_fields))
    if parent is None or not loc or str(loc[-1]) not in parent.model_fields:
        # The value at `loc` is itself a model given as something else (e.g. `mesh: 4`), or the top level.
        model = _model_at(loc, root) or root
        return f"{_dotted(loc)}: got {_show(err['input'])}; must be a mapping with fields " + ", ".join(model.model_fields)
    valid = _describe(parent, str(loc[-1]))
    if kind == "missing":
        return f"{_dotted(loc)}: required field is missing; must be {valid}"
    return f"{_dotted(loc)}: got {_show(err['input'])}; must be {valid}"


def problems_of(exc: ValidationError, root: type[_Model]) -> list[str]:
    """One line per validation problem of a model rooted at `root`: dotted path, what is wrong, what is valid."""
    errors = exc.errors(include_url=False)
    # A bad `dram.type` cannot fill its defaults: do not also report the fields it would have filled.
    bad_type_at = {tuple(e["loc"][:-1]) for e in errors if e["loc"][-1:] == ("type",) and e["loc"][-2:-1] == ("dram",)}
    kept = [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"][:-1]) in bad_type_at and e["loc"][-1] != "type")]
    problems = [_problem(e, root) for e in kept]
    # `rowz: unknown field; did you mean 'rows'?` already explains why `rows` is missing: do not say it twice.
    suggested = {
        (*e["loc"][:-1], p.rsplit("'", 2)[-2])
        for e, p in zip(kept, problems)
        if e["type"] == "extra_forbidden" and p.endswith("'?")
    }
    return [p for e, p in zip(kept, problems) if not (e["type"] == "missing" and tuple(e["loc"]) in suggested)]


def chip_from_dict(data: Mapping[str, object], *, source: str | None = None) -> ChipConfig:
    """Validate a chip mapping (as parsed from YAML). Raises `ConfigError` listing every problem."""
    if not isinstance(data, Mapping):
        raise ConfigError([f"(top level): got {_show(data)}; must be a mapping with fields " + ", ".join(ChipConfig.model_fields)], source)
    try:
        return ChipConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(problems_of(exc, ChipConfig), source) from None


# Limits on what a YAML input may be (a config is small: these stop malicious or mistaken files early).
MAX_YAML_BYTES = 4 * 1024 * 1024  # the largest sweep file we ship is 2 KB
MAX_YAML_DEPTH = 32  # nesting levels; a chip config is 4 deep, a sweep axis of mappings 6
MAX_YAML_NODES = 100_000  # values after expanding aliases (anchors reused with *name): stops alias bombs


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one), keys that are not plain
    scalars, nesting deeper than MAX_YAML_DEPTH and documents that expand past MAX_YAML_NODES values."""

    _depth = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nesting deeper than {MAX_YAML_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self):  # type: ignore[no-untyped-def]
        node = super().get_single_node()
        if node is not None:
            _check_expanded_size(node)
        return node


def _check_expanded_size(root: yaml.Node) -> None:
    """The number of values the document holds once every alias is expanded (shared nodes counted per use)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        kids = [k for pair in node.value for k in pair] if isinstance(node, yaml.MappingNode) else (
            list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if not children_done and any(id(k) not in sizes for k in kids):
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes.get(id(k), 1) for k in kids)
        if sizes[id(node)] > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"the document expands to more than {MAX_YAML_NODES:,} values (anchors and aliases reused)", node.start_mark)


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain name or number, not a list or a mapping", key_node.start_mark)
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen.add(key)
    return dict(loader.construct_mapping(node, deep=deep))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 (PyYAML) reads `1e9` and `1.5e3` as strings; read them as numbers, as YAML 1.2 does.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, source: str, what: str = "chip config") -> object:
    """Parse YAML text; a syntax error becomes a `ConfigError` naming `source:line:column`; `what` names the
    kind of file in the message (`chip config`, `run file`, `sweep file`)."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "syntax error"
        fix = ("keep only one of them" if problem.startswith("duplicate key")
               else "simplify the file" if problem.startswith(("nesting deeper", "the document expands"))
               else "fix the syntax at that line")
        raise ConfigError([f"{where}: invalid YAML: {problem}; {fix}"], what=what) from None
    except (yaml.YAMLError, RecursionError) as exc:
        said = " ".join(re.sub(r'\s*in "<unicode string>", position (\d+)', r" (at character \1)", str(exc)).split())  # one line
        raise ConfigError([f"{source}: invalid YAML: {said}; fix the file's syntax"], what=what) from None


def read_text_file(path: Path, what: str, max_bytes: int = MAX_YAML_BYTES) -> str:
    """A small UTF-8 text file (a chip, run, sweep or assembly file), or one sentence saying why not."""
    if not path.exists():
        raise ConfigError([f"{path}: no such file; give the path of a {what}"], what=what)
    if not path.is_file():
        raise ConfigError([f"{path} is not a regular file; give the path of a {what}"], what=what)
    size = path.stat().st_size
    if size > max_bytes:
        raise ConfigError([f"{path} is {size:,} bytes, more than the {max_bytes:,} a {what} may have; is it the right file?"], what=what)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path} cannot be read ({exc.strerror}); check its permissions"], what=what) from None
    return decode_text(data, path, what)


def decode_text(data: bytes, path: Path, what: str) -> str:
    """The UTF-8 text of a file already read, or one sentence naming the line of the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8 text; save the file as UTF-8"], what=what) from None


def load_yaml_file(path: Path, what: str) -> object:
    return parse_yaml(read_text_file(path, what), str(path), what)


def preset_names() -> tuple[str, ...]:
    """Names of the chip presets shipped in chipsim/chips/ (e.g. 'default', 'tpuv1', 'edge')."""
    return tuple(sorted(p.stem for p in CHIPS_DIR.glob("*.yaml")))


def preset_path(name: str) -> Path:
    path = CHIPS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError([f"no chip preset named {name!r}; presets are " + ", ".join(preset_names())])
    return path


def _chip_file(source: Path | str) -> Path:
    path = Path(source)
    if not path.exists() and isinstance(source, str) and source in preset_names():
        return preset_path(source)
    if not path.is_file():
        presets = ", ".join(preset_names())
        raise ConfigError([f"chip file {str(source)!r} not found; give a path to a YAML file or a preset name ({presets})"])
    return path


def load_chip_dict(source: Path | str) -> dict[str, object]:
    """The raw mapping of a chip file or preset (for `apply_overrides` before `chip_from_dict`)."""
    path = _chip_file(source)
    data = load_yaml_file(path, "chip config")
    if isinstance(data, dict) and "chip" in data and ("workload" in data or "functional" in data or "mapper" in data):
        raise ConfigError([f"{path} is a run file (it has chip and workload sections), not a chip; run it with "
                           f"`chipsim run {path}`, or give its chip section's preset or file"], str(path))
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): got {_show(data)}; must be a mapping with fields " + ", ".join(ChipConfig.model_fields)], str(path))
    return data


def load_chip(source: Path | str | Mapping[str, object]) -> ChipConfig:
    """A chip from a YAML file path, a preset name (`"default"`), or an already-parsed mapping."""
    if isinstance(source, Mapping):
        return chip_from_dict(source)
    return chip_from_dict(load_chip_dict(source), source=str(_chip_file(source)))


def apply_overrides(data: Mapping[str, object], overrides: Sequence[str], root: type[_Model] | None = None) -> dict[str, object]:
    """A deep copy of `data` with each `dotted.path=value` set (value parsed as YAML: `64`, `bf16`, `null`).

    Paths are checked against the schema, so a field missing from `data` but valid (e.g. `global_buffer`) can be
    set; an unknown path is an error with a suggestion. All problems are reported at once as a `ConfigError`.
    Values are validated later, by `chip_from_dict`.
    """
    result: dict[str, object] = copy.deepcopy(dict(data))
    problems: list[str] = []
    for item in overrides:
        path_text, sep, value_text = item.partition("=")
        path = [p.strip() for p in path_text.strip().split(".")]
        if not sep or not all(path):
            problems.append(f"override {item!r}: not of the form dotted.path=value; e.g. core.tensor_core.rows=64")
            continue
        model: type[_Model] = root or ChipConfig
        bad = False
        for i, part in enumerate(path):
            if part not in model.model_fields:
                problems.append(unknown_field_problem(path[: i + 1], list(model.model_fields)))
                bad = True
                break
            if i < len(path) - 1:
                bare, _, _ = _unwrap(model.model_fields[part].annotation)
                if not (isinstance(bare, type) and issubclass(bare, _Model)):
                    problems.append(f"{_dotted(path[: i + 1])}: is a value, not a section; cannot set {_dotted(path)}")
                    bad = True
                    break
                model = bare
        if bad:
            continue
        try:
            value = yaml.load(value_text, Loader=_UniqueKeyLoader) if value_text.strip() else ""  # noqa: S506
        except yaml.YAMLError:
            problems.append(f"override {item!r}: value {value_text!r} is not valid YAML; quote strings or fix it")
            continue
        set_dotted(result, path, value)
    if problems:
        raise ConfigError(problems, "overrides")
    return result


def set_dotted(data: dict[str, object], path: Sequence[str], value: object) -> None:
    """data[p0][p1]...[pn] = value, creating (or replacing non-mapping) sections on the way."""
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value
