"""Every command and option explains itself; errors map to the documented exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from conftest import Moma
from moma_cli.cli.app import COMMANDS, full_app
from moma_cli.cli.context import ErrorFunnel
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


def test_table_cells_are_shown_verbatim(capsys: Any) -> None:
    from moma_cli.cli import render

    render.out.cache_clear()
    render.table(["name"], [["[production] [bold]x[/bold]"]])
    assert "[production] [bold]x[/bold]" in capsys.readouterr().out
