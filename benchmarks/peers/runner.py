"""Start the peers' oracles (`benchmarks/peers/*_oracle.py`) in the peers' virtualenv and read their JSON.

chipsim's environment imports this module, never a peer: each oracle runs as a subprocess of
`.venv-peers/bin/python` (SCALE-Sim 3.0.0 needs numpy < 2.3; `.ci/run` creates the virtualenv).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
SCALESIM_ORACLE = ROOT / "benchmarks" / "peers" / "scalesim_oracle.py"
ZIGZAG_ORACLE = ROOT / "benchmarks" / "peers" / "zigzag_oracle.py"
MISSING_HINT = (
    f"the peers' virtualenv is missing ({PEERS_PYTHON}); create it with: python3 -m venv .venv-peers && "
    ".venv-peers/bin/pip install scalesim==3.0.0 zigzag-dse six 'numpy<2.3'"
)

OracleRow = dict[str, object]


def peers_available() -> bool:
    return PEERS_PYTHON.exists()


def start_oracle(script: Path, cases: Sequence[Mapping[str, int | str]]) -> subprocess.Popen[str]:
    """Start one oracle process on a batch of cases (written to a temp file that `collect` removes)."""
    fd, path = tempfile.mkstemp(prefix="oracle_cases_", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump([dict(c) for c in cases], f)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.Popen(
        [str(PEERS_PYTHON), str(script), "--batch", path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )


def collect(proc: subprocess.Popen[str]) -> list[OracleRow]:
    """Wait for an oracle and return its rows (one per case, in order); raise with its stderr if it failed."""
    out, err = proc.communicate()
    args = proc.args
    if isinstance(args, list) and isinstance(args[-1], str):
        Path(args[-1]).unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"oracle failed (exit {proc.returncode}): {err.strip()[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    if not isinstance(result, list):
        raise RuntimeError(f"oracle printed {type(result).__name__}, expected a JSON list")
    return result


def run_oracle(script: Path, cases: Sequence[Mapping[str, int | str]]) -> list[OracleRow]:
    return collect(start_oracle(script, cases))


def num(row: OracleRow, key: str) -> float:
    """A numeric field of an oracle row (JSON numbers come back as int or float)."""
    value = row[key]
    if not isinstance(value, (int, float)):
        raise RuntimeError(f"oracle field {key!r} is {value!r}, expected a number")
    return float(value)
