"""DVC 3's files, read strictly since a clone writes them: `.dvc` files, `.dir` listings,
`dvc.lock`, and the object layout (`files/md5/<2>/<rest>`) of its cache and remotes.

Every path is checked (`core/paths.py`) before anything is built from it; anything this
module does not understand is refused by name rather than guessed at.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moma_cli import yamlio
from moma_cli.core.paths import check_repo_relpath
from moma_cli.errors import MomaError

DVC_SUFFIX = ".dvc"
DIR_SUFFIX = ".dir"
MAX_LISTING = 256 << 20  # a .dir listing of a million files is ~90 MiB
_MD5 = re.compile(r"([0-9a-f]{32})(\.dir)?")
# Keys of an out (or a dvc.lock dep) moma reads or may safely ignore (descriptions, labels).
_OUT_KEYS = {"path", "md5", "hash", "size", "nfiles", "cache", "persist", "desc", "type",
             "labels", "meta", "remote", "push", "isexec"}
_DVC_FILE_KEYS = {"outs", "md5", "frozen", "desc", "meta", "wdir"}
_LOCK_STAGE_KEYS = {"cmd", "deps", "params", "outs"}
_MIGRATE_HINT = "run 'dvc cache migrate --dvc-files' with DVC 3 first, then import again"


class DvcError(MomaError):
    pass


@dataclass(frozen=True)
class Out:
    """Data DVC tracks: a `.dvc` file's out or a stage output in dvc.lock."""

    path: str  # repo-relative
    md5: str  # 32 hex digits; for a directory, the md5 of its .dir listing
    is_dir: bool
    size: int | None
    nfiles: int | None
    origin: str  # "data.csv.dvc", "dvc.lock:train"
    remote: str | None = None  # the DVC remote the out names, if not the default

    @property
    def object_name(self) -> str:
        return self.md5 + (DIR_SUFFIX if self.is_dir else "")


def object_path(name: str) -> str:
    """Where DVC 3 keeps an object (an md5, or an md5 + '.dir'), below its cache or remote."""
    return f"files/md5/{name[:2]}/{name[2:]}"


def parse_dvc_file(data: bytes, rel: str) -> list[Out]:
    """The outs of the `.dvc` file at `rel`; their paths are relative to its directory."""
    doc = _mapping(yamlio.load_bytes(data, rel), rel)
    unknown = sorted(set(doc) - _DVC_FILE_KEYS)
    if "deps" in doc:
        raise DvcError(f"{rel}: has 'deps' (written by 'dvc import' or 'dvc import-url'); "
                       "moma imports data DVC tracks itself",
                       hint="convert it by hand: 'dvc pull', 'rm' the .dvc file, 'moma add'")
    if unknown:
        raise DvcError(f"{rel}: unknown key {unknown[0]!r}", hint=_MIGRATE_HINT)
    if doc.get("wdir") not in (None, "."):
        raise DvcError(f"{rel}: 'wdir' is not supported", hint="convert it by hand")
    outs = doc.get("outs")
    if not isinstance(outs, list) or not outs:
        raise DvcError(f"{rel}: 'outs' must be a non-empty list")
    return [parse_out(item, posixpath.dirname(rel), rel) for item in outs]


def parse_out(item: Any, base: str, origin: str) -> Out:
    """One out (or dvc.lock dep) entry with its md5; `base` is the directory paths start in."""
    where = f"{origin}: out {item.get('path')!r}" if isinstance(item, dict) else origin
    entry = _mapping(item, where)
    unknown = sorted(set(entry) - _OUT_KEYS)
    if unknown:
        raise DvcError(f"{where}: unknown key {unknown[0]!r}")
    if entry.get("hash") != "md5":
        raise DvcError(f"{where}: no 'hash: md5' (a DVC 2 hash, which DVC 3 computes "
                       "differently)", hint=_MIGRATE_HINT)
    if entry.get("cache") is False:
        raise DvcError(f"{where}: is not cached by DVC ('cache: false'); git keeps it",
                       hint="leave it to git, or remove the out from the .dvc file")
    found = _MD5.fullmatch(str(entry.get("md5")))
    if found is None:
        raise DvcError(f"{where}: 'md5' is not an md5 digest")
    path = join(base, entry.get("path"), where)
    remote = entry.get("remote")
    if remote is not None and not isinstance(remote, str):
        raise DvcError(f"{where}: 'remote' must be a name")
    return Out(path, found[1], found[2] is not None, _count(entry, "size", where),
               _count(entry, "nfiles", where), origin, remote)


