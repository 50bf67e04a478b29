"""A corpus of bad inputs across every command: each one is exit code 2, one line on stderr naming the problem, no
traceback, and no file changed. Cases are generated (every chip field with values its type cannot take, corrupted
assembly, random binaries, broken YAML of every kind) and hand-written (the reported defects). The CLI runs in
this process (`chipsim.app.cli.main`), so hundreds of cases take seconds."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import types
import typing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from chipsim.app.cli import main
from chipsim.config import ChipConfig

ROOT = Path(__file__).resolve().parent.parent
RUN_FILE = str(ROOT / "bert_ner.yaml")

GOOD_ASM = """\
.mesh 1 1
.core 0
    dma_ld sram=spad:0x0 dram=0x0 rows=4 cols=4 stride=4 dtype=int8
    vexp dst=acc:0x0 src=acc:0x0 rows=4 cols=4
    matmul a=spad:0x0 b=spad:0x0 c=acc:0x0 m=4 k=4 n=4 prec=int8 acc=0 pre=0 tb=0
    halt
"""
SWEEP_OK = "name: s\nbase: default\naxes: {dram.type: [hbm2e]}\n"


def _leaf_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, object]]:
    """(dotted path, annotation) of every leaf field of a config model."""
    out: list[tuple[str, object]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        inner = [a for a in typing.get_args(ann) if a is not type(None)] if isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union else [ann]
        sub = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if sub is not None:
            out += _leaf_fields(sub, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", ann))
    return out


def _bad_values(ann: object) -> list[str]:
    """Values (as --set text) that a field of this annotation cannot take."""
    text = str(ann)
    if "bool" in text:
        return ["maybe", "[true]", "2"]
    if "int" in text or "float" in text:
        return ["-1", "abc", "[1, 2]", "{a: 1}", "1e400"]
    if "Enum" in text or "Dataflow" in text or "Precision" in text or "DramType" in text or "enum" in text:
        return ["bogus", "12", "[ws]"]
    return ["[1, 2]", "{a: 1}"]


def _chip_set_cases() -> list[tuple[str, list[str]]]:
    cases = []
    for path, ann in _leaf_fields(ChipConfig):
        if path in ("name", "global_buffer"):
            continue
        for value in _bad_values(ann):
            cases.append((f"chip --set {path}={value}", ["chip", "default", "--set", f"{path}={value}"]))
    return cases


def _asm_cases() -> list[tuple[str, str]]:
    """Valid lines with one field corrupted, unknown mnemonics, bad directives: (label, program text)."""
    lines = GOOD_ASM.splitlines()
    body = [i for i, line in enumerate(lines) if line.startswith("    ") and "=" in line]
    cases = []
    for i in body:
        for j, token in enumerate(lines[i].split()[1:], start=1):
            key = token.split("=")[0]
            for bad in ("-1", "99999999999999", "xyz", "spad:-4", ""):
                words = lines[i].split()
                words[j] = f"{key}={bad}"
                text = "\n".join(lines[:i] + ["    " + " ".join(words)] + lines[i + 1:]) + "\n"
                cases.append((f"asm line {i} {key}={bad}", text))
    cases += [
        ("asm unknown mnemonic", GOOD_ASM.replace("vexp", "vfoo")),
        ("asm extra field", GOOD_ASM.replace("rows=4 cols=4\n    matmul", "rows=4 cols=4 bogus=1\n    matmul")),
        ("asm bad mesh", GOOD_ASM.replace(".mesh 1 1", ".mesh 70000 70000")),
        ("asm core out of mesh", GOOD_ASM.replace(".core 0", ".core 5")),
        ("asm binary noise", "\x00\x01\x02garbage\n"),
    ]
    return cases


def _yaml_cases() -> list[tuple[str, bytes]]:
    bomb = "a: &a [x, x]\n" + "".join(f"l{i}: &l{i} [*{'a' if i == 1 else f'l{i - 1}'}, *{'a' if i == 1 else f'l{i - 1}'}]\n" for i in range(1, 25))
    return [
        ("non-UTF-8", b"chip: default\n# caf\xe9\n"),
        ("deep nesting", ("chip: " + "[" * 500 + "]" * 500 + "\n").encode()),
        ("deep mappings", ("chip: " + "{a: " * 200 + "1" + "}" * 200 + "\n").encode()),
        ("alias bomb", (bomb + "chip: default\n").encode()),
        ("list key", b"chip: {[1,2]: 3}\n"),
        ("mapping key", b"chip: {{a: 1}: 3}\n"),
        ("syntax error", b"chip: [default\n"),
        ("tab indentation", b"chip:\n\tmesh: 1\n"),
        ("duplicate key", b"chip: default\nchip: edge\n"),
        ("a list", b"- chip\n- default\n"),
        ("a number", b"42\n"),
        ("empty", b""),
        ("null chip", b"chip: null\n"),
        ("unknown section", b"chip: default\nworkloads: {}\n"),
        ("unknown preset", b"chip: nonesuch\n"),
        ("bad model", b"chip: default\nworkload: {model: bert-huge}\n"),
        ("negative batch", b"chip: default\nworkload: {batch: -3}\n"),
        ("huge batch", b"chip: default\nworkload: {batch: 100000}\n"),
        ("huge mesh", b"chip: {name: x, clock_mhz: 1000.0, technology_nm: 7, mesh: {rows: 64, cols: 64}}\n"),
        ("seq too long", b"chip: default\nfunctional: false\nworkload: {model: bert-base, seq_len: 4096}\n"),
        ("binary file", bytes(range(256)) * 4),
    ]


def _cases(tmp: Path) -> list[tuple[str, list[str]]]:
    """Every case as (label, argv); the files they name are written into `tmp`."""
    cases: list[tuple[str, list[str]]] = list(_chip_set_cases())
    for label, data in _yaml_cases():
        f = tmp / f"y_{hashlib.sha1(label.encode()).hexdigest()[:8]}.yaml"
        f.write_bytes(data)
        cases += [(f"run {label}", ["run", str(f), "--timing-only", "--out", str(tmp / "new_out")]),
                  (f"chip {label}", ["chip", str(f)])]
        if label not in ("a list", "a number", "empty"):
            sweep = tmp / f"s_{f.name}"
            sweep.write_bytes(data.replace(b"chip: default\n", b"") if label != "non-UTF-8" else data)
            cases.append((f"sweep {label}", ["sweep", str(sweep), "--out", str(tmp / "new_sweep")]))
    for label, text in _asm_cases():
        f = tmp / f"a_{hashlib.sha1(label.encode()).hexdigest()[:8]}.s"
        f.write_text(text)
        cases.append((label, ["asm", str(f), "-o", str(tmp / "new.bin")]))
        cases.append((f"exec {label}", ["exec", str(f), "--set", "mesh.rows=1", "--set", "mesh.cols=1"]))
    rng = random.Random(20161)
    for i in range(40):
        f = tmp / f"b_{i}.bin"
        head = b"CISA" + bytes([1, 0]) if i % 2 else b""
        f.write_bytes(head + rng.randbytes(rng.randrange(0, 300)))
        cases.append((f"disasm random {i}", ["disasm", str(f)]))
    (tmp / "latin1.s").write_bytes(b".mesh 1 1\n# caf\xe9\n")
    (tmp / "plain.txt").write_text("hello\n")
    (tmp / "sweep_ok.yaml").write_text(SWEEP_OK)
    (tmp / "corrupt").mkdir()
    (tmp / "corrupt" / "sweep.sqlite").write_bytes(b"this is not a database" * 100)
    (tmp / "emptydb").mkdir()
    sqlite3.connect(tmp / "emptydb" / "sweep.sqlite").execute("CREATE TABLE x (y)").connection.close()
    (tmp / "existing.csv").write_text("keep me\n")
    (tmp / "afile").write_text("a file, not a folder\n")
    (tmp / "notempty").mkdir()
    (tmp / "notempty" / "keep.txt").write_text("keep\n")
    (tmp / "good.s").write_text(GOOD_ASM)
    (tmp / "listmodel").mkdir()
    (tmp / "listmodel" / "manifest.json").write_text("[1, 2, 3]\n")
    (tmp / "badjsonmodel").mkdir()
    (tmp / "badjsonmodel" / "manifest.json").write_text("{not json\n")
    (tmp / "sweep_escape.yaml").write_text("name: ../../../x\nbase: default\naxes: {dram.type: [hbm2e]}\n")
    (tmp / "sweep_bad_sampling.yaml").write_text(SWEEP_OK + "sampling: {method: nsga2}\n")
    cases += [
        # the reported defects
        ("infer undecodable argv", ["infer", "Ob\udcff\udcfema"]),
        ("infer bad precision", ["infer", "hello", "--precision", "fp64"]),
        ("eval bad precision", ["eval", "--precision", "int4"]),
        ("infer manifest is a list", ["infer", "hello", "--model", str(tmp / "listmodel")]),
        ("infer manifest not JSON", ["infer", "hello", "--model", str(tmp / "badjsonmodel")]),
        ("eval manifest is a list", ["eval", "--model", str(tmp / "listmodel")]),
        ("run --set bad value", ["run", RUN_FILE, "--set", "workload.batch=abc", "--out", str(tmp / "o1")]),
        ("run --set dram={}", ["run", RUN_FILE, "--set", "chip.dram={}", "--out", str(tmp / "o1")]),
        ("run --set unknown", ["run", RUN_FILE, "--set", "dram={}", "--out", str(tmp / "o1")]),
        ("run --set no equals", ["run", RUN_FILE, "--set", "workload.batch", "--out", str(tmp / "o1")]),
        ("run --out is a file", ["run", RUN_FILE, "--timing-only", "--out", str(tmp / "afile")]),
        ("run --out under a file", ["run", RUN_FILE, "--timing-only", "--out", str(tmp / "afile" / "sub")]),
        ("run --out not empty", ["run", RUN_FILE, "--timing-only", "--out", str(tmp / "notempty")]),
        ("run --out unwritable", ["run", RUN_FILE, "--timing-only", "--out", "/proc/chipsim-out"]),
        ("run --trace exists", ["run", RUN_FILE, "--timing-only", "--out", str(tmp / "o2"), "--trace", str(tmp / "existing.csv")]),
        ("run --trace is a folder", ["run", RUN_FILE, "--timing-only", "--out", str(tmp / "o2"), "--trace", str(tmp / "notempty")]),
        ("run --trace in missing folder", ["run", RUN_FILE, "--timing-only", "--out", str(tmp / "o2"), "--trace", str(tmp / "nope" / "t.json")]),
        ("run --eval timing only", ["run", RUN_FILE, "--timing-only", "--eval", "--out", str(tmp / "o2")]),
        ("run missing file", ["run", str(tmp / "missing.yaml")]),
        ("run a folder", ["run", str(tmp / "notempty")]),
        ("run no file", ["run"]),
        ("gemm negative", ["gemm", "128", "768", "-5"]),
        ("gemm zero", ["gemm", "0", "768", "5"]),
        ("gemm float text", ["gemm", "1e9", "1e9", "1e9"]),
        ("gemm huge", ["gemm", "99999999999999999999", "1", "1"]),
        ("gemm too many MACs", ["gemm", "60000", "60000", "60000"]),
        ("gemm bad dataflow", ["gemm", "8", "8", "8", "--dataflow", "xs"]),
        ("gemm huge array", ["gemm", "8", "8", "8", "--rows", "70000"]),
        ("chip on a run file", ["chip", RUN_FILE]),
        ("chip unknown preset", ["chip", "nonesuch"]),
        ("asm output exists", ["asm", str(tmp / "good.s"), "-o", str(tmp / "existing.csv")]),
        ("asm output is a folder", ["asm", str(tmp / "good.s"), "-o", str(tmp / "notempty")]),
        ("asm non-UTF-8", ["asm", str(tmp / "latin1.s"), "-o", str(tmp / "new2.bin")]),
        ("asm missing", ["asm", str(tmp / "missing.s"), "-o", str(tmp / "new2.bin")]),
        ("disasm a text file", ["disasm", str(tmp / "plain.txt")]),
        ("disasm /dev/zero", ["disasm", "/dev/zero"]),
        ("disasm missing", ["disasm", str(tmp / "missing.bin")]),
        ("exec missing", ["exec", str(tmp / "missing.s")]),
        ("exec wrong mesh", ["exec", str(tmp / "good.s"), "--chip", "default"]),
        ("workload --csv exists", ["workload", "bert-tiny", "--csv", str(tmp / "existing.csv")]),
        ("workload bad model", ["workload", "bert-huge"]),
        ("workload bad seq", ["workload", "bert-tiny", "--seq", "0"]),
        ("results corrupt store", ["results", str(tmp / "corrupt")]),
        ("results foreign sqlite", ["results", str(tmp / "emptydb")]),
        ("results missing store", ["results", str(tmp / "notempty")]),
        ("results -o exists", ["results", str(tmp / "corrupt"), "-o", str(tmp / "existing.csv")]),
        ("results bad format", ["results", str(tmp / "corrupt"), "--format", "xlsx"]),
        ("report corrupt store", ["report", str(tmp / "corrupt")]),
        ("report missing store", ["report", str(tmp / "notempty")]),
        ("report bad heatmap", ["report", str(tmp / "corrupt"), "--heatmap", "x"]),
        ("sweep escaping name", ["sweep", str(tmp / "sweep_escape.yaml")]),
        ("sweep search without budget", ["sweep", str(tmp / "sweep_bad_sampling.yaml"), "--out", str(tmp / "s1")]),
        ("sweep --max-points 0", ["sweep", str(tmp / "sweep_ok.yaml"), "--out", str(tmp / "s1"), "--max-points", "0"]),
        ("sweep --workers 0", ["sweep", str(tmp / "sweep_ok.yaml"), "--out", str(tmp / "s1"), "--workers", "0"]),
        ("sweep --dask not a url", ["sweep", str(tmp / "sweep_ok.yaml"), "--out", str(tmp / "s1"), "--dask", "not a url"]),
        ("sweep --out is a file", ["sweep", str(tmp / "sweep_ok.yaml"), "--out", str(tmp / "afile")]),
        ("sweep --out not empty", ["sweep", str(tmp / "sweep_ok.yaml"), "--out", str(tmp / "notempty")]),
        ("sweep missing", ["sweep", str(tmp / "missing.yaml")]),
        ("unknown command", ["bogus"]),
        ("unknown option", ["run", RUN_FILE, "--bogus"]),
    ]
    return cases


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p)] = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def test_corpus_is_large(tmp_path: Path) -> None:
    assert len(_cases(tmp_path)) >= 300


def test_every_bad_input_is_one_line_exit_2_and_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = _cases(tmp_path)
    watched = [ROOT / "bert_ner.yaml", ROOT / "README.md"]
    before_repo = {p: p.read_bytes() for p in watched}
    failures = []
    for label, argv in cases:
        before = _snapshot(tmp_path)
        capsys.readouterr()
        with pytest.raises(SystemExit) as ended:
            main(argv)
        out = capsys.readouterr()
        lines = [line for line in out.err.splitlines() if line.strip()]
        problems = []
        if ended.value.code != 2:
            problems.append(f"exit {ended.value.code}")
        if len(lines) != 1 or not lines[0].startswith("error: "):
            problems.append(f"stderr {out.err[:300]!r}")
        if "Traceback" in out.err + out.out:
            problems.append("traceback")
        if _snapshot(tmp_path) != before:
            problems.append("a file changed")
        if problems:
            failures.append(f"{label} ({' '.join(argv)[:120]}): {'; '.join(problems)}")
    assert {p: p.read_bytes() for p in watched} == before_repo
    assert not failures, f"{len(failures)} of {len(cases)} bad inputs misbehaved:\n" + "\n".join(failures)


LEAVES = [path for path, _ in _leaf_fields(ChipConfig)]
YAML_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["null", "true", "[]", "{}", "[1, 2]", "{a: 1}", "ws", "int8", "hbm2e", "''", "'x'", "1e9", "-0"]),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(sets=st.lists(st.tuples(st.sampled_from(LEAVES), YAML_VALUES), min_size=1, max_size=4))
def test_random_chip_overrides_are_a_chip_or_a_config_error(sets: list[tuple[str, str]]) -> None:
    """Hypothesis over every chip field and arbitrary YAML values: a valid chip or one ConfigError, nothing else."""
    from chipsim.config import ConfigError, apply_overrides, chip_from_dict, load_chip_dict

    try:
        chip = chip_from_dict(apply_overrides(load_chip_dict("default"), [f"{p}={v}" for p, v in sets]))
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert chip.num_cores >= 1 and chip.peak_macs_per_cycle >= 1


def test_a_grid_too_large_to_plan_is_refused_at_once(tmp_path: Path) -> None:
    from chipsim.app.sweep_plan import SweepError, build_plan, parse_sweep

    axes = {"core.tensor_core.rows": list(range(1, 101)), "core.tensor_core.cols": list(range(1, 101)),
            "clock_mhz": [float(c) for c in range(100, 190)]}  # 900,000 points
    with pytest.raises(SweepError, match="more than the 100,000 a plan may hold; search it instead"):
        build_plan(parse_sweep({"base": "default", "axes": axes}, source="big.yaml", sweep_dir=ROOT))
