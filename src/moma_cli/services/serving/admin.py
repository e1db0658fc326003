"""Who may call the admin routes (`POST /v1/admin/reload`).

Bound to loopback, only processes on the machine can connect, and the route stays open. Bound
anywhere else, anyone who can reach the port could make the server re-resolve and reload
models, so the route needs `Authorization: Bearer <token>` with the token from the server's
environment, or it is off. Never from a config file: `.moma.yaml` is committed and readable by
everyone who can clone (config.py refuses token keys in it), and moma reads no token from
`.moma.local.yaml` either.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from moma_cli.services.serving.slots import RequestError

TOKEN_ENV = "MOMA_SERVE_ADMIN_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


@dataclass(frozen=True)
class AdminAccess:
    mode: Literal["open", "token", "off"]
    token: bytes = field(default=b"", repr=False)

    @classmethod
    def for_host(cls, host: str, environ: Mapping[str, str]) -> AdminAccess:
        if is_loopback(host):
            return cls("open")
        token = environ.get(TOKEN_ENV, "")
        # fsencode: the bytes the variable holds, whatever their encoding
        return cls("token", os.fsencode(token)) if token else cls("off")

    def check(self, authorization: str | None) -> None:
        """Raise the RequestError to answer unless the request may go ahead."""
        if self.mode == "open":
            return
        if self.mode == "off":
            raise RequestError(403, "the admin routes are off: the server listens beyond "
                                    f"loopback and {TOKEN_ENV} is not set",
                               hint=f"restart it with {TOKEN_ENV} in its environment")
        scheme, _, given = (authorization or "").partition(" ")
        # Header values arrive decoded as latin-1: encoding back gives the bytes sent.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode("latin-1"), self.token):
            raise RequestError(401, "admin routes need 'Authorization: Bearer <token>' with "
                                    f"the server's {TOKEN_ENV}")
