"""The registry summary answers `models:list`, `NAME` / `NAME:STAGE` and `models:log -n N`
exactly as the full read does, after every way the registry can change under it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pytest

from conftest import Moma
from moma_cli.core import refs
from moma_cli.errors import MomaError
from moma_cli.services.registry import reading, resolving, summary
from moma_cli.services.registry.model_version import ModelVersion
from moma_cli.services.repo import Repo, open_repo

SUMMARY = ".moma/registry-summary.json"


def add(repo: Moma, name: str, n: int, message: str | None = None) -> None:
    """Version bytes `n` of model `name`, committed unless `message` is None."""
    path = repo.root / f"{name}.joblib"
    path.unlink(missing_ok=True)  # never write through a checked-out link into the cache
    joblib.dump({"model": name, "n": n}, path)
    repo("models:add", name, path.name, "--metric", f"accuracy=0.{n}")
    if message is not None:
        repo.git("add", "-A")
        repo.git("commit", "-qm", message)


@pytest.fixture
def registry(repo: Moma) -> Moma:
    """clf v1..v3 and reg v1..v2 interleaved; clf:1 in staging, clf:3 in production,
    reg:2 registered as v1.0.0."""
    for i, (name, n) in enumerate((("clf", 1), ("reg", 1), ("clf", 2), ("clf", 3), ("reg", 2))):
        add(repo, name, n, f"commit {i}")
    repo("models:tag", "clf:1", "staging")
    repo("models:tag", "clf:3", "production")
    repo("models:register", "reg:2", "--semver", "v1.0.0")
    return repo


REFS = ("clf", "clf:production", "clf:staging", "reg", "reg:production", "nope")
LOGS = ((None, 1), (None, 4), ("clf", 2), ("reg", 5), ("nope", 1))


def _answer(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The JSON of what `call` returns (a version or a list of them), or its error."""
    try:
        found = call(*args, **kwargs)
    except MomaError as exc:
        return exc.message
    return [v.to_json() for v in found] if isinstance(found, list) else found.to_json()


def from_summary(root: Path) -> dict[str, Any]:
    """What the services that read the summary say."""
    repo = open_repo(root)
    listing = resolving.list_models(repo, deprecated=True)
    return {"list": [(v.to_json(), {s: h.version for s, h in listing.stages[v.name].items()})
                     for v in listing.models],
            "hidden": resolving.list_models(repo).hidden,
            **{ref: _answer(resolving.resolve, repo, ref) for ref in REFS},
            **{f"log {name} -n {n}": _answer(resolving.log, repo, name, limit=n)
               for name, n in LOGS}}


def from_full_read(root: Path) -> dict[str, Any]:
    """The same questions asked of the full read (every version, every tag)."""
    repo = open_repo(root)
    registry = reading.load(repo)
    present = [n for n in sorted(registry.present) if n in registry.versions]
    return {"list": [(registry.versions[n][-1].to_json(),
                      {s: v.version for v in registry.versions[n] for s in v.stages})
                     for n in present],
            "hidden": [n for n in present if registry.deprecated(n)],
            **{ref: _answer(resolving.resolve_parsed, repo, refs.parse(ref), registry)
               for ref in REFS},
            **{f"log {name} -n {n}": _answer(_newest, repo, name, n) for name, n in LOGS}}


def _newest(repo: Repo, name: str | None, n: int) -> list[ModelVersion]:
    return resolving.log(repo, name)[:n]  # no limit: the full read


def assert_as_full_read(repo: Moma) -> None:
    """The summary's answers, computed (summary missing) and then read back from the file,
    are the full read's."""
    (repo.root / SUMMARY).unlink(missing_ok=True)
    computed = from_summary(repo.root)
    assert (repo.root / SUMMARY).exists()
    read_back = from_summary(repo.root)
    full = from_full_read(repo.root)
    assert computed == full
    assert read_back == full


def test_same_answers_as_the_full_read(registry: Moma) -> None:
    assert_as_full_read(registry)
    assert resolving.resolve(open_repo(registry.root), "clf:production").version == 3


