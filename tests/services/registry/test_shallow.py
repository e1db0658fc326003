"""Shallow clones (CI checkouts: GitHub Actions `fetch-depth: 1`, GitLab depth 20), made with a
real `git clone --depth N file://...` (a plain local path ignores --depth)."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from conftest import Moma, configure, git
from helpers import assert_one_error
from moma_cli.services import serve
from moma_cli.services.registry.index import RegistryIndex
from moma_cli.services.repo import open_repo

UNSHALLOW = "git fetch --unshallow"


def save_model(path: Path, depth: int) -> None:
    x = np.random.RandomState(0).rand(40, 3)
    if path.exists():
        path.unlink()  # never write through a checked-out link into the cache
    joblib.dump(DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x, x[:, 0] > 0.5),
                path)


@pytest.fixture
def origin(repo: Moma, tmp_path: Path) -> Moma:
    """clf v1, v2, v3 (each its own commit, pushed to a local remote); v1 is in staging,
    v3 in production and registered as v1.0.0."""
    repo("remote", "add", "storage", str(tmp_path / "storage"), "--default")
    configure(repo, {"clf": {"checks": ["accuracy >= 0.8"]}})
    for depth in (1, 2, 3):
        save_model(repo.root / "clf.joblib", depth)
        repo("models:add", "clf", "clf.joblib", "--metric", f"accuracy=0.8{depth}")
        repo.git("add", "-A")
        repo.git("commit", "-qm", f"clf depth {depth}")
    repo("push")
    repo("models:tag", "clf:1", "staging")
    repo("models:tag", "clf:3", "production")
    repo("models:register", "clf:3", "--semver", "v1.0.0")
    return repo


def commits(moma: Moma) -> list[str]:
    """The version commits, oldest first (every commit after `moma init`)."""
    return moma.git("rev-list", "--reverse", "HEAD").split()[1:]


def shallow_clone(origin: Moma, tmp_path: Path, depth: int = 1, name: str = "ci") -> Moma:
    git(tmp_path, "clone", "-q", f"--depth={depth}", f"file://{origin.root}", name)
    clone = Moma(tmp_path / name)
    assert is_shallow(clone)
    return clone


def is_shallow(moma: Moma) -> bool:
    return moma.git("rev-parse", "--is-shallow-repository").strip() == "true"


def tagged(moma: Moma, tag: str) -> str:
    return moma.git("rev-parse", f"{tag}^{{commit}}").strip()


@pytest.mark.parametrize("depth", [1, 2])
def test_numbering_versions_deepens_a_shallow_clone_first(origin: Moma, tmp_path: Path,
                                                          depth: int) -> None:
    """`models:tag clf:1 production` in a --depth 1 clone tagged the real v3."""
    # a GTO tag on another branch, which a single-branch clone does not follow: the next
    # counter must still be above it
    origin.git("checkout", "-q", "-b", "experiment")
    origin.git("commit", "-q", "--allow-empty", "-m", "experiment")
    origin.git("tag", "-a", "-m", "Assigning stage 'dev'", "clf#dev#7")
    origin.git("checkout", "-q", "main")
    clone = shallow_clone(origin, tmp_path, depth)
    res = clone("models:tag", "clf:1", "production")
    notes = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and UNSHALLOW in notes[0] and "origin" in notes[0], res.stderr
    assert not is_shallow(clone)
    assert tagged(clone, "clf#production#8") == commits(origin)[0]
    assert [(v["version"], v["commit"]) for v in json.loads(
        clone("models:log", "clf", "--json").stdout)["versions"]] == [
        (3, commits(origin)[2]), (2, commits(origin)[1]), (1, commits(origin)[0])]
    assert clone("models:tag", "clf:3", "dev").stderr == ""  # deepened once


REFUSED = [
    ["models:list"], ["models:log", "clf"], ["models:show", "clf:1"], ["models:show", "clf"],
    ["models:history", "clf"], ["models:diff", "clf:1", "clf:2"],
    ["models:tag", "clf:1", "production"], ["models:untag", "clf", "production"],
    # a new tag's counter must be above every tag's, and a shallow clone lacks some
    ["models:tag", "clf:production", "canary"],
    ["models:register", "clf:1"], ["models:get", "clf:2", "-o", "out.joblib"],
    ["check"], ["lineage", "clf:1"]]


@pytest.mark.parametrize("origin_url", [None, "file:///nonexistent/repo.git", "shallow"],
                         ids=["no-origin", "origin-unreachable", "origin-shallow-too"])
def test_numbering_versions_without_a_reachable_origin_is_refused(
        origin: Moma, tmp_path: Path, origin_url: str | None) -> None:
    clone = shallow_clone(origin, tmp_path)
    if origin_url is None:
        clone.git("remote", "remove", "origin")
    elif origin_url == "shallow":  # the fetch succeeds, and the clone is still shallow
        mirror = shallow_clone(origin, tmp_path, depth=2, name="mirror")
        clone.git("remote", "set-url", "origin", f"file://{mirror.root}")
    else:
        clone.git("remote", "set-url", "origin", origin_url)
    tags = clone.git("tag", "-l")
    for command in REFUSED:
        res = clone(*command, ok=False)
        assert_one_error(res, "shallow clone", "whole history")
        assert UNSHALLOW in res.stderr, command
        assert ("fetch-depth: 0" in res.stderr) == (origin_url != "shallow"), res.stderr
    assert clone.git("tag", "-l") == tags and not (clone.root / "out.joblib").exists()
    assert is_shallow(clone)


def test_stage_and_semver_refs_resolve_from_the_tags_of_a_shallow_clone(
        origin: Moma, tmp_path: Path) -> None:
    """What CI deploys and gates (`NAME:production`, `NAME@v1.0.0`) names a commit: no
    history needed, so nothing is fetched, even with no origin to fetch from."""
    clone = shallow_clone(origin, tmp_path)
    clone.git("remote", "set-url", "origin", "file:///nonexistent/repo.git")
    v3 = commits(origin)[2]
    oid = open_repo(origin.root).load_pointer("clf.joblib.moma").oid
    for ref in ("clf:production", "clf@v1.0.0"):
        shown = json.loads(clone("models:show", ref, "--json").stdout)
        assert (shown["commit"], shown["oid"], shown["version"]) == (v3, oid, None)
        assert (shown["stages"], shown["semvers"], shown["uncommitted"]) == (
            ["production"], ["v1.0.0"], False)
        assert shown["metrics"] == {"accuracy": 0.83}
    assert "Model-Version: unknown (shallow clone)" in clone("models:show",
                                                            "clf:production").stdout
    clone("models:get", "clf:production", "-o", str(tmp_path / "prod.joblib"))
    assert (tmp_path / "prod.joblib").read_bytes() == (origin.root / "clf.joblib").read_bytes()
    checked = json.loads(clone("check", "clf:production", "--json").stdout)
    assert checked["ok"] is True and checked["models"][0]["oid"] == oid
    _server, report = serve.prepare(open_repo(clone.root), ["clf:production"], poll=0)
    assert report.added == ["clf:production"]
    assert is_shallow(clone)
    # v1's staging tag is on a commit the clone does not have, so git did not fetch it
    res = clone("models:show", "clf:staging", ok=False)
    assert_one_error(res, "no version of clf is in stage 'staging'", "shallow clone")
    assert "git fetch --tags" in res.stderr
    clone.git("remote", "set-url", "origin", f"file://{origin.root}")
    clone.git("fetch", "-q", "--depth=1", "--tags", "origin")
    shown = json.loads(clone("models:show", "clf:staging", "--json").stdout)
    assert shown["commit"] == commits(origin)[0] and shown["metrics"] == {"accuracy": 0.81}


def test_a_history_read_while_shallow_is_never_reused(origin: Moma, tmp_path: Path) -> None:
    """The index is keyed by tip commit, which deepening does not change: a history read
    while shallow (by this or an older moma) must not survive the clone being deepened."""
    clone = shallow_clone(origin, tmp_path)
    clone.git("remote", "remove", "origin")
    clone("models:get", "clf:production", "-o", str(tmp_path / "prod.joblib"))  # makes .moma/
    clone("models:log", "clf", ok=None)
    # what an older moma cached here: the history as far as the shallow boundary
    index = RegistryIndex(open_repo(clone.root))
    tip = clone.git("rev-parse", "HEAD").strip()
    order = index.repo.git.first_parent_order(tip)
    index.data = {"version": 1, "blobs": {},
                  "chains": {tip: {"commits": index._log(tip), "order": order}}}
    index.dirty = True
    index.save()
    clone.git("remote", "add", "origin", f"file://{origin.root}")
    clone.git("fetch", "-q", "--unshallow", "origin")
    versions = json.loads(clone("models:log", "clf", "--json").stdout)["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]


def test_push_from_a_shallow_clone_sends_the_staged_versions_it_has(origin: Moma,
                                                                     tmp_path: Path) -> None:
    """CI trains and pushes from a --depth 1 clone: push (which also sends what the
    registry's tags point at) reads the stages from the tags, and fetches no history."""
    clone = shallow_clone(origin, tmp_path)
    clone.git("remote", "remove", "origin")
    clone("pull")
    clone("remote", "add", "fresh", str(tmp_path / "fresh"), "--local")
    clone("push", "-r", "fresh")
    assert clone("status", "-r", "fresh").exit_code == 0
    oid = open_repo(origin.root).load_pointer("clf.joblib.moma").oid
    assert (tmp_path / "fresh" / "blake3" / oid[:2] / oid[2:]).exists()
    assert is_shallow(clone)
