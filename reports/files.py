"""Writing output files safely: nothing a user wrote is overwritten unless asked, and nothing is left half written.

Every output goes to a temporary file in the destination's own folder first, then takes its name in one step
(a hard link when the name must be new, so a file that appeared meanwhile is never replaced; a rename with
`force`). A failed or killed command leaves at most a hidden temporary file, never a partial output.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputError(ValueError):
    """An output path cannot be used (one sentence: which path, why, what would work)."""


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_new_file(path: Path, what: str, *, force: bool = False) -> None:
    """`path` can be written as a new `what` file (or replaced, with `force`): checked before any long work."""
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name, e.g. {path / 'out'}")
    if path.exists() and not force:
        raise OutputError(f"{what} {path} already exists; choose a new name, or pass --force to replace it")
    parent = path.absolute().parent
    base = _nearest_existing(parent)
    if not base.is_dir():
        raise OutputError(f"{what} {path} cannot be created: {base} is a file, not a folder")
    if base != parent:
        raise OutputError(f"{what} {path} cannot be created: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path} cannot be created: folder {parent} is not writable")


def check_new_dir(path: Path, what: str) -> None:
    """`path` is a folder that does not exist yet, or an empty one, and can be created and written."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file; give a folder name")
    if path.is_dir():
        if any(path.iterdir()):
            raise OutputError(f"{what} {path} is not empty; choose a new folder (results are never overwritten)")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{what} {path} is not writable; choose another folder")
        return
    base = _nearest_existing(path)
    if not base.is_dir():
        raise OutputError(f"{what} {path} cannot be created: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path} cannot be created: folder {base} is not writable")


def write_atomic(path: Path, data: bytes | str, *, force: bool = False) -> None:
    """Write `data` to `path` in one step; refuse an existing `path` unless `force`."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.absolute().parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputError(f"{path} appeared while it was being written; nothing was replaced, run again with a new name") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
