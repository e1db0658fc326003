"""Prometheus text exposition (format 0.0.4), written by hand: a few counters and one
histogram do not need a client library.

Labels come only from served models (name, version, role: primary, canary or shadow) and
fixed sets of error reasons and outcomes, never from request paths, so a client cannot blow
up the number of series. Shadow agreement is two counters, predictions compared and agreed,
so a ratio over any window is one PromQL division (docs/serving.md).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from moma_cli.services.serving.slots import Slot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Labels = tuple[tuple[str, str], ...]
COUNTERS = ("requests", "errors", "reloads", "shadow_requests", "shadow_predictions",
            "shadow_agreement")


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
                break
        self.total += seconds
        self.n += 1

    def add(self, counts: Sequence[int], total: float, n: int) -> None:
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
        self.total += total
        self.n += n


class Metrics:
    """One process's counters. `on_change` is called after every update (outside the lock),
    so that a worker can publish them to the others (shared.py)."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._lock = threading.Lock()
        self.on_change = on_change
        self.requests: Counter[Labels] = Counter()
        self.errors: Counter[Labels] = Counter()
        self.reloads: Counter[Labels] = Counter()
        self.latency: dict[Labels, _Histogram] = {}
        self.shadow_requests: Counter[Labels] = Counter()
        self.shadow_predictions: Counter[Labels] = Counter()
        self.shadow_agreement: Counter[Labels] = Counter()

    def observe(self, model: str, version: str, role: str, code: int, seconds: float,
                reason: str | None = None) -> None:
        base = (("model", model), ("version", version), ("role", role))
        with self._lock:
            self.requests[(*base, ("code", str(code)))] += 1
            if reason is not None:
                self.errors[(*base, ("reason", reason))] += 1
            if code < 400:
                self.latency.setdefault(base, _Histogram()).observe(seconds)
        self.on_change()

    def shadowed(self, model: str, version: str, outcome: str, compared: int = 0,
                 agreed: int = 0, seconds: float | None = None) -> None:
        """One mirrored request: `outcome` answered, failed or dropped; of its `compared`
        predictions, `agreed` equal the answer the client got."""
        base = (("model", model), ("version", version), ("role", "shadow"))
        with self._lock:
            self.shadow_requests[(*base, ("outcome", outcome))] += 1
            if compared:
                self.shadow_predictions[base] += compared
                self.shadow_agreement[base] += agreed
            if seconds is not None:
                self.latency.setdefault(base, _Histogram()).observe(seconds)
        self.on_change()

    def reloaded(self, outcome: str, n: int = 1) -> None:
        with self._lock:
            self.reloads[(("outcome", outcome),)] += n
        self.on_change()

    def snapshot(self) -> dict[str, Any]:
        """Every counter and histogram as JSON-ready lists, for `add` in another process."""
        with self._lock:
            data: dict[str, Any] = {name: [[list(map(list, labels)), value] for labels, value
                                           in getattr(self, name).items()] for name in COUNTERS}
            data["latency"] = [[list(map(list, labels)), h.counts, h.total, h.n]
                               for labels, h in self.latency.items()]
        return data

    def add(self, snapshot: dict[str, Any]) -> None:
        """Add another process's `snapshot` to these counters."""
        with self._lock:
            for name in COUNTERS:
                counter: Counter[Labels] = getattr(self, name)
                for labels, value in snapshot.get(name, ()):
                    counter[_labels(labels)] += value
            for labels, counts, total, n in snapshot.get("latency", ()):
                self.latency.setdefault(_labels(labels), _Histogram()).add(counts, total, n)

    def render(self, info: Counter[Labels]) -> str:
        """The exposition, with `info` as the moma_model_info series (`model_info`)."""
        with self._lock:
            lines = [
                *_counter("moma_requests_total", "Prediction requests by model, version and "
                          "HTTP status.", self.requests),
                *_counter("moma_request_errors_total", "Failed prediction requests by reason.",
                          self.errors),
                *_histograms(self.latency),
                *_counter("moma_reloads_total", "Model switches and failed reloads.",
                          self.reloads),
                *_counter("moma_shadow_requests_total", "Requests mirrored to a shadow, by "
                          "outcome (answered, failed, dropped).", self.shadow_requests),
                *_counter("moma_shadow_predictions_total", "Shadow predictions compared with "
                          "the answer sent.", self.shadow_predictions),
                *_counter("moma_shadow_agreement_total", "Shadow predictions equal to the "
                          "answer sent.", self.shadow_agreement),
            ]
        lines += ["# HELP moma_model_info The version and role of each served reference "
                  "(the value: how many worker processes serve it).",
                  "# TYPE moma_model_info gauge"]
        lines += [f"moma_model_info{_fmt(labels)} {n}" for labels, n in info.items()]
        return "\n".join(lines) + "\n"


def model_info(slots: Sequence[Slot]) -> Counter[Labels]:
    """One moma_model_info series per served ref, valued 1."""
    info: Counter[Labels] = Counter()
    for slot in slots:
        r = slot.current.resolved
        info[(("ref", slot.spec), ("model", r.name), ("version", version_label(r.version)),
              ("role", slot.role), ("stage", r.stage or ""), ("oid", r.oid))] += 1
    return info


def _labels(pairs: Iterable[Sequence[str]]) -> Labels:
    return tuple((key, value) for key, value in pairs)


def version_label(version: int | None) -> str:
    return "" if version is None else str(version)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt(labels: Labels) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}" if labels else ""


def _counter(name: str, help_text: str, values: Counter[Labels]) -> Iterable[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} counter"
    for labels, value in sorted(values.items()):
        yield f"{name}{_fmt(labels)} {value}"


def _histograms(hists: dict[Labels, _Histogram]) -> Iterable[str]:
    name = "moma_request_duration_seconds"
    yield f"# HELP {name} Latency of successful predictions, a shadow's included, in seconds."
    yield f"# TYPE {name} histogram"
    for labels, h in sorted(hists.items()):
        cumulative = 0
        for bound, count in zip(BUCKETS, h.counts, strict=True):
            cumulative += count
            yield f"{name}_bucket{_fmt((*labels, ('le', repr(bound))))} {cumulative}"
        yield f"{name}_bucket{_fmt((*labels, ('le', '+Inf')))} {h.n}"
        yield f"{name}_sum{_fmt(labels)} {h.total:.6f}"
        yield f"{name}_count{_fmt(labels)} {h.n}"
