"""`.dvc/config`, read strictly (it arrives with a clone): the default remote and each
`['remote "NAME"']` section, in configobj's INI dialect as DVC writes it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from moma_cli.core.dvc import DvcError

_SECTION = re.compile(r"\[\s*(?:'([^']*)'|\"([^\"]*)\"|([^\]'\"]*))\s*\]")
_REMOTE = re.compile(r'remote\s+"([^"]+)"')
_OPTION = re.compile(r"([A-Za-z0-9_.-]+)\s*=\s*(.*)")
# Options whose values are credentials, besides what credentials.is_secret_key recognises.
DVC_SECRETS = frozenset({"access_key_id", "secret_access_key", "session_token", "password",
                         "gdrive_client_secret", "sas_token", "account_key",
                         "connection_string", "client_secret", "key", "passphrase"})


@dataclass(frozen=True)
class DvcRemote:
    name: str
    options: dict[str, str]  # url included

    @property
    def url(self) -> str | None:
        return self.options.get("url")


@dataclass
class DvcConfig:
    default_remote: str | None = None
    remotes: dict[str, DvcRemote] = field(default_factory=dict)


def parse_config(text: str, source: str = ".dvc/config") -> DvcConfig:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = _SECTION.fullmatch(line)
        if header:
            name = next(g for g in header.groups() if g is not None).strip()
            if name in sections:
                raise DvcError(f"{source}:{number}: section [{name}] appears twice")
            current = sections[name] = {}
            continue
        option = _OPTION.fullmatch(line)
        if option is None or current is None:
            raise DvcError(f"{source}:{number}: not a section header or 'key = value'")
        key = option[1].lower()
        if key in current:
            raise DvcError(f"{source}:{number}: '{key}' is set twice")
        current[key] = _unquote(option[2].strip())
    config = DvcConfig(default_remote=sections.get("core", {}).get("remote") or None)
    for name, options in sections.items():
        remote = _REMOTE.fullmatch(name)
        if remote:
            config.remotes[remote[1]] = DvcRemote(remote[1], options)
    return config


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
