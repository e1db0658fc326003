"""Request JSON -> feature rows, refusing anything malformed with a 4xx and a clear message."""

from __future__ import annotations

import json
import math
from typing import Any

from moma_cli.services.serving.slots import RequestError
from moma_cli.services.serving.source import LoadedModel

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_ROWS = 100_000
_SCALARS = (int, float, str, bool)


def body_too_large() -> RequestError:
    return RequestError(413, f"request body is larger than {MAX_BODY_BYTES} bytes")


def parse_body(body: bytes) -> Any:
    """The JSON of a body the server read within MAX_BODY_BYTES."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, f"request body is not valid JSON: {exc}") from None


def rows_of(payload: Any, model: LoadedModel) -> list[list[Any]]:
    """`{"inputs": [[...], ...]}` or `{"inputs": [{"feature": value}, ...]}` as rows of
    scalars in the estimator's feature order."""
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise RequestError(400, 'expected a JSON object {"inputs": [...]}')
    inputs = payload["inputs"]
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(400, "'inputs' must be a non-empty list of rows")
    if len(inputs) > MAX_ROWS:
        raise RequestError(413, f"'inputs' has {len(inputs)} rows; the limit is {MAX_ROWS}")
    if all(isinstance(row, dict) for row in inputs):
        rows = _from_records(inputs, model)
    elif all(isinstance(row, list) for row in inputs):
        rows = inputs
    else:
        raise RequestError(400, "'inputs' rows must be all lists or all objects")
    _check_rows(rows, model)
    return rows


def _from_records(records: list[dict[str, Any]], model: LoadedModel) -> list[list[Any]]:
    names = model.feature_names
    if names is None:
        raise RequestError(422, f"model {model.resolved.label} was trained without feature "
                                "names; send rows as lists in training column order")
    wanted = set(names)
    rows = []
    for i, record in enumerate(records):
        missing = [n for n in names if n not in record]
        if missing:
            raise RequestError(422, f"row {i}: missing feature(s) {', '.join(missing[:10])}")
        extra = [k for k in record if k not in wanted]
        if extra:
            raise RequestError(422, f"row {i}: unknown feature(s) {', '.join(extra[:10])}; "
                                    f"the model expects {', '.join(names)}")
        rows.append([record[n] for n in names])
    return rows


def _check_rows(rows: list[list[Any]], model: LoadedModel) -> None:
    expected = model.n_features if model.n_features is not None else len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != expected:
            raise RequestError(422, f"row {i} has {len(row)} features; model "
                                    f"{model.resolved.label} expects {expected}")
        for value in row:
            if value is not None and not isinstance(value, _SCALARS):
                raise RequestError(422, f"row {i}: feature values must be numbers, strings, "
                                        "booleans or null")
            if isinstance(value, (int, float)) and not _finite_float(value):
                raise RequestError(422, f"row {i}: feature values must be finite and fit "
                                        "a 64-bit float")


def _finite_float(value: float) -> bool:
    # JSON integers have no size limit; one past 1.8e308 made the estimator's float
    # conversion raise OverflowError, a 500 (found by the fuzz tests).
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False
