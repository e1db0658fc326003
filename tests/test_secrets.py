"""Secrets never enter a config file or an output line; a cloned .moma.yaml runs nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Moma, write
from helpers import assert_nothing_lost, assert_one_error, snapshot

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def outputs(res: object) -> str:
    return getattr(res, "stdout", "") + getattr(res, "stderr", "")


@pytest.mark.parametrize("url", [f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix",
                                 f"https://user:{SECRET}@example.com/store"])
def test_remote_urls_with_credentials_are_refused(repo: Moma, url: str) -> None:
    before = snapshot(repo.root)
    res = repo("remote", "add", "storage", url, ok=False)
    assert_one_error(res, "remote URLs must not contain credentials")
    assert SECRET not in outputs(res)
    repo("remote", "add", "storage", "s3://bucket/prefix")
    for args in (("url", url), ("endpointurl", f"http://minio:{SECRET}@127.0.0.1:9000")):
        res = repo("remote", "modify", "storage", *args, ok=False)
        assert_one_error(res, "remote URLs must not contain credentials")
        assert SECRET not in outputs(res)
    assert SECRET not in (repo.root / ".moma.yaml").read_text()
    before[".moma.yaml"] = (repo.root / ".moma.yaml").read_bytes()
    assert_nothing_lost(repo.root, before)


def test_secret_options_are_refused_by_remote_modify(repo: Moma) -> None:
    repo("remote", "add", "storage", "s3://bucket")
    res = repo("remote", "modify", "storage", "password", SECRET, "--local", ok=False)
    assert_one_error(res, "'password' must not be stored in a config file")
    for key in ("secret_access_key", "session_token"):
        res = repo("remote", "modify", "storage", key, SECRET, ok=False)
        assert_one_error(res, f"'{key}' must not be stored in the committed .moma.yaml")
        assert "add --local" in res.stderr
        assert SECRET not in outputs(res)
    assert not (repo.root / ".moma.local.yaml").exists()
    assert SECRET not in (repo.root / ".moma.yaml").read_text()


def test_s3_credentials_live_in_the_local_file_only_and_are_never_shown(repo: Moma) -> None:
    repo("remote", "add", "storage", "s3://bucket")
    repo("remote", "modify", "storage", "secret_access_key", SECRET, "--local")
    local = repo.root / ".moma.local.yaml"
    assert SECRET in local.read_text()
    assert local.stat().st_mode & 0o077 == 0  # this user's only
    assert SECRET not in outputs(repo("remote", "list"))
    assert SECRET not in outputs(repo("remote", "list", "--json"))
    assert SECRET not in outputs(repo("config", "--list", "--json"))
    assert repo.git("check-ignore", ".moma.local.yaml").strip() == ".moma.local.yaml"


@pytest.mark.parametrize("yaml_text, expected", [
    (f"remotes:\n  s3:\n    url: s3://bucket\n    secret_access_key: {SECRET}\n",
     "'remotes.s3.secret_access_key' looks like a credential"),
    (f"core:\n  hash: blake3\n  aws_secret_access_key: {SECRET}\n",
     "'core.aws_secret_access_key' looks like a credential"),
    (f"alerts:\n  slack:\n    api_token: {SECRET}\n",
     "'alerts.slack.api_token' looks like a credential"),
    (f"stages:\n  train:\n    env:\n      - {{password: {SECRET}}}\n",
     "'stages.train.env[0].password' looks like a credential"),
    (f"remotes:\n  s3:\n    url: s3://AKIA:{SECRET}@bucket\n",
     "remotes.s3.url 's3://****@bucket' contains credentials"),
], ids=["remote-key", "core-key", "nested-token", "in-list", "url"])
def test_secrets_in_the_committed_config_are_refused_and_never_printed(
        repo: Moma, yaml_text: str, expected: str) -> None:
    write(repo.root / ".moma.yaml", yaml_text)
    for command in (("status",), ("remote", "list"), ("checkout",)):
        res = repo(*command, ok=False)
        assert_one_error(res, expected)
        assert SECRET not in outputs(res)


def test_hyperparameters_are_not_mistaken_for_secrets(repo: Moma) -> None:
    write(repo.root / ".moma.yaml",
          "core:\n  hash: blake3\nstages:\n  train:\n    params: {max_tokens: 5, key_size: 3}\n")
    repo("status")


def test_listing_redacts_urls_from_a_hand_written_local_config(repo: Moma) -> None:
    repo("remote", "add", "storage", "s3://bucket/prefix", "--default")
    res = repo("remote", "list", "--json")
    assert "s3://bucket/prefix" in res.stdout
    # A hand-edited local config with credentials is refused, with the URL redacted.
    write(repo.root / ".moma.local.yaml", f"remotes:\n  storage:\n    url: s3://AK:{SECRET}@b\n")
    res = repo("remote", "list", ok=False)
    assert_one_error(res, "remotes.storage.url 's3://****@b' contains credentials")
    assert SECRET not in outputs(res)


def test_credentials_in_environment_urls_are_refused_redacted(repo: Moma,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    repo("remote", "add", "storage", "s3://bucket")
    monkeypatch.setenv("MOMA_REMOTE_STORAGE__ENDPOINTURL", f"http://minio:{SECRET}@127.0.0.1")
    res = repo.proc("remote", "list", ok=False)
    assert_one_error(res, "remotes.storage.endpointurl 'http://****@127.0.0.1' contains")
    assert SECRET not in outputs(res)


@pytest.mark.parametrize("variable", ["AWS_SECRET_ACCESS_KEY", "MOMA_SERVE_ADMIN_TOKEN"])
def test_secret_environment_values_are_redacted_from_errors(repo: Moma,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            variable: str) -> None:
    monkeypatch.setenv(variable, SECRET)
    res = repo.proc("add", f"{SECRET}.bin", ok=False)  # an error message that echoes it
    assert_one_error(res, "****.bin: no such file or directory")
    assert SECRET not in outputs(res)


def test_a_cloned_config_never_runs_a_command(repo: Moma, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    write(repo.root / "model.bin", "weights")
    repo("add", "model.bin")
    write(repo.root / ".moma.yaml",
          "core:\n  hash: blake3\n"
          f"stages:\n  train:\n    cmd: touch {marker}\n    deps: [model.bin]\n"
          f"    outs: [out.bin]\nhooks:\n  post-checkout: touch {marker}\n")
    repo.git("add", ".moma.yaml")
    repo.git("commit", "-qm", "untrusted config")
    write(repo.root / "other.bin", "other")
    (repo.root / "model.bin").unlink()
    for command in (("status",), ("checkout",), ("add", "other.bin"), ("remote", "list")):
        repo.proc(*command, ok=None)
    assert (repo.root / "model.bin").read_text() == "weights"
    assert not marker.exists()


def test_a_python_tag_in_the_config_runs_nothing(repo: Moma, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    write(repo.root / ".moma.yaml",
          f"core: !!python/object/apply:os.system ['touch {marker}']\n")
    res = repo.proc("status", ok=False)
    assert_one_error(res, ".moma.yaml:1: invalid YAML")
    assert not marker.exists()


@pytest.mark.parametrize("where", ["/tmp/moma-evil-cache", "~/evil", "../evil", "a/../../evil"])
def test_a_cloned_config_cannot_move_the_cache_outside(repo: Moma, tmp_path: Path,
                                                       where: str) -> None:
    write(repo.root / "model.bin", "weights")
    write(repo.root / ".moma.yaml", f"core:\n  hash: blake3\ncache:\n  dir: {where}\n")
    before = snapshot(repo.root)
    res = repo("add", "model.bin", ok=False)
    assert_one_error(res, f"cache.dir {where!r} is outside the repository")
    assert_nothing_lost(repo.root, before)
    assert not Path("/tmp/moma-evil-cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_a_shared_cache_may_be_set_locally(repo: Moma, tmp_path: Path) -> None:
    write(repo.root / ".moma.local.yaml", f"cache:\n  dir: {tmp_path / 'shared'}\n")
    write(repo.root / "model.bin", "weights")
    repo("add", "model.bin")
    assert_nothing_lost(repo.root, cache=tmp_path / "shared")
    assert list((tmp_path / "shared/blake3").iterdir())
