"""A shaped S3 on loopback: moto behind a proxy adding latency and per-connection bandwidth.

moto on 127.0.0.1 answers in microseconds at memory speed, which flatters every client: the
number of requests and of connections hardly matters. Real S3 is 20-80 ms away and one TCP
connection carries tens of MB/s (dvc#5871). This module puts an asyncio TCP proxy in front of
moto's server that shapes every connection so:

Model (per accepted connection, each direction independently)
  * propagation delay: every chunk read from one side is written to the other RTT/2 after it
    arrived (a delay line: chunks keep their order and overlap, as bytes in flight on a wire do,
    so a request costs one RTT however it is chunked, and streaming is not slowed by it);
  * connection set-up: nothing the client sends is forwarded before one RTT after accept (TCP's
    SYN / SYN-ACK), so a client that opens a connection per request pays 2 RTT per request and
    one that keeps connections alive pays 1;
  * bandwidth: a token bucket per connection and direction (rate `mb_per_s`, burst 256 KiB)
    paces the writes, so one connection never carries more than the cap and N connections
    carry up to N times it: concurrency matters as against real S3. Chunks are at most 64 KiB
    so the pacing is smooth (5 ms per chunk at 50 MB/s).
  The server is moto under uvicorn (keep-alive, as S3; `serve_moto`), ranged GETs answered
  from the range only (`_ranged_reads`).
  Not modelled: TCP slow start and window limits (window/RTT), loss, DNS, TLS hand-shakes.
  Aggregate throughput is also bounded by moto (one Python process) and by this proxy (one
  event loop): measure it with `selfcheck -c N` and compare clients against the boto3 limit
  (bench/remote.py), which runs through the same stack.

API (for other benchmarks)
  with ShapedS3(rtt_ms=40, mb_per_s=50) as s3:   # moto + proxy as child processes
      s3.endpoint      # http://127.0.0.1:PORT, the shaped endpoint clients use
      s3.direct        # moto itself, unshaped (set-up and wiping)
      s3.create_bucket("name"); s3.wipe("name")
  start_moto(port) / start_proxy(upstream_port, port, rtt_ms, mb_per_s): the two processes.
  serve(...) is the proxy coroutine itself.

CLI
  python bench/shaped_s3.py moto --port 5599                # moto alone, keep-alive
  python bench/shaped_s3.py serve --upstream 5599 --port 5600 [--rtt-ms 40] [--mb-per-s 50]
  python bench/shaped_s3.py up [--port 5600]          # moto + proxy until Ctrl-C
  python bench/shaped_s3.py selfcheck [-c 1] [--mib 64]   # latency and throughput through it
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import socket
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

CHUNK = 256 * 1024
# A burst allowance of 1 MiB: on this loaded machine a 5 ms sleep often lasts 10-20 ms, and
# with a smaller bucket the time overslept was lost, capping uploads far below the rate.
BURST = 1024 * 1024
DEFAULT_RTT_MS = 40.0
DEFAULT_MB_PER_S = 50.0
# Bytes buffered per direction before the proxy stops reading the sender (back-pressure),
# above the bandwidth-delay product (50 MB/s x 20 ms = 1 MB) so the delay line never starves.
QUEUE_CHUNKS = 64

for _var, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                     ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ.setdefault(_var, _value)  # moto accepts any credentials


# -- the proxy ---------------------------------------------------------------------------------


class _Bucket:
    """Token bucket: `take(n)` returns how long to wait before n bytes may be written."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = float(BURST)
        self.stamp = time.monotonic()

    def take(self, n: int) -> float:
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float,
                rate: float, not_before: float) -> None:
    """Copy reader to writer through a delay line of `delay` seconds paced at `rate` B/s."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

    async def receive() -> None:
        try:
            while chunk := await reader.read(CHUNK):
                await queue.put((time.monotonic(), chunk))
        except OSError:
            pass
        finally:
            await queue.put((0.0, b""))

    async def send() -> None:
        bucket = _Bucket(rate)
        while True:
            arrived, chunk = await queue.get()
            if not chunk:
                break
            due = max(arrived, not_before) + delay - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
            wait = bucket.take(len(chunk))
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    receiving = asyncio.ensure_future(receive())
    try:
        await send()
    except OSError:  # the other side went away (reset, or shut down first)
        pass
    finally:
        receiving.cancel()


async def _handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                  upstream: tuple[str, int], rtt: float, rate: float) -> None:
    accepted = time.monotonic()
    try:
        up_r, up_w = await asyncio.open_connection(*upstream)
    except OSError:
        client_w.close()
        return
    for w in (client_w, up_w):
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.gather(_pipe(client_r, up_w, rtt / 2, rate, accepted + rtt),
                             _pipe(up_r, client_w, rtt / 2, rate, 0.0))
    finally:
        for w in (client_w, up_w):
            w.close()


async def serve(upstream_port: int, port: int, rtt_ms: float = DEFAULT_RTT_MS,
                mb_per_s: float = DEFAULT_MB_PER_S, upstream_host: str = "127.0.0.1",
                ready: asyncio.Event | None = None) -> None:
    """Run the shaping proxy on 127.0.0.1:`port` in front of upstream until cancelled."""
    rtt, rate = rtt_ms / 1000, mb_per_s * 1e6
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, (upstream_host, upstream_port), rtt, rate),
        "127.0.0.1", port, backlog=1024)
    if ready is not None:
        ready.set()
    async with server:
        await server.serve_forever()


# -- the processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start on port {port}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def serve_moto(port: int, threads: int = 32) -> None:
    """moto's S3 app under uvicorn, which keeps connections alive as S3 does.

    moto's own server (werkzeug) answers every request with `Connection: close`: through the
    proxy every request would then pay a TCP hand-shake (one more RTT), which real S3 does not
    charge a client that keeps its connections."""
    import uvicorn
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from uvicorn.middleware.wsgi import WSGIMiddleware

    os.environ.setdefault("MOTO_PORT", str(port))
    moto = DomainDispatcherApplication(create_backend_app)
    app = WSGIMiddleware(_ranged_reads(moto), workers=threads)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=1024)


def _ranged_reads(app: Any) -> Any:
    """Answer a ranged GET of an object with only that range, as S3 does.

    moto reads the whole object for every GET and then slices it, under the object's lock:
    pulling 1 GiB in 16 MiB parts cost 64 reads of 1 GiB, one at a time. Other requests,
    and ranges moto would refuse or S3 would answer whole (several ranges), go to moto."""
    from urllib.parse import unquote

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    def ranged(environ: dict[str, Any], start_response: Any) -> Any:
        spec = environ.get("HTTP_RANGE", "")
        first, _, last = spec.removeprefix("bytes=").partition("-")
        if (environ["REQUEST_METHOD"] == "GET" and spec.startswith("bytes=")
                and first.isdigit() and (last.isdigit() or not last)
                and not environ.get("QUERY_STRING")):
            bucket, _, key = unquote(environ["PATH_INFO"]).lstrip("/").partition("/")
            try:
                obj = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, key)
            except Exception:  # noqa: BLE001 - moto answers (and words the error) itself
                obj = None
            start = int(first)
            if obj is not None and start < obj.size:
                end = min(int(last), obj.size - 1) if last else obj.size - 1
                with obj.lock:
                    obj._value_buffer.seek(start)
                    data = obj._value_buffer.read(end - start + 1)
                start_response("206 Partial Content", [
                    ("Content-Type", "binary/octet-stream"), ("Content-Length", str(len(data))),
                    ("Content-Range", f"bytes {start}-{end}/{obj.size}"),
                    ("ETag", obj.etag), ("Last-Modified", obj.last_modified_RFC1123),
                    ("Accept-Ranges", "bytes")])
                return [data]
        return app(environ, start_response)

    return ranged


def start_moto(port: int) -> subprocess.Popen[bytes]:
    """moto's S3 server on 127.0.0.1:`port` (serve_moto), answering before it returns."""
    proc = subprocess.Popen([sys.executable, __file__, "moto", "--port", str(port)],
                            stdout=subprocess.DEVNULL)
    atexit.register(_stop, proc)
    _wait_for(port, proc, "moto's S3 server")
    return proc


