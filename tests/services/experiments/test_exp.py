"""`moma exp`: experiments in a throwaway work tree, recorded on hidden refs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import Moma, git
from moma_cli.core import experiments
from moma_cli.errors import ConfigError, PathError


def _state(repo: Moma) -> tuple[str, str, str]:
    """HEAD, the index and git status: what an experiment must leave as they were."""
    return (repo.git("rev-parse", "HEAD"), repo.git("ls-files", "-s"),
            repo.git("status", "--porcelain", "--ignored"))


def _show(repo: Moma) -> dict[str, dict]:
    return {e["name"]: e for e in json.loads(repo("exp", "show", "--json").stdout)}


def _no_temp_tree(repo: Moma) -> None:
    tmp = repo.root / ".moma/exps/tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []
    assert len(repo.git("worktree", "list").splitlines()) == 1


def test_exp_run_records_a_ref_and_leaves_the_work_tree_alone(pipe: Moma) -> None:
    before = _state(pipe)
    model = (pipe.root / "model.txt").read_bytes()
    pipe("exp", "run", "-S", "train.lr=0.5", "-n", "high-lr")
    assert _state(pipe) == before
    assert (pipe.root / "model.txt").read_bytes() == model
    _no_temp_tree(pipe)
    head = before[0].strip()
    ref = f"refs/moma/exps/{head}/high-lr"
    assert pipe.git("rev-parse", f"{ref}^") .strip() == head
    changed = pipe.git("diff", "--name-only", head, ref).split()
    assert changed == ["metrics.json", "model.txt.moma", "moma.lock", "params.yaml"]
    exp = _show(pipe)["high-lr"]
    assert exp["base"] == head
    assert exp["params"] == {"params.yaml:train.lr": 0.5}
    assert exp["metrics"] == {"metrics.json:score": 1.0}
    assert exp["exit"] == 0 and exp["duration"] > 0
    table = pipe("exp", "show").stdout
    assert "high-lr" in table and "train.lr" in table and "score" in table


def test_a_sweep_runs_the_grid(pipe: Moma) -> None:
    out = pipe("exp", "run", "-S", "train.lr=0.01,0.1", "-S", "params.yaml:train.depth=2,3",
               "-n", "grid", "--json").stdout
    assert [r["ok"] for r in json.loads(out)["runs"]] == [True] * 4
    found = _show(pipe)
    assert sorted(found) == ["grid-1", "grid-2", "grid-3", "grid-4"]
    seen = set()
    for exp in found.values():
        lr, depth = exp["params"]["params.yaml:train.lr"], exp["params"]["params.yaml:train.depth"]
        seen.add((lr, depth))
        assert exp["metrics"]["metrics.json:score"] == pytest.approx(lr * depth)
    assert seen == {(0.01, 2), (0.01, 3), (0.1, 2), (0.1, 3)}
    csv = pipe("exp", "show", "--csv").stdout.splitlines()
    assert csv[0].startswith("Experiment,Base,Created,") and len(csv) == 5
    _no_temp_tree(pipe)
    a, b = sorted(found, key=lambda n: (found[n]["params"]["params.yaml:train.lr"],
                                        found[n]["params"]["params.yaml:train.depth"]))[:2]
    rows = {(r["kind"], r["key"]): r for r in json.loads(
        pipe("exp", "diff", a, b, "--json").stdout)["rows"]}
    assert rows[("param", "params.yaml:train.depth")]["changed"]  # 2 -> 3, same lr
    assert not rows[("param", "params.yaml:train.lr")]["changed"]
    assert rows[("metric", "metrics.json:score")]["b"] == pytest.approx(0.03)
    table = pipe("exp", "diff", a, b).stdout
    assert "params.yaml:train.depth" in table and "+1" in table
    assert "params.yaml:train.lr" not in table  # unchanged rows only with --all
    assert "params.yaml:train.lr" in pipe("exp", "diff", a, b, "--all").stdout
    assert "no experiment 'nope'" in pipe("exp", "diff", a, "nope", ok=False).stderr


def test_apply_brings_params_and_outputs_from_the_cache(pipe: Moma) -> None:
    pipe("exp", "run", "-S", "train.lr=0.5", "-S", "train.depth=3", "-n", "best")
    index = pipe.git("ls-files", "-s")
    pipe("exp", "apply", "best")
    assert (pipe.root / "model.txt").read_bytes() == b"lr=0.5 depth=3\n"
    assert json.loads((pipe.root / "metrics.json").read_text()) == {"score": 1.5}
    assert "lr: 0.5" in (pipe.root / "params.yaml").read_text()
    assert pipe.git("ls-files", "-s") == index  # the work tree only
    # what the experiment recorded is what the pipeline makes from these params
    assert "Pipeline is up to date." in pipe("repro").stdout
    pipe("exp", "run", "-n", "again")  # unsaved changes do not stop a run...
    out = pipe("exp", "apply", "best", ok=False)  # ...but do stop an apply
    assert "unsaved changes" in out.stderr


def test_branch_and_remove(pipe: Moma) -> None:
    pipe("exp", "run", "-S", "train.lr=0.5", "-n", "keep")
    pipe("exp", "run", "-S", "train.lr=0.2", "-n", "drop")
    pipe("exp", "branch", "keep", "exp/keep")
    assert "lr: 0.5" in pipe.git("show", "exp/keep:params.yaml")
    assert pipe.git("rev-parse", "exp/keep^") == pipe.git("rev-parse", "HEAD")
    pipe("exp", "remove", "drop")
    assert sorted(_show(pipe)) == ["keep"]
    assert "no experiment 'drop'" in pipe("exp", "remove", "drop", ok=False).stderr
    assert "exists already" in pipe("exp", "run", "-n", "keep", ok=False).stderr


def test_a_failed_run_records_nothing_and_cleans_up(pipe: Moma) -> None:
    before = _state(pipe)
    out = pipe("exp", "run", "-S", "train.fail=false,true", "-n", "f", ok=False)
    assert "experiment f-2 failed, nothing recorded" in out.stderr
    assert sorted(_show(pipe)) == ["f-1"]
    assert _state(pipe) == before
    _no_temp_tree(pipe)


def test_gc_keeps_the_outputs_of_experiments(pipe: Moma) -> None:
    pipe("exp", "run", "-S", "train.lr=0.7", "-n", "kept")
    pipe("gc", "--workspace", "--force")
    pipe("exp", "apply", "kept")
    assert (pipe.root / "model.txt").read_bytes() == b"lr=0.7 depth=2\n"


def test_push_and_pull_share_experiments(pipe: Moma, tmp_path: Path) -> None:
    pipe("remote", "add", "storage", str(tmp_path / "storage"), "--default")
    pipe.git("commit", "-qam", "remote")
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    pipe.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    pipe.git("push", "-q", "origin", "HEAD:main")
    pipe("exp", "run", "-S", "train.lr=0.9", "-n", "shared")
    assert "1 experiments pushed" in pipe("exp", "push", "origin").stdout
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), "clone")
    clone = Moma(tmp_path / "clone")
    assert "no experiment 'other'" in clone("exp", "pull", "origin", "other", ok=False).stderr
    clone("exp", "pull", "origin")
    assert sorted(_show(clone)) == ["shared"]
    clone("exp", "apply", "shared")
    assert (clone.root / "model.txt").read_bytes() == b"lr=0.9 depth=2\n"


def test_overrides_and_their_grid() -> None:
    assert experiments.parse_override("conf/p.yaml:a.b=1,x") == experiments.Override(
        "conf/p.yaml", "a.b", (1, "x"))
    assert experiments.parse_override("lr=0.1").file == "params.yaml"
    for bad in ("lr", "=1", "lr=", ":lr=1", "../p.yaml:lr=1"):
        with pytest.raises((ConfigError, PathError)):
            experiments.parse_override(bad)
    grid = experiments.grid([experiments.Override("p", "a", (1, 2)),
                             experiments.Override("p", "b", (3,))])
    assert grid == [{("p", "a"): 1, ("p", "b"): 3}, {("p", "a"): 2, ("p", "b"): 3}]
    assert experiments.grid([]) == [{}]
    assert experiments.set_key({"a": {"b": 1}}, "a.c.d", 2, "p") == {"a": {"b": 1,
                                                                          "c": {"d": 2}}}
    with pytest.raises(ConfigError):
        experiments.set_key({"a": 1}, "a.b", 2, "p")


def test_the_record_round_trips_through_trailers(tmp_path: Path) -> None:
    record = experiments.Record({"p.yaml:a": "x y", "p.yaml:b": [1]}, {"m.json:acc": 0.9},
                                1.5, 0)
    text = experiments.message("e", record)
    pairs = tuple(tuple(part.strip() for part in line.split(":", 1))
                  for line in text.splitlines()[2:])
    assert experiments.parse_record(pairs) == experiments.Record(  # type: ignore[arg-type]
        record.params, record.metrics, 1.5, 0)
    assert experiments.split_ref("refs/moma/exps/" + "a" * 40 + "/Bad Name") is None


def test_show_lays_out_a_long_table_itself(pipe: Moma) -> None:
    """Over 200 rows `exp show` does not go through rich (0.7 s for 1,000): the same
    columns, aligned, and the terminal control characters in a value dropped."""
    base = pipe.git("rev-parse", "HEAD").strip()
    stream = b""
    for i in range(201):
        note = json.dumps("\x1b[31mred" if i == 7 else f"n{i}")
        message = (f"moma exp e{i}\n\nMoma-Param: params.yaml:train.note={note}\n"
                   f"Moma-Metric: metrics.json:score={i / 10}\nMoma-Exit: 0\n").encode()
        stream += (f"commit refs/moma/exps/{base}/e{i}\n"
                   f"committer A <a@example.com> {1_756_700_000 + i} +0000\n"
                   f"data {len(message)}\n").encode() + message + f"from {base}\n\n".encode()
    subprocess.run(["git", "fast-import", "--quiet"], cwd=pipe.root, input=stream, check=True)
    lines = pipe("exp", "show").stdout.splitlines()
    assert len(lines) == 202 and "\x1b" not in "".join(lines)
    header = lines[0].split()
    assert header == ["Experiment", "Base", "Created", "train.note", "score"]
    row = lines[1 + 7]
    assert row.split()[0] == "e7" and "[31mred" in row
    starts = {line.index(base[:10]) for line in lines[1:]}
    assert starts == {lines[0].index("Base")}  # one column, aligned under its header
    assert lines[-1].split()[-1] == "20.0"
