"""Shadow requests: a copy of each answered request, run on the model's shadow off the
response path and compared with the answer the client got.

One worker thread takes copies from a bounded queue: the response never waits for a shadow,
a slow shadow never holds up the thread pool the primaries predict in, and a shadow that
falls MAX_PENDING requests behind has new copies dropped (and counted) rather than piling up
in memory. Whatever a shadow does (refuses the inputs, raises) is counted and logged, and
never reaches the client.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from moma_cli.services.serving import inputs
from moma_cli.services.serving.metrics import Metrics, version_label
from moma_cli.services.serving.predlog import PredictionLog
from moma_cli.services.serving.source import LoadedModel

log = logging.getLogger("moma.serve")

# A copy holds the request's parsed body; 1000 of iris-sized requests are well under 1 MiB,
# and a shadow that far behind is not keeping up anyway.
MAX_PENDING = 1000
# Predictions this close count as agreeing: an ONNX or float32 export of the same model
# differs from the original in the last digits, which is not a disagreement.
REL_TOL = 1e-6


@dataclass(frozen=True)
class Copy:
    shadow: LoadedModel
    payload: Any  # the request's JSON: the shadow puts records in its own feature order
    predictions: list[Any]  # the answer the client got
    request: str | None  # the prediction log's request id when the request was sampled


class Shadowing:
    def __init__(self, metrics: Metrics, predlog: PredictionLog | None) -> None:
        self.metrics = metrics
        self.predlog = predlog
        self._queue: queue.Queue[Copy | None] = queue.Queue(MAX_PENDING)
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="moma-shadow", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the worker once its current copy is done; queued copies are dropped, so a
        slow shadow never holds up a shutdown."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        with contextlib.suppress(queue.Full):  # refilled meanwhile: the thread is a daemon
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None

    def submit(self, copy: Copy) -> None:
        try:
            self._queue.put_nowait(copy)
        except queue.Full:
            self.metrics.shadowed(*_labels(copy.shadow), "dropped")

    def _work(self) -> None:
        while (copy := self._queue.get()) is not None:
            try:
                self.run(copy)
            except Exception:  # noqa: BLE001 - the worker must outlive any one copy
                log.exception("shadow worker failed")

    def run(self, copy: Copy) -> None:
        """Predict with the shadow, count how often it agrees, log its answer with the
        request's when that was sampled."""
        shadow = copy.shadow
        start = time.perf_counter()
        try:
            rows = inputs.rows_of(copy.payload, shadow)
            predictions, probabilities = shadow.predict(rows)
        except Exception as exc:  # noqa: BLE001 - a shadow's failure is only reported
            self.metrics.shadowed(*_labels(shadow), "failed")
            self._warn(shadow, exc)
            return
        seconds = time.perf_counter() - start
        agreed = sum(map(agree, predictions, copy.predictions))
        self.metrics.shadowed(*_labels(shadow), "answered", len(predictions), agreed, seconds)
        if copy.request is not None and self.predlog is not None:
            self.predlog.write(shadow, "shadow", copy.request, rows, predictions, probabilities)

    def _warn(self, shadow: LoadedModel, exc: Exception) -> None:
        # Once per shadow version: a shadow that refuses every request would flood the log,
        # and moma_shadow_requests_total{outcome="failed"} counts the rest.
        label = shadow.resolved.label
        if label not in self._warned:
            self._warned.add(label)
            log.warning("shadow %s failed (%s: %s); later failures are only counted", label,
                        type(exc).__name__, str(exc)[:200])


def agree(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=REL_TOL)
    return bool(a == b)


def _labels(model: LoadedModel) -> tuple[str, str]:
    return model.resolved.name, version_label(model.resolved.version)
