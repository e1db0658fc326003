"""Live monitoring: a real `moma serve` session logs its predictions, `moma monitor` measures
input drift against the profile of the training inputs, and `moma check --live` gates on
it."""

from __future__ import annotations

import contextlib
import csv
import http.client
import http.server
import json
import math
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from conftest import Moma, configure, write
from moma_cli.core import drift
from moma_cli.core.latency import LatencyHistogram
from moma_cli.services import serve
from moma_cli.services.repo import open_repo
from moma_cli.services.serving.app import create_app
from realtools import free_port, uvicorn_running

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
X, Y = load_iris(return_X_y=True)
GATE = "models:\n  iris:\n    checks:\n      - 'drift.psi.max < 0.2'\n      - 'live.rows >= 50'\n"


@pytest.fixture
def registered(repo: Moma) -> Moma:
    with open(repo.root / "train.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*FEATURES, "species"])
        writer.writerows([*row, label] for row, label in zip(X.tolist(), Y.tolist(),
                                                             strict=True))
    joblib.dump(LogisticRegression(max_iter=300).fit(X, Y), repo.root / "iris.joblib")
    repo("models:add", "iris", "iris.joblib", "--reference", "train.csv", "--target", "species")
    with open(repo.root / ".moma.yaml", "a") as fh:
        fh.write(GATE)
    repo.git("add", ".moma.yaml")
    repo.git("commit", "-qm", "iris with its reference profile")
    return repo


Post = Callable[..., tuple[int, dict[str, Any], str | None]]


@contextlib.contextmanager
def serving(repo: Moma, log: Path) -> Iterator[Post]:
    """A real uvicorn server logging every request; yields post(rows, request_id=None) ->
    (status, body, X-Request-Id of the answer)."""
    port = free_port()
    server, _ = serve.prepare(open_repo(repo.root), ["iris"], port=port, poll=0,
                              log_predictions=log, sample_rate=1.0)
    with uvicorn_running(create_app(server), port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def post(rows: Any, request_id: str | None = None) -> tuple[int, dict[str, Any],
                                                                      str | None]:
            headers = {"Content-Type": "application/json"} | (
                {"X-Request-Id": request_id} if request_id else {})
            conn.request("POST", "/v1/models/iris/predict", json.dumps({"inputs": rows}),
                         headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read()), response.getheader(
                "X-Request-Id")

        yield post


def serve_and_predict(repo: Moma, log: Path, batches: list[np.ndarray]) -> None:
    with serving(repo, log) as post:
        for rows in batches:
            assert post(rows.tolist())[0] == 200


def test_reference_profile_is_recorded_at_registration(registered: Moma) -> None:
    pointer = yaml.safe_load((registered.root / "iris.joblib.moma").read_text())
    reference = pointer["model"]["reference"]
    assert (reference["source"], reference["target"], reference["columns"]) == (
        "train.csv", "species", FEATURES)  # the labels are profiled apart, not as a feature
    assert reference["prediction"] == {"kind": "categorical", "shares": [0.333333] * 3,
                                       "categories": ["0", "1", "2"]}
    res = registered("models:add", "iris", "iris.joblib", "--reference", "train.csv",
                     "--target", "colour", ok=False)
    assert res.exit_code == 1 and "train.csv: no column 'colour' for --target" in res.stderr
    res = registered("monitor", "iris", "--log", "missing.jsonl", ok=False)
    assert res.exit_code == 1 and "missing.jsonl: no such prediction log" in res.stderr


def test_drifted_inputs_fail_the_live_gate_and_stable_ones_pass(registered: Moma) -> None:
    stable, drifted = registered.root / "stable.jsonl", registered.root / "drifted.jsonl"
    rng = np.random.default_rng(0)
    serve_and_predict(registered, stable, [X[i::3] for i in range(3)])
    shifted = X + np.array([0.0, 0.0, 2.5, 1.0]) + rng.normal(0, 0.05, X.shape)
    serve_and_predict(registered, drifted, [shifted[i::3] for i in range(3)])

    out = json.loads(registered("monitor", "iris", "--log", str(drifted), "--json").stdout)
    assert out["live"]["rows"] == len(X) and out["version"] == 1
    assert out["drift"]["psi"]["petal_length"] > 0.25 > out["drift"]["psi"]["sepal_length"]
    assert out["drift"]["ks"]["petal_length"] > 0.5
    table = registered("monitor", "iris", "--log", str(drifted)).stdout
    assert "petal_length" in table and "large" in table

    assert json.loads(registered("check", "iris", "--live", str(stable), "--json").stdout)["ok"]
    res = registered("check", "iris", "--live", str(drifted), ok=False)
    assert res.exit_code == 1 and "drift.psi.max < 0.2" in res.stdout
    assert "quality gate failed for iris" in res.stderr


def test_only_this_versions_lines_in_the_window_count(registered: Moma, tmp_path: Path) -> None:
    log = tmp_path / "preds.jsonl"
    serve_and_predict(registered, log, [X[:40]])
    mine = json.loads(log.read_text().splitlines()[0])
    old = dict(mine, ts="2020-01-01T00:00:00.000Z")
    other = dict(mine, oid="0" * 64)
    line = json.dumps(mine)
    cut = line[:line.index(mine["oid"]) + 70]  # this version's line, a crash cut it short
    with open(log, "a") as fh:
        fh.write("\n".join([json.dumps(old), json.dumps(other), cut, json.dumps([mine["oid"]]),
                            '{"not ours\n']) + "\n")
    out = json.loads(registered("monitor", "iris:1", "--log", str(log), "--json").stdout)
    # lines of other versions, or naming none, are not even parsed: not counted as skipped
    assert out["live"]["rows"] == 41 and out["skipped_lines"] == 2
    windowed = json.loads(registered("monitor", "iris:1", "--log", str(log), "--window", "1h",
                                     "--json", "-o", str(tmp_path / "live.json")).stdout)
    assert windowed["live"]["rows"] == 40
    assert json.loads((tmp_path / "live.json").read_text())["live"]["rows"] == 40
    res = registered("monitor", "iris", "--log", str(log), "--window", "soon", ok=False)
    assert res.exit_code == 2 and "not a duration" in res.stderr


def test_a_model_without_a_reference_says_so_and_a_hostile_one_is_named(
        registered: Moma, tmp_path: Path) -> None:
    log = tmp_path / "preds.jsonl"
    serve_and_predict(registered, log, [X[:10]])
    pointer = registered.root / "iris.joblib.moma"
    doc = yaml.safe_load(pointer.read_text())
    del doc["model"]["reference"]
    write(pointer, yaml.safe_dump(doc, sort_keys=False))
    res = registered("monitor", "iris", "--log", str(log))
    assert "has no reference profile" in res.stderr and "10 predicted rows" in res.stdout
    doc["model"]["reference"] = {"features": {"x": {"kind": "numeric", "shares": [1],
                                                    "edges": [3, 1]}}}
    write(pointer, yaml.safe_dump(doc, sort_keys=False))
    res = registered("monitor", "iris", "--log", str(log), ok=False)
    assert res.exit_code == 1
    assert "iris.joblib.moma: model.reference" in res.stderr and "Traceback" not in res.stderr


def test_psi_and_ks_are_zero_for_the_same_distribution_and_grow_with_a_shift() -> None:
    rng = np.random.default_rng(1)
    reference = drift.profile(rng.normal(0, 1, 5000).tolist())
    same, moved = drift.LiveBins(reference), drift.LiveBins(reference)
    for a, b in zip(rng.normal(0, 1, 5000), rng.normal(1, 1, 5000), strict=True):
        same.add(a)
        moved.add(b)
    assert same.drift().psi < 0.02 and (same.drift().ks or 0) < 0.03
    assert moved.drift().psi > 0.5 and (moved.drift().ks or 0) > 0.3
    colours = drift.profile(["red"] * 50 + ["blue"] * 50)
    live = drift.LiveBins(colours)
    for value in ["red"] * 90 + ["blue"] * 10:
        live.add(value)
    assert live.drift().psi > 0.25 and live.drift().ks is None
    assert drift.from_json(reference.to_json(), "x").edges == reference.edges


def test_request_ids_failures_and_latency_are_logged_and_gated(registered: Moma,
                                                               tmp_path: Path) -> None:
    log = tmp_path / "preds.jsonl"
    with serving(registered, log) as post:
        status, body, header = post(X[:3].tolist(), request_id="client-7")
        assert (status, body["request_id"], header) == (200, "client-7", "client-7")
        status, body, header = post(X[:1].tolist(), request_id="bad id\twith a tab")
        assert status == 200 and header == body["request_id"] and len(header or "") == 16
        for _ in range(8):
            assert post(X[:2].tolist())[0] == 200
        status, body, header = post([[1.0, 2.0]])  # two features of four: refused
        assert status == 422 and header and "error" in body
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    statuses = [(e["request"], e["status"], e["rows"]) for e in lines if "status" in e]
    assert statuses[0] == ("client-7", 200, 3) and statuses[-1] == (header, 422, 0)
    assert all(e["latency_ms"] > 0 for e in lines if "status" in e)

    out = json.loads(registered("monitor", "iris", "--log", str(log), "--json").stdout)
    live = out["live"]
    assert (live["requests"], live["errors"], live["error_rate"]) == (11, 1, round(1 / 11, 6))
    assert 0 < live["latency"]["p50"] <= live["latency"]["p95"] <= live["latency"]["p99"]
    assert live["latency"]["p99"] <= live["latency"]["max"]
    table = registered("monitor", "iris", "--log", str(log)).stdout
    assert "Requests: 11, errors 1 (9.09%)" in table and "p99" in table

    configure_checks(registered, ["live.error_rate < 0.01", "live.latency.p99 < 60000"])
    res = registered("check", "iris", "--live", str(log), "--json", ok=False)
    verdicts = {c["condition"]: c["passed"] for c in json.loads(res.stdout)["models"][0][
        "conditions"]}
    assert verdicts == {"live.error_rate < 0.01": False, "live.latency.p99 < 60000": True}


def configure_checks(repo: Moma, conditions: list[Any]) -> None:
    configure(repo, {"iris": {"checks": conditions}})


def test_labelled_feedback_joins_by_request_id_and_gives_accuracy(registered: Moma,
                                                                  tmp_path: Path) -> None:
    log = tmp_path / "preds.jsonl"
    model = joblib.load(registered.root / "iris.joblib")
    with serving(registered, log) as post:
        ids = [post(X[i:i + 2].tolist())[2] for i in range(0, 100, 2)]
    expected = float((model.predict(X[:100]) == Y[:100]).mean())
    labels = tmp_path / "labels.jsonl"
    write(labels, "".join(json.dumps({"request_id": rid, "row": row, "label": int(Y[i + row])})
                          + "\n" for rid, i in zip(ids, range(0, 100, 2), strict=True)
                          for row in (0, 1)))
    wrong = tmp_path / "wrong.csv"  # CSV, the first rows only, every label wrong
    write(wrong, "request_id,label\n" + "".join(f"{rid},{(Y[i] + 1) % 3}\n"
                                                for rid, i in zip(ids[:10], range(0, 20, 2),
                                                                  strict=True)))
    out = json.loads(registered("monitor", "iris", "--log", str(log), "--feedback", str(labels),
                                "--json").stdout)
    assert out["live"]["labelled"] == 100 and out["live"]["accuracy"] == round(expected, 6)
    predicted = model.predict(X[:20:2])
    out = json.loads(registered("monitor", "iris", "--log", str(log), "--feedback", str(wrong),
                                "--json").stdout)
    assert out["live"]["labelled"] == 10
    assert out["live"]["accuracy"] == float((predicted == (Y[:20:2] + 1) % 3).mean())

    configure_checks(registered, ["live.accuracy >= 0.8"])
    registered("check", "iris", "--live", str(log), "--feedback", str(labels))
    res = registered("check", "iris", "--live", str(log), "--feedback", str(wrong), ok=False)
    assert "live.accuracy >= 0.8" in res.stdout and "quality gate failed" in res.stderr
    bad = write(tmp_path / "bad.jsonl", '{"request_id": "a"}\n')
    res = registered("monitor", "iris", "--log", str(log), "--feedback", str(bad), ok=False)
    assert res.exit_code == 1 and "bad.jsonl:1: needs a request_id and a label" in res.stderr
    res = registered("check", "iris", "--feedback", str(labels), ok=False)
    assert res.exit_code == 1 and "--feedback labels the requests of a prediction log" in res.stderr


def test_predictions_drift_from_the_training_labels(registered: Moma, tmp_path: Path) -> None:
    stable, drifted = tmp_path / "stable.jsonl", tmp_path / "drifted.jsonl"
    serve_and_predict(registered, stable, [X])
    setosa_like = X[Y == 0]  # traffic of one class only: the predictions drift
    serve_and_predict(registered, drifted, [setosa_like, setosa_like])
    calm = json.loads(registered("monitor", "iris", "--log", str(stable), "--json").stdout)
    moved = json.loads(registered("monitor", "iris", "--log", str(drifted), "--json").stdout)
    assert calm["drift"]["prediction"]["psi"] < 0.05
    assert moved["drift"]["prediction"]["psi"] > 1.0 and "ks" not in moved["drift"]["prediction"]
    configure_checks(registered, ["drift.prediction.psi < 0.25"])
    registered("check", "iris", "--live", str(stable))
    assert "drift.prediction.psi" in registered("check", "iris", "--live", str(drifted),
                                                ok=False).stdout


def test_latency_percentiles_stay_within_one_percent_in_fixed_memory() -> None:
    rng = np.random.default_rng(2)
    sample = rng.lognormal(1.0, 1.2, 50_000)
    histogram = LatencyHistogram()
    for ms in sample:
        histogram.add(float(ms))
    histogram.add(math.nan)
    histogram.add(-1.0)
    assert histogram.count == len(sample) and len(histogram.counts) == 1100
    for q in (0.5, 0.95, 0.99):
        exact = float(np.quantile(sample, q))
        assert abs((histogram.quantile(q) or 0) - exact) / exact < 0.01
    assert histogram.quantile(1.0) == sample.max() and LatencyHistogram().quantile(0.5) is None
    regression = drift.label_profile([float(v) for v in range(100)])
    assert regression.kind == "numeric" and len(regression.shares) == drift.BINS


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP endpoint on 127.0.0.1 that keeps the JSON bodies posted to it."""
    received: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextlib.contextmanager
def moma_serve(repo: Moma, *args: str) -> Iterator[int]:
    """`moma serve ARGS` as its own process (what a deployment runs), until the block ends."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moma_cli", "serve", *args,
                             "--port", str(port)], cwd=repo.root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"moma serve exited: {proc.communicate()[0]}"
            assert time.monotonic() < deadline, "moma serve did not start"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_a_cron_run_alerts_rolls_back_and_the_server_follows(registered: Moma,
                                                              tmp_path: Path) -> None:
    """The loop closed: a served production version gets drifted traffic; the cron line of
    docs/quality-gates.md, run as its own process, alerts a real webhook and rolls
    production back; the running server switches with no failed request meanwhile."""
    log, cron_log = tmp_path / "preds.jsonl", tmp_path / "cron.log"
    with webhook_receiver() as (url, alerts):
        configure(registered, {"iris": {"checks": [
            "accuracy >= 0.9",
            {"metric": "drift.psi.max", "op": "<", "value": 0.2, "on_fail": "alert"},
            {"metric": "drift.psi.max", "op": "<", "value": 0.25, "on_fail": "rollback"},
            "live.error_rate < 0.05"]}}, alerts={"webhook": url})
        registered("models:add", "iris", "iris.joblib", "--metric", "accuracy=0.97")
        registered.git("commit", "-qam", "iris v1 measured, live gates")
        joblib.dump(LogisticRegression(C=0.05, max_iter=300).fit(X, Y),
                    registered.root / "iris.joblib")
        registered("models:add", "iris", "iris.joblib", "--reference", "train.csv",
                   "--target", "species", "--metric", "accuracy=0.93")
        registered.git("commit", "-qm", "iris v2")
        registered("models:tag", "iris:2", "production")
        with moma_serve(registered, "iris:production", "--poll", "0.2", "--log-predictions",
                        str(log), "--sample-rate", "1") as port:
            shifted = X + np.array([0.0, 0.0, 2.5, 1.0])
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(0, len(X), 10):
                assert predict(client, shifted[i:i + 10].tolist())[0] == 200

            answers: list[tuple[int, int | None]] = []
            stop = threading.Event()

            def loop() -> None:  # a client that keeps asking through the switch
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                while not stop.is_set() and len(answers) < 100_000:
                    status, body = predict(conn, [X[0].tolist()])
                    answers.append((status, body.get("version")))

            clients = threading.Thread(target=loop)
            clients.start()
            try:
                deadline = time.monotonic() + 60
                while len(answers) < 5:  # the loop is under way before production moves
                    assert time.monotonic() < deadline and clients.is_alive()
                    time.sleep(0.01)
                cron = subprocess.run(
                    ["/bin/sh", "-c", f"cd {registered.root} && {sys.executable} -m moma_cli "
                     f"check iris:production --live {log} --window 1h --rollback "
                     f">> {cron_log} 2>&1"], timeout=300)
                assert cron.returncode == 1, cron_log.read_text()
                deadline = time.monotonic() + 60
                while sum(v == 1 for _, v in answers) < 20:
                    assert time.monotonic() < deadline, "the server did not switch to v1"
                    time.sleep(0.05)
            finally:
                stop.set()
                clients.join(timeout=60)
    assert "production rolled back from v2 to v1" in cron_log.read_text()
    [alert] = alerts
    assert (alert["model"], alert["version"], alert["condition"]) == (
        "iris", 2, "drift.psi.max < 0.2")
    assert alert["actual"] > 0.25
    assert {status for status, _ in answers} == {200}  # not one request failed
    versions = [v for _, v in answers]
    first_v1 = versions.index(1)
    assert first_v1 >= 5 and set(versions[:first_v1]) == {2} and set(versions[first_v1:]) == {1}
    listed = json.loads(registered("models:list", "--json").stdout)["models"]
    assert listed[0]["stage"]["production"] == 1
    events = json.loads(registered("models:history", "iris", "--json").stdout)["events"]
    assert "rollback of v2: drift.psi.max < 0.25" in json.dumps(events[-1])
    after = json.loads(registered("monitor", "iris:1", "--log", str(log), "--json").stdout)
    assert after["live"]["requests"] >= 20 and after["live"]["errors"] == 0


def predict(conn: http.client.HTTPConnection, rows: Any) -> tuple[int, dict[str, Any]]:
    conn.request("POST", "/v1/models/iris/predict", json.dumps({"inputs": rows}),
                 {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_a_live_condition_does_not_keep_an_unserved_version_out_of_its_stage(
        registered: Moma) -> None:
    configure_checks(registered, ["live.error_rate < 0.01", "drift.psi.max < 0.2",
                                  "accuracy >= 0.9"])
    res = registered("models:tag", "iris:1", "production", ok=False)
    assert "fails the blocking condition accuracy >= 0.9" in res.stderr  # recorded: judged
    assert "live.error_rate" not in res.stderr
    registered("models:add", "iris", "iris.joblib", "--metric", "accuracy=0.97")
    registered.git("commit", "-qam", "measured")
    registered("models:tag", "iris:1", "production")  # live figures: for check --live


def test_the_training_data_named_as_lineage_is_profiled(repo: Moma) -> None:
    write(repo.root / "train.csv", "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(60)))
    write(repo.root / "train.py", "print('trained')\n")
    write(repo.root / "model.bin", b"weights")
    repo("add", "model.bin", "--model", "clf", "--from", "train.csv", "--from", "train.py",
         "--target", "label")
    reference = yaml.safe_load((repo.root / "model.bin.moma").read_text())["model"]["reference"]
    assert (reference["source"], reference["columns"], reference["target"]) == (
        "train.csv", ["a"], "label")
    assert reference["prediction"]["categories"] == ["0", "1"]
    res = repo("add", "train.py", "--target", "label", ok=False)
    assert res.exit_code == 2 and "add --model NAME" in res.stderr
    write(repo.root / "other.bin", b"more weights")
    res = repo("models:add", "other", "other.bin", "--from", "train.py", "--target", "label",
               ok=False)
    assert res.exit_code == 1 and "--target names a column of the training data" in res.stderr
