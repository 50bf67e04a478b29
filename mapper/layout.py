"""Lay out every tensor in DRAM, and build the DRAM image of a functional run.

All tensors are row-major 2D at 64-byte-aligned addresses. Matmul operands (weights and the quantized
activations) are int8 on an int8 chip and bf16 on a bf16 chip; everything else is fp32. The host gathers the
word-embedding rows of the input tokens into `emb.in` (an indexed load the ISA leaves to the host); the chip
adds position and token-type embeddings and does everything after.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import networkx as nx
import numpy as np

from isa import DType
from mapper.context import MapperContext
from mapper.kernels import graph_facts, with_facts
from mapper.tiling import align
from workloads import numerics
from workloads.graph import WorkloadFacts
from workloads.quantized import QLinear, QuantizedModel
from workloads.reference import mask_bias


class TensorRole(enum.Enum):
    """Why a tensor is in DRAM: what must cross the pins at least once (parameters and inputs in, outputs out)
    and what a schedule may keep on chip (activations)."""

    PARAMETER = "parameter"  # weights, biases, scales, LayerNorm and embedding tables: read at least once
    INPUT = "input"  # the batch's inputs (gathered word embeddings, attention mask): read at least once
    ACTIVATION = "activation"  # produced and consumed within the run
    OUTPUT = "output"  # the run's result: written at least once


@dataclass(frozen=True, slots=True)
class Tensor:
    name: str
    addr: int
    rows: int
    cols: int
    dtype: DType
    role: TensorRole

    @property
    def row_bytes(self) -> int:
        return self.cols * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.rows * self.row_bytes


@dataclass(frozen=True)
class DramLayout:
    tensors: dict[str, Tensor]
    size_bytes: int

    def __getitem__(self, name: str) -> Tensor:
        return self.tensors[name]

    def bytes_of(self, *roles: TensorRole) -> int:
        return sum(t.nbytes for t in self.tensors.values() if t.role in roles)

    @property
    def compulsory_read_bytes(self) -> int:
        """Every parameter and input once: what any schedule must read from DRAM."""
        return self.bytes_of(TensorRole.PARAMETER, TensorRole.INPUT)

    @property
    def compulsory_write_bytes(self) -> int:
        """Every output once: what any schedule must write to DRAM."""
        return self.bytes_of(TensorRole.OUTPUT)


TensorShape = tuple[str, int, int, DType, TensorRole]


def tensor_shapes(w: WorkloadFacts, q: DType) -> list[TensorShape]:
    """Every DRAM tensor of a BERT token classifier: activations, parameters, inputs and the logits."""
    cfg, s, b = w.config, w.seq_len, w.batch
    m, h, f, n_lab = b * s, cfg.hidden, cfg.ffn, cfg.num_labels
    f32 = DType.FP32
    par, inp, act = TensorRole.PARAMETER, TensorRole.INPUT, TensorRole.ACTIVATION
    shapes = [("emb.in", m, h, f32, inp), ("emb.pos", s, h, f32, par), ("emb.type", 1, h, f32, par),
              ("emb.ln.g", 1, h, f32, par), ("emb.ln.b", 1, h, f32, par), ("mask", b, s, f32, inp)]
    shapes += [(n, m, h, f32, act) for n in ("x", "x1", "y")] + [(n, m, h, q, act) for n in ("xq", "x1q", "ctx")]
    shapes += [("qkv", m, 3 * h, q, act), ("hq", m, f, q, act), ("logits", m, n_lab, f32, TensorRole.OUTPUT)]
    linears = {"qkv": (h, 3 * h), "o": (h, h), "ffn1": (h, f), "ffn2": (f, h)}
    for i in range(cfg.layers):
        for name, (kk, nn) in linears.items():
            shapes += [(f"l{i}.{name}.w", kk, nn, q, par), (f"l{i}.{name}.deq", 1, nn, f32, par), (f"l{i}.{name}.b", 1, nn, f32, par)]
        shapes += [(f"l{i}.{ln}.{p}", 1, h, f32, par) for ln in ("ln1", "ln2") for p in ("g", "b")]
    shapes += [("cls.w", h, n_lab, q, par), ("cls.deq", 1, n_lab, f32, par), ("cls.b", 1, n_lab, f32, par)]
    return shapes


def allocate_dram(g: nx.DiGraph, ctx: MapperContext) -> nx.DiGraph:
    tensors: dict[str, Tensor] = {}
    addr = 0
    q = DType.INT8 if ctx.int8 else DType.BF16
    facts = graph_facts(g)
    if facts.tensors is not None:
        shapes = list(facts.tensors)
    elif facts.workload is not None:
        shapes = tensor_shapes(facts.workload, q)
    else:
        raise AssertionError("allocate_dram needs the workload or an explicit tensor list in the graph's facts")
    for name, rows, cols, dtype, role in shapes:
        tensors[name] = Tensor(name, addr, rows, cols, dtype, role)
        addr += align(rows * cols * dtype.itemsize)
    return with_facts(g, dram=DramLayout(tensors, addr))


def _bf16_bits(x: np.ndarray) -> np.ndarray:
    return (numerics.to_bf16(x).view(np.uint32) >> np.uint32(16)).astype(np.uint16)


def dram_image(layout: DramLayout, qm: QuantizedModel, input_ids: np.ndarray, attention_mask: np.ndarray, int8: bool) -> np.ndarray:
    """The DRAM contents before the run: weights, constants and the batch's inputs ([batch, seq] ids and mask)."""
    dram = np.zeros(layout.size_bytes, dtype=np.uint8)
    w = qm.model.weights

    def put(name: str, value: np.ndarray) -> None:
        t = layout[name]
        data = np.ascontiguousarray(value).reshape(t.rows, t.cols)
        assert data.dtype.itemsize == t.dtype.itemsize, (name, data.dtype, t.dtype)
        dram[t.addr : t.addr + t.nbytes] = data.view(np.uint8).ravel()

    def put_linear(prefix: str, lin: QLinear) -> None:
        put(f"{prefix}.w", lin.w_q if int8 else _bf16_bits(lin.w))
        put(f"{prefix}.deq", lin.deq)
        put(f"{prefix}.b", lin.bias)

    seq = input_ids.shape[1]
    put("emb.in", w["emb.word"][input_ids.ravel()].astype(np.float32))
    put("emb.pos", w["emb.pos"][:seq])
    put("emb.type", w["emb.type"][0])
    put("emb.ln.g", w["emb.ln.g"])
    put("emb.ln.b", w["emb.ln.b"])
    put("mask", np.concatenate([mask_bias(row) for row in attention_mask]))
    for i, layer in enumerate(qm.layers):
        put(f"l{i}.qkv.w", np.concatenate([lin.w_q if int8 else _bf16_bits(lin.w) for lin in (layer.q, layer.k, layer.v)], axis=1))
        put(f"l{i}.qkv.deq", np.concatenate([layer.q.deq, layer.k.deq, layer.v.deq]))
        put(f"l{i}.qkv.b", np.concatenate([layer.q.bias, layer.k.bias, layer.v.bias]))
        for name in ("o", "ffn1", "ffn2"):
            put_linear(f"l{i}.{name}", getattr(layer, name))
        put(f"l{i}.ln1.g", layer.ln1[0])
        put(f"l{i}.ln1.b", layer.ln1[1])
        put(f"l{i}.ln2.g", layer.ln2[0])
        put(f"l{i}.ln2.b", layer.ln2[1])
    put_linear("cls", qm.cls)
    return dram


def read_tensor(dram: np.ndarray, t: Tensor) -> np.ndarray:
    np_dtype = {DType.INT8: np.int8, DType.INT32: np.int32, DType.FP32: np.float32, DType.BF16: np.uint16}[t.dtype]
    return dram[t.addr : t.addr + t.nbytes].view(np_dtype).reshape(t.rows, t.cols)
