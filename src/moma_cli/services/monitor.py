"""`moma monitor`: live metrics of a served model from its prediction log, measured
against the reference profile of its training inputs (read, like the feedback labels, by
monitor_inputs.py).

The log (`moma serve --log-predictions`, docs/serving.md) is read as a stream, one line at
a time, and each line's features are counted into the reference's bins (core/drift.py):
memory stays that of the profile however long the log, and a line that does not parse (a
crash cut it short, or someone else wrote it) is counted and skipped, never fatal. Only
the lines of the version asked about count: a log line names the object it was answered
by (`oid`), so a stage that moved mid-log is measured per version, never mixed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from moma_cli.atomic import atomic_write_bytes
from moma_cli.core import drift
from moma_cli.core.latency import LatencyHistogram
from moma_cli.errors import PathError
from moma_cli.services.monitor_inputs import MonitorError, read_feedback
from moma_cli.services.registry.model_version import ModelVersion
from moma_cli.services.registry.resolving import resolve
from moma_cli.services.repo import Repo

_MAX_LINE = 1 << 20  # a longer log line is not one moma wrote


@dataclass
class FeatureDrift:
    feature: str
    kind: str
    psi: float
    ks: float | None
    count: int


@dataclass
class MonitorResult:
    model: str
    version: int | None
    oid: str
    rows: int = 0  # predicted rows of this version in the window
    skipped_lines: int = 0  # lines that did not parse
    features: list[FeatureDrift] = field(default_factory=list)
    predictions: dict[str, float] = field(default_factory=dict)  # class -> share
    prediction_drift: FeatureDrift | None = None  # against the training labels' profile
    unprofiled: list[str] = field(default_factory=list)  # live features with no reference
    has_reference: bool = True
    requests: int = 0  # logged requests of this version in the window, failed ones too
    errors: int = 0  # of those, answered with an HTTP status >= 400
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50, p95, p99, max
    feedback: Path | None = None
    labelled: int = 0  # predicted rows the feedback file has a label for
    correct: int = 0

    def metrics(self) -> dict[str, Any]:
        """The nested metrics conditions read: `drift.psi.max`, `drift.ks.FEATURE`,
        `drift.prediction.psi`, `live.rows`, `live.error_rate`, `live.latency.p99`,
        `live.accuracy` (core/checks.py looks dotted names up level by level). A figure
        nothing was measured for is left out, so a condition on it fails as missing."""
        live: dict[str, Any] = {"rows": self.rows,
                                "predictions": dict(sorted(self.predictions.items()))}
        if self.requests:
            live |= {"requests": self.requests, "errors": self.errors,
                     "error_rate": round(self.errors / self.requests, 6),
                     "latency": dict(self.latency_ms)}
        if self.feedback is not None:
            live["labelled"] = self.labelled
            if self.labelled:
                live["accuracy"] = round(self.correct / self.labelled, 6)
        doc: dict[str, Any] = {"live": live}
        drifts: dict[str, Any] = {}
        if self.features:
            psi = {f.feature: round(f.psi, 6) for f in self.features}
            ks = {f.feature: round(f.ks, 6) for f in self.features if f.ks is not None}
            drifts = {"psi": psi | {"max": max(psi.values())},
                      "ks": ks | ({"max": max(ks.values())} if ks else {})}
        if self.prediction_drift is not None:
            p = self.prediction_drift
            drifts["prediction"] = {"psi": round(p.psi, 6)} | (
                {"ks": round(p.ks, 6)} if p.ks is not None else {})
        if drifts:
            doc["drift"] = drifts
        return doc


def monitor(repo: Repo, ref: str, log: Path, *, window: int | None = None,
            feedback: Path | None = None, output: Path | None = None,
            now: float | None = None) -> MonitorResult:
    """Drift and live figures of the version `ref` names, from the prediction log `log`;
    `window` seconds: only lines newer than that before `now`; `feedback`: the true labels
    of requests, by request id; `output`: also written there as JSON (the metrics
    conditions read)."""
    result = live_metrics(resolve(repo, ref), log, window=window, feedback=feedback, now=now)
    if output is not None:
        atomic_write_bytes(output, json.dumps(result.metrics(), indent=2).encode() + b"\n")
    return result


class _Tally:
    """What the log's lines of one version add up to, one line at a time."""

    def __init__(self, version: ModelVersion, labels: dict[tuple[str, int], str] | None
                 ) -> None:
        self.bins = _reference_bins(version)
        self.predicted = _prediction_bins(version)
        self.positional = _positional(version)
        self.labels = labels
        self.predictions: Counter[Any] = Counter()
        self.latency = LatencyHistogram()
        self.unprofiled: set[str] = set()
        # a line's feature names, in their order -> the bins each value goes to: every line
        # of a version has the same names, so they are looked up once, not per value
        self._adders: dict[tuple[str, ...], list[Callable[[Any], None]]] = {}

    def row(self, entry: dict[str, Any], features: dict[str, Any],
            result: MonitorResult) -> None:
        result.rows += 1
        prediction = entry.get("prediction")
        # ints and strings as they are: one json.dumps per row was a tenth of the time
        self.predictions[prediction if type(prediction) in (int, str)
                         else (json.dumps(prediction, sort_keys=True),)] += 1
        if self.predicted is not None:
            self.predicted.add(prediction)
        names = tuple(features)
        adders = self._adders.get(names)
        if adders is None:
            adders = self._adders[names] = [self._adder(name) for name in names]
        for add, value in zip(adders, features.values(), strict=True):
            add(value)
        if self.labels is not None:
            row = entry.get("row", 0)
            label = self.labels.get((str(entry.get("request")), row if isinstance(row, int)
                                     else 0), _UNSEEN)
            if label is not _UNSEEN:
                result.labelled += 1
                result.correct += label == drift.category(prediction)

    def _adder(self, name: str) -> Callable[[Any], None]:
        bins = self.bins or {}
        target = bins.get(name) or bins.get(self.positional.get(name, ""))
        if target is None:
            self.unprofiled.add(str(name))
            return _ignore
        return target.add

    def request(self, entry: dict[str, Any], result: MonitorResult) -> None:
        status, ms = entry.get("status"), entry.get("latency_ms")
        if not isinstance(status, int) or isinstance(status, bool):
            result.skipped_lines += 1
            return
        result.requests += 1
        result.errors += status >= 400
        if isinstance(ms, (int, float)) and not isinstance(ms, bool):
            self.latency.add(float(ms))


