"""`moma doctor`: what moma runs with and where (versions, platform, the repository, the
cache's free space and working link types, each remote's reachability, a shallow clone,
the git hooks), each probe bounded in time so the report never hangs."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from moma_cli import __version__
from moma_cli.config import RemoteConfig
from moma_cli.credentials import redact, redact_url
from moma_cli.errors import MomaError
from moma_cli.gitrepo import git_version
from moma_cli.services import hooks
from moma_cli.services.repo import Repo, open_repo
from moma_cli.storage import fs, link

# Seconds all remotes together get to answer: a dead endpoint is reported, not waited for
# (storage/fs.py's own timeouts and retries can add up to half a minute).
REMOTE_TIMEOUT = 5.0


@dataclass
class RemoteCheck:
    name: str
    url: str  # credentials redacted
    default: bool
    status: str  # ok | error | timeout | unchecked (a protocol moma cannot probe cheaply)
    message: str | None
    seconds: float


@dataclass
class DoctorResult:
    moma: str
    python: str
    git: str | None  # None: no git on PATH
    platform: str
    root: str | None = None
    repo_error: str | None = None  # why there is no repository to report on
    cache_dir: str | None = None
    cache_free: int | None = None  # bytes free on the cache's filesystem
    link_types: dict[str, bool] = field(default_factory=dict)  # cache -> workspace
    configured_links: list[str] = field(default_factory=list)
    remotes: list[RemoteCheck] = field(default_factory=list)
    shallow: bool | None = None
    hooks: dict[str, bool] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def doctor(cwd: Path | None = None, timeout: float = REMOTE_TIMEOUT) -> DoctorResult:
    result = DoctorResult(__version__, f"{platform.python_version()} ({sys.executable})",
                          git_version(), platform.platform())
    if result.git is None:
        result.warnings.append("git is not on PATH; moma keeps its pointers in git")
        return result
    try:
        repo = open_repo(cwd)
    except MomaError as exc:
        result.repo_error = exc.message
        return result
    result.root = str(repo.root)
    _cache(repo, result)
    result.remotes = check_remotes(repo, timeout)
    if not result.remotes:
        result.warnings.append("no remote configured: add one with "
                               "'moma remote add NAME URL --default'")
    result.shallow = repo.git.is_shallow()
    if result.shallow:
        result.warnings.append("shallow clone: registry history (version numbers, "
                               "models:log) needs the rest; run 'git fetch --unshallow'")
    result.hooks = hooks.installed(repo)
    return result


def _cache(repo: Repo, result: DoctorResult) -> None:
    result.cache_dir = str(repo.config.cache_dir)
    result.configured_links = list(repo.config.link_types)
    try:
        tmp_dir = repo.cache.tmp_dir
        result.link_types = link.working_types(tmp_dir, repo.moma_dir)
    except (MomaError, OSError) as exc:
        message = exc.message if isinstance(exc, MomaError) else str(exc)
        result.warnings.append(f"cannot probe the cache at {result.cache_dir}: {message}")
    existing = Path(os.path.abspath(repo.config.cache_dir))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    result.cache_free = shutil.disk_usage(existing).free
    configured = result.configured_links
    if result.link_types and not any(result.link_types.get(k) for k in configured):
        result.warnings.append(f"none of the configured link types ({', '.join(configured)}) "
                               "works here; add 'copy' to cache.type")


def check_remotes(repo: Repo, timeout: float) -> list[RemoteCheck]:
    """Every configured remote probed at once, each in a daemon thread: one that does not
    answer within `timeout` is reported as such and never keeps moma from exiting."""
    answers: dict[str, tuple[str, str | None, float]] = {}
    threads = []
    for name, remote in sorted(repo.config.remotes.items()):
        thread = threading.Thread(target=_probe, args=(remote, repo.root, answers),
                                  daemon=True)
        thread.start()
        threads.append((name, remote, thread))
    deadline = time.monotonic() + timeout
    checks = []
    for name, remote, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        status, message, seconds = answers.get(
            name, ("timeout", f"no answer within {timeout:g} s", timeout))
        checks.append(RemoteCheck(name, redact_url(remote.url),
                                  name == repo.config.default_remote, status, message,
                                  round(seconds, 3)))
    return checks


def _probe(remote: RemoteConfig, root: Path,
           answers: dict[str, tuple[str, str | None, float]]) -> None:
    start = time.monotonic()
    try:
        location = fs.open_location(remote, root)
        if location.is_local or location.protocol in ("s3", "s3a"):
            fs.check_reachable(location, create=False)
            outcome: tuple[str, str | None] = ("ok", None)
        else:
            outcome = ("unchecked", f"{location.protocol}:// remotes are not probed")
    except MomaError as exc:
        outcome = ("error", exc.message)
    except Exception as exc:  # a diagnosis reports whatever a backend raises, never dies of it
        outcome = ("error", redact(f"{type(exc).__name__}: {exc}"))
    answers[remote.name] = (*outcome, time.monotonic() - start)
