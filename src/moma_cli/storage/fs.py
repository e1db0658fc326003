"""Where a remote lives: a local directory or an fsspec filesystem (s3fs for `s3://`).

The only module that imports fsspec, s3fs or botocore, and only inside functions, so that
commands which never touch a remote never pay for them. Everything that can go wrong with
a remote as a whole (unknown protocol, missing backend, unreachable endpoint, refused
credentials, missing bucket) becomes one RemoteError naming the remote, with secrets
redacted; a missing single object stays a FileNotFoundError for the caller to name.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moma_cli.config import RemoteConfig
from moma_cli.credentials import redact
from moma_cli.errors import RemoteError

# Bounded waits: a closed port or a dead endpoint must fail within seconds, not minutes.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60
BOTO_ATTEMPTS = 2  # botocore attempts per request (standard mode: backoff below 1 s)
S3FS_RETRIES = 2  # s3fs's own retry loop on top of botocore's
_BACKENDS = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs",
             "ssh": "paramiko", "sftp": "paramiko", "http": "aiohttp", "https": "aiohttp"}
_URL_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")


@dataclass(frozen=True)
class Location:
    """A remote resolved to a root path on a filesystem (`fs` is None for a local directory)."""

    name: str
    url: str  # redacted, for messages
    protocol: str  # "local", "s3", or another fsspec protocol
    root: str  # local: absolute directory; otherwise the path without the protocol
    fs: Any = None

    @property
    def is_local(self) -> bool:
        return self.fs is None

    def describe(self) -> str:
        return f"remote '{self.name}' ({self.url})"

    @contextlib.contextmanager
    def translate(self) -> Iterator[None]:
        """Turn remote-wide failures into RemoteError; leave FileNotFoundError to the caller."""
        try:
            yield
        except (RemoteError, FileNotFoundError):
            raise
        except PermissionError as exc:
            raise RemoteError(
                f"access denied by {self.describe()}: {redact(str(exc))}",
                hint="check the credentials in the environment (AWS_ACCESS_KEY_ID, ...) or the "
                "profile ('moma remote modify NAME profile PROFILE')",
            ) from None
        except Exception as exc:
            if _is_unreachable(exc):
                raise RemoteError(
                    f"cannot reach {self.describe()}: {redact(str(exc))}",
                    hint="check the network and the endpoint "
                    "('moma remote modify NAME endpointurl URL'), then run the command again",
                ) from None
            if "BotoCoreError" in {cls.__name__ for cls in type(exc).__mro__}:
                raise RemoteError(f"{self.describe()} failed: {redact(str(exc))}",
                                  hint="check the remote's options with 'moma remote list'",
                                  ) from None
            raise


def _is_unreachable(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                "ConnectionClosedError", "ClientConnectorError", "ServerTimeoutError",
                "FSTimeoutError", "TimeoutError", "ConnectionError"}:
        return True
    return isinstance(exc, OSError) and exc.errno in (
        errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT)


def open_location(remote: RemoteConfig, repo_root: Path) -> Location:
    """Resolve a remote's URL and options into a Location (no network traffic yet)."""
    url = remote.url
    match = _URL_RE.match(url)
    shown = redact(url)
    if match is None or match.group(1).lower() == "file":
        path = match.group(2) if match else url
        root = Path(os.path.expanduser(path))
        root = root if root.is_absolute() else repo_root / root
        return Location(remote.name, shown, "local", os.path.abspath(root))
    protocol = match.group(1).lower()
    fs = _s3_fs(remote) if protocol in ("s3", "s3a") else _fsspec_fs(remote, protocol)
    return Location(remote.name, shown, protocol, match.group(2).rstrip("/"), fs)


def _missing_backend(remote: RemoteConfig, protocol: str, package: str) -> RemoteError:
    return RemoteError(
        f"remote '{remote.name}' needs the '{package}' package for {protocol}:// URLs",
        hint=f"install it into moma's environment: pip install {package}",
    )


def _s3_fs(remote: RemoteConfig) -> Any:
    try:
        import s3fs
    except ImportError:
        raise _missing_backend(remote, "s3", "s3fs") from None
    opts = remote.options
    client: dict[str, Any] = {}
    if opts.get("endpointurl"):
        client["endpoint_url"] = str(opts["endpointurl"])
    if opts.get("region"):
        client["region_name"] = str(opts["region"])
    if "verify_ssl" in opts:
        client["verify"] = str(opts["verify_ssl"]).lower() not in ("false", "0", "no")
    kwargs: dict[str, Any] = {
        "skip_instance_cache": True,
        # Listings must be fresh: we ask which objects exist right before transferring.
        "use_listings_cache": False,
        "client_kwargs": client,
        "config_kwargs": {
            "connect_timeout": CONNECT_TIMEOUT,
            "read_timeout": READ_TIMEOUT,
            "retries": {"max_attempts": BOTO_ATTEMPTS, "mode": "standard"},
            "max_pool_connections": 64,
        },
    }
    if opts.get("profile"):
        kwargs["profile"] = str(opts["profile"])
    fs = s3fs.S3FileSystem(**kwargs)
    fs.retries = S3FS_RETRIES
    _quiet_abandoned_requests()
    return fs


@functools.cache
def _quiet_abandoned_requests() -> None:
    """A remote that goes away mid-transfer is reported once, as a RemoteError; the aiohttp
    requests in flight then die with their connections, and asyncio would print each one's
    traceback at exit ("Task exception was never retrieved"), after moma's own error line.
    Only those are dropped: any other error of fsspec's event loop is still printed."""
    import fsspec.asyn

    def handler(loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not (exc is not None and _is_unreachable(exc)
                and str(context.get("message", "")).startswith("Task exception was never")):
            loop.default_exception_handler(context)

    fsspec.asyn.get_loop().set_exception_handler(handler)


def _fsspec_fs(remote: RemoteConfig, protocol: str) -> Any:
    try:
        import fsspec
    except ImportError:
        raise _missing_backend(remote, protocol, "fsspec") from None
    try:
        return fsspec.filesystem(protocol, skip_instance_cache=True)
    except ValueError:
        raise RemoteError(f"remote '{remote.name}': unknown protocol '{protocol}://'",
                          hint="use s3://bucket/prefix, a local path, or an fsspec URL") from None
    except ImportError:
        package = _BACKENDS.get(protocol, f"the fsspec backend for {protocol}")
        raise _missing_backend(remote, protocol, package) from None


def check_reachable(location: Location, *, create: bool) -> None:
    """Fail early, with a clear message, when the remote as a whole is not usable.

    A local directory is created on push (`create`); an S3 bucket never is: a typo in
    a bucket name must not quietly create a new bucket somewhere.
    """
    if location.is_local:
        if os.path.isdir(location.root):
            return
        if create:
            os.makedirs(location.root, exist_ok=True)
            return
        raise RemoteError(f"{location.describe()}: directory does not exist",
                          hint="check the path with 'moma remote list'")
    if location.protocol not in ("s3", "s3a"):
        return
    bucket = location.root.split("/", 1)[0]
    with location.translate():
        try:
            location.fs.call_s3("head_bucket", Bucket=bucket)
        except FileNotFoundError:
            raise RemoteError(
                f"bucket '{bucket}' of {location.describe()} does not exist",
                hint="create the bucket with your storage provider's tools (moma never "
                "creates buckets), or fix the URL with 'moma remote modify NAME url URL'",
            ) from None
