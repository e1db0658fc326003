"""`moma gc`: move cache objects nothing refers to into an undoable, expiring quarantine.

What is kept is decided from pointers only, never guessed: the chosen scope (work tree,
branch tips, tags, every commit) plus, always, the work tree, the git index, every stash
entry, commits no git remote has yet, and the files listed by the directory manifests of
all of those. A pointer that does not parse anywhere in that set stops gc before anything
moves: freeing its objects on a guess is how users of other tools lost data.
"""

from __future__ import annotations

import calendar
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from moma_cli.core import experiments
from moma_cli.core import pointer as pointer_mod
from moma_cli.errors import GcError, MomaError
from moma_cli.services import revisions
from moma_cli.services.experiments import queue as exp_queue
from moma_cli.services.repo import Repo

QUARANTINE_DAYS = 14
_BATCH_FORMAT = "%Y%m%d-%H%M%S"


@dataclass
class GcPlan:
    remove: dict[str, int] = field(default_factory=dict)  # oid -> size in bytes
    kept: int = 0
    commits: int = 0  # commits whose pointers were read
    unknown_manifests: list[str] = field(default_factory=list)  # dir oids not in the cache
    remote: str | None = None  # gc --remote: the remote whose objects are planned

    @property
    def size(self) -> int:
        return sum(self.remove.values())


@dataclass
class GcResult:
    batch: str | None
    removed: int
    size: int
    expired: list[str] = field(default_factory=list)  # quarantine batches dropped for age


@dataclass
class UndoResult:
    batch: str
    restored: int
    already_present: int


def plan(
    repo: Repo, *, workspace: bool = False, all_branches: bool = False,
    all_tags: bool = False, all_commits: bool = False,
) -> GcPlan:
    """Work out what gc would remove; changes nothing."""
    running = exp_queue.running_entries(repo)
    if running:  # their cached outputs are on no ref yet (the queue's claims wait for gc)
        names = ", ".join(e.name for e in running)
        raise GcError(f"experiments are running ({names}): gc would take outputs they have "
                      "not recorded yet", hint="wait for 'moma exp queue start' to finish, "
                                               "then run gc again")
    result = GcPlan()
    keep = referenced(repo, result, workspace=workspace, all_branches=all_branches,
                      all_tags=all_tags, all_commits=all_commits)
    for oid in repo.cache.iter_oids():
        if oid in keep:
            result.kept += 1
            continue
        try:
            result.remove[oid] = os.stat(repo.cache.oid_to_path(oid)).st_size
        except FileNotFoundError:
            continue
    return result


def referenced(
    repo: Repo, result: GcPlan, *, workspace: bool = False, all_branches: bool = False,
    all_tags: bool = False, all_commits: bool = False,
) -> set[str]:
    """Every oid the scope and what is always kept need (for the cache and `gc --remote`).

    Counts read commits and directory manifests missing from the cache into `result`.
    """
    if not (workspace or all_branches or all_tags or all_commits):
        raise GcError("gc needs a scope: which pointers must keep their objects",
                      hint="pass --workspace, --all-branches, --all-tags and/or --all-commits")
    pointers = _workspace_pointers(repo) + _history_pointers(
        repo, result, all_branches=all_branches, all_tags=all_tags, all_commits=all_commits)
    return _oids_of(repo, pointers, result)


def _workspace_pointers(repo: Repo) -> list[pointer_mod.Pointer]:
    pointers = []
    for rel in repo.git.pointer_files():
        if not os.path.lexists(repo.root / rel):
            continue  # deleted from the work tree but staged: read from the index instead
        try:
            pointers.append(repo.load_pointer(rel))
        except MomaError as exc:
            raise _aborted("the work tree", exc) from None
    return pointers


