"""`moma exp show / apply / branch / remove`: the experiments recorded on hidden refs, read
from one `git for-each-ref`, brought into the work tree, turned into a branch or deleted."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from moma_cli.core import experiments
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.experiments import ExperimentError
from moma_cli.core.paths import check_repo_relpath
from moma_cli.errors import CheckoutConflictError
from moma_cli.services.repo import Repo


@dataclass
class Experiment:
    name: str
    base: str  # the commit it ran on
    commit: str
    ref: str
    created: str  # ISO 8601
    params: dict[str, Any] = field(default_factory=dict)  # FILE:KEY -> value set by -S
    metrics: dict[str, Any] = field(default_factory=dict)  # FILE:KEY -> number
    duration: float | None = None
    exit: int | None = None


def show(repo: Repo) -> list[Experiment]:
    """Every recorded experiment, oldest first."""
    found = []
    for rc in repo.git.ref_commits(experiments.REF_PREFIX):
        parts = experiments.split_ref(rc.ref)
        if parts is None:
            continue
        record = experiments.parse_record(rc.trailers)
        found.append(Experiment(parts[1], parts[0], rc.commit, rc.ref, rc.date, record.params,
                                record.metrics, record.duration, record.exit))
    return sorted(found, key=lambda e: (e.created, e.name))


def find(repo: Repo, name: str) -> Experiment:
    """The experiment called `name`: the one on HEAD when several commits have one."""
    experiments.check_exp_name(name)
    matches = [e for e in show(repo) if e.name == name]
    if len(matches) > 1:
        head = repo.git.head()
        matches = [e for e in matches if e.base == head] or matches
    if not matches:
        raise ExperimentError(f"no experiment {name!r}", hint="list them with 'moma exp show'")
    if len(matches) > 1:
        bases = ", ".join(e.base[:10] for e in matches)
        raise ExperimentError(f"experiment {name!r} exists on several commits: {bases}",
                              hint="check out the one you mean, then run the command again")
    return matches[0]


@dataclass
class DiffRow:
    kind: str  # param | metric
    key: str  # FILE:KEY
    a: Any
    b: Any

    @property
    def changed(self) -> bool:
        return self.a != self.b


def diff(repo: Repo, name_a: str, name_b: str) -> tuple[Experiment, Experiment, list[DiffRow]]:
    """`moma exp diff A B`: every param either set and every metric either measured, side by
    side (a value one of them lacks is None)."""
    a, b = find(repo, name_a), find(repo, name_b)
    rows = [DiffRow(kind, key, values_a.get(key), values_b.get(key))
            for kind, values_a, values_b in (("param", a.params, b.params),
                                             ("metric", a.metrics, b.metrics))
            for key in sorted({*values_a, *values_b})]
    return a, b, rows


@dataclass
class ApplyResult:
    name: str
    commit: str
    files: list[str] = field(default_factory=list)  # git files written from the experiment
    restored: list[str] = field(default_factory=list)  # outputs checked out from the cache


def apply(repo: Repo, name: str) -> ApplyResult:
    """Write the files the experiment changed (params, lock, metrics, pointers) into the work
    tree, then check its outputs out of the cache. The index is left as it was."""
    exp = find(repo, name)
    unsaved = repo.git.unsaved()
    if unsaved:
        raise ExperimentError(f"{unsaved[0]}: has unsaved changes",
                              hint="commit or stash them ('git stash'), then apply again")
    changes = repo.git.changed_paths(exp.base, exp.commit)
    written = [path for status, path in changes if status != "D"]
    for path in (p for status, p in changes if status == "D"):
        check_repo_relpath(path, "experiment file")
        repo.check_no_escape(path)
        if os.path.lexists(repo.abspath(path)):
            os.unlink(repo.abspath(path))
    repo.git.restore_worktree(exp.commit, written)
    pointers = [pointer_mod.data_path_of(p) for p in written if p.endswith(".moma")]
    result = ApplyResult(exp.name, exp.commit, [p for _, p in changes])
    if pointers:
        from moma_cli.services import data_checkout  # 0.1 s to import: not for `exp show`

        checked = data_checkout.checkout(repo, pointers)
        if not checked.ok:
            problem = (checked.conflicts + checked.missing + checked.corrupt + checked.invalid)[0]
            raise CheckoutConflictError(
                f"could not check out {problem} of experiment {name!r}",
                hint="'moma pull' the missing data, or save a modified output with 'moma add'")
        result.restored = checked.restored
    return result


def branch(repo: Repo, name: str, branch_name: str) -> Experiment:
    """A git branch at the experiment's commit (its parent is the commit it ran on)."""
    exp = find(repo, name)
    repo.git.create_branch(branch_name, exp.commit)
    return exp


def remove(repo: Repo, names: list[str]) -> list[Experiment]:
    """Delete the experiments' refs (all names are checked before any is deleted)."""
    found = [find(repo, name) for name in names]
    for exp in found:
        repo.git.delete_ref(exp.ref)
    return found
