"""The BERT operator graph: MACs and parameters against hand formulas, structure, conventions, and the CLI."""

from __future__ import annotations

import csv
import dataclasses
import io
import sys
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chipsim.app import cli
from workloads.bert import PRESETS, BertConfig
from workloads.errors import WorkloadError
from workloads.graph import (
    build_graph,
    csv_text,
    encoder_macs,
    op_rows,
    ops,
    param_count,
    total_bytes_read,
    total_bytes_written,
    total_macs,
)
from workloads.ops import DType, OpKind, OpNode, TensorSpec

# ---- hand formulas (written out independently of the builder) ----


def hand_encoder_macs(c: BertConfig, s: int, b: int) -> int:
    h, i = c.hidden, c.ffn
    return c.layers * b * (4 * s * h * h + 2 * s * h * i + 2 * s * s * h)


def hand_total_macs(c: BertConfig, s: int, b: int) -> int:
    return hand_encoder_macs(c, s, b) + b * s * c.hidden * c.num_labels


def hand_params(c: BertConfig) -> int:
    h, i = c.hidden, c.ffn
    embeddings = c.vocab_size * h + c.max_positions * h + c.type_vocab_size * h + 2 * h
    layer = (4 * h * h + 4 * h) + (2 * h * i + i + h) + 4 * h
    classifier = h * c.num_labels + c.num_labels
    return embeddings + c.layers * layer + classifier


def hand_node_count(c: BertConfig) -> int:
    return 5 + c.layers * (11 + 3 * c.heads) + 1


CHECKED = ("bert-tiny", "bert-base", "bert-large", "bert-ner-wnut")
SHAPES = ((1, 1), (128, 1), (64, 3), (512, 2))


@pytest.mark.parametrize("name", CHECKED)
@pytest.mark.parametrize(("seq", "batch"), SHAPES)
def test_macs_and_params_match_hand_formulas(name: str, seq: int, batch: int) -> None:
    c = PRESETS[name]
    g = build_graph(c, seq, batch)
    assert encoder_macs(g) == hand_encoder_macs(c, seq, batch)
    assert total_macs(g) == hand_total_macs(c, seq, batch)
    assert param_count(g) == hand_params(c)
    assert g.number_of_nodes() == hand_node_count(c)


def test_bert_base_seq128_figures() -> None:
    g = build_graph(PRESETS["bert-base"], 128)
    assert encoder_macs(g) == 11_173_625_856
    # Standard BERT-base (embeddings + encoder, no pooler) is 108,891,648; the 9-label head adds 768*9 + 9.
    assert param_count(g) == 108_891_648 + 6_921
    assert sum(op.weight_params for op in ops(g) if op.name != "cls") == 108_891_648


def test_bert_large_params_without_head() -> None:
    g = build_graph(PRESETS["bert-large"], 16)
    # BERT-large is 335,141,888 parameters with its pooler (1024*1024 + 1024 = 1,049,600), which we leave out.
    assert sum(op.weight_params for op in ops(g) if op.name != "cls") == 335_141_888 - 1_049_600


def test_ner_model_params() -> None:
    # all-MiniLM-L6-v2 is 22,713,216 parameters with its pooler (384*384 + 384 = 147,840), which we leave out.
    g = build_graph(PRESETS["bert-ner-wnut"], 128)
    assert param_count(g) == 22_713_216 - 147_840 + 384 * 9 + 9


@settings(max_examples=30, deadline=None)
@given(
    layers=st.integers(1, 3), heads=st.integers(1, 4), head_dim=st.integers(1, 8), ffn=st.integers(1, 32),
    labels=st.integers(1, 5), seq=st.integers(1, 16), batch=st.integers(1, 3),
)
def test_formulas_hold_for_any_small_config(
    layers: int, heads: int, head_dim: int, ffn: int, labels: int, seq: int, batch: int
) -> None:
    c = BertConfig("t", layers=layers, hidden=heads * head_dim, heads=heads, ffn=ffn, vocab_size=50,
                   max_positions=16, num_labels=labels)
    g = build_graph(c, seq, batch)
    assert encoder_macs(g) == hand_encoder_macs(c, seq, batch)
    assert total_macs(g) == hand_total_macs(c, seq, batch)
    assert param_count(g) == hand_params(c)
    assert g.number_of_nodes() == hand_node_count(c)
    assert nx.is_directed_acyclic_graph(g)


# ---- structure ----


@pytest.fixture(scope="module")
def base() -> nx.DiGraph:
    return build_graph(PRESETS["bert-base"], 128, 2)


def test_dag_sources_sink_and_execution_order(base: nx.DiGraph) -> None:
    assert nx.is_directed_acyclic_graph(base)
    assert nx.is_weakly_connected(base)
    assert [n for n in base if base.in_degree(n) == 0] == ["emb.word", "emb.pos", "emb.type"]
    assert [n for n in base if base.out_degree(n) == 0] == ["cls"]
    order = {n: i for i, n in enumerate(base.nodes)}
    assert all(order[u] < order[v] for u, v in base.edges)


