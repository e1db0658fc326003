"""`moma serve`: a real uvicorn server on 127.0.0.1 serving real joblib-dumped sklearn models
from a real repository's cache."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from conftest import make_repo
from moma_cli.errors import MomaError
from moma_cli.services import serve
from moma_cli.services.serving import factory, settings
from realtools import free_port, uvicorn_running
from servetools import FEATURES, Client, Registry, X, fitted, metric

# -- predictions ---------------------------------------------------------------------------

def test_predictions_match_the_models_own_predict(registry: Registry, start: Any) -> None:
    client = start("iris:production", "iris:2").client()
    rows = X[::25].tolist()
    status, body = client.predict("iris", rows)
    assert status == 200
    v1 = registry.estimators[("iris", 1)]
    assert body["model"] == "iris" and body["version"] == 1 and body["stage"] == "production"
    assert body["predictions"] == v1.predict(X[::25]).tolist()
    assert np.allclose(body["probabilities"], v1.predict_proba(X[::25]))

    v2 = registry.estimators[("iris", 2)]
    records = [dict(zip(FEATURES, row, strict=True)) for row in rows]
    status, body = client.predict("iris:2", list(reversed(records)))
    assert (status, body["version"]) == (200, 2)
    assert body["predictions"] == v2.predict(X[::25][::-1]).tolist()
    status, body = client.predict("iris:production", rows[:1])
    assert (status, body["version"]) == (200, 1)


def test_lists_models_health_and_openapi(start: Any) -> None:
    client = start("iris:production", "iris:2").client()
    status, body = client.request("GET", "/v1/models")
    assert status == 200
    models = {m["ref"]: m for m in body["models"]}
    assert models["iris:production"]["version"] == 1
    assert models["iris:production"]["metadata"]["algo"] == "LogisticRegression"
    assert models["iris:2"]["features"] == FEATURES
    assert client.request("GET", "/healthz") == (200, {"status": "ok", "models": 2,
                                                     "pid": os.getpid()})
    status, doc = client.request("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert {"/v1/models/{target}/predict", "/v1/models", "/healthz", "/metrics",
            "/v1/admin/reload", "/openapi.json"} == set(doc["paths"])


BAD_REQUESTS = [
    ("iris", None, 400, "not valid JSON"),
    ("iris", {"rows": [[1, 2, 3, 4]]}, 400, '{"inputs"'),
    ("iris", {"inputs": []}, 400, "non-empty"),
    ("iris", {"inputs": [[1, 2, 3]]}, 422, "row 0 has 3 features; model iris:1 expects 4"),
    ("iris", {"inputs": [[1, 2, 3, 4], {"a": 1}]}, 400, "all lists or all objects"),
    ("iris", {"inputs": [["a", 2, 3, 4]]}, 422, "rejected the inputs"),
    ("iris", {"inputs": [[[1], 2, 3, 4]]}, 422, "numbers, strings"),
    ("iris", {"inputs": [[10**400, 2, 3, 4]]}, 422, "finite and fit a 64-bit float"),
    ("iris", {"inputs": [[float("nan"), 2, 3, 4]]}, 422, "finite and fit a 64-bit float"),
    ("iris", {"inputs": [{"sepal_length": 1}]}, 422, "without feature names"),
    ("iris:2", {"inputs": [{"sepal_length": 1}]}, 422, "missing feature(s) sepal_width"),
    ("nope", {"inputs": [[1, 2, 3, 4]]}, 404, "model 'nope' is not served"),
    ("iris:7", {"inputs": [[1, 2, 3, 4]]}, 404, "not served at '7'"),
    ("iris:staging", {"inputs": [[1, 2, 3, 4]]}, 404, "not served at 'staging'"),
]


def test_bad_requests_get_a_4xx_with_a_clear_message(start: Any) -> None:
    client = start("iris:production", "iris:2").client()
    answers = []
    for target, body, _, _ in BAD_REQUESTS:
        raw = b'{"inputs": [[1, 2' if body is None else json.dumps(body).encode()
        answers.append(client.request("POST", f"/v1/models/{target}/predict", raw=raw))
    assert [status for status, _ in answers] == [status for _, _, status, _ in BAD_REQUESTS]
    for (_, answer), (_, _, _, message) in zip(answers, BAD_REQUESTS, strict=True):
        assert message in answer["error"]


def raw_exchange(port: int, head: bytes, body: Iterator[bytes] | tuple[bytes, ...]) -> bytes:
    """Send a hand-written request on a plain socket; the response's status line and headers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in body:
            sock.sendall(chunk)
        return sock.recv(65536).partition(b"\r\n\r\n")[0]


