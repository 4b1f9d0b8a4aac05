"""ReorderBuffer: stamp-ordered merge of live inputs, bounded wait."""
from __future__ import annotations

from storefuse_core.reorder import ReorderBuffer

MS = 1_000_000


def test_released_in_key_order_only_when_every_watermark_passed():
    buf = ReorderBuffer(["gate", "scale"], max_wait_ns=10_000 * MS)
    buf.push((300, 1, "c"), "c", now_ns=0)
    buf.push((100, 1, "a"), "a", now_ns=0)
    buf.push((200, 0, "b"), "b", now_ns=0)
    assert buf.pop_ready(now_ns=1) == []
    buf.advance("gate", 1000)
    assert buf.pop_ready(now_ns=1) == []                  # scale has promised nothing yet
    buf.advance("scale", 200)
    assert buf.pop_ready(now_ns=1) == ["a", "b"]
    assert len(buf) == 1
    buf.advance("scale", 299)
    assert buf.pop_ready(now_ns=1) == []
    buf.advance("scale", 300)
    assert buf.pop_ready(now_ns=1) == ["c"]
    assert len(buf) == 0 and buf.released_by_timeout == 0


def test_ties_are_broken_by_the_rest_of_the_key():
    buf = ReorderBuffer(["s"])
    buf.push((100, 1, "z"), "shelf", 0)
    buf.push((100, 0, "gate_exit_1", 4), "gate", 0)
    buf.advance("s", 100)
    assert buf.pop_ready(0) == ["gate", "shelf"]


def test_watermarks_never_go_back():
    buf = ReorderBuffer(["a"])
    buf.advance("a", 500)
    buf.advance("a", 100)
    assert buf.low_watermark() == 500


def test_silent_source_holds_items_for_at_most_max_wait():
    buf = ReorderBuffer(["gate", "scale"], max_wait_ns=3000 * MS)
    buf.advance("gate", 10**12)
    buf.push((100,), "x", now_ns=1000 * MS)
    buf.push((200,), "y", now_ns=2000 * MS)
    assert buf.pop_ready(now_ns=3999 * MS) == []
    assert buf.pop_ready(now_ns=4000 * MS) == ["x"]
    assert buf.released_by_timeout == 1
    assert buf.pop_ready(now_ns=5000 * MS) == ["y"]
    assert buf.released_by_timeout == 2


def test_a_source_that_reports_but_holds_keeps_items_until_its_change_settles():
    # a shelf mid-change keeps its watermark at the change's start and keeps saying so: the cameras'
    # frames after the start wait for the change (a replay sorts it before them), up to hold_ns
    buf = ReorderBuffer(["cam", "scale"], max_wait_ns=3000 * MS, hold_ns=8000 * MS)
    buf.advance("cam", 10**12, now_ns=0)
    buf.push((2000 * MS, 2, "cam"), "frame", now_ns=1000 * MS)
    for t in range(1000, 5000, 100):                     # the scale reports every 0.1 s, held at 1.5 s
        buf.advance("scale", 1500 * MS, now_ns=t * MS)
        assert buf.pop_ready(now_ns=t * MS) == []
    buf.push((1500 * MS, 1, "e1"), "change", now_ns=5000 * MS)     # settled after 3.5 s
    buf.advance("scale", 4900 * MS, now_ns=5000 * MS)
    assert buf.pop_ready(now_ns=5000 * MS) == ["change", "frame"]
    assert buf.released_by_timeout == 0 and buf.late_items == 0


def test_a_holding_source_releases_after_hold_ns_and_a_silent_one_after_max_wait():
    buf = ReorderBuffer(["cam", "scale"], max_wait_ns=3000 * MS, hold_ns=8000 * MS)
    buf.advance("cam", 10**12, now_ns=0)
    buf.push((2000 * MS, 2, "cam"), "frame", now_ns=0)
    for t in range(0, 8000, 100):
        buf.advance("scale", 1500 * MS, now_ns=t * MS)
        assert buf.pop_ready(now_ns=t * MS) == []
    assert buf.pop_ready(now_ns=8000 * MS) == ["frame"] and buf.released_by_timeout == 1
    buf.push((3000 * MS, 2, "cam"), "next", now_ns=8000 * MS)     # the scale falls silent at 7.9 s
    assert buf.pop_ready(now_ns=10_899 * MS) == []
    assert buf.pop_ready(now_ns=11_000 * MS) == ["next"]           # max_wait after its arrival


def test_item_older_than_what_was_released_is_counted_late():
    buf = ReorderBuffer(["a"], max_wait_ns=1)
    buf.push((500,), "new", 0)
    assert buf.pop_ready(10) == ["new"]
    buf.push((100,), "old", 10)
    assert buf.late_items == 1
    assert buf.flush() == ["old"]


def test_flush_drains_in_key_order():
    buf = ReorderBuffer(["a", "b"])
    for key in (5, 1, 4, 2, 3):
        buf.push((key,), key, 0)
    assert buf.flush() == [1, 2, 3, 4, 5]
    assert len(buf) == 0 and buf.flush() == []


def test_no_sources_releases_everything():
    buf = ReorderBuffer([])
    buf.push((10**15,), "x", 0)
    assert buf.pop_ready(0) == ["x"]
