"""One metrics reader (core/metrics.py): each format every former reader took still reads,
nested names are dotted the same way for every command, bad files are one clear error."""

from __future__ import annotations

import json
import math
import sys

import pytest

from conftest import Moma, configure, register_model, write
from moma_cli.core import metrics
from moma_cli.errors import MomaError


@pytest.mark.parametrize(("name", "text"), [
    ("m.json", '{"auc": 0.9, "val": {"loss": 0.25, "ok": true}, "note": "tree"}'),
    ("m.yaml", "auc: 0.9\nval:\n  loss: 0.25\n  ok: true\nnote: tree\n"),
    ("m.json", "auc: 0.9\nval: {loss: 0.25, ok: true}\nnote: tree\n"),  # YAML named .json
    ("metrics", '{"auc": 0.9, "val": {"loss": 0.25, "ok": true}, "note": "tree"}'),
    ("m.csv", "epoch,auc,val.loss,val.ok,note\n1,0.5,0.9,False,x\n2,0.9,0.25,True,tree\n"),
], ids=["json", "yaml", "yaml-in-json", "no-suffix", "csv-last-row"])
def test_every_format_reads_to_the_same_dotted_names(name: str, text: str) -> None:
    read = metrics.parse(text.encode(), name)
    read.pop("epoch", None)
    if name.endswith(".csv"):
        read["val.ok"] = read["val.ok"] == "True"
    assert read == {"auc": 0.9, "val.loss": 0.25, "val.ok": True, "note": "tree"}


def test_json_takes_nan_and_an_empty_file_has_no_metrics() -> None:
    assert math.isnan(metrics.parse(b'{"auc": NaN}', "m.json")["auc"])
    assert metrics.parse(b"", "m.json") == {} == metrics.parse(b"auc\n", "m.csv")


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("m.json", b"[1, 2]", "m.json: metrics file must hold a mapping of name: value"),
    ("m.json", b"[" * 100_000, "m.json: not valid JSON"),
    ("m.yaml", b"auc: [1\n", "m.yaml:2: invalid YAML"),
    ("m.json", b'{"auc": "\\ud800"}', "m.json: holds a string that is not valid UTF-8"),
    ("m.json", b"\xff", "m.json: not UTF-8 text"),
    ("m.json", b" " * (metrics.MAX_METRICS_BYTES + 1), "m.json: metrics file is larger than"),
])
def test_a_bad_metrics_file_is_one_error_naming_it(name: str, data: bytes,
                                                   expected: str) -> None:
    with pytest.raises(MomaError) as info:
        metrics.parse(data, name)
    assert info.value.message.startswith(expected)
    assert info.value.hint


def test_stage_metrics_in_each_format_reach_the_lock_and_metrics_show(repo: Moma) -> None:
    """`-M` files as a stage writes them: the lock and `metrics show` keep the numbers."""
    script = ("import json, pathlib; "
              "pathlib.Path('m.json').write_text(json.dumps({'val': {'auc': 0.9}, 'n': 'x'})); "
              "pathlib.Path('m.yaml').write_text('loss: 0.25\\n'); "
              "pathlib.Path('m.csv').write_text('epoch,acc\\n1,0.5\\n2,0.75\\n')")
    write(repo.root / "train.py", script)
    repo("run", "-n", "train", "-d", "train.py", "-M", "m.json", "-M", "m.yaml", "-M", "m.csv",
         "--", sys.executable, "train.py")
    lock = (repo.root / "moma.lock").read_text()
    assert "val.auc: 0.9" in lock and "loss: 0.25" in lock and "acc: 0.75" in lock
    shown = json.loads(repo("metrics", "show", "--json").stdout)
    assert {(m["file"], m["key"], m["value"]) for m in shown} == {
        ("m.json", "val.auc", 0.9), ("m.yaml", "loss", 0.25), ("m.csv", "epoch", 2),
        ("m.csv", "acc", 0.75)}
    repo.git("commit", "-qm", "train")
    assert json.loads(repo("metrics", "show", "HEAD", "--json").stdout) == shown


def test_registration_and_check_read_the_same_files(repo: Moma) -> None:
    """`models:add --metrics-file` (JSON only before) and `check --metrics` (JSON or YAML
    before) take YAML and CSV too, and name nested metrics as the gates do."""
    configure(repo, {"credit-risk": {"checks": ["val.auc >= 0.8"]}})
    register_model(repo, "credit-risk", {"val.auc": 0.7})
    write(repo.root / "fresh.yaml", "val:\n  auc: 0.9\n")
    assert repo("check", "--metrics", "fresh.yaml").exit_code == 0
    write(repo.root / "fresh.csv", "val.auc\n0.5\n")
    assert repo("check", "--metrics", "fresh.csv", ok=False).exit_code == 1
    repo("models:add", "credit-risk", "credit-risk.pkl", "--metrics-file", "fresh.yaml")
    shown = json.loads(repo("models:show", "credit-risk", "--json").stdout)
    assert shown["metrics"] == {"val.auc": 0.9}
    missing = repo("models:add", "credit-risk", "credit-risk.pkl", "--metrics-file", "nope.json",
                   ok=False)
    assert "nope.json: metrics file not found" in missing.stderr
