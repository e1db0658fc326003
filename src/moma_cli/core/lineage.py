"""A result's lineage: the pointer's `lineage:` section and the environment it records.

The section is `lineage: {deps: [{path, oid}], code, params, env}`. The environment is
Python, platform and installed packages; packages are recorded as one sha256 digest of the
sorted `name==version` lines, so two environments can be compared without storing a
hundred lines in every pointer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from moma_cli.errors import POINTER_HINT, PointerError

_LINEAGE_KEYS = ("deps", "code", "params", "env")


@dataclass(frozen=True)
class Lineage:
    """A pointer's `lineage:` section, read once with the pointer: the inputs (`path` and
    `oid` of each), the code commit (None before the first commit), the flat parameters
    and the environment. Keys this moma does not know, in the section or in a dep, are
    kept and written back unchanged."""

    deps: tuple[dict[str, Any], ...] = ()
    code: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, doc: Any, source: str) -> Lineage:
        """The section of the pointer file `source`; a bad one raises PointerError naming it."""
        def bad(msg: str) -> PointerError:
            return PointerError(f"{source}: 'lineage{msg}", hint=POINTER_HINT)

        if not isinstance(doc, dict):
            raise bad("' must be a mapping")
        deps = doc.get("deps") or []
        if not isinstance(deps, list):
            raise bad(".deps' must be a list")
        for dep in deps:
            if not (isinstance(dep, dict) and isinstance(dep.get("path"), str)
                    and isinstance(dep.get("oid"), str)):
                raise bad(".deps' entries must be mappings with a string path and oid")
        code = doc.get("code")
        if code is not None and not isinstance(code, str):
            raise bad(".code' must be a string")
        for key in ("params", "env"):
            if not isinstance(doc.get(key) or {}, dict):
                raise bad(f".{key}' must be a mapping")
        unknown = {k: v for k, v in doc.items() if k not in _LINEAGE_KEYS}
        if any(not isinstance(k, str) for k in unknown):
            raise bad("' keys must be strings")
        return cls(tuple(deps), code, doc.get("params") or {}, doc.get("env") or {}, unknown)

    def to_mapping(self) -> dict[str, Any]:
        return {"deps": list(self.deps), "code": self.code, "params": self.params,
                "env": self.env} | self.unknown

# `name-version.dist-info` / `.egg-info` directory names (PEP 376/427). Reading the name
# and version from the directory saves opening ~100 METADATA files (90 ms -> 30 ms here).
_DIST_DIR_RE = re.compile(r"(?P<name>[^-]+)-(?P<version>[^-]+?)(?:-py[^-]*)?\.(dist|egg)-info")


def installed_packages() -> list[str]:
    """Sorted, de-duplicated `name==version` for every importable distribution."""
    import importlib.metadata  # 30 ms (email, zipfile, csv): only recording lineage needs it

    found = set()
    for dist in importlib.metadata.distributions():
        path = getattr(dist, "_path", None)  # PathDistribution: its metadata directory
        match = _DIST_DIR_RE.fullmatch(path.name) if path is not None else None
        if match:
            name, version = match.group("name"), match.group("version")
        else:
            name, version = dist.metadata["Name"] or "?", dist.version
        found.add(f"{_normalize(name)}=={version}")
    return sorted(found)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def packages_digest(packages: list[str]) -> str:
    import hashlib  # OpenSSL's loader: 2.5 ms of every command that reads a pointer

    return "sha256:" + hashlib.sha256("\n".join(packages).encode()).hexdigest()


@cache
def environment() -> dict[str, Any]:
    import platform  # 2 ms at import: only when recording an environment

    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "packages": packages_digest(installed_packages()),
    }
