"""`moma exp run --queue` and `moma exp queue`: runs queued outside the work tree, then run
N at once in processes of their own or on Dask workers, with the results a serial run gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Moma, write
from moma_cli.atomic import atomic_create

SWEEP = ["-S", "train.lr=0.01,0.1", "-S", "train.depth=2,3"]


def _queue(repo: Moma) -> list[dict]:
    return json.loads(repo("exp", "queue", "list", "--json").stdout)


def _shown(repo: Moma) -> dict[str, dict]:
    return {e["name"]: e for e in json.loads(repo("exp", "show", "--json").stdout)}


def _tree(repo: Moma, name: str) -> str:
    """The experiment's tree: params, moma.lock, metrics and output pointers (their hashes)."""
    return repo.git("rev-parse", f"{_shown(repo)[name]['ref']}^{{tree}}").strip()


def _state(repo: Moma) -> tuple[str, str, str]:
    return (repo.git("rev-parse", "HEAD"), repo.git("ls-files", "-s"),
            repo.git("status", "--porcelain", "--ignored"))


def _check_serial_results(repo: Moma, queued: str) -> None:
    """Each queued point recorded what the serial run of the same point recorded."""
    shown = _shown(repo)
    for i in range(1, 5):
        assert shown[f"{queued}-{i}"]["params"] == shown[f"serial-{i}"]["params"]
        assert shown[f"{queued}-{i}"]["metrics"] == shown[f"serial-{i}"]["metrics"]
        assert _tree(repo, f"{queued}-{i}") == _tree(repo, f"serial-{i}")


def test_a_queued_sweep_runs_two_at_once_with_serial_results(
        pipe: Moma, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe("exp", "run", *SWEEP, "-n", "serial")
    before = _state(pipe)
    out = pipe("exp", "run", "--queue", *SWEEP, "-n", "q").stdout
    assert "Queued experiment q-4: params.yaml:train.lr=0.1, params.yaml:train.depth=3" in out
    assert [(e["name"], e["state"]) for e in _queue(pipe)] == [
        (f"q-{i}", "queued") for i in range(1, 5)]
    assert sorted(_shown(pipe)) == [f"serial-{i}" for i in range(1, 5)]  # nothing ran yet
    assert "q-1" in pipe("exp", "queue", "list").stdout
    assert "is queued already" in pipe("exp", "run", "--queue", "-n", "q-2", ok=False).stderr

    monkeypatch.setenv("BARRIER", str(tmp_path / "barrier"))
    res = json.loads(pipe("exp", "queue", "start", "-j", "2", "--json").stdout)
    assert sorted((r["name"], r["ok"], r["exit"]) for r in res["runs"]) == [
        (f"q-{i}", True, 0) for i in range(1, 5)]
    # lr=0.1, depth=2 is what HEAD's moma.lock holds: that point's stage did not re-run
    assert len(os.listdir(tmp_path / "barrier")) == 3
    _check_serial_results(pipe, "q")
    assert _queue(pipe) == []
    assert _state(pipe) == before
    assert len(pipe.git("worktree", "list").splitlines()) == 1
    assert "The queue is empty" in pipe("exp", "queue", "start").stdout


def test_a_failing_point_is_recorded_as_failed_and_the_others_run(pipe: Moma) -> None:
    pipe("exp", "run", "--queue", "-S", "train.fail=true,false", "-n", "f")
    res = pipe("exp", "queue", "start", "-j", "2", ok=False)
    assert res.exit_code == 1
    assert "experiment f-1 failed, nothing recorded: stage 'train' failed: command exited " \
           "with 1" in res.stderr
    assert "Recorded experiment f-2" in res.stdout
    assert sorted(_shown(pipe)) == ["f-2"]
    [failed] = _queue(pipe)
    assert (failed["name"], failed["state"], failed["exit"]) == ("f-1", "failed", 1)
    assert "command exited with 1" in failed["error"]
    assert "failed" in pipe("exp", "queue", "list").stdout
    assert "The queue is empty" in pipe("exp", "queue", "start").stdout  # failed: not re-run
    assert "Removed failed experiment f-1" in pipe("exp", "queue", "remove", "f-1").stdout
    assert _queue(pipe) == []


def test_remove_clear_and_a_damaged_entry(pipe: Moma) -> None:
    pipe("exp", "run", "--queue", "-S", "train.lr=0.2,0.3", "-n", "c")
    pipe("exp", "run", "--queue", "-S", "train.lr=0.4")
    assert len(_queue(pipe)) == 3
    assert "no experiment 'nope' in the queue" in pipe(
        "exp", "queue", "remove", "c-1", "nope", ok=False).stderr
    assert len(_queue(pipe)) == 3  # all names are checked before any is removed
    pipe("exp", "queue", "remove", "c-1")
    assert "Removed 2 experiments" in pipe("exp", "queue", "clear").stdout
    assert _queue(pipe) == []
    queued = pipe.root / ".git/moma/queue/queued"
    assert queued.is_dir()  # under .git: no work tree, status or checkout sees it
    write(queued / "bad.json", "{not json")
    res = pipe("exp", "queue", "list", ok=False)
    assert res.exit_code == 1
    assert "bad.json: unreadable queue entry" in res.stderr


def test_a_run_left_by_a_dead_runner_is_queued_again(pipe: Moma) -> None:
    pipe("exp", "run", "--queue", "-S", "train.lr=0.5", "-n", "orphan")
    qdir = pipe.root / ".git/moma/queue"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    entry = json.loads((qdir / "queued/orphan.json").read_text())
    (qdir / "queued/orphan.json").unlink()
    (qdir / "running").mkdir()
    entry["worker"] = f"{os.uname().nodename}:{os.getpid()}"  # a live runner: this process
    write(qdir / "running/orphan.json", json.dumps(entry))
    assert "is running" in pipe("exp", "queue", "remove", "orphan", ok=False).stderr
    refused = pipe("gc", "--workspace", "--force", ok=False)  # outputs not on a ref yet
    assert "experiments are running (orphan): gc would take outputs" in refused.stderr
    entry["worker"] = f"{os.uname().nodename}:{dead.pid}"
    write(qdir / "running/orphan.json", json.dumps(entry))
    res = json.loads(pipe("exp", "queue", "start", "--json").stdout)
    assert res["requeued"] == ["orphan"]
    assert [r["name"] for r in res["runs"] if r["ok"]] == ["orphan"]
    assert _shown(pipe)["orphan"]["metrics"] == {"metrics.json:score": 1.0}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    import distributed

    # threads in this process: the workers see the repository, and start in no time
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp", dashboard_address=None) as local:
        yield local.scheduler_address


def test_a_dask_cluster_runs_the_queue_with_serial_results(
        pipe: Moma, cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe("exp", "run", *SWEEP, "-n", "serial")
    pipe("exp", "run", "--queue", *SWEEP, "-n", "d")
    monkeypatch.setenv("BARRIER", str(tmp_path / "barrier"))  # both workers at once
    executor = "dask://" + cluster.removeprefix("tcp://")
    out = pipe("exp", "queue", "start", "--executor", executor).stdout
    assert out.count("Recorded experiment d-") == 4
    _check_serial_results(pipe, "d")
    assert _queue(pipe) == []


def test_an_entry_is_created_only_where_none_is(tmp_path: Path) -> None:
    """Two `exp run --queue` of one name at once: the second writer gets False, the first
    one's file stays whole, and no temp is left."""
    path = tmp_path / "e.json"
    assert atomic_create(path, b"first")
    assert not atomic_create(path, b"second")
    assert path.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["e.json"]
