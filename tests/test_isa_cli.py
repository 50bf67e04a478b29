"""`chipsim asm` / `chipsim disasm`: round trip through files, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from chipsim.app.cli import app
from isa import decode, parse

TEXT = """\
.mesh 1 2
.core 0
    vexp dst=acc:0x0 src=acc:0x0 rows=4 cols=4
    noc_send dst_core=1 addr=acc:0x0 bytes=64 tag=1
    halt
.core 1
    noc_recv src_core=0 addr=spad:0x0 bytes=64 tag=1
    halt
"""


def _chipsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from chipsim.app.cli import main; main()", *args], capture_output=True, text=True)


def test_asm_then_disasm_round_trips(tmp_path: Path) -> None:
    src, out = tmp_path / "p.s", tmp_path / "p.bin"
    src.write_text(TEXT)
    r = CliRunner().invoke(app, ["asm", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 5 instructions for 2 cores (112 bytes)" in r.output
    assert decode(out.read_bytes()) == parse(TEXT)
    r = CliRunner().invoke(app, ["disasm", str(out)])
    assert r.exit_code == 0 and r.output == TEXT


def test_malformed_binary_is_one_line_exit_2(tmp_path: Path) -> None:
    good, bad = tmp_path / "p.bin", tmp_path / "bad.bin"
    src = tmp_path / "p.s"
    src.write_text(TEXT)
    assert _chipsim("asm", str(src), "-o", str(good)).returncode == 0
    data = bytearray(good.read_bytes())
    data[48] = 0x28  # core 0's second word (header 32 bytes + one word) becomes a VEXP ...
    data[49] = 0x07  # ... whose dst_mem (bits 8..9) is 3, not a memory
    bad.write_bytes(bytes(data))
    r = _chipsim("disasm", str(bad))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"error: {bad}: byte offset 48 (word 1, core 0 instruction 1): VEXP field dst_mem is 3; valid values are spad, acc.\n"


def test_bad_assembly_names_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "bad.s"
    src.write_text(".core 0\nvexp dst=acc:0x0 rows=1 cols=1\n")
    r = _chipsim("asm", str(src), "-o", str(tmp_path / "x.bin"))
    assert r.returncode == 2
    assert r.stderr == f"error: {src}: line 2: vexp is missing operand 'src'; it needs dst, src, rows, cols.\n"
    assert not (tmp_path / "x.bin").exists()
