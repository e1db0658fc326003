"""GTO reads the registry moma writes, and moma reads the tags GTO writes.

The real `gto` runs from its own virtualenv (its pins clash with ours), built once per
machine outside the repository and reused by every later run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_models import commit, save_model, show

from conftest import Moma, configure
from realtools import tool_venv

GTO_VERSION = "1.10.1"


@pytest.fixture(scope="session")
def gto_bin() -> Path:
    return tool_venv("gto", GTO_VERSION) / "gto"


def gto(gto_bin: Path, repo: Moma, *args: str) -> str:
    proc = subprocess.run([str(gto_bin), *args], cwd=repo.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def at(monkeypatch: pytest.MonkeyPatch, second: int) -> None:
    """GTO orders events by tag time in seconds: give each tag its own second."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"2026-09-01T13:16:{second:02d}+0530")


def test_gto_reads_moma_and_moma_reads_gto(repo: Moma, gto_bin: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for depth in (2, 4):
        save_model(repo.root / "model.joblib", depth)
        repo("models:add", "credit-risk", "model.joblib")
        commit(repo, f"depth {depth}")
    at(monkeypatch, 1)
    repo("models:register", "credit-risk:1", "--semver", "v1.0.0")
    at(monkeypatch, 2)
    repo("models:register", "credit-risk:2", "--semver", "v1.1.0")
    at(monkeypatch, 3)
    repo("models:tag", "credit-risk:1", "production")
    at(monkeypatch, 4)
    repo("models:tag", "credit-risk:2", "staging")
    at(monkeypatch, 5)
    repo("models:tag", "credit-risk:2", "production")

    state = json.loads(gto(gto_bin, repo, "show", "--json"))
    assert state["credit-risk"]["version"] == "v1.1.0"
    assert state["credit-risk"]["stage"] == {"production": "v1.1.0", "staging": "v1.1.0"}
    versions = json.loads(gto(gto_bin, repo, "show", "credit-risk", "--json"))
    assert {v["version"] for v in versions} >= {"v1.0.0", "v1.1.0"}
    events = json.loads(gto(gto_bin, repo, "history", "credit-risk", "--json"))
    assignments = sorted((e["timestamp"], e["stage"], e["version"]) for e in events
                         if e["event"] == "assignment")
    assert [(s, v) for _, s, v in assignments] == [
        ("production", "v1.0.0"), ("staging", "v1.1.0"), ("production", "v1.1.0")]
    moma_stages = {v["version"]: v["stages"] for v in json.loads(
        repo("models:log", "credit-risk", "--json").stdout)["versions"]}
    assert moma_stages == {2: ["production", "staging"], 1: []}

    # GTO writes: a third version registered and promoted by gto, a stage unassigned by gto
    save_model(repo.root / "model.joblib", 6)
    repo("models:add", "credit-risk", "model.joblib")
    commit(repo, "depth 6")
    at(monkeypatch, 6)
    gto(gto_bin, repo, "register", "credit-risk", "HEAD", "--version", "v1.2.0")
    at(monkeypatch, 7)
    gto(gto_bin, repo, "assign", "credit-risk", "--version", "v1.2.0", "--stage", "production")
    at(monkeypatch, 8)
    gto(gto_bin, repo, "deprecate", "credit-risk", "v1.1.0", "staging")
    production = show(repo, "credit-risk:production")
    assert (production["version"], production["semvers"]) == (3, ["v1.2.0"])
    assert show(repo, "credit-risk@v1.2.0")["version"] == 3
    assert "staging" not in show(repo, "credit-risk:2")["stages"]
    history = json.loads(repo("models:history", "credit-risk", "--json").stdout)["events"]
    assert [(e["action"], e["stage"], e["version"]) for e in history if e["tag"]][-3:] == [
        ("register", None, 3), ("assign", "production", 3), ("unassign", "staging", 2)]
    # and GTO agrees with the state moma computed
    state = json.loads(gto(gto_bin, repo, "show", "--json"))["credit-risk"]
    assert state["stage"] == {"production": "v1.2.0"}

    at(monkeypatch, 9)
    gto(gto_bin, repo, "deprecate", "credit-risk")
    assert json.loads(repo("models:list", "--json").stdout)["models"] == []
    listed = json.loads(repo("models:list", "--all", "--json").stdout)["models"]
    assert [m["name"] for m in listed] == ["credit-risk"]


def test_gto_reads_a_forced_stage_and_moma_deprecation(repo: Moma, gto_bin: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An override's trailers leave GTO's reading of the tag as it was: an assignment."""
    save_model(repo.root / "model.joblib", 2)
    repo("models:add", "credit-risk", "model.joblib", "--metric", "accuracy=0.7")
    at(monkeypatch, 0)  # GTO counts the commit as an event: a deprecation must come later
    sha = commit(repo, "depth 2")
    configure(repo, {"credit-risk": {"checks": ["accuracy >= 0.8"]}})
    at(monkeypatch, 1)
    repo("models:tag", "credit-risk:1", "production", "--force", "-m", "hotfix")
    assert json.loads(gto(gto_bin, repo, "show", "--json"))["credit-risk"]["stage"] == {
        "production": sha}
    event = json.loads(gto(gto_bin, repo, "check-ref", "credit-risk#production#1", "--json"))
    assert (event["event"], event["stage"], event["commit_hexsha"]) == (
        "assignment", "production", sha)
    assert repo("models:check-ref", "credit-risk#production#1", "--json").stdout.count(
        "hotfix") == 1
    at(monkeypatch, 2)
    repo("models:deprecate", "credit-risk")
    assert json.loads(gto(gto_bin, repo, "show", "--json")) == {}
    event = json.loads(gto(gto_bin, repo, "check-ref", "credit-risk@deprecated#2", "--json"))
    assert (event["event"], event["artifact"]) == ("deprecation", "credit-risk")