def start_proxy(upstream_port: int, port: int, rtt_ms: float = DEFAULT_RTT_MS,
                mb_per_s: float = DEFAULT_MB_PER_S) -> subprocess.Popen[bytes]:
    """The shaping proxy as its own process (its own interpreter lock, not the caller's)."""
    proc = subprocess.Popen([sys.executable, __file__, "serve", "--upstream", str(upstream_port),
                             "--port", str(port), "--rtt-ms", str(rtt_ms),
                             "--mb-per-s", str(mb_per_s)])
    atexit.register(_stop, proc)
    _wait_for(port, proc, "the shaping proxy")
    return proc


@dataclass
class ShapedS3:
    """moto plus the shaping proxy, as a context manager; ports are free ones unless given."""

    rtt_ms: float = DEFAULT_RTT_MS
    mb_per_s: float = DEFAULT_MB_PER_S
    moto_port: int = 0
    port: int = 0

    def __enter__(self) -> ShapedS3:
        self.moto_port = self.moto_port or free_port()
        self.port = self.port or free_port()
        self._moto = start_moto(self.moto_port)
        self._proxy = start_proxy(self.moto_port, self.port, self.rtt_ms, self.mb_per_s)
        return self

    def __exit__(self, *exc: object) -> None:
        _stop(self._proxy)
        _stop(self._moto)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def direct(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def client(self, shaped: bool = False, pool: int = 10) -> object:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint if shaped else self.direct,
                            config=Config(max_pool_connections=pool))

    def create_bucket(self, bucket: str) -> None:
        s3 = self.client()
        if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:  # type: ignore[attr-defined]
            s3.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]

    def wipe(self, bucket: str) -> None:
        """Delete every object of `bucket`, through moto directly (unshaped, untimed)."""
        import boto3

        boto3.resource("s3", endpoint_url=self.direct).Bucket(bucket).objects.all().delete()