def test_a_body_over_the_limit_is_refused_before_it_is_read(start: Any) -> None:
    """A client announcing a TiB (or streaming more than the limit) gets a 413 at once; the
    server neither waits for nor holds the whole body."""
    port = start("iris:production").port
    head = (b"POST /v1/models/iris/predict HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\n")
    started = time.monotonic()
    answer = raw_exchange(port, head + b"Content-Length: 1099511627776\r\n\r\n", (b"{",))
    assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 5
    mib = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    answer = raw_exchange(port, head + b"Transfer-Encoding: chunked\r\n\r\n",
                          (b"1\r\n[\r\n",) + (mib,) * 17 + (b"0\r\n\r\n",))
    assert answer.startswith(b"HTTP/1.1 413")


def test_unknown_routes_and_methods_answer_json(start: Any) -> None:
    client = start("iris:production").client()
    status, body = client.request("GET", "/v1/nothing")
    assert status == 404 and "/v1/nothing" in body["error"]
    status, body = client.request("GET", "/v1/models/iris/predict")
    assert status == 405 and "error" in body


# -- fuzzing request bodies -------------------------------------------------------------------
# Anything a client sends gets a 200 or a 4xx with a JSON error: never a 500, never a hang (the
# client's socket timeout bounds each request), and the server keeps answering.

SCALARS = (st.none() | st.booleans() | st.floats() | st.text(max_size=12)
           | st.integers() | st.integers(min_value=10**300, max_value=10**400))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
ROWS = st.lists(st.lists(SCALARS | JSON, max_size=6), min_size=1, max_size=3)
RECORDS = st.lists(st.dictionaries(st.sampled_from(FEATURES) | st.text(max_size=8),
                                   SCALARS | JSON, max_size=6), min_size=1, max_size=3)
BODIES = JSON | st.fixed_dictionaries({"inputs": JSON | ROWS | RECORDS})
TARGETS = st.sampled_from(["iris", "iris:2", "nope", "iris:staging"])


def assert_answered(client: Client, target: str, raw: bytes) -> None:
    status, body = client.request("POST", f"/v1/models/{target}/predict", raw=raw)
    assert status == 200 or 400 <= status < 500, (status, body, raw[:200])
    if status != 200:
        assert isinstance(body, dict) and isinstance(body["error"], str), (status, body)


def test_fuzz_json_bodies_get_a_4xx_never_a_500(tmp_path: Path, start: Any) -> None:
    client = start("iris:production", "iris:2", log_predictions=tmp_path / "p.jsonl",
                   sample_rate=1.0).client()

    @given(target=TARGETS, body=BODIES)
    def check(target: str, body: Any) -> None:
        # json.dumps writes NaN and Infinity, which Python's parser (the server's) accepts.
        assert_answered(client, target, json.dumps(body).encode())

    check()
    assert client.request("GET", "/healthz")[0] == 200


def test_fuzz_raw_bytes_get_a_4xx_never_a_500(start: Any) -> None:
    client = start("iris:production", "iris:2").client()

    @given(target=TARGETS, raw=st.binary(max_size=300)
           | st.builds(lambda b, cut: b[:cut], BODIES.map(lambda v: json.dumps(v).encode()),
                       st.integers(min_value=0, max_value=200)))
    def check(target: str, raw: bytes) -> None:
        assert_answered(client, target, raw)

    check()
    assert client.request("GET", "/healthz")[0] == 200


def test_fuzz_admin_authorization_headers(start: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMA_SERVE_ADMIN_TOKEN", "the-token")
    client = start("iris:production", host="0.0.0.0", poll=0).client()

    # What http.client can put in a header: latin-1 without control characters.
    @given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                 exclude_characters="\x7f"), max_size=40))
    def check(value: str) -> None:
        status, body = client.request("POST", "/v1/admin/reload",
                                      headers={"Authorization": value})
        assert status in (200, 401) and isinstance(body, dict), (status, body)
        assert status == 401 or "the-token" in value

    check()


