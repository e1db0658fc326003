"""Sampled prediction logging: one JSON line per predicted row, and one per request with its
status and latency, failed requests included (format in docs/serving.md).

A log is append-only, so it is written with O_APPEND, one `write` per sampled request
under a lock, rather than with the temp-and-rename of `atomic.py`: a crash can
cut at most the last line short, and readers skip a line that does not parse.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from moma_cli.services.serving.source import LoadedModel

FORMAT = 1
REQUEST_ID_HEADER = "x-request-id"
# A client's own id is echoed and logged as given when it is this plain; anything else (a
# megabyte, a newline, markup) gets an id of ours instead of an error.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_of(given: str | None) -> str:
    """The id of a request: the client's `X-Request-Id` when it is a plain one, else new."""
    if given is not None and _CLIENT_ID.fullmatch(given):
        return given
    return os.urandom(8).hex()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PredictionLog:
    def __init__(self, path: Path, sample_rate: float,
                 sample: Callable[[], float] = random.random) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self._sample = sample
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def sampled(self) -> bool:
        """Whether to log this request (its shadow's answer goes with it)."""
        return self.sample_rate > 0 and self._sample() < self.sample_rate

    def write(self, model: LoadedModel, role: str, request: str,
              rows: Sequence[Sequence[Any]], predictions: Sequence[Any],
              probabilities: Sequence[Any] | None) -> None:
        """Log one model's answer to a sampled request: one line per row, all in one write.
        `request` joins the lines of the answer sent and of the shadow's."""
        r = model.resolved
        names = model.feature_names or tuple(f"x{i}" for i in range(len(rows[0])))
        ts = _now()
        lines = []
        for i, row in enumerate(rows):
            entry: dict[str, Any] = {"format": FORMAT, "ts": ts, "request": request,
                                     "model": r.name, "version": r.version, "stage": r.stage,
                                     "oid": r.oid, "role": role, "row": i,
                                     "features": dict(zip(names, row, strict=True)),
                                     "prediction": predictions[i]}
            if probabilities is not None:
                entry["probabilities"] = probabilities[i]
            lines.append(json.dumps(entry, separators=(",", ":"), default=str))
        self._append(lines)

    def record(self, model: LoadedModel | None, role: str, request: str, status: int,
               seconds: float, rows: int) -> None:
        """Log how a sampled request went, after its rows' lines: HTTP status, latency,
        rows answered. `model`: the one that answered or refused it, None when the path
        named no served model."""
        r = model.resolved if model is not None else None
        entry = {"format": FORMAT, "ts": _now(), "request": request,
                 "model": r.name if r else None, "version": r.version if r else None,
                 "stage": r.stage if r else None, "oid": r.oid if r else None, "role": role,
                 "status": status, "latency_ms": round(seconds * 1000, 3), "rows": rows}
        self._append([json.dumps(entry, separators=(",", ":"))])

    def _append(self, lines: list[str]) -> None:
        data = ("\n".join(lines) + "\n").encode()
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]

    def close(self) -> None:
        os.close(self._fd)