def _history_pointers(
    repo: Repo, result: GcPlan, *, all_branches: bool, all_tags: bool, all_commits: bool,
) -> list[pointer_mod.Pointer]:
    """Pointers of the index, stashes, unpushed commits, experiments and the chosen history."""
    git = repo.git
    found: dict[str, tuple[str, str]] = {}  # blob sha -> (where, pointer path), first seen
    for path, sha in git.index_blobs().items():
        found.setdefault(sha, ("the git index", path))
    # experiments are local work too: their outputs exist nowhere but in this cache
    local = ["--branches", "--tags", f"--glob={experiments.REF_PREFIX}"] + (
        ["HEAD"] if git.head() else [])
    commits = git.commit_trees(*local, "--not", "--remotes")  # not yet pushed anywhere
    stash = git.stash_commits()
    if stash:
        commits |= git.commit_trees(*stash, walk=False)
    commits |= revisions.commits(repo, revisions.Scope(all_branches, all_tags, all_commits))
    result.commits = len(commits)
    read = revisions.pointers_in(repo, commits, found)
    if read.errors:
        where, exc = read.errors[0]
        raise _aborted(where, exc)
    return [ptr for _, ptr in read.pointers]


def _aborted(where: str, exc: MomaError) -> GcError:
    return GcError(f"{where}: {exc.message}; gc stopped, nothing was removed",
                   hint="fix or delete that pointer (a bad pointer would hide which objects "
                        "are still needed), then run gc again")


def _oids_of(repo: Repo, pointers: list[pointer_mod.Pointer], result: GcPlan) -> set[str]:
    """Objects the pointers need: their oids and, for directories, every manifest entry."""
    keep = {p.oid for p in pointers}
    for oid in sorted({p.oid for p in pointers if p.is_dir}):
        if not repo.cache.exists(oid):
            result.unknown_manifests.append(oid)
            continue
        keep.update(entry.oid for entry in repo.cache.iter_manifest(oid))
    return keep


# -- quarantine ------------------------------------------------------------------------------


def gc_quarantine(repo: Repo) -> Path:
    return repo.cache.quarantine_dir / "gc"


def collect(repo: Repo, gc_plan: GcPlan, *, now: float | None = None) -> GcResult:
    """Move the planned objects into a new quarantine batch; drop batches past expiry."""
    now = time.time() if now is None else now
    expired = expire(repo, now)
    if not gc_plan.remove:
        return GcResult(None, 0, 0, expired)
    batch = _new_batch(repo, now)
    removed = size = 0
    for oid, nbytes in gc_plan.remove.items():
        src = repo.cache.oid_to_path(oid)
        dest = batch / os.path.relpath(src, repo.cache.root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dest)
        except FileNotFoundError:
            continue
        removed += 1
        size += nbytes
    return GcResult(batch.name, removed, size, expired)


def _new_batch(repo: Repo, now: float) -> Path:
    base = gc_quarantine(repo) / time.strftime(_BATCH_FORMAT, time.gmtime(now))
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")


def batches(repo: Repo) -> list[str]:
    """Quarantine batch ids, oldest first (ids are UTC timestamps, so they sort by age)."""
    root = gc_quarantine(repo)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _batch_time(p.name))


def _batch_time(batch: str) -> float | None:
    try:
        return calendar.timegm(time.strptime(batch[:15], _BATCH_FORMAT))
    except ValueError:
        return None


def expire(repo: Repo, now: float) -> list[str]:
    cutoff = now - QUARANTINE_DAYS * 86400
    old = [b for b in batches(repo) if (_batch_time(b) or now) < cutoff]
    for batch in old:
        shutil.rmtree(gc_quarantine(repo) / batch)
    return old


def undo(repo: Repo, batch: str | None = None) -> UndoResult:
    """Put a quarantine batch (default: the most recent) back into the cache."""
    available = batches(repo)
    if batch is None:
        if not available:
            raise GcError("nothing to undo: the gc quarantine is empty")
        batch = available[-1]
    elif batch not in available:
        raise GcError(f"no gc batch {batch!r} in the quarantine",
                      hint=f"batches: {', '.join(available) or 'none'}")
    top = gc_quarantine(repo) / batch
    restored = present = 0
    for dirpath, _, files in os.walk(top):
        for name in files:
            src = Path(dirpath, name)
            dest = repo.cache.root / src.relative_to(top)
            if dest.exists():
                os.unlink(src)
                present += 1
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
            restored += 1
    shutil.rmtree(top)
    return UndoResult(batch, restored, present)


def purge_quarantine(repo: Repo) -> list[str]:
    """Delete every gc quarantine batch for good; returns the batch ids removed."""
    removed = batches(repo)
    shutil.rmtree(gc_quarantine(repo), ignore_errors=True)
    return removed
