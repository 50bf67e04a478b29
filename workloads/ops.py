"""The operator record of the workload graph: op kinds, tensor specs, and the per-node `OpNode`.

Conventions (the mapper and the reports rely on them):

- Shapes are row-major. Activations that feed a linear layer are 2-D `(batch*seq, features)`; per-head
  attention tensors are 3-D `(batch, seq, head_dim)` or `(batch, seq, seq)`.
- GEMM dims: a node of kind LINEAR or MATMUL computes `gemm_batch` independent products
  `C[m, n] = A[m, k] @ B[k, n]`, so `macs = gemm_batch * m * k * n`.
  LINEAR folds the batch into the rows (`m = batch*seq`, `gemm_batch = 1`) because every sequence shares
  the weight; a per-head MATMUL (activation x activation) keeps one product per sequence
  (`m = seq`, `gemm_batch = batch`) because each sequence has its own K and V.
  Other kinds have `m = k = n = gemm_batch = None` and zero MACs.
- Bytes: `bytes_read` = every input tensor + the weights the op touches; `bytes_written` = the output tensor;
  each at its dtype's itemsize. A gather (EMBED) touches only the table rows it gathers (one row per output
  row), not the whole table, although `weight_params` counts the whole table.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from workloads.errors import WorkloadError


class OpKind(enum.Enum):
    EMBED = "embed"          # table gather, one row per token id
    LINEAR = "linear"        # activation x weight (+ bias)
    MATMUL = "matmul"        # activation x activation (per-head attention)
    SOFTMAX = "softmax"      # row softmax
    GELU = "gelu"            # elementwise erf-GELU
    ADD = "add"              # elementwise sum (embedding sum, residuals)
    LAYERNORM = "layernorm"  # row LayerNorm with gamma/beta


class DType(enum.Enum):
    INT32 = "int32"
    FP32 = "fp32"

    @property
    def itemsize(self) -> int:
        return 4


GEMM_KINDS: frozenset[OpKind] = frozenset({OpKind.LINEAR, OpKind.MATMUL})


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A named dense tensor: what flows along an edge or enters an op."""

    name: str
    shape: tuple[int, ...]
    dtype: DType = DType.FP32

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def size_bytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass(frozen=True, slots=True)
class OpNode:
    """One operator of the workload graph (stored on the node as `g.nodes[name]["op"]`)."""

    name: str
    kind: OpKind
    layer: int                   # encoder layer index; -1 for embeddings and the classifier
    head: int | None             # attention head index for per-head ops, else None
    inputs: tuple[TensorSpec, ...]
    output: TensorSpec
    dtype: DType
    weight_params: int           # parameters owned by this op (weights + bias, gamma + beta, tables)
    m: int | None = None
    k: int | None = None
    n: int | None = None
    gemm_batch: int | None = None

    def __post_init__(self) -> None:
        dims = (self.m, self.k, self.n, self.gemm_batch)
        if self.kind in GEMM_KINDS:
            if any(d is None or d < 1 for d in dims):
                raise WorkloadError(f"op {self.name!r}: a {self.kind.value} needs m, k, n, gemm_batch >= 1, got {dims}.")
        elif any(d is not None for d in dims):
            raise WorkloadError(f"op {self.name!r}: a {self.kind.value} has no GEMM dims, got {dims}.")
        if self.weight_params < 0:
            raise WorkloadError(f"op {self.name!r}: weight_params must be >= 0, got {self.weight_params}.")

    @property
    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(t.shape for t in self.inputs)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output.shape

    @property
    def macs(self) -> int:
        if self.m is None or self.k is None or self.n is None or self.gemm_batch is None:
            return 0
        return self.gemm_batch * self.m * self.k * self.n

    @property
    def weight_bytes_read(self) -> int:
        if self.kind is OpKind.EMBED:
            return self.output.numel * self.dtype.itemsize
        return self.weight_params * self.dtype.itemsize

    @property
    def bytes_read(self) -> int:
        return sum(t.size_bytes for t in self.inputs) + self.weight_bytes_read

    @property
    def bytes_written(self) -> int:
        return self.output.size_bytes
