"""`moma check`: quality gates for registered models."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from moma_cli.services.checks import CheckReport, ModelReport
    from moma_cli.services.heal import HealResult
    from moma_cli.services.repo import Repo


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    refs: Annotated[list[str] | None, typer.Argument(
        metavar="[MODEL_REF]...",
        help="Model versions to check: NAME, NAME:4, NAME:production or NAME@REV "
             "(default: every model under 'models:' in .moma.yaml, at its latest version).")
    ] = None,
    metrics: Annotated[Path | None, typer.Option(
        "--metrics", metavar="FILE",
        help="Check these fresh metrics (JSON or YAML) instead of the recorded ones.")] = None,
    heal: Annotated[bool, typer.Option(
        "--heal", help="Retrain failing 'retrain' and stale models with their retrain.stage; "
                       "keep (commit) a new version only if it passes.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Evaluate the quality conditions of models; exit 1 when a 'block' condition fails.

    Conditions live under 'models:' in .moma.yaml; failing 'alert' conditions are posted to
    alerts.webhook, and models older than their 'retrain: {every: ...}' are reported stale.

    \b
    Examples:
      moma check
      moma check credit-risk:production credit-risk:4
      moma check credit-risk --metrics eval/metrics.json --json
      moma check --heal
    """
    from moma_cli.cli import render
    from moma_cli.services.repo import open_repo

    report, heals = _run(open_repo(), refs, metrics, heal)
    if json_out:
        render.print_json({"ok": report.ok, "models": [
            asdict(m) | {"blocked": m.blocked, "needs_retrain": m.needs_retrain}
            for m in report.models], "heals": [asdict(h) for h in heals]})
    else:
        _render(report, heals)
    if not report.ok or not all(h.healed for h in heals):
        raise typer.Exit(1)


def _run(repo: Repo, refs: list[str] | None, metrics: Path | None,
         heal: bool) -> tuple[CheckReport, list[HealResult]]:
    from moma_cli.cli.context import OPTIONS
    from moma_cli.errors import ConfigError
    from moma_cli.services import checks
    from moma_cli.services import heal as heal_mod

    if not heal:
        return checks.check(repo, refs, metrics_file=metrics), []
    if metrics is not None:
        raise ConfigError("--heal re-checks the retrained model's own metrics",
                          hint="drop --metrics")
    with repo.lock(OPTIONS.wait):
        healed = heal_mod.check_and_heal(repo, refs)
    return healed.report, healed.heals


def _render(report: CheckReport, heals: list[HealResult]) -> None:
    from moma_cli.cli import render

    rows = []
    for m in report.models:
        for c in m.conditions:
            actual = "-" if c.actual is None else f"{c.actual:g}"
            verdict = "pass" if c.passed else f"FAIL ({c.on_fail})"
            rows.append((m.name, _version(m), c.condition, actual, verdict,
                         "" if c.passed else c.message))
    render.table(["model", "version", "condition", "actual", "result", "detail"], rows)
    for m in report.models:
        if m.production is not None and m.production != m.version:
            render.line(f"{m.name}: checked {m.label}; production is v{m.production} "
                        f"('moma check {m.name}:production' checks it)")
        if m.stale:
            render.warn(f"{m.name}: stale, last changed {m.last_changed}, retraining was due "
                        f"{m.retrain_due}; 'moma check --heal' retrains it")
        for alert in m.alerts:
            render.line(f"alert: {json.dumps(alert.payload)}")
            if not alert.delivered:
                render.warn(f"alert not delivered: {alert.error}")
    for h in heals:
        (render.line if h.healed else render.warn)(f"heal {h.model}: {h.message}")
    blocked = [m.name for m in report.models if m.blocked]
    failed = [h.model for h in heals if not h.healed]
    if blocked:
        render.error(f"quality gate failed for {', '.join(blocked)}",
                     "fix the model or its metrics; conditions are under 'models:' in .moma.yaml")
    if failed:  # the summary must not read as a success when the command exits 1
        render.error(f"heal failed for {', '.join(failed)}; the model still needs retraining",
                     "see the heal lines above: change what it trains on, or fix the stage")
    if not blocked and not failed:
        render.line("All blocking conditions pass.")


def _version(m: ModelReport) -> str:
    """`v4`, `v4 (production)`, `v5 (uncommitted)`, or `-` when the ref resolved to none."""
    if not m.label:
        return "-"
    return m.label + (f" ({', '.join(m.stages)})" if m.stages else "")
