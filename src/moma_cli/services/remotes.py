"""`moma remote ...`: named storage locations in `.moma.yaml` (or `.moma.local.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moma_cli import config as config_mod
from moma_cli.credentials import (
    CREDENTIALS_IN_URL,
    LOCAL_CREDENTIALS,
    SECRET_OPTIONS,
    redact_url,
)
from moma_cli.errors import ConfigError
from moma_cli.services.repo import Repo


@dataclass
class RemoteInfo:
    name: str
    url: str
    default: bool
    options: dict[str, Any]


def check_url(url: str) -> str:
    if CREDENTIALS_IN_URL.match(url):
        raise ConfigError(
            "remote URLs must not contain credentials",
            hint="set them in the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) "
            "or an AWS profile ('moma remote modify NAME profile PROFILE')",
        )
    if not url.strip():
        raise ConfigError("remote URL is empty")
    return url


def _edit(repo: Repo, local: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    doc = config_mod.read_layer(repo.root, local)
    remotes = doc.setdefault("remotes", {}) or {}
    doc["remotes"] = remotes
    return doc, remotes


def add(repo: Repo, name: str, url: str, *, default: bool = False, local: bool = False,
        force: bool = False) -> None:
    config_mod.check_name(name, "remote name")
    check_url(url)
    doc, remotes = _edit(repo, local)
    if name in remotes and not force:
        raise ConfigError(f"remote {name!r} already exists",
                          hint=f"use 'moma remote modify {name} url URL' to change it")
    remotes[name] = {"url": url}
    if default:
        doc.setdefault("core", {})
        doc["core"] = {**(doc["core"] or {}), "remote": name}
    config_mod.write_layer(repo.root, doc, local)


def modify(repo: Repo, name: str, key: str, value: str | None, *, local: bool = False) -> None:
    if key in LOCAL_CREDENTIALS and not local:
        raise ConfigError(f"'{key}' must not be stored in the committed {config_mod.CONFIG_FILE}",
                          hint=f"add --local to write it to the git-ignored "
                               f"{config_mod.LOCAL_CONFIG_FILE}, or set it in the environment")
    if key not in config_mod.REMOTE_OPTIONS and key not in LOCAL_CREDENTIALS:
        if key.lower() in SECRET_OPTIONS:
            raise ConfigError(f"'{key}' must not be stored in a config file",
                              hint="set credentials in the environment or an AWS profile")
        raise ConfigError(f"unknown remote option {key!r}",
                          hint=f"known options: {', '.join(config_mod.REMOTE_OPTIONS)}")
    if value is not None and (key == "url" or "://" in value):  # endpointurl too
        check_url(value)
    doc, remotes = _edit(repo, local)
    if name not in repo.config.remotes:
        raise ConfigError(f"unknown remote {name!r}", hint="see 'moma remote list'")
    entry = dict(remotes.get(name) or {})
    if value is None:
        entry.pop(key, None)
    else:
        entry[key] = value
    remotes[name] = entry
    config_mod.write_layer(repo.root, doc, local)


def remove(repo: Repo, name: str, *, local: bool = False) -> None:
    doc, remotes = _edit(repo, local)
    if name not in remotes:
        where = config_mod.LOCAL_CONFIG_FILE if local else config_mod.CONFIG_FILE
        raise ConfigError(f"remote {name!r} is not defined in {where}")
    del remotes[name]
    core = doc.get("core") or {}
    if core.get("remote") == name:
        core.pop("remote")
    config_mod.write_layer(repo.root, doc, local)


def set_default(repo: Repo, name: str | None, *, local: bool = False) -> None:
    if name is not None and name not in repo.config.remotes:
        raise ConfigError(f"unknown remote {name!r}", hint="see 'moma remote list'")
    doc = config_mod.read_layer(repo.root, local)
    core = dict(doc.get("core") or {})
    if name is None:
        core.pop("remote", None)
    else:
        core["remote"] = name
    doc["core"] = core
    config_mod.write_layer(repo.root, doc, local)


def listing(repo: Repo) -> list[RemoteInfo]:
    default = repo.config.default_remote
    return [RemoteInfo(r.name, redact_url(r.url), r.name == default,
                       {k: "****" if k in LOCAL_CREDENTIALS else v
                        for k, v in r.options.items()})
            for r in sorted(repo.config.remotes.values(), key=lambda r: r.name)]
