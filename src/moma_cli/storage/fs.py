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
import io
import os
import queue
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from moma_cli.config import RemoteConfig
from moma_cli.core.hashing import Hasher
from moma_cli.credentials import redact
from moma_cli.errors import RemoteError

T = TypeVar("T")

# Bounded waits: a closed port or a dead endpoint must fail within seconds, not minutes.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60
BOTO_ATTEMPTS = 2  # botocore attempts per request (standard mode: backoff below 1 s)
S3FS_RETRIES = 2  # s3fs's own retry loop on top of botocore's
_BACKENDS = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs",
             "ssh": "paramiko", "sftp": "paramiko", "http": "aiohttp", "https": "aiohttp"}
_URL_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")
# A large S3 object is read in ranged GETs of PART_SIZE, PARTS_IN_FLIGHT at once, each
# streamed to its place in the file in reads of _PART_READ: memory stays at about
# PARTS_IN_FLIGHT x _PART_READ whatever the size. One GET moves at one connection's speed
# (50 MB/s through bench/shaped_s3.py, 40 ms away): 256 MiB took 6.1-6.3 s in one stream
# (s3fs's get_file) and 1.2 s in 16 MiB parts, 16 at once (docs/performance.md).
PART_SIZE = 16 << 20
PARTS_IN_FLIGHT = 16
_PART_READ = 256 << 10
_HASH_READ = 4 << 20  # read back for the hash in pieces of this size
# An upload holds each of its parts in memory while it is sent (the HTTP stack held a copy
# too, before `upload_body`): 8 parts of 16 MiB peaked at 342 MiB of RSS pushing 1 GiB; 8
# of 8 MiB hold half that.
UPLOAD_PART_SIZE = 8 << 20
UPLOAD_PARTS_IN_FLIGHT = 8
_MAX_PARTS = 10_000  # S3's limits on the parts of one upload
_MIN_PART = 5 << 20


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


_DROPPED = {"ClientPayloadError", "ServerDisconnectedError", "IncompleteReadError",
            "ResponseStreamingError"}


def _is_dropped(exc: BaseException) -> bool:
    """A response cut short: the connection went away while its body was read."""
    return bool({cls.__name__ for cls in type(exc).__mro__} & _DROPPED)


def _is_unreachable(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                "ConnectionClosedError", "ClientConnectorError", "ServerTimeoutError",
                "FSTimeoutError", "TimeoutError", "ConnectionError", *_DROPPED}:
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
    # From .moma.local.yaml or MOMA_REMOTE_<NAME>__<OPTION> only (config refuses them in
    # the committed file); otherwise s3fs asks the AWS credential chain.
    for option, name in (("access_key_id", "key"), ("secret_access_key", "secret"),
                         ("session_token", "token")):
        if opts.get(option):
            kwargs[name] = str(opts[option])
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


def get_in_parts(location: Location, path: str, dests: Sequence[Path], size: int,
                 parts_in_flight: int = PARTS_IN_FLIGHT, hasher: Hasher | None = None) -> None:
    """Download the S3 object at `path` (`size` bytes) into each of the new files `dests`
    in parallel ranged GETs, every chunk written at its offset as it arrives.

    With a `hasher`, this thread feeds it the first file's bytes in order while the later
    parts are still arriving, read back from the page cache as each run of complete parts
    grows: hashing the whole file afterwards added 0.3-0.7 s to a 1 GiB pull. The caller
    compares the digest with the oid before using any of the files (cache.Batch.add_written):
    a part that is short, or whose bytes were damaged, leaves a first file that does not
    hash to the oid. The other files get the same chunks, each write checked whole. A part
    cut short by a dropped connection is read again, up to S3FS_RETRIES times; a missing
    object is a FileNotFoundError.
    """
    import asyncio

    fs = location.fs
    bucket, key, _ = fs.split_path(path)
    fds: list[int] = []
    # Offsets of the parts written whole, then None once every part has stopped.
    done: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    stop = threading.Event()  # the hashing failed: the parts give up at their next chunk

    async def part(start: int, end: int) -> None:
        for attempt in range(S3FS_RETRIES + 1):
            try:
                await _read_range(fs, bucket, key, start, end, fds, stop)
                done.put(start)
                return
            except Exception as exc:
                if not _is_dropped(exc) or attempt == S3FS_RETRIES:
                    raise

    async def every_part() -> None:
        try:
            await _all_or_nothing([functools.partial(part, start, min(start + PART_SIZE, size))
                                   for start in range(0, size, PART_SIZE)], parts_in_flight)
        finally:
            done.put(None)

    try:
        for i, dest in enumerate(dests):  # the first is read back for the hash
            flags = (os.O_RDWR if i == 0 else os.O_WRONLY) | os.O_CREAT | os.O_EXCL
            fds.append(os.open(dest, flags | os.O_CLOEXEC, 0o600))
        future = asyncio.run_coroutine_threadsafe(every_part(), fs.loop)
        ended = False
        try:
            if hasher is not None:
                ended = _hash_in_order(fds[0], size, done, hasher)
        except BaseException:
            stop.set()
            raise
        finally:
            while not ended:  # the files are closed only once no part writes to them
                ended = done.get() is None
        future.result()
    finally:
        for fd in fds:
            os.close(fd)


