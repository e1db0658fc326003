"""Repository configuration: `.moma.yaml` (committed), `.moma.local.yaml` (git-ignored),
`MOMA_*` environment variables, in increasing precedence; command-line flags win over all
and are applied by the services that take them.

Loading returns a frozen `Config`; editing (`moma remote ...`) goes through
`read_layer` / `write_layer`, which touch exactly one file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moma_cli import yamlio
from moma_cli.credentials import (
    CREDENTIALS_IN_URL,
    LOCAL_CREDENTIALS,
    SECRET_OPTIONS,
    is_secret_key,
    redact_url,
)
from moma_cli.errors import ConfigError

if TYPE_CHECKING:
    from moma_cli.core.checks import ModelPolicy

CONFIG_FILE = ".moma.yaml"
LOCAL_CONFIG_FILE = ".moma.local.yaml"
LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
REMOTE_OPTIONS = ("url", "endpointurl", "region", "profile", "jobs", "verify_ssl")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class RemoteConfig:
    name: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def jobs(self) -> int | None:
        value = self.options.get("jobs")
        return int(value) if value is not None else None


@dataclass(frozen=True)
class Config:
    root: Path
    hash_algo: str = "blake3"
    jobs: int = 0  # 0: sized to the machine at use
    default_remote: str | None = None
    cache_dir: Path = Path(".moma/cache")
    # Set in .moma.local.yaml or MOMA_CACHE_DIR: chosen on this machine, so it may be
    # anywhere. Otherwise (committed or default) it must resolve inside the repository.
    cache_is_local: bool = False
    link_types: tuple[str, ...] = ("reflink", "copy")
    remotes: Mapping[str, RemoteConfig] = field(default_factory=dict)
    models: Mapping[str, ModelPolicy] = field(default_factory=dict)  # quality gates, retraining
    alert_webhook: str | None = None
    stages: tuple[str, ...] = ()  # registry.stages: the only stages models:tag assigns; () any
    raw: Mapping[str, Any] = field(default_factory=dict)  # merged document, for later sections

    def remote(self, name: str | None = None) -> RemoteConfig:
        chosen = name or self.default_remote
        if chosen is None:
            raise ConfigError(
                "no remote given and no default remote set",
                hint="run 'moma remote add NAME URL --default' or pass -r NAME",
            )
        if chosen not in self.remotes:
            known = ", ".join(sorted(self.remotes)) or "none"
            raise ConfigError(f"unknown remote {chosen!r} (known: {known})",
                              hint="see 'moma remote list'")
        return self.remotes[chosen]

    def section(self, name: str) -> Any:
        return self.raw.get(name)


def check_name(name: str, what: str = "name") -> str:
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(
            f"invalid {what} {name!r}",
            hint="use letters, digits, '_', '.', '-' (start with a letter or digit, max 64)",
        )
    return name


def _refuse_secrets(doc: Any, where: str) -> None:
    """A committed config is public to everyone who can clone: refuse any credential in it."""
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            here = f"{where}.{key}" if where else str(key)
            if is_secret_key(key):
                raise ConfigError(
                    f"{CONFIG_FILE}: '{here}' looks like a credential; secrets must not be "
                    "stored in a committed file",
                    hint="remove it and set it in the environment, an AWS profile, "
                    f"or the git-ignored {LOCAL_CONFIG_FILE}",
                )
            _refuse_secrets(value, here)
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            _refuse_secrets(item, f"{where}[{i}]")


def _refuse_outside_cache(doc: Mapping[str, Any], root: Path) -> None:
    """A cloned .moma.yaml must not make moma write outside the repository: a shared cache
    is machine-specific anyway, so it belongs in .moma.local.yaml or MOMA_CACHE_DIR.

    Resolved through every symlink: `cache.dir: cachelink`, a committed symlink to a
    directory outside, passed a check of the text alone and `pull` wrote objects there.
    """
    from moma_cli.atomic import resolves_inside

    cache = doc.get("cache")
    value = cache.get("dir") if isinstance(cache, Mapping) else None
    if value is None:
        return
    text = str(value)
    if text.startswith(("/", "~")) or ".." in text.replace("\\", "/").split("/"):
        raise ConfigError(
            f"{CONFIG_FILE}: cache.dir {text!r} is outside the repository",
            hint=f"set a shared cache in {LOCAL_CONFIG_FILE} or MOMA_CACHE_DIR instead",
        )
    if not resolves_inside(root / text, root):
        raise ConfigError(
            f"{CONFIG_FILE}: cache.dir {text!r} resolves outside the repository (a symlink "
            f"leads to {os.path.realpath(root / text)})",
            hint=f"remove the symlink; set a shared cache in {LOCAL_CONFIG_FILE} or "
            "MOMA_CACHE_DIR instead",
        )


def read_layer(root: Path, local: bool = False) -> dict[str, Any]:
    from moma_cli.atomic import resolves_inside

    path = root / (LOCAL_CONFIG_FILE if local else CONFIG_FILE)
    if not path.exists():
        return {}
    if not resolves_inside(path, root):
        raise ConfigError(f"{path.name}: is a symlink leading outside the repository",
                          hint=f"replace it with a regular file: 'rm {path.name}'")
    try:
        doc = yamlio.load_file(path, path.name)
    except yamlio.YamlError as exc:
        raise ConfigError(exc.message, hint=f"fix {path.name} by hand") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path.name}: top level must be a mapping")
    return doc


def write_layer(root: Path, doc: Mapping[str, Any], local: bool = False) -> None:
    write_layer_text(root, yamlio.dumps(dict(doc)), local)


def write_layer_text(root: Path, text: str, local: bool = False) -> None:
    """The layer as `text`, written as given (an edit that kept the user's comments)."""
    from moma_cli.atomic import atomic_write_bytes

    path = root / (LOCAL_CONFIG_FILE if local else CONFIG_FILE)
    # The local layer may hold S3 credentials: readable by this user only.
    atomic_write_bytes(path, text.encode(), 0o600 if local else 0o644)


def read_layer_text(root: Path, local: bool = False) -> str:
    """The layer's text, checked by `read_layer` first ("" when there is no file)."""
    read_layer(root, local)
    path = root / (LOCAL_CONFIG_FILE if local else CONFIG_FILE)
    return path.read_text(encoding="utf-8") if path.exists() else ""


def load(root: Path, environ: Mapping[str, str] | None = None) -> Config:
    return from_layers(root, read_layer(root), read_layer(root, local=True), environ)


def from_layers(root: Path, committed: dict[str, Any], local: dict[str, Any],
                environ: Mapping[str, str] | None = None) -> Config:
    """The configuration these two documents (`.moma.yaml`, `.moma.local.yaml`) make."""
    env = os.environ if environ is None else environ
    _refuse_secrets(committed, "")
    _refuse_outside_cache(committed, root)
    local_cache = local.get("cache")
    cache_is_local = bool(env.get("MOMA_CACHE_DIR")) or (
        isinstance(local_cache, Mapping) and local_cache.get("dir") is not None)
    merged = _merge(committed, local)
    _apply_env(merged, env)
    return _build(root, merged, cache_is_local)


def source_config(root: Path, text: str | None, cache_dir: Path) -> Config:
    """Another repository's `.moma.yaml` (`text`, read from git) as `moma get / import`
    use it: its hash algorithm and remotes only, with this machine's `cache_dir`. Nothing
    else it says is honoured (its cache.dir, link types, MOMA_* variables): a source must
    never choose where moma writes. A relative local remote would resolve inside the
    clone moma made, not where its authors meant: refused."""
    try:
        doc = (yamlio.loads(text, f"source {CONFIG_FILE}") if text else None) or {}
    except yamlio.YamlError as exc:
        raise ConfigError(exc.message, hint="ask the source's authors to fix it") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(f"source {CONFIG_FILE}: top level must be a mapping")
    _refuse_secrets(doc, "")
    core = _mapping(doc, "core")
    kept = {"core": {k: core[k] for k in ("hash", "remote") if k in core},
            "remotes": _mapping(doc, "remotes")}
    config = _build(root, kept, cache_is_local=True)
    for remote in config.remotes.values():
        if "://" not in remote.url and not os.path.isabs(os.path.expanduser(remote.url)):
            raise ConfigError(f"source {CONFIG_FILE}: remote {remote.name!r} is the relative "
                              f"path {remote.url!r}, which only means something in that "
                              "repository's own work tree",
                              hint="its authors can give the remote an absolute path or URL")
    return replace(config, cache_dir=cache_dir)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


_ENV_KEYS = {
    "MOMA_REMOTE": ("core", "remote"),
    "MOMA_JOBS": ("core", "jobs"),
    "MOMA_HASH": ("core", "hash"),
    "MOMA_CACHE_DIR": ("cache", "dir"),
    "MOMA_CACHE_TYPE": ("cache", "type"),
}
_ENV_REMOTE_RE = re.compile(r"MOMA_REMOTE_([A-Z0-9_]+)__([A-Z_]+)")


def _apply_env(doc: dict[str, Any], env: Mapping[str, str]) -> None:
    # A section that is not a mapping is left as it is, for _build to refuse by name.
    for var, (section, key) in _ENV_KEYS.items():
        current = doc.get(section) or {}
        if env.get(var) and isinstance(current, Mapping):
            doc[section] = {**current, key: env[var]}
    # MOMA_REMOTE_<NAME>__<OPTION>, e.g. MOMA_REMOTE_STORAGE__ENDPOINTURL
    remotes = doc.get("remotes") or {}
    for var, value in env.items():
        match = _ENV_REMOTE_RE.fullmatch(var)
        if not match or not isinstance(remotes, dict):
            continue
        wanted = match.group(1).lower().replace("_", "-")
        for name in list(remotes):
            if str(name).lower().replace("_", "-") == wanted \
                    and isinstance(remotes[name], Mapping):
                remotes[name] = {**remotes[name], match.group(2).lower(): value}


def _build(root: Path, doc: Mapping[str, Any], cache_is_local: bool = False) -> Config:
    core = _mapping(doc, "core")
    cache = _mapping(doc, "cache")
    from moma_cli.core import checks, refs
    from moma_cli.core.hashing import ALGORITHMS

    algo = str(core.get("hash", "blake3"))
    if algo not in ALGORITHMS:
        raise ConfigError(f"core.hash: unknown algorithm {algo!r} (use {', '.join(ALGORITHMS)})")
    jobs = _jobs(core.get("jobs", 0), "core.jobs")
    link_types = _link_types(cache.get("type", "reflink,copy"))
    cache_dir = Path(os.path.expanduser(str(cache.get("dir", ".moma/cache"))))
    remotes = {}
    for name, opts in _mapping(doc, "remotes").items():
        remotes[str(name)] = _remote(str(name), opts)
    default = core.get("remote")
    if default is not None and (not isinstance(default, str) or default not in remotes):
        raise ConfigError(f"core.remote: default remote {default!r} is not defined under remotes")
    return Config(
        root=root,
        hash_algo=algo,
        jobs=jobs,
        default_remote=default,
        cache_dir=cache_dir if cache_dir.is_absolute() else root / cache_dir,
        cache_is_local=cache_is_local,
        link_types=link_types,
        remotes=remotes,
        models=checks.parse_models(doc.get("models")),
        alert_webhook=checks.parse_webhook(doc.get("alerts")),
        stages=refs.parse_stages(doc.get("registry")),
        raw=doc,
    )


def _jobs(value: Any, where: str) -> int:
    """A thread count: an int (not true, not 2.5), or digits from a MOMA_* variable."""
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value)
    if type(value) is not int or value < 0:
        raise ConfigError(f"{where}: expected 0 (auto) or a positive integer, got {value!r}")
    return value


