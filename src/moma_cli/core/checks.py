"""Quality gates: the `models:` section of `.moma.yaml`, parsed strictly and evaluated purely.

```yaml
models:
  credit-risk:
    checks:
      - {metric: accuracy, op: ">=", value: 0.8, on_fail: block}
      - "latency_ms < 50"            # shorthand; on_fail defaults to block
    retrain: {every: 7d, stage: train}
```
Every error names the offending key, so a typo fails on load and not in the middle of CI.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moma_cli.errors import ConfigError

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
    "==": operator.eq, "!=": operator.ne,
}
ON_FAIL = ("block", "alert", "retrain", "rollback")
_SHORTHAND_RE = re.compile(r"\s*([A-Za-z0-9_.\-]+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*")
_DURATION_RE = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_CONDITION_KEYS = ("metric", "op", "value", "on_fail")


@dataclass(frozen=True)
class Condition:
    metric: str  # dotted names index nested metrics: drift.psi -> metrics["drift"]["psi"]
    op: str
    value: float
    on_fail: str = "block"

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class ModelPolicy:
    name: str
    checks: tuple[Condition, ...] = ()
    retrain_every: int | None = None  # seconds
    retrain_stage: str | None = None  # the pipeline stage that produces the model


@dataclass(frozen=True)
class Outcome:
    condition: Condition
    actual: float | None
    passed: bool
    message: str


def parse_models(section: Any) -> dict[str, ModelPolicy]:
    """The `models:` section -> policy per model name."""
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError("models: must be a mapping of model name -> checks/retrain")
    return {str(name): _policy(str(name), body) for name, body in section.items()}


def _policy(name: str, body: Any) -> ModelPolicy:
    where = f"models.{name}"
    if body is None:
        return ModelPolicy(name)
    _check_keys(body, where, ("checks", "retrain"))
    checks = body.get("checks") or []
    if not isinstance(checks, list):
        raise ConfigError(f"{where}.checks: must be a list of conditions")
    conditions = tuple(parse_condition(c, f"{where}.checks[{i}]") for i, c in enumerate(checks))
    every, stage = _retrain(body.get("retrain"), f"{where}.retrain")
    return ModelPolicy(name, conditions, every, stage)


def parse_condition(raw: Any, where: str = "condition") -> Condition:
    """A mapping `{metric, op, value, on_fail}` or the shorthand string `"accuracy >= 0.8"`."""
    if isinstance(raw, str):
        match = _SHORTHAND_RE.fullmatch(raw)
        if not match:
            raise ConfigError(f"{where}: cannot parse {raw!r}",
                              hint="write it as 'METRIC OP NUMBER', e.g. 'accuracy >= 0.8'")
        raw = {"metric": match.group(1), "op": match.group(2), "value": match.group(3)}
    _check_keys(raw, where, _CONDITION_KEYS, "or a string like 'accuracy >= 0.8'")
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"{where}.metric: must be a metric name")
    op = raw.get("op")
    if op not in OPS:
        raise ConfigError(f"{where}.op: {op!r} is not one of {' '.join(OPS)}")
    value = as_number(raw.get("value"))
    if value is None:
        raise ConfigError(f"{where}.value: {raw.get('value')!r} is not a number")
    on_fail = raw.get("on_fail", "block")
    if on_fail not in ON_FAIL:
        raise ConfigError(f"{where}.on_fail: {on_fail!r} is not one of {', '.join(ON_FAIL)}")
    return Condition(metric, op, value, on_fail)


def _retrain(raw: Any, where: str) -> tuple[int | None, str | None]:
    if raw is None:
        return None, None
    _check_keys(raw, where, ("every", "stage"))
    every = parse_duration(raw["every"], f"{where}.every") if "every" in raw else None
    stage = raw.get("stage")
    if stage is not None and (not isinstance(stage, str) or not stage):
        raise ConfigError(f"{where}.stage: must be a stage name")
    return every, stage


def _check_keys(raw: Any, where: str, keys: tuple[str, ...], alternative: str = "") -> None:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping with keys {', '.join(keys)} {alternative}"
                          .rstrip())
    unknown = sorted(str(k) for k in set(raw) - set(keys))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}",
                          hint=f"{where.rsplit('.', 1)[-1]} takes {', '.join(keys)}")


def parse_duration(raw: Any, where: str = "duration") -> int:
    """'7d', '12h', '1w2d', '30m' -> seconds."""
    text = str(raw).strip().lower()
    parts = _DURATION_RE.findall(text)
    if not parts or _DURATION_RE.sub("", text).strip():
        raise ConfigError(f"{where}: {raw!r} is not a duration",
                          hint="use a number and a unit s, m, h, d or w, e.g. 7d or 12h")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts)
    if seconds <= 0:
        raise ConfigError(f"{where}: must be longer than zero")
    return seconds


def parse_webhook(section: Any) -> str | None:
    """`alerts.webhook`: an http(s) URL, or None when alerts are not configured."""
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError("alerts: must be a mapping like {webhook: https://...}")
    url = section.get("webhook")
    if url is None:
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"alerts.webhook: {url!r} is not an http(s) URL")
    return url


def lookup_metric(metrics: Mapping[str, Any], name: str) -> Any:
    """The value of `name`: a literal key first, else dotted names walk nested mappings.

    Raises KeyError naming the first missing part."""
    if name in metrics:
        return metrics[name]
    node: Any = metrics
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(part)
        node = node[part]
    return node


def evaluate(condition: Condition, metrics: Mapping[str, Any]) -> Outcome:
    try:
        raw = lookup_metric(metrics, condition.metric)
    except KeyError:
        return Outcome(condition, None, False, f"metric {condition.metric!r} is not recorded")
    actual = as_number(raw)
    if actual is None:
        return Outcome(condition, None, False,
                       f"metric {condition.metric!r} is {raw!r}, not a number")
    passed = OPS[condition.op](actual, condition.value)
    return Outcome(condition, actual, passed, "ok" if passed else f"{actual:g} is not "
                   f"{condition.op} {condition.value:g}")


def as_number(raw: Any) -> float | None:
    """A metric value as a float: None for what is no number (text, bools, NaN)."""
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value
