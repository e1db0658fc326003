"""All terminal output: tables, key-value blocks, JSON, errors, progress bars.

The only module that imports rich, and it does so lazily so that commands which print
little stay fast to start.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from moma_cli.services.progress import Progress

# Piped or redirected, a table is read by a script or grep: one row per line, never a value
# (a tag ref, a hash) folded at a terminal width that is not there.
_PIPED_WIDTH = 100_000


@cache
def out() -> Any:
    from rich.console import Console

    piped = not sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=True, width=_PIPED_WIDTH if piped else None)


@cache
def err() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def line(text: str = "", style: str | None = None) -> None:
    if style is None:  # plain text needs no rich: importing it cost `moma status` 0.02 s
        sys.stdout.write(text + "\n")
        return
    out().print(text, style=style, markup=False)


def line_buffered() -> None:
    """Send each line of stdout as it is printed, for long-running commands (`moma serve`):
    piped or redirected (Docker, systemd, CI logs), Python buffers stdout in 8 KiB blocks,
    and a line can wait there for good (stderr is line-buffered already)."""
    if isinstance(sys.stdout, io.TextIOWrapper) and not sys.stdout.line_buffering:
        sys.stdout.reconfigure(line_buffering=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:
        # Text, not str: values are user data, and '[production]' must not parse as markup.
        t.add_row(*(Text("" if v is None else str(v)) for v in row))
    out().print(t)


def block(pairs: Iterable[tuple[str, Any]], body: str | None = None) -> None:
    """A 'Key: value' block like `git log` headers, with an indented body."""
    blocks([(pairs, body)])


def blocks(items: Iterable[tuple[Iterable[tuple[str, Any]], str | None]]) -> None:
    """Several blocks separated by blank lines, in one print (a rich print per block
    would add ~0.2 s to a 1,000-version `models:log`)."""
    texts = []
    for pairs, body in items:
        texts.append("\n".join([f"{key}: {value}" for key, value in pairs]
                               + [f"    {text}" for text in (body or "").splitlines()]))
    if texts:
        out().print("\n\n".join(texts), markup=False)


def json_error(message: str, hint: str | None = None) -> None:
    """An error of a command run with --json, for the script reading its stdout."""
    print_json({"ok": False, "error": message, "hint": hint})


def error(message: str, hint: str | None = None, detail: str = "") -> None:
    """`detail`: lines quoted under the message (a remote command's stderr)."""
    err().print(f"[bold red]error:[/] {escape(message)}")
    for text in detail.rstrip("\n").splitlines():
        err().print(f"    {escape(text)}")
    if hint:
        err().print(f"[yellow]hint:[/] {escape(hint)}")


def warn(message: str) -> None:
    err().print(f"[yellow]warning:[/] {escape(message)}")


def escape(text: str) -> str:
    """Rich-escaped and with secrets redacted: every error and warning goes through here."""
    from rich.markup import escape as rich_escape

    from moma_cli.credentials import redact

    return str(rich_escape(redact(text)))


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class RichProgress(Progress):
    """A transient rich progress bar on stderr, shown only on a terminal."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._task: Any = None

    def start(self, label: str, total: int | None = None) -> None:
        if not sys.stderr.isatty():  # decided before importing rich for a bar never shown
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self.finish()
        self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=err(), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
