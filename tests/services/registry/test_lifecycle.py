"""The registry shows and guards a model's lifecycle: `models:list` per stage, `models:tag`
refused by blocking quality gates unless forced with a reason (recorded in the tag),
allowed stages, `models:deprecate` and `models:check-ref`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import Moma, configure, write
from moma_cli.core import refs
from moma_cli.errors import ConfigError


@pytest.fixture
def clf(repo: Moma) -> Moma:
    """clf v1 (accuracy 0.7) and v2 (accuracy 0.9), each its own commit."""
    for n, accuracy in ((1, "0.7"), (2, "0.9")):
        write(repo.root / "clf.bin", f"weights {n}")
        repo("models:add", "clf", "clf.bin", "--metric", f"accuracy={accuracy}")
        repo.git("add", "-A")
        repo.git("commit", "-qm", f"clf v{n}")
    return repo


def gate(moma: Moma, **extra: Any) -> None:
    configure(moma, {"clf": {"checks": ["accuracy >= 0.8",
                                        {"metric": "f1", "op": ">", "value": 0.5,
                                         "on_fail": "alert"}]}}, **extra)


def tags(moma: Moma) -> list[str]:
    return moma.git("tag", "-l").split()


def listed(moma: Moma, *args: str) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = json.loads(
        moma("models:list", *args, "--json").stdout)["models"]
    return models


def check_ref(moma: Moma, tag: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(moma("models:check-ref", tag, "--json").stdout)
    return event


def test_list_shows_latest_and_the_version_in_each_stage(clf: Moma) -> None:
    clf("models:tag", "clf:1", "staging")
    clf("models:tag", "clf:2", "production")
    clf("models:tag", "clf:1", "canary")
    header, row = clf("models:list").stdout.splitlines()
    assert header.split() == ["Name", "Latest", "#canary", "#production", "#staging", "Date",
                              "Path"]
    assert row.split()[:5] == ["clf", "v2", "v1", "v2", "v1"]
    [model] = listed(clf)
    assert (model["latest"], model["stage"]) == (2, {"canary": 1, "production": 2,
                                                     "staging": 1})
    assert (model["version"], model["stages"]) == (2, ["production"])  # the version's keys
    configure(clf, {}, registry={"stages": ["staging", "production", "canary"]})
    assert clf("models:list").stdout.split()[2:5] == ["#staging", "#production", "#canary"]
    write(clf.root / "clf.bin", "weights 3")
    clf("models:add", "clf", "clf.bin")
    [model] = listed(clf)
    assert (model["latest"], model["stage"]["production"]) == (3, 2)
    assert "v3 (uncommitted)" in clf("models:list").stdout


def test_failing_blocking_condition_refuses_the_tag_and_leaves_none(clf: Moma) -> None:
    gate(clf)
    res = clf("models:tag", "clf:1", "production", ok=False)
    assert res.exit_code == 1
    error, hint = res.stderr.splitlines()
    assert error == ("error: clf v1 fails the blocking condition accuracy >= 0.8 of .moma.yaml "
                     "(0.7 is not >= 0.8); not tagged production")
    assert "moma check clf:1" in hint and "--force -m" in hint
    assert tags(clf) == []
    # v2 passes the block condition; its failing alert condition does not block a stage
    clf("models:tag", "clf:2", "production")
    assert tags(clf) == ["clf#production#1"]


def test_version_without_its_own_metrics_is_refused(clf: Moma) -> None:
    gate(clf)
    write(clf.root / "clf.bin", "weights 3")  # new bytes: v2's metrics do not carry over
    clf("models:add", "clf", "clf.bin")
    clf.git("add", "-A")
    clf.git("commit", "-qm", "clf v3")
    res = clf("models:tag", "clf:3", "staging", ok=False)
    assert "has no metrics recorded for its bytes" in res.stderr
    assert tags(clf) == []


def test_model_without_a_policy_is_tagged_as_before(clf: Moma) -> None:
    configure(clf, {"other": {"checks": ["accuracy >= 0.99"]}})
    clf("models:tag", "clf:1", "production")
    message = clf.git("tag", "-l", "--format=%(contents)", "clf#production#1").strip()
    assert message.startswith("Assigning stage 'production' to artifact 'clf' version '")
    assert "\n" not in message


def test_force_needs_a_reason(clf: Moma) -> None:
    gate(clf)
    for args in (["--force"], ["--force", "-m", "  "], ["-m", "why"]):
        res = clf("models:tag", "clf:1", "production", *args, ok=False)
        assert res.exit_code == 2, res.stderr
    assert tags(clf) == []


def test_forced_tag_records_who_why_and_what_failed(clf: Moma,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    gate(clf)
    res = clf("models:tag", "clf:1", "production", "--force", "-m", "rollback:\nv2 leaks",
              "--json")
    out = json.loads(res.stdout)
    expected = {"by": "Test Author <author@example.com>", "reason": "rollback: v2 leaks",
                "failed": ["accuracy >= 0.8 (0.7 is not >= 0.8)"]}
    assert (out["tags"], out["override"]) == (["clf#production#1"], expected)
    message = clf.git("tag", "-l", "--format=%(contents)",
                      "clf#production#1").strip().splitlines()
    assert message == [
        f"Assigning stage 'production' to artifact 'clf' version '{out['version']['commit']}'",
        "", "Forced-by: Test Author <author@example.com>",
        "Failed-condition: accuracy >= 0.8 (0.7 is not >= 0.8)", "Reason: rollback: v2 leaks"]
    events = json.loads(clf("models:history", "clf", "--json").stdout)["events"]
    [forced] = [e for e in events if e["tag"]]
    assert (forced["action"], forced["version"], forced["override"]) == ("assign", 1, expected)
    assert forced["message"] == message[0]  # the subject, as GTO writes it
    assert all(e["override"] is None for e in events if not e["tag"])
    monkeypatch.setenv("COLUMNS", "300")  # one row a line
    row = clf.proc("models:history", "clf").stdout.splitlines()[-1]
    assert row.rstrip().endswith("assign  v1       production    Test Author  clf#production#1  "
                                 "forced by Test Author <author@example.com>: rollback: v2 "
                                 "leaks (failed: accuracy >= 0.8 (0.7 is not >= 0.8))")
    assert "Reason: rollback: v2 leaks" in clf("models:check-ref", "clf#production#1").stdout
    assert json.loads(clf("models:show", "clf:production", "--json").stdout)["version"] == 1


def test_forced_tag_on_a_passing_version_is_a_plain_tag(clf: Moma) -> None:
    gate(clf)
    out = json.loads(clf("models:tag", "clf:2", "production", "--force", "-m", "why",
                         "--json").stdout)
    assert "override" not in out
    assert check_ref(clf, "clf#production#1")["override"] is None


def test_allowed_stages_refuse_others(clf: Moma) -> None:
    configure(clf, {}, registry={"stages": ["dev", "staging", "production"]})
    res = clf("models:tag", "clf:1", "prod", ok=False)
    assert res.exit_code == 1
    assert "error: stage 'prod' is not allowed by registry.stages in .moma.yaml" in res.stderr
    assert "use one of dev, staging, production" in res.stderr
    assert tags(clf) == []
    clf("models:tag", "clf:1", "staging")
    assert tags(clf) == ["clf#staging#1"]


@pytest.mark.parametrize(("section", "named"), [
    ("dev", "registry: must be a mapping"),
    ({"stage": ["dev"]}, "registry: unknown key 'stage'"),
    ({"stages": []}, "registry.stages: must be a list"),
    ({"stages": "dev"}, "registry.stages: must be a list"),
    ({"stages": ["dev", "Prod"]}, "registry.stages[1]: 'Prod' is not a valid stage name"),
    ({"stages": ["dev", 3]}, "registry.stages[1]: 3 is not a valid stage name"),
    ({"stages": ["dev", "dev"]}, "registry.stages[1]: 'dev' is listed twice"),
])
def test_invalid_allowed_stages_name_the_key(section: Any, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        refs.parse_stages(section)


def test_invalid_allowed_stages_fail_on_load(repo: Moma) -> None:
    configure(repo, {}, registry={"stages": ["Prod"]})
    res = repo("models:list", ok=False)
    assert "registry.stages[0]: 'Prod' is not a valid stage name" in res.stderr


def test_deprecate_hides_the_model_from_list(clf: Moma) -> None:
    res = clf("models:deprecate", "clf")
    assert "Created tag clf@deprecated#1" in res.stdout
    head = clf.git("rev-parse", "HEAD").strip()
    assert clf.git("rev-parse", "clf@deprecated#1^{commit}").strip() == head  # v2's commit
    assert clf.git("tag", "-l", "--format=%(contents:subject)", "clf@deprecated#1").strip() \
        == "Deprecating artifact 'clf'"
    assert listed(clf) == []
    assert "1 deprecated; see them with --all" in clf("models:list").stdout
    assert [m["name"] for m in listed(clf, "--all")] == ["clf"]
    again = clf("models:deprecate", "clf", ok=False)
    assert "error: clf is deprecated already" in again.stderr
    assert tags(clf) == ["clf@deprecated#1"]
    unknown = clf("models:deprecate", "nope", ok=False)
    assert "no model named 'nope'" in unknown.stderr
    events = json.loads(clf("models:history", "clf", "--json").stdout)["events"]
    assert events[-1]["action"] == "deprecate"
    clf("models:tag", "clf:2", "production")  # a newer event makes it active again, as in GTO
    assert [m["name"] for m in listed(clf)] == ["clf"]


def test_gto_s_simple_deprecation_in_the_same_second_still_deprecates(
        clf: Moma, monkeypatch: pytest.MonkeyPatch) -> None:
    """GTO dates its tags by the clock, so a script's tags share a second; its deprecation
    tag has no counter (what made test_gto_interop fail now and then)."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-09-01T13:16:09+0530")
    clf("models:tag", "clf:2", "production")  # clf#production#1, at that second
    clf.git("tag", "-a", "clf@deprecated", "-m", "Deprecating artifact 'clf'")  # same second
    assert listed(clf) == []