def test_a_new_stage_tag_is_seen_at_once(registry: Moma) -> None:
    from_summary(registry.root)
    registry("models:tag", "clf:2", "production")
    assert resolving.resolve(open_repo(registry.root), "clf:production").version == 2
    assert_as_full_read(registry)


def test_a_stage_tag_moved_or_deleted_with_plain_git(registry: Moma) -> None:
    repo = open_repo(registry.root)
    from_summary(registry.root)
    v1 = resolving.resolve(repo, "clf:1").commit or ""
    tag = next(t for t in registry.git("tag").split() if t.startswith("clf#production"))
    registry.git("tag", "-f", "-a", "-m", "moved by hand", tag, v1)
    assert resolving.resolve(repo, "clf:production").version == 1
    assert_as_full_read(registry)
    registry.git("tag", "-d", tag)
    with pytest.raises(MomaError, match="no version of clf is in stage 'production'"):
        resolving.resolve(repo, "clf:production")
    assert_as_full_read(registry)


def test_a_new_commit_and_the_workspace(registry: Moma) -> None:
    repo = open_repo(registry.root)
    from_summary(registry.root)
    add(registry, "clf", 4, "clf 4")
    assert resolving.resolve(repo, "clf").version == 4
    assert_as_full_read(registry)
    add(registry, "reg", 3)  # uncommitted: the next version, laid over the summary
    assert resolving.resolve(repo, "reg").uncommitted
    assert [v.label for v in resolving.log(repo, limit=2)] == ["v3 (uncommitted)", "v4"]
    assert_as_full_read(registry)
    (registry.root / "clf.joblib.moma").unlink()  # deleted, not yet committed
    assert [v.name for v in resolving.list_models(repo).models] == ["reg"]
    assert_as_full_read(registry)


def test_a_metadata_edit_in_the_workspace_updates_the_stage_holder(registry: Moma) -> None:
    from_summary(registry.root)
    registry("models:add", "clf", "clf.joblib", "--metric", "accuracy=0.99")
    held = resolving.resolve(open_repo(registry.root), "clf:production")
    assert (held.version, held.metrics) == (3, {"accuracy": 0.99})
    assert_as_full_read(registry)


def test_deprecated_models(registry: Moma) -> None:
    from_summary(registry.root)
    registry("models:deprecate", "reg")
    listing = resolving.list_models(open_repo(registry.root))
    assert ([v.name for v in listing.models], listing.hidden) == (["clf"], ["reg"])
    assert_as_full_read(registry)


def test_old_stage_holders_beyond_the_tail(registry: Moma,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the newest TAIL versions and the stage holders are kept, and a log longer
    than TAIL is read in full."""
    monkeypatch.setattr(summary, "TAIL", 1)
    assert_as_full_read(registry)
    kept = json.loads((registry.root / SUMMARY).read_text())["entries"]
    (entry,) = kept.values()
    assert [v[0] for v in entry["models"]["clf"]] == [1, 3]  # staging, then the newest
    repo = open_repo(registry.root)
    assert [v.version for v in resolving.log(repo, "clf", limit=3)] == [3, 2, 1]


def test_a_damaged_summary_is_rebuilt(registry: Moma) -> None:
    expected = from_summary(registry.root)
    path = registry.root / SUMMARY
    data = json.loads(path.read_text())
    (entry,) = data["entries"].values()
    entry["models"]["clf"][-1][0] = "3"  # a number that is not one
    path.write_text(json.dumps(data))
    assert from_summary(registry.root) == expected
    path.write_text("{not json")
    assert from_summary(registry.root) == expected
    assert json.loads(path.read_text())["version"] == summary.SUMMARY_VERSION


def test_another_revision_keeps_its_own_entry(registry: Moma) -> None:
    repo = open_repo(registry.root)
    assert resolving.resolve(repo, "clf", rev="HEAD~2").version == 2
    assert resolving.resolve(repo, "clf@HEAD~3").version == 1
    assert resolving.resolve(repo, "clf").version == 3
    assert len(json.loads((registry.root / SUMMARY).read_text())["entries"]) == 3
