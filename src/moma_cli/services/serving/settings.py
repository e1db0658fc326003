"""What a serving worker process needs to know, as MOMA_SERVE_* environment variables.

uvicorn's and gunicorn's worker processes build the app from an import string
(`factory.py`), so they cannot be handed arguments: `moma serve --workers N` writes its
options into the environment the workers inherit, and a user of `uvicorn --factory` sets
the same variables (docs/serving.md). Lists are separated by whitespace, which no model
ref, type name or `REF=PERCENT` contains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from moma_cli.errors import MomaError

REPO = "MOMA_SERVE_REPO"
REFS = "MOMA_SERVE_REFS"
HOST = "MOMA_SERVE_HOST"
POLL = "MOMA_SERVE_POLL"
LOG_PREDICTIONS = "MOMA_SERVE_LOG_PREDICTIONS"
SAMPLE_RATE = "MOMA_SERVE_SAMPLE_RATE"
TRUST_TYPES = "MOMA_SERVE_TRUST_TYPES"
CANARY = "MOMA_SERVE_CANARY"
SHADOW = "MOMA_SERVE_SHADOW"
METRICS_DIR = "MOMA_SERVE_METRICS_DIR"
GIT_URL = "MOMA_SERVE_GIT_URL"
WORKDIR = "MOMA_SERVE_WORKDIR"
TRUST = "MOMA_SERVE_TRUST"
# Not the address uvicorn binds (the app cannot see it): what decides who may call the
# admin route. Unset means "maybe beyond loopback", so the route needs the token.
UNKNOWN_HOST = "0.0.0.0"


class SettingsError(MomaError):
    pass


@dataclass(frozen=True)
class Settings:
    """`moma serve`'s options, as `serve.prepare` takes them."""

    refs: tuple[str, ...] = ()
    host: str = UNKNOWN_HOST
    poll: float = 10.0
    log_predictions: Path | None = None
    sample_rate: float = 0.1
    trusted_types: tuple[str, ...] = ()
    canaries: tuple[tuple[str, float], ...] = ()
    shadows: tuple[str, ...] = ()
    git_url: str | None = None
    workdir: Path | None = None
    trust: bool = False

    def to_env(self, repo: Path) -> dict[str, str]:
        env = {REPO: str(repo), REFS: " ".join(self.refs), HOST: self.host,
               POLL: repr(self.poll), SAMPLE_RATE: repr(self.sample_rate),
               TRUST_TYPES: " ".join(self.trusted_types),
               CANARY: " ".join(f"{ref}={percent!r}" for ref, percent in self.canaries),
               SHADOW: " ".join(self.shadows), TRUST: "1" if self.trust else ""}
        if self.log_predictions is not None:
            env[LOG_PREDICTIONS] = str(self.log_predictions.absolute())
        if self.git_url is not None:
            env[GIT_URL] = self.git_url
        if self.workdir is not None:
            env[WORKDIR] = str(self.workdir.absolute())
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        log, workdir = env.get(LOG_PREDICTIONS), env.get(WORKDIR)
        return cls(refs=tuple(env.get(REFS, "").split()), host=env.get(HOST) or UNKNOWN_HOST,
                   poll=_number(env, POLL, cls.poll), log_predictions=Path(log) if log else None,
                   sample_rate=_number(env, SAMPLE_RATE, cls.sample_rate),
                   trusted_types=tuple(env.get(TRUST_TYPES, "").split()),
                   canaries=tuple(_canary(text, CANARY) for text in env.get(CANARY, "").split()),
                   shadows=tuple(env.get(SHADOW, "").split()),
                   git_url=env.get(GIT_URL) or None,
                   workdir=Path(workdir) if workdir else None,
                   trust=env.get(TRUST, "") not in ("", "0"))


@dataclass(frozen=True)
class Workers:
    """Serve with `count` worker processes, each given `env` on top of the parent's."""

    count: int
    env: dict[str, str]


def parse_canary(text: str) -> tuple[str, float]:
    """`iris:staging=10%` (the % is optional) as (ref, percent); ValueError if it is not
    written so. The range is `serve.prepare`'s to check."""
    ref, sep, percent = text.rpartition("=")
    if not sep or not ref:
        raise ValueError(text)
    return ref, float(percent.strip().removesuffix("%"))


def _canary(text: str, variable: str) -> tuple[str, float]:
    try:
        return parse_canary(text)
    except ValueError:
        raise SettingsError(f"{variable}: {text!r} is not REF=PERCENT",
                            hint="e.g. iris:staging=10%") from None


def _number(env: Mapping[str, str], variable: str, default: float) -> float:
    text = env.get(variable)
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise SettingsError(f"{variable}: {text!r} is not a number") from None
