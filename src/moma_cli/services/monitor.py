"""`moma monitor`: live metrics of a served model from its prediction log, and the
reference profile of its training inputs they are measured against.

The log (`moma serve --log-predictions`, docs/serving.md) is read as a stream, one line at
a time, and each line's features are counted into the reference's bins (core/drift.py):
memory stays that of the profile however long the log, and a line that does not parse (a
crash cut it short, or someone else wrote it) is counted and skipped, never fatal. Only
the lines of the version asked about count: a log line names the object it was answered
by (`oid`), so a stage that moved mid-log is measured per version, never mixed.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from moma_cli.atomic import atomic_write_bytes
from moma_cli.core import drift
from moma_cli.errors import MomaError, PathError
from moma_cli.services.registry.model_version import ModelVersion
from moma_cli.services.registry.resolving import resolve
from moma_cli.services.repo import Repo

REFERENCE_ROWS = 1_000_000  # rows of a reference file profiled at most: deciles need no more
_MAX_COLUMNS = 1000
_MAX_LINE = 1 << 20  # a longer log line is not one moma wrote


class MonitorError(MomaError):
    pass


def reference_profile(path: Path, shown: str) -> dict[str, Any]:
    """The `model.reference` section for a file of training inputs: CSV with a header row,
    or JSON lines of {feature: value} objects."""
    columns: dict[str, list[Any]] = {}
    rows = 0
    for row in _rows(path, shown):
        if rows >= REFERENCE_ROWS:
            break
        rows += 1
        for name, value in row.items():
            if name not in columns and len(columns) >= _MAX_COLUMNS:
                raise MonitorError(f"{shown}: more than {_MAX_COLUMNS} columns",
                                   hint="pass the model's input features only")
            columns.setdefault(str(name), []).append(value)
    if not rows:
        raise MonitorError(f"{shown}: no rows to profile", hint="pass the training inputs")
    return {"rows": rows, "columns": list(columns),
            "features": {name: drift.profile(values).to_json()
                         for name, values in columns.items()}}


def _rows(path: Path, shown: str) -> Iterator[Mapping[str, Any]]:
    try:
        fh = open(path, newline="", encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise PathError(f"{shown}: no such file") from None
    with fh:
        try:
            if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
                for number, line in enumerate(fh, 1):
                    if line.strip():
                        doc = json.loads(line)
                        if not isinstance(doc, dict):
                            raise MonitorError(f"{shown}:{number}: not a JSON object")
                        yield doc
                return
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise MonitorError(f"{shown}: no header row", hint="the first row names the "
                                   "features")
            for row in reader:
                yield {k: v for k, v in row.items() if k is not None}
        except (UnicodeDecodeError, ValueError, csv.Error) as exc:
            raise MonitorError(f"{shown}: cannot be read ({exc})") from None


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
    unprofiled: list[str] = field(default_factory=list)  # live features with no reference
    has_reference: bool = True

    def metrics(self) -> dict[str, Any]:
        """The nested metrics conditions read: `drift.psi.max`, `drift.ks.FEATURE`,
        `live.rows` (core/checks.py looks dotted names up level by level)."""
        psi = {f.feature: round(f.psi, 6) for f in self.features}
        ks = {f.feature: round(f.ks, 6) for f in self.features if f.ks is not None}
        doc: dict[str, Any] = {"live": {"rows": self.rows,
                                        "predictions": dict(sorted(self.predictions.items()))}}
        if self.features:
            doc["drift"] = {"psi": psi | {"max": max(psi.values())},
                            "ks": ks | ({"max": max(ks.values())} if ks else {})}
        return doc


def monitor(repo: Repo, ref: str, log: Path, *, window: int | None = None,
            output: Path | None = None, now: float | None = None) -> MonitorResult:
    """Drift and live figures of the version `ref` names, from the prediction log `log`;
    `window` seconds: only lines newer than that before `now`; `output`: also written there
    as JSON (the metrics conditions read)."""
    result = live_metrics(resolve(repo, ref), log, window=window, now=now)
    if output is not None:
        atomic_write_bytes(output, json.dumps(result.metrics(), indent=2).encode() + b"\n")
    return result


def live_metrics(version: ModelVersion, log: Path, *, window: int | None = None,
                 now: float | None = None) -> MonitorResult:
    result = MonitorResult(version.name, version.version, version.oid)
    bins = _reference_bins(version)
    result.has_reference = bins is not None
    bins = bins or {}
    positional = _positional(version)
    predictions: Counter[str] = Counter()
    since = None if window is None else (now if now is not None else time.time()) - window
    unprofiled: set[str] = set()
    for entry in _log_entries(log, result):
        if entry.get("oid") != version.oid:
            continue
        if since is not None and not _after(entry.get("ts"), since):
            continue
        features = entry.get("features")
        if not isinstance(features, dict):
            result.skipped_lines += 1
            continue
        result.rows += 1
        predictions[json.dumps(entry.get("prediction"), sort_keys=True)] += 1
        for name, value in features.items():
            target = bins.get(name) or bins.get(positional.get(name, ""))
            if target is not None:
                target.add(value)
            else:
                unprofiled.add(str(name))
    for name, feature_bins in bins.items():
        measured = feature_bins.drift()
        if measured.live_count:
            result.features.append(FeatureDrift(name, feature_bins.reference.kind,
                                                measured.psi, measured.ks,
                                                measured.live_count))
    total = sum(predictions.values())
    result.predictions = {_label(k): n / total for k, n in predictions.items()}
    result.unprofiled = sorted(unprofiled)
    return result


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


def _log_entries(log: Path, result: MonitorResult) -> Iterator[dict[str, Any]]:
    try:
        fh = open(log, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise PathError(f"{log}: no such prediction log",
                        hint="serve with 'moma serve ... --log-predictions FILE'") from None
    with fh:
        for line in fh:
            if len(line) > _MAX_LINE:
                result.skipped_lines += 1
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):  # a line a crash cut short, or not ours
                result.skipped_lines += 1
                continue
            if isinstance(entry, dict):
                yield entry
            else:
                result.skipped_lines += 1


def _after(ts: Any, since: float) -> bool:
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp() >= since
    except ValueError:
        return False


def _label(key: str) -> str:
    value = json.loads(key)
    return value if isinstance(value, str) else json.dumps(value)
