"""Another repository's model registry (`models:list / show / get --repo URL`,
`api.load_model(..., repo=URL)`): its cached clone, fetched with its tags, read at one
commit like this repository's own registry; model bytes come from its remote into this
machine's cache, verified."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moma_cli.services.crossrepo.clones import Opened, current_repo, open_source
from moma_cli.services.registry import model_files, resolving
from moma_cli.services.registry.model_version import ModelVersion
from moma_cli.services.repo import Repo


def _source(here: Repo | None, url: str, rev: str | None, cwd: Path | None) -> Opened:
    return open_source(here, url, rev, cwd=cwd, tags=True)


def list_models(here: Repo | None, url: str, *, rev: str | None = None,
                deprecated: bool = False, cwd: Path | None = None) -> resolving.ModelList:
    src = _source(here, url, rev, cwd)
    return resolving.list_models(src.repo, rev=src.commit, deprecated=deprecated)


def resolve(here: Repo | None, url: str, ref: str, *, rev: str | None = None,
            cwd: Path | None = None) -> ModelVersion:
    src = _source(here, url, rev, cwd)
    return resolving.resolve(src.repo, ref, rev=src.commit)


def get(here: Repo | None, url: str, ref: str, output: str, *, rev: str | None = None,
        force: bool = False, cwd: Path | None = None) -> model_files.GetResult:
    src = _source(here, url, rev, cwd)
    return model_files.get(src.repo, ref, output, rev=src.commit, cwd=cwd, force=force)


def model_file(url: str, ref: str, *, rev: str | None = None,
               cwd: Path | None = None) -> tuple[ModelVersion, Path]:
    src = _source(current_repo(cwd), url, rev, cwd)
    return model_files.model_file(src.repo, ref, src.commit)


def load(url: str, ref: str, *, rev: str | None = None, trust_pickle: bool,
         trusted_types: Sequence[str] = (), cwd: Path | None = None) -> Any:
    src = _source(current_repo(cwd), url, rev, cwd)
    return model_files.load(src.repo, ref, rev=src.commit, trust_pickle=trust_pickle,
                            trusted_types=trusted_types)
