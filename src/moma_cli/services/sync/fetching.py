"""`moma fetch` (what the cache lacks, each download verified against its oid) and
`moma pull` (fetch, then checkout). A directory's manifest is fetched first: it says which
files the directory needs. An import (`moma import`) this repository's remote lacks is
fetched through its source repository's remote."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

from moma_cli.core import pointer as pointer_mod
from moma_cli.core.sources import Source, source_of
from moma_cli.errors import HashMismatchError, MomaError, ObjectMissingError, RemoteError
from moma_cli.services import data_checkout, workspace
from moma_cli.services.crossrepo import clones
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo
from moma_cli.services.sync import planning
from moma_cli.services.sync.planning import Transfer, expand
from moma_cli.services.sync.remote_session import Remote, open_remote
from moma_cli.services.sync.results import (
    CORRUPT_HINT,
    MISSING_HINT,
    PullResult,
    TransferResult,
    named_failures,
)
from moma_cli.storage import link, transfer
from moma_cli.storage.remote.sinks import Download
from moma_cli.storage.remote.store import Sink


def fetch(
    repo: Repo,
    targets: Sequence[str] | None = None,
    *,
    remote: str | None = None,
    jobs: int | None = None,
    cwd: Path | None = None,
    progress: Progress = SILENT,
) -> TransferResult:
    """Download the objects of the workspace pointers that the cache lacks; what an import
    still lacks then comes through its source's remote."""
    pointers, errors = repo.pointers(targets, cwd)
    imported: list[tuple[pointer_mod.Pointer, Source]] = []
    plain = []
    for ptr in pointers:
        try:
            source = source_of(ptr.extra, ptr.pointer_path)
        except MomaError as exc:
            errors.append(exc)
            continue
        if source is None:
            plain.append(ptr)
        else:
            imported.append((ptr, source))
    result = TransferResult()
    # An import-only repository may have no remote of its own: then its sources are asked.
    if plain or not errors and not imported or remote is not None \
            or repo.config.default_remote is not None:
        r = open_remote(repo, remote, jobs, create=False)
        result = _fetch_pointers(repo, r, pointers, progress)
        result.warnings = sorted(r.store.damaged.values())
    for ptr, source in imported:
        if not all(repo.cache.exists(oid) for oid in expand(repo, [ptr])):
            _through_source(repo, ptr, source, result, jobs, progress)
    result.invalid = [e.message for e in errors]
    return result


def _through_source(repo: Repo, ptr: pointer_mod.Pointer, source: Source,
                    result: TransferResult, jobs: int | None, progress: Progress) -> None:
    """Fetch an import from its source's default remote, at the commit it records; what
    arrives there is no longer a failure of this repository's remote."""
    src = clones.open_source(repo, source.url, source.rev, commit=source.commit)
    got = _fetch_pointers(src.repo, open_remote(src.repo, None, jobs, create=False), [ptr],
                          progress)
    for oid in got.transferred:
        result.failed.pop(oid, None)
    result.transferred += got.transferred
    result.failed.update(got.failed)
    result.hint = got.hint if result.failed else None


def _fetch_pointers(repo: Repo, r: Remote, pointers: list[pointer_mod.Pointer],
                    progress: Progress) -> TransferResult:
    """Fetch what the pointers need a window at a time (planning.WINDOW objects), so memory
    does not grow with a directory's size: loose objects as each window comes, packed ones
    marked, then read pack by pack (`Store.defer_packed`); one cache batch per window."""
    plan = Transfer()
    for ptr in pointers:
        plan.add(ptr)
    for oid in plan.listings:  # a damaged listing is quarantined here, then fetched again
        with contextlib.suppress(ObjectMissingError, HashMismatchError):
            repo.cache.checked_path(oid)
    result = TransferResult(remote=r.name)
    progress.start(f"fetching from {r.name}", plan.total or None)
    # Listings not cached yet come first: they say which files a directory needs.
    listings = plan.listing_window(plan.listings)
    _fetch(repo, r, listings.names, listings.sizes, result, progress)
    for window in plan.windows(repo, plan.listings):
        _fetch(repo, r, window.names, window.sizes, result, progress, defer=True)
    unnamed: dict[str, str] = {}
    for located in r.store.deferred_reads(planning.WINDOW):
        unnamed.update(_download(repo, r, partial(r.store.span_tasks, located), result,
                                 progress))
    progress.finish()
    if unnamed:  # rare: read the listings again for the paths these objects belong to
        names: dict[str, str] = {}
        for window in plan.windows(repo, plan.listings):
            for oid in unnamed.keys() & window.names.keys():
                names.setdefault(oid, window.names[oid])
        _record_failures(result, unnamed, names)
    return result


