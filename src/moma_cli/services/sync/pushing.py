"""`moma push`, the pre-push hook's upload (`push_pointers`) and `publish` (a version that
just got a stage or semver): uploading what the remote lacks.

`push` sends the work tree's pointers and, always, every version the registry points at (a
stage or a semver registration; `models:tag` and the pre-push hook send those too), so
`NAME:production` can be downloaded wherever the tag is; `--all-branches`, `--all-tags`,
`--all-commits` and `--rev` add the pointers at those revisions, as DVC's flags do. A
manifest is uploaded only after every file it lists is on the remote.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from moma_cli.core import hashing
from moma_cli.core import pointer as pointer_mod
from moma_cli.errors import HashMismatchError, MomaError, ObjectMissingError
from moma_cli.services import revisions, workspace
from moma_cli.services.fsck import STALE_TMP_SECONDS as STALE_SECONDS
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.registry.model_version import ModelVersion
from moma_cli.services.repo import Repo
from moma_cli.services.sync.planning import (
    Transfer,
    Window,
    registry_pointers,
    version_label,
    within_targets,
)
from moma_cli.services.sync.remote_session import Remote, open_remote
from moma_cli.services.sync.results import TransferResult, named_failures
from moma_cli.storage import transfer
from moma_cli.storage.remote.sinks import Digests


def push(
    repo: Repo,
    targets: Sequence[str] | None = None,
    *,
    remote: str | None = None,
    jobs: int | None = None,
    verify: bool = False,
    cwd: Path | None = None,
    scope: revisions.Scope | None = None,
    progress: Progress = SILENT,
) -> TransferResult:
    """Upload what the remote lacks of the objects of the work tree's pointers, of every
    version the registry points at, and of the pointers at the revisions `scope` names;
    `targets` limit all of them to those paths."""
    pointers, errors = repo.pointers(targets, cwd)
    invalid = [e.message for e in errors]
    plan = Transfer()
    for ptr in pointers:
        plan.add(ptr)
    elsewhere = registry_pointers(repo)
    if scope is not None and not scope.empty:
        found = revisions.pointers_in(repo, revisions.commits(repo, scope))
        elsewhere += [(f" (at {where})", ptr) for where, ptr in found.pointers]
        invalid += [f"{where}: {exc.message}" for where, exc in found.errors]
    wanted = within_targets(repo, targets, cwd)
    for where, ptr in elsewhere:
        if wanted(ptr.path):
            plan.add(ptr, where)
    r = open_remote(repo, remote, jobs, create=True, verify=verify)
    result = _push(repo, r, plan, verify, progress)
    result.invalid = invalid
    result.warnings = sorted(r.store.damaged.values())
    # One listing: what killed pushes left behind (temps, incomplete multipart uploads).
    try:
        result.cleaned = r.store.clean_stale(STALE_SECONDS, time.time())
    except MomaError as exc:  # e.g. no permission to list uploads: the push itself succeeded
        result.clean_error = exc.message
    except OSError as exc:  # e.g. an S3 clone without ListMultipartUploads
        result.clean_error = str(exc)
    return result


def push_pointers(
    repo: Repo,
    labelled: Iterable[tuple[str, pointer_mod.Pointer]],
    *,
    remote: str | None = None,
    jobs: int | None = None,
    progress: Progress = SILENT,
) -> TransferResult:
    """Upload what the remote lacks of these pointers' objects; each comes with the text
    that follows its path in messages ("" for a work-tree pointer)."""
    plan = Transfer()
    for where, ptr in labelled:
        plan.add(ptr, where)
    r = open_remote(repo, remote, jobs, create=True)
    return _push(repo, r, plan, False, progress)


def publish(repo: Repo, version: ModelVersion,
            progress: Progress = SILENT) -> TransferResult | None:
    """Send a version that just got a stage or semver to the default remote, when one is
    set (None otherwise): the registry must not point at data nobody can download. The tag
    stands whatever happens here, so a failure is returned, never raised."""
    remote = repo.config.default_remote
    if remote is None:
        return None
    where = version_label(version)
    try:
        return push_pointers(repo, [(where, version.pointer)], progress=progress)
    except MomaError as exc:  # e.g. the remote is unreachable
        return TransferResult(remote=remote, hint="run 'moma push' once the remote is back",
                              failed={version.oid: f"{version.pointer.path}{where}: "
                                                   f"{exc.message}"})


def _push(repo: Repo, r: Remote, plan: Transfer, verify: bool,
          progress: Progress) -> TransferResult:
    """Push `plan` a window at a time (planning.WINDOW objects: existence, verification,
    upload, each durable on the remote before the next window), so memory does not grow
    with a directory's size; the listings go last, each only once every file it lists is
    on the remote."""
    result = TransferResult(remote=r.name)
    progress.start(f"pushing to {r.name}", plan.total or None)
    lacking: dict[str, int] = {}  # listing -> how many of its files are not on the remote
    for window in plan.windows(repo, plan.listings):
        failed = _push_window(repo, r, window, verify, result, progress)
        if window.listing is not None and failed:
            lacking[window.listing] = lacking.get(window.listing, 0) + failed
    for oid, count in lacking.items():
        result.failed[oid] = (f"{''.join(plan.listings[oid])}: directory listing "
                              f"{hashing.short_oid(oid)} not pushed: {count} of its files are "
                              "not on the remote")
    ready = [oid for oid in plan.listings if oid not in lacking]
    _push_window(repo, r, plan.listing_window(ready), verify, result, progress)
    progress.finish()
    return result


def _push_window(repo: Repo, r: Remote, window: Window, verify: bool, result: TransferResult,
                 progress: Progress) -> int:
    """Upload what the remote lacks of one window into `result`; returns how many of the
    window's objects are not on the remote afterwards."""
    oids = set(window.names)
    present = r.store.existing(oids)
    result.skipped += len(present)
    failed: dict[str, str] = {}
    local = []
    for oid in sorted(oids - present):
        if repo.cache.exists(oid):
            local.append(oid)
        else:
            failed[oid] = f"object {hashing.short_oid(oid)} is not in the cache"
    sizes, corrupt = _verified_cache(repo, local, r.jobs)
    failed.update(corrupt)
    progress.advance(len(failed) + (0 if verify else len(present)))
    done, not_sent = _upload(repo, r, list(sizes), sizes, progress)
    result.transferred += done
    failed.update(not_sent)
    lacking = len(failed)
    if verify and present:
        repaired, unrepaired = _repair(repo, r, sorted(present), progress)
        result.repaired += repaired
        failed.update(unrepaired)
    result.failed.update(named_failures(failed, window.names))
    return lacking


