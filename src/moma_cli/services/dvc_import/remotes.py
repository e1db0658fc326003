"""DVC remotes as moma remotes: the URL (a relative path made relative to the repository
root instead of `.dvc/`) and the options moma knows; credentials are never copied."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from moma_cli import config as config_mod
from moma_cli.config import RemoteConfig
from moma_cli.core.dvc_config import DVC_SECRETS, DvcConfig, DvcRemote
from moma_cli.credentials import CREDENTIALS_IN_URL, is_secret_key
from moma_cli.errors import MomaError

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_COPIED = tuple(o for o in config_mod.REMOTE_OPTIONS if o != "url")


@dataclass
class RemotePlan:
    remotes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> moma options
    default: str | None = None
    secrets: list[str] = field(default_factory=list)  # "storage.secret_access_key": left out
    unsupported: list[str] = field(default_factory=list)  # "storage.ssl_verify": left out
    refused: dict[str, str] = field(default_factory=dict)  # name -> why


def plan_remotes(config: DvcConfig) -> RemotePlan:
    plan = RemotePlan()
    for name, remote in sorted(config.remotes.items()):
        try:
            config_mod.check_name(name, "remote name")
            options: dict[str, Any] = {"url": moma_url(remote)}
        except MomaError as exc:
            plan.refused[name] = exc.message
            continue
        for key, value in sorted(remote.options.items()):
            if key == "url":
                continue
            if key in DVC_SECRETS or is_secret_key(key):
                plan.secrets.append(f"{name}.{key}")
            elif key in _COPIED and not CREDENTIALS_IN_URL.match(value):
                options[key] = int(value) if key == "jobs" and value.isdigit() else value
            else:
                plan.unsupported.append(f"{name}.{key}")
        plan.remotes[name] = options
    if config.default_remote in plan.remotes:
        plan.default = config.default_remote
    return plan


def moma_url(remote: DvcRemote) -> str:
    url = remote.url
    if not url:
        raise MomaError(f"DVC remote {remote.name!r} has no url")
    if CREDENTIALS_IN_URL.match(url):
        raise MomaError(f"DVC remote {remote.name!r}: its url holds credentials; not copied")
    if url.startswith("remote://"):
        raise MomaError(f"DVC remote {remote.name!r}: 'remote://' URLs are not supported")
    if _SCHEME.match(url) or posixpath.isabs(url) or url.startswith("~"):
        return url
    return posixpath.normpath(posixpath.join(".dvc", url))  # DVC: relative to .dvc/


def source_config(remote: DvcRemote) -> RemoteConfig:
    """The DVC remote as a moma RemoteConfig, to read DVC's objects from (credentials come
    from the environment or a profile, as for moma's own remotes)."""
    options = {k: v for k, v in remote.options.items() if k in _COPIED}
    return RemoteConfig(f"dvc:{remote.name}", moma_url(remote), options)


def apply(doc: dict[str, Any], plan: RemotePlan, notes: list[str]) -> list[str]:
    """Add the planned remotes to the `.moma.yaml` document; returns those added. A remote
    moma already has under that name is kept as it is."""
    remotes = dict(doc.get("remotes") or {})
    added = []
    for name, options in plan.remotes.items():
        if name in remotes:
            if remotes[name] != options:
                notes.append(f"remote {name!r}: moma's own definition kept")
            continue
        remotes[name] = options
        added.append(name)
    if added:
        doc["remotes"] = remotes
    core = dict(doc.get("core") or {})
    if plan.default and not core.get("remote"):
        doc["core"] = {**core, "remote": plan.default}
    return added
