"""`moma ls URL`: the data another repository tracks and the models it registers, read
from its history at one commit (nothing is downloaded but git objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moma_cli.core.paths import is_within
from moma_cli.services import revisions
from moma_cli.services.crossrepo.clones import open_source
from moma_cli.services.registry import resolving
from moma_cli.services.repo import Repo


@dataclass
class DataEntry:
    path: str
    kind: str  # file | dir
    size: int
    nfiles: int | None
    oid: str
    model: str | None  # the model it holds, if any


@dataclass
class ModelEntry:
    name: str
    version: int | None
    stages: list[str]
    path: str


@dataclass
class ListResult:
    url: str
    rev: str | None
    commit: str
    data: list[DataEntry] = field(default_factory=list)
    models: list[ModelEntry] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # pointers that did not parse

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "rev": self.rev, "commit": self.commit,
                "data": [vars(d) for d in self.data], "models": [vars(m) for m in self.models],
                "invalid": self.invalid}


def ls(here: Repo | None, url: str, path: str | None = None, *, rev: str | None = None,
       cwd: Path | None = None) -> ListResult:
    """What `url` tracks at `rev` (default: its default branch), under `path` when given."""
    src = open_source(here, url, rev, cwd=cwd)
    found = revisions.pointers_at(src.repo, src.commit)
    prefix = path.strip("/") if path else None
    result = ListResult(src.url, rev, src.commit,
                        invalid=[f"{where}: {exc.message}" for where, exc in found.errors])
    for _, ptr in sorted(found.pointers, key=lambda item: item[1].path):
        if prefix and not (is_within(ptr.path, prefix) or is_within(prefix, ptr.path)):
            continue
        name = ptr.model.name if ptr.model else None
        result.data.append(DataEntry(ptr.path, ptr.kind, ptr.size, ptr.nfiles, ptr.oid,
                                     str(name) if name else None))
    if any(d.model for d in result.data):  # numbering versions needs the whole history
        listed = resolving.list_models(src.repo, rev=src.commit)
        wanted = {d.model for d in result.data}
        result.models = [ModelEntry(v.name, v.version, [s for s in listed.stage_names
                                                     if s in listed.stages.get(v.name, {})],
                                    v.pointer.path)
                         for v in listed.models if v.name in wanted]
    return result