# -- self-check --------------------------------------------------------------------------------


def selfcheck(rtt_ms: float, mb_per_s: float, connections: int, mib: int) -> None:
    """Print a request's latency and the throughput of `connections` parallel GETs through it."""
    from concurrent.futures import ThreadPoolExecutor

    with ShapedS3(rtt_ms, mb_per_s) as s3:
        s3.create_bucket("selfcheck")
        direct = s3.client()
        body = os.urandom(mib << 20)
        direct.put_object(Bucket="selfcheck", Key="blob", Body=body)  # type: ignore[attr-defined]
        direct.put_object(Bucket="selfcheck", Key="tiny", Body=b"x")  # type: ignore[attr-defined]
        shaped = s3.client(shaped=True, pool=connections)
        shaped.head_object(Bucket="selfcheck", Key="tiny")  # type: ignore[attr-defined]  # connect
        for name, client in (("direct", direct), ("shaped", shaped)):
            laps = []
            for _ in range(10):
                start = time.perf_counter()
                client.head_object(Bucket="selfcheck", Key="tiny")  # type: ignore[attr-defined]
                laps.append(time.perf_counter() - start)
            print(f"{name}: HEAD on a kept-alive connection, median of 10: "
                  f"{statistics.median(laps) * 1000:.1f} ms (RTT set to {rtt_ms} ms)")
        part = len(body) // connections

        def get(i: int) -> int:
            end = len(body) - 1 if i == connections - 1 else (i + 1) * part - 1
            got = shaped.get_object(Bucket="selfcheck", Key="blob",  # type: ignore[attr-defined]
                                    Range=f"bytes={i * part}-{end}")
            return len(got["Body"].read())

        start = time.perf_counter()
        with ThreadPoolExecutor(connections) as pool:
            total = sum(pool.map(get, range(connections)))
        seconds = time.perf_counter() - start
        print(f"shaped: GET {total >> 20} MiB over {connections} connection(s): {seconds:.2f} s, "
              f"{total / seconds / 1e6:.1f} MB/s (cap {mb_per_s} MB/s per connection)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("moto").add_argument("--port", type=int, required=True)
    for name in ("serve", "up", "selfcheck"):
        p = sub.add_parser(name)
        p.add_argument("--rtt-ms", type=float, default=DEFAULT_RTT_MS)
        p.add_argument("--mb-per-s", type=float, default=DEFAULT_MB_PER_S)
        if name != "selfcheck":
            p.add_argument("--port", type=int, default=5600)
        if name == "serve":
            p.add_argument("--upstream", type=int, required=True, help="moto's port")
        if name == "selfcheck":
            p.add_argument("-c", "--connections", type=int, default=1)
            p.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    with suppress(KeyboardInterrupt):
        if args.command == "moto":
            serve_moto(args.port)
        elif args.command == "serve":
            asyncio.run(serve(args.upstream, args.port, args.rtt_ms, args.mb_per_s))
        elif args.command == "up":
            with ShapedS3(args.rtt_ms, args.mb_per_s, port=args.port) as s3:
                print(f"shaped S3 at {s3.endpoint} (moto at {s3.direct}); Ctrl-C stops",
                      flush=True)
                while True:
                    time.sleep(3600)
        else:
            selfcheck(args.rtt_ms, args.mb_per_s, args.connections, args.mib)


if __name__ == "__main__":
    main()
