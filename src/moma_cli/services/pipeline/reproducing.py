"""`moma repro`: per stage in topological order, why it must run (hashes, params and
command against `moma.lock`), then run it, restore its missing outputs from the cache, or
skip it; `--dry` says which without changing anything."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from moma_cli.core.paths import is_within
from moma_cli.core.stages import Dag, PipelineError
from moma_cli.errors import PathError
from moma_cli.services import lockfile
from moma_cli.services.pipeline import staleness
from moma_cli.services.pipeline.executors import open_executor
from moma_cli.services.pipeline.loading import load_dag
from moma_cli.services.pipeline.running import StageFailedError, StageOutcome
from moma_cli.services.pipeline.scheduling import StageFailure, run_stages
from moma_cli.services.repo import Repo


@dataclass
class ReproResult:
    stages: list[StageOutcome] = field(default_factory=list)
    failed: list[StageFailure] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # left out because a stage failed

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.stages if s.action in ("ran", "would-run")]

    def check(self) -> None:
        """Raise the first failure, for callers that stop at one (`moma heal`)."""
        if self.failed:
            raise StageFailedError(self.failed[0].message, self.failed[0].hint)


def repro(repo: Repo, targets: list[str] | None = None, *, force: bool = False,
          dry: bool = False, jobs: int | None = None,
          executor: str | None = None) -> ReproResult:
    """Bring `targets` (default: every stage) up to date. Up to `jobs` commands run at once
    on `executor` (see executors.open_executor); a failure stops new stages from starting
    and is returned in `failed`, after the running ones have finished and been recorded."""
    dag = load_dag(repo)
    for name in targets or []:
        if name not in dag.stages:
            raise PipelineError(f"unknown stage {name!r}",
                                hint=f"stages: {', '.join(dag.order) or 'none'}")
    order = dag.closure(targets) if targets else dag.order
    _check_sources(repo, dag, order)
    if dry:
        return ReproResult(_dry(repo, dag, order, force))
    with open_executor(executor, jobs) as pool:
        run = run_stages(repo, dag, order, pool, force=force)
    return ReproResult(run.outcomes, run.failed, run.not_run)


def _dry(repo: Repo, dag: Dag, order: list[str], force: bool) -> list[StageOutcome]:
    outcomes = []
    pending: dict[str, str] = {}  # path -> stage that would rewrite it
    restoring: list[str] = []  # outputs that would be restored to their locked version
    for name in order:
        stage = dag.stages[name]
        locked = lockfile.read(repo).get(name)
        upstream = sorted({owner for path, owner in pending.items()
                           for dep in stage.deps if is_within(dep, path) or is_within(path, dep)})
        if force:
            reasons = ["forced"]
        elif upstream:
            reasons = [f"upstream stage {u!r} would run" for u in upstream]
        else:
            reasons = staleness.reasons(repo, stage, locked, restoring)
        stale: list[str] = []
        if not reasons and locked is not None:
            stale, reasons = staleness.stale_outputs(repo, stage, locked)
        if reasons:
            pending.update(dict.fromkeys(stage.produces, name))
            outcomes.append(StageOutcome(name, "would-run", reasons))
        elif stale:
            restoring += stale
            outcomes.append(StageOutcome(name, "would-restore", restored=stale))
        else:
            outcomes.append(StageOutcome(name, "unchanged"))
    return outcomes


def _check_sources(repo: Repo, dag: Dag, order: list[str]) -> None:
    """Inputs no stage produces must be in the workspace before the first stage runs (a
    pointer alone satisfies the DAG check, but a command cannot read a pointer)."""
    for name in order:
        for dep in dag.stages[name].deps:
            if dag.producer(dep) is None and not os.path.lexists(repo.abspath(dep)):
                raise PathError(f"dependency {dep} of stage {name!r} is not in the workspace",
                                hint="run 'moma checkout' (or 'moma pull') first")
