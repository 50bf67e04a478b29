"""Fuse the operator graph into kernels, epilogues (bias, GELU, residual add, requantize) onto the
vector unit behind each matmul, Q, K and V into one GEMM, and attention (scores, softmax, context) into one on-chip kernel per layer."""

from __future__ import annotations

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
        out.append(Gemm(f"{p}.attn_out", i, base + 2, m, h, h, "ctx", f"{p}.o.w", f"{p}.o.deq", f"{p}.o.b", None, "y", residual="x"))
        out.append(RowNorm(f"{p}.ln1", i, base + 3, m, h, s, "y", (), f"{p}.ln1.g", f"{p}.ln1.b", cfg.layer_norm_eps, "x1", "x1q"))
        out.append(Gemm(f"{p}.ffn1", i, base + 4, m, h, f, "x1q", f"{p}.ffn1.w", f"{p}.ffn1.deq", f"{p}.ffn1.b", "hq", None, gelu=True))
        out.append(Gemm(f"{p}.ffn2", i, base + 5, m, f, h, "hq", f"{p}.ffn2.w", f"{p}.ffn2.deq", f"{p}.ffn2.b", None, "y", residual="x1"))
        out.append(RowNorm(f"{p}.ln2", i, base + 6, m, h, s, "y", (), f"{p}.ln2.g", f"{p}.ln2.b", cfg.layer_norm_eps, "x", "xq"))
    out.append(Gemm("cls", -1, 1 + PHASES_PER_LAYER * cfg.layers, m, h, cfg.num_labels, "xq", "cls.w", "cls.deq", "cls.b", None, "logits"))
    return kernel_graph(out, KernelGraphFacts(workload=facts))
