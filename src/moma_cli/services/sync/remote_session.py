"""Opening a configured remote for a transfer (`Remote`), and the transfer pool size.

Remotes survive time travel: every remote a transfer opened is remembered in
`.moma/known-remotes.json` (this clone's own state, never from git), so `pull` at an old
commit whose `.moma.yaml` predates the remote still finds it, and says so.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import Any

from moma_cli.atomic import atomic_write_bytes
from moma_cli.config import RemoteConfig
from moma_cli.credentials import redact_url
from moma_cli.errors import ConfigError
from moma_cli.services.progress import NOTICES
from moma_cli.services.repo import Repo
from moma_cli.storage import fs
from moma_cli.storage.remote import open_store
from moma_cli.storage.remote.store import Store


@dataclass
class Remote:
    """An opened remote: its store and its configured name."""

    store: Store
    name: str

    @property
    def jobs(self) -> int:
        """The transfer pool size, which the store sizes its own listings by too."""
        return self.store.jobs


def open_remote(repo: Repo, remote: str | None, jobs: int | None, *, create: bool,
                check: bool = True, verify: bool = False) -> Remote:
    """The configured remote, checked to be reachable (`check`); `verify` re-reads what
    the cache remembers of it (pack indexes) from the remote itself."""
    config = _configured_or_known(repo, remote)
    location = fs.open_location(config, repo.root)
    if check:
        fs.check_reachable(location, create=create)
    _remember(repo, config, default=remote is None)
    workers = jobs or config.jobs or repo.config.jobs or transfer_jobs(location.is_local)
    store = open_store(location, repo.cache.algo, repo.cache.pack_indexes_dir, workers,
                       reread=verify)
    return Remote(store, config.name)


def transfer_jobs(local: bool = False) -> int:
    """Default pool size for transfers. Network transfers wait on round trips: 16 per core
    (pushing to S3, 32 threads beat 8). A local-directory remote is bounded by the kernel's
    file creation, and threads beyond a few only fight over the GIL: fetching 1 GiB + 10k
    files took 6.0 s with 4 threads against 8.7 s with 32 (docs/performance.md)."""
    cores = os.cpu_count() or 1
    return min(8, cores * 2) if local else min(64, cores * 16)


KNOWN_REMOTES = "known-remotes.json"


def _known(repo: Repo) -> dict[str, Any]:
    try:
        doc = json.loads((repo.moma_dir / KNOWN_REMOTES).read_bytes())
    except (OSError, ValueError):
        return {}  # none yet, or damaged: it is a convenience, never a reason to fail
    return doc if isinstance(doc, dict) and isinstance(doc.get("remotes"), dict) else {}


def _configured_or_known(repo: Repo, name: str | None) -> RemoteConfig:
    try:
        return repo.config.remote(name)
    except ConfigError:
        known = _known(repo)
        chosen = name or known.get("default")
        entry = known.get("remotes", {}).get(chosen) if isinstance(chosen, str) else None
        if not (isinstance(chosen, str) and isinstance(entry, dict)
                and isinstance(entry.get("url"), str)
                and isinstance(entry.get("options", {}), dict)):
            raise
    NOTICES(f"using remote '{chosen}' ({redact_url(entry['url'])}), which this clone used "
            "before: the checked-out .moma.yaml does not define it")
    return RemoteConfig(chosen, entry["url"], dict(entry.get("options", {})))


def _remember(repo: Repo, config: RemoteConfig, *, default: bool) -> None:
    known = _known(repo)
    remotes = dict(known.get("remotes", {}))
    entry = {"url": config.url, "options": dict(config.options)}
    if remotes.get(config.name) == entry and (not default or known.get("default")
                                              == config.name):
        return
    remotes[config.name] = entry
    doc = {"default": config.name if default else known.get("default"), "remotes": remotes}
    with contextlib.suppress(OSError):  # a read-only .moma/ only costs the fallback
        atomic_write_bytes(repo.moma_dir / KNOWN_REMOTES,
                           json.dumps(doc, indent=1, default=str).encode())