# -- monitoring ------------------------------------------------------------------------------

def test_metrics_counters_move(start: Any) -> None:
    client = start("iris:production").client()
    for _ in range(3):
        assert client.predict("iris", [[5.1, 3.5, 1.4, 0.2]])[0] == 200
    assert client.predict("iris", [[5.1]])[0] == 422
    status, text = client.request("GET", "/metrics")
    assert status == 200
    primary = {"model": "iris", "version": "1", "role": "primary"}
    assert metric(text, "moma_requests_total", **primary, code="200") == 3
    assert metric(text, "moma_requests_total", **primary, code="422") == 1
    assert metric(text, "moma_request_errors_total", **primary, reason="invalid_input") == 1
    assert metric(text, "moma_request_duration_seconds_count", **primary) == 3
    assert metric(text, "moma_request_duration_seconds_bucket", **primary, le="+Inf") == 3
    assert 'moma_model_info{ref="iris:production",model="iris",version="1"' in text
    assert "# TYPE moma_request_duration_seconds histogram" in text


def test_prediction_log_is_sampled_json_lines(tmp_path: Path, start: Any) -> None:
    log = tmp_path / "logs" / "predictions.jsonl"
    client = start("iris:2", log_predictions=log, sample_rate=1.0).client()
    assert client.predict("iris:2", X[:2].tolist())[0] == 200
    *entries, request = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["features"] for e in entries] == [dict(zip(FEATURES, row, strict=True))
                                                for row in X[:2].tolist()]
    assert (request["status"], request["rows"], request["request"]) == (
        200, 2, entries[0]["request"])  # how it went: tests/services/test_monitor.py reads it
    assert {(e["model"], e["version"], e["format"]) for e in entries} == {("iris", 2, 1)}
    assert entries[0]["ts"].endswith("Z") and len(entries[0]["probabilities"]) == 3


def test_sample_rate_zero_logs_nothing(tmp_path: Path, start: Any) -> None:
    log = tmp_path / "predictions.jsonl"
    client = start("iris:2", log_predictions=log, sample_rate=0.0).client()
    assert client.predict("iris:2", X[:2].tolist())[0] == 200
    assert log.read_text() == ""


# -- switching -------------------------------------------------------------------------------

def test_stage_switch_under_continuous_requests_loses_none(registry: Registry,
                                                           start: Any) -> None:
    running = start(poll=0)
    switched = threading.Event()
    results: list[list[tuple[int, int | None]]] = [[], []]

    def hammer(out: list[tuple[int, int | None]]) -> None:
        client = running.client()
        seen_new = 0
        for _ in range(3000):  # bounded: the switch happens within a few dozen requests
            status, body = client.predict("iris:production", [[5.1, 3.5, 1.4, 0.2]])
            out.append((status, body.get("version")))
            seen_new += switched.is_set() and body.get("version") == 2
            if seen_new >= 20:
                return

    clients = [threading.Thread(target=hammer, args=(r,)) for r in results]
    for t in clients:
        t.start()
    while min(len(r) for r in results) < 20:
        time.sleep(0.005)
    registry.tag("iris:2", "production")
    status, report = running.client().request("POST", "/v1/admin/reload")
    switched.set()
    for t in clients:
        t.join(timeout=30)
    assert status == 200
    assert report["switched"] == [{"spec": "iris:production", "old_version": 1,
                                   "new_version": 2}]
    for r in results:
        assert {status for status, _ in r} == {200}
        versions = [v for _, v in r]
        first_new = versions.index(2)
        assert set(versions[:first_new]) == {1} and set(versions[first_new:]) == {2}
    _, text = running.client().request("GET", "/metrics")
    assert metric(text, "moma_reloads_total", outcome="switched") == 1


def test_a_request_in_flight_keeps_the_model_it_started_with(registry: Registry) -> None:
    server, _ = serve.prepare(registry.repo, ["iris:production"])
    in_flight = server.table.find("iris:production").model  # what a request holds
    registry.tag("iris:2", "production")
    assert [(s.spec, s.old_version, s.new_version) for s in server.reload().switched] == [
        ("iris:production", 1, 2)]
    assert in_flight.resolved.version == 1
    assert in_flight.predict(X[:5])[0] == registry.estimators[("iris", 1)].predict(X[:5]).tolist()
    assert server.table.find("iris:production").model.resolved.version == 2


