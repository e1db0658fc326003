"""The pipeline's stages, from `.moma.yaml` in the workspace or at a revision, and the DAG
they form (`moma dag`)."""

from __future__ import annotations

import os

from moma_cli import config as config_mod
from moma_cli import yamlio
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.stages import Dag, Stage, build_dag, parse_stages
from moma_cli.services.repo import Repo


def load_stages(repo: Repo, rev: str | None = None) -> dict[str, Stage]:
    """The stages of `.moma.yaml` in the workspace, or at git revision `rev`."""
    if rev is None:
        return parse_stages(config_mod.read_layer(repo.root).get("stages"))
    raw = repo.git.show(repo.git.rev_parse(rev), config_mod.CONFIG_FILE)
    doc = yamlio.load_bytes(raw, f"{rev}:{config_mod.CONFIG_FILE}") if raw else None
    return parse_stages((doc or {}).get("stages"), f"{rev}:{config_mod.CONFIG_FILE}")


def load_dag(repo: Repo, stages: dict[str, Stage] | None = None) -> Dag:
    def exists(rel: str) -> bool:
        return os.path.lexists(repo.abspath(rel)) or os.path.exists(
            repo.abspath(pointer_mod.pointer_path_of(rel)))

    return build_dag(load_stages(repo) if stages is None else stages, exists)


def dag(repo: Repo) -> Dag:
    return load_dag(repo)
