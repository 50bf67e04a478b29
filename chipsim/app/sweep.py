"""Running a sweep plan: each point on a worker, each finished point committed to the store at once.

The same code path runs on local worker processes (`concurrent.futures.ProcessPoolExecutor`) and on a Dask
cluster (`distributed.Client.get_executor()`, a `concurrent.futures.Executor` too): `run_sweep` submits
`evaluate_point` tasks, keeps a bounded window of them in flight, and commits each outcome as it arrives. A
point that raises is recorded with its error (status failed); it never stops the sweep.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chipsim.app.runconfig import RunConfig
from reports.store import PointOutcome, PointStatus, SweepStore
from chipsim.app.sweep_plan import JsonValue, PlannedPoint, SweepError, SweepPlan

if TYPE_CHECKING:
    from rich.console import Console

Evaluator = Callable[[RunConfig], dict[str, JsonValue]]


def evaluate_with_runner(config: RunConfig) -> dict[str, JsonValue]:
    """The result record of one run (the real simulator: mapper, executor, energy and area models).

    Functional points are scored on `workload.test_sentences` of the held-out test split or, with no sentences
    at all, on the whole split (so they record F1). The record carries each layer's DRAM bytes and the chip's peak MACs and DRAM bytes per cycle, which
    the report's roofline plot needs.
    """
    from chipsim.app.runner import run
    from chipsim.executor import collector_paused

    # The ISA verifier does not change any figure; it checks the mapper, which the tests and `chipsim run` do.
    # Sweep points skip it (it costs more than the simulation itself).
    config = config.model_copy(update={"mapper": config.mapper.model_copy(update={"verify": False})})
    w = config.workload
    with collector_paused():  # resumed once the run's program is gone, so the collector's first scan skips it
        outcome = run(config, test_split=config.functional and not w.sentences and not w.test_sentences)
        record: dict[str, JsonValue] = json.loads(json.dumps(outcome.record.to_dict()))
        del outcome
    return record


@dataclass(frozen=True, slots=True)
class PointTask:
    key: str
    config: dict[str, JsonValue]  # a resolved RunConfig as JSON (small and picklable)


def _error_text(exc: BaseException) -> str:
    """A user-level error (config, workload, mapper, executor: all ValueError subclasses) as its message;
    anything else named by its type, so that a defect is told apart from a design that cannot run."""
    if isinstance(exc, ValueError) and type(exc).__module__.split(".")[0] in ("chipsim", "mapper", "workloads", "isa"):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def evaluate_point(task: PointTask, evaluator: Evaluator = evaluate_with_runner) -> PointOutcome:
    """Run one point; never raises for a point's own failure (the outcome carries the error)."""
    start = time.perf_counter()
    try:
        config = RunConfig.model_validate(task.config)
        record = dict(evaluator(config))
    except Exception as exc:  # noqa: BLE001 - every failure of a point is recorded, never fatal to the sweep
        return PointOutcome(task.key, PointStatus.FAILED, _error_text(exc), None, time.perf_counter() - start)
    return PointOutcome(task.key, PointStatus.OK, None, record, time.perf_counter() - start)


class ProgressSink(Protocol):
    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome: PointOutcome) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SweepSummary:
    planned: int  # points in the whole plan
    selected: int  # points this run was asked to cover (the first --max-points of the plan, or all)
    already_done: int  # of the selected, points the store already held
    ran: int  # points computed by this run
    failed: int  # of those, points that failed
    wall_s: float

    @property
    def remaining(self) -> int:
        """Points of the whole plan still without a result after this run."""
        return self.planned - self.selected + (self.selected - self.already_done - self.ran)


def _exit_when_orphaned(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:  # the sweep was killed (even with SIGKILL): stop computing for nobody
            os._exit(0)


def _init_local_worker() -> None:
    # The parent handles Ctrl-C (it cancels the queue and closes the store); workers just stop with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # parallelism comes from processes; one BLAS thread each


def check_sweep_options(*, max_points: int | None = None, workers: int | None = None) -> None:
    """The counts a sweep is run with: each at least 1 when given (the CLI checks them before making a folder)."""
    if max_points is not None and max_points < 1:
        raise SweepError(f"--max-points is {max_points}; give at least 1 (or leave it out to run the whole plan)")
    if workers is not None and workers < 1:
        raise SweepError(f"--workers is {workers}; give at least 1 worker process")


@contextmanager
def local_executor(workers: int) -> Iterator[cf.Executor]:
    """A pool of `workers` fresh processes (spawned, so nothing of the parent's state leaks into them)."""
    check_sweep_options(workers=workers)
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_local_worker)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


Health = Callable[[], str | None]  # why the executor can no longer run points (a lost cluster), or None
NO_WORKERS_GRACE_S = 30.0  # a cluster without workers for this long is lost, not busy


