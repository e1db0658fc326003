"""`moma check` (quality gates for registered models) and `moma monitor` (their live
metrics from a prediction log)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from moma_cli.errors import ExitCode

if TYPE_CHECKING:
    import typer

    from moma_cli.cli.options import Feedback, Json, Window
    from moma_cli.services.checks import CheckReport, ModelReport
    from moma_cli.services.heal import HealResult
    from moma_cli.services.monitor import MonitorResult
    from moma_cli.services.repo import Repo

def register(app: typer.Typer) -> None:
    from moma_cli.cli.options import bind_annotations

    bind_annotations(globals())
    app.command("check")(check)
    app.command("monitor")(monitor)


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
    rollback: Annotated[bool, typer.Option(
        "--rollback", help="When a version in a stage breaks a 'rollback' condition, move the "
                           "stage back to the newest earlier version that passes.")] = False,
    live: Annotated[Path | None, typer.Option(
        "--live", metavar="LOG",
        help="Also evaluate live metrics (drift.psi.max, live.error_rate, "
             "live.latency.p99, ...) from this prediction log of 'moma serve "
             "--log-predictions'.")] = None,
    window: Window = None,
    feedback: Feedback = None,
    json_out: Json = False,
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
      moma check credit-risk:production --live preds.jsonl --window 1h
      moma check credit-risk:production --live preds.jsonl --window 1h --rollback
      moma check credit-risk:production --live preds.jsonl --feedback labels.csv
    """
    from moma_cli.cli import render
    from moma_cli.services.repo import open_repo

    if rollback and (heal or metrics is not None):
        import typer  # a usage error: Typer's to report (fastpath.run)

        raise typer.BadParameter("--rollback goes with the recorded and --live metrics "
                                 "only", param_hint="--rollback")
    if rollback:
        _check_and_roll_back(open_repo(), refs, live, _seconds(window), feedback, json_out)
        return
    report, heals = _run(open_repo(), refs, metrics, heal, live, _seconds(window), feedback)
    if json_out:
        render.print_json({"ok": report.ok, "models": [
            asdict(m) | {"blocked": m.blocked, "needs_retrain": m.needs_retrain}
            for m in report.models], "heals": [asdict(h) for h in heals]})
    else:
        _render(report, heals)
    if not report.ok or not all(h.healed for h in heals):
        raise SystemExit(ExitCode.FAILURE)


def _run(repo: Repo, refs: list[str] | None, metrics: Path | None, heal: bool,
         live: Path | None, window: int | None, feedback: Path | None
         ) -> tuple[CheckReport, list[HealResult]]:
    from moma_cli.cli.context import OPTIONS
    from moma_cli.errors import ConfigError
    from moma_cli.services import checks

    if not heal:
        return checks.check(repo, refs, metrics_file=metrics, live_log=live,
                            window=window, feedback=feedback), []
    from moma_cli.services import heal as heal_mod  # the pipeline machinery: only to heal

    if metrics is not None or live is not None or feedback is not None:
        raise ConfigError("--heal re-checks the retrained model's own metrics",
                          hint="drop --metrics, --live and --feedback")
    with repo.lock(OPTIONS.wait):
        healed = heal_mod.check_and_heal(repo, refs)
    return healed.report, healed.heals


def _check_and_roll_back(repo: Repo, refs: list[str] | None, live: Path | None,
                         window: int | None, feedback: Path | None, json_out: bool) -> None:
    from moma_cli.cli import render
    from moma_cli.cli.context import OPTIONS
    from moma_cli.services import rollback

    with repo.lock(OPTIONS.wait):
        result = rollback.check_and_roll_back(repo, refs, live_log=live, window=window,
                                              feedback=feedback)
    if json_out:
        render.print_json({"ok": result.report.ok, "models": [
            asdict(m) | {"blocked": m.blocked} for m in result.report.models],
            "rollbacks": [asdict(r) | {"rolled_back": r.rolled_back}
                          for r in result.rollbacks]})
    else:
        _render(result.report, [])
        for r in result.rollbacks:
            if r.rolled_back:
                render.line(f"rollback {r.model}: {r.message} (tag {r.tag}); share it with "
                            "'git push --tags'")
            else:
                render.warn(f"rollback {r.model}: {r.message}")
    if not result.report.ok:
        raise SystemExit(ExitCode.FAILURE)


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


