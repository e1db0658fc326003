"""Run many object transfers on a thread pool sharing one filesystem (and its connections).

A failure of one object (missing, corrupt, a local read error) is recorded and the others
carry on; a failure of the remote as a whole (RemoteError: unreachable, access denied)
stops everything at once, since every other request would fail the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from moma_cli.errors import MomaError, RemoteError
from moma_cli.storage.fs import redact

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
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(oids)))) as pool:
        futures: dict[Future[object], str] = {pool.submit(fn, oid): oid for oid in oids}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    _collect(future, futures[future], done, failed)
                    on_done()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return done, failed


def _collect(future: Future[object], oid: str, done: list[str], failed: dict[str, str]) -> None:
    try:
        future.result()
    except RemoteError:
        raise
    except MomaError as exc:
        failed[oid] = exc.message
    except OSError as exc:
        failed[oid] = redact(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    else:
        done.append(oid)
