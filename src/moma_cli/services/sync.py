"""`push`, `fetch`, `pull` and `status --remote`: moving objects between cache and remote.

`push` sends the work tree's pointers and, always, every version the registry points at (a
stage or a semver registration; `models:tag` and the pre-push hook send those too), so
`NAME:production` can be downloaded wherever the tag is; `--all-branches`, `--all-tags`,
`--all-commits` and `--rev` add the pointers at those revisions, as DVC's flags do.

Order matters for directories: a manifest is uploaded only after every file it lists is on
the remote, so a remote never holds a listing whose files are missing; fetch downloads the
manifest first (it says what else to fetch), then the files. Every download is verified
against its oid before it enters the cache (cache.Batch.add_stream).
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moma_cli.core import hashing, manifest
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.paths import is_within
from moma_cli.errors import HashMismatchError, MomaError, ObjectMissingError, RemoteError
from moma_cli.services import data_checkout, data_status, revisions, workspace
from moma_cli.services.fsck import STALE_TMP_SECONDS as STALE_SECONDS
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.registry import resolving
from moma_cli.services.registry.model_version import ModelVersion
from moma_cli.services.repo import Repo
from moma_cli.storage import fs, transfer
from moma_cli.storage.remote import open_store
from moma_cli.storage.remote.sinks import Digests, Download
from moma_cli.storage.remote.store import Store

MISSING_HINT = "run 'moma push' on the machine that added it"
CORRUPT_HINT = "run 'moma push --verify' on a machine that has the good data"


@dataclass
class TransferResult:
    transferred: list[str] = field(default_factory=list)
    skipped: int = 0  # already where they were going
    failed: dict[str, str] = field(default_factory=dict)  # oid -> message naming the file
    invalid: list[str] = field(default_factory=list)  # pointers that did not parse
    repaired: list[str] = field(default_factory=list)  # push --verify: bad remote copies replaced
    cleaned: list[str] = field(default_factory=list)  # push: stale leftovers of killed pushes
    clean_error: str | None = None  # push: why that cleanup could not run (push still ok)
    warnings: list[str] = field(default_factory=list)  # pack indexes ignored, naming each
    remote: str = ""
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.failed or self.invalid)

    def merge(self, other: TransferResult) -> None:
        self.transferred += other.transferred
        self.skipped += other.skipped
        self.failed.update(other.failed)
        self.repaired += other.repaired
        self.remote = other.remote or self.remote
        self.hint = self.hint or other.hint


@dataclass
class PullResult(TransferResult):
    checkout: data_checkout.CheckoutResult | None = None

    @property
    def ok(self) -> bool:
        return super().ok and (self.checkout is None or self.checkout.ok)


@dataclass
class Remote:
    """An opened remote: its store and its configured name."""

    store: Store
    name: str

    @property
    def jobs(self) -> int:
        """The transfer pool size, which the store sizes its own listings by too."""
        return self.store.jobs


@dataclass
class _Plan:
    """What a set of pointers needs: oids (files first, manifests apart) and whose they are."""

    files: set[str] = field(default_factory=set)
    manifests: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)  # oid -> workspace path
    sizes: dict[str, int] = field(default_factory=dict)
    unlisted: list[pointer_mod.Pointer] = field(default_factory=list)  # manifest not cached


def open_remote(repo: Repo, remote: str | None, jobs: int | None, *, create: bool,
                check: bool = True, verify: bool = False) -> Remote:
    """The configured remote, checked to be reachable (`check`); `verify` re-reads what
    the cache remembers of it (pack indexes) from the remote itself."""
    config = repo.config.remote(remote)
    location = fs.open_location(config, repo.root)
    if check:
        fs.check_reachable(location, create=create)
    workers = jobs or config.jobs or repo.config.jobs or transfer_jobs(location.is_local)
    store = open_store(location, repo.cache.algo, repo.cache.pack_indexes_dir, workers,
                       reread=verify)
    return Remote(store, config.name)


def transfer_jobs(local: bool = False) -> int:
    """Default pool size for transfers. Network transfers wait on round trips: 16 per core
    (pushing to S3, 32 threads beat 8). A local-directory remote is bounded by the kernel's
    file creation, and threads beyond a few only fight over the GIL: fetching 1 GiB + 10k
    files took 6.0 s with 4 threads against 8.7 s with 32 (docs/performance.md)."""
    cores = os.cpu_count() or 1
    return min(8, cores * 2) if local else min(64, cores * 16)


def _plan(repo: Repo, pointers: Iterable[pointer_mod.Pointer], plan: _Plan | None = None,
          where: str = "") -> _Plan:
    """Add the pointers' objects to `plan` (a new one by default); `where` follows their
    paths in messages, e.g. " (credit-risk:3, production)" for a pointer not in the work tree."""
    plan = _Plan() if plan is None else plan
    for ptr in pointers:
        plan.names.setdefault(ptr.oid, ptr.path + where)
        if not ptr.is_dir:
            plan.files.add(ptr.oid)
            plan.sizes[ptr.oid] = ptr.size
            continue
        plan.manifests.add(ptr.oid)
        try:
            entries = list(repo.cache.iter_manifest(ptr.oid))
        except (ObjectMissingError, HashMismatchError):  # a damaged one is quarantined
            plan.unlisted.append(ptr)
            continue
        for entry in entries:
            plan.files.add(entry.oid)
            plan.names.setdefault(entry.oid, posixpath.join(ptr.path, entry.relpath) + where)
            plan.sizes[entry.oid] = entry.size
    return plan


def expand(repo: Repo, pointers: Iterable[pointer_mod.Pointer]) -> set[str]:
    """Every oid the pointers need: files, and for directories the manifest and its entries
    (entries only when the manifest is in the cache)."""
    plan = _plan(repo, pointers)
    return plan.files | plan.manifests


def expand_named(repo: Repo, pointers: Iterable[pointer_mod.Pointer]) -> dict[str, str]:
    """`expand`, each oid with the workspace path it belongs to."""
    return _plan(repo, pointers).names


def registry_pointers(repo: Repo) -> list[tuple[str, pointer_mod.Pointer]]:
    """(where, pointer) of every version the registry points at (`resolving.pinned`)."""
    return [(_version_label(v), v.pointer) for v in resolving.pinned(repo)]


def _version_label(v: ModelVersion) -> str:
    held = ", ".join(v.stages + v.semvers)
    return f" ({v.name}:{v.version}{', ' + held if held else ''})"


def _within_targets(repo: Repo, targets: Sequence[str] | None,
                    cwd: Path | None) -> Callable[[str], bool]:
    """Whether a data path is one of `targets` or inside one (every path without targets)."""
    if targets is None:
        return lambda path: True
    rels = [pointer_mod.data_path_of(rel) if pointer_mod.is_pointer_path(rel) else rel
            for rel in (repo.relpath(t, cwd) for t in targets)]
    return lambda path: any(is_within(path, rel) for rel in rels)


def _named(failed: dict[str, str], names: dict[str, str]) -> dict[str, str]:
    return {oid: f"{names[oid]}: {msg}" if oid in names else msg for oid, msg in failed.items()}


# -- push ------------------------------------------------------------------------------------


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
    plan = _plan(repo, pointers)
    elsewhere = registry_pointers(repo)
    if scope is not None and not scope.empty:
        found = revisions.pointers_at(repo, revisions.commits(repo, scope))
        elsewhere += [(f" (at {where})", ptr) for where, ptr in found.pointers]
        invalid += [f"{where}: {exc.message}" for where, exc in found.errors]
    wanted = _within_targets(repo, targets, cwd)
    for where, ptr in elsewhere:
        if wanted(ptr.path):
            _plan(repo, [ptr], plan, where)
    r = open_remote(repo, remote, jobs, create=True, verify=verify)
    result = _push(repo, r, plan.files | plan.manifests, plan.names, plan.manifests,
                   verify, progress)
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
    plan = _Plan()
    for where, ptr in labelled:
        _plan(repo, [ptr], plan, where)
    r = open_remote(repo, remote, jobs, create=True)
    return _push(repo, r, plan.files | plan.manifests, plan.names, plan.manifests, False,
                 progress)


def publish(repo: Repo, version: ModelVersion,
            progress: Progress = SILENT) -> TransferResult | None:
    """Send a version that just got a stage or semver to the default remote, when one is
    set (None otherwise): the registry must not point at data nobody can download. The tag
    stands whatever happens here, so a failure is returned, never raised."""
    remote = repo.config.default_remote
    if remote is None:
        return None
    where = _version_label(version)
    try:
        return push_pointers(repo, [(where, version.pointer)], progress=progress)
    except MomaError as exc:  # e.g. the remote is unreachable
        return TransferResult(remote=remote, hint="run 'moma push' once the remote is back",
                              failed={version.oid: f"{version.pointer.path}{where}: "
                                                   f"{exc.message}"})


def _push(repo: Repo, r: Remote, oids: set[str], names: dict[str, str],
          manifests: set[str] | None, verify: bool, progress: Progress) -> TransferResult:
    result = TransferResult(remote=r.name)
    present = r.store.existing(oids)
    result.skipped = len(present)
    todo = sorted(oids - present)
    local = [oid for oid in todo if repo.cache.exists(oid)]
    for oid in sorted(set(todo) - set(local)):
        result.failed[oid] = f"object {hashing.short_oid(oid)} is not in the cache"
    sizes, corrupt = _verified_cache(repo, local, r.jobs)
    result.failed.update(corrupt)
    if manifests is None:
        manifests = {oid for oid in sizes if _is_manifest(repo, oid)}
    first = [oid for oid in sizes if oid not in manifests]
    last = [oid for oid in sizes if oid in manifests]
    progress.start(f"pushing to {r.name}", len(first) + len(last))

    done, failed = _upload(repo, r, first, sizes, progress)
    result.transferred += done
    result.failed.update(failed)
    on_remote = present | set(done)
    ready, blocked = _complete_manifests(repo, r, last, on_remote)
    result.failed.update(blocked)
    # A second batch: a listing lands only once every file it names is durably there.
    done, failed = _upload(repo, r, ready, sizes, progress)
    progress.finish()
    result.transferred += done
    result.failed.update(failed)
    if verify:
        result.repaired, failed = _repair(repo, r, sorted(present & oids), progress)
        result.failed.update(failed)
    result.failed = _named(result.failed, names)
    return result


def _upload(repo: Repo, r: Remote, oids: list[str], sizes: dict[str, int],
            progress: Progress) -> tuple[list[str], dict[str, str]]:
    """Send these cache objects: many small ones in packs, the others one by one."""
    objects = [(oid, repo.cache.oid_to_path(oid), sizes[oid]) for oid in oids]
    with r.store.uploads() as upload:
        return transfer.run_tasks(r.store.upload_tasks(objects, upload), jobs=r.jobs,
                                  on_done=progress.advance)


def _verified_cache(repo: Repo, oids: list[str],
                    jobs: int) -> tuple[dict[str, int], dict[str, str]]:
    """Check cache objects against their names before they leave (stat-cache memo), so a
    damaged cache object is never pushed; damaged ones are quarantined. Returns the good
    ones with their sizes, and the damaged ones with a message."""
    infos = []  # relpath carries the oid the object is named after
    for oid in oids:
        path = str(repo.cache.oid_to_path(oid))
        infos.append(workspace.FileInfo(oid, path, workspace.StatKey.of(os.stat(path))))
    actual = workspace.oids_of(repo, infos, store=False, tree=str(repo.cache.objects_dir),
                               jobs=jobs)
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


def _is_manifest(repo: Repo, oid: str) -> bool:
    header = manifest.encode([], repo.cache.algo)
    with open(repo.cache.oid_to_path(oid), "rb") as fh:
        return fh.read(len(header)) == header


def _complete_manifests(repo: Repo, r: Remote, manifests: list[str],
                        on_remote: set[str]) -> tuple[list[str], dict[str, str]]:
    """Manifests whose every entry is on the remote; the others are held back."""
    needs = {oid: {e.oid for e in repo.cache.iter_manifest(oid)} for oid in manifests}
    unknown = set().union(*needs.values()) - on_remote if needs else set()
    if unknown:
        on_remote = on_remote | r.store.existing(unknown)
    ready, blocked = [], {}
    for oid, entries in needs.items():
        lacking = entries - on_remote
        if lacking:
            blocked[oid] = (f"directory listing {hashing.short_oid(oid)} not pushed: "
                            f"{len(lacking)} of its files are not on the remote")
        else:
            ready.append(oid)
    return ready, blocked


def _repair(repo: Repo, r: Remote, oids: list[str],
            progress: Progress) -> tuple[list[str], dict[str, str]]:
    """push --verify: re-hash remote copies; replace those that do not match their name
    with the cache's copy. Returns (repaired, failed: oid -> message)."""
    progress.start(f"verifying {r.name}", len(oids))
    digests = Digests(repo.cache.algo, repo.cache.tmp_dir)
    _, failed = transfer.run_tasks(r.store.read_tasks(oids, {}, digests), jobs=r.jobs,
                                   on_done=progress.advance)
    progress.finish()
    good = {}
    for oid in [oid for oid, (digest, _) in digests.found.items() if digest != oid]:
        try:
            good[oid] = repo.cache.checked_path(oid)
        except (ObjectMissingError, HashMismatchError):
            failed[oid] = (f"remote copy of {hashing.short_oid(oid)} is corrupt and there is "
                           "no good copy in the cache")
    r.store.replace(good)
    return sorted(good), failed


