"""The fast path (cli/fastpath.py) reads every command line as click does, or leaves it to
Typer; its table is what the Typer definitions say; and it runs the command as Typer does."""

from __future__ import annotations

import functools
import subprocess
import sys
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.main import get_command

from conftest import Moma
from moma_cli.cli import fast_commands, fastpath, fastspec
from moma_cli.cli.app import SETTINGS, build
from moma_cli.cli.fastpath import Invocation, parse
from moma_cli.cli.fastspec import FastCommand, FastParam

COMMANDS = fast_commands.COMMANDS


def test_the_table_is_what_the_typer_definitions_say() -> None:
    assert fastspec.TABLE.read_text() == fastspec.render(), \
        "run: python -m moma_cli.cli.fastspec"
    assert {path[0] for path in fastspec.FAST} == fastpath.FIRST_WORDS


@functools.cache
def _spied() -> tuple[Any, dict[str, Any]]:
    """moma's root command with every fast command (and the global options) replaced by a
    function of the same signature that records what Typer called it with."""
    seen: dict[str, Any] = {}

    def spy(function: Any, key: tuple[str, ...]) -> Any:
        @functools.wraps(function)
        def record(**kwargs: Any) -> None:
            seen[" ".join(key)] = kwargs
        return record

    app = build(typer.Typer(**SETTINGS), tuple({c.module for c in COMMANDS.values()}))
    assert app.registered_callback is not None
    app.registered_callback.callback = spy(app.registered_callback.callback, ("",))
    for info in app.registered_commands:
        info.callback = spy(info.callback, (info.name or "",))
    for group in app.registered_groups:
        assert group.typer_instance is not None
        for info in group.typer_instance.registered_commands:
            info.callback = spy(info.callback, (group.name or "", info.name or ""))
    return get_command(app), seen


def read_by_typer(args: list[str]) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """(command, its arguments, the global options) as Typer reads `args`, None if refused."""
    command, seen = _spied()
    seen.clear()
    try:
        command.main(args, prog_name="moma", standalone_mode=False)
    except (typer.Exit, typer.Abort, typer.TyperException, SystemExit):
        return None
    (name, kwargs), = ((k, v) for k, v in seen.items() if k)
    return name, kwargs, {k: v for k, v in seen[""].items() if k != "version"}


def read_fast(args: list[str]) -> Invocation | None:
    return parse(args, fast_commands.GLOBALS, COMMANDS)


# Command lines built from the table: options in either spelling, values of every kind,
# arguments anywhere, and tokens click refuses or reads its own way.
TEXT = st.text("ab.=/-_ 0", min_size=0, max_size=4)
NUMBER = st.sampled_from(["0", "1", "3", "+2", " 4", "1_0", "-1", "x", "", "2.5", "inf"])


def _value(param: FastParam) -> st.SearchStrategy[str]:
    return NUMBER if param.type in ("int", "float") else TEXT


def _piece(param: FastParam) -> st.SearchStrategy[list[str]]:
    if param.kind == "argument":
        return st.lists(TEXT, min_size=0, max_size=2)
    opt = st.sampled_from(param.opts)
    if param.kind == "flag":
        return st.one_of(opt.map(lambda o: [o]), opt.map(lambda o: [o + "=1"]))
    return st.one_of(st.tuples(opt, _value(param)).map(list),
                     st.tuples(opt, _value(param)).map(lambda ov: [f"{ov[0]}={ov[1]}"]),
                     opt.map(lambda o: [o]))


JUNK = st.sampled_from(["-h", "--help", "--nope", "-x", "--", "-", "-5", "-vj", "--json"])


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command: FastCommand = draw(st.sampled_from(list(COMMANDS.values())))
    head = draw(st.lists(st.sampled_from([["-v"], ["--verbose"], ["--wait", "2"],
                                          ["--wait=0.5"], ["--wait", "x"], ["-q"]]),
                         max_size=2))
    pieces = draw(st.lists(st.one_of(*(_piece(p) for p in command.params),
                                     JUNK.map(lambda j: [j])), max_size=6))
    return [t for part in head for t in part] + list(command.path) + [
        t for part in pieces for t in part]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_lines())
