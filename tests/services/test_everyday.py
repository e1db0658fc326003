"""`moma remove`, `moma move`, `moma doctor`, and checkout's progress: the everyday commands
DVC users reach for, in real git repositories."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import Moma, configure, register_model, write
from helpers import with_sections
from moma_cli.services import data_checkout
from moma_cli.services.progress import Progress
from moma_cli.services.repo import open_repo
from realtools import free_port


def staged(repo: Moma) -> dict[str, str]:
    """path -> status letter of what is staged against HEAD (renames as delete + add)."""
    out = repo.git("diff", "--cached", "--name-status", "--no-renames")
    return {line.split("\t")[1]: line.split("\t")[0] for line in out.splitlines()}


def added_and_committed(repo: Moma, *paths: str) -> None:
    repo("add", *paths)
    repo.git("commit", "-qm", "track")


# -- remove ----------------------------------------------------------------------------------


def test_remove_keeps_the_data_and_stages_the_untracking(repo: Moma) -> None:
    write(repo.root / "data" / "raw.csv", "a,b\n1,2\n")
    added_and_committed(repo, "data/raw.csv")
    res = repo("remove", "data/raw.csv")
    assert "data kept" in res.stdout
    assert (repo.root / "data" / "raw.csv").read_text() == "a,b\n1,2\n"
    assert not (repo.root / "data" / "raw.csv.moma").exists()
    # The .gitignore held only moma's line: it goes, and git now sees the data.
    assert not (repo.root / "data" / ".gitignore").exists()
    assert staged(repo) == {"data/.gitignore": "D", "data/raw.csv.moma": "D"}
    assert "?? data/raw.csv" in repo.git("status", "--porcelain", "--untracked-files=all")


def test_remove_takes_out_only_its_own_gitignore_line(repo: Moma) -> None:
    write(repo.root / "a.bin", "a")
    write(repo.root / "b.bin", "b")
    added_and_committed(repo, "a.bin", "b.bin")
    repo("remove", "a.bin.moma")  # the pointer's name works too
    lines = (repo.root / ".gitignore").read_text().splitlines()
    assert "/a.bin" not in lines and "/b.bin" in lines and "/.moma/" in lines
    assert staged(repo) == {".gitignore": "M", "a.bin.moma": "D"}


def test_remove_refuses_untracked_paths_and_changes_nothing(repo: Moma) -> None:
    write(repo.root / "kept.bin", "k")
    write(repo.root / "data" / "x.csv", "x")
    added_and_committed(repo, "kept.bin", "data")
    write(repo.root / "loose.txt", "not tracked")
    res = repo("remove", "kept.bin", "loose.txt", ok=False)
    assert "loose.txt: not tracked by moma" in res.stderr and "hint:" in res.stderr
    assert (repo.root / "kept.bin.moma").exists()  # nothing changed: all or none
    res = repo("remove", "data/x.csv", ok=False)
    assert "'moma remove data'" in res.stderr


def test_remove_delete_data_deletes_only_what_the_cache_holds(repo: Moma) -> None:
    write(repo.root / "data" / "a.txt", "a")
    write(repo.root / "data" / "sub" / "b.txt", "b")
    write(repo.root / "model.bin", "weights")
    added_and_committed(repo, "data", "model.bin")
    write(repo.root / "model.bin", "edited, never added")
    res = repo("remove", "model.bin", "--delete-data", ok=False)
    assert "will not delete" in res.stderr
    assert (repo.root / "model.bin").read_text() == "edited, never added"
    write(repo.root / "data" / "notes.txt", "the user's, not in the listing")
    repo("remove", "data", "--delete-data", ok=False)
    assert (repo.root / "data" / "notes.txt").exists() and (repo.root / "data.moma").exists()
    (repo.root / "data" / "notes.txt").unlink()
    res = repo("remove", "data", "--delete-data")
    assert "data deleted" in res.stdout
    assert not (repo.root / "data").exists() and not (repo.root / "data.moma").exists()


def test_removing_a_model_says_its_tags_stay(repo: Moma) -> None:
    register_model(repo, "clf", {"auc": 0.9})
    res = repo("remove", "clf.pkl")
    assert "Model 'clf' leaves the registry" in res.stdout and "tags stay in git" in res.stdout
    repo.git("commit", "-qm", "drop clf")
    assert "clf" not in repo("models:list", "--json").stdout


# -- move ------------------------------------------------------------------------------------


def test_move_a_file_into_a_new_directory_updates_both_gitignores(repo: Moma) -> None:
    write(repo.root / "model.pkl", "weights")
    added_and_committed(repo, "model.pkl")
    repo("move", "model.pkl", "models/")
    assert (repo.root / "models" / "model.pkl").read_text() == "weights"
    assert not (repo.root / "model.pkl").exists() and not (repo.root / "model.pkl.moma").exists()
    assert "/model.pkl" not in (repo.root / ".gitignore").read_text().splitlines()
    assert (repo.root / "models" / ".gitignore").read_text() == "/model.pkl\n"
    assert staged(repo) == {".gitignore": "M", "model.pkl.moma": "D",
                            "models/.gitignore": "A", "models/model.pkl.moma": "A"}
    assert "up to date" in repo("status").stdout


def test_move_a_directory_keeps_the_pointers_other_sections(repo: Moma) -> None:
    write(repo.root / "data" / "a.txt", "a")
    write(repo.root / "data" / "b" / "c.txt", "c")
    added_and_committed(repo, "data")
    r = open_repo(repo.root)
    ptr = r.load_pointer("data.moma")
    ptr = with_sections(ptr, model={"name": "ds"}, lineage={"code": "abc"}, meta={"owner": "me"})
    r.write_pointer(ptr)
    repo("move", "data", "datasets/train")
    moved = open_repo(repo.root).load_pointer("datasets/train.moma")
    assert (moved.oid, moved.nfiles) == (ptr.oid, ptr.nfiles)
    assert (moved.model, moved.lineage, moved.extra) == (ptr.model, ptr.lineage,
                                                         {"meta": {"owner": "me"}})
    assert (repo.root / "datasets" / "train" / "b" / "c.txt").read_text() == "c"
    assert (repo.root / "datasets" / ".gitignore").read_text() == "/train\n"
    assert "up to date" in repo("status").stdout


def test_move_refuses_to_overwrite_escape_or_enter_moma_and_git_files(repo: Moma,
                                                                     tmp_path: Path) -> None:
    write(repo.root / "a.bin", "a")
    write(repo.root / "b.bin", "b")
    write(repo.root / "data" / "x", "x")
    added_and_committed(repo, "a.bin", "b.bin", "data")
    before = repo.git("status", "--porcelain")
    for dst, message in [("b.bin", "already exists"), (str(tmp_path / "out"), "outside"),
                         (".moma/a.bin", "moma's or git's own"), (".git/a.bin", "own"),
                         ("sub/.moma.yaml", "own"), ("data/a.bin", "overlaps data"),
                         ("c.bin.moma", "names a pointer")]:
        res = repo("move", "a.bin", dst, ok=False)
        assert message in res.stderr, (dst, res.stderr)
    assert "not tracked by moma" in repo("move", "nothing", "x", ok=False).stderr
    assert repo.git("status", "--porcelain") == before
    assert (repo.root / "a.bin").read_text() == "a"


def test_a_stage_output_is_neither_moved_nor_removed(repo: Moma) -> None:
    write(repo.root / "model.bin", "weights")
    added_and_committed(repo, "model.bin")
    configure(repo, {}, stages={"train": {"cmd": "python train.py", "outs": ["model.bin"]}})
    for args in (("move", "model.bin", "m.bin"), ("remove", "model.bin")):
        assert "output of stage 'train'" in repo(*args, ok=False).stderr
    assert (repo.root / "model.bin.moma").exists()


# -- doctor ----------------------------------------------------------------------------------


def test_doctor_reports_versions_cache_links_and_a_dead_remote_quickly(
        repo: Moma, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-value")
    repo("remote", "add", "dead", "s3://bucket/moma", "--default")
    closed = free_port()  # nobody listens there
    repo("remote", "modify", "dead", "endpointurl", f"http://127.0.0.1:{closed}")
    (tmp_path / "store").mkdir()
    repo("remote", "add", "here", str(tmp_path / "store"))
    started = time.monotonic()
    report = json.loads(repo("doctor", "--json").stdout)
    assert time.monotonic() - started < 15
    assert {"moma", "python", "git", "platform", "root", "cache_dir", "cache_free",
            "link_types", "remotes", "shallow", "hooks", "warnings"} <= report.keys()
    assert report["root"] == str(repo.root) and report["cache_free"] > 0
    assert report["link_types"]["copy"] is True
    assert list((repo.root / ".moma" / "cache" / "tmp").iterdir()) == []  # probe cleaned up
    remotes = {r["name"]: r for r in report["remotes"]}
    assert remotes["here"]["status"] == "ok"
    assert remotes["dead"]["status"] in ("error", "timeout") and remotes["dead"]["default"]
    assert report["shallow"] is False and report["hooks"]["pre-push"] is False
    repo("remote", "remove", "dead")
    table = repo("doctor").stdout
    assert "remote here" in table and "link types" in table and "git hooks" in table


def test_doctor_outside_a_repository_still_reports(tmp_path: Path) -> None:
    report = json.loads(Moma(tmp_path)("doctor", "--json").stdout)
    assert report["root"] is None and "not inside a git work tree" in report["repo_error"]


# -- checkout progress -----------------------------------------------------------------------


class Recording(Progress):
    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None]] = []
        self.done = 0
        self.finished = 0

    def start(self, label: str, total: int | None = None) -> None:
        self.phases.append((label, total))

    def advance(self, n: int = 1) -> None:
        self.done += n

    def finish(self) -> None:
        self.finished += 1


def test_checkout_reports_progress_over_every_file(repo: Moma) -> None:
    for i in range(300):  # more than one progress batch
        write(repo.root / "data" / f"{i:03}.txt", str(i))
    write(repo.root / "model.bin", "weights")
    added_and_committed(repo, "data", "model.bin")
    for path in [*(repo.root / "data").iterdir(), repo.root / "model.bin"]:
        path.unlink()
    progress = Recording()
    result = data_checkout.checkout(open_repo(repo.root), progress=progress)
    assert len(result.restored) == 301
    assert progress.phases == [("checking out", 301)]
    assert progress.done == 301 and progress.finished == 1


def test_checkout_keeps_stdout_clean_when_not_a_terminal(repo: Moma) -> None:
    write(repo.root / "model.bin", "weights")
    added_and_committed(repo, "model.bin")
    (repo.root / "model.bin").unlink()
    res = repo.proc("checkout")
    assert res.stdout == "1 restored, 0 unchanged\n" and res.stderr == ""
