"""The hooks in .pre-commit-hooks.yaml, run by the real pre-commit tool (`try-repo`), which
pip-installs moma from a clone of this project into its own environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT, Moma, configure, git, register_model, write

PROJECT = PROJECT
# pre-commit pip-installs moma and its dependencies. The sealed HOME hides the real user's
# pip configuration (index mirrors) and download cache, which turns seconds into minutes, so
# both are read here, at import, before any test replaces HOME. They only say where packages
# come from; nothing else of the user's environment reaches the test.
_USER_PIP_CONF = Path.home() / ".config" / "pip" / "pip.conf"
PIP_ENV = {"PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")}
if _USER_PIP_CONF.exists() and "PIP_CONFIG_FILE" not in os.environ:
    PIP_ENV["PIP_CONFIG_FILE"] = str(_USER_PIP_CONF)


@pytest.fixture(scope="session")
def project_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """try-repo installs HEAD of a repository: a clean clone makes that this commit."""
    clone = tmp_path_factory.mktemp("project") / "moma"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(clone)], check=True)
    return clone


def test_hooks_through_the_real_pre_commit(repo: Moma, project_clone: Path) -> None:
    # try-repo builds a fresh hook environment on every call (its store is a temp dir), so
    # one call runs all three hooks, each with something to catch.
    configure(repo, {"credit-risk": {"checks": ["accuracy >= 0.8"]}})
    register_model(repo, "credit-risk", {"accuracy": 0.6})  # a good pointer, a failing gate
    write(repo.root / "data.bin", b"x" * 600 * 1024)
    write(repo.root / "bad.moma", "moma: 1\nhash: md5\n")
    git(repo.root, "add", "data.bin", "bad.moma")
    out = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(project_clone), "--files",
         "data.bin", "bad.moma", "credit-risk.pkl.moma", ".moma.yaml"],
        cwd=repo.root, env=os.environ | PIP_ENV, capture_output=True, text=True, timeout=600)
    assert out.returncode == 1
    hooks = dict(re.findall(r"^(moma pointers|no large files|moma quality gates)\b.*?"
                            r"(Passed|Failed)$", out.stdout, re.MULTILINE))
    assert hooks == {"moma pointers": "Failed", "no large files": "Failed",
                     "moma quality gates": "Failed"}, out.stdout
    assert "data.bin: 600 KiB is over the 500 KiB limit" in out.stdout
    assert "git rm --cached data.bin && moma add data.bin" in out.stdout
    assert "bad.moma: unknown or missing hash algorithm 'md5'" in out.stdout
    assert "credit-risk.pkl.moma" not in out.stdout  # the good pointer passes
    assert "quality gate failed for credit-risk" in out.stdout
