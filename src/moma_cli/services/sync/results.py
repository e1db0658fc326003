"""What a transfer reports: `TransferResult` (push, fetch), `PullResult`, and the hints and
file names its failures carry."""

from __future__ import annotations

from dataclasses import dataclass, field

from moma_cli.services import data_checkout

MISSING_HINT = "run 'moma push' on the machine that added it"
CORRUPT_HINT = "run 'moma push --verify' on a machine that has the good data"


@dataclass
class TransferResult:
    transferred: list[str] = field(default_factory=list)
    skipped: int = 0  # already where they were going
    failed: dict[str, str] = field(default_factory=dict)  # oid -> message naming the file
    invalid: list[str] = field(default_factory=list)  # pointers that did not parse
    repaired: list[str] = field(default_factory=list)  # push --verify: bad remote copies replaced
    cleaned: list[str] = field(default_factory=list)  # push: stale leftovers of killed pushes
    clean_error: str | None = None  # push: why that cleanup could not run (push still ok)
    warnings: list[str] = field(default_factory=list)  # pack indexes ignored, naming each
    remote: str = ""
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.failed or self.invalid)

    def merge(self, other: TransferResult) -> None:
        self.transferred += other.transferred
        self.skipped += other.skipped
        self.failed.update(other.failed)
        self.repaired += other.repaired
        self.remote = other.remote or self.remote
        self.hint = self.hint or other.hint


@dataclass
class PullResult(TransferResult):
    checkout: data_checkout.CheckoutResult | None = None

    @property
    def ok(self) -> bool:
        return super().ok and (self.checkout is None or self.checkout.ok)


def named_failures(failed: dict[str, str], names: dict[str, str]) -> dict[str, str]:
    """Each failure's message led by the workspace path of its oid, when known."""
    return {oid: f"{names[oid]}: {msg}" if oid in names else msg for oid, msg in failed.items()}