def test_the_fast_path_reads_a_command_line_as_click_does_or_not_at_all(args: list[str]
                                                                        ) -> None:
    fast = read_fast(args)
    if fast is None:
        return  # Typer's to parse and report: always right
    assert read_by_typer(args) == (" ".join(fast.command.path), fast.kwargs,
                                   {"verbose": fast.verbose, "wait": fast.wait})


@st.composite
def plain_command_lines(draw: st.DrawFn) -> list[str]:
    """What hooks and people type: known options with good values, then arguments."""
    command: FastCommand = draw(st.sampled_from(list(COMMANDS.values())))
    words = st.text("abc./_", min_size=1, max_size=5)
    args = list(command.path)
    for param in command.params:
        if param.kind == "flag" and draw(st.booleans()):
            args.append(param.opts[0])
        elif param.kind == "value" and draw(st.booleans()):
            value = str(draw(st.integers(param.minimum or 0, 99))) \
                if param.type in ("int", "float") else draw(words)
            args += [param.opts[-1], value] if draw(st.booleans()) else [
                f"{param.opts[0]}={value}"]
    positional = [p for p in command.params if p.kind == "argument"]
    for param in positional:
        count = draw(st.integers(1 if param.required else 0, 3 if param.many else 1))
        args += draw(st.lists(words, min_size=count, max_size=count))
        if count == 0:
            break  # an optional argument left out: none after it either
    return args


@settings(max_examples=200, deadline=None)
@given(plain_command_lines())
def test_plain_command_lines_take_the_fast_path(args: list[str]) -> None:
    fast = read_fast(args)
    assert fast is not None, args
    assert read_by_typer(args) == (" ".join(fast.command.path), fast.kwargs,
                                   {"verbose": False, "wait": 0.0})


@pytest.mark.parametrize("args", [
    ["status", "--help"], ["-h"], ["--version"], ["status", "-rorigin"], ["status", "-cj", "2"],
    ["status", "--remote"], ["status", "--remote-name", "s3"], ["hook", "pointers"],
    ["hook", "large-files", "--max-kb", "0", "a"], ["--wait", "soon", "status"],
    ["status", "--jobs", "-1"], ["hook", "pre-push", "a", "b", "c"], ["statu"], [],
])
def test_what_click_reports_or_reads_its_own_way_is_left_to_typer(args: list[str]) -> None:
    assert read_fast(args) is None


def _moma(repo: Moma, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`moma ...` as git hooks run it: the installed script's entry point, a new process."""
    code = "import sys; from moma_cli.cli.fastpath import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=repo.root, input=stdin,
                          capture_output=True, text=True)


def test_a_fast_command_says_and_exits_what_typer_does(repo: Moma) -> None:
    (repo.root / "data.txt").write_text("some data\n")
    repo("add", "data.txt")
    (repo.root / "data.txt").write_text("changed\n")
    fast = _moma(repo, "status", "--json")
    typer_run = repo("status", "--json", ok=False)
    assert (fast.returncode, fast.stdout) == (typer_run.exit_code, typer_run.stdout)
    assert fast.returncode == 1 and '"state": "modified"' in fast.stdout
    (repo.root / "big.bin").write_bytes(b"x" * 3000)
    fast = _moma(repo, "hook", "large-files", "--max-kb=1", "big.bin")
    assert fast.returncode == 1
    assert fast.stderr.startswith("error: big.bin:"), fast.stderr


def test_a_usage_error_a_fast_command_finds_is_reported_by_typer(repo: Moma) -> None:
    res = _moma(repo, "check", "--rollback", "--heal")
    assert res.returncode == 2
    assert "check [OPTIONS]" in res.stderr and "--rollback goes with" in res.stderr


def test_a_failure_on_the_fast_path_is_funnelled_as_on_typer_s(repo: Moma) -> None:
    (repo.root / "m.txt.moma").write_text("outs: [{md5: nothex, path: m.txt}]\n")
    res = _moma(repo, "hook", "pointers", "m.txt.moma")
    assert res.returncode == 1 and "internal error" not in res.stderr
    assert res.stderr.startswith("error: m.txt.moma"), res.stderr