def fetch_oids(
    repo: Repo,
    oids: Iterable[str],
    *,
    remote: str | None = None,
    jobs: int | None = None,
    progress: Progress = SILENT,
) -> TransferResult:
    """Download these objects into the cache unless it has them; each is verified."""
    r = open_remote(repo, remote, jobs, create=False)
    result = TransferResult(remote=r.name)
    wanted = set(oids)
    progress.start(f"fetching from {r.name}", len(wanted))
    _fetch(repo, r, dict.fromkeys(wanted, ""), {}, result, progress)
    progress.finish()
    return result


def _fetch(repo: Repo, r: Remote, names: dict[str, str], sizes: dict[str, int],
           result: TransferResult, progress: Progress, *, defer: bool = False) -> None:
    """Download into `result` those of these objects (oid -> workspace path, "" when none)
    the cache lacks; with `defer`, packed ones are only marked (`Store.defer_packed`)."""
    todo = sorted(oid for oid in names if not repo.cache.exists(oid))
    result.skipped += len(names) - len(todo)
    progress.advance(len(names) - len(todo))
    if defer:
        todo = r.store.defer_packed(todo)
    if todo:
        failed = _download(repo, r, partial(r.store.read_tasks, todo, sizes), result, progress)
        _record_failures(result, failed, names)


def _download(repo: Repo, r: Remote, tasks_for: Callable[[Sink], list[transfer.Task]],
              result: TransferResult, progress: Progress) -> dict[str, str]:
    """Run the tasks `tasks_for(sink)` into one cache batch: downloads are written without
    an fsync each, then made durable together before any gets its name. Returns the
    failures (oid -> message)."""
    with repo.cache.batch() as batch:
        try:
            work = tasks_for(Download(r.store, batch))
            done, failed = transfer.run_tasks(work, jobs=r.jobs, on_done=progress.advance)
        except RemoteError:  # keep what arrived before the remote failed
            batch.commit()
            raise
    _remember_verified(repo, done)
    result.transferred += done
    return failed


def _record_failures(result: TransferResult, failed: dict[str, str],
                     names: dict[str, str]) -> None:
    result.failed.update(named_failures(failed, {oid: n for oid, n in names.items() if n}))
    if any("is corrupt" in msg for msg in failed.values()):
        result.hint = CORRUPT_HINT
    elif failed:
        result.hint = result.hint or MISSING_HINT


def _remember_verified(repo: Repo, oids: list[str]) -> None:
    """Downloads were hashed on the way in: record that in the stat cache (one transaction),
    so the checkout that follows does not hash every object a second time."""
    rows = []
    for oid in oids:
        path = str(repo.cache.oid_to_path(oid))
        rows.append((path, workspace.StatKey.of(os.stat(path)), repo.cache.algo, oid))
    repo.state.put_many(rows)


def pull(
    repo: Repo,
    targets: Sequence[str] | None = None,
    *,
    remote: str | None = None,
    jobs: int | None = None,
    force: bool = False,
    cwd: Path | None = None,
    progress: Progress = SILENT,
) -> PullResult:
    """fetch, then checkout: the workspace gets everything that could be downloaded.

    When checkout copies (the default `reflink,copy` without reflinks), large downloads are
    written twice as they arrive, and checkout renames the second copy into place
    (`ObjectCache.spare_copies`) instead of copying the object out of the cache afterwards.
    """
    copies = link.copies(repo.config.link_types, repo.cache.tmp_dir, repo.root)
    with repo.cache.spare_copies() if copies else contextlib.nullcontext():
        fetched = fetch(repo, targets, remote=remote, jobs=jobs, cwd=cwd, progress=progress)
        result = PullResult(**vars(fetched))
        result.checkout = data_checkout.checkout(repo, targets, force=force, cwd=cwd,
                                                 progress=progress)
    return result

