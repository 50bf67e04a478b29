"""The NumPy references against the training framework's stored logits, and against each other."""

import numpy as np
import pytest

from workloads import numerics as num
from workloads.model import MODEL_DIR, checked_file
from workloads.quantized import Precision, load_quantized
from workloads.quantized import forward as forward_q
from workloads.reference import forward, tag_text


@pytest.fixture(scope="module")
def fixtures(model):
    path = checked_file(MODEL_DIR, "fixtures.npz", model.manifest["fixtures_sha256"])
    with np.load(path) as f:
        n = len([k for k in f.files if k.startswith("ids_")])
        return [(f[f"ids_{k}"], f[f"mask_{k}"], f[f"logits_{k}"]) for k in range(n)]


def test_fp32_reference_matches_training_framework_logits(model, fixtures):
    assert len(fixtures) >= 6
    for ids, mask, expected in fixtures:
        got = forward(model, ids, mask)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_padding_does_not_change_real_token_logits(model, fixtures):
    ids, mask, _ = fixtures[0]
    assert mask.min() == 0, "fixture 0 is the padded one"
    real = int(mask.sum())
    np.testing.assert_allclose(forward(model, ids, mask)[:real], forward(model, ids[:real])[:real], atol=1e-5)


@pytest.mark.parametrize("precision", [Precision.INT8, Precision.BF16])
def test_quantized_references_agree_with_fp32_on_fixture_tags(model, fixtures, precision):
    qm = load_quantized(model, precision)
    agree = total = 0
    for ids, mask, _ in fixtures:
        real = mask > 0
        a = forward(model, ids, mask)[real].argmax(-1)
        b = forward_q(qm, ids, mask)[real].argmax(-1)
        agree += int((a == b).sum())
        total += int(real.sum())
    assert agree / total >= 0.97


def test_int8_reference_is_not_fp32_in_disguise(model, fixtures):
    ids, mask, _ = fixtures[1]
    q = forward_q(load_quantized(model, Precision.INT8), ids, mask)
    f = forward(model, ids, mask)
    diff = np.abs(q - f).max()
    assert 1e-4 < diff < 1.5, diff


def test_infer_tags_the_example_sentence(model):
    t = tag_text(model, "Obama visited Microsoft in Seattle")
    assert t.encoding.tokens[0] == "[CLS]" and t.encoding.tokens[-1] == "[SEP]"
    assert [(e.type, e.text) for e in t.entities][:1] == [("PER", "Obama")]
    assert ("LOC", "Seattle") in [(e.type, e.text) for e in t.entities]


def test_numerics_primitives():
    x = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]], dtype=np.float32)
    from scipy.special import erf

    np.testing.assert_allclose(num.gelu(x), 0.5 * x * (1 + erf(x / np.sqrt(2))), rtol=1e-6, atol=1e-7)
    assert num.quantize(np.array([0.5, 1.5, -0.5, 200.0, -200.0], np.float32), np.float32(1.0)).tolist() == [0, 2, 0, 127, -127]
    a = np.random.default_rng(0).integers(-127, 128, (33, 300)).astype(np.int8)
    b = np.random.default_rng(1).integers(-127, 128, (300, 17)).astype(np.int8)
    np.testing.assert_array_equal(num.int8_matmul(a, b), a.astype(np.int64) @ b.astype(np.int64))
    v = np.array([1.0, 1.00390625, 1.01171875, -2.5e-3], np.float32)  # ties round to even in bf16
    assert num.to_bf16(v).tolist() == [1.0, 1.0, 1.015625, np.float32(-0.0025024414)]
    p = num.softmax(np.array([[1.0, 2.0, 3.0]], np.float32))
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-6)


def test_eval_on_test_split_matches_export_and_int8_drop_is_under_one_point(model):
    from workloads.evaluate import evaluate

    fp32 = evaluate(model, Precision.FP32)
    assert fp32.sentences == 478 and fp32.scores.support == 283
    # The exporter scored the same split with seqeval through the training framework.
    assert abs(fp32.scores.f1 - model.manifest["test_f1"]["seqeval_micro"]) < 0.005
    int8 = evaluate(model, Precision.INT8)
    assert fp32.scores.f1 - int8.scores.f1 < 0.01
