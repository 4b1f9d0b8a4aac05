"""The receipt ledger: append-only SQLite, idempotent keys, survives a reopen."""
from __future__ import annotations

import sqlite3

import pytest

from storefuse_core.ledger import Ledger


def test_append_is_idempotent_by_key():
    led = Ledger()
    assert led.append("event/e1", "s1", 100, "line", {"qty": 1, "sku": "A"}) is True
    assert led.append("event/e1", "s1", 200, "line", {"qty": 5, "sku": "B"}) is False
    assert led.count() == 1
    assert led.has("event/e1") and not led.has("event/e2")
    assert list(led.entries()) == [("event/e1", "s1", 100, "line", {"qty": 1, "sku": "A"})]


def test_entries_come_back_in_append_order():
    led = Ledger()
    for i, key in enumerate(["c", "a", "b"]):
        led.append(key, "s", 1000 - i, "k", {"i": i})
    assert [row[0] for row in led.entries()] == ["c", "a", "b"]


@pytest.mark.parametrize("sql", ["UPDATE entries SET kind='hacked'", "DELETE FROM entries",
                                 "UPDATE entries SET body='{}' WHERE key='k1'"])
def test_rows_can_never_be_changed_or_removed(tmp_path, sql):
    led = Ledger(tmp_path / "ledger.db")
    led.append("k1", "s1", 1, "open", {"a": 1})
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        led.db.execute(sql)
    assert list(led.entries()) == [("k1", "s1", 1, "open", {"a": 1})]


def test_append_only_holds_for_other_connections(tmp_path):
    path = tmp_path / "ledger.db"
    led = Ledger(path)
    led.append("k1", "s1", 1, "open", {})
    other = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError):
        other.execute("DELETE FROM entries")
    other.close()
    assert led.count() == 1


def test_file_ledger_reopens_with_everything(tmp_path):
    path = tmp_path / "sub" / "ledger.db"
    led = Ledger(path)
    led.append("open/s1", "s1", 10, "open", {"token_hash": "h", "staff": False})
    led.append("event/e1", "s1", 20, "line", {"sku": "A", "qty": 2, "unicode": "caf\u00e9"})
    led.close()
    again = Ledger(path)
    assert again.count() == 2
    body = {"sku": "A", "qty": 2, "unicode": "caf\u00e9"}
    assert list(again.entries())[1] == ("event/e1", "s1", 20, "line", body)
    assert again.append("event/e1", "s1", 20, "line", {}) is False
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()
