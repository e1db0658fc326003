"""Progress reporting passed down from the CLI; services never draw anything themselves."""

from __future__ import annotations

from collections.abc import Callable


class Progress:
    """Silent progress. The CLI passes a rich-backed subclass."""

    def start(self, label: str, total: int | None = None) -> None:
        """Begin a phase of `total` units (None when unknown)."""

    def advance(self, n: int = 1) -> None:
        """Report `n` more units done."""

    def finish(self) -> None:
        """End the current phase."""


SILENT = Progress()


class Notices:
    """One-line notices from inside a service about something it did on its own (deepening
    a shallow clone). The CLI sets `show` to print them on stderr; elsewhere they are
    dropped, so services still never print."""

    def __init__(self) -> None:
        self.show: Callable[[str], None] | None = None

    def __call__(self, text: str) -> None:
        if self.show is not None:
            self.show(text)


NOTICES = Notices()
