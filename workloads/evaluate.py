"""Entity-level evaluation of the model on the held-out test split, in any precision."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workloads import ner
from workloads.model import Model
from workloads.quantized import Precision, QuantizedModel, load_quantized
from workloads.quantized import forward as forward_q
from workloads.reference import word_tags
from workloads.tokenizer import encode_words


@dataclass(frozen=True, slots=True)
class Evaluation:
    precision: Precision
    sentences: int
    scores: ner.Scores
    predictions: tuple[tuple[str, ...], ...]


def test_sentences(model: Model) -> list[ner.Sentence]:
    corpus = ner.load_corpus()
    return [corpus[i] for i in model.manifest["split"]["test"]]  # type: ignore[index]


def evaluate(
    model: Model,
    precision: Precision,
    sentences: list[ner.Sentence] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Evaluation:
    """Tag every sentence (default: the test split) in `precision` and score the entities against gold."""
    qm: QuantizedModel = load_quantized(model, precision, model.directory)
    sents = test_sentences(model) if sentences is None else sentences
    preds: list[tuple[str, ...]] = []
    for k, s in enumerate(sents):
        enc = encode_words(model.tokenizer, s.words, model.max_len)
        logits = forward_q(qm, np.array(enc.input_ids))
        preds.append(tuple(word_tags(model, enc, logits)))
        if progress:
            progress(k + 1)
    scores = ner.score([list(s.tags) for s in sents], [list(p) for p in preds])
    return Evaluation(precision, len(sents), scores, tuple(preds))
