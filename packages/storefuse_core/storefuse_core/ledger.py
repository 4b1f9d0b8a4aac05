"""Append-only receipt ledger in SQLite (WAL).

Every decision (session opened, line added or removed, receipt closed, review resolved) is one row
keyed by an idempotency key derived from the input (e.g. the shelf event id): a redelivered input
hits the UNIQUE key and changes nothing, and a restart folds the rows back into the open receipts.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    stamp_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_session ON entries(session_id);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"""


class Ledger:
    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def append(self, key: str, session_id: str, stamp_ns: int, kind: str, body: dict) -> bool:
        """False when the key is already there (a redelivered input): nothing is written."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO entries(key, session_id, stamp_ns, kind, body) VALUES (?,?,?,?,?)",
            (key, session_id, stamp_ns, kind, json.dumps(body, sort_keys=True)))
        return cur.rowcount == 1

    def has(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM entries WHERE key=?", (key,)).fetchone() is not None

    def entries(self):
        for key, session, stamp, kind, body in self.db.execute(
                "SELECT key, session_id, stamp_ns, kind, body FROM entries ORDER BY seq"):
            yield key, session, stamp, kind, json.loads(body)

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def close(self) -> None:
        self.db.close()
