"""`chipsim infer` and `chipsim eval` from the command line, including every bad input the issue names."""

import shutil
import subprocess
import sys

import pytest


def chipsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chipsim", *args], capture_output=True, text=True, timeout=300)


def test_infer_prints_tokens_tags_and_entities():
    r = chipsim("infer", "Obama visited Microsoft in Seattle")
    assert r.returncode == 0, r.stderr
    assert "[CLS] obama visited microsoft in seattle [SEP]" in r.stdout
    assert "PER   Obama" in r.stdout and "LOC   Seattle" in r.stdout


def test_infer_int8_precision():
    r = chipsim("infer", "Obama visited Microsoft in Seattle", "--precision", "int8")
    assert r.returncode == 0, r.stderr
    assert "B-PER" in r.stdout


def test_long_text_is_truncated_with_a_notice():
    r = chipsim("infer", " ".join(["Seattle"] * 200))
    assert r.returncode == 0, r.stderr
    assert "notice: the text is longer than 128 tokens; its last 74 words were not tagged" in " ".join(r.stdout.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("infer", "   "), 'error: the text to tag is empty; pass a sentence such as "Obama visited Microsoft in Seattle".'),
        (("infer", "x", "--precision", "fp16"), "error: unknown precision 'fp16'; valid precisions are: fp32, int8, bf16."),
        (("workload", "bert-huge"), "error: unknown model preset 'bert-huge'; valid presets are: bert-tiny, bert-mini, bert-small, bert-medium, bert-base, bert-large, bert-ner-wnut."),
    ],
)
def test_bad_input_is_one_sentence_exit_2(args, message):
    r = chipsim(*args)
    assert r.returncode == 2
    assert r.stderr.strip() == message
    assert "Traceback" not in r.stderr


def test_corrupt_weights_file_names_file_and_sha(tmp_path):
    from workloads.model import MODEL_DIR

    shutil.copytree(MODEL_DIR, tmp_path / "m")
    weights = tmp_path / "m" / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    r = chipsim("infer", "Obama", "--model", str(tmp_path / "m"))
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: model file {weights} is corrupt: its sha256 is ")
    assert "the manifest expects" in r.stderr and "Traceback" not in r.stderr


def test_missing_weights_file(tmp_path):
    from workloads.model import MODEL_DIR

    shutil.copytree(MODEL_DIR, tmp_path / "m")
    (tmp_path / "m" / "weights.npz").unlink()
    r = chipsim("eval", "--model", str(tmp_path / "m"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: model file {tmp_path / 'm' / 'weights.npz'} is missing; regenerate it with `python -m workloads.finetune`."
