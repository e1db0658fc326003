"""Model names, stage names and model references (`NAME`, `NAME:4`, `NAME:production`,
`NAME@REV`), validated before anything reaches git.

Names follow GTO's grammar (lowercase letters, digits, `-` and `/`, starting and ending with
a letter or digit) so every name moma accepts is also a valid GTO artifact name and a safe
part of a git tag name: no `..`, no leading `-` that git could read as an option
(`--upload-pack=...`), no shell metacharacters. The stages a repository allows
(`registry.stages` in .moma.yaml) are names too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moma_cli.errors import ConfigError, MomaError

MAX_NAME = 100
_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9\-/]*[a-z0-9])?")
SEMVER_RE = re.compile(
    r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*)?(?:\+[0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*)?")
# A git revision as typed by a user: names, hex, ~ ^ and @{...}; never an option.
_REV_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./~^@{}+\-]{0,199}")


class RefError(MomaError):
    pass


def check_name(name: str, what: str = "model name") -> str:
    if len(name) > MAX_NAME:
        raise RefError(f"invalid {what} {name[:40]!r}...: longer than {MAX_NAME} characters")
    if not _NAME_RE.fullmatch(name) or "//" in name:
        raise RefError(
            f"invalid {what} {name!r}",
            hint="use lowercase letters, digits, '-' and '/', starting and ending with a "
                 "letter or digit (GTO's artifact names), e.g. credit-risk",
        )
    return name


def check_rev(rev: str) -> str:
    if not _REV_RE.fullmatch(rev) or ".." in rev:
        raise RefError(f"invalid git revision {rev!r}",
                       hint="use a commit, branch or tag name, e.g. main or HEAD~2")
    return rev


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None = None  # NAME:4
    stage: str | None = None  # NAME:production
    rev: str | None = None  # NAME@REV (a git revision, or a GTO semver like v1.2.0)

    @property
    def semver(self) -> str | None:
        return self.rev if self.rev and SEMVER_RE.fullmatch(self.rev) else None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.stage is not None:
            return f"{self.name}:{self.stage}"
        if self.rev is not None:
            return f"{self.name}@{self.rev}"
        return self.name


def parse(text: str) -> ModelRef:
    """Parse a model reference; raises RefError naming the problem."""
    if "@" in text:
        name, rev = text.split("@", 1)
        return ModelRef(check_name(name), rev=check_rev(rev))
    if ":" in text:
        name, selector = text.split(":", 1)
        check_name(name)
        if selector.isdigit() and selector.isascii():
            version = int(selector)
            if version < 1:
                raise RefError(f"invalid version in {text!r}: versions start at 1")
            return ModelRef(name, version=version)
        return ModelRef(name, stage=check_name(selector, "stage name"))
    return ModelRef(check_name(text))


def parse_stages(section: Any) -> tuple[str, ...]:
    """`registry: {stages: [...]}` of .moma.yaml: the only stages `models:tag` assigns, each
    a valid stage name; () when any stage is allowed."""
    if section is None:
        return ()
    if not isinstance(section, Mapping):
        raise ConfigError("registry: must be a mapping like {stages: [dev, staging, production]}")
    unknown = sorted(str(k) for k in section if k != "stages")
    if unknown:
        raise ConfigError(f"registry: unknown key {unknown[0]!r}", hint="registry takes stages")
    stages = section.get("stages")
    if stages is None:
        return ()
    if not isinstance(stages, list) or not stages:
        raise ConfigError("registry.stages: must be a list of stage names, e.g. "
                          "[dev, staging, production]")
    for i, stage in enumerate(stages):
        try:
            check_name(stage if isinstance(stage, str) else "", "stage name")
        except RefError as exc:
            raise ConfigError(f"registry.stages[{i}]: {stage!r} is not a valid stage name",
                              hint=exc.hint) from None
        if stage in stages[:i]:
            raise ConfigError(f"registry.stages[{i}]: {stage!r} is listed twice")
    return tuple(stages)
