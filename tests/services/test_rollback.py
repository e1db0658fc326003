"""`moma check --rollback`: a production version whose live inputs drift past a `rollback`
condition hands the stage back to the newest earlier version that passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import Moma, write

FEATURES = ["a", "b"]
POLICY = ("models:\n  clf:\n    checks:\n      - 'accuracy >= 0.8'\n"
          "      - {metric: drift.psi.max, op: '<', value: 0.2, on_fail: rollback}\n")


def register(repo: Moma, content: bytes, accuracy: float) -> None:
    (repo.root / "clf.bin").write_bytes(content)
    repo("models:add", "clf", "clf.bin", "--reference", "train.csv",
         "--metric", f"accuracy={accuracy}")
    repo.git("commit", "-qm", f"clf at {accuracy}")


@pytest.fixture
def staged(repo: Moma) -> Moma:
    rng = np.random.default_rng(0)
    rows = rng.normal(0, 1, (500, 2))
    write(repo.root / "train.csv", "a,b\n" + "".join(f"{x},{y}\n" for x, y in rows))
    with open(repo.root / ".moma.yaml", "a") as fh:
        fh.write(POLICY)
    repo.git("add", ".moma.yaml")
    register(repo, b"version one", 0.9)
    register(repo, b"version two", 0.91)
    repo("models:tag", "clf:2", "production")
    return repo


def log_for(repo: Moma, ref: str, shift: float, path: Path) -> Path:
    """Prediction-log lines (the format moma serve writes) answered by `ref`."""
    oid = json.loads(repo("models:show", ref, "--json").stdout)["oid"]
    rng = np.random.default_rng(1)
    with open(path, "a") as fh:
        for x, y in rng.normal(shift, 1, (300, 2)):
            fh.write(json.dumps({"format": 1, "ts": "2026-12-03T00:00:00.000Z", "model": "clf",
                                 "oid": oid, "features": {"a": x, "b": y},
                                 "prediction": 1}) + "\n")
    return path


def production(repo: Moma) -> Any:
    listed = json.loads(repo("models:list", "--json").stdout)["models"]
    return next(m for m in listed if m["name"] == "clf")["stage"]["production"]


def test_drift_past_a_rollback_condition_moves_production_back(staged: Moma,
                                                               tmp_path: Path) -> None:
    log = log_for(staged, "clf:production", 3.0, tmp_path / "preds.jsonl")
    plain = staged("check", "clf:production", "--live", str(log), ok=False)
    assert plain.exit_code == 1 and production(staged) == 2  # reported, nothing moved

    res = staged("check", "clf:production", "--live", str(log), "--rollback", ok=False)
    assert res.exit_code == 1
    assert "rollback clf: production rolled back from v2 to v1" in res.stdout
    assert production(staged) == 1
    history = json.loads(staged("models:history", "clf", "--json").stdout)["events"]
    last = history[-1]
    assert last["action"] == "assign" and last["version"] == 1
    assert "rollback of v2: drift.psi.max < 0.2" in json.dumps(last)


def test_stable_traffic_rolls_nothing_back(staged: Moma, tmp_path: Path) -> None:
    log = log_for(staged, "clf:production", 0.0, tmp_path / "preds.jsonl")
    out = json.loads(staged("check", "clf:production", "--live", str(log), "--rollback",
                            "--json").stdout)
    assert out["ok"] and out["rollbacks"] == []
    assert production(staged) == 2


def test_no_passing_earlier_version_leaves_the_stage_and_says_so(repo: Moma,
                                                                 tmp_path: Path) -> None:
    write(repo.root / "train.csv", "a,b\n" + "".join(f"{i},{-i}\n" for i in range(200)))
    with open(repo.root / ".moma.yaml", "a") as fh:
        fh.write(POLICY)
    repo.git("add", ".moma.yaml")
    register(repo, b"version one", 0.5)  # fails accuracy: no place to go back to
    register(repo, b"version two", 0.9)
    repo("models:tag", "clf:2", "production")
    log = log_for(repo, "clf:production", 500.0, tmp_path / "preds.jsonl")
    res = repo("check", "clf:production", "--live", str(log), "--rollback", ok=False)
    assert res.exit_code == 1
    assert "no version older than v2 passes its conditions; production left on v2" in res.stderr
    assert production(repo) == 2
