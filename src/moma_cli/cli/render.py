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
# Above this many rows a table is laid out here, not by rich: rich measured, wrapped and
# cropped every cell, 0.7 s of CPU for the 1,000 rows of `moma exp show` (bench/exp.py),
# against 0.01 s for this layout. A long row then wraps at the terminal instead of folding.
_RICH_ROWS_MAX = 200
# Terminal control characters in a table cell are dropped: values are user data (params of
# an experiment pulled from anyone), and an ESC sequence could rewrite the screen. rich's
# Text keeps ESC. Newlines and tabs stay (a rich cell can hold several lines).
_CONTROLS = dict.fromkeys([*range(0x09), *range(0x0b, 0x20), 0x7f, *range(0x80, 0xa0)])


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
    cells = [["" if v is None else str(v).translate(_CONTROLS) for v in row] for row in rows]
    if len(cells) > _RICH_ROWS_MAX:
        _long_table(list(columns), cells, title)
        return
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in cells:
        # Text, not str: values are user data, and '[production]' must not parse as markup.
        t.add_row(*(Text(v) for v in row))
    out().print(t)


def _long_table(columns: list[str], rows: list[list[str]], title: str | None) -> None:
    """The layout rich gives a table without borders (columns two spaces apart), built
    directly, one line per row."""
    from rich.cells import cell_len

    table = [[v.replace("\n", " ").replace("\t", " ") for v in row] for row in [columns, *rows]]
    widths = [max(cell_len(row[i]) for row in table) for i in range(len(columns))]
    text = [title] if title else []
    text += ["  ".join(v + " " * (w - cell_len(v)) for v, w in zip(row, widths, strict=True))
             .rstrip() for row in table]
    sys.stdout.write("\n".join(text) + "\n")


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
    _say("error:", "bold red", message)
    for text in detail.rstrip("\n").splitlines():
        _say("   ", None, text)
    if hint:
        _say("hint:", "yellow", hint)


def warn(message: str) -> None:
    _say("warning:", "yellow", message)


def _say(label: str, style: str | None, text: str) -> None:
    """One line on stderr. Not a terminal (git hooks, pre-commit, CI), it has no colours:
    plain text then, without importing rich, which cost a failing `moma hook pointers`
    0.03 s of start-up."""
    if not sys.stderr.isatty():
        from moma_cli.credentials import redact

        sys.stderr.write(f"{label} {redact(text)}\n")
    elif style is None:
        err().print(f"{label} {escape(text)}")
    else:
        err().print(f"[{style}]{label}[/] {escape(text)}")


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