def _upload(repo: Repo, r: Remote, oids: list[str], sizes: dict[str, int],
            progress: Progress) -> tuple[list[str], dict[str, str]]:
    """Send these cache objects: many small ones in packs, the others one by one. They are
    on the remote, durably, once this returns."""
    objects = [(oid, repo.cache.oid_to_path(oid), sizes[oid]) for oid in oids]
    with r.store.uploads() as upload:
        return transfer.run_tasks(r.store.upload_tasks(objects, upload), jobs=r.jobs,
                                  on_done=progress.advance)


def _verified_cache(repo: Repo, oids: list[str],
                    jobs: int) -> tuple[dict[str, int], dict[str, str]]:
    """Check cache objects against their names before they leave (stat-cache memo, one
    lookup each: a window's objects are scattered over the whole cache), so a damaged cache
    object is never pushed; damaged ones are quarantined. Returns the good ones with their
    sizes, and the damaged ones with a message."""
    infos = []  # relpath carries the oid the object is named after
    for oid in oids:
        path = str(repo.cache.oid_to_path(oid))
        infos.append(workspace.FileInfo(oid, path, workspace.StatKey.of(os.stat(path))))
    actual = workspace.oids_of(repo, infos, store=False, jobs=jobs)
    good: dict[str, int] = {}
    corrupt: dict[str, str] = {}
    for info in infos:
        if actual[info.path] == info.relpath:
            good[info.relpath] = info.key.size
        else:
            moved = repo.cache.quarantine(info.relpath)
            corrupt[info.relpath] = (f"cache object {hashing.short_oid(info.relpath)} is "
                                     f"corrupt; moved aside to {moved}")
    return good, corrupt


def _repair(repo: Repo, r: Remote, oids: list[str],
            progress: Progress) -> tuple[list[str], dict[str, str]]:
    """push --verify: re-hash remote copies; replace those that do not match their name
    with the cache's copy. Returns (repaired, failed: oid -> message)."""
    digests = Digests(repo.cache.algo, repo.cache.tmp_dir)
    _, failed = transfer.run_tasks(r.store.read_tasks(oids, {}, digests), jobs=r.jobs,
                                   on_done=progress.advance)
    good = {}
    for oid in [oid for oid, (digest, _) in digests.found.items() if digest != oid]:
        try:
            good[oid] = repo.cache.checked_path(oid)
        except (ObjectMissingError, HashMismatchError):
            failed[oid] = (f"remote copy of {hashing.short_oid(oid)} is corrupt and there is "
                           "no good copy in the cache")
    r.store.replace(good)
    return sorted(good), failed

