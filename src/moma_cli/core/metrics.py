"""Metrics files: one reader for the files stages write (`-M`), `models:add --metrics-file`,
`moma check --metrics` and `moma metrics show / diff` (rules: docs/pipelines.md#metrics-files).

A metrics file is JSON, YAML or CSV:
- `.csv`: a header row of names and rows of values; the last row counts (a training log
  with a row per epoch gives its final numbers); numbers are read as numbers;
- anything else: JSON when it parses as JSON (which takes `NaN` and `Infinity` too), else
  YAML (JSON is YAML, so a `.yaml` file may hold JSON and a `.json` file YAML); a `.json`
  file that is neither reports its JSON error.
The top level is a mapping (an empty file has no metrics). Nested mappings are flattened to
dotted names, as `moma params` does: `{"val": {"auc": 0.9}}` is `val.auc`. The file comes
from a stage, a user or git, so every error names it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from moma_cli import yamlio
from moma_cli.core.params import flatten
from moma_cli.errors import MomaError, PathError

MAX_METRICS_BYTES = yamlio.MAX_YAML_BYTES
_HINT = "write a JSON or YAML mapping of name: value, or a CSV with a header row"


class MetricsError(MomaError):
    pass


def read_file(path: Path, source: str) -> dict[str, Any]:
    """The metrics of the file at `path` (named `source` in errors)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_METRICS_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise PathError(f"{source}: metrics file not found") from None
    except IsADirectoryError:
        raise PathError(f"{source}: is a directory, not a metrics file") from None
    return parse(data, source)


def parse(data: bytes, source: str) -> dict[str, Any]:
    """name -> value of the metrics file `source`, whose bytes are `data`."""
    if len(data) > MAX_METRICS_BYTES:
        raise MetricsError(f"{source}: metrics file is larger than "
                           f"{MAX_METRICS_BYTES // 1024} KiB", hint=_HINT)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MetricsError(f"{source}: not UTF-8 text", hint=_HINT) from None
    doc = _csv(text) if source.lower().endswith(".csv") else _json_or_yaml(text, source)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise MetricsError(f"{source}: metrics file must hold a mapping of name: value",
                           hint=_HINT)
    return flatten(doc)


def _json_or_yaml(text: str, source: str) -> Any:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        try:
            return yamlio.loads(text, source)
        except MomaError as yaml_exc:
            message = (f"{source}: not valid JSON ({exc})" if source.lower().endswith(".json")
                       else yaml_exc.message)
            raise MetricsError(message, hint=_HINT) from None
    try:  # a "\ud800" escape parses, then fails every write and print of the pointer
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise MetricsError(f"{source}: holds a string that is not valid UTF-8",
                           hint=_HINT) from None
    return doc


def _csv(text: str) -> dict[str, Any] | None:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if len(rows) < 2:
        return None
    return {name: _scalar(value) for name, value in zip(rows[0], rows[-1], strict=False)}


def _scalar(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
