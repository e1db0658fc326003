"""`moma check`: evaluate each model's quality gates, send alerts, report stale models.

Models are registry references (`NAME`, `NAME:4`, `NAME:production`, `NAME@REV`) resolved by
services/registry/; metrics come from that version's `model.metrics` or from a fresh
metrics file; the conditions and the retraining schedule from `models:` in `.moma.yaml`
(core/checks.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from moma_cli.core import checks as checks_mod
from moma_cli.core import metrics as metrics_mod
from moma_cli.core import refs as refs_mod
from moma_cli.core.checks import ModelPolicy, Outcome
from moma_cli.errors import ConfigError, MomaError
from moma_cli.services.registry import resolving
from moma_cli.services.registry.index import ShallowCloneError
from moma_cli.services.registry.model_version import ModelVersion, Registry
from moma_cli.services.repo import Repo

WEBHOOK_TIMEOUT = 5.0  # seconds: a dead alert endpoint must not hang CI


@dataclass
class ConditionResult:
    condition: str
    metric: str
    on_fail: str
    actual: float | None
    passed: bool
    message: str


@dataclass
class AlertResult:
    payload: dict[str, Any]
    delivered: bool
    error: str | None = None


PRODUCTION = "production"


@dataclass
class ModelReport:
    name: str
    ref: str  # the reference checked: NAME (latest), NAME:4, NAME:production, NAME@REV
    path: str | None  # tracked data path; None when the reference resolves to no version
    oid: str | None
    version: int | None  # registry version; None when uncommitted or unresolved
    metrics_from: str  # "pointer", the metrics file, or "" when there were none
    label: str = ""  # "v4", "v5 (uncommitted)"
    stages: list[str] = field(default_factory=list)  # stages the checked version holds
    production: int | None = None  # the version in stage production, when one is
    conditions: list[ConditionResult] = field(default_factory=list)
    alerts: list[AlertResult] = field(default_factory=list)
    last_changed: str | None = None  # ISO time (UTC) of the checked version's commit
    retrain_due: str | None = None
    stale: bool = False
    error: str | None = None

    @property
    def blocked(self) -> bool:
        # a version that breaks a rollback condition must not stay where it is either
        return any(not c.passed and c.on_fail in ("block", "rollback")
                   for c in self.conditions)

    @property
    def needs_retrain(self) -> bool:
        return self.stale or any(not c.passed and c.on_fail == "retrain" for c in self.conditions)


@dataclass
class CheckReport:
    models: list[ModelReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(m.blocked for m in self.models)


def check(
    repo: Repo,
    model_refs: Sequence[str] | None = None,
    *,
    metrics_file: Path | None = None,
    live_log: Path | None = None,
    window: int | None = None,
    feedback: Path | None = None,
    send_alerts: bool = True,
    now: float | None = None,
) -> CheckReport:
    """Check each reference (default: every model under `models:` at its latest version).
    `live_log`: also the live metrics of each version from this prediction log
    (services/monitor.py: `drift.psi.max`, `live.error_rate`, ...), over the last `window`
    seconds when given, with `live.accuracy` when `feedback` labels its requests."""
    parsed = [refs_mod.parse(ref) for ref in dict.fromkeys(model_refs or [])]  # before git
    chosen = _chosen(repo, parsed)
    if metrics_file is not None and len(chosen) != 1:
        raise ConfigError("--metrics applies to one model; name it",
                          hint="e.g. moma check credit-risk --metrics metrics.json")
    fresh = (metrics_mod.read_file(metrics_file, str(metrics_file))
             if metrics_file is not None else None)
    resolver = resolving.Resolver(repo)
    when = time.time() if now is None else now
    report = CheckReport()
    if feedback is not None and live_log is None:
        raise ConfigError("--feedback labels the requests of a prediction log",
                          hint="add --live LOG")
    live = None if live_log is None else _Live(live_log, window, when, feedback)
    for policy, ref in chosen:
        model = _evaluate(policy, ref, resolver, fresh, metrics_file, when, live)
        if send_alerts:
            model.alerts = [_alert(repo.config.alert_webhook, model, c, when)
                            for c in model.conditions if not c.passed and c.on_fail == "alert"]
        report.models.append(model)
    return report


def _chosen(repo: Repo, parsed: list[refs_mod.ModelRef]
            ) -> list[tuple[ModelPolicy, refs_mod.ModelRef]]:
    configured = repo.config.models
    if not parsed:
        if not configured:
            raise ConfigError("no models configured under 'models:' in .moma.yaml",
                              hint="see docs/quality-gates.md for the 'models:' section")
        return [(policy, refs_mod.ModelRef(refs_mod.check_name(name)))
                for name, policy in configured.items()]
    chosen = []
    for ref in parsed:
        if ref.name not in configured:
            known = ", ".join(sorted(configured)) or "none"
            raise ConfigError(
                f"model {ref.name!r} has no checks in .moma.yaml (configured: {known})",
                hint=f"add 'models: {{{ref.name}: {{checks: [...]}}}}' to .moma.yaml")
        chosen.append((configured[ref.name], ref))
    return chosen


@dataclass(frozen=True)
class _Live:
    log: Path
    window: int | None
    now: float
    feedback: Path | None = None

    def metrics(self, version: ModelVersion) -> dict[str, Any]:
        from moma_cli.services import monitor

        return monitor.live_metrics(version, self.log, window=self.window,
                                    feedback=self.feedback, now=self.now).metrics()


def _evaluate(policy: ModelPolicy, ref: refs_mod.ModelRef, resolver: resolving.Resolver,
              fresh: Mapping[str, Any] | None, metrics_file: Path | None,
              now: float, live: _Live | None = None) -> ModelReport:
    model = ModelReport(policy.name, str(ref), None, None, None, "")
    try:
        version: ModelVersion | None = resolver(ref)
    except ShallowCloneError:
        raise  # the clone lacks history, the model is not at fault: no gate result at all
    except MomaError as exc:  # unknown model, no such version or stage: a failed gate
        version, model.error = None, exc.message
    if version is not None:
        _describe(model, version, resolver.registry(ref))
    metrics: Mapping[str, Any] = {}
    if fresh is not None:
        metrics, model.metrics_from = fresh, str(metrics_file)
    elif version is not None:
        metrics = version.metrics  # recorded for these bytes, never another version's
        model.metrics_from = "pointer" if metrics else ""
        if live is not None:
            metrics = {**metrics, **live.metrics(version)}
            model.metrics_from = "+".join(filter(None, (model.metrics_from, str(live.log))))
        elif not metrics:
            model.error = _no_metrics(version)
    model.conditions = _conditions(policy, metrics, model.error)
    if version is not None:
        _schedule(policy, version, model, now)
    return model


def gate(repo: Repo, version: ModelVersion) -> list[ConditionResult]:
    """The `block` conditions of the model's `models:` policy that `version` fails on its
    own recorded metrics, as `moma check NAME:N` evaluates them; [] for a model with no
    policy (what `models:tag` guards a stage with). A condition on a live figure
    (`live.error_rate`, `drift.psi.max`) that is not recorded is left to `check --live`:
    a version not served yet has none, and must still be able to enter its stage."""
    policy = repo.config.models.get(version.name)
    if policy is None:
        return []
    metrics = version.metrics
    results = _conditions(policy, metrics, None if metrics else _no_metrics(version))
    return [c for c in results if c.on_fail == "block" and not c.passed
            and not (c.metric.startswith(LIVE_METRICS) and _unrecorded(metrics, c.metric))]


LIVE_METRICS = ("live.", "drift.")  # what services/monitor.py measures from the log


def _unrecorded(metrics: Mapping[str, Any], metric: str) -> bool:
    try:
        checks_mod.lookup_metric(metrics, metric)
    except KeyError:
        return True
    return False


def _conditions(policy: ModelPolicy, metrics: Mapping[str, Any],
                error: str | None) -> list[ConditionResult]:
    """Every condition of `policy` on `metrics`; all fail with `error` when there is one."""
    outcomes = [checks_mod.evaluate(c, metrics) if not error else
                Outcome(c, None, False, error) for c in policy.checks]
    return [condition_result(outcome) for outcome in outcomes]


def _no_metrics(version: ModelVersion) -> str:
    return f"v{version.number} ({version.model_id}) has no metrics recorded for its bytes"


def _describe(model: ModelReport, version: ModelVersion,
              registry: Registry) -> None:
    model.path, model.oid, model.version = version.pointer.path, version.oid, version.version
    model.label, model.stages = version.label, list(version.stages)
    model.production = next((v.version for v in registry.of(version.name)
                             if PRODUCTION in v.stages), None)


def condition_result(outcome: Outcome) -> ConditionResult:
    c = outcome.condition
    return ConditionResult(str(c), c.metric, c.on_fail, outcome.actual, outcome.passed,
                           outcome.message)


def _schedule(policy: ModelPolicy, version: ModelVersion, model: ModelReport,
              now: float) -> None:
    """Stale = the version's registry date (the commit that made it) is older than `every`;
    metadata-only edits are not a new version, so they do not reset the clock."""
    if version.date is None:
        return  # not committed yet: brand new, not stale
    made = datetime.fromisoformat(version.date).timestamp()
    model.last_changed = _iso(made)
    if policy.retrain_every is not None:
        due = made + policy.retrain_every
        model.retrain_due = _iso(due)
        model.stale = now >= due


def _alert(webhook: str | None, model: ModelReport, c: ConditionResult,
           now: float) -> AlertResult:
    payload = {"model": model.name, "ref": model.ref, "version": model.version,
               "stages": model.stages, "oid": model.oid,
               "path": model.path, "condition": c.condition, "metric": c.metric,
               "actual": c.actual, "message": c.message, "time": _iso(now)}
    if webhook is None:
        return AlertResult(payload, False, "no alerts.webhook configured in .moma.yaml")
    # urllib.request brings http, email and ssl: 0.02 s of a pre-commit `moma check`.
    import urllib.error
    import urllib.request

    request = urllib.request.Request(webhook, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return AlertResult(payload, False, f"webhook {webhook} failed: {reason}")
    return AlertResult(payload, True)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
