"""What worker processes share through their state directory: metrics summed over them,
and reloads that reach them all.

Each worker publishes a snapshot of its counters to `<dir>/worker-<pid>.json`, and the one
that answers /metrics adds them all up.

Counters and histograms are summed over every file, a worker that has died included (what
it counted still happened, and the sum never goes down). `moma_model_info` counts, for each
served version, the live workers serving it, so a switch shows as it rolls across them.

A snapshot is written by a thread, after a change and at most every WRITE_INTERVAL: a request
only sets an event, and a burst of them costs one write. Another worker's figures are
therefore up to WRITE_INTERVAL old, far below any scrape interval. Written with
`atomic_open` without fsync: a reader sees a whole snapshot, and the directory is
temporary, so durability would buy nothing.

`POST /v1/admin/reload` reaches the one worker the kernel hands the connection to. That
worker reloads, then writes a new token to `<dir>/reload` (`ReloadSignal`); every worker's
poll loop reads the file every SIGNAL_INTERVAL and reloads when the token changed. A token,
not a counter: two workers signalling at once would both write the same next number, and
a reader compares for inequality only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from moma_cli.atomic import atomic_open
from moma_cli.services.serving.metrics import Metrics, model_info
from moma_cli.services.serving.slots import Slot

WRITE_INTERVAL = 0.05
# A worker sees another's reload within this; reading a 30-byte file 5 times a second
# costs nothing next to a prediction.
SIGNAL_INTERVAL = 0.2
RELOAD_FILE = "reload"
_SNAPSHOT = re.compile(r"worker-(\d+)\.json")

log = logging.getLogger("moma.serve")


class SharedMetrics:
    def __init__(self, directory: Path, metrics: Metrics,
                 slots: Callable[[], Sequence[Slot]]) -> None:
        self.directory = directory
        self.metrics = metrics
        self._slots = slots
        self._pid = os.getpid()
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        metrics.on_change = self._changed.set

    def changed(self) -> None:
        """Publish again soon: the served models changed (counters say so themselves)."""
        self._changed.set()

    def start(self) -> None:
        self._write()
        self._thread = threading.Thread(target=self._run, name="moma-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._write()

    def _run(self) -> None:
        while self._changed.wait() and not self._stop.is_set():
            self._changed.clear()
            try:
                self._write()
            except OSError:
                log.exception("could not publish the metrics to %s", self.directory)
            self._stop.wait(WRITE_INTERVAL)

    def _write(self) -> None:
        data = {"metrics": self.metrics.snapshot(),
                "models": [[list(pair) for pair in labels]
                           for labels in model_info(self._slots())]}
        with atomic_open(self.directory / f"worker-{self._pid}.json", fsync=False) as fh:
            fh.write(json.dumps(data).encode())

    def render(self) -> str:
        """The exposition of all workers' metrics: this one's as they are now, the others'
        as last published."""
        total = Metrics()
        total.add(self.metrics.snapshot())
        info = model_info(self._slots())
        for path in sorted(self.directory.iterdir()):
            match = _SNAPSHOT.fullmatch(path.name)
            if match is None or int(match[1]) == self._pid:
                continue
            try:
                data = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue  # removed by the parent stopping, or not a snapshot of ours
            total.add(data["metrics"])
            if _alive(int(match[1])):
                info.update(tuple((k, v) for k, v in labels) for labels in data["models"])
        return total.render(info)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds the pid
        return False
    return True


class ReloadSignal:
    """A reload one worker made, for the others to make too (the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / RELOAD_FILE
        self._seen = self._read()  # what happened before this worker loaded its models

    def _read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    def send(self) -> None:
        token = f"{os.getpid()} {time.time_ns()}".encode()
        with atomic_open(self.path, fsync=False) as fh:
            fh.write(token)
        self._seen = token

    def received(self) -> bool:
        """Whether another worker signalled since the last call."""
        token = self._read()
        if token == self._seen:
            return False
        self._seen = token
        return True
