"""The stat cache: (inode, size, mtime_ns) -> oid, so unchanged files are never re-hashed.

One SQLite table keyed by the file's absolute path. Lookups for a whole directory are one
range query into a dict, so `status` on 100k files does no per-file SQL. Beside it, `clean`
remembers the stamp of each tracked directory last found up to date, so an unchanged
directory is answered from its walk alone, and `parts` where each part of that walk is in
its listing, so a changed one is answered from the parts that changed.

It is only a cache: a corrupt file (a torn copy, a disk fault, any bytes at all) is deleted
and rebuilt empty, which costs one re-hash of each file and is never an error. Losing the
`listing` table only makes checkout delete fewer stale files, never more.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

if TYPE_CHECKING:
    import sqlite3

T = TypeVar("T")
# What SQLite says about a file that is not, or no longer, a database. Not "locked", not
# "readonly", not I/O errors: those are about the machine, and the file may be fine.
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
# Paths per IN (...) query: below SQLite's oldest limit on bound variables (999).
_IN_MAX = 900


class StatKey(NamedTuple):
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> StatKey:
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


class StateDB:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        # Imported when first used: sqlite3 (and the datetime it loads) is 2 ms of every
        # hook command that never opens the stat cache (`hook large-files`, `hook pointers`).
        import sqlite3

        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread=False: hashing workers report back to the main thread only,
            # but the connection is created lazily from whichever thread asks first.
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            try:
                _setup(conn)
            except sqlite3.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """`op` on the database; once more on a fresh one if the file is corrupt."""
        import sqlite3

        try:
            return op(self._db())
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", None) not in _CORRUPT:
                raise
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        return op(self._db())

    def get(self, path: str, key: StatKey, algo: str) -> str | None:
        row = self._run(lambda db: db.execute(
            "SELECT ino, size, mtime_ns, algo, oid FROM stat WHERE path = ?", (path,)
        ).fetchone())
        if row and StatKey(*row[:3]) == key and row[3] == algo:
            return str(row[4])
        return None

    def get_tree(self, prefix: str, algo: str) -> dict[str, tuple[int, int, int, str]]:
        """All entries under directory `prefix`: path -> (ino, size, mtime_ns, oid).

        Plain tuples, not StatKeys: building 100k NamedTuples was a tenth of `status`;
        `row[:3] == key` compares equal to a StatKey all the same."""
        low, high = prefix.rstrip("/") + "/", prefix.rstrip("/") + "0"  # '0' sorts after '/'
        return self._range("path >= ? AND path < ?", low, high, algo)

    def get_between(self, first: str, last: str, algo: str
                    ) -> dict[str, tuple[int, int, int, str]]:
        """`get_tree` for the paths from `first` to `last` inclusive: one window of a
        sorted walk, so a million files are looked up a window at a time."""
        return self._range("path >= ? AND path <= ?", first, last, algo)

    def get_many(self, paths: Sequence[str], algo: str
                 ) -> dict[str, tuple[int, int, int, str]]:
        """`get_tree` for exactly these paths, in no order a range could cover (the cache
        objects of a checkout window): a query per _IN_MAX paths, not one per path."""
        found: dict[str, tuple[int, int, int, str]] = {}
        for i in range(0, len(paths), _IN_MAX):
            found.update(self._exact(paths[i:i + _IN_MAX], algo))
        return found

    def _exact(self, paths: Sequence[str], algo: str) -> dict[str, tuple[int, int, int, str]]:
        marks = ",".join("?" * len(paths))
        return self._run(lambda db: {r[0]: r[1:] for r in db.execute(
            f"SELECT path, ino, size, mtime_ns, oid FROM stat WHERE path IN ({marks})"
            " AND algo = ?", (*paths, algo))})

    def _range(self, where: str, low: str, high: str, algo: str
               ) -> dict[str, tuple[int, int, int, str]]:
        return self._run(lambda db: {r[0]: r[1:] for r in db.execute(
            f"SELECT path, ino, size, mtime_ns, oid FROM stat WHERE {where} AND algo = ?",
            (low, high, algo),
        )})

    def put_many(self, rows: Iterable[tuple[str, StatKey, str, str]]) -> None:
        """Record (path, stat key, algo, oid) rows in one transaction."""
        values = [(p, k.ino, k.size, k.mtime_ns, a, o) for p, k, a, o in rows]
        self._write("INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?, ?)", values)

    def get_listing(self, path: str) -> str | None:
        """The manifest oid a workspace directory was last added from or checked out to."""
        value = self._value("listing", "oid", path)
        return str(value) if value is not None else None

    def put_listing(self, path: str, oid: str) -> None:
        self._write("INSERT OR REPLACE INTO listing VALUES (?, ?)", [(path, oid)])

    def is_clean(self, path: str, stamp: str) -> bool:
        """Whether `path` was last found up to date in exactly the state `stamp` describes."""
        return self._value("clean", "stamp", path) == stamp

    def put_clean(self, path: str, stamp: str) -> None:
        self._write("INSERT OR REPLACE INTO clean VALUES (?, ?)", [(path, stamp)])

    def get_parts(self, path: str) -> bytes | None:
        """The parts record of `path` (`services/walkstamp.py` reads and writes it)."""
        value = self._value("parts", "record", path)
        return bytes(value) if value is not None else None

    def put_parts(self, path: str, record: bytes) -> None:
        self._write("INSERT OR REPLACE INTO parts VALUES (?, ?)", [(path, record)])

    def _value(self, table: str, column: str, path: str) -> Any:
        """`column` of the row of `path` in one of the per-path tables, or None."""
        row = self._run(lambda db: db.execute(
            f"SELECT {column} FROM {table} WHERE path = ?", (path,)).fetchone())
        return row[0] if row else None

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        def op(db: sqlite3.Connection) -> None:
            with db:  # one transaction
                db.executemany(sql, rows)

        self._run(op)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS stat (path TEXT PRIMARY KEY, ino INTEGER,"
        " size INTEGER, mtime_ns INTEGER, algo TEXT, oid TEXT) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS listing (path TEXT PRIMARY KEY, oid TEXT) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS clean (path TEXT PRIMARY KEY, stamp TEXT) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS parts (path TEXT PRIMARY KEY, record BLOB) WITHOUT ROWID"
    )
