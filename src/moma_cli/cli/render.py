"""All terminal output: tables, key-value blocks, JSON, errors, progress bars.

The only module that imports rich, and it does so lazily so that commands which print
little stay fast to start.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from moma_cli.services.progress import Progress


@cache
def out() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@cache
def err() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def line(text: str = "", style: str | None = None) -> None:
    out().print(text, style=style, markup=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    from rich.table import Table

    t = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    out().print(t)


def block(pairs: Iterable[tuple[str, Any]], body: str | None = None) -> None:
    """A 'Key: value' block like `git log` headers, with an indented body."""
    for key, value in pairs:
        out().print(f"{key}: {value}", markup=False)
    if body:
        for text in body.splitlines():
            out().print(f"    {text}", markup=False)


def error(message: str, hint: str | None = None) -> None:
    err().print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err().print(f"[yellow]hint:[/] {escape(hint)}")


def warn(message: str) -> None:
    err().print(f"[yellow]warning:[/] {escape(message)}")


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return str(rich_escape(text))


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
        if not err().is_terminal:
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
