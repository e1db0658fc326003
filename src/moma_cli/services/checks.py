"""`moma check`: evaluate each model's quality gates, send alerts, report stale models.

Metrics come from the model's pointer (`model.metrics`) or from a fresh metrics file; the
conditions and the retraining schedule from `models:` in `.moma.yaml` (core/checks.py).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from moma_cli import yamlio
from moma_cli.core import checks as checks_mod
from moma_cli.core.checks import ModelPolicy, Outcome
from moma_cli.core.pointer import Pointer
from moma_cli.errors import ConfigError, MomaError
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


@dataclass
class ModelReport:
    name: str
    path: str | None  # tracked data path; None when no pointer carries this model
    oid: str | None
    version: int | None
    metrics_from: str  # "pointer", the metrics file, or "" when there were none
    conditions: list[ConditionResult] = field(default_factory=list)
    alerts: list[AlertResult] = field(default_factory=list)
    last_changed: str | None = None  # ISO time of the commit that last changed the model
    retrain_due: str | None = None
    stale: bool = False
    error: str | None = None

    @property
    def blocked(self) -> bool:
        return any(not c.passed and c.on_fail == "block" for c in self.conditions)

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
    refs: Sequence[str] | None = None,
    *,
    metrics_file: Path | None = None,
    send_alerts: bool = True,
    now: float | None = None,
) -> CheckReport:
    policies = _chosen(repo, refs)
    if metrics_file is not None and len(policies) != 1:
        raise ConfigError("--metrics applies to one model; name it",
                          hint="e.g. moma check credit-risk --metrics metrics.json")
    fresh = _read_metrics(metrics_file) if metrics_file is not None else None
    pointers = _model_pointers(repo)
    when = time.time() if now is None else now
    report = CheckReport()
    for policy in policies:
        model = _evaluate(repo, policy, pointers.get(policy.name), fresh, metrics_file, when)
        if send_alerts:
            model.alerts = [_alert(repo.config.alert_webhook, model, c, when)
                            for c in model.conditions if not c.passed and c.on_fail == "alert"]
        report.models.append(model)
    return report


def _chosen(repo: Repo, refs: Sequence[str] | None) -> list[ModelPolicy]:
    configured = repo.config.models
    if not refs:
        if not configured:
            raise ConfigError("no models configured under 'models:' in .moma.yaml",
                              hint="see docs/quality-gates.md for the 'models:' section")
        return list(configured.values())
    chosen = []
    for ref in dict.fromkeys(refs):
        if ref not in configured:
            known = ", ".join(sorted(configured)) or "none"
            raise ConfigError(f"model {ref!r} has no checks in .moma.yaml (configured: {known})",
                              hint=f"add 'models: {{{ref}: {{checks: [...]}}}}' to .moma.yaml")
        chosen.append(configured[ref])
    return chosen


def _model_pointers(repo: Repo) -> dict[str, Pointer]:
    pointers, _bad = repo.pointers()
    found: dict[str, Pointer] = {}
    for ptr in pointers:
        name = (ptr.model or {}).get("name")
        if isinstance(name, str):
            if name in found:
                raise MomaError(f"model {name!r} is named by both {found[name].pointer_path} "
                                f"and {ptr.pointer_path}",
                                hint="give each model pointer a distinct model.name")
            found[name] = ptr
    return found


def _read_metrics(path: Path) -> Mapping[str, Any]:
    try:
        doc = yamlio.load_file(path)  # JSON is YAML: one reader for both
    except FileNotFoundError:
        raise MomaError(f"{path}: metrics file not found") from None
    if not isinstance(doc, Mapping):
        raise MomaError(f"{path}: metrics file must hold a mapping of metric -> value")
    return doc


def _evaluate(repo: Repo, policy: ModelPolicy, ptr: Pointer | None,
              fresh: Mapping[str, Any] | None, metrics_file: Path | None,
              now: float) -> ModelReport:
    model = ModelReport(policy.name, ptr.path if ptr else None, ptr.oid if ptr else None,
                        None, "")
    if fresh is not None:
        metrics: Mapping[str, Any] = fresh
        model.metrics_from = str(metrics_file)
    elif ptr is None:
        metrics = {}
        model.error = f"no pointer has model.name {policy.name!r}"
    else:
        recorded = (ptr.model or {}).get("metrics")
        metrics = recorded if isinstance(recorded, Mapping) else {}
        model.metrics_from = "pointer"
    for condition in policy.checks:
        outcome = checks_mod.evaluate(condition, metrics)
        if model.error:
            outcome = Outcome(condition, None, False, model.error)
        model.conditions.append(condition_result(outcome))
    if ptr is not None:
        _schedule(repo, policy, ptr, model, now)
    return model


def condition_result(outcome: Outcome) -> ConditionResult:
    c = outcome.condition
    return ConditionResult(str(c), c.metric, c.on_fail, outcome.actual, outcome.passed,
                           outcome.message)


def _schedule(repo: Repo, policy: ModelPolicy, ptr: Pointer, model: ModelReport,
              now: float) -> None:
    """Stale = the commit that last changed the model's pointer is older than `every`."""
    change = repo.git.last_change(ptr.pointer_path)
    if change is None:
        return  # never committed: brand new, not stale
    model.last_changed = _iso(change[1])
    if policy.retrain_every is not None:
        due = change[1] + policy.retrain_every
        model.retrain_due = _iso(due)
        model.stale = now >= due


def _alert(webhook: str | None, model: ModelReport, c: ConditionResult,
           now: float) -> AlertResult:
    payload = {"model": model.name, "version": model.version, "oid": model.oid,
               "path": model.path, "condition": c.condition, "metric": c.metric,
               "actual": c.actual, "message": c.message, "time": _iso(now)}
    if webhook is None:
        return AlertResult(payload, False, "no alerts.webhook configured in .moma.yaml")
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
