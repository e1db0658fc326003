"""`moma config`: every documented key, validated, written atomically with the file's other
lines (comments, order) kept; credentials only in the git-ignored .moma.local.yaml."""

from __future__ import annotations

import difflib
import json

import pytest

from conftest import PROJECT, Moma, RemoteSpec, write
from helpers import assert_one_error

EXAMPLE = PROJECT / ".moma.example.yaml"


@pytest.fixture
def documented(repo: Moma) -> Moma:
    """A repository whose .moma.yaml is the documented example, comments and all."""
    write(repo.root / ".moma.yaml", EXAMPLE.read_text())
    return repo


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                   lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.mark.parametrize("key, value, shown", [
    ("core.hash", "sha256", "sha256"),
    ("core.jobs", "8", "8"),
    ("cache.dir", ".moma/other-cache", ".moma/other-cache"),
    ("cache.type", "hardlink,copy", "hardlink,copy"),
    ("remotes.storage.url", "s3://other-bucket/moma", "s3://other-bucket/moma"),
    ("remotes.storage.endpointurl", "http://127.0.0.1:9001", "http://127.0.0.1:9001"),
    ("remotes.storage.region", "eu-west-1", "eu-west-1"),
    ("remotes.storage.profile", "other", "other"),
    ("remotes.storage.jobs", "4", "4"),
    ("remotes.storage.verify_ssl", "false", "false"),
    ("models.credit-risk.checks", "[accuracy >= 0.9, f1 >= 0.5]", "[accuracy >= 0.9, f1 >= 0.5]"),
    ("models.credit-risk.retrain.every", "2w", "2w"),
    ("models.credit-risk.retrain.stage", "evaluate", "evaluate"),
    ("alerts.webhook", "https://hooks.example.com/other", "https://hooks.example.com/other"),
    ("registry.stages", "dev,production", "[dev, production]"),
    ("stages.train.cmd", "python train.py --fast", "python train.py --fast"),
    ("stages.train.deps", "[train.py, data/prepared]", "[train.py, data/prepared]"),
    ("stages.train.outs", "model.joblib", "[model.joblib]"),
    ("stages.train.params", "params.yaml:train.seed,train.max_depth",
     "['params.yaml:train.seed,train.max_depth']"),
    ("stages.evaluate.metrics", "[scores.json]", "[scores.json]"),
])
def test_every_documented_key_is_set_on_its_own_line(documented: Moma, key: str, value: str,
                                                     shown: str) -> None:
    before = (documented.root / ".moma.yaml").read_text()
    documented("config", key, value)
    after = (documented.root / ".moma.yaml").read_text()
    assert documented("config", key).stdout.strip() == shown
    changed = changed_lines(before, after)
    # One line replaced, its comment (when it has one) still on it; a block list (checks)
    # becomes one flow list.
    assert [line[0] for line in changed] == ["-"] * (len(changed) - 1) + ["+"], changed
    old, new = changed[0], changed[-1]
    if "#" in old:
        assert old[old.index("#"):] == new[new.index("#"):]
    documented("status")  # the configuration still loads


def test_a_new_key_is_added_under_its_section_and_read_back(documented: Moma) -> None:
    before = (documented.root / ".moma.yaml").read_text()
    documented("config", "remotes.backup.url", "/srv/backup")
    documented("config", "remotes.backup.jobs", "2")
    after = (documented.root / ".moma.yaml").read_text()
    assert changed_lines(before, after) == ["+  backup:", "+    url: /srv/backup", "+    jobs: 2"]
    listing = json.loads(documented("remote", "list", "--json").stdout)
    assert {r["name"]: r["options"] for r in listing}["backup"] == {"jobs": 2}
    documented("config", "core.remote", "backup")
    assert documented("remote", "default").stdout.strip() == "backup"


def test_unset_removes_the_entry_and_an_emptied_section(documented: Moma) -> None:
    before = (documented.root / ".moma.yaml").read_text()
    res = documented("config", "--unset", "alerts.webhook")
    assert res.stdout.strip() == "alerts.webhook unset in .moma.yaml"
    after = (documented.root / ".moma.yaml").read_text()
    assert [line[0] for line in changed_lines(before, after)] == ["-", "-"]
    assert "alerts:" not in after
    res = documented("config", "alerts.webhook", ok=False)
    assert_one_error(res, "alerts.webhook is not set")
    res = documented("config", "--unset", "alerts.webhook", ok=False)
    assert_one_error(res, "alerts.webhook is not set in .moma.yaml")


