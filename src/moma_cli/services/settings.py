"""`moma config`: read and edit one key of `.moma.yaml` or `.moma.local.yaml`.

An edit changes the entry's own line (or adds lines for a new one) and keeps every other
line, comments included; the edited file must parse to exactly the document meant, and the
configuration both files then make must load (the same checks as every command's start),
or nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moma_cli import config as config_mod
from moma_cli import config_keys, yamlio
from moma_cli.core.stages import parse_stages
from moma_cli.credentials import SECRET_OPTIONS, is_secret_key
from moma_cli.errors import ConfigError, MomaError

REDACTED = "****"


@dataclass
class Setting:
    key: str
    value: Any  # a credential's value is REDACTED
    file: str  # the layer it comes from

    @property
    def text(self) -> str:
        """The value as a line of YAML, as `moma config KEY` prints it."""
        return self.value if isinstance(self.value, str) else yamlio.flow(self.value)


def _file(local: bool) -> str:
    return config_mod.LOCAL_CONFIG_FILE if local else config_mod.CONFIG_FILE


def get(root: Path, key: str, *, local: bool = False) -> Setting:
    """The value of `key`: the local layer's when set there (or with `local`, only it)."""
    keys, kind = config_keys.setting_key(key)
    for layer in ((True,) if local else (True, False)):
        found = _lookup(config_mod.read_layer(root, layer), keys)
        if found is not _MISSING:
            return Setting(key, _shown(keys, kind, found), _file(layer))
    raise ConfigError(f"{key} is not set" + (f" in {_file(True)}" if local else ""),
                      hint=f"set it with 'moma config {'--local ' if local else ''}{key} VALUE'")


def set_(root: Path, key: str, text: str, *, local: bool = False) -> Setting:
    keys, kind = config_keys.setting_key(key)
    if not local and (kind == "secret" or is_secret_key(keys[-1])):
        raise ConfigError(f"{key}: a credential must not be written to the committed "
                          f"{config_mod.CONFIG_FILE}",
                          hint=f"write it to the git-ignored {config_mod.LOCAL_CONFIG_FILE}: "
                               f"moma config --local {key} VALUE")
    value = config_keys.setting_value(key, kind, text)
    doc = config_mod.read_layer(root, local)
    wanted = _with(doc, keys, value)
    edited = yamlio.set_in_text(config_mod.read_layer_text(root, local), keys, value)
    _save(root, key, local, wanted, edited)
    return Setting(key, _shown(keys, kind, value), _file(local))


def unset(root: Path, key: str, *, local: bool = False) -> Setting:
    keys, kind = config_keys.setting_key(key)
    doc = config_mod.read_layer(root, local)
    old = _lookup(doc, keys)
    if old is _MISSING:
        raise ConfigError(f"{key} is not set in {_file(local)}",
                          hint="see 'moma config --list'" if local else
                          f"see 'moma config --list'; a machine's own value: --local --unset {key}")
    wanted = _without(doc, keys)
    edited = yamlio.unset_in_text(config_mod.read_layer_text(root, local), keys)
    _save(root, key, local, wanted, edited)
    return Setting(key, _shown(keys, kind, old), _file(local))


def listing(root: Path) -> list[Setting]:
    """Every value set in either file, as KEY: the local layer's over the committed one's."""
    shown: dict[str, Setting] = {}
    for layer in (False, True):
        for keys, value in _leaves(config_mod.read_layer(root, layer), ()):
            key = ".".join(keys)
            secret = any(is_secret_key(k) or str(k) in SECRET_OPTIONS
                         for k in keys)
            shown[key] = Setting(key, REDACTED if secret else value, _file(layer))
    return sorted(shown.values(), key=lambda s: s.key)


def _save(root: Path, key: str, local: bool, wanted: dict[str, Any], edited: str) -> None:
    if _parsed(edited) != wanted:
        # An entry yamlio's line edit does not reach (a flow-style `{...}` parent, say):
        # the document is written whole, which drops that file's comments.
        edited = yamlio.dumps(wanted) if wanted else ""
    committed = wanted if not local else config_mod.read_layer(root)
    other = wanted if local else config_mod.read_layer(root, local=True)
    try:
        config_mod.from_layers(root, committed, other)
        parse_stages(committed.get("stages"))
    except MomaError as exc:
        message = exc.message if key in exc.message else f"{key}: {exc.message}"
        raise ConfigError(message, hint=exc.hint or f"nothing was written to {_file(local)}") \
            from None
    config_mod.write_layer_text(root, edited, local)


def _parsed(text: str) -> Any:
    try:
        return yamlio.loads(text, "edited") or {}
    except yamlio.YamlError:
        return None


_MISSING = object()


def _lookup(doc: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(doc, Mapping) or key not in doc:
            return _MISSING
        doc = doc[key]
    return doc


def _with(doc: Mapping[str, Any], keys: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = dict(doc)
    head = out.get(keys[0])
    if len(keys) == 1:
        out[keys[0]] = value
    else:
        out[keys[0]] = _with(head if isinstance(head, Mapping) else {}, keys[1:], value)
    return out


def _without(doc: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = dict(doc)
    if len(keys) == 1:
        out.pop(keys[0], None)
        return out
    inner = _without(out[keys[0]], keys[1:])
    if inner:
        out[keys[0]] = inner
    else:
        out.pop(keys[0])
    return out


def _leaves(doc: Any, keys: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(doc, Mapping) and doc:
        for key, value in doc.items():
            yield from _leaves(value, (*keys, str(key)))
    elif keys:
        yield keys, doc


def _shown(keys: tuple[str, ...], kind: str, value: Any) -> Any:
    return REDACTED if kind == "secret" or is_secret_key(keys[-1]) else value
