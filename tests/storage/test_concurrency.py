"""Concurrent and interrupted commands, with real subprocesses: the lock, kill -9, full disk."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import Moma, write
from moma_cli.core.hashing import hash_bytes

HOLDER = """
import sys
from pathlib import Path
from moma_cli.storage.lock import RepoLock
lock = RepoLock(Path(sys.argv[1]), command="moma lock-holder")
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # hold until the test closes our stdin (or kills us)
"""


def hold_lock(moma: Moma) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(moma.root / ".moma/lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def spawn(moma: Moma, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "moma_cli", *args], cwd=moma.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def cache_objects(moma: Moma) -> list[Path]:
    return [p for p in (moma.root / ".moma/cache/blake3").rglob("*") if p.is_file()]


def leftover_temps(moma: Moma) -> list[Path]:
    tmp = moma.root / ".moma/cache/tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


def test_locked_repository_fails_fast_naming_the_holder(repo: Moma) -> None:
    write(repo.root / "model.bin", b"m")
    holder = hold_lock(repo)
    try:
        started = time.monotonic()
        res = repo.proc("add", "model.bin", ok=False)
        assert time.monotonic() - started < 20
        assert res.exit_code == 1 and "Traceback" not in res.stderr
        assert f"repository is locked by pid {holder.pid} on {socket.gethostname()}" in res.stderr
        assert "'moma lock-holder'" in res.stderr and "--wait" in res.stderr
        assert not (repo.root / "model.bin.moma").exists()
        waiting = spawn(repo, "--wait", "60", "add", "model.bin")
        time.sleep(0.5)
        assert waiting.poll() is None, "--wait did not wait for the lock"
    finally:
        holder.communicate("", timeout=30)  # closing stdin releases the lock
    assert finish(waiting)[0] == 0
    assert (repo.root / "model.bin.moma").exists()


def test_lock_of_a_killed_process_does_not_block(repo: Moma) -> None:
    write(repo.root / "model.bin", b"m")
    holder = hold_lock(repo)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert (repo.root / ".moma/lock").read_text()  # the dead holder's record is still there
    repo.proc("add", "model.bin")
    assert (repo.root / "model.bin.moma").exists()


def test_two_adds_of_the_same_file_give_one_pointer_and_one_object(repo: Moma) -> None:
    data = os.urandom(3 << 20)
    write(repo.root / "big.bin", data)
    holder = hold_lock(repo)  # line both up behind the lock, so they really start together
    procs = [spawn(repo, "--wait", "60", "add", "big.bin") for _ in range(2)]
    holder.communicate("", timeout=30)
    assert [finish(p)[0] for p in procs] == [0, 0]
    objects = cache_objects(repo)
    assert len(objects) == 1 and objects[0].read_bytes() == data
    assert leftover_temps(repo) == []
    assert repo.git("diff", "--cached", "--name-only").split() == [".gitignore", "big.bin.moma"]
    assert (repo.root / ".gitignore").read_text().splitlines().count("/big.bin") == 1


def test_gc_beside_add_never_deletes_the_new_object(repo: Moma) -> None:
    write(repo.root / "orphan.bin", b"nothing refers to me")
    repo("add", "orphan.bin", "--no-stage")
    (repo.root / "orphan.bin.moma").unlink()
    data = os.urandom(2 << 20)
    write(repo.root / "big.bin", data)
    holder = hold_lock(repo)
    add = spawn(repo, "--wait", "60", "add", "big.bin")
    gc = spawn(repo, "--wait", "60", "gc", "--workspace", "--force")
    holder.communicate("", timeout=30)
    assert finish(add)[0] == 0 and finish(gc)[0] == 0
    assert [p.read_bytes() for p in cache_objects(repo)] == [data]  # orphan gone, new kept
    repo("status")


def _limit_file_size() -> None:
    # Ignore SIGXFSZ so an oversized write() fails with EFBIG instead of killing moma.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, 100 * 1024))


def test_full_disk_during_add_loses_nothing(repo: Moma) -> None:
    data = os.urandom(1 << 20)
    write(repo.root / "big.bin", data)
    proc = subprocess.run([sys.executable, "-m", "moma_cli", "add", "big.bin"], cwd=repo.root,
                          capture_output=True, text=True, preexec_fn=_limit_file_size,
                          timeout=60)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no room to store" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert (repo.root / "big.bin").read_bytes() == data
    assert cache_objects(repo) == [] and leftover_temps(repo) == []
    assert not (repo.root / "big.bin.moma").exists()
    # With room again, the same command succeeds.
    repo.proc("add", "big.bin")
    oid = hash_bytes(data, "blake3")
    assert (repo.root / ".moma/cache/blake3" / oid[:2] / oid[2:]).read_bytes() == data


def test_transfer_budget_holds_back_what_does_not_fit_and_lets_one_large_holder_through(
        ) -> None:
    import threading

    from moma_cli.storage.transfer import Budget

    budget = Budget(100)
    with budget.held(250):  # larger than the budget, alone: proceeds
        assert budget.used == 250
    first_in, release, second_in = threading.Event(), threading.Event(), threading.Event()

    def hold(event: threading.Event, wait: threading.Event | None) -> None:
        with budget.held(60):
            event.set()
            if wait is not None:
                assert wait.wait(30)

    first = threading.Thread(target=hold, args=(first_in, release))
    first.start()
    assert first_in.wait(30)
    second = threading.Thread(target=hold, args=(second_in, None))
    second.start()
    assert not second_in.wait(0.3)  # 60 + 60 > 100: waits for the first
    release.set()
    assert second_in.wait(30)
    first.join(30)
    second.join(30)
    assert budget.used == 0
