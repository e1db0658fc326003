"""Progress reporting passed down from the CLI; services never draw anything themselves."""

from __future__ import annotations


class Progress:
    """Silent progress. The CLI passes a rich-backed subclass."""

    def start(self, label: str, total: int | None = None) -> None:
        """Begin a phase of `total` units (None when unknown)."""

    def advance(self, n: int = 1) -> None:
        """Report `n` more units done."""

    def finish(self) -> None:
        """End the current phase."""


SILENT = Progress()
