"""Plot declarations (a stage's `plots:` list) and the points read from a plot file.

Plot files come from the repository, at any revision, so they are untrusted: sizes and row
counts are bounded and every bad shape is one error that names the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moma_cli import yamlio
from moma_cli.core.paths import check_repo_relpath
from moma_cli.errors import MomaError

# A plot file is read whole and its points go into one chart: 8 MiB holds a 100k-row CSV of
# a few columns, and 100k points still render in a few seconds.
MAX_PLOT_BYTES = 8 << 20
MAX_POINTS = 100_000
_DEF_KEYS = ("file", "x", "y", "title")
_SUFFIXES = (".csv", ".tsv", ".json", ".yaml", ".yml")


class PlotError(MomaError):
    pass


@dataclass(frozen=True)
class PlotDef:
    file: str
    y: str
    x: str | None = None  # None: the row number
    title: str | None = None

    def to_mapping(self) -> dict[str, str]:
        doc = {"file": self.file, "x": self.x, "y": self.y, "title": self.title}
        return {k: v for k, v in doc.items() if v is not None}


def parse_defs(value: Any, where: str) -> tuple[PlotDef, ...]:
    """A stage's `plots:` list: mappings `{file, y, x?, title?}`."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PlotError(f"{where}: 'plots' must be a list of {{file, x, y}} mappings")
    defs = tuple(parse_def(item, f"{where}: plots[{i}]") for i, item in enumerate(value))
    files = [d.file for d in defs]
    if len(set(files)) != len(files):
        raise PlotError(f"{where}: 'plots' lists a file twice")
    return defs


def parse_def(item: Any, where: str) -> PlotDef:
    if not isinstance(item, Mapping):
        raise PlotError(f"{where}: must be a mapping like {{file: eval/roc.csv, x: fpr, y: tpr}}")
    unknown = [k for k in item if k not in _DEF_KEYS]
    if unknown:
        raise PlotError(f"{where}: unknown key {unknown[0]!r}",
                        hint=f"plot keys are {', '.join(_DEF_KEYS)}")
    for key in ("file", "y"):
        if key not in item:
            raise PlotError(f"{where}: missing {key!r}")
    for key in _DEF_KEYS:
        if key in item and (not isinstance(item[key], str) or not item[key].strip()):
            raise PlotError(f"{where}: {key!r} must be a non-empty string")
    file = check_repo_relpath(item["file"], "plots file")
    if not file.lower().endswith(_SUFFIXES):
        raise PlotError(f"{where}: {file!r} is not a CSV, TSV, JSON or YAML file",
                        hint=f"plot files end in {', '.join(_SUFFIXES)}")
    return PlotDef(file, item["y"], item.get("x"), item.get("title"))


# -- reading a plot file ---------------------------------------------------------------------


def rows_of(data: bytes, file: str, source: str) -> list[Mapping[str, Any]]:
    """The records of a CSV/TSV file (header row first), or of a JSON/YAML list of mappings
    (also as the single list value of a mapping, `{roc: [{fpr: 0, tpr: 0}, ...]}`)."""
    if len(data) > MAX_PLOT_BYTES:
        raise PlotError(f"{source}: plot file is larger than {MAX_PLOT_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PlotError(f"{source}: not UTF-8 text") from None
    low = file.lower()
    if low.endswith((".csv", ".tsv")):
        return _csv_rows(text, "\t" if low.endswith(".tsv") else ",", source)
    if low.endswith(".json"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PlotError(f"{source}: invalid JSON: {exc}") from None
    else:  # YAML is bounded tighter (yamlio.MAX_YAML_BYTES): its parser is the slow one
        doc = yamlio.loads(text, source)
    return _records(doc, source)


def _csv_rows(text: str, delimiter: str, source: str) -> list[Mapping[str, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[Mapping[str, Any]] = []
    try:
        for row in reader:
            if len(rows) == MAX_POINTS:
                raise PlotError(f"{source}: more than {MAX_POINTS} rows")
            if None in row:
                raise PlotError(f"{source}: row {reader.line_num} has more fields than the "
                                "header")
            rows.append(row)
    except csv.Error as exc:
        raise PlotError(f"{source}: invalid CSV at line {reader.line_num}: {exc}") from None
    if reader.fieldnames is None:
        raise PlotError(f"{source}: empty CSV file", hint="the first row names the columns")
    return rows


def _records(doc: Any, source: str) -> list[Mapping[str, Any]]:
    if isinstance(doc, Mapping) and len(doc) == 1:
        doc = next(iter(doc.values()))
    if not isinstance(doc, list) or not all(isinstance(r, Mapping) for r in doc):
        raise PlotError(f"{source}: a plot file must hold a list of records",
                        hint="[{x: 0, y: 1}, ...], or {name: [{x: 0, y: 1}, ...]}")
    if len(doc) > MAX_POINTS:
        raise PlotError(f"{source}: more than {MAX_POINTS} records")
    return doc


def points(rows: list[Mapping[str, Any]], plot: PlotDef, source: str) -> list[tuple[float, float]]:
    """(x, y) for each record; x is the row number when the plot names no x field."""
    if not rows:
        raise PlotError(f"{source}: no records")
    result = []
    for i, row in enumerate(rows):
        x = float(i) if plot.x is None else _number(row, plot.x, i, source)
        result.append((x, _number(row, plot.y, i, source)))
    return result


def _number(row: Mapping[str, Any], field: str, i: int, source: str) -> float:
    if field not in row:
        names = ", ".join(sorted(str(k) for k in row)[:10])
        raise PlotError(f"{source}: record {i + 1} has no field {field!r} (fields: {names})")
    value = row[field]
    if isinstance(value, bool):
        value = None
    elif isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PlotError(f"{source}: record {i + 1}: {field!r} is not a finite number")
    return float(value)
