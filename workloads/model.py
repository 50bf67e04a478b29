"""The fine-tuned model as shipped: manifest, fp16 weights (checked by sha256), and tokenizer."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from workloads.bert import FINETUNED_MODEL, BertConfig
from workloads.errors import WorkloadError
from workloads.tokenizer import build_tokenizer

MODEL_DIR = Path(__file__).resolve().parent / "data" / FINETUNED_MODEL


@dataclass(frozen=True)
class Model:
    """A BERT token classifier: its config, labels, fp32 weights (by chipsim name) and vocabulary."""

    config: BertConfig
    labels: tuple[str, ...]
    weights: dict[str, np.ndarray]
    vocab: tuple[str, ...]
    max_len: int
    manifest: dict[str, object]
    directory: Path

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return build_tokenizer(list(self.vocab))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_manifest(directory: Path) -> dict[str, object]:
    path = directory / "manifest.json"
    if not path.is_file():
        raise WorkloadError(f"model manifest {path} is missing; regenerate the model with `python -m workloads.finetune`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"model manifest {path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    except UnicodeDecodeError:
        raise WorkloadError(f"model manifest {path} is not UTF-8 text; regenerate the model with `python -m workloads.finetune`.") from None
    required = ("weights_sha256", "config", "labels", "vocab", "max_len")
    if not isinstance(manifest, dict) or any(k not in manifest for k in required):
        raise WorkloadError(f"model manifest {path} is not a chipsim model manifest (a JSON object with {', '.join(required)}); "
                            "regenerate the model with `python -m workloads.finetune`.")
    return manifest


def checked_file(directory: Path, name: str, expected_sha256: str) -> Path:
    """`directory/name`, after checking it exists and its sha256 is the one the manifest recorded."""
    path = directory / name
    if not path.is_file():
        raise WorkloadError(f"model file {path} is missing; regenerate it with `python -m workloads.finetune`.")
    actual = _sha256(path)
    if actual != expected_sha256:
        raise WorkloadError(
            f"model file {path} is corrupt: its sha256 is {actual}, the manifest expects {expected_sha256}."
        )
    return path


def load_model(directory: Path = MODEL_DIR) -> Model:
    """Load and verify the exported model in `directory` (weights.npz + manifest.json)."""
    manifest = _read_manifest(directory)
    path = checked_file(directory, "weights.npz", str(manifest["weights_sha256"]))
    with np.load(path) as npz:
        weights = {k: npz[k].astype(np.float32) for k in npz.files}
    c = manifest["config"]
    assert isinstance(c, dict)
    config = BertConfig(
        FINETUNED_MODEL, layers=c["layers"], hidden=c["hidden"], heads=c["heads"], ffn=c["ffn"],
        vocab_size=c["vocab_size"], max_positions=c["max_positions"], type_vocab_size=c["type_vocab_size"],
        num_labels=c["num_labels"], layer_norm_eps=c["layer_norm_eps"],
    )
    labels = tuple(manifest["labels"])  # type: ignore[arg-type]
    vocab = tuple(manifest["vocab"])  # type: ignore[arg-type]
    return Model(config, labels, weights, vocab, int(manifest["max_len"]), manifest, directory)  # type: ignore[arg-type]