def test_node_counts_per_layer(base: nx.DiGraph) -> None:
    c = PRESETS["bert-base"]
    for layer in range(c.layers):
        kinds = [op.kind for op in ops(base) if op.layer == layer]
        assert kinds.count(OpKind.LINEAR) == 3 + 1 + 2  # q, k, v, attn_out, ffn1, ffn2
        assert kinds.count(OpKind.MATMUL) == 2 * c.heads
        assert kinds.count(OpKind.SOFTMAX) == c.heads
        assert kinds.count(OpKind.GELU) == 1
        assert kinds.count(OpKind.ADD) == 2
        assert kinds.count(OpKind.LAYERNORM) == 2
        assert len(kinds) == 11 + 3 * c.heads
    outside = [op.name for op in ops(base) if op.layer == -1]
    assert outside == ["emb.word", "emb.pos", "emb.type", "emb.add", "emb.ln", "cls"]


def test_names_layers_heads_and_dtype(base: nx.DiGraph) -> None:
    for name in ("l3.q", "l3.k", "l3.v", "l3.h7.scores", "l3.h7.softmax", "l3.h7.context", "l3.attn_out",
                 "l3.attn_add", "l3.ln1", "l3.ffn1", "l3.gelu", "l3.ffn2", "l3.ffn_add", "l3.ln2", "cls"):
        assert base.nodes[name]["op"].name == name
    assert base.nodes["l3.h7.softmax"]["op"].head == 7
    assert base.nodes["l3.h7.softmax"]["op"].layer == 3
    assert base.nodes["l3.ffn1"]["op"].head is None
    assert all(op.dtype is DType.FP32 for op in ops(base))


def test_data_flow_and_residual_edges(base: nx.DiGraph) -> None:
    assert set(base.predecessors("l0.attn_add")) == {"l0.attn_out", "emb.ln"}
    assert set(base.predecessors("l5.attn_add")) == {"l5.attn_out", "l4.ln2"}
    assert set(base.predecessors("l5.ffn_add")) == {"l5.ffn2", "l5.ln1"}
    assert set(base.predecessors("l5.h3.scores")) == {"l5.q", "l5.k"}
    assert set(base.predecessors("l5.h3.context")) == {"l5.h3.softmax", "l5.v"}
    assert set(base.predecessors("l5.attn_out")) == {f"l5.h{j}.context" for j in range(12)}
    assert set(base.successors("l4.ln2")) == {"l5.q", "l5.k", "l5.v", "l5.attn_add"}
    assert set(base.predecessors("cls")) == {"l11.ln2"}
    for u, v, tensor in base.edges(data="tensor"):
        assert isinstance(tensor, TensorSpec)
        assert tensor in base.nodes[v]["op"].inputs
        assert tensor.name.startswith(u)
        assert tensor.numel <= base.nodes[u]["op"].output.numel
    assert base.edges["l5.q", "l5.h3.scores"]["tensor"] == TensorSpec("l5.q[h3]", (2, 128, 64))


def test_gemm_dims_batch_convention_and_bytes(base: nx.DiGraph) -> None:
    b, s, h, d, f = 2, 128, 768, 64, 3072
    q = base.nodes["l0.q"]["op"]
    assert (q.m, q.k, q.n, q.gemm_batch) == (b * s, h, h, 1)
    assert q.macs == b * s * h * h
    assert q.bytes_read == (b * s * h + h * h + h) * 4
    assert q.bytes_written == b * s * h * 4
    scores = base.nodes["l0.h0.scores"]["op"]
    assert (scores.m, scores.k, scores.n, scores.gemm_batch) == (s, d, s, b)
    assert scores.input_shapes == ((b, s, d), (b, s, d), (b, 1, s))
    assert scores.output_shape == (b, s, s)
    assert scores.bytes_read == (2 * b * s * d + b * s) * 4
    context = base.nodes["l0.h0.context"]["op"]
    assert (context.m, context.k, context.n, context.gemm_batch) == (s, s, d, b)
    ffn2 = base.nodes["l0.ffn2"]["op"]
    assert (ffn2.m, ffn2.k, ffn2.n) == (b * s, f, h)
    ln = base.nodes["l0.ln1"]["op"]
    assert (ln.m, ln.macs, ln.weight_params, ln.bytes_read) == (None, 0, 2 * h, (b * s * h + 2 * h) * 4)
    word = base.nodes["emb.word"]["op"]
    assert word.weight_params == 30522 * h
    assert word.bytes_read == (b * s + b * s * h) * 4  # ids + gathered rows, not the whole table
    assert base.nodes["emb.add"]["op"].bytes_read == 3 * b * s * h * 4
    assert total_bytes_written(base) == sum(op.output.size_bytes for op in ops(base))
    assert total_bytes_read(base) > total_bytes_written(base)