# -- fetch / pull ----------------------------------------------------------------------------


def fetch(
    repo: Repo,
    targets: Sequence[str] | None = None,
    *,
    remote: str | None = None,
    jobs: int | None = None,
    cwd: Path | None = None,
    progress: Progress = SILENT,
) -> TransferResult:
    """Download the objects of the workspace pointers that the cache lacks."""
    pointers, errors = repo.pointers(targets, cwd)
    r = open_remote(repo, remote, jobs, create=False)
    plan = _plan(repo, pointers)
    # Manifests not cached yet come first: they say which files a directory needs.
    result = _fetch(repo, r, {p.oid for p in plan.unlisted}, plan, progress)
    listed = _plan(repo, [p for p in plan.unlisted if repo.cache.exists(p.oid)])
    plan.files |= listed.files
    plan.names |= listed.names
    plan.sizes |= listed.sizes
    rest = (plan.files | plan.manifests) - set(result.transferred) - set(result.failed)
    result.merge(_fetch(repo, r, rest, plan, progress))
    result.invalid = [e.message for e in errors]
    result.warnings = sorted(r.store.damaged.values())
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
    return _fetch(repo, r, set(oids), _Plan(), progress)


def _fetch(repo: Repo, r: Remote, oids: set[str], plan: _Plan,
           progress: Progress) -> TransferResult:
    result = TransferResult(remote=r.name)
    todo = sorted(oid for oid in oids if not repo.cache.exists(oid))
    result.skipped = len(oids) - len(todo)
    if not todo:
        return result
    progress.start(f"fetching from {r.name}", len(todo))
    # One batch: downloads are written without an fsync each, then made durable together.
    with repo.cache.batch() as batch:
        try:
            work = r.store.read_tasks(todo, plan.sizes, Download(r.store, batch))
            done, failed = transfer.run_tasks(work, jobs=r.jobs, on_done=progress.advance)
        except RemoteError:  # keep what arrived before the remote failed
            batch.commit()
            raise
    progress.finish()
    _remember_verified(repo, done)
    result.transferred = done
    result.failed = _named(failed, plan.names)
    if any("is corrupt" in msg for msg in failed.values()):
        result.hint = CORRUPT_HINT
    elif failed:
        result.hint = MISSING_HINT
    return result


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
    """fetch, then checkout: the workspace gets everything that could be downloaded."""
    fetched = fetch(repo, targets, remote=remote, jobs=jobs, cwd=cwd, progress=progress)
    result = PullResult(**vars(fetched))
    result.checkout = data_checkout.checkout(repo, targets, force=force, cwd=cwd, progress=progress)
    return result


