from workloads.tokenizer import encode_words, split_words


def test_wordpiece_lowercases_splits_punctuation_and_subwords(model):
    tok = model.tokenizer
    words = split_words(tok, "Obama visited Microsoft, héllo @paulwalk")
    assert words == ["Obama", "visited", "Microsoft", ",", "héllo", "@", "paulwalk"]
    enc = encode_words(tok, words, 128)
    assert enc.tokens == ("[CLS]", "obama", "visited", "microsoft", ",", "hello", "@", "paul", "##walk", "[SEP]")
    assert enc.word_ids == (None, 0, 1, 2, 3, 4, 5, 6, 6, None)
    assert enc.first_subtoken == {0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 7}
    assert enc.input_ids[0] == model.vocab.index("[CLS]")


def test_truncation_keeps_cls_sep_and_counts_dropped_words(model):
    enc = encode_words(model.tokenizer, ["word"] * 200, 128)
    assert len(enc.input_ids) == 128
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert enc.truncated_words == 200 - 126


def test_unknown_characters_map_to_unk(model):
    enc = encode_words(model.tokenizer, ["\u2603\u2603"], 16)
    assert enc.tokens == ("[CLS]", "[UNK]", "[SEP]")
