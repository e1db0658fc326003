"""docs/grafana/moma-serving.json against a real `moma serve` session (a real uvicorn server,
the fixtures of test_serve.py): the dashboard parses, and every PromQL query in it names
series, and labels of those series, that `/metrics` really exposes."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from typing import Any

from conftest import PROJECT
from servetools import Registry, X

DASHBOARD = PROJECT / "docs/grafana/moma-serving.json"
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')
_METRIC = re.compile(r"\b(moma_[a-z_]+)\b")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_GROUPING = re.compile(r"\b(?:by|without|ignoring|on)\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*(\w+)\s*,\s*(\w+)\s*\)")


def exposed(text: str) -> dict[str, set[str]]:
    """Sample name -> the label names it has, from a Prometheus text exposition."""
    series: dict[str, set[str]] = defaultdict(set)
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, line
        series[match[1]].update(_LABEL.findall(match[2] or ""))
    return series


def queries(dashboard: dict[str, Any]) -> list[str]:
    found = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    found += [var["query"]["query"] for var in dashboard["templating"]["list"]
              if var["type"] == "query"]
    return found


def labels_used(query: str) -> set[str]:
    used = {label for label in _MATCHER.findall(query)}
    for group in _GROUPING.findall(query):
        used.update(label.strip() for label in group.split(",") if label.strip())
    used.update(label for _, label in _LABEL_VALUES.findall(query))
    return used


def real_metrics(registry: Registry, start: Any) -> str:
    """/metrics after traffic that makes every series exist: answers from the primary and a
    canary, a failed request, answers mirrored to a shadow, and a stage switch."""
    registry.tag("iris:2", "staging")
    registry.tag("iris:2", "candidate")
    client = start("iris:production", canaries=[("iris:staging", 50.0)],
                   shadows=["iris:candidate"], poll=0).client()
    for _ in range(20):
        assert client.predict("iris", X[:2].tolist())[0] == 200
    assert client.predict("iris", [[1.0]])[0] == 422
    registry.tag("iris:1", "staging")
    assert client.request("POST", "/v1/admin/reload")[1]["switched"]
    deadline = time.monotonic() + 30
    while True:  # the shadow answers off the response path
        text = str(client.request("GET", "/metrics")[1])
        if "moma_shadow_agreement_total{" in text:
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.05)


def test_every_dashboard_query_names_series_moma_serve_exposes(registry: Registry,
                                                               start: Any) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"] and all(panel["targets"] for panel in dashboard["panels"])
    series = exposed(real_metrics(registry, start))
    problems = []
    for query in queries(dashboard):
        names = set(_METRIC.findall(query))
        if not names:
            problems.append(f"no moma series in {query!r}")
        problems += [f"{name} is not exposed ({query!r})" for name in names - series.keys()]
        known = set().union(*(series.get(name, set()) for name in names))
        problems += [f"no series of {sorted(names)} has the label {label!r} ({query!r})"
                     for label in sorted(labels_used(query) - known)]
    assert problems == []
    used = set().union(*(_METRIC.findall(query) for query in queries(dashboard)))
    # Every counter and the histogram is on the dashboard, under the names it is exposed as.
    assert {name.removesuffix("_bucket") for name in used} >= {
        name for name in series if not name.endswith(("_sum", "_count", "_bucket"))
    } | {"moma_request_duration_seconds"}
