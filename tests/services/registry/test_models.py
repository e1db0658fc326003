"""The model registry against real git histories and real sklearn models."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from conftest import Moma
from moma_cli import api
from moma_cli.services.registry import resolving
from moma_cli.services.repo import open_repo


def save_model(path: Path, depth: int, seed: int = 0) -> None:
    """A real DecisionTreeClassifier dumped with joblib; depth/seed change its bytes."""
    x = np.random.RandomState(seed).rand(40, 3)
    clf = DecisionTreeClassifier(max_depth=depth, random_state=seed).fit(x, x[:, 0] > 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()  # never write through a checked-out link into the cache
    joblib.dump(clf, path)


def commit(repo: Moma, message: str) -> str:
    repo.git("commit", "-qm", message)
    return repo.git("rev-parse", "HEAD").strip()


def show(repo: Moma, ref: str) -> dict:
    return json.loads(repo("models:show", ref, "--json").stdout)


def log(repo: Moma, *args: str) -> list[dict]:
    return json.loads(repo("models:log", *args, "--json").stdout)["versions"]


@pytest.fixture
def two_versions(repo: Moma) -> Moma:
    """credit-risk v1 (depth 2), a metadata-only commit, v2 (depth 4)."""
    save_model(repo.root / "model.joblib", 2)
    repo("models:add", "credit-risk", "model.joblib", "--metric", "accuracy=0.8",
         "--param", "max_depth=2", "--description", "first try")
    commit(repo, "First credit model")
    repo("models:add", "credit-risk", "model.joblib", "--metric", "accuracy=0.81")
    commit(repo, "Fix the recorded accuracy")
    save_model(repo.root / "model.joblib", 4)
    repo("models:add", "credit-risk", "model.joblib", "--metric", "accuracy=0.85",
         "--metric", "f1=0.7", "--param", "max_depth=4", "--param", "criterion=gini")
    commit(repo, "Updated model with August data")
    return repo


def test_versions_come_from_content_changes(two_versions: Moma) -> None:
    repo = two_versions
    versions = log(repo, "credit-risk")
    assert [(v["version"], v["message"]) for v in versions] == [
        (2, "Updated model with August data"), (1, "First credit model")]
    v1 = show(repo, "credit-risk:1")
    assert v1["metrics"] == {"accuracy": 0.81}  # the metadata-only edit updated v1
    assert (v1["encoding"], v1["algo"]) == ("joblib", "DecisionTreeClassifier")
    assert v1["description"] == "first try"
    latest = show(repo, "credit-risk")
    assert latest["version"] == 2 and latest["params"] == {"criterion": "gini", "max_depth": 4}
    assert show(repo, "credit-risk@HEAD~1")["version"] == 1
    assert show(repo, "credit-risk:2")["model_id"] == latest["oid"][:8]


def test_log_max_count_keeps_the_newest(two_versions: Moma) -> None:
    repo = two_versions
    assert [v["version"] for v in log(repo, "credit-risk", "-n", "1")] == [2]
    assert [v["version"] for v in log(repo, "--max-count", "5")] == [2, 1]
    assert repo("models:log", "-n", "0", ok=False).exit_code == 2


def test_uncommitted_change_is_next_version(two_versions: Moma) -> None:
    repo = two_versions
    save_model(repo.root / "model.joblib", 6)
    repo("models:add", "credit-risk", "model.joblib")
    latest = show(repo, "credit-risk")
    assert (latest["version"], latest["number"], latest["uncommitted"]) == (None, 3, True)
    assert latest["metrics"] == {} and latest["params"] == {}  # not v2's numbers
    out = repo("models:log", "credit-risk").stdout
    assert "Model-Version: 3 (uncommitted)" in out
    listing = repo("models:list").stdout
    assert "v3 (uncommitted)" in listing
    assert show(repo, "credit-risk:2")["version"] == 2


def test_roro_style_blocks(two_versions: Moma) -> None:
    out = two_versions("models:show", "credit-risk:2").stdout.splitlines()
    keys = [line.split(":")[0] for line in out]
    assert keys[:9] == ["Model-ID", "Model-Name", "Model-Version", "Date", "Content-Encoding",
                        "Algo", "Accuracy", "F1", "Parameters"]
    assert "Parameters: criterion=gini;max_depth=4" in out
    log_out = two_versions("models:log").stdout
    assert "    Updated model with August data" in log_out
    assert log_out.index("Model-Version: 2") < log_out.index("Model-Version: 1")


def test_renamed_model_file_keeps_history(two_versions: Moma) -> None:
    repo = two_versions
    (repo.root / "models").mkdir()
    repo.git("mv", "model.joblib.moma", "models/credit.joblib.moma")
    os.replace(repo.root / "model.joblib", repo.root / "models/credit.joblib")
    commit(repo, "Move models into models/")
    assert show(repo, "credit-risk")["version"] == 2  # a move is not a new version
    assert show(repo, "credit-risk")["path"] == "models/credit.joblib"
    save_model(repo.root / "models/credit.joblib", 5)
    repo("models:add", "credit-risk", "models/credit.joblib")
    commit(repo, "Retrain after the move")
    assert [v["version"] for v in log(repo, "credit-risk")] == [3, 2, 1]


def test_deleted_then_readded(two_versions: Moma) -> None:
    repo = two_versions
    repo.git("rm", "-q", "model.joblib.moma")
    commit(repo, "Retire the model")
    assert json.loads(repo("models:list", "--json").stdout)["models"] == []
    assert [v["version"] for v in log(repo, "credit-risk")] == [2, 1]
    save_model(repo.root / "model.joblib", 7)
    repo("models:add", "credit-risk", "model.joblib")
    commit(repo, "Bring it back")
    listed = json.loads(repo("models:list", "--json").stdout)["models"]
    assert [(m["name"], m["version"]) for m in listed] == [("credit-risk", 3)]


def test_branch_merge_is_one_version_on_first_parent(two_versions: Moma) -> None:
    repo = two_versions
    repo.git("checkout", "-qb", "experiment")
    for depth in (8, 9):
        save_model(repo.root / "model.joblib", depth)
        repo("models:add", "credit-risk", "model.joblib")
        commit(repo, f"Try depth {depth}")
    assert [v["version"] for v in log(repo, "credit-risk")] == [4, 3, 2, 1]
    repo("models:tag", "credit-risk:4", "staging")  # tagged on the branch, before merging
    repo.git("checkout", "-q", "main")
    repo("checkout")
    assert [v["version"] for v in log(repo, "credit-risk")] == [2, 1]
    repo.git("merge", "-q", "--no-ff", "-m", "Merge experiment", "experiment")
    versions = log(repo, "credit-risk")
    assert [(v["version"], v["message"]) for v in versions][:2] == [
        (3, "Merge experiment"), (2, "Updated model with August data")]
    assert show(repo, "credit-risk:staging")["version"] == 3  # placed by content
    on_branch = json.loads(repo("models:log", "credit-risk", "--rev", "experiment",
                                "--json").stdout)["versions"]
    assert [v["message"] for v in on_branch][:2] == ["Try depth 9", "Try depth 8"]


def test_stages_move_and_keep_history(two_versions: Moma) -> None:
    repo = two_versions
    repo("models:tag", "credit-risk:1", "production")
    repo("models:tag", "credit-risk:2", "staging")
    assert show(repo, "credit-risk:production")["version"] == 1
    repo("models:tag", "credit-risk:2", "production")
    assert show(repo, "credit-risk:production")["version"] == 2
    assert show(repo, "credit-risk:2")["stages"] == ["production", "staging"]
    tags = repo.git("tag", "-l", "-n1").splitlines()
    assert [t.split()[0] for t in tags] == [
        "credit-risk#production#1", "credit-risk#production#3", "credit-risk#staging#2"]
    assert "Assigning stage 'production' to artifact 'credit-risk'" in tags[0]
    events = json.loads(repo("models:history", "credit-risk", "--json").stdout)["events"]
    assigns = [(e["action"], e["stage"], e["version"], e["author"]) for e in events
               if e["action"] == "assign"]
    assert assigns == [("assign", "production", 1, "Test Author"),
                       ("assign", "staging", 2, "Test Author"),
                       ("assign", "production", 2, "Test Author")]
    assert [e["version"] for e in events if e["action"] == "commit"] == [1, 2]
    repo("models:untag", "credit-risk", "staging")
    assert show(repo, "credit-risk:2")["stages"] == ["production"]
    assert "credit-risk#staging!#4" in repo.git("tag", "-l")
    res = repo("models:show", "credit-risk:staging", ok=False)
    assert "no version of credit-risk is in stage 'staging'" in res.stderr
    # v1's production assignment was superseded, not undone: untag must undo both
    repo("models:untag", "credit-risk", "production")
    assert [v["stages"] for v in log(repo, "credit-risk")] == [[], []]
    res = repo("models:untag", "credit-risk", "production", ok=False)
    assert "no version of credit-risk is in stage 'production'" in res.stderr


def test_tags_moved_with_plain_git_are_seen(two_versions: Moma) -> None:
    repo = two_versions
    repo("models:tag", "credit-risk:2", "production")
    assert show(repo, "credit-risk:production")["version"] == 2  # index now built
    v1_commit = show(repo, "credit-risk:1")["commit"]
    repo.git("tag", "-f", "-a", "-m", "moved by hand", "credit-risk#production#1", v1_commit)
    assert show(repo, "credit-risk:production")["version"] == 1
    repo.git("tag", "-d", "credit-risk#production#1")
    repo("models:show", "credit-risk:production", ok=False)
    assert (repo.root / ".moma/registry-index.json").exists()


def test_index_extends_a_moved_branch_incrementally(two_versions: Moma) -> None:
    repo = two_versions
    log(repo, "credit-risk")
    index_file = repo.root / ".moma/registry-index.json"
    index = json.loads(index_file.read_text())
    chain = index["chains"][repo.git("rev-parse", "HEAD").strip()]
    chain["commits"][0][4] = "message as cached"  # only a reused entry can say this
    index_file.write_text(json.dumps(index))
    save_model(repo.root / "model.joblib", 5)
    repo("models:add", "credit-risk", "model.joblib")
    commit(repo, "Third")
    assert [v["message"] for v in log(repo, "credit-risk")] == [
        "Third", "Updated model with August data", "message as cached"]


def test_corrupt_index_is_rebuilt(two_versions: Moma) -> None:
    repo = two_versions
    log(repo, "credit-risk")
    (repo.root / ".moma/registry-index.json").write_text("{not json")
    assert [v["version"] for v in log(repo, "credit-risk")] == [2, 1]


def test_index_remembers_tag_objects_and_rereads_a_damaged_entry(two_versions: Moma) -> None:
    repo = two_versions
    repo("models:tag", "credit-risk:1", "production")
    assert show(repo, "credit-risk:production")["version"] == 1
    index_file = repo.root / ".moma/registry-index.json"
    index = json.loads(index_file.read_text())
    oid = repo.git("rev-parse", "credit-risk#production#1").strip()
    assert index["tags"][oid][0] == show(repo, "credit-risk:1")["commit"]
    index["tags"][oid][3] = 20260101  # a date that is not a string: the index is rebuilt
    index_file.write_text(json.dumps(index))
    # a version number is read in full, from the index (a stage comes from the summary)
    assert show(repo, "credit-risk:1")["stages"] == ["production"]
    assert json.loads(index_file.read_text())["tags"][oid][3].startswith("20")


def test_semver_registration(two_versions: Moma) -> None:
    repo = two_versions
    repo("models:register", "credit-risk:1")
    out = json.loads(repo("models:register", "credit-risk:2", "--semver", "v1.2.0",
                          "--json").stdout)
    assert out["tags"] == ["credit-risk@v1.2.0"] and out["version"]["semvers"] == ["v1.2.0"]
    assert show(repo, "credit-risk:1")["semvers"] == ["v0.0.1"]
    assert show(repo, "credit-risk@v1.2.0")["version"] == 2
    res = repo("models:register", "credit-risk:1", "--semver", "v1.2.0", ok=False)
    assert "already registered" in res.stderr
    assert "invalid semver" in repo("models:register", "credit-risk:2", "--semver", "1.0",
                                    ok=False).stderr


def test_diff_params_metrics_and_lineage(two_versions: Moma) -> None:
    repo = two_versions
    ptr_path = repo.root / "model.joblib.moma"
    text = ptr_path.read_text() + "lineage:\n  deps:\n  - path: data/train.csv\n    oid: " \
        + "ab" * 32 + "\n  code: 3e4f5a6\n"
    ptr_path.write_text(text)
    out = json.loads(repo("models:diff", "credit-risk:1", "credit-risk", "--json").stdout)
    rows = {(r["section"], r["key"]): r for r in out["rows"]}
    assert rows[("metrics", "accuracy")]["delta"] == pytest.approx(0.04)
    assert rows[("metrics", "f1")]["change"] == "added"
    assert rows[("params", "criterion")]["change"] == "added"
    assert rows[("params", "max_depth")]["a"] == 2 and rows[("params", "max_depth")]["b"] == 4
    assert rows[("lineage", "code")]["change"] == "added"
    assert rows[("lineage", "deps.data/train.csv")]["b"] == "abababab"
    table = repo("models:diff", "credit-risk:1", "credit-risk:2").stdout
    assert "~" in table and "+0.04" in table and "f1" in table


def register_with_lineage(repo: Moma, depth: int, rows: str) -> str:
    """Data, params and a model made from them, registered with --from/-p and committed."""
    (repo.root / "data").mkdir(exist_ok=True)
    (repo.root / "data/train.csv").write_text(rows)
    (repo.root / "params.yaml").write_text(f"depth: {depth}\nunused: 1\n")
    (repo.root / "train.py").write_text("print('train')\n")
    repo("add", "data/train.csv")
    repo.git("add", "-A")
    commit(repo, f"data for depth {depth}")
    save_model(repo.root / "model.joblib", depth)
    repo("models:add", "credit-risk", "model.joblib", "--from", "data/train.csv.moma",
         "--from", "train.py", "-p", "params.yaml:depth")
    return commit(repo, f"model depth {depth}")


def test_show_and_diff_lineage(repo: Moma) -> None:
    register_with_lineage(repo, 2, "1,2\n")
    code = repo.git("rev-parse", "HEAD~1").strip()  # the commit the model was trained at
    data_oid = open_repo(repo.root).load_pointer("data/train.csv.moma").oid
    shown = show(repo, "credit-risk:1")["lineage"]
    assert shown["deps"][0] == {"path": "data/train.csv", "oid": data_oid}
    assert (shown["code"], shown["params"]) == (code, {"depth": 2})
    assert set(shown["env"]) == {"python", "platform", "packages"}
    text = repo("models:show", "credit-risk:1").stdout
    packages = shown["env"]["packages"].split(":")[1][:8]
    assert f"Data: data/train.csv {data_oid[:8]}\n" in text
    assert "Data: train.py " in text and f"Code: {code[:8]}\n" in text
    assert "Params: depth=2\n" in text
    assert f"Environment: python {shown['env']['python']}; {shown['env']['platform']}; " \
           f"packages {packages}\n" in text
    register_with_lineage(repo, 4, "3,4\n")
    diff = json.loads(repo("models:diff", "credit-risk:1", "credit-risk:2", "--json").stdout)
    rows = {(r["section"], r["key"]): r for r in diff["rows"] if r["section"] == "lineage"}
    assert rows[("lineage", "deps.data/train.csv")]["change"] == "changed"
    assert (rows[("lineage", "params.depth")]["a"], rows[("lineage", "params.depth")]["b"]) \
        == (2, 4)
    assert rows[("lineage", "code")]["change"] == "changed"
    assert rows[("lineage", "deps.train.py")]["change"] == "same"
    table = repo("models:diff", "credit-risk:1", "credit-risk:2").stdout
    assert "deps.data/train.csv" in table and "params.depth" in table
    # the same bytes re-registered (a metadata edit) keep their lineage
    repo("models:add", "credit-risk", "model.joblib", "--metric", "auc=0.9")
    assert show(repo, "credit-risk")["lineage"]["params"] == {"depth": 4}
    # new bytes registered without --from: the old lineage described other bytes
    save_model(repo.root / "model.joblib", 3)
    repo("models:add", "credit-risk", "model.joblib")
    assert show(repo, "credit-risk")["lineage"] is None
    assert "Data:" not in repo("models:show", "credit-risk").stdout


def test_lineage_of_an_older_version_names_its_commits(repo: Moma) -> None:
    """Issue 12 item 12: the commits were searched from HEAD, so v1's lineage named the
    commits that replaced its bytes, data and code."""
    v1 = register_with_lineage(repo, 2, "1,2\n")
    data_v1 = repo.git("rev-parse", "HEAD~1").strip()  # data and code for v1
    (repo.root / "train.py").write_text("print('train harder')\n")
    register_with_lineage(repo, 4, "3,4\n")
    repo("models:tag", "credit-risk:1", "production")
    for ref in ("credit-risk:production", "credit-risk:1"):
        report = json.loads(repo("lineage", ref, "--json").stdout)
        assert report["commit"] == v1
        upstream = {n["path"]: n for n in report["upstream"]}
        assert upstream["data/train.csv"]["commit"] == data_v1
        assert upstream["train.py"]["commit"] == data_v1
    assert f"Commit: {v1}" in repo("lineage", "credit-risk:production").stdout
    # a pointer checked out at an older oid: the commit that wrote that oid, not the one
    # that replaced it
    repo.git("checkout", data_v1, "--", "data/train.csv.moma")
    report = json.loads(repo("lineage", "data/train.csv", "--json").stdout)
    assert report["commit"] == data_v1


def test_get_writes_old_version_without_touching_workspace(two_versions: Moma,
                                                           tmp_path: Path) -> None:
    repo = two_versions
    before = (repo.root / "model.joblib").read_bytes()
    status = repo.git("status", "--porcelain")
    head = repo.git("rev-parse", "HEAD")
    out = json.loads(repo("models:get", "credit-risk:1", "-o", str(tmp_path / "v1.joblib"),
                          "--json").stdout)
    assert out["version"]["version"] == 1 and out["fetched"] is False
    clf = joblib.load(tmp_path / "v1.joblib")
    assert clf.get_params()["max_depth"] == 2
    assert (repo.root / "model.joblib").read_bytes() == before
    assert repo.git("status", "--porcelain") == status and repo.git("rev-parse", "HEAD") == head
    for obj in (repo.root / ".moma/cache").rglob("*"):
        if obj.is_file() and obj.read_bytes() == (tmp_path / "v1.joblib").read_bytes():
            obj.chmod(0o644)
            obj.unlink()
    res = repo("models:get", "credit-risk:1", "-o", str(tmp_path / "again.joblib"), ok=False)
    assert "not in the cache" in res.stderr and "hint:" in res.stderr


def test_get_never_overwrites_unsaved_work(two_versions: Moma) -> None:
    repo = two_versions
    with open(repo.root / "model.joblib", "ab") as fh:
        fh.write(b"X")  # unsaved work: these bytes are in no cache
    edited = (repo.root / "model.joblib").read_bytes()
    res = repo("models:get", "credit-risk:1", "-o", ".", ok=False)
    assert res.exit_code == 1
    assert "model.joblib: modified and not in the cache; left as is" in res.stderr
    assert "pass --force" in res.stderr
    assert (repo.root / "model.joblib").read_bytes() == edited

    res = repo("models:get", "credit-risk:1", "-o", ".", "--force")
    assert f"replaced modified {repo.root / 'model.joblib'} (--force)" in res.stderr
    assert joblib.load(repo.root / "model.joblib").get_params()["max_depth"] == 2
    # bytes the cache holds (v1 now) may be replaced: nothing is lost
    res = repo("models:get", "credit-risk:2", "-o", "model.joblib", "--json")
    assert json.loads(res.stdout)["replaced"] is False
    assert joblib.load(repo.root / "model.joblib").get_params()["max_depth"] == 4


def test_bad_names_and_refs_are_refused(repo: Moma) -> None:
    save_model(repo.root / "m.joblib", 2)
    for bad in ("../x", "--upload-pack=touch pwn", "a;ls", "x" * 101, "Upper"):
        res = repo("models:add", "--", bad, "m.joblib", ok=False)
        assert res.exit_code == 1 and "invalid model name" in res.stderr
    assert not (repo.root / "m.joblib.moma").exists()
    res = repo("models:show", "x@--output=/tmp/pwn", ok=False)
    assert "invalid git revision" in res.stderr
    repo("models:add", "churn", "m.joblib")
    save_model(repo.root / "n.joblib", 3)
    res = repo("models:add", "churn", "n.joblib", ok=False)
    assert "already used by m.joblib" in res.stderr
    assert "no model named 'nope'" in repo("models:show", "nope", ok=False).stderr
    assert "has no version 9" in repo("models:show", "churn:9", ok=False).stderr
    assert "not committed yet" in repo("models:tag", "churn", "production", ok=False).stderr
    assert json.loads(repo("models:history", "churn", "--json").stdout)["events"] == []
    assert "no model named 'nope'" in repo("models:history", "nope", ok=False).stderr


def test_add_with_model_option_and_metrics_file(repo: Moma) -> None:
    assert "No models yet" in repo("models:list").stdout
    save_model(repo.root / "m.joblib", 3)
    repo("add", "m.joblib", "--model", "fraud")
    (repo.root / "metrics.json").write_text('{"auc": 0.91}')
    repo("models:add", "fraud", "m.joblib", "--metrics-file", "metrics.json")
    commit(repo, "fraud model")
    listed = json.loads(repo("models:list", "--json").stdout)["models"]
    assert [(m["name"], m["version"], m["metrics"]) for m in listed] == [
        ("fraud", 1, {"auc": 0.91})]
    assert "fraud" in repo("models:list").stdout


def test_json_schemas_are_stable(two_versions: Moma, tmp_path: Path) -> None:
    repo = two_versions
    version_keys = {"name", "version", "number", "uncommitted", "model_id", "oid", "hash",
                    "size", "path", "commit", "date", "author", "message", "stages",
                    "semvers", "encoding", "algo", "params", "metrics", "description",
                    "lineage", "signature"}
    assert set(show(repo, "credit-risk")) == version_keys
    assert set(json.loads(repo("models:list", "--json").stdout)) == {"models"}
    assert set(log(repo)[0]) == version_keys
    tagged = json.loads(repo("models:tag", "credit-risk:2", "prod", "--json").stdout)
    assert set(tagged) == {"tags", "version"}
    hist = json.loads(repo("models:history", "credit-risk", "--json").stdout)
    assert set(hist["events"][0]) == {"action", "name", "version", "date", "author", "commit",
                                      "stage", "semver", "tag", "message", "override"}
    diff = json.loads(repo("models:diff", "credit-risk:1", "credit-risk:2", "--json").stdout)
    assert set(diff["rows"][0]) == {"section", "key", "a", "b", "change", "delta"}


class Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def test_malicious_pickle_only_runs_on_trusted_load(repo: Moma, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (repo.root / "evil.pkl").write_bytes(pickle.dumps(Boom(str(marker))))
    save_model(repo.root / "good.joblib", 2)
    repo("models:add", "evil", "evil.pkl", "--metric", "accuracy=0.5")
    repo("models:add", "good", "good.joblib")
    commit(repo, "register both")
    (repo.root / "evil.pkl").unlink()
    (repo.root / "evil.pkl").write_bytes(pickle.dumps(Boom(str(marker)), protocol=2))
    repo("models:add", "evil", "evil.pkl")
    for args in (("models:list",), ("models:log",), ("models:show", "evil"),
                 ("models:show", "evil:1", "--json"), ("models:diff", "evil:1", "evil"),
                 ("models:diff", "evil", "good"), ("models:tag", "evil:1", "staging"),
                 ("models:history", "evil"), ("models:register", "evil:1"),
                 ("models:get", "evil:1", "-o", str(tmp_path / "copy.pkl")), ("status",)):
        repo(*args)
        assert not marker.exists(), args
    assert show(repo, "evil:1")["encoding"] == "pickle"
    with pytest.raises(Exception, match="refusing to load"):
        api.load_model("evil:1", cwd=repo.root)
    assert not marker.exists()
    api.load_model("evil:1", trust=True, cwd=repo.root)
    assert marker.exists()


def test_python_api_log_path_and_load(repo: Moma) -> None:
    x = np.random.RandomState(1).rand(40, 3)
    clf = DecisionTreeClassifier(max_depth=3, random_state=12345).fit(x, x[:, 0] > 0.5)
    version = api.log_model(clf, "credit-risk", metrics={"accuracy": np.float64(0.85)},
                            params={"data": "august"}, cwd=repo.root)
    assert version.label == "v1 (uncommitted)"
    commit(repo, "log_model")
    shown = show(repo, "credit-risk:1")
    assert shown["algo"] == "DecisionTreeClassifier" and shown["metrics"] == {"accuracy": 0.85}
    assert shown["params"]["max_depth"] == 3 and shown["params"]["random_state"] == 12345
    assert shown["params"]["data"] == "august" and shown["path"] == "credit-risk.joblib"
    path = api.model_path("credit-risk:1", cwd=repo.root)
    assert path.read_bytes() == (repo.root / "credit-risk.joblib").read_bytes()
    loaded = api.load_model("credit-risk", trust=True, cwd=repo.root)
    assert (loaded.predict(x) == clf.predict(x)).all()
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(Exception, match="content does not match|corrupt"):
        api.load_model("credit-risk", trust=True, cwd=repo.root)


def test_service_resolve_interface(two_versions: Moma) -> None:
    repo = open_repo(two_versions.root)
    two_versions("models:tag", "credit-risk:1", "production")
    v = resolving.resolve(repo, "credit-risk:production")
    assert (v.name, v.version, v.stages, v.pointer.path) == (
        "credit-risk", 1, ["production"], "model.joblib")
    assert v.commit is not None and v.oid == v.pointer.oid


def test_commands_run_as_a_process_with_help(two_versions: Moma) -> None:
    out = two_versions.proc("models:list", "--json").stdout
    assert json.loads(out)["models"][0]["name"] == "credit-risk"
    helps = two_versions.proc("--help").stdout
    for command in ("add", "list", "log", "show", "diff", "tag", "untag", "history",
                    "register", "get"):
        assert f"models:{command}" in helps
        text = two_versions(f"models:{command}", "--help").stdout
        assert "Example" in text and "--json" in text
