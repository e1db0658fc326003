"""Real components several suites run: a free loopback port, moma's app under a real uvicorn
in a thread of the test process, and third-party CLIs (gto, dvc) from venvs of their own."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VENV_ROOT = Path("/tmp")  # shared by every test run on the machine: built once, reused


def free_port() -> int:
    """A loopback port nobody listens on at this moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def uvicorn_running(app: Any, port: int, host: str = "127.0.0.1",
                    **config: Any) -> Iterator[Any]:
    """`app` (an ASGI app, or a factory with `factory=True`) answering on `port` until the
    block ends; yields the uvicorn server."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def tool_venv(package: str, version: str) -> Path:
    """The bin directory of a venv holding `package==version` (its pins clash with ours),
    built once per machine under /tmp; the other xdist worker waits for that one build."""
    root = VENV_ROOT / f"moma-test-{package}-venv"
    venv, done = root / version, root / version / ".complete"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin/pip"), "install", "-q", f"{package}=={version}"],
                           check=True, capture_output=True)
            done.touch()
    return venv / "bin"