def check_dask_address(address: str) -> None:
    """`tcp://HOST:PORT` (or tls://, ws://, wss://), checked before anything is created or contacted."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        port = None
        parts = None
    if parts is not None and parts.scheme == "inproc" and parts.netloc:  # a cluster in this process (tests, notebooks)
        return
    if parts is None or parts.scheme not in ("tcp", "tls", "ws", "wss") or not parts.hostname or port is None:
        raise SweepError(f"--dask {address!r} is not a scheduler address; give tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786")


@contextmanager
def dask_executor(address: str) -> Iterator[tuple[cf.Executor, int, Health]]:
    """An executor on the dask.distributed cluster at `address` (tcp://HOST:PORT), its number of threads, and a
    health check that names a lost scheduler or a cluster left without workers."""
    check_dask_address(address)
    from distributed import Client

    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepError(f"could not reach a Dask scheduler at {address} ({exc}); start one with `dask scheduler` and workers with `dask worker {address}`") from None
    no_workers_since: list[float] = []

    def health() -> str | None:
        if client.status not in ("running", "connecting"):
            return f"lost the Dask scheduler at {address}"
        try:
            threads = sum(client.nthreads().values())
        except Exception:  # noqa: BLE001 - any failure to ask the scheduler means it is gone
            return f"lost the Dask scheduler at {address}"
        if threads:
            no_workers_since.clear()
            return None
        if not no_workers_since:
            no_workers_since.append(time.monotonic())
        if time.monotonic() - no_workers_since[0] > NO_WORKERS_GRACE_S:
            return f"the Dask cluster at {address} has had no workers for {NO_WORKERS_GRACE_S:.0f} s"
        return None

    try:
        threads = sum(client.nthreads().values())
        if threads == 0:
            raise SweepError(f"the Dask scheduler at {address} has no workers; start some with `dask worker {address}`")
        yield client.get_executor(pure=False), threads, health
    finally:
        client.close()


def collect_finished(pending: dict[cf.Future[PointOutcome], str], health: Health | None) -> list[PointOutcome]:
    """Wait until some of `pending` finish and return their outcomes (removed from `pending`), asking `health` every
    HEALTH_CHECK_S while nothing finishes. A lost cluster, or a future that failed outside its point's own code,
    raises a SweepError and leaves the points in flight pending."""
    finished, _ = cf.wait(pending, timeout=HEALTH_CHECK_S, return_when=cf.FIRST_COMPLETED)
    if not finished and health is not None:
        lost = health()
        if lost is not None:
            raise SweepError(f"{lost}; the {len(pending)} points in flight stay pending: run the same command again to resume")
    outcomes = []
    for future in finished:
        try:
            outcomes.append(future.result())
        except Exception as exc:  # noqa: BLE001 - not the point's code (it returns its own failures)
            raise infrastructure_failure(exc, len(pending)) from None
        pending.pop(future)
    return outcomes


def infrastructure_failure(exc: BaseException, in_flight: int) -> SweepError:
    """A point's future failed outside the point's own code (a worker or the cluster went away): the sweep stops,
    and the points in flight stay pending (never stored as failed), so running the command again resumes them."""
    from concurrent.futures.process import BrokenProcessPool

    what = "the local worker processes died" if isinstance(exc, BrokenProcessPool) else f"a worker or the cluster failed ({type(exc).__name__}: {exc})"
    return SweepError(f"{what}; the {in_flight} points in flight stay pending: run the same command again to resume")


HEALTH_CHECK_S = 5.0  # how often a sweep waiting on its workers asks whether the cluster is still there


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run_sweep(
    plan: SweepPlan,
    store: SweepStore,
    executor: cf.Executor,
    *,
    parallelism: int,
    max_points: int | None = None,
    evaluator: Evaluator = evaluate_with_runner,
    progress: ProgressSink | None = None,
    health: Health | None = None,
) -> SweepSummary:
    """Compute the plan's points (its first `max_points`, or all) that the store does not hold yet.

    A future that fails outside the point's own code (a dead worker, a lost cluster) stops the sweep with a
    SweepError and leaves the points in flight pending; so does `health` naming a lost cluster while nothing
    finishes."""
    start = time.perf_counter()
    check_sweep_options(max_points=max_points)
    selected: Sequence[PlannedPoint] = plan.points[:max_points] if max_points is not None else plan.points
    done = store.done_keys()
    todo = [p for p in selected if p.key not in done]
    already_done = len(selected) - len(todo)
    if progress is not None:
        progress.start(len(selected), already_done)
    ran = failed = 0

    def commit(outcome: PointOutcome) -> None:
        nonlocal ran, failed
        store.add(outcome)
        ran += 1
        failed += outcome.status is PointStatus.FAILED
        if progress is not None:
            progress.advance(outcome)

    window = max(2, 2 * parallelism)  # enough queued work to keep every worker busy, little lost to a kill
    queue = iter(todo)
    pending: dict[cf.Future[PointOutcome], str] = {}
    try:
        while True:
            while len(pending) < window:
                point = next(queue, None)
                if point is None:
                    break
                if point.config is None:  # not a valid run config: recorded as failed without running
                    commit(PointOutcome(point.key, PointStatus.FAILED, point.error, None, 0.0))
                    continue
                pending[executor.submit(evaluate_point, PointTask(point.key, point.config), evaluator)] = point.key
            if not pending:
                break
            for outcome in collect_finished(pending, health):
                commit(outcome)
    finally:
        for future in pending:
            future.cancel()
        if progress is not None:
            progress.stop()
    return SweepSummary(len(plan.points), len(selected), already_done, ran, failed, time.perf_counter() - start)


class RichProgress:
    """A live progress bar: points done of the selection, rate, ETA, failures (quiet when not on a terminal)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[failed]}"),
            console=console, transient=False,
        )
        self._task = self._progress.add_task("sweep", total=0, rate="", failed="", start=False)
        self._failed = 0
        self._ran = 0
        self._start = 0.0

    def start(self, total: int, already_done: int) -> None:
        self._start = time.perf_counter()
        self._progress.update(self._task, total=total, completed=already_done)
        self._progress.start_task(self._task)
        self._progress.start()

    def advance(self, outcome: PointOutcome) -> None:
        self._ran += 1
        self._failed += outcome.status is PointStatus.FAILED
        rate = self._ran / max(time.perf_counter() - self._start, 1e-9)
        failed = f"[red]{self._failed} failed[/red]" if self._failed else "0 failed"
        self._progress.update(self._task, advance=1, rate=f"{rate:.1f} pts/s", failed=failed)

    def stop(self) -> None:
        self._progress.stop()
