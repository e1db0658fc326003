"""Running the stale stages of a repro: each starts once every stage it depends on has
finished, up to the executor's limit at a time. Only the shell commands run concurrently;
deciding, hashing, caching and every `moma.lock` write happen here, in the calling thread,
one stage at a time, so the lock comes out as a serial run writes it.

Failure policy: the first failure (a command's exit status, a missing output, a dependency
gone) stops new stages from starting; the commands already running finish and are
recorded; every failure is returned, with the stages that were left out.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field

from moma_cli.core.stages import Dag, Stage
from moma_cli.errors import MomaError
from moma_cli.services import lockfile
from moma_cli.services.pipeline import staleness
from moma_cli.services.pipeline.executors import CommandResult, Executor
from moma_cli.services.pipeline.running import (
    StageInputs,
    StageOutcome,
    command_failed,
    prepare,
    record,
    run_command,
)
from moma_cli.services.repo import Repo


@dataclass(frozen=True)
class StageFailure:
    name: str
    message: str
    hint: str | None = None
    stderr_tail: str = ""  # from a remote worker; a local command printed its own
    returncode: int | None = None  # the command's exit status, when it ran and failed


@dataclass
class StagesRun:
    outcomes: list[StageOutcome] = field(default_factory=list)  # in topological order
    failed: list[StageFailure] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Launched:
    name: str
    inputs: StageInputs
    reasons: list[str]


def run_stages(repo: Repo, dag: Dag, order: list[str], pool: Executor, *,
               force: bool) -> StagesRun:
    wanted = set(order)
    upstream = {name: [u for u in dag.upstream(name) if u in wanted] for name in order}
    outcomes: dict[str, StageOutcome] = {}
    run = StagesRun()
    waiting = list(order)
    running: dict[Future[CommandResult], _Launched] = {}
    while True:
        for name in list(waiting):
            if run.failed or (pool.limit is not None and len(running) >= pool.limit):
                break
            if not all(u in outcomes for u in upstream[name]):
                continue
            waiting.remove(name)
            try:
                started = _start(repo, dag, name, force, outcomes, pool)
            except MomaError as exc:
                run.failed.append(StageFailure(name, exc.message, exc.hint))
                continue
            if isinstance(started, tuple):
                running[started[0]] = started[1]
            else:
                outcomes[name] = started
        if not running:
            break
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in sorted(finished, key=lambda f: order.index(running[f].name)):
            launched = running.pop(future)
            failure = _finish(repo, dag, launched, future, outcomes)
            if failure is not None:
                run.failed.append(failure)
    run.outcomes = [outcomes[n] for n in order if n in outcomes]
    failed = {f.name for f in run.failed}
    run.not_run = [n for n in order if n not in outcomes and n not in failed]
    return run


def _start(repo: Repo, dag: Dag, name: str, force: bool, outcomes: dict[str, StageOutcome],
           pool: Executor) -> StageOutcome | tuple[Future[CommandResult], _Launched]:
    """Decide a stage whose upstream stages are done: skip it, restore its outputs, or
    prepare it and hand its command to the pool."""
    stage = dag.stages[name]
    locked = lockfile.read(repo).get(name)
    reasons = ["forced"] if force else staleness.reasons(repo, stage, locked, [])
    stale: list[str] = []
    if not reasons and locked is not None:
        stale, reasons = staleness.stale_outputs(repo, stage, locked)
    if reasons:
        inputs = prepare(repo, stage)
        if stage.notebook is not None:  # papermill runs its kernel from this process
            return _run_here(stage, repo, inputs), _Launched(name, inputs, reasons)
        return pool.submit(stage, repo.root), _Launched(name, inputs, reasons)
    if stale:
        staleness.restore(repo, stale)
        return StageOutcome(name, "restored", restored=stale)
    return StageOutcome(name, "unchanged")


def _run_here(stage: Stage, repo: Repo, inputs: StageInputs) -> Future[CommandResult]:
    """A notebook stage, executed now: its kernel is a process of its own already, and
    papermill reports the failing cell, which a shell exit code would not carry."""
    done: Future[CommandResult] = Future()
    try:
        run_command(stage, repo.root, inputs.params)
        done.set_result(CommandResult(0))
    except MomaError as exc:
        done.set_exception(exc)
    return done


def _finish(repo: Repo, dag: Dag, launched: _Launched, future: Future[CommandResult],
            outcomes: dict[str, StageOutcome]) -> StageFailure | None:
    stage = dag.stages[launched.name]
    try:
        result = future.result()
        if result.returncode != 0:
            error = command_failed(stage, result.returncode)
            return StageFailure(stage.name, error.message, error.hint, result.stderr_tail,
                                result.returncode)
        outcomes[stage.name] = record(repo, stage, launched.inputs, launched.reasons)
    except MomaError as exc:
        return StageFailure(stage.name, exc.message, exc.hint)
    except Exception as exc:  # noqa: BLE001 - a lost Dask worker fails the stage, not moma
        return StageFailure(stage.name, f"stage {stage.name!r} failed on its executor: {exc}",
                            "check the workers' logs; nothing was recorded for this stage")
    return None
