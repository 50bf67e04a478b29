from workloads import ner


def test_corpus_maps_wnut_types_onto_four_types():
    corpus = ner.load_corpus()
    assert len(corpus) == 2394
    tags = {t for s in corpus for t in s.tags}
    assert tags == set(ner.LABELS)
    assert ner.map_tag("B-sportsteam") == "B-ORG"
    assert ner.map_tag("I-facility") == "I-LOC"
    assert ner.map_tag("B-tvshow") == "B-MISC"
    assert ner.map_tag("B-person") == "B-PER"


def test_split_is_seeded_disjoint_and_complete():
    a, b = ner.make_split(2394), ner.make_split(2394)
    assert a == b
    assert (len(a["train"]), len(a["dev"]), len(a["test"])) == (1677, 239, 478)
    assert sorted(a["train"] + a["dev"] + a["test"]) == list(range(2394))


def test_entities_follow_conlleval_chunking():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "B-ORG", "I-MISC", "I-MISC", "B-LOC", "B-LOC"]
    got = [(e.type, e.start, e.end) for e in ner.entities(tags)]
    assert got == [("PER", 0, 2), ("LOC", 3, 4), ("ORG", 4, 5), ("MISC", 5, 7), ("LOC", 7, 8), ("LOC", 8, 9)]


def test_score_micro_prf_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-MISC"]]
    s = ner.score(gold, pred)
    # gold: PER(0-2), LOC(3), ORG ; pred: PER(0-2), ORG(3), ORG, MISC -> tp = 2
    assert s.support == 3
    assert abs(s.precision - 2 / 4) < 1e-12 and abs(s.recall - 2 / 3) < 1e-12
    assert abs(s.f1 - 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)) < 1e-12
    assert s.per_type["LOC"] == (0.0, 0.0, 0.0, 1)