# -- status --remote -------------------------------------------------------------------------


@dataclass
class RegistryGap:
    """A stage or semver registration whose version's data the remote lacks."""

    ref: str  # credit-risk:production, credit-risk@v1.0.0
    version: int
    path: str
    remote: str
    lacking: int  # objects not on the remote


@dataclass
class RemoteStatusResult(data_status.StatusResult):
    registry: list[RegistryGap] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return super().clean and not self.registry


def status(
    repo: Repo,
    targets: Sequence[str] | None = None,
    *,
    remote: str | None = None,
    jobs: int | None = None,
    cwd: Path | None = None,
) -> RemoteStatusResult:
    """`moma status` plus a 'not-pushed' state for data whose objects the remote lacks, and
    every stage or semver registration pointing at data the remote lacks."""
    result = RemoteStatusResult(data_status.status(repo, targets, cwd=cwd, jobs=jobs).entries)
    pointers, _ = repo.pointers(targets, cwd)
    r = open_remote(repo, remote, jobs, create=False, check=False)
    if not r.store.location.is_local:  # a local remote not pushed to yet simply holds nothing
        fs.check_reachable(r.store.location, create=False)
    wanted = _within_targets(repo, targets, cwd)
    pinned = [v for v in resolving.pinned(repo) if wanted(v.pointer.path)]
    needs = {ptr.path: expand(repo, [ptr]) for ptr in pointers}
    pinned_needs = [expand(repo, [v.pointer]) for v in pinned]
    present = r.store.existing(set().union(*needs.values(), *pinned_needs))
    for entry in result.entries:
        lacking = needs.get(entry.path, set()) - present
        if entry.state == "ok" and lacking:
            entry.state = "not-pushed"
            entry.message = f"{len(lacking)} object(s) not on remote '{r.name}'"
    for v, oids in zip(pinned, pinned_needs, strict=True):
        missing = len(oids - present)
        if missing:  # one line per stage and semver: each is a name someone may deploy
            refs = [f"{v.name}:{s}" for s in v.stages] + [f"{v.name}@{s}" for s in v.semvers]
            result.registry += [RegistryGap(ref, v.version or 0, v.pointer.path, r.name,
                                            missing) for ref in refs]
    return result


def on_remote(repo: Repo, oids: Iterable[str], *, remote: str | None = None,
              jobs: int | None = None) -> set[str]:
    """Which of these objects the remote already holds."""
    r = open_remote(repo, remote, jobs, create=False, check=False)
    return r.store.existing(oids)
