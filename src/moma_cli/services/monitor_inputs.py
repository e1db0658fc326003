"""The files `moma monitor` measures a served model against, besides its prediction log:
the training inputs profiled into the `model.reference` section (`models:add --reference`)
and the true labels of a feedback file. Both are CSV with a header row or JSON lines, read
as a stream; a malformed one is a one-line error naming the file and the line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from moma_cli.core import drift
from moma_cli.errors import MomaError, PathError

REFERENCE_ROWS = 1_000_000  # rows of a reference file profiled at most: deciles need no more
_MAX_COLUMNS = 1000


class MonitorError(MomaError):
    pass


def reference_profile(path: Path, shown: str, target: str | None = None) -> dict[str, Any]:
    """The `model.reference` section for a file of training inputs: CSV with a header row,
    or JSON lines of {feature: value} objects. `target`: the column of the training labels,
    profiled as the distribution the live predictions are compared with, not as a feature."""
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
    section: dict[str, Any] = {"rows": rows}
    if target is not None:
        if target not in columns:
            raise MonitorError(f"{shown}: no column {target!r} for --target",
                               hint=f"its columns: {', '.join(list(columns)[:20])}")
        section |= {"target": target,
                    "prediction": drift.label_profile(columns.pop(target)).to_json()}
    return section | {"columns": list(columns),
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


FEEDBACK_ROWS = 10_000_000  # labels held in memory at most (about a GB): join a window's


def read_feedback(path: Path) -> dict[tuple[str, int], str]:
    """The true labels of a feedback file, by (request id, row): CSV with a header or JSON
    lines, columns `request_id`, `label` and `row` (the row of a request sent several;
    0 when absent), e.g. {"request_id": "5c0d3e9a41b27f80", "label": 1}."""
    labels: dict[tuple[str, int], str] = {}
    shown = str(path)
    for number, row in enumerate(_rows(path, shown), 1):
        if number > FEEDBACK_ROWS:
            raise MonitorError(f"{shown}: more than {FEEDBACK_ROWS:,} labels",
                               hint="pass the labels of the window monitored only")
        request, label = row.get("request_id"), row.get("label")
        if request is None or request == "" or label is None or label == "":
            raise MonitorError(f"{shown}:{number}: needs a request_id and a label",
                               hint="one row per answered request, as the X-Request-Id "
                                    "header or the request_id field of the answer named it")
        index = _row_index(row.get("row", 0))
        if index is None:
            raise MonitorError(f"{shown}:{number}: row must be a whole number >= 0")
        labels[(str(request), index)] = drift.category(label)  # a CSV's "1" is a served 1
    return labels


def _row_index(raw: Any) -> int | None:
    text = str(raw)
    return int(text) if text.isdecimal() and len(text) < 10 else None
