"""Options and arguments several commands share, and the parsing of `key=value` options.

The hook-speed command modules (data, checks, hooks) import neither Typer nor these at
import time, so the fast path (cli/fastpath.py) can run them without Typer: their
annotations stay strings, which Typer evaluates in the module's globals once register()
has bound `typer` and these names there (bind_annotations).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Jobs = Annotated[int | None, typer.Option("--jobs", "-j", min=1,
                                             help="Parallel workers (default: from config, "
                                                  "else sized to the machine).")]
Executor = Annotated[str | None, typer.Option(
    "--executor", metavar="WHERE",
    help="Where commands run: local, dask-local (a cluster started for the run) or "
         "dask://HOST:PORT (workers must see the repository at the same path).")]
Targets = Annotated[list[str] | None, typer.Argument(
    help="Limit to these tracked paths (default: every pointer in the workspace).")]
RemoteName = Annotated[str | None, typer.Option(
    "--remote", "-r", metavar="NAME", help="Remote name (default: core.remote).")]
Rev = Annotated[str | None, typer.Option(
    "--rev", help="Read history from this git revision instead of the current branch.")]
SourceRepo = Annotated[str | None, typer.Option(
    "--repo", metavar="URL",
    help="Read another repository's registry instead (a local path, file://, https://, "
         "ssh:// or git@host:path; cloned once under .moma/repos); --rev is then its "
         "revision (default: its default branch).")]
Ref = Annotated[str, typer.Argument(
    help="Model reference: NAME, NAME:4, NAME:production or NAME@REV.")]
Reference = Annotated[str | None, typer.Option(
    "--reference", metavar="DATA",
    help="The training inputs (CSV with a header, or JSON lines): their profile is what "
         "'moma monitor' measures drift against (default: the one CSV/JSON-lines --from).")]
Target = Annotated[str | None, typer.Option(
    "--target", metavar="COLUMN",
    help="The column of the training data holding the labels: profiled as the "
         "distribution live predictions are compared with, not as a feature.")]
Files = Annotated[list[str], typer.Argument(help="Files to check (pre-commit passes them).")]
Window = Annotated[str | None, typer.Option(
    "--window", metavar="DURATION",
    help="Only log lines of the last DURATION (e.g. 30m, 1h, 7d).")]
Feedback = Annotated[Path | None, typer.Option(
    "--feedback", metavar="FILE",
    help="True labels of served requests (CSV or JSON lines: request_id, label[, row]): "
         "gives live.accuracy.")]
SHARED = ("Json", "Jobs", "Executor", "Targets", "RemoteName", "Rev", "SourceRepo", "Ref",
          "Reference", "Target", "Files", "Window", "Feedback")


def bind_annotations(namespace: dict[str, Any]) -> None:
    """Gives a hook-speed command module the names its string annotations use."""
    namespace["typer"] = typer
    namespace["Path"] = Path
    namespace.update({name: globals()[name] for name in SHARED})


def key_values(pairs: Sequence[str], option: str) -> dict[str, Any]:
    """`--metric auc=0.9` style options: a value becomes an int, float, bool or null when it
    reads as one, else stays a string."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r}: write it as key=value", param_hint=option)
        result[key.strip()] = _scalar(value.strip())
    return result


def _scalar(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# Global options that take a value: the token after them is not the command name.
VALUED_OPTIONS = ("--wait",)


def command_index(args: Sequence[str]) -> int | None:
    """Where the command (or group) name is in `args`, past the global options before it."""
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg in VALUED_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return i
    return None


# Until 0.x, `status` and `fsck` took `--remote` as a flag and `-r/--remote-name NAME` for
# the remote, where push, pull and gc take `-r/--remote NAME`. The old spellings are
# rewritten before parsing, each with a warning, for one release (docs/commands.md).
_LEGACY_REMOTE_COMMANDS = ("status", "fsck")


def upgrade_legacy_options(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """`args` with the old remote spellings of status/fsck in today's, and the warnings."""
    at = command_index(args)
    if at is None or args[at] not in _LEGACY_REMOTE_COMMANDS:
        return list(args), []
    out, warnings = list(args[:at + 1]), []
    rest = list(args[at + 1:])
    for i, arg in enumerate(rest):
        if arg == "--":
            out.extend(rest[i:])
            break
        if arg == "--remote-name" or arg.startswith("--remote-name="):
            warnings.append("'--remote-name NAME' is deprecated and goes in the next release: "
                            "use '-r/--remote NAME'")
            out.append("--remote" + arg.removeprefix("--remote-name"))
        elif arg == "--remote" and (i + 1 == len(rest) or rest[i + 1].startswith("-")):
            warnings.append("'--remote' without a NAME is deprecated and goes in the next "
                            "release: use '-c/--cloud' for the default remote, or "
                            "'-r/--remote NAME'")
            out.append("--cloud")
        else:
            out.append(arg)
    return out, warnings
