"""`moma check --heal`: a real pipeline (train, then evaluate) retrains a failing model; the
new version is kept only when it passes, else every output, pointer and the lock go back."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from conftest import Moma, configure, write
from helpers import with_sections
from moma_cli.services.repo import open_repo

TRAIN = "import pathlib; k = pathlib.Path('knob.txt').read_text(); " \
        "pathlib.Path('model.pkl').write_text('model trained with ' + k)"
EVALUATE = "import json, pathlib; k = float(pathlib.Path('model.pkl').read_text().split()[-1]); " \
           "pathlib.Path('metrics.json').write_text(json.dumps({'latency_ms': k}))"


def pipeline(moma: Moma, knob: str, *deps: str) -> None:
    """train writes model.pkl from knob.txt (and `deps`); evaluate measures it into
    metrics.json."""
    write(moma.root / "knob.txt", knob)
    write(moma.root / "train.py", TRAIN)
    write(moma.root / "evaluate.py", EVALUATE)
    moma.git("add", "knob.txt", "train.py", "evaluate.py", *deps)
    moma("run", "-n", "train", "-d", "train.py", *(a for d in deps for a in ("-d", d)),
         "-o", "model.pkl", "--", sys.executable, "train.py")
    moma("run", "-n", "evaluate", "-d", "model.pkl", "-d", "evaluate.py", "-M", "metrics.json",
         "--", sys.executable, "evaluate.py")
    repo = open_repo(moma.root)
    ptr = repo.load_pointer("model.pkl.moma")
    repo.write_pointer(with_sections(ptr, model={"name": "credit-risk",
                                             "metrics": {"latency_ms": float(knob)}}))
    configure(moma, {"credit-risk": {
        "checks": [{"metric": "latency_ms", "op": "<", "value": 50, "on_fail": "retrain"}],
        "retrain": {"every": "7d", "stage": "train"}}})
    moma.git("add", "-A")
    moma.git("commit", "-qm", "pipeline")


def test_heal_keeps_a_retrained_version_that_passes(repo: Moma) -> None:
    pipeline(repo, "80")
    old_oid = open_repo(repo.root).load_pointer("model.pkl.moma").oid
    write(repo.root / "knob.txt", "30")  # the fix: e.g. fresh data
    repo.git("commit", "-qam", "new data")
    out = repo("check", "--heal", "--json")
    doc = json.loads(out.stdout)
    [heal] = doc["heals"]
    assert heal["healed"] is True and heal["stage"] == "train"
    ptr = open_repo(repo.root).load_pointer("model.pkl.moma")
    assert ptr.oid != old_oid and heal["oid"] == ptr.oid
    assert ptr.model is not None and ptr.model.metrics == {"latency_ms": 30.0}
    [model] = doc["models"]  # re-checked after healing
    assert (model["needs_retrain"], model["conditions"][0]["actual"]) == (False, 30.0)
    assert repo.git("log", "-1", "--format=%H %s").split(" ", 1) == [
        heal["commit"], "Retrain credit-risk with stage train (moma check --heal)\n"]
    assert (repo.root / "model.pkl").read_text() == "model trained with 30"
    assert repo.git("status", "--porcelain") == ""
    # registered through the registry: the next version, with the new metrics
    shown = json.loads(repo("models:show", "credit-risk", "--json").stdout)
    assert (heal["version"], model["version"], shown["version"]) == (2, 2, 2)
    assert shown["metrics"] == {"latency_ms": 30.0} and shown["encoding"] is not None
    assert shown["commit"] == heal["commit"]


def reference_of(moma: Moma) -> dict[str, Any]:
    ptr = open_repo(moma.root).load_pointer("model.pkl.moma")
    return dict(ptr.model.reference or {}) if ptr.model is not None else {}


def test_the_healed_version_gets_the_reference_profile_of_its_training_data(
        repo: Moma) -> None:
    write(repo.root / "train.csv", "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(100)))
    pipeline(repo, "80")
    repo("models:add", "credit-risk", "model.pkl", "--reference", "train.csv", "--target", "y")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "with its reference")
    old = reference_of(repo)
    write(repo.root / "knob.txt", "30")
    write(repo.root / "train.csv", "a,y\n" + "".join(f"{i * 10},{i % 3}\n" for i in range(100)))
    repo.git("commit", "-qam", "new data")
    assert json.loads(repo("check", "--heal", "--json").stdout)["heals"][0]["version"] == 2
    new = reference_of(repo)
    assert (new["source"], new["target"], new["columns"]) == ("train.csv", "y", ["a"])
    assert new["features"]["a"]["edges"] == [e * 10 for e in old["features"]["a"]["edges"]]
    assert new["prediction"]["categories"] == ["0", "1", "2"]
    log = write(repo.root / "preds.jsonl", "")
    assert "has no reference profile" not in repo("monitor", "credit-risk", "--log",
                                                  str(log)).stderr


def test_without_a_previous_reference_the_stages_data_input_is_profiled(repo: Moma) -> None:
    write(repo.root / "rows.csv", "a,b\n" + "".join(f"{i},{-i}\n" for i in range(50)))
    pipeline(repo, "80", "rows.csv")
    assert reference_of(repo) == {}
    write(repo.root / "knob.txt", "30")
    repo.git("commit", "-qam", "new data")
    repo("check", "--heal")
    new = reference_of(repo)
    assert (new["source"], new["columns"], new["rows"]) == ("rows.csv", ["a", "b"], 50)
    assert "target" not in new and "prediction" not in new


def test_heal_that_cannot_pass_leaves_everything_untouched(repo: Moma) -> None:
    pipeline(repo, "80")
    write(repo.root / "knob.txt", "90")  # retraining makes it worse
    repo.git("commit", "-qam", "worse data")
    before = {p: (repo.root / p).read_bytes()
              for p in ("model.pkl", "model.pkl.moma", "moma.lock", "metrics.json")}
    head = repo.git("rev-parse", "HEAD")
    out = repo("check", "--heal", ok=False)
    assert "heal credit-risk: retrained model still fails latency_ms < 50; previous version " \
           "kept" in out.stderr
    assert "heal failed for credit-risk" in out.stderr
    assert "All blocking conditions pass." not in out.stdout  # it exits 1: say so
    assert {p: (repo.root / p).read_bytes() for p in before} == before
    assert repo.git("rev-parse", "HEAD") == head
    assert repo.git("status", "--porcelain") == ""
    assert repo("status").exit_code == 0  # data matches its pointers again


def test_heal_to_identical_bytes_is_no_new_version_and_says_so(
        repo: Moma, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale model whose stage is deterministic retrains to the same bytes: no commit (a
    daily cron would add one a day), the model stays stale, and the summary says so."""
    old = "2020-01-01T00:00:00+00:00"
    with monkeypatch.context() as env:
        env.setenv("GIT_COMMITTER_DATE", old)
        env.setenv("GIT_AUTHOR_DATE", old)
        pipeline(repo, "30")  # passes its condition, but is older than retrain.every
    files = ("model.pkl", "model.pkl.moma", "moma.lock", "metrics.json")
    before = {p: (repo.root / p).read_bytes() for p in files}
    head = repo.git("rev-parse", "HEAD")
    for _ in range(2):  # the next day's run is no different
        out = repo("check", "--heal", ok=False)
        assert "heal credit-risk: retraining gave the same bytes (" in out.stderr
        assert "): not a new version; previous version kept" in out.stderr
        assert "All blocking conditions pass." not in out.stdout
        assert "heal failed for credit-risk" in out.stderr
        assert repo.git("rev-parse", "HEAD") == head
        assert {p: (repo.root / p).read_bytes() for p in files} == before
        assert repo.git("status", "--porcelain") == ""
    doc = json.loads(repo("check", "--heal", "--json", ok=False).stdout)
    [heal], [model] = doc["heals"], doc["models"]
    assert (heal["healed"], heal["version"], heal["commit"]) == (False, None, None)
    assert (model["version"], model["stale"]) == (1, True)
