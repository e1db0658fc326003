"""The keys `moma config` reads and edits (`SETTINGS`: those .moma.example.yaml documents)
and how a value typed on the command line becomes the value a key holds. Loading the
configuration is config.py's job; this module only names and checks single keys.
"""

from __future__ import annotations

from typing import Any

from moma_cli import yamlio
from moma_cli.credentials import LOCAL_CREDENTIALS
from moma_cli.errors import ConfigError

# `moma config` keys: those .moma.example.yaml documents. '*' is a name the user chose (a
# remote, a model, a stage; it may hold dots). Kinds: str, int, bool, list (a YAML flow
# list or comma-separated), items (a YAML flow list or one item: the items hold commas),
# secret (a str that only the git-ignored .moma.local.yaml may hold).
SETTINGS: dict[str, str] = {
    "core.hash": "str", "core.remote": "str", "core.jobs": "int",
    "cache.dir": "str", "cache.type": "str",
    **{f"remotes.*.{opt}": "str" for opt in ("url", "endpointurl", "region", "profile")},
    "remotes.*.jobs": "int", "remotes.*.verify_ssl": "bool",
    **{f"remotes.*.{opt}": "secret" for opt in LOCAL_CREDENTIALS},
    "models.*.checks": "items", "models.*.retrain.every": "str",
    "models.*.retrain.stage": "str",
    "alerts.webhook": "str",
    "registry.stages": "list",
    "stages.*.cmd": "str", "stages.*.deps": "list", "stages.*.outs": "list",
    "stages.*.params": "items", "stages.*.metrics": "list",
}


def setting_key(key: str) -> tuple[tuple[str, ...], str]:
    """`key` (e.g. remotes.s3.eu.url) as its path of mapping keys and its kind."""
    for pattern, kind in SETTINGS.items():
        head, star, tail = pattern.partition("*")
        if not star:
            if key == pattern:
                return tuple(key.split(".")), kind
            continue
        name = key[len(head):len(key) - len(tail)]
        if key.startswith(head) and key.endswith(tail) and len(key) > len(pattern) - 1 \
                and name.strip():
            return (*head.rstrip(".").split("."), name, *tail.lstrip(".").split(".")), kind
    raise ConfigError(f"unknown configuration key {key!r}",
                      hint="keys: " + ", ".join(k.replace("*", "NAME") for k in SETTINGS))


def setting_value(key: str, kind: str, text: str) -> Any:
    """The command line's `text` as the value `key` holds: one-line error naming the key."""
    if kind == "int":
        if not (text.isascii() and text.isdigit()):
            raise ConfigError(f"{key}: expected a whole number, got {text!r}",
                              hint=f"e.g. moma config {key} 4")
        return int(text)
    if kind == "bool":
        lowered = text.lower()
        if lowered not in ("true", "false", "yes", "no", "1", "0"):
            raise ConfigError(f"{key}: expected true or false, got {text!r}",
                              hint=f"e.g. moma config {key} true")
        return lowered in ("true", "yes", "1")
    if kind in ("list", "items"):
        if text.lstrip().startswith("["):
            try:
                items = yamlio.loads(text, key)
            except yamlio.YamlError as exc:
                raise ConfigError(exc.message, hint="write a list as [a, b, c]") from None
            if not isinstance(items, list) or any(isinstance(i, (dict, list)) for i in items):
                raise ConfigError(f"{key}: expected a list of values like [a, b, c]",
                                  hint=f"e.g. moma config {key} \"[a, b]\"")
            return items
        parts = text.split(",") if kind == "list" else [text]
        return [p.strip() for p in parts if p.strip()]
    if not text.strip():
        raise ConfigError(f"{key}: the value is empty", hint=f"to remove it: moma config "
                          f"--unset {key}")
    return text