def _mapping(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"'{key}' in {CONFIG_FILE} must be a mapping")
    return value


def _link_types(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value).split(",")
    types = tuple(str(t).strip() for t in items if str(t).strip())
    unknown = [t for t in types if t not in LINK_TYPES]
    if unknown or not types:
        raise ConfigError(
            f"cache.type: unknown link type {', '.join(unknown) or '(empty)'}",
            hint=f"choose from {', '.join(LINK_TYPES)}, in order of preference",
        )
    return types


def _remote(name: str, opts: Any) -> RemoteConfig:
    check_name(name, "remote name")
    if not isinstance(opts, Mapping) or not opts.get("url") or not isinstance(opts["url"], str):
        raise ConfigError(f"remotes.{name}: needs a 'url'")
    if opts.get("jobs") is not None:
        opts = {**opts, "jobs": _jobs(opts["jobs"], f"remotes.{name}.jobs")}
    # S3 credentials reach here only from .moma.local.yaml or the environment: a committed
    # file with them was refused whole by _refuse_secrets.
    secrets = [k for k in opts if str(k).lower() in SECRET_OPTIONS
               and str(k) not in LOCAL_CREDENTIALS]
    if secrets:
        raise ConfigError(
            f"remotes.{name}: '{secrets[0]}' must not be stored in a config file",
            hint="set credentials in the environment (AWS_ACCESS_KEY_ID, ...) or an AWS profile",
        )
    with_credentials = [k for k, v in opts.items() if CREDENTIALS_IN_URL.match(str(v))]
    if with_credentials:  # url, endpointurl, ... from either file or MOMA_REMOTE_* variables
        key = with_credentials[0]
        raise ConfigError(
            f"remotes.{name}.{key} {redact_url(str(opts[key]))!r} contains credentials",
            hint=f"remove them from the URL in {CONFIG_FILE} or {LOCAL_CONFIG_FILE} by hand and "
            "set them in the environment or an AWS profile",
        )
    return RemoteConfig(name, str(opts["url"]), {k: v for k, v in opts.items() if k != "url"})