@pytest.mark.parametrize("key, value, message", [
    ("core.hash", "md5", "core.hash: unknown algorithm 'md5'"),
    ("core.jobs", "many", "core.jobs: expected a whole number, got 'many'"),
    ("core.remote", "nowhere", "core.remote: default remote 'nowhere' is not defined"),
    ("cache.type", "teleport", "cache.type: unknown link type teleport"),
    ("cache.dir", "/elsewhere", "cache.dir '/elsewhere' is outside the repository"),
    ("remotes.storage.verify_ssl", "maybe", "remotes.storage.verify_ssl: expected true or false"),
    ("remotes.storage.url", "s3://AK:SK@bucket", "contains credentials"),
    ("models.credit-risk.checks", "accuracy is good", "models.credit-risk.checks[0]: cannot parse"),
    ("models.credit-risk.retrain.every", "soon", "models.credit-risk.retrain.every: 'soon' is "
                                                 "not a duration"),
    ("alerts.webhook", "ftp://x", "alerts.webhook: 'ftp://x' is not an http(s) URL"),
    ("registry.stages", "[bad name]", "registry.stages[0]"),
    ("stages.train.deps", "[../outside]", "stages.train.deps"),
    ("core.colour", "blue", "unknown configuration key 'core.colour'"),
])
def test_a_bad_value_is_one_error_naming_the_key_and_nothing_is_written(
        documented: Moma, key: str, value: str, message: str) -> None:
    before = (documented.root / ".moma.yaml").read_bytes()
    res = documented("config", key, value, ok=False)
    assert res.exit_code == 1
    assert_one_error(res, message)
    assert "hint: " in res.stderr
    assert (documented.root / ".moma.yaml").read_bytes() == before
    assert not (documented.root / ".moma.local.yaml").exists()
    assert [p.name for p in documented.root.iterdir() if "moma-tmp" in p.name] == []


def test_local_writes_the_git_ignored_file_and_wins(documented: Moma) -> None:
    before = (documented.root / ".moma.yaml").read_bytes()
    res = documented("config", "--local", "remotes.storage.endpointurl", "http://10.0.0.1:9000")
    assert res.stdout.strip() == "remotes.storage.endpointurl set in .moma.local.yaml"
    assert (documented.root / ".moma.yaml").read_bytes() == before
    assert documented("config", "remotes.storage.endpointurl").stdout.strip() == \
        "http://10.0.0.1:9000"
    got = json.loads(documented("config", "--local", "remotes.storage.endpointurl",
                                "--json").stdout)
    assert got == {"key": "remotes.storage.endpointurl", "value": "http://10.0.0.1:9000",
                   "file": ".moma.local.yaml"}
    listing = {s["key"]: s for s in json.loads(documented("config", "--list", "--json").stdout)}
    assert listing["remotes.storage.endpointurl"]["file"] == ".moma.local.yaml"
    assert listing["core.hash"] == {"key": "core.hash", "value": "blake3", "file": ".moma.yaml"}
    lines = documented("config", "--list").stdout.splitlines()
    assert "remotes.storage.endpointurl=http://10.0.0.1:9000" in lines
    assert "registry.stages=[dev, staging, production]" in lines
    assert documented.git("status", "--porcelain", "--", ".moma.local.yaml") == ""


def test_credentials_go_to_the_local_file_only(documented: Moma) -> None:
    secret = "wJalrXUtnFEMI-not-a-real-key"
    res = documented("config", "remotes.storage.secret_access_key", secret, ok=False)
    assert_one_error(res, "remotes.storage.secret_access_key: a credential must not be "
                          "written to the committed .moma.yaml")
    assert "moma config --local remotes.storage.secret_access_key VALUE" in res.stderr
    assert secret not in (documented.root / ".moma.yaml").read_text()
    res = documented("config", "--local", "remotes.storage.secret_access_key", secret)
    assert secret not in res.stdout + res.stderr
    assert secret in (documented.root / ".moma.local.yaml").read_text()
    for args in (("config", "remotes.storage.secret_access_key"), ("config", "--list"),
                 ("config", "--list", "--json"), ("remote", "list", "--json")):
        res = documented(*args)
        assert secret not in res.stdout + res.stderr
        assert "****" in res.stdout


def test_a_flow_style_section_is_still_edited_correctly(repo: Moma) -> None:
    write(repo.root / ".moma.yaml", "core: {hash: blake3}\n")
    repo("config", "core.jobs", "3")
    assert repo("config", "core.jobs").stdout.strip() == "3"
    assert repo("config", "core.hash").stdout.strip() == "blake3"


def test_config_fixes_a_configuration_that_does_not_load(repo: Moma) -> None:
    write(repo.root / ".moma.yaml", "# ours\ncore:\n  jobs: lots   # typo\n")
    assert_one_error(repo("status", ok=False), "core.jobs")
    repo("config", "core.jobs", "2")
    assert (repo.root / ".moma.yaml").read_text() == "# ours\ncore:\n  jobs: 2      # typo\n"
    repo("status")


def test_s3_credentials_from_the_local_file_reach_the_remote(
        repo: Moma, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import s3_bucket

    s3_bucket(moto_endpoint, monkeypatch, "config-creds")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    spec = RemoteSpec("s3", "s3://config-creds/moma", {"endpointurl": moto_endpoint,
                                                      "region": "us-east-1"})
    spec.add_to(repo)
    write(repo.root / "data.csv", "a,b\n1,2\n")
    repo("add", "data.csv")
    repo("config", "--local", "remotes.storage.access_key_id", "testing")
    repo("config", "--local", "remotes.storage.secret_access_key", "testing-secret-value")
    repo("push")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # for the test's own look
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-value")
    assert len(spec.oids()) == 1
