"""`moma serve --repo URL`: serve the registry of a repository there is no checkout of.

The URL is cloned once, with no work tree, under the work directory (crossrepo/clones.py:
`<workdir>/repos/<hash of url>`, the objects in `<workdir>/cache`), deepened to the whole
history so that versions keep their numbers. Every reload first fetches origin's branches
and tags (`Git.follow_origin`), so a stage tag moved or deleted there is seen here, and
stages resolve on origin's default branch: the clone's own HEAD never moves. A model's
object is downloaded from the source's default remote, verified on arrival, when a stage
first names it, as `moma pull` would.

The source is someone else's: its `.moma.yaml` gives only its hash algorithm and remotes
(config.source_config), and a pickled model, which runs code from its file when loaded, is
loaded only with `--trust` (docs/safety.md). Worker processes share one clone; a flock on
its `.moma/lock` keeps their fetches from racing on git's ref locks.
"""

from __future__ import annotations

from pathlib import Path

from moma_cli.errors import MomaError
from moma_cli.services.crossrepo import clones, getting
from moma_cli.services.model_loading import PICKLED
from moma_cli.services.repo import Repo
from moma_cli.services.serving.source import RegistrySource, ResolvedModel

# Where stages resolve: origin's default branch as last fetched.
TIP = "refs/remotes/origin/HEAD"
# Another worker's fetch of a slow remote is waited for, up to this long.
LOCK_WAIT = 120.0


class UntrustedModelError(MomaError):
    pass


def open_clone(url: str, workdir: Path | None = None) -> Repo:
    """The clone of `url` under `workdir` (default: the user cache), cloned on first use and
    brought up to date with origin's branches and tags."""
    repo = clones.open_source(None, url, workdir=workdir).repo
    follow(repo)
    return repo


def follow(repo: Repo) -> None:
    with repo.lock(wait=LOCK_WAIT):
        repo.git.follow_origin()


class FollowedSource(RegistrySource):
    """The registry of a clone, on origin's default branch, fetched on each refresh."""

    def __init__(self, repo: Repo) -> None:
        super().__init__(repo, TIP)

    def refresh(self) -> None:
        follow(self.repo)


def pull(repo: Repo, resolved: ResolvedModel, trust: bool) -> None:
    """Download `resolved`'s object unless the cache has it; a pickle only when `trust`:
    refused before a byte of it arrives."""
    encoding = resolved.metadata.get("encoding") or "joblib"
    if encoding in PICKLED and not trust:
        raise UntrustedModelError(
            f"refusing to serve model {resolved.label} of another repository: it is a "
            f"{encoding} pickle, and unpickling runs code from its file",
            hint="pass --trust if you trust whoever registered it, or register it as skops "
                 "or ONNX")
    getting.fetch_missing(repo, [resolved.oid])
