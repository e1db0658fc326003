"""Which of a model's primary and canary answers a request.

With a request key (the `X-Request-Key` header, else the body's `request_key`), the choice is
a hash of the model name and the key, so one key always gets the same answer: on every
replica, after a restart, and when the percentage grows (a key's place does not move, so
raising it only moves keys onto the canary). Without a key, a draw from a generator seeded
once per process.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from moma_cli.services.serving.slots import RequestError, Role, Target
from moma_cli.services.serving.source import LoadedModel

KEY_HEADER = "x-request-key"
KEY_FIELD = "request_key"


def request_key(payload: Any, header: str | None) -> str | None:
    """The key a request is split by, if the client sent one."""
    if header:
        return header
    key = payload.get(KEY_FIELD) if isinstance(payload, dict) else None
    if key is None:
        return None
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise RequestError(400, f"'{KEY_FIELD}' must be a string or an integer")
    return str(key)


def place(name: str, key: str) -> float:
    """Where `key` falls in [0, 1) for model `name`: 53 bits of a SHA-256, like random()."""
    digest = hashlib.sha256(f"{name}\0{key}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / (1 << 53)


class Splitter:
    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)  # None: seeded from os.urandom, once

    def choose(self, target: Target, key: str | None) -> tuple[LoadedModel, Role]:
        if target.canary is None:
            return target.model, target.role
        draw = self._random.random() if key is None else place(target.model.resolved.name, key)
        if draw < target.percent / 100:
            return target.canary, "canary"
        return target.model, target.role
