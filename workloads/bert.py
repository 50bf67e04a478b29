"""BERT model shapes: the configuration of a BERT token-classification model and the named presets."""

from __future__ import annotations

from dataclasses import dataclass

from workloads.errors import WorkloadError

FINETUNED_MODEL = "bert-ner-wnut"


@dataclass(frozen=True, slots=True)
class BertConfig:
    """Shape of a BERT encoder with a token-classification head."""

    name: str
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab_size: int = 30522
    max_positions: int = 512
    type_vocab_size: int = 2
    num_labels: int = 9
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        for field in ("layers", "hidden", "heads", "ffn", "vocab_size", "max_positions", "num_labels"):
            if getattr(self, field) <= 0:
                raise WorkloadError(f"BERT config {self.name!r}: {field} must be a positive integer, got {getattr(self, field)}.")
        if self.hidden % self.heads:
            raise WorkloadError(
                f"BERT config {self.name!r}: hidden ({self.hidden}) must be divisible by heads ({self.heads})."
            )

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


# Google's BERT miniatures (Turc et al. 2019, "Well-Read Students Learn Better") and the original
# BERT-base/large (Devlin et al. 2019); the fine-tuned model is all-MiniLM-L6-v2 (Wang et al. 2020) with a
# 9-way BIO token-classification head.
PRESETS: dict[str, BertConfig] = {
    c.name: c
    for c in (
        BertConfig("bert-tiny", layers=2, hidden=128, heads=2, ffn=512),
        BertConfig("bert-mini", layers=4, hidden=256, heads=4, ffn=1024),
        BertConfig("bert-small", layers=4, hidden=512, heads=8, ffn=2048),
        BertConfig("bert-medium", layers=8, hidden=512, heads=8, ffn=2048),
        BertConfig("bert-base", layers=12, hidden=768, heads=12, ffn=3072),
        BertConfig("bert-large", layers=24, hidden=1024, heads=16, ffn=4096),
        BertConfig(FINETUNED_MODEL, layers=6, hidden=384, heads=12, ffn=1536),
    )
}


def preset(name: str) -> BertConfig:
    """The preset called `name`, or a WorkloadError listing the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise WorkloadError(f"unknown model preset {name!r}; valid presets are: {', '.join(PRESETS)}.") from None
