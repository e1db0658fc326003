"""Quality gates: parsing conditions, `moma check` against recorded and fresh metrics,
webhook alerts to a real local HTTP server, and the retraining schedule."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import Moma, configure, register_model, write
from helpers import with_sections
from moma_cli.core import checks
from moma_cli.errors import ConfigError
from moma_cli.services.repo import open_repo

# -- parsing (pure) -----------------------------------------------------------------------------


def test_shorthand_and_mapping_conditions_parse_alike() -> None:
    policies = checks.parse_models({"m": {
        "checks": ["accuracy >= 0.8",
                   {"metric": "drift.psi", "op": "<", "value": 0.2, "on_fail": "alert"}],
        "retrain": {"every": "1w2d", "stage": "train"}}})
    m = policies["m"]
    assert m.checks == (checks.Condition("accuracy", ">=", 0.8, "block"),
                        checks.Condition("drift.psi", "<", 0.2, "alert"))
    assert (m.retrain_every, m.retrain_stage) == (9 * 86400, "train")


@pytest.mark.parametrize(("section", "named"), [
    ({"m": {"checks": [{"metric": "a", "op": "=>", "value": 1}]}}, "models.m.checks[0].op"),
    ({"m": {"checks": ["accuracy is high"]}}, "models.m.checks[0]: cannot parse"),
    ({"m": {"checks": [{"metric": "a", "op": "<", "value": "x"}]}}, "models.m.checks[0].value"),
    ({"m": {"checks": ["a < 1", {"metric": "a", "op": "<", "value": 1, "on_fail": "page"}]}},
     "models.m.checks[1].on_fail"),
    ({"m": {"checks": [{"metric": "a", "op": "<", "value": 1, "onfail": "alert"}]}},
     "unknown key 'onfail'"),
    ({"m": {"retrain": {"every": "7 days"}}}, "models.m.retrain.every"),
    ({"m": {"check": []}}, "models.m: unknown key 'check'"),
])
def test_invalid_conditions_name_the_key(section: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        checks.parse_models(section)
    assert named in err.value.message


def test_dotted_metrics_index_nested_values() -> None:
    metrics = {"drift": {"psi": 0.3}, "latency.p99": 12}
    assert checks.evaluate(checks.parse_condition("drift.psi < 0.2"), metrics).passed is False
    assert checks.evaluate(checks.parse_condition("latency.p99 < 50"), metrics).passed is True
    missing = checks.evaluate(checks.parse_condition("drift.ks < 1"), metrics)
    assert (missing.passed, missing.message) == (False, "metric 'drift.ks' is not recorded")


# -- moma check ---------------------------------------------------------------------------------


GATES = {"credit-risk": {"checks": [
    {"metric": "accuracy", "op": ">=", "value": 0.8, "on_fail": "block"},
    "latency_ms < 50"]}}


def test_passing_conditions_exit_0(repo: Moma) -> None:
    configure(repo, GATES)
    register_model(repo, "credit-risk", {"accuracy": 0.85, "latency_ms": 20})
    out = repo("check")
    assert "accuracy >= 0.8" in out.stdout and "FAIL" not in out.stdout
    assert "All blocking conditions pass." in out.stdout


def test_failing_block_condition_exits_1_and_missing_metric_fails(repo: Moma) -> None:
    configure(repo, GATES)
    register_model(repo, "credit-risk", {"accuracy": 0.7})
    out = repo.proc("check", "credit-risk", "--json", ok=False)
    assert out.exit_code == 1
    doc = json.loads(out.stdout)
    [model] = doc["models"]
    assert (doc["ok"], model["blocked"]) == (False, True)
    results = {c["condition"]: c for c in model["conditions"]}
    assert results["accuracy >= 0.8"]["actual"] == 0.7
    assert results["latency_ms < 50"]["message"] == "metric 'latency_ms' is not recorded"


def test_fresh_metrics_file_overrides_recorded_metrics(repo: Moma, tmp_path: Path) -> None:
    configure(repo, GATES)
    register_model(repo, "credit-risk", {"accuracy": 0.7})
    fresh = write(tmp_path / "metrics.json", json.dumps({"accuracy": 0.9, "latency_ms": 10}))
    assert repo("check", "--metrics", str(fresh)).exit_code == 0
    repo("check", "--metrics", str(fresh), "other", ok=False)


def test_unknown_model_and_invalid_config_are_clear_errors(repo: Moma) -> None:
    configure(repo, GATES)
    out = repo("check", "fraud", ok=False)
    assert "model 'fraud' has no checks in .moma.yaml (configured: credit-risk)" in out.stderr
    out = repo("check", "--json", ok=False)  # configured, but not in the registry
    [model] = json.loads(out.stdout)["models"]
    assert model["error"] == "no model named 'credit-risk'" and model["version"] is None
    assert {c["message"] for c in model["conditions"]} == {model["error"]}
    configure(repo, {"credit-risk": {"checks": ["accuracy >> 1"]}})
    out = repo("check", ok=False)
    assert "models.credit-risk.checks[0]: cannot parse" in out.stderr


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = HTTPServer(("127.0.0.1", 0), Hook)
    Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Hook.received
    server.shutdown()
    server.server_close()


def test_alert_posts_payload_to_webhook(repo: Moma,
                                        webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    configure(repo, {"credit-risk": {"checks": [
        {"metric": "drift.psi", "op": "<", "value": 0.2, "on_fail": "alert"}]}},
        alerts={"webhook": url})
    register_model(repo, "credit-risk", {"drift": {"psi": 0.35}})
    out = repo.proc("check")  # an alert does not fail the check
    assert "alert:" in out.stdout and "drift.psi < 0.2" in out.stdout
    [payload] = received
    ptr = open_repo(repo.root).load_pointer("credit-risk.pkl.moma")
    assert payload["model"] == "credit-risk" and payload["oid"] == ptr.oid
    assert payload["condition"] == "drift.psi < 0.2" and payload["actual"] == 0.35
    assert payload["time"].endswith("+00:00")


def test_unreachable_webhook_is_reported_not_fatal(repo: Moma) -> None:
    configure(repo, {"credit-risk": {"checks": [
        {"metric": "drift.psi", "op": "<", "value": 0.2, "on_fail": "alert"}]}},
        alerts={"webhook": "http://127.0.0.1:9/hook"})
    register_model(repo, "credit-risk", {"drift": {"psi": 0.35}})
    out = repo("check")
    assert "alert not delivered: webhook http://127.0.0.1:9/hook failed" in out.stderr


def test_retrain_condition_and_stale_model_are_reported(repo: Moma) -> None:
    configure(repo, {"credit-risk": {
        "checks": [{"metric": "latency_ms", "op": "<", "value": 50, "on_fail": "retrain"}],
        "retrain": {"every": "7d", "stage": "train"}}})
    old = "2020-01-01T00:00:00+00:00"
    register_model(repo, "credit-risk", {"latency_ms": 80},
                   env={"GIT_COMMITTER_DATE": old, "GIT_AUTHOR_DATE": old})
    out = repo("check", "--json")  # retrain is not blocking
    [model] = json.loads(out.stdout)["models"]
    assert (model["stale"], model["needs_retrain"], model["blocked"]) == (True, True, False)
    assert model["last_changed"] == old and model["retrain_due"] == "2020-01-08T00:00:00+00:00"
    assert "stale, last changed" in repo("check").stderr
    # a metadata-only edit is not a new version: the schedule keeps the version's date
    repo("models:add", "credit-risk", "credit-risk.pkl", "-d", "same weights")
    repo.git("commit", "-qam", "describe it")
    [model] = json.loads(repo("check", "--json").stdout)["models"]
    assert (model["version"], model["last_changed"], model["stale"]) == (1, old, True)


def test_fresh_model_is_not_stale(repo: Moma) -> None:
    configure(repo, {"credit-risk": {"checks": ["latency_ms < 50"], "retrain": {"every": "7d"}}})
    register_model(repo, "credit-risk", {"latency_ms": 10})
    [model] = json.loads(repo("check", "--json").stdout)["models"]
    assert (model["stale"], model["needs_retrain"]) == (False, False)


def test_check_resolves_registry_refs_and_reports_versions(
        repo: Moma, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    configure(repo, {"credit-risk": {"checks": [
        {"metric": "accuracy", "op": ">=", "value": 0.8, "on_fail": "alert"}]}},
        alerts={"webhook": url})
    for n, accuracy in ((1, "0.9"), (2, "0.7")):
        write(repo.root / "model.bin", f"weights {n}")
        repo("models:add", "credit-risk", "model.bin", "--metric", f"accuracy={accuracy}")
        repo.git("add", "-A")
        repo.git("commit", "-qm", f"v{n}")
    repo("models:tag", "credit-risk:1", "production")
    [latest] = json.loads(repo("check", "--json").stdout)["models"]
    assert (latest["ref"], latest["version"], latest["stages"], latest["production"]) == (
        "credit-risk", 2, [], 1)
    assert [(p["version"], p["ref"], p["actual"]) for p in received] == [
        (2, "credit-risk", 0.7)]
    out = repo("check")
    assert "v2" in out.stdout and "production is v1" in out.stdout
    refs = ("credit-risk:production", "credit-risk:1", "credit-risk@HEAD~1")
    doc = json.loads(repo("check", *refs, "--json").stdout)
    assert [(m["ref"], m["version"], m["stages"], m["conditions"][0]["actual"])
            for m in doc["models"]] == [(ref, 1, ["production"], 0.9) for ref in refs]
    assert "v1 (production)" in repo("check", "credit-risk:production").stdout
    write(repo.root / "model.bin", "weights 3")  # registered, not committed yet
    repo("models:add", "credit-risk", "model.bin", "--metric", "accuracy=0.95")
    [fresh] = json.loads(repo("check", "--json").stdout)["models"]
    assert (fresh["version"], fresh["label"], fresh["stale"]) == (None, "v3 (uncommitted)", False)
    out = repo("check", "credit-risk:9", "--json")  # alert only: a failed gate, not a crash
    assert json.loads(out.stdout)["models"][0]["error"] == "credit-risk has no version 9"


# -- metrics belong to the bytes they were recorded for ------------------------------------------

TRAIN = "import pathlib; k = pathlib.Path('knob.txt').read_text(); " \
        "pathlib.Path('model.pkl').write_text('model trained with ' + k)"
EVALUATE = "import json, pathlib; k = pathlib.Path('model.pkl').read_text().split()[-1]; " \
           "pathlib.Path('metrics.json').write_text(json.dumps({'accuracy': float(k)}))"


def trained_model(moma: Moma, knob: str) -> None:
    """train writes model.pkl from knob.txt; evaluate writes its accuracy to metrics.json;
    the model is registered with that file, as the issue's user did."""
    write(moma.root / "knob.txt", knob)
    write(moma.root / "train.py", TRAIN)
    write(moma.root / "evaluate.py", EVALUATE)
    moma.git("add", "knob.txt", "train.py", "evaluate.py")
    moma("run", "-n", "train", "-d", "train.py", "-d", "knob.txt", "-o", "model.pkl", "--",
         sys.executable, "train.py")
    moma("run", "-n", "evaluate", "-d", "model.pkl", "-d", "evaluate.py", "-M", "metrics.json",
         "--", sys.executable, "evaluate.py")
    moma("models:add", "credit-risk", "model.pkl", "--metrics-file", "metrics.json")
    configure(moma, {"credit-risk": {"checks": ["accuracy >= 0.8"]}})
    moma.git("add", "-A")
    moma.git("commit", "-qm", "train v1")


