"""The stat cache's bulk lookups answer exactly the rows asked for."""

from __future__ import annotations

from pathlib import Path

from moma_cli.storage import state
from moma_cli.storage.state import StateDB, StatKey


def test_get_many_answers_exactly_the_paths_asked_across_queries(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    count = state._IN_MAX * 2 + 5  # three IN queries
    db.put_many([(f"/c/{i:05d}", StatKey(i, 4, 7), "blake3", f"oid{i}") for i in range(count)])
    db.put_many([("/c/other-algo", StatKey(1, 1, 1), "md5", "x")])
    asked = [f"/c/{i:05d}" for i in range(0, count, 2)] + ["/c/absent", "/c/other-algo"]
    found = db.get_many(asked, "blake3")
    assert found == {f"/c/{i:05d}": (i, 4, 7, f"oid{i}") for i in range(0, count, 2)}
    assert db.get_many([], "blake3") == {}
    db.close()
