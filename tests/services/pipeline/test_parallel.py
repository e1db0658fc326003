"""`moma repro -j N` and `--executor dask://…`: independent stages run at once, and the
results (outputs, pointers, moma.lock) are those of a serial run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Moma, make_repo, write
from helpers import temp_files
from moma_cli import yamlio

# Each branch stage marks itself started; with sync/on present it then waits for its peer's
# mark, so a run where both finish proves they ran at the same time (no timing bound).
STAGE = """
import os, sys, time
name, peer = sys.argv[1], sys.argv[2]
os.makedirs("sync", exist_ok=True)
open(f"sync/{name}", "w").close()
if os.path.exists("sync/on"):
    deadline = time.monotonic() + 20
    while not os.path.exists(f"sync/{peer}"):
        if time.monotonic() > deadline:
            sys.exit(9)
        time.sleep(0.02)
open(f"{name}.txt", "w").write(f"made by {name}\\n")
"""
PY = sys.executable
_TEMPLATE: dict[str, Path] = {}


def _stages(**extra: dict) -> dict:
    return {
        "left": {"cmd": f"{PY} stage.py left right", "deps": ["stage.py"], "outs": ["left.txt"]},
        "right": {"cmd": f"{PY} stage.py right left", "deps": ["stage.py"],
                  "outs": ["right.txt"]},
        "join": {"cmd": "cat left.txt right.txt > joined.txt",
                 "deps": ["left.txt", "right.txt"], "outs": ["joined.txt"]},
        **extra,
    }


def _build(root: Path) -> Path:
    """Stages declared and committed, never run: every copy starts at the same commit, so
    the lock's `code` field agrees between copies."""
    repo = make_repo(root)
    write(repo.root / "stage.py", STAGE)
    doc = yamlio.loads((repo.root / ".moma.yaml").read_text()) or {}
    write(repo.root / ".moma.yaml", yamlio.dumps({**doc, "stages": _stages()}))
    write(repo.root / ".gitignore", "sync/\n")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "two branches and a join")
    return root


@pytest.fixture
def branches(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[Moma, Moma]]:
    """Two copies of one committed pipeline: one for a serial run, one for a parallel run."""
    if "repo" not in _TEMPLATE:
        _TEMPLATE["repo"] = _build(tmp_path_factory.mktemp("template") / "repo")
    copies = []
    for name in ("serial", "parallel"):
        shutil.copytree(_TEMPLATE["repo"], tmp_path / name, symlinks=True)
        copies.append(Moma(tmp_path / name))
    yield copies[0], copies[1]


def _results(repo: Moma) -> dict[str, str]:
    """moma.lock and every pointer, the files a run commits."""
    files = ["moma.lock", *(f"{o}.moma" for o in ("left.txt", "right.txt", "joined.txt"))]
    return {f: (repo.root / f).read_text() for f in files}


def _barrier(repo: Moma) -> None:
    write(repo.root / "sync/on", "")


def test_parallel_repro_runs_branches_at_once_with_serial_results(
        branches: tuple[Moma, Moma]) -> None:
    serial, parallel = branches
    serial("repro")
    _barrier(parallel)  # a serial run would now wait for good on the first branch
    res = parallel("repro", "-j", "2", "--json")
    assert [(s["name"], s["action"]) for s in json.loads(res.stdout)["stages"]] == [
        ("left", "ran"), ("right", "ran"), ("join", "ran")]
    assert _results(parallel) == _results(serial)
    assert (parallel.root / "joined.txt").read_text() == "made by left\nmade by right\n"
    assert parallel.git("status", "--porcelain") == serial.git("status", "--porcelain")
    assert "Pipeline is up to date." in parallel("repro", "-j", "2").stdout


