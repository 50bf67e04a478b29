"""The sweep results store: one SQLite file (`sweep.sqlite`) in the sweep's output folder.

Crash safety: WAL journal, `synchronous=FULL`, and one transaction per finished point, so a point is durable as
soon as its row is committed; a sweep killed at any moment (SIGKILL included) loses at most the points that
were still running. Points are keyed by the sha256 of their resolved run config and the chipsim version, so a
second run computes only the points that have no row yet. The `meta` table records which sweep the folder holds
(the identity hash of its base, axes and sampling); a folder holding a different sweep is refused, never
overwritten. The `plan` table lists every planned point in plan order with its axis values.
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reports.figures import JsonValue, SweepError

STORE_FILE = "sweep.sqlite"
LOCK_FILE = ".sweep.lock"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan (plan_index INTEGER PRIMARY KEY, key TEXT NOT NULL, axes_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    error TEXT,
    record_json TEXT,
    wall_s REAL NOT NULL,
    run INTEGER NOT NULL,
    finished_unix_s REAL NOT NULL
);
"""


class PointStatus(enum.Enum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PointOutcome:
    """What evaluating one point produced: a result record, or the error that stopped it."""

    key: str
    status: PointStatus
    error: str | None
    record: dict[str, JsonValue] | None
    wall_s: float


@dataclass(frozen=True, slots=True)
class StoredPoint:
    plan_index: int
    key: str
    axis_values: dict[str, JsonValue]
    status: PointStatus | None  # None: not computed yet
    error: str | None
    record: dict[str, JsonValue] | None
    run: int | None


@dataclass(frozen=True, slots=True)
class StoredSweep:
    """What a store says about its sweep (enough for `chipsim results` and `chipsim report`)."""

    name: str
    source: str
    identity_sha256: str
    chipsim_version: str
    axes: tuple[tuple[str, str, tuple[str, ...]], ...]  # (name, path, labels) per axis
    constraints: tuple[str, ...]
    objectives: tuple[tuple[str, str], ...]  # (minimize|maximize, metric)
    sampling: str = ""  # how the points were chosen, in words (empty for stores written before it was recorded)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@dataclass(frozen=True, slots=True)
class StoreHeader:
    """What a sweep tells its store: which sweep it is, and its planned points in plan order."""

    name: str
    source: str
    identity_sha256: str  # what determines the set of points; a folder holding another identity is refused
    chipsim_version: str
    axes: tuple[tuple[str, str, tuple[str, ...]], ...]  # (name, path, labels) per axis
    constraints: tuple[str, ...]
    objectives: tuple[tuple[str, str], ...]  # (minimize|maximize, metric)
    points: tuple[tuple[int, str, dict[str, JsonValue]], ...]  # (plan index, key, axis values)
    adaptive: bool = False  # a search: the plan grows as it runs (add_planned), so a rerun keeps the stored plan
    sampling: str = ""  # how the points are chosen, in words (`grid, seed 0`, `nsga2 search, budget 150, seed 0`)

    def spec_doc(self) -> dict[str, JsonValue]:
        return {
            "axes": [{"name": n, "path": p, "labels": list(labels)} for n, p, labels in self.axes],
            "constraints": list(self.constraints),
            "sampling": self.sampling,
            "objectives": [[d, m] for d, m in self.objectives],
        }


class SweepStore:
    """An open store. Use `SweepStore.for_sweep` to run a sweep into a folder, `SweepStore.open` to read one."""

    def __init__(self, directory: Path, conn: sqlite3.Connection, lock_fd: int | None, run: int = 0) -> None:
        self.directory = directory
        self.run = run  # this run's number (1 for the first run into the folder), recorded with each point
        self._conn = conn
        self._lock_fd = lock_fd

    # -- opening ------------------------------------------------------------------------------------------

    @staticmethod
    def for_sweep(directory: Path, header: StoreHeader) -> SweepStore:
        """Create the store in `directory`, or reopen it if it holds this same sweep; refuse anything else."""
        path = directory / STORE_FILE
        if directory.exists() and not directory.is_dir():
            raise SweepError(f"output {directory} is a file; give a folder for the sweep results")
        if directory.is_dir() and not path.exists() and any(directory.iterdir()):
            raise SweepError(f"output folder {directory} is not empty and holds no chipsim sweep; choose a new or empty folder")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SweepError(f"output folder {directory} cannot be created or written ({exc.strerror}); choose another --out") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise SweepError(f"output folder {directory} is in use by another running chipsim sweep; wait for it or choose another folder") from None
        try:
            conn = _connect(path)
            conn.executescript(_SCHEMA)
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            os.close(lock_fd)
            raise SweepError(f"{path} is not a readable chipsim sweep store (corrupt, or not written by chipsim sweep); "
                             "choose a new --out folder, or delete that one to start over") from None
        identity = header.identity_sha256
        if meta and meta.get("identity_sha256") != identity:
            conn.close()
            os.close(lock_fd)
            raise SweepError(
                f"output folder {directory} holds results of a different sweep ({meta.get('name', '?')} from "
                f"{meta.get('source', '?')}); use another --out folder, or delete that one to start over"
            )
        runs = int(meta.get("runs", "0")) + 1
        with _transaction(conn):
            for name, value in (
                ("schema_version", SCHEMA_VERSION), ("identity_sha256", identity), ("name", header.name),
                ("source", header.source), ("chipsim_version", header.chipsim_version), ("runs", str(runs)),
                ("spec_json", json.dumps(header.spec_doc())),
            ):
                conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))
            if not header.adaptive:
                conn.execute("DELETE FROM plan")
            conn.executemany(
                "INSERT INTO plan (plan_index, key, axes_json) VALUES (?, ?, ?)",
                [(index, key, json.dumps(axes)) for index, key, axes in header.points],
            )
        return SweepStore(directory, conn, lock_fd, runs)

    @staticmethod
    def open(directory: Path) -> SweepStore:
        """Open an existing store for reading."""
        path = directory / STORE_FILE
        if not path.is_file():
            raise SweepError(f"{directory} holds no sweep results ({STORE_FILE} is missing); run `chipsim sweep SWEEP.yaml --out {directory}` first")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        try:  # a store is a SQLite file with our tables and meta; anything else is refused in one sentence
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            conn.execute("SELECT plan_index, key, axes_json FROM plan LIMIT 1").fetchall()
            conn.execute("SELECT key, status, error, record_json, run FROM points LIMIT 1").fetchall()
            doc = json.loads(meta["spec_json"])
            assert isinstance(doc, dict) and all(k in meta for k in ("name", "source", "identity_sha256", "chipsim_version"))
        except (sqlite3.DatabaseError, KeyError, ValueError, AssertionError, TypeError):
            conn.close()
            raise SweepError(f"{path} is not a readable chipsim sweep store (corrupt, or not written by chipsim sweep); "
                             "run the sweep again into a new --out folder") from None
        return SweepStore(directory, conn, None)

    def close(self) -> None:
        self._conn.close()
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------------------

    def add(self, outcome: PointOutcome) -> None:
        """Commit one finished point (its own transaction: durable when this returns)."""
        with _transaction(self._conn):
            self._conn.execute(
                "INSERT INTO points (key, status, error, record_json, wall_s, run, finished_unix_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    outcome.key, outcome.status.value, outcome.error,
                    None if outcome.record is None else json.dumps(outcome.record),
                    outcome.wall_s, self.run, time.time(),
                ),
            )

    def add_planned(self, plan_index: int, key: str, axis_values: dict[str, JsonValue]) -> None:
        """Append one point to the plan (a search chooses its points as it runs; plan order is evaluation order)."""
        with _transaction(self._conn):
            self._conn.execute("INSERT INTO plan (plan_index, key, axes_json) VALUES (?, ?, ?)",
                               (plan_index, key, json.dumps(axis_values)))

    def forget_failed(self) -> int:
        """Remove failed points so that they run again; returns how many."""
        with _transaction(self._conn):
            cur = self._conn.execute("DELETE FROM points WHERE status = ?", (PointStatus.FAILED.value,))
        return cur.rowcount

    # -- reading ------------------------------------------------------------------------------------------

    def done_keys(self) -> set[str]:
        return {k for (k,) in self._conn.execute("SELECT key FROM points")}

    def sweep(self) -> StoredSweep:
        meta = dict(self._conn.execute("SELECT name, value FROM meta").fetchall())
        doc = json.loads(meta["spec_json"])
        return StoredSweep(
            name=meta["name"], source=meta["source"], identity_sha256=meta["identity_sha256"],
            chipsim_version=meta["chipsim_version"],
            axes=tuple((a["name"], a["path"], tuple(a["labels"])) for a in doc["axes"]),
            sampling=str(doc.get("sampling", "")),
            constraints=tuple(doc["constraints"]),
            objectives=tuple((d, m) for d, m in doc["objectives"]),
        )

    def points(self) -> list[StoredPoint]:
        """Every planned point in plan order, with its result when it has one."""
        rows = self._conn.execute(
            "SELECT plan.plan_index, plan.key, plan.axes_json, points.status, points.error, points.record_json, points.run "
            "FROM plan LEFT JOIN points ON points.key = plan.key ORDER BY plan.plan_index"
        )
        return [
            StoredPoint(
                plan_index=i, key=key, axis_values=json.loads(axes), status=None if status is None else PointStatus(status),
                error=error, record=None if record is None else json.loads(record), run=run,
            )
            for i, key, axes, status, error, record, run in rows
        ]
