"""`moma exp run --queue` and `moma exp queue list / start / remove / clear`: experiments
waiting to run, and running them N at once.

The queue is one JSON file per experiment under `<git common dir>/moma/queue/`, in a
directory per state: `queued/`, `running/`, `failed/`. It is outside every work tree (a
`git clean` or a checkout does not touch it), survives restarts, and needs no lock: an
entry is created only if its name is free (`atomic_create`), and a runner claims one by
renaming it from `queued/` to `running/`, which only one of several concurrent runners can
do. Each entry is written by one process at a time: whoever renamed it there.

Locking: only claiming an entry takes the repository lock, for a moment (waiting as long as
another command holds it): `moma gc`, which holds it, refuses while an entry is running,
so it never moves outputs a run has cached but not yet recorded on its ref. The runs
themselves need no lock (running.py says why).

Failure policy: a failed run (a stage's command, a missing output, a lost worker) moves its
entry to `failed/` with the error and the command's exit status, and the others go on. A
run that succeeded leaves the queue: its record is the experiment's ref. An entry left in
`running/` by a runner that died on this host goes back to `queued/` on the next start.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from moma_cli.atomic import atomic_create, atomic_write_bytes
from moma_cli.core import experiments
from moma_cli.core.experiments import ExperimentError
from moma_cli.errors import MomaError
from moma_cli.services.experiments import running
from moma_cli.services.experiments.running import ExpRun
from moma_cli.services.pipeline.executors import open_executor
from moma_cli.services.repo import Repo, open_repo

QUEUED, RUNNING, FAILED = "queued", "running", "failed"
STATES = (QUEUED, RUNNING, FAILED)
_SCHEMA = 1
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass
class QueueEntry:
    name: str
    base: str  # the commit it runs on
    params: dict[str, Any] = field(default_factory=dict)  # FILE:KEY -> value
    queued_at: str = ""  # ISO 8601, UTC: the queue runs oldest first
    state: str = QUEUED
    worker: str | None = None  # HOST:PID of the `exp queue start` running it
    error: str | None = None  # why it failed
    exit: int | None = None  # the failing command's exit status (None: none ran)


@dataclass
class QueueRun:
    runs: list[ExpRun] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)  # abandoned by a runner that died

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)


def queue_dir(repo: Repo) -> Path:
    return repo.git.common_dir() / "moma" / "queue"


def add(repo: Repo, sets: list[str], name: str | None = None) -> list[QueueEntry]:
    """Queue one run per point of the grid `sets` spans, on HEAD, for `exp queue start`."""
    base = repo.git.head()
    if base is None:
        raise ExperimentError("no commit to run experiments on",
                              hint="commit the pipeline first ('git commit')")
    qdir = queue_dir(repo)
    points = running.plan(repo, base, sets, name, {e.name for e in entries(repo)})
    now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    added = [QueueEntry(exp_name, base, params, now) for exp_name, params in points]
    (qdir / QUEUED).mkdir(parents=True, exist_ok=True)
    for i, entry in enumerate(added):
        if not atomic_create(_path(qdir, QUEUED, entry.name), _encode(entry)):
            for done in added[:i]:  # all of the sweep or none of it
                _path(qdir, QUEUED, done.name).unlink(missing_ok=True)
            raise ExperimentError(f"experiment {entry.name!r} was queued by another command "
                                  "meanwhile", hint="queue it again under another name (-n)")
    return added


def entries(repo: Repo) -> list[QueueEntry]:
    """Every entry in the queue, oldest first."""
    qdir = queue_dir(repo)
    return sorted((e for state in STATES for e in _scan(qdir, state)),
                  key=lambda e: (e.queued_at, e.name))


def remove(repo: Repo, names: list[str]) -> list[QueueEntry]:
    """Take queued or failed entries out (all are checked before any is removed)."""
    by_name = {e.name: e for e in entries(repo)}
    chosen = []
    for name in names:
        entry = by_name.get(name)
        if entry is None:
            raise ExperimentError(f"no experiment {name!r} in the queue",
                                  hint="list it with 'moma exp queue list'")
        if entry.state == RUNNING:
            raise ExperimentError(f"experiment {name!r} is running",
                                  hint="wait for 'moma exp queue start' to finish it")
        chosen.append(entry)
    for entry in chosen:
        _path(queue_dir(repo), entry.state, entry.name).unlink(missing_ok=True)
    return chosen


def running_entries(repo: Repo) -> list[QueueEntry]:
    """Entries being run now: in `running/`, and not left there by a runner known dead."""
    return [e for e in _scan(queue_dir(repo), RUNNING) if not _abandoned(e)]


def clear(repo: Repo) -> list[QueueEntry]:
    """Take every queued and failed entry out; running ones stay."""
    return remove(repo, [e.name for e in entries(repo) if e.state != RUNNING])


def start(repo: Repo, jobs: int | None = None, executor: str | None = None, *,
          on_start: Callable[[QueueEntry], None] | None = None,
          on_done: Callable[[ExpRun], None] | None = None) -> QueueRun:
    """Run the queue, oldest first, `jobs` at a time (default 1), each run in a process of
    its own or on a Dask worker (`executor`, see executors.open_executor), until it is
    empty; entries queued meanwhile run too."""
    qdir = queue_dir(repo)
    result = QueueRun(requeued=_requeue_abandoned(qdir))
    me = f"{os.uname().nodename}:{os.getpid()}"
    with open_executor(executor, jobs) as pool:
        limit = pool.limit  # None: the cluster takes as many as there are
        active: dict[Future[ExpRun], QueueEntry] = {}
        while True:
            while limit is None or len(active) < limit:
                with repo.lock(wait=math.inf):
                    entry = _claim(qdir, me)
                if entry is None:
                    break
                if on_start is not None:
                    on_start(entry)
                future = pool.call(run_entry, str(repo.root), entry.base, entry.name,
                                   entry.params)
                active[future] = entry
            if not active:
                break
            finished, _ = wait(active, return_when=FIRST_COMPLETED)
            for future in finished:
                run = _outcome(future, active.pop(future))
                _settle(qdir, run)
                result.runs.append(run)
                if on_done is not None:
                    on_done(run)
    return result


def run_entry(root: str, base: str, name: str, params: dict[str, Any]) -> ExpRun:
    """One queued experiment, in a worker process (or on a Dask worker that sees `root`)."""
    return running.run_one(open_repo(Path(root)), base, name, params)


def _outcome(future: Future[ExpRun], entry: QueueEntry) -> ExpRun:
    try:
        return future.result()
    except MomaError as exc:
        return ExpRun(entry.name, False, params=entry.params, error=exc.message)
    except Exception as exc:  # noqa: BLE001 - a crashed process or lost Dask worker
        return ExpRun(entry.name, False, params=entry.params,
                      error=f"the worker running it was lost: {type(exc).__name__}: {exc}")


def _claim(qdir: Path, me: str) -> QueueEntry | None:
    """The oldest queued entry, now ours in `running/`; None when the queue is empty."""
    (qdir / RUNNING).mkdir(parents=True, exist_ok=True)
    for entry in sorted(_scan(qdir, QUEUED), key=lambda e: (e.queued_at, e.name)):
        try:
            os.rename(_path(qdir, QUEUED, entry.name), _path(qdir, RUNNING, entry.name))
        except FileNotFoundError:  # another runner took it, or it was removed
            continue
        entry.state, entry.worker = RUNNING, me
        atomic_write_bytes(_path(qdir, RUNNING, entry.name), _encode(entry))
        return entry
    return None


def _settle(qdir: Path, run: ExpRun) -> None:
    """A finished run leaves `running/`: into `failed/` with its error, or out of the queue."""
    path = _path(qdir, RUNNING, run.name)
    if not run.ok:
        entry = _read(path, RUNNING)
        entry.state, entry.error, entry.exit = FAILED, run.error, run.exit
        (qdir / FAILED).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(_path(qdir, FAILED, run.name), _encode(entry))
    path.unlink(missing_ok=True)


def _requeue_abandoned(qdir: Path) -> list[str]:
    """Entries in `running/` whose runner was a process of this host that is gone."""
    moved = []
    for entry in filter(_abandoned, _scan(qdir, RUNNING)):
        path = _path(qdir, RUNNING, entry.name)
        entry.state, entry.worker = QUEUED, None
        atomic_write_bytes(path, _encode(entry))
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, _path(qdir, QUEUED, entry.name))
            moved.append(entry.name)
    return moved


def _abandoned(entry: QueueEntry) -> bool:
    """Claimed by a runner of this host that is gone (another host's cannot be checked)."""
    host, _, pid = (entry.worker or "").rpartition(":")
    return host == os.uname().nodename and pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _path(qdir: Path, state: str, name: str) -> Path:
    return qdir / state / f"{name}.json"


def _scan(qdir: Path, state: str) -> list[QueueEntry]:
    """The entries in one state's directory; one another runner moves meanwhile is skipped."""
    found = []
    for path in sorted((qdir / state).glob("*.json")):
        try:
            found.append(_read(path, state))
        except FileNotFoundError:
            continue
    return found


def _encode(entry: QueueEntry) -> bytes:
    doc = {"schema": _SCHEMA, **asdict(entry)}
    del doc["state"]  # the directory says it
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _read(path: Path, state: str) -> QueueEntry:
    """An entry file, checked: it is local, but any program (or a full disk) can write it."""
    try:
        doc = json.loads(path.read_bytes())
        if not isinstance(doc, dict) or doc.get("schema") != _SCHEMA:
            raise ValueError(f"not a schema {_SCHEMA} queue entry")
        name, base, params = doc.get("name"), doc.get("base"), doc.get("params")
        if name != path.stem:
            raise ValueError("its name is not its file's")
        experiments.check_exp_name(name)
        if not isinstance(base, str) or not _SHA.fullmatch(base):
            raise ValueError("base is not a commit id")
        if not isinstance(params, dict) or not all(isinstance(k, str) and ":" in k
                                                   for k in params):
            raise ValueError("params is not a mapping of FILE:KEY to values")
        return QueueEntry(name, base, params, str(doc.get("queued_at", "")), state,
                          _optional(doc, "worker", str), _optional(doc, "error", str),
                          _optional(doc, "exit", int))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, MomaError) as exc:
        reason = exc.message if isinstance(exc, MomaError) else str(exc)
        raise ExperimentError(f"{path}: unreadable queue entry ({reason})",
                              hint=f"delete that file ('rm {path}')") from None


def _optional(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc.get(key)
    return value if isinstance(value, kind) and not isinstance(value, bool) else None
