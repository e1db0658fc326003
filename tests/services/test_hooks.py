"""`moma install / uninstall` in real git repositories: hooks run from real git commands,
existing hooks keep running, uninstall leaves them exactly as they were."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import Moma, write

SHELL_HOOK = '#!/bin/sh\necho "shell hook: $1 $2" >> "{log}"\nexit 0\n'
PYTHON_HOOK = f"#!{sys.executable}\nimport sys\nopen({{log!r}}, 'a').write('python hook\\n')\n"


def two_versions(moma: Moma) -> None:
    write(moma.root / "model.pkl", "v1")
    moma("add", "model.pkl")
    moma.git("commit", "-qm", "v1")
    write(moma.root / "model.pkl", "v2")
    moma("add", "model.pkl")
    moma.git("commit", "-qm", "v2")


def test_checkout_restores_data_and_existing_hooks_still_run(repo: Moma, tmp_path: Path) -> None:
    two_versions(repo)
    hooks = repo.root / ".git" / "hooks"
    log = tmp_path / "hooks.log"
    existing_shell = SHELL_HOOK.format(log=log)
    existing_python = PYTHON_HOOK.format(log=str(log))
    write(hooks / "post-checkout", existing_shell).chmod(0o755)
    write(hooks / "post-merge", existing_python).chmod(0o755)

    out = repo("install")
    assert "post-checkout: added to the existing shell hook" in out.stdout
    assert "post-merge: chained (existing hook moved to post-merge.moma-chained)" in out.stdout
    assert "post-checkout: updated" in repo("install").stdout  # idempotent

    repo.git("checkout", "-q", "-b", "old", "HEAD~1")  # real git runs post-checkout
    assert (repo.root / "model.pkl").read_text() == "v1"
    assert log.read_text().startswith("shell hook: ")

    repo.git("checkout", "-q", "main")
    assert (repo.root / "model.pkl").read_text() == "v2"
    repo.git("checkout", "-q", "old")
    repo.git("merge", "-q", "--ff-only", "main")  # real git runs post-merge
    assert (repo.root / "model.pkl").read_text() == "v2"
    assert log.read_text().splitlines()[-1] == "python hook"

    out = repo("uninstall")
    assert "post-checkout: removed moma's block" in out.stdout
    assert (hooks / "post-checkout").read_text() == existing_shell
    assert (hooks / "post-merge").read_text() == existing_python
    assert os.access(hooks / "post-merge", os.X_OK)
    assert not (hooks / "post-merge.moma-chained").exists()


def test_hooks_path_is_respected_and_uninstall_removes_created_hooks(repo: Moma) -> None:
    repo.git("config", "core.hooksPath", "githooks")
    repo("install")
    created = sorted(p.name for p in (repo.root / "githooks").iterdir())
    assert created == ["post-checkout", "post-merge", "pre-push"]
    text = (repo.root / "githooks" / "post-checkout").read_text()
    assert f"{sys.executable} -m moma_cli checkout" in text
    assert not (repo.root / ".git" / "hooks" / "post-checkout").exists()
    repo("uninstall")
    assert list((repo.root / "githooks").iterdir()) == []
    assert "No moma hooks installed." in repo("uninstall").stdout


def test_large_files_and_pointer_checks(repo: Moma) -> None:
    write(repo.root / "big.csv", b"x" * 3000)
    write(repo.root / "small.txt", "ok")
    out = repo("hook", "large-files", "--max-kb", "2", "big.csv", "small.txt", ok=False)
    assert "big.csv: 2 KiB is over the 2 KiB limit" in out.stderr
    assert "moma add big.csv" in out.stderr
    repo("hook", "large-files", "--max-kb", "3", "big.csv", "small.txt")

    write(repo.root / "model.pkl", "weights")
    repo("add", "model.pkl")
    repo("hook", "pointers", "model.pkl.moma", "small.txt")
    write(repo.root / "broken.moma", "moma: 1\nhash: blake3\noid: xyz\n")
    out = repo("hook", "pointers", "model.pkl.moma", "broken.moma", ok=False)
    assert "error: broken.moma: 'oid' is not a valid blake3 digest\n" in out.stderr
    out = repo("hook", "pointers", "gone.moma", ok=False)
    assert out.stderr.splitlines()[0] == "error: gone.moma: pointer file not found"
    for obj in (repo.root / ".moma" / "cache").rglob("*"):
        if obj.is_file():
            obj.chmod(0o644)
            obj.unlink()
    out = repo("hook", "pointers", "model.pkl.moma", ok=False)
    assert "is not in the cache" in out.stderr and "moma pull" in out.stderr


def test_pushed_pointers_are_those_the_remote_lacks(repo: Moma, tmp_path: Path) -> None:
    from moma_cli.services import hooks
    from moma_cli.services.repo import open_repo

    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], check=True)
    repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    write(repo.root / "model.pkl", "v1")
    repo("add", "model.pkl")
    repo.git("commit", "-qm", "v1")
    repo.git("push", "-q", "origin", "main")
    v1 = open_repo(repo.root).load_pointer("model.pkl.moma").oid
    for content in ("v2", "v3"):
        write(repo.root / "model.pkl", content)
        repo("add", "model.pkl")
        repo.git("commit", "-qm", content)
    head, remote_head = repo.git("rev-parse", "HEAD", "origin/main").split()
    line = f"refs/heads/main {head} refs/heads/main {remote_head}"
    pointers, bad = hooks.pushed_pointers(open_repo(repo.root), "origin", [line])
    cache = open_repo(repo.root).cache
    assert bad == [] and len(pointers) == 2 and v1 not in {p.oid for p in pointers}
    assert all(cache.exists(p.oid) for p in pointers)
    deletion = f"(delete) {'0' * 40} refs/heads/old {head}"
    assert hooks.pushed_pointers(open_repo(repo.root), "origin", [deletion]) == ([], [])