def test_poller_picks_up_a_moved_stage(registry: Registry, start: Any) -> None:
    client = start(poll=0.1).client()
    assert client.predict("iris", [[5.1, 3.5, 1.4, 0.2]])[1]["version"] == 1
    registry.tag("iris:2", "production")
    deadline = time.monotonic() + 10
    while client.predict("iris", [[5.1, 3.5, 1.4, 0.2]])[1]["version"] != 2:
        assert time.monotonic() < deadline, "the poller never switched"
        time.sleep(0.05)


def test_a_version_that_fails_to_load_never_replaces_the_live_one(registry: Registry,
                                                                  start: Any) -> None:
    running = start("iris:production", poll=0)
    v3 = registry.register("iris", fitted(LogisticRegression(C=0.5, max_iter=300)))
    registry.repo.cache.oid_to_path(registry.oid(f"iris:{v3}")).unlink()
    registry.tag(f"iris:{v3}", "production")
    client = running.client()
    status, report = client.request("POST", "/v1/admin/reload")
    assert status == 200 and report["switched"] == []
    assert "not in the cache" in report["errors"][0]
    status, body = client.predict("iris:production", [[5.1, 3.5, 1.4, 0.2]])
    assert (status, body["version"]) == (200, 1)


# -- admin routes off loopback -----------------------------------------------------------------

TOKEN = "t0k3n-from-the-environment"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_admin_reload_stays_open_on_loopback(start: Any) -> None:
    for host in ("127.0.0.1", "localhost"):
        assert start("iris:production", host=host, poll=0).client().request(
            "POST", "/v1/admin/reload")[0] == 200


