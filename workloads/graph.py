"""The BERT token-classification operator graph (networkx) and its totals.

`build_graph(cfg, seq_len, batch)` returns a `networkx.DiGraph` whose nodes carry an `OpNode` under the
attribute `"op"` and whose edges carry the `TensorSpec` that flows along them under `"tensor"`.
Node insertion order (`list(g.nodes)`) is a valid execution order.

Node names (layers `i` and heads `j` count from 0):

    emb.word  emb.pos  emb.type       EMBED      gathers from the word / position / token-type tables
    emb.add                           ADD        sum of the three gathers
    emb.ln                            LAYERNORM
    li.q  li.k  li.v                  LINEAR     H -> H projections with bias
    li.hj.scores                      MATMUL     Q_h K_h^T, scaled by 1/sqrt(head_dim), plus the mask
    li.hj.softmax                     SOFTMAX
    li.hj.context                     MATMUL     P_h V_h
    li.attn_out                       LINEAR     H -> H over the concatenated head contexts
    li.attn_add                       ADD        residual: attn_out + layer input
    li.ln1                            LAYERNORM
    li.ffn1                           LINEAR     H -> I
    li.gelu                           GELU
    li.ffn2                           LINEAR     I -> H
    li.ffn_add                        ADD        residual: ffn2 + ln1
    li.ln2                            LAYERNORM  (the layer output)
    cls                               LINEAR     H -> num_labels (the logits; the only sink)

The three embedding gathers are the sources. Graph inputs that no op produces (`input_ids`,
`position_ids`, `token_type_ids`, `attention_mask`) appear in the ops' `inputs` but are not nodes.
The graph attributes `config`, `seq_len` and `batch` record what was built.
See `workloads/ops.py` for the GEMM-dims, batch and bytes conventions.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace

import networkx as nx

from workloads.bert import BertConfig
from workloads.errors import WorkloadError
from workloads.ops import GEMM_KINDS, DType, OpKind, OpNode, TensorSpec

EMBED_LAYER = -1


def _edge(g: nx.DiGraph, src: str, dst: str, tensor: TensorSpec) -> TensorSpec:
    g.add_edge(src, dst, tensor=tensor)
    return tensor


def _add(g: nx.DiGraph, op: OpNode, producers: tuple[str | None, ...]) -> str:
    """Add `op`; `producers[i]` is the node that makes `op.inputs[i]` (None for a graph input)."""
    if len(producers) != len(op.inputs):
        raise AssertionError(f"op {op.name!r}: {len(producers)} producers for {len(op.inputs)} inputs")
    g.add_node(op.name, op=op)
    for src, tensor in zip(producers, op.inputs, strict=True):
        if src is not None:
            _edge(g, src, op.name, tensor)
    return op.name


def check_shape(cfg: BertConfig, seq_len: int, batch: int) -> None:
    """Raise a WorkloadError unless `seq_len` and `batch` are valid for `cfg`."""
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 1 <= seq_len <= cfg.max_positions:
        raise WorkloadError(
            f"sequence length {seq_len!r} is out of range for {cfg.name!r}; valid lengths are 1..{cfg.max_positions}."
        )
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise WorkloadError(f"batch {batch!r} is invalid; the batch must be an integer >= 1.")


def _linear(name: str, layer: int, x: TensorSpec, n_out: int) -> OpNode:
    rows, k = x.shape
    return OpNode(
        name=name, kind=OpKind.LINEAR, layer=layer, head=None, inputs=(x,),
        output=TensorSpec(name, (rows, n_out)), dtype=DType.FP32,
        weight_params=k * n_out + n_out, m=rows, k=k, n=n_out, gemm_batch=1,
    )


def _elementwise(name: str, kind: OpKind, layer: int, inputs: tuple[TensorSpec, ...], params: int = 0) -> OpNode:
    return OpNode(
        name=name, kind=kind, layer=layer, head=None, inputs=inputs,
        output=TensorSpec(name, inputs[0].shape), dtype=DType.FP32, weight_params=params,
    )


def _embeddings(g: nx.DiGraph, cfg: BertConfig, seq_len: int, batch: int) -> TensorSpec:
    rows, h = batch * seq_len, cfg.hidden
    gathers: list[str] = []
    for table, ids, size in (
        ("word", "input_ids", cfg.vocab_size),
        ("pos", "position_ids", cfg.max_positions),
        ("type", "token_type_ids", cfg.type_vocab_size),
    ):
        name = f"emb.{table}"
        gathers.append(_add(g, OpNode(
            name=name, kind=OpKind.EMBED, layer=EMBED_LAYER, head=None,
            inputs=(TensorSpec(ids, (rows,), DType.INT32),), output=TensorSpec(name, (rows, h)),
            dtype=DType.FP32, weight_params=size * h,
        ), (None,)))
    summed = _elementwise("emb.add", OpKind.ADD, EMBED_LAYER, tuple(g.nodes[s]["op"].output for s in gathers))
    _add(g, summed, tuple(gathers))
    ln = _elementwise("emb.ln", OpKind.LAYERNORM, EMBED_LAYER, (summed.output,), params=2 * h)
    _add(g, ln, ("emb.add",))
    return ln.output


def _attention_head(g: nx.DiGraph, cfg: BertConfig, i: int, j: int, seq_len: int, batch: int,
                    mask: TensorSpec) -> TensorSpec:
    s, d, p = seq_len, cfg.head_dim, f"l{i}.h{j}"
    q, k, v = (TensorSpec(f"l{i}.{t}[h{j}]", (batch, s, d)) for t in "qkv")
    scores = OpNode(
        name=f"{p}.scores", kind=OpKind.MATMUL, layer=i, head=j, inputs=(q, k, mask),
        output=TensorSpec(f"{p}.scores", (batch, s, s)), dtype=DType.FP32, weight_params=0,
        m=s, k=d, n=s, gemm_batch=batch,
    )
    _add(g, scores, (f"l{i}.q", f"l{i}.k", None))
    softmax = OpNode(
        name=f"{p}.softmax", kind=OpKind.SOFTMAX, layer=i, head=j, inputs=(scores.output,),
        output=TensorSpec(f"{p}.softmax", (batch, s, s)), dtype=DType.FP32, weight_params=0,
    )
    _add(g, softmax, (scores.name,))
    context = OpNode(
        name=f"{p}.context", kind=OpKind.MATMUL, layer=i, head=j, inputs=(softmax.output, v),
        output=TensorSpec(f"{p}.context", (batch, s, d)), dtype=DType.FP32, weight_params=0,
        m=s, k=s, n=d, gemm_batch=batch,
    )
    _add(g, context, (softmax.name, f"l{i}.v"))
    return context.output


def _layer(g: nx.DiGraph, cfg: BertConfig, i: int, x: TensorSpec, x_node: str, seq_len: int, batch: int,
           mask: TensorSpec) -> tuple[TensorSpec, str]:
    h, f = cfg.hidden, cfg.ffn
    for t in "qkv":
        _add(g, _linear(f"l{i}.{t}", i, x, h), (x_node,))
    contexts = tuple(_attention_head(g, cfg, i, j, seq_len, batch, mask) for j in range(cfg.heads))
    rows = batch * seq_len
    attn_out = OpNode(
        name=f"l{i}.attn_out", kind=OpKind.LINEAR, layer=i, head=None, inputs=contexts,
        output=TensorSpec(f"l{i}.attn_out", (rows, h)), dtype=DType.FP32,
        weight_params=h * h + h, m=rows, k=h, n=h, gemm_batch=1,
    )
    _add(g, attn_out, tuple(f"l{i}.h{j}.context" for j in range(cfg.heads)))
    attn_add = _elementwise(f"l{i}.attn_add", OpKind.ADD, i, (attn_out.output, x))
    _add(g, attn_add, (attn_out.name, x_node))
    ln1 = _elementwise(f"l{i}.ln1", OpKind.LAYERNORM, i, (attn_add.output,), params=2 * h)
    _add(g, ln1, (attn_add.name,))
    ffn1 = _linear(f"l{i}.ffn1", i, ln1.output, f)
    _add(g, ffn1, (ln1.name,))
    gelu = _elementwise(f"l{i}.gelu", OpKind.GELU, i, (ffn1.output,))
    _add(g, gelu, (ffn1.name,))
    ffn2 = _linear(f"l{i}.ffn2", i, gelu.output, h)
    _add(g, ffn2, (gelu.name,))
    ffn_add = _elementwise(f"l{i}.ffn_add", OpKind.ADD, i, (ffn2.output, ln1.output))
    _add(g, ffn_add, (ffn2.name, ln1.name))
    ln2 = _elementwise(f"l{i}.ln2", OpKind.LAYERNORM, i, (ffn_add.output,), params=2 * h)
    _add(g, ln2, (ffn_add.name,))
    return ln2.output, ln2.name


@dataclass(frozen=True, slots=True)
class WorkloadFacts:
    """What the whole operator graph is: the model's config and the input shape (the graph's one typed fact)."""

    config: BertConfig
    seq_len: int
    batch: int


FACTS_KEY = "facts"


def workload_facts(g: nx.DiGraph) -> WorkloadFacts:
    facts = g.graph.get(FACTS_KEY)
    if not isinstance(facts, WorkloadFacts):
        raise TypeError(f"graph carries no WorkloadFacts (got {type(facts).__name__}); build it with build_graph")
    return facts


def build_graph(cfg: BertConfig, seq_len: int, batch: int = 1) -> nx.DiGraph:
    """The fp32 operator graph of BERT token classification for `batch` sequences of `seq_len` tokens."""
    check_shape(cfg, seq_len, batch)
    g = nx.DiGraph(**{FACTS_KEY: WorkloadFacts(cfg, seq_len, batch)})
    x = _embeddings(g, cfg, seq_len, batch)
    x_node = "emb.ln"
    # Additive mask (0 or a large negative per key position), broadcast over heads and query rows.
    mask = TensorSpec("attention_mask", (batch, 1, seq_len))
    for i in range(cfg.layers):
        x, x_node = _layer(g, cfg, i, x, x_node, seq_len, batch, mask)
    _add(g, _linear("cls", EMBED_LAYER, x, cfg.num_labels), (x_node,))
    return g


def ops(g: nx.DiGraph) -> list[OpNode]:
    """The graph's ops in execution (insertion) order."""
    return [g.nodes[name]["op"] for name in g.nodes]