def test_opnode_is_frozen_and_validates() -> None:
    x = TensorSpec("x", (4, 8))
    op = OpNode("a", OpKind.LINEAR, 0, None, (x,), TensorSpec("a", (4, 2)), DType.FP32, 18, 4, 8, 2, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.m = 3  # type: ignore[misc]
    with pytest.raises(WorkloadError, match=r"^op 'a': a linear needs m, k, n, gemm_batch >= 1, got \(4, 8, None, 1\)\.$"):
        dataclasses.replace(op, n=None)
    with pytest.raises(WorkloadError, match=r"^op 'g': a gelu has no GEMM dims, got \(4, None, None, None\)\.$"):
        OpNode("g", OpKind.GELU, 0, None, (x,), TensorSpec("g", (4, 8)), DType.FP32, 0, m=4)


@pytest.mark.parametrize(
    ("seq", "batch", "message"),
    [
        (0, 1, "sequence length 0 is out of range for 'bert-tiny'; valid lengths are 1..512."),
        (513, 1, "sequence length 513 is out of range for 'bert-tiny'; valid lengths are 1..512."),
        (8, 0, "batch 0 is invalid; the batch must be an integer >= 1."),
    ],
)
def test_bad_shapes_raise(seq: int, batch: int, message: str) -> None:
    with pytest.raises(WorkloadError) as info:
        build_graph(PRESETS["bert-tiny"], seq, batch)
    assert str(info.value) == message


# ---- table rows and CSV ----


def test_grouped_rows_sum_to_the_graph() -> None:
    c = PRESETS["bert-ner-wnut"]
    g = build_graph(c, 32, 2)
    grouped = op_rows(g)
    assert len(grouped) == 5 + c.layers * 14 + 1
    assert sum(r.count for r in grouped) == g.number_of_nodes()
    assert sum(r.macs for r in grouped) == total_macs(g)
    assert sum(r.bytes_read for r in grouped) == total_bytes_read(g)
    row = next(r for r in grouped if r.name == "l2.h*.scores")
    assert (row.count, row.m, row.k, row.n, row.gemm_batch) == (12, 32, 32, 32, 2)
    assert len(op_rows(g, group_heads=False)) == g.number_of_nodes()


def test_csv_has_one_row_per_node(tmp_path: Path) -> None:
    g = build_graph(PRESETS["bert-tiny"], 16, 2)
    rows = list(csv.DictReader(io.StringIO(csv_text(g))))
    assert [r["name"] for r in rows] == list(g.nodes)
    assert sum(int(r["macs"]) for r in rows) == total_macs(g)
    scores = next(r for r in rows if r["name"] == "l1.h1.scores")
    assert (scores["m"], scores["k"], scores["n"], scores["gemm_batch"], scores["head"]) == ("16", "64", "16", "2", "1")
    assert scores["input_shapes"] == "2x16x64 2x16x64 2x1x16"


# ---- CLI ----


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["chipsim", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, " ".join(err.split())


def test_cli_prints_table_and_totals(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "workload", "bert-base", "--seq", "128")
    assert (code, err) == (0, "")
    assert "encoder MACs: 11,173,625,856 (11.174 GMACs)" in out
    assert "total MACs: 11,174,510,592 (11.175 GMACs)" in out
    assert "params: 108,898,569" in out
    assert "l11.h*.softmax" in out and "l11.h7.softmax" not in out
    assert "768,3072,768" not in out and "256,768,3072" not in out  # batch 1: m = 128
    assert "128,768,3072" in out


def test_cli_all_and_csv(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    code, out, _ = run_cli(monkeypatch, capsys, "workload", "bert-tiny", "--seq", "8", "--batch", "3", "--all",
                           "--csv", str(path))
    assert code == 0
    assert "l1.h1.context" in out and "8,8,64 x3" in out
    with path.open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == hand_node_count(PRESETS["bert-tiny"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bert-huge",), "error: unknown model preset 'bert-huge'; valid presets are: bert-tiny, bert-mini, "
                         "bert-small, bert-medium, bert-base, bert-large, bert-ner-wnut."),
        (("bert-base", "--seq", "1024"),
         "error: sequence length 1024 is out of range for 'bert-base'; valid lengths are 1..512."),
        (("bert-base", "--seq", "0"), "error: sequence length 0 is out of range for 'bert-base'; valid lengths are 1..512."),
        (("bert-base", "--batch", "0"), "error: batch 0 is invalid; the batch must be an integer >= 1."),
    ],
)
def test_cli_bad_input_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "workload", *args)
    assert (code, out, err) == (2, "", message)