def test_admin_reload_off_loopback_needs_the_token_from_the_environment(
        start: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMA_SERVE_ADMIN_TOKEN", TOKEN)
    client = start("iris:production", host="0.0.0.0", poll=0).client()
    for headers in ({}, bearer("wrong"), bearer(TOKEN[:-1]), {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, bearer("caf\u00e9")):
        status, body = client.request("POST", "/v1/admin/reload", headers=headers)
        assert status == 401, headers
        assert "Authorization: Bearer" in body["error"] and TOKEN not in json.dumps(body)
    status, report = client.request("POST", "/v1/admin/reload", headers=bearer(TOKEN))
    assert (status, report["errors"]) == (200, [])
    # The rest of the API is unchanged.
    assert client.predict("iris", [[5.1, 3.5, 1.4, 0.2]])[0] == 200


def test_admin_reload_off_loopback_without_a_token_is_off(registry: Registry) -> None:
    """The real command bound to 0.0.0.0 (requests go to 127.0.0.1 only)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moma_cli", "serve", "--host", "0.0.0.0", "--port", str(port),
         "--poll", "0"], cwd=registry.moma.root, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        client = wait_until_up(port, proc)
        status, body = client.request("POST", "/v1/admin/reload", headers=bearer(""))
        assert (status, client.predict("iris", [[5.1, 3.5, 1.4, 0.2]])[0]) == (403, 200)
        assert "MOMA_SERVE_ADMIN_TOKEN is not set" in body["error"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "POST /v1/admin/reload is off: set MOMA_SERVE_ADMIN_TOKEN" in err


def test_a_token_in_config_never_opens_the_admin_route(registry: Registry, start: Any) -> None:
    root = registry.moma.root
    (root / ".moma.local.yaml").write_text(f"serve:\n  admin_token: {TOKEN}\n")
    client = start("iris:production", host="0.0.0.0", poll=0).client()
    assert client.request("POST", "/v1/admin/reload", headers=bearer(TOKEN))[0] == 403
    (root / ".moma.local.yaml").unlink()
    with (root / ".moma.yaml").open("a") as config:
        config.write(f"serve:\n  admin_token: {TOKEN}\n")
    registry.moma.git("commit", "-qam", "a token in the committed config")
    result = registry.moma("serve", "--host", "0.0.0.0", "--port", str(free_port()),
                           ok=False)
    assert result.exit_code == 1 and "'serve.admin_token' looks like a credential" in (
        result.stderr)


# -- startup ---------------------------------------------------------------------------------

def test_start_refuses_a_corrupt_cache_object(registry: Registry) -> None:
    path = registry.repo.cache.oid_to_path(registry.oid("iris:1"))
    path.chmod(0o644)
    path.write_bytes(b"not the model")
    with pytest.raises(MomaError, match="is corrupt"):
        serve.prepare(registry.repo, ["iris:1"])


def test_default_serves_production_models_and_skips_the_rest(registry: Registry) -> None:
    registry.register("other", fitted(DecisionTreeClassifier(max_depth=1)))
    server, report = serve.prepare(registry.repo)
    assert [s.spec for s in server.table.slots] == ["iris:production"]
    assert report.errors == ["no version of other is in stage 'production'"]


def test_options_are_checked(registry: Registry) -> None:
    with pytest.raises(MomaError, match="sample-rate"):
        serve.prepare(registry.repo, ["iris:1"], sample_rate=2)


def test_cli_without_production_models_says_how_to_fix(tmp_path: Path) -> None:
    moma = make_repo(tmp_path / "empty")
    result = moma("serve", "--port", str(free_port()), ok=False)
    assert result.exit_code == 1
    assert "no registered model has a 'production' stage" in result.stderr
    assert "moma models:tag" in result.stderr


def test_moma_serve_command_end_to_end(registry: Registry, tmp_path: Path) -> None:
    """The real command in a subprocess whose stdout is a pipe, as under Docker, systemd or
    CI: says what it serves while it runs, follows a moved tag, and on SIGTERM says it
    stopped and exits 0."""
    port = free_port()
    log = tmp_path / "preds.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moma_cli", "serve", "--port", str(port), "--poll", "0.2",
         "--log-predictions", str(log), "--sample-rate", "1"],
        cwd=registry.moma.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=container_env())
    try:
        client = wait_until_up(port, proc)
        assert read_line(proc, timeout=10).startswith("Serving iris:production (version 1")
        status, body = client.predict("iris", X[:3].tolist())
        assert (status, body["version"]) == (200, 1)
        assert body["predictions"] == registry.estimators[("iris", 1)].predict(X[:3]).tolist()
        registry.tag("iris:2", "production")
        deadline = time.monotonic() + 20
        while client.predict("iris", X[:1].tolist())[1]["version"] != 2:
            assert time.monotonic() < deadline, "the served stage never switched"
            time.sleep(0.05)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == "Stopped serving (SIGTERM)"
    assert {json.loads(line)["version"] for line in log.read_text().splitlines()} == {1, 2}


def container_env() -> dict[str, str]:
    """The environment without PYTHONUNBUFFERED, which a developer's shell may set and a
    container's seldom does: Python then block-buffers a piped stdout."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line on the child's stdout, read byte by byte from the pipe so that
    `communicate` later gets the rest (it reads the fd, not the text wrapper's buffer)."""
    assert proc.stdout is not None
    fd, data = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], \
            f"no line on stdout within {timeout} s (got {data!r})"
        byte = os.read(fd, 1)
        assert byte, f"stdout closed after {data!r}"
        data += byte
    return data.decode().rstrip("\n")


def wait_until_up(port: int, proc: subprocess.Popen[str]) -> Client:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            client = Client(port)
            if client.request("GET", "/healthz")[0] == 200:
                return client
        except OSError:
            time.sleep(0.05)
    raise AssertionError("moma serve did not start")


def test_moma_serve_workers_share_the_port_and_sum_their_metrics(registry: Registry,
                                                                 tmp_path: Path) -> None:
    """`--workers 2`: two processes answer on one port, /metrics from either counts every
    request, and SIGTERM stops them all, exits 0 and removes the metrics directory."""
    port, tmp = free_port(), tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moma_cli", "serve", "--port", str(port), "--workers", "2",
         "--poll", "0"], cwd=registry.moma.root, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=container_env() | {"TMPDIR": str(tmp)})
    try:
        wait_until_up(port, proc)
        pids: set[int] = set()
        deadline = time.monotonic() + 10
        while len(pids) < 2:  # a new connection each time: the kernel picks the worker
            assert time.monotonic() < deadline, f"only worker {pids} answered"
            pids.add(Client(port).request("GET", "/healthz")[1]["pid"])
        expected = registry.estimators[("iris", 1)].predict(X[:2]).tolist()
        for _ in range(40):
            status, body = Client(port).predict("iris", X[:2].tolist())
            assert (status, body["predictions"]) == (200, expected)
        primary = {"model": "iris", "version": "1", "role": "primary", "code": "200"}
        deadline = time.monotonic() + 5
        while True:  # another worker's counts are published within 50 ms
            texts = [Client(port).request("GET", "/metrics")[1] for _ in range(4)]
            if all(metric(text, "moma_requests_total", **primary) == 40 for text in texts):
                break
            assert time.monotonic() < deadline, texts[0]
            time.sleep(0.05)
        assert 'moma_model_info{ref="iris:production",model="iris",version="1"' in texts[0]
        assert texts[0].rstrip().endswith(" 2")  # both workers serve it
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == "Stopped serving (SIGTERM)"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert list(tmp.iterdir()) == []