def test_retrained_model_never_shows_or_passes_on_old_metrics(repo: Moma) -> None:
    trained_model(repo, "0.8733")
    write(repo.root / "knob.txt", "0.4933")  # retrained into a bad model
    repo("repro", "--force", "train")
    # not measured yet: the new bytes have no metrics, and that fails the gate
    [model] = json.loads(repo("check", "--json", ok=False).stdout)["models"]
    assert (model["label"], model["blocked"], model["conditions"][0]["actual"]) == (
        "v2 (uncommitted)", True, None)
    assert "has no metrics recorded for its bytes" in model["conditions"][0]["message"]
    # the evaluation stage reads the new bytes and writes the registered metrics file:
    # its numbers are recorded for them
    repo("repro")
    repo.git("commit", "-qam", "retrain")
    assert json.loads((repo.root / "metrics.json").read_text()) == {"accuracy": 0.4933}
    out = repo("check", "--json", ok=False)
    [model] = json.loads(out.stdout)["models"]
    assert (model["version"], model["blocked"]) == (2, True)
    assert model["conditions"][0]["actual"] == 0.4933
    assert "0.8733" not in repo("check", ok=False).stdout
    shown = json.loads(repo("models:show", "credit-risk", "--json").stdout)
    [listed] = json.loads(repo("models:list", "--json").stdout)["models"]
    assert shown["metrics"] == listed["metrics"] == {"accuracy": 0.4933}
    assert "0.8733" not in repo("models:show", "credit-risk").stdout
    # the first version keeps its own numbers
    assert json.loads(repo("models:show", "credit-risk:1", "--json").stdout)["metrics"] == {
        "accuracy": 0.8733}


