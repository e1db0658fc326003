"""Stages, the DAG and its errors, repro decisions, diff and add-time lineage, using fast
shell commands (the sklearn pipeline is in test_pipeline.py)."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import Moma, write
from moma_cli import yamlio
from moma_cli.core import params, pointer
from moma_cli.core.stages import PipelineError, build_dag, parse_stages


def _stages(repo: Moma, stages: dict) -> None:
    doc = yamlio.loads((repo.root / ".moma.yaml").read_text())
    write(repo.root / ".moma.yaml", yamlio.dumps({**doc, "stages": stages}))


def _copy_stage(repo: Moma) -> None:
    write(repo.root / "in.txt", "hello\n")
    repo("run", "-n", "double", "-d", "in.txt", "-o", "out.txt", "--",
         "echo ran >> runs.log; cat in.txt in.txt > out.txt")


def test_dag_text_mermaid_and_json(repo: Moma) -> None:
    write(repo.root / "raw.csv", "1\n")
    _stages(repo, {
        "prepare": {"cmd": "cp raw.csv data.csv", "deps": ["raw.csv"], "outs": ["data.csv"]},
        "train": {"cmd": "cp data.csv model.bin", "deps": ["data.csv"], "outs": ["model.bin"]},
        "evaluate": {"cmd": "true", "deps": ["model.bin", "data.csv"],
                     "metrics": ["m.json"]},
    })
    lines = repo("dag").stdout.splitlines()
    assert lines[0].rstrip() == "prepare"
    assert lines[1].split() == ["train", "<-", "prepare", "(data.csv)"]
    assert lines[2].startswith("evaluate") and "train (model.bin)" in lines[2]
    mermaid = repo("dag", "--mermaid").stdout
    assert mermaid.startswith("flowchart TD\n")
    assert "s_prepare --> s_train" in mermaid and "s_train --> s_evaluate" in mermaid
    graph = json.loads(repo("dag", "--json").stdout)
    assert graph["stages"] == ["prepare", "train", "evaluate"]


@pytest.mark.parametrize(("stages", "message"), [
    ({"a": {"cmd": "true", "deps": ["y"], "outs": ["x"]},
      "b": {"cmd": "true", "deps": ["x"], "outs": ["y"]}},
     "pipeline has a cycle: a -> b -> a"),
    ({"a": {"cmd": "true", "deps": ["seed.txt"], "outs": ["out"]},
      "b": {"cmd": "true", "deps": ["seed.txt"], "outs": ["out/part"]}},
     "output 'out/part' of stage 'b' overlaps output 'out' of stage 'a'"),
    ({"a": {"cmd": "true", "deps": ["seed.txt"], "outs": ["x"]},
      "b": {"cmd": "true", "deps": ["nowhere.csv"], "outs": ["y"]}},
     "dependency 'nowhere.csv' of stage 'b' does not exist and no stage produces it"),
    ({"a": {"cmd": "true", "deps": ["seed.txt"], "outs": ["x"], "outz": []}},
     "stage 'a': unknown key 'outz'"),
])
def test_pipeline_errors_come_before_anything_runs(repo: Moma, stages: dict,
                                                   message: str) -> None:
    write(repo.root / "seed.txt", "s")
    for stage in stages.values():
        stage["cmd"] = "touch ran.marker"
    _stages(repo, stages)
    res = repo("repro", ok=False)
    assert message in res.stderr
    assert "hint:" in res.stderr
    assert not (repo.root / "ran.marker").exists()
    assert message in repo("dag", ok=False).stderr


def test_run_caches_output_and_repro_restores_instead_of_rerunning(repo: Moma) -> None:
    _copy_stage(repo)
    assert (repo.root / "out.txt").read_text() == "hello\nhello\n"
    assert (repo.root / "out.txt.moma").exists()
    repo.git("commit", "-qm", "stage")
    (repo.root / "out.txt").unlink()
    res = repo("repro", "--dry")
    assert "Would restore stage double: out.txt" in res.stdout
    assert not (repo.root / "out.txt").exists()
    res = repo("repro")
    assert "Restored stage double: out.txt" in res.stdout
    assert (repo.root / "out.txt").read_text() == "hello\nhello\n"
    assert (repo.root / "runs.log").read_text() == "ran\n"

    write(repo.root / "in.txt", "changed\n")
    res = repo("repro")
    assert "Ran stage double: dependency in.txt changed" in res.stdout
    assert (repo.root / "out.txt").read_text() == "changed\nchanged\n"
    assert (repo.root / "runs.log").read_text() == "ran\nran\n"
    assert "Pipeline is up to date." in repo("repro").stdout
    res = repo("repro", "--force", "--dry")
    assert "Would run stage double: forced" in res.stdout


def test_touching_a_dependency_without_changing_it_runs_nothing(repo: Moma) -> None:
    _copy_stage(repo)
    write(repo.root / "in.txt", "hello\n")  # new mtime, same bytes
    assert "Pipeline is up to date." in repo("repro").stdout
    assert (repo.root / "runs.log").read_text() == "ran\n"


def test_command_change_and_failure(repo: Moma) -> None:
    _copy_stage(repo)
    lock_before = (repo.root / "moma.lock").read_text()
    doc = yamlio.loads((repo.root / ".moma.yaml").read_text())
    doc["stages"]["double"]["cmd"] = "exit 3"
    write(repo.root / ".moma.yaml", yamlio.dumps(doc))
    assert "Would run stage double: command changed" in repo("repro", "--dry").stdout
    res = repo("repro", ok=False)
    assert "stage 'double' failed: command exited with 3" in res.stderr
    assert (repo.root / "moma.lock").read_text() == lock_before


def test_run_refuses_redefinition_and_git_tracked_outputs(repo: Moma) -> None:
    _copy_stage(repo)
    res = repo("run", "-n", "double", "-d", "in.txt", "-o", "out.txt", "--", "true", ok=False)
    assert "already exists with a different definition" in res.stderr
    repo("run", "-n", "double", "-f", "-d", "in.txt", "-o", "out.txt", "--",
         "cat in.txt > out.txt")
    assert (repo.root / "out.txt").read_text() == "hello\n"
    write(repo.root / "kept.txt", "in git")
    repo.git("add", "kept.txt")
    res = repo("run", "-n", "clobber", "-d", "in.txt", "-o", "kept.txt", "--",
               "echo x > kept.txt", ok=False)
    assert "already tracked by git" in res.stderr
    assert (repo.root / "kept.txt").read_text() == "in git"
    assert "clobber" not in (repo.root / ".moma.yaml").read_text()


def test_missing_output_not_in_cache_reruns(repo: Moma) -> None:
    _copy_stage(repo)
    lock = yamlio.loads((repo.root / "moma.lock").read_text())
    oid = lock["stages"]["double"]["outs"][0]["oid"]
    obj = repo.root / ".moma/cache/blake3" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    obj.unlink()
    (repo.root / "out.txt").unlink()
    res = repo("repro")
    assert "Ran stage double: output out.txt is missing and not in the cache" in res.stdout
    assert obj.exists()


def test_add_from_records_lineage_without_a_pipeline(repo: Moma) -> None:
    write(repo.root / "data/train.csv", "1,2\n")
    write(repo.root / "train.py", "print('fit')\n")
    write(repo.root / "params.yaml", "lr: 0.1\ndepth: 3\n")
    repo("add", "data/train.csv")
    repo.git("add", "train.py", "params.yaml")
    repo.git("commit", "-qm", "inputs")
    write(repo.root / "model.bin", "weights")
    repo("add", "model.bin", "--from", "data/train.csv.moma", "--from", "train.py",
         "-p", "params.yaml:depth")
    ptr = pointer.parse((repo.root / "model.bin.moma").read_text(), "model.bin.moma")
    data = pointer.parse((repo.root / "data/train.csv.moma").read_text(), "x.moma")
    lineage = ptr.lineage
    assert lineage is not None
    assert lineage.deps[0] == {"path": "data/train.csv", "oid": data.oid}
    assert lineage.deps[1]["path"] == "train.py"
    assert lineage.params == {"depth": 3}
    assert lineage.code == repo.git("rev-parse", "HEAD").strip()
    assert lineage.env["packages"].startswith("sha256:")
    report = json.loads(repo("lineage", "model.bin", "--json").stdout)
    assert report["stages"][0]["name"] == "(moma add)"
    upstream = {n["path"]: n for n in report["upstream"]}
    assert upstream["data/train.csv"]["commit"] == repo.git("rev-parse", "HEAD").strip()
    assert "--from nope.py: no such file" in repo("add", "model.bin", "--from", "nope.py",
                                                  ok=False).stderr


def test_diff_reports_files_inside_tracked_dirs_with_sizes(repo: Moma) -> None:
    write(repo.root / "data/a.csv", "aaaa")
    write(repo.root / "data/b.csv", "bb")
    write(repo.root / "model.bin", "v1")
    repo("add", "data", "model.bin")
    repo.git("commit", "-qm", "v1")
    write(repo.root / "data/a.csv", "aaaaaaaa")
    (repo.root / "data/b.csv").unlink()
    write(repo.root / "data/c.csv", "c")
    write(repo.root / "new.bin", "new")
    repo("add", "data", "new.bin")
    res = json.loads(repo("diff", "--json").stdout)
    got = [(e["path"], e["change"], e["old_size"], e["new_size"]) for e in res["entries"]]
    assert got == [("data/a.csv", "modified", 4, 8), ("data/b.csv", "deleted", 2, None),
                   ("data/c.csv", "added", None, 1), ("new.bin", "added", None, 3)]
    repo.git("commit", "-qm", "v2")
    assert "No changes to tracked data" in repo("diff").stdout
    assert "data/b.csv" in repo("diff", "HEAD~1", "HEAD").stdout
    write(repo.root / "data/c.csv", "edited, not yet added")  # the workspace as it is
    (repo.root / "new.bin").unlink()  # not checked out: its pointer counts
    res = json.loads(repo("diff", "--json").stdout)
    assert [(e["path"], e["change"], e["new_size"]) for e in res["entries"]] == [
        ("data/c.csv", "modified", 21)]


def test_param_specs_and_stage_parsing() -> None:
    assert params.parse_spec("params.yaml:a.b,c") == params.ParamSpec("params.yaml", ("a.b", "c"))
    assert params.parse_spec("seed") == params.ParamSpec("params.yaml", ("seed",))
    assert params.parse_spec("conf/p.yaml") == params.ParamSpec("conf/p.yaml", ())
    doc = {"train": {"depth": 3, "lr": 0.1}, "seed": 1}
    assert params.select(doc, params.parse_spec("train")) == {"train.depth": 3, "train.lr": 0.1}
    with pytest.raises(PipelineError, match="invalid stage name"):
        parse_stages({"bad name": {"cmd": "true"}})
    with pytest.raises(PipelineError, match="'cmd' must be a non-empty string"):
        parse_stages({"a": {"deps": ["x"]}})
    with pytest.raises(PipelineError, match="escapes|not a normalised"):
        parse_stages({"a": {"cmd": "true", "outs": ["../x"]}})
    stages = parse_stages({"b": {"cmd": "true", "deps": ["x"]},
                           "a": {"cmd": "true", "outs": ["x"]}})
    assert build_dag(stages, lambda p: False).order == ["a", "b"]


def test_lock_with_escaping_path_is_refused(repo: Moma) -> None:
    _copy_stage(repo)
    lock = yamlio.loads((repo.root / "moma.lock").read_text())
    lock["stages"]["double"]["deps"][0]["path"] = "../../etc/passwd"
    write(repo.root / "moma.lock", yamlio.dumps(lock))
    res = repo("repro", "--verify", "double", ok=False)
    assert "moma.lock: stage 'double': deps entry '../../etc/passwd'" in res.stderr
    assert "git checkout -- moma.lock" in res.stderr


def test_verify_takes_locked_dependencies_from_the_cache(repo: Moma) -> None:
    write(repo.root / "data/a.txt", "a1\n")
    write(repo.root / "data/b.txt", "b1\n")
    write(repo.root / "in.txt", "x\n")
    repo("add", "data")
    repo("run", "-n", "join", "-d", "data", "-d", "in.txt", "-o", "out.txt", "--",
         "cat data/a.txt data/b.txt in.txt > out.txt")
    write(repo.root / "data/a.txt", "a2\n")
    repo("add", "data")  # the workspace moves on; the lock still names the old listing
    report = json.loads(repo("repro", "--verify", "join", "--json").stdout)
    assert report["ok"] is True
    assert report["env_changes"] == {}
    assert (repo.root / "out.txt").read_text() == "a1\nb1\nx\n"  # workspace untouched
    write(repo.root / "in.txt", "y\n")  # a git file: its old bytes are nowhere to be found
    res = repo("repro", "--verify", "join", ok=False)
    assert "dependency in.txt differs from moma.lock" in res.stderr


def test_verify_reports_a_nondeterministic_stage(repo: Moma) -> None:
    write(repo.root / "in.txt", "x\n")
    repo("run", "-n", "noisy", "-d", "in.txt", "-o", "out.txt", "--",
         "od -An -N8 -tx8 /dev/urandom > out.txt")
    lock = yamlio.loads((repo.root / "moma.lock").read_text())
    lock["stages"]["noisy"]["env"]["python"] = "2.7.18"
    write(repo.root / "moma.lock", yamlio.dumps(lock))
    res = repo("repro", "--verify", "noisy", ok=False)
    assert res.exit_code == 1
    assert "outputs differ from moma.lock" in res.stdout
    assert "Environment differs from the lock: python 2.7.18 -> 3." in res.stdout


def test_tracked_input_not_checked_out_stops_repro_before_anything_runs(repo: Moma) -> None:
    write(repo.root / "seed.txt", "s")
    write(repo.root / "data.csv", "1,2\n")
    repo("add", "data.csv")
    _stages(repo, {"first": {"cmd": "touch ran.marker", "deps": ["seed.txt"],
                             "outs": ["a.txt"]},
                   "second": {"cmd": "cp data.csv b.txt", "deps": ["data.csv"],
                              "outs": ["b.txt"]}})
    (repo.root / "data.csv").unlink()
    res = repo("repro", ok=False)
    assert "dependency data.csv of stage 'second' is not in the workspace" in res.stderr
    assert "moma checkout" in res.stderr
    assert not (repo.root / "ran.marker").exists()
    repo("checkout")
    assert "Ran stage second: never run" in repo("repro", "second").stdout


def test_dry_run_of_a_chain_with_a_deleted_middle_output(repo: Moma) -> None:
    write(repo.root / "in.txt", "x\n")
    repo("run", "-n", "first", "-d", "in.txt", "-o", "mid", "--",
         "mkdir mid && cp in.txt mid/part.txt")
    repo("run", "-n", "second", "-d", "mid/part.txt", "-o", "last.txt", "--",
         "cp mid/part.txt last.txt")
    shutil.rmtree(repo.root / "mid")
    plan = json.loads(repo("repro", "--dry", "--json").stdout)["stages"]
    assert [(s["name"], s["action"]) for s in plan] == [("first", "would-restore"),
                                                         ("second", "unchanged")]
    assert not (repo.root / "mid").exists()
    done = json.loads(repo("repro", "--json").stdout)["stages"]
    assert [(s["name"], s["action"]) for s in done] == [("first", "restored"),
                                                         ("second", "unchanged")]
    assert (repo.root / "mid/part.txt").read_text() == "x\n"