def workers_serving(port: int, version: int) -> float:
    """How many live workers serve `version` of iris, by moma_model_info."""
    text = Client(port).request("GET", "/metrics")[1]
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("moma_model_info{") and f'version="{version}"' in line)


def test_admin_reload_reaches_every_worker(registry: Registry, tmp_path: Path) -> None:
    """`--workers 2 --poll 0`: one POST /v1/admin/reload, answered by one worker, switches
    both (the other sees its signal), and every request afterwards gets the new version."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moma_cli", "serve", "--port", str(port), "--workers", "2",
         "--poll", "0"], cwd=registry.moma.root, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=container_env())
    try:
        wait_until_up(port, proc)
        deadline = time.monotonic() + 30
        while workers_serving(port, 1) < 2:  # both have loaded version 1
            assert time.monotonic() < deadline, "the second worker never started"
            time.sleep(0.05)
        registry.tag("iris:2", "production")
        status, report = Client(port).request("POST", "/v1/admin/reload")
        assert status == 200
        assert report["switched"] == [{"spec": "iris:production", "old_version": 1,
                                       "new_version": 2}]
        deadline = time.monotonic() + 30
        while workers_serving(port, 2) < 2 or workers_serving(port, 1) > 0:
            assert time.monotonic() < deadline, "a worker kept serving version 1"
            time.sleep(0.05)
        for _ in range(20):  # a new connection each time: the kernel picks the worker
            status, body = Client(port).predict("iris", X[:1].tolist())
            assert (status, body["version"]) == (200, 2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_the_app_factory_serves_from_moma_serve_variables(registry: Registry, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """What `uvicorn --factory moma_cli.services.serving.factory:create_app` gets: the
    options from MOMA_SERVE_* variables, its metrics published to MOMA_SERVE_METRICS_DIR."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    options = settings.Settings(refs=("iris:2",), host="127.0.0.1", poll=0.0,
                                canaries=(("iris:1", 0.0),))
    for name, value in (options.to_env(registry.moma.root)
                        | {settings.METRICS_DIR: str(metrics_dir)}).items():
        monkeypatch.setenv(name, value)
    port = free_port()
    with uvicorn_running(factory.create_app, port, factory=True):
        client = Client(port)
        status, body = client.predict("iris", X[:1].tolist())
        assert (status, body["version"], body["role"]) == (200, 2, "primary")
        assert client.request("POST", "/v1/admin/reload")[0] == 200  # loopback: open
    published = json.loads((metrics_dir / f"worker-{os.getpid()}.json").read_text())
    assert [value for labels, value in published["metrics"]["requests"]] == [1]
    assert {dict(labels)["role"] for labels in published["models"]} == {"primary", "canary"}


def test_settings_from_the_environment_are_checked() -> None:
    with pytest.raises(MomaError, match="MOMA_SERVE_CANARY: 'iris:staging' is not REF=PERCENT"):
        settings.Settings.from_env({settings.CANARY: "iris:staging"})
    with pytest.raises(MomaError, match="MOMA_SERVE_POLL: 'often' is not a number"):
        settings.Settings.from_env({settings.POLL: "often"})
    assert settings.Settings.from_env({}).host == settings.UNKNOWN_HOST
