"""`moma check --rollback`: a stage whose version breaks a `rollback` condition moves back
to the most recent earlier version that passes.

The breach is what `moma check` finds (recorded metrics, and live ones with `--live`). The
version to go back to is the newest one older than the offender whose `block` and
`rollback` conditions pass on what is known of it: its own recorded metrics, and its live
metrics when the prediction log holds lines it answered. A condition on a metric nothing
records for it (e.g. drift of a version that served no traffic in the window) is not held
against it. The move is an ordinary stage tag (`models:tag`), its message saying why, so
`models:history` shows the rollback and GTO reads it as an assignment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moma_cli.core import checks as checks_mod
from moma_cli.core import refs as refs_mod
from moma_cli.core.checks import ModelPolicy
from moma_cli.services import checks, monitor
from moma_cli.services.checks import CheckReport, ConditionResult, ModelReport
from moma_cli.services.registry import reading, tagging
from moma_cli.services.registry.model_version import ModelVersion
from moma_cli.services.repo import Repo

PRODUCTION = "production"


@dataclass
class RollbackResult:
    model: str
    stage: str | None
    from_version: int | None
    reason: str
    to_version: int | None = None
    tag: str | None = None
    message: str = ""

    @property
    def rolled_back(self) -> bool:
        return self.tag is not None


@dataclass
class CheckedAndRolledBack:
    report: CheckReport
    rollbacks: list[RollbackResult] = field(default_factory=list)


def check_and_roll_back(repo: Repo, model_refs: Sequence[str] | None = None, *,
                        live_log: Path | None = None, window: int | None = None,
                        feedback: Path | None = None,
                        now: float | None = None) -> CheckedAndRolledBack:
    report = checks.check(repo, model_refs, live_log=live_log, window=window,
                          feedback=feedback, now=now)
    result = CheckedAndRolledBack(report)
    live = _LiveSource(live_log, window, feedback, now)
    for model in report.models:
        failed = [c for c in model.conditions if not c.passed and c.on_fail == "rollback"]
        if failed and model.version is not None:
            result.rollbacks.append(_roll_back(repo, model, failed, live))
    return result


@dataclass(frozen=True)
class _LiveSource:
    log: Path | None
    window: int | None
    feedback: Path | None
    now: float | None


def _roll_back(repo: Repo, model: ModelReport, failed: list[ConditionResult],
               live: _LiveSource) -> RollbackResult:
    stage = refs_mod.parse(model.ref).stage or (PRODUCTION if PRODUCTION in model.stages
                                                else None)
    reason = (f"rollback of v{model.version}: "
              + "; ".join(f"{c.condition} ({c.message})" for c in failed))
    result = RollbackResult(model.name, stage, model.version, reason)
    if stage is None:
        result.message = (f"v{model.version} holds no stage to roll back; check "
                          f"'{model.name}:production' to roll production back")
        return result
    policy = repo.config.models[model.name]
    older = [v for v in reading.load(repo, workspace=False).of(model.name)
             if v.number and model.version is not None and v.number < model.version]
    for candidate in sorted(older, key=lambda v: v.number, reverse=True):
        if _passes(policy, _known_metrics(candidate, live)):
            tagged = tagging.tag(repo, f"{model.name}:{candidate.number}", stage,
                                 force=reason, reason=reason)
            result.to_version, result.tag = candidate.number, tagged.created[0]
            result.message = (f"{stage} rolled back from v{model.version} to "
                              f"v{candidate.number}")
            return result
    result.message = (f"no version older than v{model.version} passes its conditions; "
                      f"{stage} left on v{model.version}")
    return result


def _known_metrics(version: ModelVersion, live: _LiveSource) -> Mapping[str, Any]:
    metrics: dict[str, Any] = dict(version.metrics)
    if live.log is not None:
        measured = monitor.live_metrics(version, live.log, window=live.window,
                                        feedback=live.feedback, now=live.now)
        if measured.rows or measured.requests:
            metrics |= measured.metrics()
    return metrics


def _passes(policy: ModelPolicy, metrics: Mapping[str, Any]) -> bool:
    """Every `block` and `rollback` condition known for the version passes, and at least
    one is known: a version nothing was ever measured on is no place to go back to."""
    judged = 0
    for condition in policy.checks:
        if condition.on_fail not in ("block", "rollback"):
            continue
        try:
            checks_mod.lookup_metric(metrics, condition.metric)
        except KeyError:
            continue  # nothing known of it for this version: not held against it
        if not checks_mod.evaluate(condition, metrics).passed:
            return False
        judged += 1
    return judged > 0
