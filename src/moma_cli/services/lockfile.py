"""`moma.lock`: what each stage last ran with (dependency and output oids, parameter and
metric values, the code commit, the environment). Written by moma, read by repro, verify,
lineage, heal and registration; it arrives with a clone, so every entry is validated before
a path is built from it.
"""

from __future__ import annotations

from typing import Any

from moma_cli import yamlio
from moma_cli.atomic import write_if_changed
from moma_cli.core import hashing
from moma_cli.core.lineage import Lineage
from moma_cli.core.paths import check_repo_relpath
from moma_cli.core.stages import PipelineError
from moma_cli.errors import MomaError
from moma_cli.services import lineage as lineage_mod
from moma_cli.services.repo import Repo

LOCK_FILE = "moma.lock"
LOCK_SCHEMA = 1


def read(repo: Repo, rev: str | None = None) -> dict[str, dict[str, Any]]:
    """stage name -> what it last ran with, from `moma.lock` (workspace or revision)."""
    if rev is None:
        path = repo.root / LOCK_FILE
        doc = yamlio.load_file(path, LOCK_FILE) if path.exists() else None
    else:
        raw = repo.git.show(rev, LOCK_FILE)
        doc = yamlio.load_bytes(raw, f"{rev}:{LOCK_FILE}") if raw else None
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("stages") or {}, dict):
        raise PipelineError(f"{LOCK_FILE}: not a moma lock file", hint=_LOCK_HINT)
    schema = doc.get("schema", LOCK_SCHEMA)
    if type(schema) is not int or schema != LOCK_SCHEMA:  # not 1.0, not true
        newer = type(schema) is int and schema > LOCK_SCHEMA
        raise PipelineError(f"{LOCK_FILE}: lock schema {schema!r} is "
                            + ("newer than this moma understands" if newer else "not valid"),
                            hint="upgrade moma-cli" if newer else _LOCK_HINT)
    entries = dict(doc.get("stages") or {})
    for name, entry in entries.items():
        _check_lock_entry(str(name), entry)
    return entries


def output_lineage(repo: Repo, rel: str, oid: str) -> Lineage | None:
    """The lineage section of a stage output whose bytes are those the lock recorded (a
    model registered after the `moma run` that made it), else None."""
    for entry in read(repo).values():
        if any(out["path"] == rel and out["oid"] == oid for out in entry.get("outs") or []):
            return Lineage(tuple(entry.get("deps") or []), entry.get("code"),
                           lineage_mod.flat_params(entry.get("params") or {}),
                           dict(entry.get("env") or {}))
    return None


_LOCK_HINT = f"restore it with 'git checkout -- {LOCK_FILE}', or re-run with 'moma repro --force'"


def _check_lock_entry(name: str, entry: Any) -> None:
    """Paths and oids in the lock come from git (anyone who can push): validate them before
    a path is built from them, as for pointers."""
    def bad(msg: str) -> PipelineError:
        return PipelineError(f"{LOCK_FILE}: stage {name!r}: {msg}", hint=_LOCK_HINT)

    if not isinstance(entry, dict):
        raise PipelineError(f"{LOCK_FILE}: stage {name!r} is not a mapping", hint=_LOCK_HINT)
    # the shapes repro, verify and lineage read: a wrong one is a bad lock, not a crash
    for key in ("cmd", "code"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise bad(f"'{key}' must be a string")
    for key in ("metrics", "env"):
        if not _named(entry.get(key) or {}):
            raise bad(f"'{key}' must be a mapping with string keys")
    params = entry.get("params") or {}
    if not _named(params) or not all(_named(v) for v in params.values()):
        raise bad("'params' must map each params file to its values")
    for key in ("deps", "outs"):
        items = entry.get(key) or []
        if not isinstance(items, list):
            raise bad(f"'{key}' must be a list")
        for item in items:
            ok = isinstance(item, dict) and hashing.is_valid_oid(item.get("oid"))
            try:
                check_repo_relpath(item.get("path") if ok else None, f"{key} entry")
            except MomaError as exc:
                raise PipelineError(f"{LOCK_FILE}: stage {name!r}: {exc.message}"
                                    + ("" if ok else " or invalid oid"), hint=_LOCK_HINT) from None


def _named(value: Any) -> bool:
    """A mapping with string keys (they are sorted and compared with file and key names)."""
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)


def write(repo: Repo, entries: dict[str, dict[str, Any]]) -> None:
    doc = {"schema": LOCK_SCHEMA, "stages": {name: entries[name] for name in sorted(entries)}}
    write_if_changed(repo.root / LOCK_FILE, yamlio.dumps(doc).encode())