_UNSEEN: Any = object()


def _ignore(value: Any) -> None:
    pass


def live_metrics(version: ModelVersion, log: Path, *, window: int | None = None,
                 feedback: Path | None = None, now: float | None = None) -> MonitorResult:
    result = MonitorResult(version.name, version.version, version.oid, feedback=feedback)
    tally = _Tally(version, read_feedback(feedback) if feedback is not None else None)
    result.has_reference = tally.bins is not None
    since = None if window is None else _Since((now if now is not None else time.time())
                                               - window)
    for entry in _log_entries(log, version.oid, result):
        if since is not None and not since.covers(entry.get("ts")):
            continue
        features = entry.get("features")
        if isinstance(features, dict):
            tally.row(entry, features, result)
        elif "status" in entry:
            tally.request(entry, result)
        else:
            result.skipped_lines += 1
    for name, feature_bins in (tally.bins or {}).items():
        measured = feature_bins.drift()
        if measured.live_count:
            result.features.append(FeatureDrift(name, feature_bins.reference.kind,
                                                measured.psi, measured.ks,
                                                measured.live_count))
    if tally.predicted is not None:
        measured = tally.predicted.drift()
        if measured.live_count:
            result.prediction_drift = FeatureDrift("prediction", tally.predicted.reference.kind,
                                                   measured.psi, measured.ks,
                                                   measured.live_count)
    total = sum(tally.predictions.values())
    result.predictions = {_label(k): n / total for k, n in tally.predictions.items()}
    if tally.latency.count:
        result.latency_ms = {name: round(tally.latency.quantile(q) or 0.0, 3)
                             for name, q in _PERCENTILES}
        result.latency_ms["max"] = round(tally.latency.largest, 3)
    result.unprofiled = sorted(tally.unprofiled)
    return result


_PERCENTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def _reference_bins(version: ModelVersion) -> dict[str, drift.LiveBins] | None:
    section = version.meta.reference
    if section is None:
        return None
    where = f"{version.pointer.pointer_path}: model.reference"
    features = section.get("features") if isinstance(section, dict) else None
    if not isinstance(features, dict):
        raise MonitorError(f"{where} is not a reference profile",
                           hint="re-register with 'moma models:add ... --reference DATA'")
    try:
        bins = {str(name): drift.LiveBins(drift.from_json(doc, f"{where}.{name}"))
                for name, doc in features.items()}
    except ValueError as exc:
        raise MonitorError(str(exc), hint="re-register with 'moma models:add ... "
                           "--reference DATA'") from None
    return bins


def _positional(version: ModelVersion) -> dict[str, str]:
    """A model fitted on plain arrays logs its features as x0, x1, ...: those are the
    reference's columns in their order."""
    section = version.meta.reference
    columns = section.get("columns") if isinstance(section, dict) else None
    if not isinstance(columns, list):
        return {}
    return {f"x{i}": name for i, name in enumerate(columns) if isinstance(name, str)}


def _prediction_bins(version: ModelVersion) -> drift.LiveBins | None:
    """Bins of the training labels' profile (`models:add --target`), None without one."""
    section = version.meta.reference
    doc = section.get("prediction") if isinstance(section, dict) else None
    if doc is None:
        return None
    where = f"{version.pointer.pointer_path}: model.reference.prediction"
    try:
        return drift.LiveBins(drift.from_json(doc, where))
    except ValueError as exc:
        raise MonitorError(str(exc), hint="re-register with 'moma models:add ... "
                           "--reference DATA --target COLUMN'") from None


def _log_entries(log: Path, oid: str, result: MonitorResult) -> Iterator[dict[str, Any]]:
    """The log's entries answered by `oid`. A line that does not name it is not parsed at
    all (a log serving three versions parses a third of its lines, and the substring test
    costs a twentieth of a parse); one that names it but does not parse, a line a crash
    cut short, is counted in `skipped_lines`."""
    try:
        # text, not bytes: json.loads of bytes sniffs their encoding and decodes each line
        # on its own, which made parsing 1.7 times slower
        fh = open(log, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise PathError(f"{log}: no such prediction log",
                        hint="serve with 'moma serve ... --log-predictions FILE'") from None
    with fh:
        for line in fh:
            if oid not in line:
                continue
            if len(line) > _MAX_LINE:
                result.skipped_lines += 1
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                result.skipped_lines += 1
                continue
            if not isinstance(entry, dict):
                result.skipped_lines += 1
            elif entry.get("oid") == oid:
                yield entry


class _Since:
    """Whether a line's `ts` is at or after a moment. moma writes every `ts` in one layout
    (2026-12-03T11:42:07.412Z), so comparing the text is comparing the times, without a
    datetime per line; another layout is parsed."""

    def __init__(self, since: float) -> None:
        self.since = since
        self.text = _iso_ms(since)  # 24 characters, until the year 10000

    def covers(self, ts: Any) -> bool:
        if type(ts) is str and len(ts) == 24 and ts[-1] == "Z" and ts[10] == "T":
            return ts >= self.text
        try:
            return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp() \
                >= self.since
        except ValueError:
            return False


def _iso_ms(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def _label(key: Any) -> str:
    """A class as the table and the metrics name it: text as it is, anything else in JSON."""
    return key if isinstance(key, str) else str(key) if isinstance(key, int) else key[0]