def monitor(
    ref: Annotated[str, typer.Argument(
        metavar="MODEL_REF", help="The version to measure: NAME, NAME:4, NAME:production.")],
    log: Annotated[Path, typer.Option(
        "--log", metavar="FILE", help="The prediction log of 'moma serve "
                                      "--log-predictions FILE'.")],
    window: Window = None,
    feedback: Feedback = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE",
        help="Also write the metrics as JSON, for 'moma check --metrics' or a "
             "dashboard.")] = None,
    json_out: Json = False,
) -> None:
    """Live metrics of a served model: input drift per feature against the profile of its
    training inputs (PSI, and KS for numbers), prediction drift against the training
    labels, the rows predicted and their classes, request error rate and latency
    percentiles, and accuracy on labelled feedback.

    The profile comes from 'moma models:add NAME FILE --reference TRAIN.csv [--target
    LABEL]'. Only log lines answered by this very version count. PSI under 0.1 is stable,
    over 0.25 a large shift. Conditions can use the figures: 'drift.psi.max < 0.2',
    'live.accuracy >= 0.8', 'live.latency.p99 < 50' with 'moma check --live'.

    \b
    Examples:
      moma monitor credit-risk:production --log preds.jsonl --window 1h
      moma monitor credit-risk:4 --log preds.jsonl -o live.json --json
      moma monitor credit-risk:production --log preds.jsonl --feedback labels.csv
    """
    from moma_cli.cli import render
    from moma_cli.services import monitor as monitor_service
    from moma_cli.services.repo import open_repo

    result = monitor_service.monitor(open_repo(), ref, log, window=_seconds(window),
                                     feedback=feedback, output=output)
    if json_out:
        render.print_json({"model": result.model, "version": result.version,
                           "oid": result.oid, "skipped_lines": result.skipped_lines,
                           "unprofiled": result.unprofiled} | result.metrics())
        return
    _render_monitor(result)


def _render_monitor(result: MonitorResult) -> None:
    from moma_cli.cli import render

    render.line(f"{result.model} v{result.version}: {result.rows:,} predicted rows"
                + (f", {result.skipped_lines:,} log lines skipped" if result.skipped_lines
                   else ""))
    if result.features:
        render.table(["feature", "kind", "rows", "psi", "ks", "drift"],
                     [(f.feature, f.kind, f"{f.count:,}", f"{f.psi:.3f}",
                       "-" if f.ks is None else f"{f.ks:.3f}", _verdict(f.psi))
                      for f in result.features])
    if result.predictions:
        render.line("Predictions: " + ", ".join(f"{label} {share:.1%}" for label, share
                                                in sorted(result.predictions.items())))
    if result.prediction_drift is not None:
        p = result.prediction_drift
        render.line(f"Prediction drift against the training labels: psi {p.psi:.3f} "
                    f"({_verdict(p.psi)})" + ("" if p.ks is None else f", ks {p.ks:.3f}"))
    if result.requests:
        latency = result.latency_ms
        render.line(f"Requests: {result.requests:,}, errors {result.errors:,} "
                    f"({result.errors / result.requests:.2%}); latency p50 "
                    f"{latency['p50']:g} ms, p95 {latency['p95']:g} ms, p99 "
                    f"{latency['p99']:g} ms")
    if result.feedback is not None:
        render.line(f"Feedback: {result.labelled:,} predicted rows labelled"
                    + (f", accuracy {result.correct / result.labelled:.1%}"
                       if result.labelled else ""))
    if not result.has_reference:
        render.warn(f"{result.model} v{result.version} has no reference profile: register "
                    "it with --reference TRAIN.csv to measure drift")
    if result.unprofiled:
        render.warn(f"features not in the reference profile: {', '.join(result.unprofiled)}")


def _verdict(psi: float) -> str:
    return "large" if psi > 0.25 else "moderate" if psi >= 0.1 else "stable"


def _seconds(window: str | None) -> int | None:
    if window is None:
        return None
    from moma_cli.core.checks import parse_duration
    from moma_cli.errors import ConfigError

    try:
        return parse_duration(window, "--window")
    except ConfigError as exc:
        import typer  # a usage error: Typer's to report (fastpath.run)

        raise typer.BadParameter(exc.message, param_hint="--window") from None
