"""Where `moma repro` runs stage commands and `moma exp queue start` runs experiments:
locally (threads for commands, processes for experiments), or on a Dask distributed cluster
whose workers see the repository at the same path. An executor only runs the shell command
(or the function) and reports its exit status (or result); hashing, caching and `moma.lock`
stay with the caller. The only importer of `distributed`, and only when a Dask executor is
asked for.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import uuid
from collections.abc import Callable
from concurrent.futures import Executor as PoolExecutor
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from moma_cli.core.stages import PipelineError, Stage

DASK_PREFIX = "dask://"
DASK_LOCAL = "dask-local"
_TAIL_CHARS = 2000  # enough for a traceback's last frames, small enough for a terminal
T = TypeVar("T")


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stderr_tail: str = ""  # a remote command's last stderr; a local one writes to the terminal


class Executor:
    """Runs stage commands, `limit` at a time at most (None: as many as the cluster takes)."""

    limit: int | None = 1

    def submit(self, stage: Stage, cwd: Path) -> Future[CommandResult]:
        raise NotImplementedError

    def call(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """`fn(*args)` in a process of its own (locally) or on a worker, which must be able
        to import `fn`'s module: `moma` installed where the workers run."""
        raise NotImplementedError

    def close(self) -> None:
        """Wait for the commands still running, then release the workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class LocalExecutor(Executor):
    def __init__(self, jobs: int) -> None:
        self.limit = jobs
        self._threads = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="moma-stage")
        self._processes: PoolExecutor | None = None

    def submit(self, stage: Stage, cwd: Path) -> Future[CommandResult]:
        return self._threads.submit(_run_local, stage.cmd, cwd)

    def call(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        if self._processes is None:
            # spawn, not fork: forking a process that runs threads (this one's, git's
            # readers) can copy a held lock into the child and hang it
            self._processes = ProcessPoolExecutor(
                max_workers=self.limit, mp_context=multiprocessing.get_context("spawn"))
        return self._processes.submit(fn, *args)

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        if self._processes is not None:
            self._processes.shutdown(wait=True)


def _run_local(cmd: str, cwd: Path) -> CommandResult:
    # shell=True on purpose: the command is what the user wrote in `moma run` or .moma.yaml,
    # and it runs only on an explicit `moma repro`.
    return CommandResult(subprocess.run(cmd, shell=True, cwd=cwd).returncode)  # noqa: S602


class DaskExecutor(Executor):
    def __init__(self, client: Any, cluster: Any, limit: int | None) -> None:
        self.limit = limit
        self._client = client
        self._cluster = cluster
        self._running: list[Any] = []  # a Dask future nobody references is cancelled

    def submit(self, stage: Stage, cwd: Path) -> Future[CommandResult]:
        # subprocess.run itself is the task: workers need `distributed`, not moma.
        task = self._client.submit(
            subprocess.run, stage.cmd, shell=True, cwd=str(cwd), capture_output=True,
            pure=False, key=f"moma-{stage.name}-{uuid.uuid4().hex[:8]}")
        return self._bridge(task, lambda proc: CommandResult(
            proc.returncode, proc.stderr.decode("utf-8", "replace")[-_TAIL_CHARS:]))

    def call(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        task = self._client.submit(fn, *args, pure=False,
                                   key=f"moma-{fn.__name__}-{uuid.uuid4().hex[:8]}")
        return self._bridge(task, lambda value: value)

    def _bridge(self, task: Any, convert: Callable[[Any], T]) -> Future[T]:
        """A concurrent.futures Future that completes with `convert(task's result)`."""
        done: Future[T] = Future()
        self._running.append(task)

        def finished(task: Any) -> None:
            try:
                done.set_result(convert(task.result()))
            except BaseException as exc:  # noqa: BLE001 - a lost worker fails the task
                done.set_exception(exc)

        task.add_done_callback(finished)
        return done

    def close(self) -> None:
        if self._running:
            from distributed import wait

            wait(self._running)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def open_executor(spec: str | None, jobs: int | None) -> Executor:
    """`None`/`local` (threads, `jobs` at a time, default 1), `dask://HOST:PORT` (a running
    scheduler) or `dask-local` (a LocalCluster of `jobs` single-threaded worker processes,
    started for this run and closed after it)."""
    if spec in (None, "local"):
        return LocalExecutor(jobs or 1)
    if spec != DASK_LOCAL and not spec.startswith(DASK_PREFIX):
        raise PipelineError(f"unknown executor {spec!r}",
                            hint=f"use 'local', '{DASK_LOCAL}' or '{DASK_PREFIX}HOST:PORT'")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise PipelineError(f"--executor {spec} needs dask.distributed",
                            hint="pip install 'moma-cli[dask]'") from None
    if spec == DASK_LOCAL:
        cluster = LocalCluster(n_workers=jobs or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return DaskExecutor(Client(cluster), cluster, jobs)
    address = "tcp://" + spec.removeprefix(DASK_PREFIX)
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:  # ValueError: a malformed address
        raise PipelineError(f"cannot reach the Dask scheduler at {address}: {exc}",
                            hint="start one with 'dask scheduler' and 'dask worker ADDRESS', "
                                 f"or use --executor {DASK_LOCAL}") from None
    return DaskExecutor(client, None, jobs)
