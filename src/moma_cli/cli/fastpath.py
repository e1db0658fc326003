"""The `moma` executable: the hook-speed commands without Typer, every other one through it.

Git hooks and pre-commit run `moma status`, `moma checkout`, `moma check` and `moma hook
...` on every commit, checkout and push; importing Typer (and the click it vendors) costs
more than the whole command (docs/performance.md). Those commands are parsed here from
`fast_commands.py`, a table that `python -m moma_cli.cli.fastspec` generates from their
Typer definitions (the one command-line definition; tests/cli/test_fastpath.py fails when
the table is stale and checks this parser against click's on generated command lines).
The parser only accepts what it is sure of: anything else (`--help`, an unknown or
malformed option, a bad value, a missing argument, completion) goes to Typer, which
parses it again and reports as it always has.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from moma_cli.cli.fastspec import FastCommand, FastParam

# The first words of fastspec.FAST (a test keeps them equal): other command lines go to
# Typer before the table and its dataclasses are imported (5 ms, `moma --help` included).
FIRST_WORDS = frozenset({"status", "checkout", "check", "hook"})
# Converters of FastParam.type ("path" is Typer's pathlib.Path).
_CONVERT: dict[str, Any] = {"str": str, "int": int, "float": float}


class Invocation(NamedTuple):
    command: FastCommand
    kwargs: dict[str, Any]  # the command function's arguments
    verbose: bool
    wait: float
    wants_json: bool  # errors go to stdout as JSON too


def parse(args: Sequence[str], globals_: Sequence[FastParam],
          commands: dict[tuple[str, ...], FastCommand]) -> Invocation | None:
    """`moma [global options] COMMAND [options and arguments]`, or None: Typer's to parse."""
    valued = {opt for p in globals_ if p.kind == "value" for opt in p.opts}
    at = 0
    while at < len(args) and args[at].startswith("-"):
        at += 2 if args[at] in valued else 1
    head = _options(args[:at], globals_, positional_ok=False)
    command = commands.get(tuple(args[at:at + 2])) or commands.get(tuple(args[at:at + 1]))
    if head is None or command is None:
        return None
    rest = args[at + len(command.path):]
    values = _options(rest, command.params, positional_ok=True)
    if values is None:
        return None
    top = {p.name: p.default for p in globals_} | head
    return Invocation(command, values, bool(top["verbose"]), float(top["wait"]),
                      "--json" in rest)


def _options(args: Sequence[str], params: Sequence[FastParam],
             positional_ok: bool) -> dict[str, Any] | None:
    """The values of `params` in `args` (defaults filled in), or None where click might
    read them differently or refuse them."""
    by_opt = {opt: p for p in params for opt in p.opts}
    values: dict[str, Any] = {}
    positional: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            positional.extend(tokens)
            break
        if not token.startswith("-") or token == "-":
            positional.append(token)
            continue
        name, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        param = by_opt.get(name)
        if param is None:
            return None  # -h, --help, an unknown option, -rNAME or bundled short flags
        if param.kind == "flag":
            if eq:
                return None
            values[param.name] = True
            continue
        text = inline if eq else next(tokens, None)
        if text is None or (not eq and text.startswith("-")):
            return None
        value = _convert(param, text)
        if value is None:
            return None
        if param.many:
            values.setdefault(param.name, []).append(value)
        else:
            values[param.name] = value
    if positional and not positional_ok:
        return None
    arguments = _arguments(positional, [p for p in params if p.kind == "argument"])
    if arguments is None:
        return None
    for param in params:
        if param.name not in values and param.name not in arguments:
            if param.required:
                return None
            values[param.name] = param.default
    return values | arguments


def _arguments(positional: list[str], params: list[FastParam]) -> dict[str, Any] | None:
    """click's distribution of positional values: fixed arguments before the variadic one
    take from the front, those after it from the back, the variadic one the rest."""
    variadic = next((i for i, p in enumerate(params) if p.many), None)
    before = params if variadic is None else params[:variadic]
    after = [] if variadic is None else params[variadic + 1:]
    if len(positional) > len(before) + len(after) and variadic is None:
        return None
    out: dict[str, Any] = {}
    head, tail = positional[:len(before)], positional[len(before):]
    for param, text in zip(before, head, strict=False):
        out[param.name] = _convert(param, text)
    if variadic is not None:
        cut = max(len(tail) - len(after), 0)
        for param, text in zip(after, tail[cut:], strict=False):
            out[param.name] = _convert(param, text)
        rest = [_convert(params[variadic], text) for text in tail[:cut]]
        if rest:
            out[params[variadic].name] = rest
    if any(value is None for value in out.values()) or any(
            isinstance(value, list) and None in value for value in out.values()):
        return None
    return out


def _convert(param: FastParam, text: str) -> Any:
    if param.type == "path":
        from pathlib import Path

        return Path(text)
    try:
        value = _CONVERT[param.type](text)
    except ValueError:
        return None
    if param.minimum is not None and value < param.minimum:
        return None
    return value


def run(invocation: Invocation) -> bool:
    """The command as Typer would run it: global options, then the function, its failures
    mapped to exit codes as the root command maps them (context.failure_code). False when
    the command found its options wrong (a typer.BadParameter, raised before it acts):
    Typer's to run again and report with its usage line."""
    from moma_cli.cli.context import apply_global_options, failure_code

    apply_global_options(invocation.verbose, invocation.wait)
    command = invocation.command
    function = getattr(import_module(f"moma_cli.cli.{command.module}"), command.function)
    try:
        function(**invocation.kwargs)
    except BaseException as exc:  # noqa: BLE001 - the funnel, bugs included
        typer_errors = sys.modules.get("typer.exceptions")
        if typer_errors is not None and isinstance(exc, typer_errors.TyperException):
            return False
        code = failure_code(exc, invocation.wants_json)
        if code is None:
            raise
        raise SystemExit(code) from None
    return True


def main() -> None:
    invocation = None
    if "_MOMA_COMPLETE" not in os.environ and FIRST_WORDS.intersection(sys.argv[1:]):
        from moma_cli.cli import fast_commands

        invocation = parse(sys.argv[1:], fast_commands.GLOBALS, fast_commands.COMMANDS)
    if invocation is None or not run(invocation):
        from moma_cli.cli.app import main as typer_main

        typer_main()
