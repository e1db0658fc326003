"""Looking after a remote: `moma gc --remote`, `moma fsck -r`, `moma remote clean`.

Unlike the cache, a remote has no quarantine: what `gc --remote` deletes is gone. So the
objects to keep come from exactly the same references as the cache's gc (`gc.referenced`),
a directory whose listing is neither in the cache nor on the remote stops it, and fsck only
reads: repairing is `moma push --verify`, from a machine that has the good data.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from moma_cli.core import hashing
from moma_cli.errors import GcError
from moma_cli.services import gc
from moma_cli.services.fsck import STALE_TMP_SECONDS, Missing
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo
from moma_cli.services.sync.fetching import fetch_oids
from moma_cli.services.sync.planning import expand_named
from moma_cli.services.sync.remote_session import open_remote
from moma_cli.services.sync.results import CORRUPT_HINT, MISSING_HINT
from moma_cli.storage import transfer
from moma_cli.storage.remote.sinks import Digests

# -- gc --remote -----------------------------------------------------------------------------


def gc_plan(
    repo: Repo, remote: str, *, workspace: bool = False, all_branches: bool = False,
    all_tags: bool = False, all_commits: bool = False, jobs: int | None = None,
) -> gc.GcPlan:
    """Which remote objects nothing in the scope refers to; changes nothing on the remote."""
    result = gc.GcPlan()
    keep = gc.referenced(repo, result, workspace=workspace, all_branches=all_branches,
                         all_tags=all_tags, all_commits=all_commits)
    r = open_remote(repo, remote, jobs, create=False)
    result.remote = r.name
    keep |= _listed_by_remote_manifests(repo, result, remote, jobs)
    for oid, size in r.store.listing().items():
        if oid in keep:
            result.kept += 1
        else:
            result.remove[oid] = size
    return result


def _listed_by_remote_manifests(repo: Repo, result: gc.GcPlan, remote: str,
                                jobs: int | None) -> set[str]:
    """Files of directories whose listing the cache lacks: fetch the listing (verified). A
    listing found nowhere stops gc: deleting without it could free files still in use."""
    if not result.unknown_manifests:
        return set()
    fetch_oids(repo, result.unknown_manifests, remote=remote, jobs=jobs)
    lacking = [oid for oid in result.unknown_manifests if not repo.cache.exists(oid)]
    if lacking:
        raise GcError(
            f"directory listing {hashing.short_oid(lacking[0])} is not in the cache and could "
            f"not be fetched from remote '{result.remote}' ({len(lacking)} such); gc stopped, "
            "nothing was deleted",
            hint="push it from a clone that has it ('moma push'), then run gc again")
    listed = {entry.oid for oid in result.unknown_manifests
              for entry in repo.cache.iter_manifest(oid)}
    result.unknown_manifests = []
    return listed


def gc_collect(repo: Repo, plan: gc.GcPlan, *, jobs: int | None = None) -> gc.GcResult:
    """Delete the planned objects from the remote, for good."""
    r = open_remote(repo, plan.remote, jobs, create=False)
    r.store.delete(sorted(plan.remove))
    return gc.GcResult(None, len(plan.remove), plan.size)


# -- fsck -r ---------------------------------------------------------------------------


@dataclass
class RemoteCorrupt:
    oid: str
    path: str  # the workspace path it belongs to, "" when no work-tree pointer uses it
    reason: str


@dataclass
class RemoteFsckResult:
    remote: str
    checked: int = 0
    sampled: bool = False
    corrupt: list[RemoteCorrupt] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # pointers that did not parse
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing or self.invalid)


def fsck(
    repo: Repo, *, remote: str | None = None, sample: int | None = None,
    jobs: int | None = None, progress: Progress = SILENT,
) -> RemoteFsckResult:
    """Download and re-hash remote objects: all of them, or a random `sample` of those the
    work tree's pointers use; report corrupt ones and the used ones the remote lacks."""
    r = open_remote(repo, remote, jobs, create=False, verify=True)
    pointers, errors = repo.pointers()
    needed = expand_named(repo, pointers)
    result = RemoteFsckResult(r.name, invalid=[e.message for e in errors],
                              sampled=sample is not None)
    sizes: dict[str, int] = {}
    if sample is None:
        sizes = r.store.listing()
        present = set(sizes)
        todo = sorted(present)
    else:
        present = r.store.existing(needed)
        todo = sorted(random.sample(sorted(present), min(sample, len(present))))
    progress.start(f"verifying {r.name}", len(todo))
    digests = Digests(repo.cache.algo, repo.cache.tmp_dir)
    done, unreadable = transfer.run_tasks(r.store.read_tasks(todo, sizes, digests),
                                          jobs=r.jobs, on_done=progress.advance)
    progress.finish()
    vanished = digests.vanished  # deleted while we were reading
    result.checked = len(done) - len(vanished)
    bad = {oid: "empty (0 bytes)" if nbytes == 0 else
           f"content hashes to {hashing.short_oid(digest)} ({nbytes} bytes)"
           for oid, (digest, nbytes) in digests.found.items() if digest != oid}
    bad |= {oid: f"unreadable: {message}" for oid, message in unreadable.items()}
    bad |= r.store.damaged  # packid -> why its index is not trusted
    result.corrupt = [RemoteCorrupt(oid, needed.get(oid, ""), bad[oid]) for oid in sorted(bad)]
    gone = (set(needed) - present) | set(vanished)
    result.missing = [Missing(needed.get(oid, ""), oid) for oid in sorted(gone)]
    if result.corrupt:
        result.hint = CORRUPT_HINT
    elif result.missing:
        result.hint = MISSING_HINT
    return result


# -- remote clean ----------------------------------------------------------------------------


@dataclass
class CleanResult:
    remote: str
    older_than: float
    removed: list[str] = field(default_factory=list)


def clean(repo: Repo, remote: str | None = None, *,
          older_than: float = STALE_TMP_SECONDS) -> CleanResult:
    """Remove what interrupted pushes left on the remote: `.moma-tmp-*` files of a
    local-directory remote, incomplete S3 multipart uploads; only those older than
    `older_than` seconds (a younger one may be a push running elsewhere)."""
    r = open_remote(repo, remote, None, create=False)
    return CleanResult(r.name, older_than, r.store.clean_stale(older_than, time.time()))
