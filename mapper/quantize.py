"""Quantize to the chip precision with the quantized reference's scales.

int8: every kernel learns the multiplier that quantizes its output for the next matmul (the consumer's
activation scale) and attention its score and context scales, all taken from `workloads.quantized`. bf16 needs
no scales (operands are rounded to bf16; attention scores are scaled by 1/sqrt(head_dim)). Without a quantized
model (timing-only runs of preset models) the scales stay 1.0: timing does not depend on them.
"""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np

from mapper.context import MapperContext
from mapper.kernels import Attention, Gemm, Kernel, RowNorm, kernels, replace_kernels


def quantize(g: nx.DiGraph, ctx: MapperContext) -> nx.DiGraph:
    qm = ctx.qmodel
    new: dict[str, Kernel] = {}
    for k in kernels(g):
        if not ctx.int8:
            if isinstance(k, Attention):
                new[k.name] = dataclasses.replace(k, score_scale=float(np.float32(1.0 / np.sqrt(k.head_dim))))
            continue
        if qm is None:
            continue
        if isinstance(k, RowNorm):
            nxt = qm.layers[k.layer + 1].q if k.name == "emb" else None
            if k.name.endswith(".ln1"):
                nxt = qm.layers[k.layer].ffn1
            elif k.name.endswith(".ln2"):
                nxt = qm.layers[k.layer + 1].q if k.layer + 1 < len(qm.layers) else qm.cls
            new[k.name] = dataclasses.replace(k, out_inv_scale=float(nxt.inv_scale_in))
        elif isinstance(k, Attention):
            layer = qm.layers[k.layer]
            new[k.name] = dataclasses.replace(
                k, score_scale=float(layer.score_scale), ctx_scale=float(layer.ctx_scale),
                out_inv_scale=float(layer.o.inv_scale_in), inv_scale_q=float(layer.inv_scale_q),
                inv_scale_k=float(layer.inv_scale_k), inv_scale_v=float(layer.inv_scale_v),
            )
        elif isinstance(k, Gemm) and k.out_q == "qkv":
            layer = qm.layers[k.layer]
            new[k.name] = dataclasses.replace(k, part_inv_scales=tuple(float(s) for s in (layer.inv_scale_q, layer.inv_scale_k, layer.inv_scale_v)))
        elif isinstance(k, Gemm) and k.out_q == "hq":
            new[k.name] = dataclasses.replace(k, out_inv_scale=float(qm.layers[k.layer].ffn2.inv_scale_in))
    return replace_kernels(g, new)
