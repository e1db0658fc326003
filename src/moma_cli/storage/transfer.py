"""Run many object transfers on a thread pool sharing one filesystem (and its connections).

A failure of one object (missing, corrupt, a local read error) is recorded and the others
carry on; a failure of the remote as a whole (RemoteError: unreachable, access denied)
stops everything at once, since every other request would fail the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

from moma_cli.config import redact
from moma_cli.errors import MomaError, RemoteError

R = TypeVar("R")


def parallel_map(fn: Callable[[str], R], items: Sequence[str], jobs: int) -> Iterator[R]:
    """`map` on a pool; results in any order. For cheap calls such as listings."""
    if len(items) <= 1 or jobs <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=min(jobs, len(items))) as pool:
        yield from pool.map(fn, items)


def mapper(jobs: int) -> Callable[[Callable[[str], R], list[str]], Iterable[R]]:
    return lambda fn, items: parallel_map(fn, items, jobs)


# Objects per task: one future per object cost more than a small object's transfer
# (10k futures: ~2.5 s of submit and wait under lock contention), so tasks are chunks.
_CHUNK_MAX = 64


def run(
    fn: Callable[[str], object],
    oids: Sequence[str],
    *,
    jobs: int,
    on_done: Callable[[], None],
) -> tuple[list[str], dict[str, str]]:
    """Apply `fn` to every oid in parallel; return (done, failed: oid -> message)."""
    done: list[str] = []
    failed: dict[str, str] = {}
    if not oids:
        return done, failed
    workers = max(1, min(jobs, len(oids)))
    size = max(1, min(_CHUNK_MAX, len(oids) // (workers * 4)))

    def task(chunk: Sequence[str]) -> list[tuple[str, str | None]]:
        return [(oid, _attempt(fn, oid)) for oid in chunk]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(task, oids[i:i + size]) for i in range(0, len(oids), size)]
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


def _attempt(fn: Callable[[str], object], oid: str) -> str | None:
    """None when `fn(oid)` worked, else the message; a remote-wide failure propagates."""
    try:
        fn(oid)
    except RemoteError:
        raise
    except MomaError as exc:
        return exc.message
    except OSError as exc:
        return redact(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    return None
