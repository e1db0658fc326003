"""What a transfer reports: `TransferResult` (push, fetch), `PullResult`, and the hints and
file names its failures carry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from moma_cli.core.hashing import OID_BYTES
from moma_cli.services import data_checkout

MISSING_HINT = "run 'moma push' on the machine that added it"
CORRUPT_HINT = "run 'moma push --verify' on a machine that has the good data"


class Oids:
    """A list of oids held as digests in one bytearray: pushing a million files reports a
    million oids, ~120 MB as Python strings and 32 MB here."""

    def __init__(self, oids: Iterable[str] = ()) -> None:
        self._digests = bytearray()
        self += oids

    def __iadd__(self, oids: Iterable[str]) -> Oids:
        if isinstance(oids, Oids):
            self._digests += oids._digests
            return self
        for oid in oids:
            digest = bytes.fromhex(oid)
            if len(digest) != OID_BYTES:
                raise ValueError(f"not an oid: {oid!r}")
            self._digests += digest
        return self

    def __len__(self) -> int:
        return len(self._digests) // OID_BYTES

    def __iter__(self) -> Iterator[str]:
        digests = self._digests
        for at in range(0, len(digests), OID_BYTES):
            yield digests[at:at + OID_BYTES].hex()

    def __repr__(self) -> str:
        return f"Oids({list(self)!r})"


@dataclass
class TransferResult:
    transferred: Oids = field(default_factory=Oids)
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
