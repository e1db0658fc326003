"""Every command and option explains itself; errors map to the documented exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from conftest import PROJECT, Moma
from moma_cli.cli.app import COMMANDS, ErrorFunnel, full_app
from moma_cli.errors import MomaError


def walk(command: Any, path: str = "moma") -> Iterator[tuple[str, Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, command in walk(typer.main.get_command(full_app())):
        if not (command.help or "").strip():
            missing.append(path)
        for param in command.params:
            if param.param_type_name == "option" and not (param.help or "").strip():
                missing.append(f"{path} {param.opts[0]}")
    assert missing == []


def test_each_command_is_routed_to_the_module_that_registers_it() -> None:
    """`moma NAME` imports only COMMANDS' module for NAME: the table must say what each
    module's register() adds, in full, and `--help` must list them all."""
    from importlib import import_module

    for module, names in COMMANDS.items():
        one = typer.Typer()
        import_module(f"moma_cli.cli.{module}").register(one)
        registered = [c.name for c in one.registered_commands]
        registered += [g.name for g in one.registered_groups]
        assert tuple(registered) == names, module
    listed = typer.main.get_command(full_app()).commands  # type: ignore[attr-defined]
    assert sorted(listed) == sorted(n for names in COMMANDS.values() for n in names)


def test_help_runs_in_a_fresh_process() -> None:
    out = subprocess.run([sys.executable, "-m", "moma_cli", "--help"], capture_output=True,
                         text=True, check=True)
    assert "add" in out.stdout and "status" in out.stdout


def test_the_command_index_lists_what_the_whole_app_lists() -> None:
    """`moma --help` registers each command's help without its parameters (CommandIndex):
    the listing must be the whole app's, line for line."""
    def help_of(call: str) -> str:
        return subprocess.run([sys.executable, "-c", f"from moma_cli.cli.app import *; {call}",
                               "--help"], capture_output=True, text=True, check=True).stdout
    index = help_of("main()")
    assert index == help_of("full_app()()")
    assert "models:list" in index and "hook " in index and "--wait SECONDS" in index


def test_usage_error_exits_2() -> None:
    out = subprocess.run([sys.executable, "-m", "moma_cli", "add"], capture_output=True,
                         text=True)
    assert out.returncode == 2


@pytest.mark.parametrize("args", [("models:add", "clf", "m.joblib", "--metric", "auc"),
                                  ("add", "m.joblib", "n.bin", "--model", "clf")])
def test_a_bad_option_value_is_a_usage_error_naming_the_option(repo: Moma,
                                                               args: tuple[str, ...]) -> None:
    (repo.root / "m.joblib").write_bytes(b"model")
    (repo.root / "n.bin").write_bytes(b"other")
    res = repo(*args, ok=False)
    assert res.exit_code == 2, res.stderr
    assert "internal error" not in res.stderr
    assert ("--metric" if "--metric" in args else "--model") in res.stderr
    assert not (repo.root / "m.joblib.moma").exists()


def test_an_unknown_command_is_a_usage_error_with_a_suggestion() -> None:
    out = subprocess.run([sys.executable, "-m", "moma_cli", "statu"], capture_output=True,
                         text=True)
    assert out.returncode == 2
    assert "No such command 'statu'" in out.stderr and "internal error" not in out.stderr


@pytest.mark.parametrize(("error", "code", "line"), [
    (MomaError("no model named 'x'", hint="see models:list"), 1, "error: no model named 'x'"),
    (PermissionError(13, "Permission denied", "/srv/m.pkl"), 1,
     "error: Permission denied: /srv/m.pkl"),
    (KeyboardInterrupt(), 130, "error: interrupted"),
    (RuntimeError("boom"), 3, "error: internal error: RuntimeError: boom"),
])
def test_the_error_funnel_maps_every_outcome_to_its_exit_code(error: BaseException, code: int,
                                                               line: str) -> None:
    demo = typer.Typer(cls=ErrorFunnel)

    @demo.command()
    def fail() -> None:
        raise error

    @demo.command()
    def other() -> None:
        pass

    res = CliRunner().invoke(demo, ["fail"])
    assert res.exit_code == code
    assert res.stderr.splitlines()[0] == line


def test_errors_under_json_are_json_on_stdout(repo: Moma) -> None:
    res = repo("models:show", "nope", "--json", ok=False)
    assert res.exit_code == 1
    assert json.loads(res.stdout) == {"ok": False, "error": "no model named 'nope'",
                                      "hint": "see 'moma models:list'; register one with "
                                              "'moma models:add'"}
    assert res.stderr.startswith("error: no model named 'nope'")  # and for the human


