"""The `<path>.moma` pointer file: parse strictly, dump deterministically.

The data path is the pointer's own path minus the suffix, so a pointer can never name a
file elsewhere. Keys come out in a fixed order with no timestamps, so re-adding the same
bytes leaves `git diff` empty; unknown keys are kept, so newer versions of moma can add
fields without older ones dropping them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moma_cli import yamlio
from moma_cli.core import hashing
from moma_cli.core.lineage import Lineage
from moma_cli.core.modelsection import ModelSection
from moma_cli.core.paths import check_repo_relpath
from moma_cli.errors import POINTER_HINT, MomaError, PointerError

SUFFIX = ".moma"
SCHEMA_VERSION = 1
MAX_POINTER_BYTES = 256 * 1024
KINDS = ("file", "dir")
_CORE_KEYS = ("moma", "hash", "oid", "size", "kind", "nfiles")
_EXTRA_ORDER = ("meta", "source")


@dataclass(frozen=True)
class Pointer:
    path: str  # repo-relative POSIX path of the tracked data
    algo: str
    oid: str
    size: int
    kind: str = "file"
    nfiles: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # meta, source, unknown keys
    model: ModelSection | None = None  # the registry's section
    lineage: Lineage | None = None

    @property
    def pointer_path(self) -> str:
        return pointer_path_of(self.path)

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


def totals_mismatch(ptr: Pointer, nfiles: int, size: int) -> str:
    """The error for a directory pointer whose totals disagree with its listing."""
    return (f"{ptr.pointer_path}: records {ptr.nfiles} files, {ptr.size} bytes but its listing "
            f"has {nfiles} files, {size} bytes")


def pointer_path_of(data_path: str) -> str:
    return data_path + SUFFIX


def data_path_of(pointer_path: str) -> str:
    if not pointer_path.endswith(SUFFIX) or pointer_path == SUFFIX:
        raise PointerError(f"{pointer_path}: pointer files end in {SUFFIX}")
    return pointer_path[: -len(SUFFIX)]


def is_pointer_path(path: str) -> bool:
    return path.endswith(SUFFIX) and not path.endswith("/" + SUFFIX) and path != SUFFIX


def parse(text: str, pointer_path: str) -> Pointer:
    """Parse and validate pointer text; every error names the pointer file."""
    if len(text) > MAX_POINTER_BYTES:
        raise PointerError(f"{pointer_path}: pointer is larger than {MAX_POINTER_BYTES} bytes")
    try:
        data_path = check_repo_relpath(data_path_of(pointer_path), "tracked path")
        doc = yamlio.loads(text, pointer_path)
    except PointerError:
        raise
    except MomaError as exc:
        raise PointerError(exc.message, hint=POINTER_HINT) from None
    if not isinstance(doc, dict):
        got = type(doc).__name__ if doc is not None else "an empty file"
        raise PointerError(f"{pointer_path}:1: not a moma pointer (expected a mapping, got {got})",
                           POINTER_HINT)
    return _from_mapping(doc, data_path, pointer_path)


def _from_mapping(doc: dict[Any, Any], data_path: str, source: str) -> Pointer:
    def bad(msg: str) -> PointerError:
        return PointerError(f"{source}: {msg}", hint=POINTER_HINT)

    version = doc.get("moma")
    # `type() is int`: 1.0 and true compare equal to 1, but no moma ever wrote them
    if type(version) is not int or version != SCHEMA_VERSION:
        if type(version) is int and version > SCHEMA_VERSION:
            raise PointerError(
                f"{source}: pointer schema {version} is newer than this moma understands",
                hint="upgrade moma-cli",
            )
        raise bad("missing or invalid 'moma' schema version")
    algo = doc.get("hash")
    if algo not in hashing.ALGORITHMS:
        raise bad(f"unknown or missing hash algorithm {algo!r}")
    oid = doc.get("oid")
    if not hashing.is_valid_oid(oid):
        raise bad(f"'oid' is not a valid {algo} digest")
    size = doc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise bad("'size' must be a non-negative integer")
    kind = doc.get("kind", "file")
    if kind not in KINDS:
        raise bad(f"'kind' must be one of {', '.join(KINDS)}")
    nfiles = doc.get("nfiles")
    if kind == "dir":
        if not isinstance(nfiles, int) or isinstance(nfiles, bool) or nfiles < 0:
            raise bad("'nfiles' must be a non-negative integer for a directory")
    elif nfiles is not None:
        raise bad("'nfiles' is only valid for a directory")
    extra = {k: v for k, v in doc.items() if k not in _CORE_KEYS + ("model", "lineage")}
    for key in extra:
        if not isinstance(key, str):
            raise bad(f"key {key!r} is not a string")
    model = ModelSection.from_mapping(doc["model"], source) if "model" in doc else None
    lineage = Lineage.from_mapping(doc["lineage"], source) if "lineage" in doc else None
    return Pointer(data_path, algo, oid, size, kind, nfiles, extra,  # type: ignore[arg-type]
                   model, lineage)


def to_mapping(pointer: Pointer) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "moma": SCHEMA_VERSION,
        "hash": pointer.algo,
        "oid": pointer.oid,
        "size": pointer.size,
        "kind": pointer.kind,
    }
    if pointer.is_dir:
        doc["nfiles"] = pointer.nfiles
    if pointer.model is not None:
        doc["model"] = pointer.model.to_mapping()
    if pointer.lineage is not None:
        doc["lineage"] = pointer.lineage.to_mapping()
    for key in _EXTRA_ORDER:
        if key in pointer.extra:
            doc[key] = pointer.extra[key]
    for key, value in pointer.extra.items():
        if key not in doc:
            doc[key] = value
    return doc


def dumps(pointer: Pointer) -> str:
    return yamlio.dumps(to_mapping(pointer))


def from_mapping(doc: dict[Any, Any], data_path: str, source: str) -> Pointer:
    """A pointer from an already-parsed mapping (e.g. one cached as JSON), validated."""
    return _from_mapping(doc, data_path, source)
