"""Notebook stages (`moma run --notebook`) on a real ipykernel python3 kernel via papermill.

Each kernel start costs 1-2 s, so the whole file executes a notebook three times."""

from __future__ import annotations

import json

import nbformat
import pytest

from conftest import Moma, write
from moma_cli import yamlio
from moma_cli.core import notebooks
from moma_cli.core import params as params_mod
from moma_cli.core.stages import PipelineError, parse_stage
from moma_cli.errors import ConfigError

RUN = ("run", "-n", "explore", "--notebook", "analysis.ipynb", "-d", "data.csv",
       "-p", "params.yaml:train", "-o", "report.ipynb", "-M", "metrics.json")


def _notebook(*cells: str) -> str:
    """A notebook whose first cell is the `parameters` cell papermill overrides."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("max_depth = 1\nseed = 0",
                                          metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    return nbformat.writes(nb)


ANALYSIS = _notebook(
    'import csv, json\nrows = list(csv.reader(open("data.csv")))\n'
    'print(f"rows={len(rows)} depth={max_depth}")',
    'json.dump({"rows": len(rows), "score": max_depth * 10 + seed}, open("metrics.json", "w"))',
)


def _project(repo: Moma, notebook: str) -> None:
    write(repo.root / "data.csv", "1,2\n3,4\n5,6\n")
    write(repo.root / "params.yaml", "train:\n  max_depth: 3\n  seed: 7\nother: 1\n")
    write(repo.root / "analysis.ipynb", notebook)


def _lock(repo: Moma) -> dict:
    return yamlio.loads((repo.root / "moma.lock").read_text())["stages"]


def test_notebook_stage_runs_with_params_and_repro_follows_changes(repo: Moma) -> None:
    _project(repo, ANALYSIS)
    repo(*RUN)

    stage = yamlio.loads((repo.root / ".moma.yaml").read_text())["stages"]["explore"]
    assert stage == {"notebook": "analysis.ipynb", "output": "report.ipynb",
                     "deps": ["data.csv"], "params": ["params.yaml:train"],
                     "metrics": ["metrics.json"]}
    report = nbformat.read(str(repo.root / "report.ipynb"), as_version=4)
    tags = [c.metadata.get("tags", []) for c in report.cells]
    assert tags[:2] == [["parameters"], ["injected-parameters"]]
    assert "max_depth = 3" in report.cells[1].source and "seed = 7" in report.cells[1].source
    assert "other" not in report.cells[1].source
    assert report.cells[2].outputs[0]["text"] == "rows=3 depth=3\n"
    assert json.loads((repo.root / "metrics.json").read_text()) == {"rows": 3, "score": 37}

    entry = _lock(repo)["explore"]
    assert entry["cmd"] == "notebook analysis.ipynb -> report.ipynb"
    assert [d["path"] for d in entry["deps"]] == ["analysis.ipynb", "data.csv"]
    assert [o["path"] for o in entry["outs"]] == ["report.ipynb"]
    assert entry["params"] == {"params.yaml": {"train.max_depth": 3, "train.seed": 7}}
    assert (repo.root / "report.ipynb.moma").is_file()

    out = repo("repro").stdout
    assert "Unchanged stage explore" in out and "Pipeline is up to date." in out
    verified = json.loads(repo("repro", "--verify", "explore", "--json").stdout)
    [report_out] = verified["outputs"]  # re-executed: other timings, the same cells
    assert verified["ok"] and report_out["rule"] == "notebook"
    assert report_out["actual"] != report_out["expected"]
    write(repo.root / "params.yaml", "train:\n  max_depth: 3\n  seed: 7\nother: 2\n")
    assert "Pipeline is up to date." in repo("repro").stdout  # a key the stage does not use

    (repo.root / "analysis.ipynb").write_text(ANALYSIS.replace("rows=", "n="))
    assert "dependency analysis.ipynb changed" in repo("repro", "--dry").stdout
    write(repo.root / "params.yaml", "train:\n  max_depth: 5\n  seed: 7\nother: 2\n")
    out = repo("repro").stdout
    assert "Ran stage explore" in out and "param train.max_depth changed (3 -> 5)" in out
    assert json.loads((repo.root / "metrics.json").read_text())["score"] == 57
    report = nbformat.read(str(repo.root / "report.ipynb"), as_version=4)
    assert report.cells[2].outputs[0]["text"] == "n=3 depth=5\n"
    assert _lock(repo)["explore"]["params"]["params.yaml"]["train.max_depth"] == 5


def test_failing_cell_fails_the_stage_and_records_nothing(repo: Moma) -> None:
    _project(repo, _notebook('print("before")', "1 / 0", 'print("never")'))
    res = repo(*RUN, ok=False)
    assert res.exit_code == 1
    error = res.stderr.strip().splitlines()[0]
    assert error == ("error: stage 'explore' failed: notebook analysis.ipynb, cell 3: "
                     "ZeroDivisionError: division by zero")
    assert "the traceback is in report.ipynb" in res.stderr
    report = nbformat.read(str(repo.root / "report.ipynb"), as_version=4)
    code = [c for c in report.cells if c.cell_type == "code"]  # papermill adds error notes
    assert code[2].outputs[0]["text"] == "before\n"
    assert code[3].outputs[-1]["ename"] == "ZeroDivisionError"
    assert not code[4].outputs
    assert not (repo.root / "moma.lock").exists()
    assert not (repo.root / "report.ipynb.moma").exists()
    assert [p.name for p in repo.root.iterdir() if p.name.startswith(".moma-tmp-")] == []


def test_notebook_stage_definitions_are_checked(repo: Moma) -> None:
    _project(repo, ANALYSIS)
    res = repo("run", "-n", "x", "--notebook", "analysis.ipynb", "-o", "out.csv", ok=False)
    assert "needs exactly one -o ending in .ipynb" in res.stderr
    res = repo("run", "-n", "x", "--notebook", "analysis.ipynb", "-o", "r.ipynb", "--",
               "echo", ok=False)
    assert "takes no command" in res.stderr
    with pytest.raises(PipelineError, match="has both 'cmd' and 'notebook'"):
        parse_stage("x", {"cmd": "echo", "notebook": "a.ipynb", "output": "b.ipynb"})
    with pytest.raises(PipelineError, match="'output' must be the path of an .ipynb"):
        parse_stage("x", {"notebook": "a.ipynb"})
    with pytest.raises(PipelineError, match="is the notebook itself"):
        parse_stage("x", {"notebook": "a.ipynb", "output": "a.ipynb"})
    assert not (repo.root / "moma.lock").exists()


def test_verify_compares_notebooks_without_run_timings_ids_and_counts() -> None:
    def executed(started: str, text: str, count: int) -> bytes:
        nb = nbformat.v4.new_notebook()
        nb.metadata["papermill"] = {"start_time": started, "output_path": f"/tmp/{started}"}
        cell = nbformat.v4.new_code_cell("print(1)", execution_count=count, metadata={
            "papermill": {"duration": count}, "execution": {"iopub.status.busy": started},
            "tags": ["t"]})
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text),
                        nbformat.v4.new_output("execute_result", {"text/plain": "1"},
                                               execution_count=count)]
        nb.cells = [cell]
        return nbformat.writes(nb).encode()

    first = executed("2026-01-01T00:00:00", "1\n", 1)
    again = executed("2026-01-02T00:00:00", "1\n", 7)  # another run: new id too
    assert first != again
    assert notebooks.normalized(first) == notebooks.normalized(again)
    assert notebooks.normalized(first) != notebooks.normalized(
        executed("2026-01-01T00:00:00", "2\n", 1))  # an output differs: a difference
    assert notebooks.normalized(b"{not json") is None
    assert notebooks.normalized(b'{"cells": 3}') is None


def test_params_become_notebook_variables() -> None:
    values = {"params.yaml": {"train.max_depth": 3, "train.opt.lr": 0.1, "seed": 1},
              "eval.yaml": {"seed": 2}}
    specs = [params_mod.parse_spec("params.yaml:train"), params_mod.parse_spec("seed")]
    assert params_mod.as_variables(specs, values) == {"max_depth": 3, "opt_lr": 0.1, "seed": 1}
    everything = [params_mod.parse_spec("params.yaml")]
    assert params_mod.as_variables(everything, values) == {
        "seed": 1, "train_max_depth": 3, "train_opt_lr": 0.1}
    clash = [params_mod.parse_spec("seed"), params_mod.parse_spec("eval.yaml:seed")]
    with pytest.raises(ConfigError, match="would both be the notebook variable 'seed'"):
        params_mod.as_variables(clash, values)