def join(base: str, path: Any, where: str) -> str:
    """A DVC path relative to `base`, as a checked repo-relative path."""
    if not isinstance(path, str) or not path:
        raise DvcError(f"{where}: 'path' must be a non-empty string")
    try:
        return check_repo_relpath(posixpath.normpath(posixpath.join(base, path)), "path")
    except MomaError as exc:
        raise DvcError(f"{where}: {exc.message}") from None


def parse_listing(data: bytes, source: str) -> list[tuple[str, str]]:
    """A `.dir` listing: (relpath, md5) per file, each relpath checked, none twice."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise DvcError(f"{source}: not a DVC directory listing (invalid JSON)") from None
    if not isinstance(doc, list):
        raise DvcError(f"{source}: not a DVC directory listing (not a list)")
    entries: dict[str, str] = {}
    for item in doc:
        if not isinstance(item, dict) or not {"md5", "relpath"} <= set(item) \
                or not set(item) <= {"md5", "relpath", "size", "isexec"}:
            raise DvcError(f"{source}: an entry is not {{md5, relpath}}")
        md5, rel = item["md5"], item["relpath"]
        try:
            rel = check_repo_relpath(rel, "listing entry")
        except MomaError as exc:
            raise DvcError(f"{source}: {exc.message}") from None
        if not isinstance(md5, str) or not re.fullmatch("[0-9a-f]{32}", md5) or rel in entries:
            raise DvcError(f"{source}: entry {rel!r} has no md5, or is listed twice")
        entries[rel] = md5
    return sorted(entries.items())


def listing_md5(entries: list[tuple[str, str]]) -> str:
    """The md5 DVC gives a directory: of its listing, serialised as dvc-data does
    (`json.dumps` of the entries sorted by relpath, keys sorted)."""
    rows = [{"md5": md5, "relpath": rel} for rel, md5 in sorted(entries)]
    return hashlib.md5(json.dumps(rows, sort_keys=True).encode()).hexdigest()  # noqa: S324


@dataclass(frozen=True)
class LockedStage:
    """What dvc.lock says a stage last ran with."""

    cmd: str
    deps: tuple[Out, ...]
    params: Mapping[str, Mapping[str, Any]]  # file -> values, as DVC nests them
    outs: tuple[Out, ...]


def parse_lock(doc: Any, bases: Mapping[str, str],
               source: str = "dvc.lock") -> dict[str, LockedStage]:
    """Stage name -> its dvc.lock entry (schema 2.0, DVC 3 hashes), for the stages `bases`
    names (stage -> the directory its paths start in)."""
    doc = _mapping(doc, source)
    if str(doc.get("schema")) != "2.0":
        raise DvcError(f"{source}: schema {doc.get('schema')!r} is not 2.0", hint=_MIGRATE_HINT)
    locked = {}
    for name, entry in _mapping(doc.get("stages") or {}, source).items():
        if name not in bases:
            continue
        base, where = bases[name], f"{source}:{name}"
        entry = _mapping(entry, where)
        unknown = sorted(set(entry) - _LOCK_STAGE_KEYS)
        if unknown:
            raise DvcError(f"{where}: unknown key {unknown[0]!r}")
        params = _mapping(entry.get("params") or {}, where)
        if not all(isinstance(v, dict) for v in params.values()):
            raise DvcError(f"{where}: 'params' must map each file to its values")
        locked[str(name)] = LockedStage(
            command(entry.get("cmd"), where),
            tuple(parse_out(d, base, where) for d in _list(entry.get("deps"), where)),
            {join(base, f, where): v for f, v in params.items()},
            tuple(parse_out(o, base, where) for o in _list(entry.get("outs"), where)))
    return locked


def command(cmd: Any, where: str) -> str:
    """A stage's command: a string, or a list DVC runs one after the other."""
    if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
        return " && ".join(cmd)
    if not isinstance(cmd, str) or not cmd.strip():
        raise DvcError(f"{where}: 'cmd' must be a string or a list of strings")
    return cmd


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise DvcError(f"{where}: must be a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DvcError(f"{where}: 'deps' and 'outs' must be lists")
    return value


def _count(entry: Mapping[str, Any], key: str, where: str) -> int | None:
    value = entry.get(key)
    if value is not None and (type(value) is not int or value < 0):
        raise DvcError(f"{where}: '{key}' must be a non-negative integer")
    return value
