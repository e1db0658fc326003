"""Run many object transfers on a thread pool sharing one filesystem (and its connections).

Work comes as tasks, each covering one or more objects and reporting an outcome per object:
a chunk of loose objects (`tasks`), a pack sent whole (`whole`), or a ranged read of a pack.
A failure of one object (missing, corrupt, a local read error) is recorded and the others
carry on; a failure of the remote as a whole (RemoteError: unreachable, access denied)
stops everything at once, since every other request would fail the same way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

from moma_cli.credentials import redact
from moma_cli.errors import MomaError, RemoteError

R = TypeVar("R")
# A unit of work: returns (oid, None) for each object done, (oid, message) for each failed.
Task = Callable[[], list[tuple[str, "str | None"]]]


def parallel_map(fn: Callable[[str], R], items: Sequence[str], jobs: int) -> Iterator[R]:
    """`map` on a pool; results in order. For cheap calls such as listings."""
    if len(items) <= 1 or jobs <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=min(jobs, len(items))) as pool:
        yield from pool.map(fn, items)


# Objects per task: one future per object cost more than a small object's transfer
# (10k futures: ~2.5 s of submit and wait under lock contention), so tasks are chunks.
_CHUNK_MAX = 64


def tasks(fn: Callable[[str], object], oids: Sequence[str], jobs: int) -> list[Task]:
    """`fn(oid)` for every oid, in chunks sized so that `jobs` workers share them evenly."""
    size = max(1, min(_CHUNK_MAX, len(oids) // (max(1, jobs) * 4)))
    return [_each(fn, oids[i:i + size]) for i in range(0, len(oids), size)]


def _each(fn: Callable[[str], object], chunk: Sequence[str]) -> Task:
    return lambda: [(oid, attempt(fn, oid)) for oid in chunk]


def whole(fn: Callable[[list[str]], object], oids: list[str]) -> Task:
    """One call for all these objects: they succeed or fail together (a pack)."""
    return lambda: [(oid, message) for message in [attempt(fn, oids)] for oid in oids]


def run_tasks(work: Sequence[Task], *, jobs: int,
              on_done: Callable[[], None]) -> tuple[list[str], dict[str, str]]:
    """Run the tasks on `jobs` threads; return (done, failed: oid -> message)."""
    done: list[str] = []
    failed: dict[str, str] = {}
    if not work:
        return done, failed
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(work)))) as pool:
        futures = [pool.submit(task) for task in work]
        try:
            for future in as_completed(futures):
                for oid, message in future.result():
                    if message is None:
                        done.append(oid)
                    else:
                        failed[oid] = message
                    on_done()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return done, failed


def attempt(fn: Callable[..., object], *args: Any) -> str | None:
    """None when `fn(*args)` worked, else the message; a remote-wide failure propagates."""
    try:
        fn(*args)
    except RemoteError:
        raise
    except MomaError as exc:
        return exc.message
    except OSError as exc:
        return redact(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    return None


class Budget:
    """Bytes the transfer threads may hold in memory at once: `held(n)` waits until n more
    fit, except that one holder may always proceed (an object larger than the budget must
    still move, alone)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def held(self, nbytes: int) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self.used == 0 or self.used + nbytes <= self.limit)
            self.used += nbytes
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()