def total_macs(g: nx.DiGraph) -> int:
    return sum(op.macs for op in ops(g))


def encoder_macs(g: nx.DiGraph) -> int:
    """MACs of the encoder layers only (no embeddings, no classifier)."""
    return sum(op.macs for op in ops(g) if op.layer >= 0)


def param_count(g: nx.DiGraph) -> int:
    return sum(op.weight_params for op in ops(g))


def total_bytes_read(g: nx.DiGraph) -> int:
    return sum(op.bytes_read for op in ops(g))


def total_bytes_written(g: nx.DiGraph) -> int:
    return sum(op.bytes_written for op in ops(g))


def gemm_ops(g: nx.DiGraph) -> list[OpNode]:
    return [op for op in ops(g) if op.kind in GEMM_KINDS]


@dataclass(frozen=True, slots=True)
class OpRow:
    """One row of the per-op table: a single op, or the `count` per-head ops of one kind in one layer."""

    name: str
    kind: OpKind
    count: int
    m: int | None
    k: int | None
    n: int | None
    gemm_batch: int | None
    macs: int
    weight_params: int
    bytes_read: int
    bytes_written: int


def op_rows(g: nx.DiGraph, *, group_heads: bool = True) -> list[OpRow]:
    """Per-op table rows in execution order; with `group_heads`, per-head ops of a layer become one row per kind
    (named `li.h*.kind`, `count` = heads) placed where the first head's op stands."""
    rows: list[OpRow] = []
    index: dict[str, int] = {}
    for op in ops(g):
        if group_heads and op.head is not None:
            key = f"l{op.layer}.h*.{op.name.rsplit('.', 1)[1]}"
        else:
            key = op.name
        row = OpRow(op.name if key == op.name else key, op.kind, 1, op.m, op.k, op.n, op.gemm_batch, op.macs,
                    op.weight_params, op.bytes_read, op.bytes_written)
        if key in index:
            old = rows[index[key]]
            rows[index[key]] = replace(
                old, count=old.count + 1, macs=old.macs + row.macs, weight_params=old.weight_params + row.weight_params,
                bytes_read=old.bytes_read + row.bytes_read, bytes_written=old.bytes_written + row.bytes_written,
            )
        else:
            index[key] = len(rows)
            rows.append(row)
    return rows


CSV_COLUMNS: tuple[str, ...] = (
    "name", "kind", "layer", "head", "input_shapes", "output_shape", "dtype", "m", "k", "n", "gemm_batch",
    "macs", "weight_params", "bytes_read", "bytes_written",
)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def csv_text(g: nx.DiGraph) -> str:
    """One row per node (all heads, execution order) with the columns of `CSV_COLUMNS`, as CSV text."""
    fh = io.StringIO()
    out = csv.writer(fh)
    out.writerow(CSV_COLUMNS)
    for op in ops(g):
        out.writerow((
            op.name, op.kind.value, op.layer, "" if op.head is None else op.head,
            " ".join(_shape_text(s) for s in op.input_shapes), _shape_text(op.output_shape), op.dtype.value,
            *("" if d is None else d for d in (op.m, op.k, op.n, op.gemm_batch)),
            op.macs, op.weight_params, op.bytes_read, op.bytes_written,
        ))
    return fh.getvalue()
