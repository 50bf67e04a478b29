"""Fuse the operator graph into kernels, epilogues (bias, GELU, requantize) onto the vector unit behind each
matmul, the residual add into the LayerNorm that follows it (so the fp32 residual stream lives with the rows a
core normalizes), Q, K and V into one GEMM, and attention (scores, softmax, context) into one on-chip kernel per layer."""

from __future__ import annotations

import functools

import networkx as nx

from mapper.kernels import (
    Attention,
    Bcast,
    Gemm,
    Kernel,
    KernelGraphFacts,
    RowNorm,
    kernel_graph,
)
from workloads.graph import workload_facts

PHASES_PER_LAYER = 7

# Within a layer, the kernel each workload operator (by name) and each DRAM parameter (by its second name part)
# lands in; names outside the encoder layers are the embeddings' or the classifier's.
_KERNEL_OF_PART = {"q": "qkv", "k": "qkv", "v": "qkv", "qkv": "qkv", "attn_out": "attn_out", "attn_add": "attn_out",
                   "o": "attn_out", "ln1": "ln1", "ffn1": "ffn1", "gelu": "ffn1", "ffn2": "ffn2", "ffn_add": "ffn2",
                   "ln2": "ln2"}


@functools.cache
def kernel_of(name: str) -> str:
    """The kernel (and so the per-layer label) that a workload operator or a DRAM tensor belongs to:
    `l3.h5.softmax` -> `l3.attn`, `l3.v` -> `l3.qkv`, `l3.o.w` -> `l3.attn_out`, `emb.pos` -> `emb`,
    `logits` -> `cls`; the attention mask (read by every layer's attention) -> `l0.attn`."""
    head, _, rest = name.partition(".")
    if head[:1] == "l" and head[1:].isdigit() and rest:
        part = rest.split(".")[0].split("[")[0]
        return f"{head}.attn" if part[:1] == "h" and part[1:].isdigit() else f"{head}.{_KERNEL_OF_PART[part]}"
    if name == "mask":
        return "l0.attn"
    return "cls" if head in ("cls", "logits") else "emb"


def fuse_epilogues(workload: nx.DiGraph) -> nx.DiGraph:
    """Kernel graph of a BERT token classifier, from the workload graph's config, sequence length and batch."""
    facts = workload_facts(workload)
    cfg, s, b = facts.config, facts.seq_len, facts.batch
    m, h, f = b * s, cfg.hidden, cfg.ffn
    out: list[Kernel] = [
        RowNorm("emb", -1, 0, m, h, s, "emb.in", (("emb.pos", Bcast.POS), ("emb.type", Bcast.ROW)),
                "emb.ln.g", "emb.ln.b", cfg.layer_norm_eps, "x", "xq")
    ]
    for i in range(cfg.layers):
        p, base = f"l{i}", 1 + PHASES_PER_LAYER * i
        out.append(Gemm(f"{p}.qkv", i, base, m, h, 3 * h, "xq", f"{p}.qkv.w", f"{p}.qkv.deq", f"{p}.qkv.b", "qkv", None, parts=3))
        out.append(Attention(f"{p}.attn", i, base + 1, b, s, cfg.heads, cfg.head_dim, "qkv", "mask", "ctx"))
        out.append(Gemm(f"{p}.attn_out", i, base + 2, m, h, h, "ctx", f"{p}.o.w", f"{p}.o.deq", f"{p}.o.b", None, "y"))
        out.append(RowNorm(f"{p}.ln1", i, base + 3, m, h, s, "y", (("x", Bcast.NONE),), f"{p}.ln1.g", f"{p}.ln1.b", cfg.layer_norm_eps, "x1", "x1q"))
        out.append(Gemm(f"{p}.ffn1", i, base + 4, m, h, f, "x1q", f"{p}.ffn1.w", f"{p}.ffn1.deq", f"{p}.ffn1.b", "hq", None, gelu=True))
        out.append(Gemm(f"{p}.ffn2", i, base + 5, m, f, h, "hq", f"{p}.ffn2.w", f"{p}.ffn2.deq", f"{p}.ffn2.b", None, "y"))
        out.append(RowNorm(f"{p}.ln2", i, base + 6, m, h, s, "y", (("x1", Bcast.NONE),), f"{p}.ln2.g", f"{p}.ln2.b", cfg.layer_norm_eps, "x", "xq"))
    out.append(Gemm("cls", -1, 1 + PHASES_PER_LAYER * cfg.layers, m, h, cfg.num_labels, "xq", "cls.w", "cls.deq", "cls.b", None, "logits"))
    return kernel_graph(out, KernelGraphFacts(workload=facts))