def test_failure_stops_dependents_lets_running_finish_and_reports(
        branches: tuple[Moma, Moma]) -> None:
    _, repo = branches
    doc = yamlio.loads((repo.root / ".moma.yaml").read_text())
    doc["stages"]["right"]["cmd"] = "echo boom >&2; exit 3"
    write(repo.root / ".moma.yaml", yamlio.dumps(doc))
    res = repo("repro", "-j", "2", ok=False)
    assert res.exit_code == 1
    assert "stage 'right' failed: command exited with 3" in res.stderr
    assert "not run after the failure: join" in res.stderr
    assert "Ran stage left" in res.stdout  # the branch already running finished ...
    lock = yamlio.loads((repo.root / "moma.lock").read_text())["stages"]
    assert sorted(lock) == ["left"]  # ... and was recorded; nothing else was
    assert not (repo.root / "joined.txt").exists()
    report = json.loads(repo("repro", "-j", "2", "--json", ok=False).stdout)
    assert [f["name"] for f in report["failed"]] == ["right"]
    assert report["not_run"] == ["join"]
    assert [(s["name"], s["action"]) for s in report["stages"]] == [("left", "unchanged")]


def test_unknown_executor_or_missing_extra_is_refused(branches: tuple[Moma, Moma],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    repo, _ = branches
    res = repo("repro", "--executor", "ssh://box", ok=False)
    assert "unknown executor 'ssh://box'" in res.stderr
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were missing
    res = repo("repro", "--executor", "dask-local", ok=False)
    assert "pip install 'moma-cli[dask]'" in res.stderr
    assert not (repo.root / "moma.lock").exists()


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    # The Nanny writes distributed.nanny.pre-spawn-environ (MALLOC_TRIM_THRESHOLD_) into
    # this process's own environment, where every later test's subprocesses would inherit it.
    environ = dict(os.environ)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as local:
            yield local.scheduler_address
    finally:
        os.environ.clear()
        os.environ.update(environ)


def test_dask_cluster_runs_repro_with_same_hashes(branches: tuple[Moma, Moma],
                                                  cluster: str) -> None:
    serial, remote = branches
    serial("repro")
    _barrier(remote)  # both branches must be on the two workers at once
    executor = "dask://" + cluster.removeprefix("tcp://")
    res = remote("repro", "--executor", executor, "--json")
    assert [s["action"] for s in json.loads(res.stdout)["stages"]] == ["ran"] * 3
    assert _results(remote) == _results(serial)

    write(remote.root / "stage.py", STAGE + "\nsys.exit('worker says no')\n")
    failed = remote("repro", "--executor", executor, ok=False)
    assert "stage 'left' failed: command exited with 1" in failed.stderr
    assert "    worker says no" in failed.stderr  # the worker's stderr, quoted


# A branch that marks itself started, then waits for sync/go: killed meanwhile, it never
# finishes on its own.
WAIT = """
import os, sys, time
name = sys.argv[1]
os.makedirs("sync", exist_ok=True)
open(f"sync/{name}", "w").close()
deadline = time.monotonic() + 60
while not os.path.exists("sync/go"):
    if time.monotonic() > deadline:
        sys.exit(9)
    time.sleep(0.02)
open(f"{name}.txt", "w").write(f"made by {name}\\n")
"""


def _wait_for(paths: list[Path], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not all(p.exists() for p in paths):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the stages never started"
        time.sleep(0.02)


def test_ctrl_c_of_a_parallel_repro_leaves_lock_and_cache_consistent(
        branches: tuple[Moma, Moma]) -> None:
    serial, repo = branches
    serial("repro")
    write(repo.root / "wait.py", WAIT)
    doc = yamlio.loads((repo.root / ".moma.yaml").read_text())
    for name in ("left", "right"):
        doc["stages"][name]["cmd"] = f"{PY} wait.py {name}"
    write(repo.root / ".moma.yaml", yamlio.dumps(doc))
    # Ctrl-C in a terminal reaches the whole foreground process group: moma and its stages
    proc = subprocess.Popen([PY, "-m", "moma_cli", "repro", "-j", "2"], cwd=repo.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _wait_for([repo.root / "sync/left", repo.root / "sync/right"], proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not (repo.root / "moma.lock").exists()  # nothing finished, nothing recorded
    assert not any((repo.root / f"{o}.moma").exists() for o in ("left.txt", "right.txt"))
    assert temp_files(repo.root / ".moma") == []
    write(repo.root / "sync/go", "")
    repo("repro", "-j", "2")
    assert repo("fsck").exit_code == 0
    assert (repo.root / "joined.txt").read_text() == "made by left\nmade by right\n"
    assert _results(repo)["joined.txt.moma"] == _results(serial)["joined.txt.moma"]
