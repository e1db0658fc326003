"""Hostile model and stage names are refused before any git process starts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import Moma, write
from helpers import assert_nothing_lost, assert_one_error, snapshot

BAD_NAMES = {
    "dotdot": "../x",
    "option": "--upload-pack=touch PWNED",
    "shell": "m;touch PWNED",
    "subshell": "$(touch PWNED)",
    "backtick": "`touch PWNED`",
    "pipe": "m|touch PWNED",
    "newline": "m\ntouch PWNED",
    "long": "m" * 300,
}


@pytest.fixture
def git_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `git` first on PATH that records every call, then runs the real git."""
    real = shutil.which("git")
    log = tmp_path / "git-calls.log"
    shim = tmp_path / "shim" / "git"
    write(shim, f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def commands(name: str) -> list[tuple[str, ...]]:
    return [("models:add", "--", name, "model.bin"), ("models:show", "--", name),
            ("models:show", "--", f"{name}:1"), ("models:log", "--", name),
            ("models:history", "--", name), ("models:tag", "--", "good", name),
            ("models:tag", "--", name, "production"), ("models:untag", "--", name, "staging"),
            ("models:get", "-o", "out.bin", "--", name), ("models:register", "--", name),
            ("models:diff", "--", "good", name), ("models:diff", "--", name, "good"),
            ("check", "--", name), ("check", "--", f"{name}:production")]


@pytest.mark.parametrize("case", BAD_NAMES)
def test_bad_names_are_refused_before_any_git_call(repo: Moma, git_log: Path,
                                                   case: str) -> None:
    name = BAD_NAMES[case]
    write(repo.root / "model.bin", "weights")
    before = snapshot(repo.root)
    for args in commands(name):
        res = repo.proc(*args, ok=False)
        line = assert_one_error(res, "invalid")
        assert len(line) < 200  # a 300-character name is not echoed whole
        assert not git_log.exists(), (args, git_log.read_text())
    assert not (repo.root / "PWNED").exists()
    assert_nothing_lost(repo.root, before)
