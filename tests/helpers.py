"""Assertions every fault and bad-input test shares: "nothing lost" and "one clear error".

Usage from any suite (tests/ is on sys.path, like conftest):

    from helpers import assert_nothing_lost, assert_one_error, snapshot

    before = snapshot(repo.root)
    res = repo("checkout", ok=False)
    assert_one_error(res, "bad.bin.moma:3")
    assert_nothing_lost(repo.root, before)
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from moma_cli.atomic import is_tmp_name
from moma_cli.core import hashing
from moma_cli.core.lineage import Lineage
from moma_cli.core.modelsection import ModelSection
from moma_cli.core.pointer import Pointer

SKIP_DIRS = (".git", ".moma")


class _Result(Protocol):
    exit_code: int
    stdout: str
    stderr: str


def snapshot(top: Path) -> dict[str, bytes | str]:
    """Every entry under `top` (minus .git/ and .moma/): file bytes, or '-> target' for a
    symlink (never followed, so a snapshot cannot read outside `top`)."""
    found: dict[str, bytes | str] = {}
    if not top.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = Path(dirpath).relative_to(top)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = (rel_dir / name).as_posix()
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif name in filenames:
                found[rel] = path.read_bytes()
    return found


def cache_objects(root: Path, cache: Path | None = None) -> dict[str, Path]:
    """oid -> path of every object in the repository's cache."""
    cache = cache or root / ".moma" / "cache"
    objects: dict[str, Path] = {}
    for algo in hashing.ALGORITHMS:
        base = cache / algo
        if base.is_dir():
            for path in base.glob("??/*"):
                objects[path.parent.name + path.name] = path
    return objects


def temp_files(top: Path) -> list[Path]:
    return [p for p in top.rglob("*") if is_tmp_name(p.name)]


def assert_nothing_lost(root: Path, before: dict[str, bytes | str] | None = None, *,
                        cache: Path | None = None,
                        outside: dict[Path, dict[str, bytes | str]] | None = None) -> None:
    """The repository lost nothing: every cache object re-hashes to its name and is
    read-only, no temp file is left anywhere, the workspace equals `before`, and each
    directory in `outside` still equals its snapshot (nothing written outside)."""
    cache = cache or root / ".moma" / "cache"
    for oid, path in cache_objects(root, cache).items():
        algo = path.parent.parent.name
        assert hashing.hash_bytes(path.read_bytes(), algo) == oid, f"corrupt object {path}"
        assert stat.S_IMODE(path.lstat().st_mode) == 0o444, f"writable object {path}"
    leftovers = temp_files(root) + (temp_files(cache) if not cache.is_relative_to(root) else [])
    assert not leftovers, f"temp files left behind: {leftovers}"
    if before is not None:
        assert snapshot(root) == before, "workspace changed"
    for directory, expected in (outside or {}).items():
        assert snapshot(directory) == expected, f"{directory} was written to"


def assert_one_error(res: _Result, *fragments: str, exit_code: int = 1) -> str:
    """Exit code, exactly one `error:` line on stderr (a `hint:` may follow) containing every
    fragment, and no traceback anywhere. Returns the error line."""
    assert res.exit_code == exit_code, (res.exit_code, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    others = [line for line in res.stderr.splitlines()
              if line.strip() and not line.startswith(("error:", "hint:", "warning:"))]
    assert not others, res.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[Path]:
    """Make `path` refuse new entries, also for root (tests may run as root, where mode
    bits do not stop writes): chattr +i as root, chmod 0555 otherwise."""
    path.mkdir(parents=True, exist_ok=True)
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o555)
    try:
        yield path
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o755)


def with_sections(ptr: Pointer, **sections: Any) -> Pointer:
    """`ptr` with the given sections as plain mappings (None removes one), `model` and
    `lineage` validated like those of a pointer read from a file: how a test writes a
    pointer another tool or an older moma could have written."""
    extra = dict(ptr.extra)
    model, lineage = ptr.model, ptr.lineage
    for key, value in sections.items():
        if key == "model":
            model = None if value is None else ModelSection.from_mapping(value, ptr.pointer_path)
        elif key == "lineage":
            lineage = None if value is None else Lineage.from_mapping(value, ptr.pointer_path)
        elif value is None:
            extra.pop(key, None)
        else:
            extra[key] = value
    return replace(ptr, extra=extra, model=model, lineage=lineage)
