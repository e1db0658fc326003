"""`moma check --heal`: a real pipeline (train, then evaluate) retrains a failing model; the
new version is kept only when it passes, else every output, pointer and the lock go back."""

from __future__ import annotations

import json
import sys

from conftest import Moma, configure, write
from moma_cli.services.repo import open_repo

TRAIN = "import pathlib; k = pathlib.Path('knob.txt').read_text(); " \
        "pathlib.Path('model.pkl').write_text('model trained with ' + k)"
EVALUATE = "import json, pathlib; k = float(pathlib.Path('model.pkl').read_text().split()[-1]); " \
           "pathlib.Path('metrics.json').write_text(json.dumps({'latency_ms': k}))"


def pipeline(moma: Moma, knob: str) -> None:
    """train writes model.pkl from knob.txt; evaluate measures it into metrics.json."""
    write(moma.root / "knob.txt", knob)
    write(moma.root / "train.py", TRAIN)
    write(moma.root / "evaluate.py", EVALUATE)
    moma.git("add", "knob.txt", "train.py", "evaluate.py")
    moma("run", "-n", "train", "-d", "train.py", "-o", "model.pkl", "--",
         sys.executable, "train.py")
    moma("run", "-n", "evaluate", "-d", "model.pkl", "-d", "evaluate.py", "-M", "metrics.json",
         "--", sys.executable, "evaluate.py")
    repo = open_repo(moma.root)
    ptr = repo.load_pointer("model.pkl.moma")
    repo.write_pointer(ptr.with_extra(model={"name": "credit-risk",
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
    assert ptr.model is not None and ptr.model["metrics"] == {"latency_ms": 30.0}
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
    assert {p: (repo.root / p).read_bytes() for p in before} == before
    assert repo.git("rev-parse", "HEAD") == head
    assert repo.git("status", "--porcelain") == ""
    assert repo("status").exit_code == 0  # data matches its pointers again
