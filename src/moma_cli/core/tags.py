"""GTO's tag grammar, pure: the registry's events are annotated git tags named
`NAME@v1.2.0` (register), `NAME@v1.2.0!` (deregister), `NAME#STAGE#N` (assign),
`NAME#STAGE!#N` (unassign) and `NAME@deprecated#N`, where N is a per-model counter that
orders events made in the same second. GTO, DVC and moma read the same tags.

A stage forced past a failing quality gate records the override as git trailers after
the message's usual subject: GTO reads the tag name (and shows the subject), so to GTO it
stays a plain assignment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moma_cli.core.refs import SEMVER_RE

_PART = r"[a-z0-9](?:[a-z0-9\-/]*[a-z0-9])?"
_TAG_RE = re.compile(
    rf"(?P<name>{_PART})"
    rf"(?:(?:#(?P<stage>{_PART})|@(?P<semver>" + SEMVER_RE.pattern
    + r"))(?P<cancel>!?)|@(?P<deprecated>deprecated))(?:#(?P<counter>[0-9]+))?")

ACTIONS = ("register", "deregister", "assign", "unassign", "deprecate")


@dataclass(frozen=True)
class TagName:
    """What a registry tag's name says; `counter` 0 when it has none (semver tags)."""

    name: str
    action: str  # one of ACTIONS
    stage: str | None = None
    semver: str | None = None
    counter: int = 0

    def format(self) -> str:
        cancel = "!" if self.action in ("deregister", "unassign") else ""
        if self.action == "deprecate":
            head = f"{self.name}@deprecated"
        elif self.stage is not None:
            head = f"{self.name}#{self.stage}{cancel}"
        else:
            head = f"{self.name}@{self.semver}{cancel}"
        return head + (f"#{self.counter}" if self.counter else "")


def parse(tag: str) -> TagName | None:
    """The event a tag name encodes, or None for a tag outside the grammar."""
    match = _TAG_RE.fullmatch(tag)
    if match is None:
        return None
    if match["deprecated"]:
        action = "deprecate"
    elif match["stage"]:
        action = "unassign" if match["cancel"] else "assign"
    else:
        action = "deregister" if match["cancel"] else "register"
    return TagName(match["name"], action, stage=match["stage"], semver=match["semver"],
                   counter=int(match["counter"] or 0))


def assign(name: str, stage: str, counter: int) -> str:
    return TagName(name, "assign", stage=stage, counter=counter).format()


def unassign(name: str, stage: str, counter: int) -> str:
    return TagName(name, "unassign", stage=stage, counter=counter).format()


def register(name: str, semver: str) -> str:
    return TagName(name, "register", semver=semver).format()


def deprecate(name: str, counter: int) -> str:
    return TagName(name, "deprecate", counter=counter).format()


def next_counter(tag_names: list[str], name: str) -> int:
    """GTO numbers a model's tags: one more than the highest counter among them."""
    counters = [parsed.counter for tag in tag_names
                if (parsed := parse(tag)) is not None and parsed.name == name]
    return max(counters, default=0) + 1


_FORCED_BY, _FAILED, _REASON = "Forced-by", "Failed-condition", "Reason"


@dataclass(frozen=True)
class Override:
    """A tag made with `--force` past failing blocking conditions: who, why, and what."""

    by: str  # `Name <email>` of the git user
    reason: str
    failed: tuple[str, ...]  # each failed condition with why, e.g. "accuracy >= 0.8 (...)"

    def message(self, subject: str) -> str:
        lines = ([f"{_FORCED_BY}: {self.by}"] + [f"{_FAILED}: {c}" for c in self.failed]
                 + [f"{_REASON}: {self.reason}"])
        return subject + "\n\n" + "\n".join(one_line(text) for text in lines)

    def to_json(self) -> dict[str, object]:
        return {"by": self.by, "reason": self.reason, "failed": list(self.failed)}


def one_line(text: str) -> str:
    """Whitespace (newlines, control separators) folded to single spaces: a trailer is one
    line, and a reason spanning several would end the trailer block early."""
    return " ".join(text.split())


def parse_override(trailers: tuple[tuple[str, str], ...]) -> Override | None:
    """The override a tag message's trailers record; None unless it names who and why."""
    if not trailers:  # most tags: no need to look
        return None
    by = [value for key, value in trailers if key == _FORCED_BY]
    reason = [value for key, value in trailers if key == _REASON]
    if not by or not reason:
        return None
    return Override(by[0], reason[0], tuple(value for key, value in trailers if key == _FAILED))
