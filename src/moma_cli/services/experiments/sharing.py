"""`moma exp push / pull`: experiments between repositories, the refs through git and the
outputs through the moma remote. Pushing sends the data first and the refs only when all of
it arrived, so nobody pulls an experiment whose outputs are nowhere; pulling takes only refs
named like experiments and validates every pointer they hold before using it."""

from __future__ import annotations

from dataclasses import dataclass, field

from moma_cli.core import experiments
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.experiments import ExperimentError
from moma_cli.services import revisions
from moma_cli.services.experiments import records
from moma_cli.services.repo import Repo
from moma_cli.services.sync import fetching, pushing
from moma_cli.services.sync.planning import plan_pointers
from moma_cli.services.sync.results import TransferResult


@dataclass
class ShareResult:
    git_remote: str
    names: list[str] = field(default_factory=list)  # experiments whose refs moved
    transfer: TransferResult = field(default_factory=TransferResult)

    @property
    def ok(self) -> bool:
        return self.transfer.ok


def push(repo: Repo, git_remote: str, names: list[str], remote: str | None = None,
         jobs: int | None = None) -> ShareResult:
    """Upload the experiments' outputs to the moma remote, then push their refs."""
    chosen = [records.find(repo, n) for n in names] if names else records.show(repo)
    if not chosen:
        raise ExperimentError("no experiments to push", hint="run one with 'moma exp run'")
    pointers = _pointers(repo, [e.commit for e in chosen])
    result = ShareResult(git_remote, transfer=pushing.push_pointers(
        repo, pointers, remote=remote, jobs=jobs))
    if result.ok:
        repo.git.push_refs(git_remote, [e.ref for e in chosen])
        result.names = [e.name for e in chosen]
    return result


def pull(repo: Repo, git_remote: str, names: list[str], remote: str | None = None,
         jobs: int | None = None) -> ShareResult:
    """Fetch the experiments' refs from the git remote, then their outputs into the cache."""
    wanted: dict[str, str] = {}  # ref -> name
    for ref in repo.git.remote_refs(git_remote, experiments.REF_PREFIX):
        parts = experiments.split_ref(ref)
        if parts is not None and (not names or parts[1] in names):
            wanted[ref] = parts[1]
    absent = sorted(set(names) - set(wanted.values()))
    if absent or not wanted:
        what = f"experiment {absent[0]!r}" if absent else "experiments"
        raise ExperimentError(f"git remote {git_remote!r} has no {what}",
                              hint="push them there with 'moma exp push' first")
    repo.git.fetch_refs(git_remote, sorted(wanted))
    commits = [rc.commit for rc in repo.git.ref_commits(experiments.REF_PREFIX)
               if rc.ref in wanted]
    result = ShareResult(git_remote, sorted(set(wanted.values())))
    ptrs = [ptr for _, ptr in _pointers(repo, commits)]
    plan = plan_pointers(repo, ptrs)
    result.transfer = fetching.fetch_oids(repo, plan.files | plan.manifests, remote=remote,
                                          jobs=jobs)
    if plan.unlisted and result.transfer.ok:  # directories: their listings came just now
        rest = plan_pointers(repo, plan.unlisted)
        result.transfer.merge(fetching.fetch_oids(repo, rest.files, remote=remote, jobs=jobs))
    return result


def _pointers(repo: Repo, commits: list[str]) -> list[tuple[str, pointer_mod.Pointer]]:
    """The pointers in these commits, each labelled for messages; a bad one stops here."""
    found = revisions.pointers_at(repo, *commits)
    if found.errors:
        where, exc = found.errors[0]
        raise ExperimentError(f"{where}: {exc.message}",
                              hint="remove that experiment ('moma exp remove NAME')")
    return [(f" (at {where})", ptr) for where, ptr in found.pointers]