def test_a_piped_table_keeps_each_row_on_one_line(repo: Moma) -> None:
    name = "a-model-name-longer-than-a-terminal-is-wide-" + "x" * 50
    (repo.root / "m.bin").write_bytes(b"model")
    repo("models:add", name, "m.bin")
    res = repo.proc("models:list")  # stdout is a pipe
    rows = [line for line in res.stdout.splitlines() if name in line]
    assert len(rows) == 1 and "m.bin" in rows[0]


@pytest.mark.parametrize(("target", "error"), [
    ("missing.csv", "missing.csv: no such file or directory"),
    ("link", "link: is a symlink"),
    ("/etc/hostname", "is outside the repository"),
])
def test_add_refusals_name_the_path_and_give_a_hint(repo: Moma, target: str,
                                                     error: str) -> None:
    (repo.root / "link").symlink_to("/etc/hostname")
    res = repo("add", target, ok=False)
    lines = res.stderr.splitlines()
    assert res.exit_code == 1 and len(lines) == 2
    assert error in lines[0] and lines[1].startswith("hint: ")


def test_shell_completion_script_completes_commands(tmp_path: Any) -> None:
    moma = str(Path(sys.executable).with_name("moma"))  # the installed entry point
    # from a bash, as a user would: Typer detects the shell from the parent process (under
    # pytest the parent is python, and the script would be for no shell at all)
    shown = subprocess.run(["bash", "-c", f"{moma} --show-completion bash; exit $?"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    script = shown.stdout
    assert "complete -o default -F _moma_completion moma" in script
    env = {**os.environ, "_MOMA_COMPLETE": "complete_bash", "COMP_WORDS": "moma models:l",
           "COMP_CWORD": "1"}
    out = subprocess.run([moma], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.stdout.split() == ["models:list", "models:log"]
    env |= {"COMP_WORDS": "moma status --cl", "COMP_CWORD": "2"}  # a command's own options
    out = subprocess.run([moma], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.stdout.split() == ["--cloud"]


def test_table_cells_are_shown_verbatim(capsys: Any) -> None:
    from moma_cli.cli import render

    render.out.cache_clear()
    render.table(["name"], [["[production] [bold]x[/bold]"]])
    assert "[production] [bold]x[/bold]" in capsys.readouterr().out


COMMANDS_MD = PROJECT / "docs" / "commands.md"


def test_docs_commands_md_matches_help() -> None:
    """Every command and every option --help shows is in docs/commands.md (by one of its
    spellings), and every `moma NAME` the page names is a command."""
    import re

    doc = COMMANDS_MD.read_text()

    def mentioned(text: str) -> bool:
        return re.search(r"(?<![\w-])" + re.escape(text) + r"(?![\w-])", doc) is not None

    missing, commands = [], set()
    for path, command in walk(typer.main.get_command(full_app())):
        if getattr(command, "commands", None):
            continue
        commands.add(path.split()[1])
        if not mentioned(path) and not mentioned(path.split()[-1]):
            missing.append(path)
        for param in command.params:
            spellings = [*param.opts, *param.secondary_opts]
            if param.param_type_name != "option" or {"--help", "--json"} & set(spellings):
                continue
            if not any(mentioned(s) for s in spellings):
                missing.append(f"{path} {spellings[0]}")
    assert missing == []
    named = set(re.findall(r"`moma ([a-z][\w:-]*)", doc))
    assert sorted(named - commands) == []


@pytest.mark.parametrize("args, upgraded, warned", [
    (["status", "--remote"], ["status", "--cloud"], 1),
    (["status", "--remote", "--json"], ["status", "--cloud", "--json"], 1),
    (["status", "--remote", "-r", "b"], ["status", "--cloud", "-r", "b"], 1),
    (["--wait", "5", "fsck", "--remote-name", "b"], ["--wait", "5", "fsck", "--remote", "b"], 1),
    (["fsck", "--remote-name=b", "--remote"], ["fsck", "--remote=b", "--cloud"], 2),
    (["status", "-r", "b"], ["status", "-r", "b"], 0),
    (["status", "--", "--remote"], ["status", "--", "--remote"], 0),
    (["push", "--remote"], ["push", "--remote"], 0),  # never a flag there: click says so
])
def test_old_remote_spellings_are_rewritten(args: list[str], upgraded: list[str],
                                            warned: int) -> None:
    from moma_cli.cli.options import upgrade_legacy_options

    got, warnings = upgrade_legacy_options(args)
    assert got == upgraded and len(warnings) == warned
    assert all("deprecated" in w and "-r/--remote NAME" in w for w in warnings)


def test_r_names_a_remote_on_every_command(repo: Moma, tmp_path: Path) -> None:
    repo("remote", "add", "storage", str(tmp_path / "storage"), "--default")
    repo("remote", "add", "backup", str(tmp_path / "backup"))
    (repo.root / "data.csv").write_text("a,b\n1,2\n")
    repo("add", "data.csv")
    repo.git("commit", "-qm", "data")
    for command in (("push",), ("fetch",), ("pull",), ("status",), ("fsck",),
                    ("gc", "--workspace")):
        res = repo(*command, "-r", "nope", ok=False)
        assert "unknown remote 'nope'" in res.stderr, command
        res = repo(*command, "--remote", "nope", ok=False)
        assert "unknown remote 'nope'" in res.stderr, command
    repo("push", "-r", "storage")
    assert repo("status", "-c").exit_code == 0
    assert repo("status", "-r", "storage").exit_code == 0
    res = repo("status", "-r", "backup", "--json", ok=False)
    assert [e["state"] for e in json.loads(res.stdout)["entries"]] == ["not-pushed"]
    assert res.stderr == ""
    repo("push", "--remote", "backup")
    assert json.loads(repo("fsck", "-r", "backup", "--json").stdout)["ok"]
    assert json.loads(repo("fsck", "-c", "--json").stdout)["ok"]


@pytest.mark.parametrize("args, ok", [
    (("status", "--remote"), True),
    (("status", "--remote", "--json"), True),
    (("status", "--remote-name", "backup"), False),
    (("status", "--remote", "-r", "backup"), False),
    (("status", "--remote", "data.csv"), True),
    (("fsck", "--remote"), True),
    (("fsck", "--remote-name", "storage", "--json"), True),
])
def test_the_old_remote_spellings_still_work_with_a_warning(repo: Moma, tmp_path: Path,
                                                            args: tuple[str, ...],
                                                            ok: bool) -> None:
    repo("remote", "add", "storage", str(tmp_path / "storage"), "--default")
    repo("remote", "add", "backup", str(tmp_path / "backup"))
    (repo.root / "data.csv").write_text("a,b\n1,2\n")
    repo("add", "data.csv")
    repo("push")
    res = repo(*args, ok=ok)
    assert res.stderr.startswith("warning: ") and "deprecated" in res.stderr
    if ok:
        assert "not-pushed" not in res.stdout
    else:  # backup lacks it: the old spelling chose backup, as the new -r does
        assert "not-pushed" in res.stdout
    if "--json" in args:
        json.loads(res.stdout)


def _hint_after_every_error(stderr: str) -> bool:
    """Each run of `error:` lines ends in a `hint:` line (a list of damaged pointers gives
    the fix once, after the last)."""
    lines = [line for line in stderr.splitlines() if not line.startswith("    ")]
    for i, line in enumerate(lines):
        if line.startswith("error: "):
            rest = lines[i + 1:]
            after = next((r for r in rest if not r.startswith("error: ")), "")
            if not after.startswith("hint: "):
                return False
    return "error: " in stderr


def test_every_error_has_its_hint_line(tmp_path: Path) -> None:
    """The refusals a new user meets first, each with what to do next."""
    from conftest import git, make_repo

    outside = tmp_path / "not-git"
    outside.mkdir()
    bare_git = tmp_path / "git-only"
    bare_git.mkdir()
    git(bare_git, "init", "-q")
    repo = make_repo(tmp_path / "repo")
    (repo.root / "link").symlink_to("/etc/hostname")
    (repo.root / "data.csv").write_text("a,b\n1,2\n")
    (repo.root / "model.bin").write_bytes(b"weights")
    repo("add", "data.csv")
    repo("models:add", "clf", "model.bin")
    repo.git("commit", "-qm", "data and model")
    shutil.rmtree(repo.root / ".moma" / "cache")
    (repo.root / "model.bin").unlink()
    cases: list[tuple[Moma, tuple[str, ...]]] = [
        (Moma(outside), ("add", "x.csv")),
        (Moma(bare_git), ("add", "x.csv")),
        (repo, ("add", "missing.csv")),
        (repo, ("add", "link")),
        (repo, ("models:get", "clf", "-o", "out.bin")),  # no object, no remote
        (repo, ("pull",)),
        (repo, ("push", "-r", "nope")),
        (repo, ("status", "-r", "nope")),
        (repo, ("config", "core.jobs", "lots")),
        (repo, ("models:show", "nope")),
    ]
    for moma, args in cases:
        res = moma(*args, ok=False)
        assert res.exit_code == 1 and _hint_after_every_error(res.stderr), (args, res.stderr)
    res = repo("models:get", "clf", "-o", "out.bin", ok=False)
    assert "remote=" not in res.stderr and "moma remote add" in res.stderr
    (tmp_path / "storage").mkdir()
    repo("remote", "add", "storage", str(tmp_path / "storage"), "--default")
    (repo.root / "data.csv.moma").write_text("moma: [\n")  # a corrupt pointer
    for args in (("status",), ("checkout",), ("pull",), ("fsck",), ("push",), ("add",
                                                                              "data.csv")):
        res = repo(*args, ok=False)
        assert "data.csv.moma" in res.stderr, args
        assert res.exit_code == 1 and _hint_after_every_error(res.stderr), (args, res.stderr)
