"""The import directions of shared/DESIGN.md, enforced: each part can be read and tested alone.

- `isa/` imports nothing of ours; `workloads/` imports nothing of ours;
- `mapper/` imports `workloads/`, `isa/` and the hardware model's config and cost model only;
- the hardware model (the modules directly in `chipsim/`) imports `isa/` and itself only;
- `reports/` imports nothing of `chipsim/` (nor of the mapper or the workloads);
- the application (`chipsim/app/`) is the one place that ties them together.

Every import statement counts, also those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("isa", "workloads", "mapper", "chipsim", "reports")
HARDWARE_FOR_MAPPER = ("chipsim.config", "chipsim.timing", "chipsim.cost_model")


def _part(module: str) -> str:
    """The part of the design a module belongs to: `chipsim.app` and the hardware model `chipsim` are apart."""
    if module == "chipsim.app" or module.startswith("chipsim.app."):
        return "app"
    return module.split(".")[0]


ALLOWED: dict[str, tuple[str, ...]] = {
    "isa": ("isa",),
    "workloads": ("workloads",),
    "mapper": ("mapper", "workloads", "isa"),  # + HARDWARE_FOR_MAPPER
    "chipsim": ("chipsim", "isa"),
    "reports": ("reports",),
    "app": OURS + ("app",),
}


def _module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_of(path) if path.name == "__init__.py" else _module_of(path).rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # `from chipsim import timing` imports the module chipsim.timing
            out += [(node.lineno, f"{name}.{a.name}" if name in OURS or name == "chipsim.app" else name) for a in node.names]
    return [(line, name) for line, name in out if name.split(".")[0] in OURS]


def _sources() -> list[Path]:
    files = []
    for top in OURS:
        files += sorted((ROOT / top).rglob("*.py"))
    return [f for f in files if f.name != "__main__.py"]  # `python -m chipsim` starts the application


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path: Path) -> None:
    part = _part(_module_of(path))
    bad = []
    for line, name in _imports(path):
        target = _part(name)
        if target in ALLOWED[part]:
            continue
        if part == "mapper" and any(name == h or name.startswith(h + ".") for h in HARDWARE_FOR_MAPPER):
            continue
        bad.append(f"line {line}: {name}")
    assert not bad, f"{path.relative_to(ROOT)} ({part}) imports against shared/DESIGN.md: " + "; ".join(bad)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The rule is not vacuous: a reports module importing the hardware model is caught."""
    fake = ROOT / "reports" / "_direction_probe.py"
    fake.write_text("def f():\n    from chipsim.executor import execute\n    return execute\n", encoding="utf-8")
    try:
        assert ("chipsim.executor.execute" in {n for _, n in _imports(fake)}) or ("chipsim.executor" in {n for _, n in _imports(fake)})
        with pytest.raises(AssertionError, match="imports against"):
            test_imports_point_one_way(fake)
    finally:
        fake.unlink()