@pytest.mark.parametrize("carried", ["unbound", "bound"])
def test_metrics_in_a_pointer_for_other_bytes_fail_the_gate(repo: Moma, carried: str) -> None:
    """New bytes whose pointer still carries metrics: written by an older moma (no binding,
    the previous version's numbers) or bound to the previous oid (a hand edit, a clone)."""
    configure(repo, GATES)
    register_model(repo, "credit-risk", {"accuracy": 0.9, "latency_ms": 10})
    first = open_repo(repo.root).load_pointer("credit-risk.pkl.moma")
    write(repo.root / "credit-risk.pkl", "retrained weights")
    repo("add", "credit-risk.pkl")
    r = open_repo(repo.root)
    assert first.model is not None
    model = first.model.to_mapping() | ({"metrics_oid": first.oid} if carried == "bound" else {})
    r.write_pointer(with_sections(r.load_pointer("credit-risk.pkl.moma"), model=model))
    repo.git("commit", "-qam", "retrain")
    out = repo("check", "--json", ok=False)
    [checked] = json.loads(out.stdout)["models"]
    assert (checked["version"], checked["blocked"]) == (2, True)
    assert {c["actual"] for c in checked["conditions"]} == {None}
    assert {c["message"] for c in checked["conditions"]} == {
        f"v2 ({checked['oid'][:8]}) has no metrics recorded for its bytes"}
    assert json.loads(repo("models:show", "credit-risk", "--json").stdout)["metrics"] == {}
    diff = json.loads(repo("models:diff", "credit-risk:1", "credit-risk:2", "--json").stdout)
    assert {r["change"] for r in diff["rows"] if r["section"] == "metrics"} == {"removed"}


def test_moma_add_of_new_bytes_drops_the_old_metrics(repo: Moma) -> None:
    configure(repo, GATES)
    write(repo.root / "model.bin", "weights 1")
    repo("models:add", "credit-risk", "model.bin", "--metric", "accuracy=0.9", "-d", "scorer")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "v1")
    write(repo.root / "model.bin", "weights 2")
    repo("add", "model.bin")
    model = open_repo(repo.root).load_pointer("model.bin.moma").model
    assert model is not None and model.metrics is None and model.description == "scorer"
    # same bytes again: the metrics recorded for them stay
    repo("models:add", "credit-risk", "model.bin", "--metric", "accuracy=0.7")
    repo("add", "model.bin")
    shown = json.loads(repo("models:show", "credit-risk", "--json").stdout)
    assert shown["metrics"] == {"accuracy": 0.7}
