"""Sampled prediction logging: one JSON line per predicted row (format in docs/serving.md).

A log is append-only, so it is written with O_APPEND, one `write` per sampled request
under a lock, rather than with the temp-and-rename of `atomic.py`: a crash can
cut at most the last line short, and readers skip a line that does not parse.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from moma_cli.services.serving.source import LoadedModel

FORMAT = 1


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
        ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines = []
        for i, row in enumerate(rows):
            entry: dict[str, Any] = {"format": FORMAT, "ts": ts, "request": request,
                                     "model": r.name, "version": r.version, "stage": r.stage,
                                     "oid": r.oid, "role": role,
                                     "features": dict(zip(names, row, strict=True)),
                                     "prediction": predictions[i]}
            if probabilities is not None:
                entry["probabilities"] = probabilities[i]
            lines.append(json.dumps(entry, separators=(",", ":"), default=str))
        data = ("\n".join(lines) + "\n").encode()
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]

    def close(self) -> None:
        os.close(self._fd)
