"""Another repository as a source of data (`moma ls / get / import`): which URLs moma will
hand to git, and the `source:` section of an imported pointer.

A URL is untrusted input (typed, or read from a committed pointer of a clone): git runs
programs for some transports (`ext::sh -c ...`) and reads options from an argument that
starts with `-`, so only local paths, file://, https://, ssh:// and scp-like `git@host:path`
pass, checked before git is ever run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from moma_cli.core import refs
from moma_cli.core.paths import check_repo_relpath
from moma_cli.errors import MomaError, PointerError

_SCHEMES = ("file://", "https://", "ssh://")
_SCP_LIKE = re.compile(r"[A-Za-z0-9_.-]+@[A-Za-z0-9.-]+:[^:]*")
_URL_HINT = "use a local path, file://, https://, ssh:// or git@host:path URL"


class SourceError(MomaError):
    pass


def check_url(url: str) -> str:
    """`url` when git may be given it as a repository to clone; SourceError otherwise."""
    if not url or url.startswith("-") or any(ord(c) < 32 or c == "\x7f" for c in url):
        raise SourceError(f"refusing repository URL {url!r}: empty, option-like or with "
                          "control characters", hint=_URL_HINT)
    if "::" in url:  # git's transport helpers: ext::, fd::, and any <helper>::<address>
        raise SourceError(f"refusing repository URL {url!r}: transport helpers (ext::, fd::) "
                          "are not allowed", hint=_URL_HINT)
    lowered = url.lower()
    if lowered.startswith(_SCHEMES) or _SCP_LIKE.fullmatch(url):
        return url
    if "://" in url:
        raise SourceError(f"refusing repository URL {url!r}: unsupported scheme",
                          hint=_URL_HINT)
    first = url.split("/", 1)[0]
    if ":" in first:  # git would read `host:path` as ssh to `host`
        raise SourceError(f"refusing repository URL {url!r}: neither a path nor a URL",
                          hint="write a local path as ./" + url)
    return url


def is_local_path(url: str) -> bool:
    """Whether a checked URL is a path on this machine (not file://, which is absolute)."""
    return not (url.lower().startswith(_SCHEMES) or _SCP_LIKE.fullmatch(url))


@dataclass(frozen=True)
class Source:
    """Where an imported pointer's data comes from: the repository, the path there, the
    revision asked for (None: its default branch) and the commit that revision resolved to."""

    url: str
    path: str
    rev: str | None
    commit: str

    def to_mapping(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"url": self.url, "path": self.path}
        if self.rev is not None:
            doc["rev"] = self.rev
        return doc | {"commit": self.commit}


_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def source_of(extra: dict[str, Any], where: str) -> Source | None:
    """The checked `source:` section of a pointer's extra keys (None: not imported)."""
    doc = extra.get("source")
    if doc is None:
        return None
    hint = f"re-import it with 'moma import', or remove the source section of {where}"
    if not isinstance(doc, dict):
        raise PointerError(f"{where}: 'source' must be a mapping", hint=hint)
    url, path, rev, commit = (doc.get(k) for k in ("url", "path", "rev", "commit"))
    if not (isinstance(url, str) and isinstance(path, str) and isinstance(commit, str)
            and _COMMIT.fullmatch(commit)):
        raise PointerError(f"{where}: 'source' needs a url, a path and a full commit id",
                           hint=hint)
    if rev is not None and not isinstance(rev, str):
        raise PointerError(f"{where}: 'source.rev' must be a string", hint=hint)
    try:
        check_url(url)
        check_repo_relpath(path, "source path")
        if rev is not None:
            refs.check_rev(rev)
    except MomaError as exc:
        raise PointerError(f"{where}: {exc.message}", hint=hint) from None
    return Source(url, path, rev, commit)