def _hash_in_order(fd: int, size: int, done: queue.SimpleQueue[int | None],
                   hasher: Hasher) -> bool:
    """Feed `hasher` the file's bytes from the start, as far as the parts written whole
    (their offsets arrive on `done`) reach. True once it has taken the end mark (None);
    False when the file ended early (its digest will not match)."""
    complete: set[int] = set()
    hashed = 0
    buf = bytearray(_HASH_READ)
    view = memoryview(buf)
    while (start := done.get()) is not None:
        complete.add(start)
        while hashed in complete and hashed < size:
            complete.discard(hashed)
            end = min(hashed + PART_SIZE, size)
            while hashed < end:
                n = os.preadv(fd, [view[:min(_HASH_READ, end - hashed)]], hashed)
                if n == 0:
                    return False
                hasher.update(view[:n])
                hashed += n
    return True


async def _read_range(fs: Any, bucket: str, key: str, start: int, end: int,
                      fds: Sequence[int], stop: threading.Event) -> None:
    """Write bytes [start, end) of the object at their offsets in each of `fds` (at most
    those, even from a server that ignores the range)."""
    response = await fs._call_s3("get_object", Bucket=bucket, Key=key,
                                 Range=f"bytes={start}-{end - 1}")
    body = response["Body"]
    try:
        offset = start
        while offset < end:
            chunk = await body.read(min(_PART_READ, end - offset))
            if not chunk:
                break  # short: the hash check of the whole file reports it
            if stop.is_set():
                raise OSError(errno.ECANCELED, "download stopped")
            for fd in fds:
                if os.pwrite(fd, chunk, offset) != len(chunk):
                    raise OSError(errno.EIO, f"short write at offset {offset}")
            offset += len(chunk)
    finally:
        body.close()


async def _all_or_nothing(steps: list[Callable[[], Awaitable[T]]], at_once: int) -> list[T]:
    """Run the steps, `at_once` at a time; the first failure cancels the others and is
    raised once they have stopped. Results in the order of the steps."""
    import asyncio

    gate = asyncio.Semaphore(max(1, at_once))

    async def gated(step: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await step()

    futures = [asyncio.ensure_future(gated(step)) for step in steps]
    try:
        for future in asyncio.as_completed(futures):
            await future
    finally:
        for future in futures:
            future.cancel()
        await asyncio.gather(*futures, return_exceptions=True)
    return [future.result() for future in futures]


def upload_body(size: int) -> io.BytesIO:
    """A body of `size` bytes to fill through `getbuffer()`, then upload (`put_body`, the
    parts of `put_in_parts`). aiohttp sends a BytesIO that owns its buffer in 64 KiB writes;
    any other body it copies whole while it is sent: bytes once (botocore wraps them in a
    BytesIO sharing them, which aiohttp's `getbuffer()` unshares), a bytearray two or three
    times (a slice, the join with the headers, what the socket has not taken yet). Pushing
    a million files through bench/shaped_s3.py (4 packs of 8 MiB in flight, then the
    listing's 8 parts) peaked at 379 MiB of RSS with those copies, 316-318 without."""
    # bytes(size) is zero pages until written, and the BytesIO holds its only reference,
    # so getbuffer() writes into it in place (a shared buffer would be copied first).
    return io.BytesIO(bytes(size))


def put_body(location: Location, path: str, body: io.BytesIO) -> None:
    """Store `body` whole as the S3 object at `path`, in one PUT (atomic). The length is
    declared: s3fs retries a failed request with the same body, positioned wherever the
    last attempt left it, and without a declared length the rest alone would be sent and
    stored under the object's name; a request shorter than its length never completes."""
    fs = location.fs
    bucket, key, _ = fs.split_path(path)
    length = body.seek(0, io.SEEK_END)
    body.seek(0)
    fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body, ContentLength=length)


def put_in_parts(location: Location, src: Path, path: str, size: int,
                 parts_in_flight: int = UPLOAD_PARTS_IN_FLIGHT) -> None:
    """Upload the local file `src` to the S3 object at `path` as a multipart upload whose
    parts are read from the file only when their turn comes, `parts_in_flight` at once.

    The object appears whole or not at all (S3 assembles it on completion); a failure aborts
    the upload, so no parts are left stored. s3fs's put_file reads ten 50 MiB parts into
    memory per round and waits for the slowest of each round: pushing 1 GiB peaked at
    1.07 GiB of RSS and took 58 s through bench/shaped_s3.py.
    """
    import fsspec.asyn

    fs = location.fs
    bucket, key, _ = fs.split_path(path)
    part_size = max(UPLOAD_PART_SIZE, _MIN_PART, -(-size // _MAX_PARTS))

    async def upload() -> None:
        upload_id = (await fs._call_s3("create_multipart_upload", Bucket=bucket,
                                       Key=key))["UploadId"]

        async def part(number: int, fd: int) -> dict[str, Any]:
            start = (number - 1) * part_size
            length = min(part_size, size - start)
            body = upload_body(length)
            with body.getbuffer() as view:
                if os.preadv(fd, [view], start) != length:
                    raise OSError(errno.EIO, f"short read at offset {start}: {src}")
            done = await fs._call_s3("upload_part", Bucket=bucket, Key=key, Body=body,
                                     ContentLength=length, UploadId=upload_id,
                                     PartNumber=number)
            return {"PartNumber": number, "ETag": done["ETag"]}

        try:
            with open(src, "rb", buffering=0) as fh:
                count = max(1, -(-size // part_size))
                parts = await _all_or_nothing(
                    [functools.partial(part, n, fh.fileno()) for n in range(1, count + 1)],
                    parts_in_flight)
            await fs._call_s3("complete_multipart_upload", Bucket=bucket, Key=key,
                              UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(Exception):
                await fs._call_s3("abort_multipart_upload", Bucket=bucket, Key=key,
                                  UploadId=upload_id)
            raise

    fsspec.asyn.sync(fs.loop, upload)
