"""Source repositories cloned once and reused: a checked URL, a shallow clone under
`.moma/repos/<hash of url>/` (the user cache outside a repository), fetched to the asked
revision on each use, and opened as a `Repo` that reads the source's history and remotes
but writes only into this machine's cache."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from moma_cli import config as config_mod
from moma_cli.core import refs
from moma_cli.core.sources import check_url, is_local_path
from moma_cli.errors import NotARepoError
from moma_cli.gitrepo import Git
from moma_cli.services.repo import Repo, open_repo

REPOS_DIR = "repos"


@dataclass
class Opened:
    """A source at one commit: its clone as a Repo sharing this machine's cache."""

    repo: Repo
    url: str  # as recorded: a local path made absolute
    rev: str | None  # as asked (None: the default branch)
    commit: str  # what it resolved to


def user_cache_dir() -> Path:
    """moma's cache outside any repository: $XDG_CACHE_HOME/moma, else ~/.cache/moma."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "moma"


def normalize_url(url: str, cwd: Path | None = None) -> str:
    """A checked URL; a local path made absolute, so the same source is one clone and an
    imported pointer names it from anywhere."""
    if not is_local_path(check_url(url)):
        return url
    return os.path.abspath(Path(cwd or os.getcwd()) / os.path.expanduser(url))


def open_source(here: Repo | None, url: str, rev: str | None = None, *,
                commit: str | None = None, cwd: Path | None = None,
                workdir: Path | None = None, tags: bool = False) -> Opened:
    """Clone `url` (once) and fetch `rev`, or `commit` when given and not here yet; with
    `tags`, the source's registry tags as they are now. The clone and the cache are in
    `here`, else under `workdir` (default: the user cache, `user_cache_dir`)."""
    url = normalize_url(url, cwd)
    if rev is not None:
        refs.check_rev(rev)
    if here is not None:
        base, cache_dir = here.moma_dir / REPOS_DIR, here.config.cache_dir
    else:
        top = workdir or user_cache_dir()
        base, cache_dir = top / REPOS_DIR, top / "cache"
    git = _clone(url, base / hashlib.sha256(url.encode()).hexdigest()[:16])
    if commit is not None and git.has_commit(commit):
        resolved = commit
    else:
        resolved = git.fetch_source(commit or rev, tags=tags)
    raw = git.show(resolved, config_mod.CONFIG_FILE)
    text = raw.decode("utf-8", "replace") if raw is not None else None
    config = config_mod.source_config(git.root, text, cache_dir)
    return Opened(Repo(git.root, config), url, rev, resolved)


def _clone(url: str, dest: Path) -> Git:
    if (dest / ".git").is_dir():
        return Git(dest)
    # Cloned beside and renamed into place: a killed clone never passes for a finished one.
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.is_dir():  # our own leftover, named by us under .moma/repos
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    Git.clone_source(url, tmp)
    os.replace(tmp, dest)
    return Git(dest)


def current_repo(cwd: Path | None = None) -> Repo | None:
    """The moma repository around `cwd`, or None: `ls` and `get` also work outside one."""
    try:
        return open_repo(cwd)
    except NotARepoError:
        return None
