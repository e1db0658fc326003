"""`moma serve --canary` and `--shadow`: real uvicorn servers (the fixtures of test_serve.py)
splitting and mirroring requests between versions of one registered model."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from helpers import assert_one_error
from moma_cli.errors import MomaError
from moma_cli.services import serve
from moma_cli.services.serving import traffic
from servetools import Client, Registry, X, metric

ROW = [[5.1, 3.5, 1.4, 0.2]]


class SlowFailing:
    """A shadow that takes its time and then raises: what the client must never notice."""

    n_features_in_ = 4

    def fit(self, x: Any, y: Any) -> SlowFailing:
        return self

    def predict(self, x: Any) -> Any:
        time.sleep(2.0)
        raise RuntimeError("the shadow broke")


@pytest.fixture
def staged(registry: Registry) -> Registry:
    """iris 1 (a LogisticRegression) in production; 2 (a decision tree) in staging and in
    candidate."""
    registry.tag("iris:2", "staging")
    registry.tag("iris:2", "candidate")
    return registry


def wait_for(client: Client, name: str, want: float, **labels: str) -> str:
    """/metrics once series `name{labels}` reached `want` (shadows answer after the client)."""
    deadline = time.monotonic() + 10
    while True:
        text = client.request("GET", "/metrics")[1]
        if metric(text, name, **labels) >= want:
            return str(text)
        assert time.monotonic() < deadline, f"{name}{labels} never reached {want}"
        time.sleep(0.02)


# -- canary ------------------------------------------------------------------------------------

def test_canary_takes_its_share_and_says_which_version_answered(staged: Registry,
                                                                 start: Any) -> None:
    client = start("iris:production", canaries=[("iris:staging", 30.0)]).client()
    answers = [client.predict(target, ROW)[1] for target in ["iris", "iris:production"] * 200]
    roles = Counter((a["role"], a["version"]) for a in answers)
    assert set(roles) == {("primary", 1), ("canary", 2)}
    # 400 draws at 30%: mean 120, standard deviation 9.2; this bound is over 6 of them.
    assert 60 <= roles[("canary", 2)] <= 180
    # A version or the canary's own ref gets exactly that model.
    assert {client.predict("iris:1", ROW)[1]["role"] for _ in range(20)} == {"primary"}
    _, answer = client.predict("iris:staging", ROW)
    assert (answer["role"], answer["version"], answer["stage"]) == ("canary", 2, "staging")


def test_a_request_key_always_gets_the_same_answer(staged: Registry, start: Any) -> None:
    running = start("iris:production", canaries=[("iris:staging", 50.0)])
    client = running.client()
    by_key: dict[str, set[str]] = {}
    for i in range(30):
        key = f"user-{i}"
        for _ in range(3):
            _, answer = client.request("POST", "/v1/models/iris/predict", {"inputs": ROW},
                                       headers={"X-Request-Key": key})
            by_key.setdefault(key, set()).add(answer["role"])
        _, answer = client.request("POST", "/v1/models/iris/predict",
                                   {"inputs": ROW, "request_key": key})
        by_key[key].add(answer["role"])
    assert all(len(roles) == 1 for roles in by_key.values()), by_key
    assert {role for roles in by_key.values() for role in roles} == {"primary", "canary"}
    status, answer = client.request("POST", "/v1/models/iris/predict",
                                    {"inputs": ROW, "request_key": [1]})
    assert status == 400 and "'request_key' must be a string or an integer" in answer["error"]

    # The same split, over many keys and percentages, without HTTP.
    target = running.server.table.find("iris")
    splitter = traffic.Splitter(seed=0)
    keys = [f"k{i}" for i in range(20000)]

    def canary_keys(percent: float) -> set[str]:
        at = replace(target, percent=percent)
        return {k for k in keys if splitter.choose(at, k)[1] == "canary"}

    ten, thirty = canary_keys(10), canary_keys(30)
    assert 1800 <= len(ten) <= 2200 and 5600 <= len(thirty) <= 6400
    assert ten <= thirty  # raising the percentage only moves keys onto the canary
    assert canary_keys(0) == set() and canary_keys(100) == set(keys)
    assert traffic.place("iris", "k1") != traffic.place("other", "k1")


# -- shadow ------------------------------------------------------------------------------------

def test_shadow_answers_are_logged_beside_the_primary_and_counted(
        staged: Registry, start: Any, tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    client = start("iris:production", shadows=["iris:candidate"], log_predictions=log,
                   sample_rate=1.0).client()
    rows = X[::7]  # 22 rows, 3 of which the two versions disagree on
    for i in range(0, len(rows), 5):
        status, answer = client.predict("iris", rows[i:i + 5].tolist())
        assert (status, answer["role"], answer["version"]) == (200, "primary", 1)
    shadow = {"model": "iris", "version": "2", "role": "shadow"}
    text = wait_for(client, "moma_shadow_requests_total", 5, **shadow, outcome="answered")
    v1, v2 = staged.estimators[("iris", 1)], staged.estimators[("iris", 2)]
    agreed = int((v1.predict(rows) == v2.predict(rows)).sum())
    assert agreed < len(rows)  # the test would not show a disagreement otherwise
    assert metric(text, "moma_shadow_predictions_total", **shadow) == len(rows)
    assert metric(text, "moma_shadow_agreement_total", **shadow) == agreed
    assert metric(text, "moma_request_duration_seconds_count", **shadow) == 5
    assert metric(text, "moma_requests_total", **shadow, code="200") == 0  # not client requests

    entries = [json.loads(line) for line in log.read_text().splitlines()]
    rows_logged = [e for e in entries if "features" in e]  # besides one status line a request
    assert sorted(e["status"] for e in entries if "status" in e) == [200] * 5
    by_role = {role: [e for e in rows_logged if e["role"] == role]
               for role in ("primary", "shadow")}
    assert {(e["version"], e["stage"]) for e in by_role["shadow"]} == {(2, "candidate")}
    assert {e["version"] for e in by_role["primary"]} == {1}
    for role, model in (("primary", v1), ("shadow", v2)):
        lines = sorted(by_role[role], key=lambda e: (e["request"], list(e["features"].values())))
        assert len(lines) == len(rows)
        assert sorted(e["prediction"] for e in lines) == sorted(model.predict(rows).tolist())
    # Each request's lines carry one id, shared by the answer sent and the shadow's.
    ids = {role: Counter(e["request"] for e in lines) for role, lines in by_role.items()}
    assert ids["primary"] == ids["shadow"] and sorted(ids["primary"].values()) == [2, 5, 5, 5, 5]


def test_a_slow_failing_shadow_never_delays_or_breaks_the_primary(staged: Registry,
                                                                  start: Any) -> None:
    staged.register("iris", SlowFailing())
    staged.tag("iris:3", "candidate")
    client = start("iris:production", shadows=["iris:candidate"]).client()
    for _ in range(3):
        started = time.monotonic()
        status, answer = client.predict("iris", ROW)
        assert (status, answer["role"]) == (200, "primary")
        assert time.monotonic() - started < 1.5  # the shadow takes 2 s: a loaded CI
        # machine may be slow, but never by the shadow's whole run
    text = wait_for(client, "moma_shadow_requests_total", 1, model="iris", version="3",
                    role="shadow", outcome="failed")
    assert metric(text, "moma_requests_total", model="iris", version="1", role="primary",
                  code="200") == 3


# -- metrics and stage moves -------------------------------------------------------------------

def test_metrics_label_every_series_with_model_version_and_role(staged: Registry,
                                                                start: Any) -> None:
    client = start("iris:production", canaries=[("iris:staging", 50.0)],
                   shadows=["iris:candidate"]).client()
    roles = Counter(client.predict("iris", ROW)[1]["role"] for _ in range(40))
    text = wait_for(client, "moma_shadow_requests_total", 40, model="iris", version="2",
                    role="shadow", outcome="answered")
    assert metric(text, "moma_requests_total", model="iris", version="1", role="primary",
                  code="200") == roles["primary"]
    assert metric(text, "moma_requests_total", model="iris", version="2", role="canary",
                  code="200") == roles["canary"]
    assert metric(text, "moma_shadow_predictions_total", model="iris", version="2",
                  role="shadow") == 40
    for ref, version, role in (("iris:production", 1, "primary"), ("iris:staging", 2, "canary"),
                               ("iris:candidate", 2, "shadow")):
        assert (f'moma_model_info{{ref="{ref}",model="iris",version="{version}",'
                f'role="{role}"') in text
    models = {m["ref"]: m for m in client.request("GET", "/v1/models")[1]["models"]}
    assert models["iris:staging"]["role"] == "canary" and models["iris:staging"]["percent"] == 50
    assert models["iris:candidate"]["role"] == "shadow"


def test_canary_and_shadow_follow_their_stage_tags(staged: Registry, start: Any) -> None:
    client = start("iris:production", canaries=[("iris:staging", 100.0)],
                   shadows=["iris:candidate"], poll=0).client()
    assert client.predict("iris", ROW)[1]["version"] == 2
    staged.tag("iris:1", "staging")
    staged.tag("iris:1", "candidate")
    status, report = client.request("POST", "/v1/admin/reload")
    assert status == 200 and sorted(
        (s["spec"], s["old_version"], s["new_version"]) for s in report["switched"]) == [
        ("iris:candidate", 2, 1), ("iris:staging", 2, 1)]
    _, answer = client.predict("iris", ROW)
    assert (answer["role"], answer["version"], answer["stage"]) == ("canary", 1, "staging")
    text = wait_for(client, "moma_shadow_requests_total", 1, model="iris", version="1",
                    role="shadow", outcome="answered")
    assert 'moma_model_info{ref="iris:staging",model="iris",version="1",role="canary"' in text


# -- refused options ---------------------------------------------------------------------------

REFUSED = [
    ([("other:staging", 10.0)], [], "--canary other:staging: model 'other' is not served here"),
    ([], ["other:2"], "--shadow other:2: model 'other' is not served here"),
    ([("iris:production", 10.0)], [], "iris:production is already served as the primary"),
    ([("iris:staging", 10.0)], ["iris:staging"], "iris:staging is already served as the canary"),
    ([("iris:staging", 10.0), ("iris:2", 5.0)], [], "iris already has a canary (iris:staging)"),
    ([], ["iris:staging", "iris:candidate"], "iris already has a shadow (iris:staging)"),
    ([("iris:staging", 100.5)], [], "--canary iris:staging=100.5%: the percentage is not"),
    ([("iris:staging", -1.0)], [], "the percentage is not between 0 and 100"),
]


def test_bad_canary_and_shadow_options_are_refused(staged: Registry) -> None:
    for canaries, shadows, message in REFUSED:
        with pytest.raises(MomaError) as caught:
            serve.prepare(staged.repo, ["iris:production"], canaries=canaries,
                          shadows=shadows)
        assert message in caught.value.message
    # The command: a malformed option is a usage error (2), a refused one an error (1).
    moma = staged.moma
    result = moma("serve", "iris:production", "--canary", "iris:staging", ok=False)
    assert result.exit_code == 2 and "write it as REF=PERCENT" in result.stderr
    assert moma("serve", "iris:production", "--canary", "iris:staging=ten%",
                ok=False).exit_code == 2
    for option, message in (("iris:staging=150%", "the percentage is not between 0 and 100"),
                            ("other:staging=10", "model 'other' is not served here")):
        assert_one_error(moma("serve", "iris:production", "--canary", option, ok=False),
                         message)


