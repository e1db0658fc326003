"""`moma status -r`: the work tree's status plus what the remote lacks, of the
workspace pointers and of every stage or semver registration; and `on_remote`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moma_cli.services import data_status
from moma_cli.services.registry import resolving
from moma_cli.services.repo import Repo
from moma_cli.services.sync.planning import expand, within_targets
from moma_cli.services.sync.remote_session import open_remote
from moma_cli.storage import fs


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
    wanted = within_targets(repo, targets, cwd)
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