def test_check_ref_tells_what_each_tag_means(clf: Moma) -> None:
    commits = clf.git("rev-list", "--reverse", "HEAD").split()[1:]
    clf("models:register", "clf:1", "--semver", "v1.0.0")
    clf("models:tag", "clf:2", "production")
    clf("models:untag", "clf", "production")
    clf.git("tag", "-a", "-m", "Deregistering artifact clf version v1.0.0", "clf@v1.0.0!",
            commits[0])
    clf("models:deprecate", "clf")
    seen = {tag: check_ref(clf, tag) for tag in (
        "clf@v1.0.0", "clf#production#1", "refs/tags/clf#production!#2", "clf@v1.0.0!",
        "clf@deprecated#3")}
    assert [(e["action"], e["name"], e["version"], e["stage"], e["semver"], e["commit"])
            for e in seen.values()] == [
        ("register", "clf", 1, None, "v1.0.0", commits[0]),
        ("assign", "clf", 2, "production", None, commits[1]),
        ("unassign", "clf", 2, "production", None, commits[1]),
        ("deregister", "clf", 1, None, "v1.0.0", commits[0]),
        ("deprecate", "clf", 2, None, None, commits[1])]
    assert seen["clf#production#1"]["tag"] == "clf#production#1"
    text = clf("models:check-ref", "clf#production#1").stdout.splitlines()
    assert text[:5] == ["Tag: clf#production#1", "Model-Name: clf", "Action: assign",
                        "Model-Version: 2", "Stage: production"]
    assert f"Commit: {commits[1]}" in text


def test_check_ref_refuses_what_is_not_a_registry_tag(clf: Moma) -> None:
    clf.git("tag", "-a", "-m", "release", "v1.0")
    clf.git("tag", "clf#dev#9")  # in the grammar, but lightweight: not a registry event
    res = clf("models:check-ref", "v1.0", ok=False)
    assert res.exit_code == 1
    assert res.stderr.splitlines()[0] == "error: 'v1.0' is not a registry tag"
    assert "NAME#STAGE#N" in res.stderr
    for tag in ("clf#dev#9", "clf@v9.9.9"):
        res = clf("models:check-ref", tag, ok=False)
        assert f"error: no annotated tag '{tag}' in this repository" in res.stderr
