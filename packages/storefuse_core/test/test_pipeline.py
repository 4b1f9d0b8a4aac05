"""FusionPipeline: the one stamp-ordered path from events to receipts (live node and replay)."""
from __future__ import annotations

import itertools

from storefuse_core.events import ENTRY, EXIT, FINAL, OPEN, PICK, GateEvent, ShelfEvent
from storefuse_core.pipeline import FusionPipeline, finals_json, sources_for
from storefuse_core.product import candidates

S = 1_000_000_000


def entry(t_s, sid, seq=1):
    return GateEvent(int(t_s * S), "gate_entry_1", ENTRY, sid, f"hash-{sid}", seq=seq)


def leave(t_s, sid, seq=1):
    return GateEvent(int(t_s * S), "gate_exit_1", EXIT, "", f"hash-{sid}", seq=seq)


def pick(store, eid, start_s, settle_s, plate, delta):
    shelf_id = plate[:4]
    return ShelfEvent(eid, int(settle_s * S), int(start_s * S), "G1", shelf_id, [plate], [delta], delta, 1.0,
                      PICK, candidates(store, shelf_id, {plate: delta}, delta, 1.0))


def advance_all(pipe, t_s):
    for source in sources_for(pipe.store):
        pipe.advance(source, int(t_s * S))


def test_sources_are_every_gate_and_board(tiny):
    assert sources_for(tiny) == ["gate_entry_1", "gate_exit_1", "scale_G1"]


def test_nothing_is_released_before_every_watermark_passes(tiny):
    pipe = FusionPipeline(tiny)
    pipe.push_gate(entry(1, "s1"))
    assert pipe.step(now_ns=0) == []
    pipe.advance("gate_entry_1", 2 * S)
    pipe.advance("gate_exit_1", 2 * S)
    assert pipe.step(now_ns=0) == []
    pipe.advance("scale_G1", 2 * S)
    out = pipe.step(now_ns=0)
    assert [(r.session_id, r.status) for r in out] == [("s1", OPEN)]


def test_release_in_stamp_order_whatever_the_arrival_order(tiny):
    # the item is taken just before the exit scan and settles after it: ordered by its start
    inputs = [("gate", entry(1, "s1")), ("shelf", pick(tiny, "e1", 9.0, 10.5, "G1S1P1", -100.0)),
              ("gate", leave(10, "s1")), ("shelf", pick(tiny, "e0", 4.0, 4.6, "G1S1P2", -200.0))]
    results = set()
    for order in itertools.permutations(inputs):
        pipe = FusionPipeline(tiny)
        for kind, ev in order:
            if kind == "gate":
                pipe.push_gate(ev)
            else:
                pipe.push_shelf(ev)
        advance_all(pipe, 20)
        out = pipe.step(now_ns=0)
        final = out[-1]
        assert final.status == FINAL and {ln.sku: ln.qty for ln in final.lines} == {"A": 1, "B": 1}
        assert final.stamp_ns == leave(10, "s1").stamp_ns      # still the receipt of the exit
        results.add(tuple(row[:4] for row in pipe.book.ledger.entries()))
    assert len(results) == 1
    kinds = [row[3] for row in next(iter(results))]
    keys = [row[0] for row in next(iter(results))]
    assert kinds == ["open", "line", "line", "close"]
    assert keys == ["open/s1", "event/e0", "event/e1", "close/s1"]


def test_watermark_with_more_items_than_received_is_held(tiny):
    pipe = FusionPipeline(tiny)
    pipe.advance("gate_exit_1", 100 * S)
    pipe.advance("scale_G1", 100 * S)
    pipe.push_shelf(pick(tiny, "e1", 5, 5.5, "G1S1P1", -100.0))
    # the entry gate says: 1 event published before 50 s; it has not arrived yet
    pipe.advance("gate_entry_1", 50 * S, items_published=1)
    assert pipe.buffer.watermarks["gate_entry_1"] == -1
    assert pipe.step(now_ns=0) == []
    pipe.push_gate(entry(1, "s1"))                           # the overtaken event arrives
    assert pipe.buffer.watermarks["gate_entry_1"] == 50 * S
    out = pipe.step(now_ns=0)
    assert [r.session_id for r in out] == ["s1", "s1"]
    assert {ln.sku: ln.qty for ln in out[-1].lines} == {"A": 1}   # the pick was not applied before entry


def test_watermark_with_everything_received_applies_at_once(tiny):
    pipe = FusionPipeline(tiny)
    pipe.push_gate(entry(1, "s1"))
    pipe.advance("gate_entry_1", 2 * S, items_published=1)
    assert pipe.buffer.watermarks["gate_entry_1"] == 2 * S
    assert pipe.pending == {}


def test_silent_source_releases_after_max_wait(tiny):
    pipe = FusionPipeline(tiny, max_wait_s=3.0)
    pipe.push_gate(entry(1, "s1"), now_ns=10 * S)
    assert pipe.step(now_ns=12 * S) == []
    out = pipe.step(now_ns=13 * S)
    assert [r.session_id for r in out] == ["s1"]
    assert pipe.buffer.released_by_timeout == 1


def test_finish_drains_and_closes_open_sessions(tiny):
    pipe = FusionPipeline(tiny)
    pipe.push_gate(entry(1, "s1"))
    pipe.push_shelf(pick(tiny, "e1", 5, 5.5, "G1S1P1", -100.0))
    out = pipe.finish(30 * S)
    final = out[-1]
    assert final.status == FINAL and final.status_reason == "end_of_bag" and final.stamp_ns == 30 * S
    assert len(pipe.buffer) == 0


def test_finals_json_sorted_by_stamp_then_session_and_skips_open(tiny):
    pipe = FusionPipeline(tiny)
    for i, sid in enumerate(["s3", "s1", "s2"]):
        pipe.push_gate(entry(1 + i, sid, seq=i + 1))
    pipe.push_gate(leave(20, "s2", seq=1))
    advance_all(pipe, 25)
    receipts = pipe.step(0) + pipe.finish(40 * S)
    doc = finals_json(receipts)
    assert [(d["session_id"], d["status_reason"]) for d in doc] == \
        [("s2", "exit"), ("s1", "end_of_bag"), ("s3", "end_of_bag")]
    assert all(d["status"] != "OPEN" for d in doc)


def test_the_payer_is_who_stays_at_the_plate_after_the_change_started_not_who_passed_it(tiny):
    from dataclasses import dataclass

    import numpy as np

    from storefuse_core.receipt import plate_front

    @dataclass
    class Seen:
        x: float
        y: float
        appearance: np.ndarray
        cov: tuple = (0.01, 0, 0, 0, 0.01, 0, 0, 0, 0.01)
        score: float = 0.9

    def colour(i):
        a = np.zeros(56, np.float32)
        a[i], a[i + 1] = 0.8, 0.2
        return a

    def at(t, path):          # piecewise-linear walk: [(t, x, y), ...]
        for (t0, x0, y0), (t1, x1, y1) in zip(path, path[1:]):
            if t0 <= t <= t1:
                f = (t - t0) / (t1 - t0)
                return x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
        return None

    gate = tiny.gates["gate_entry_1"]
    fx, fy = plate_front(tiny, ["G1S1P1"])
    # s1 waits half a metre beside the plate's front and steps up to it as the change starts (5 s);
    # s2 walks along the front, passing it just then, and walks on
    s1 = [(1.0, gate.x, gate.y), (4.0, fx + 0.5, fy), (5.0, fx + 0.5, fy), (5.3, fx, fy), (9.0, fx, fy)]
    s2 = [(1.5, gate.x, gate.y), (3.4, fx - 1.5, fy - 0.15), (6.0, fx + 1.1, fy - 0.15), (9.0, fx + 1.1, fy + 1.0)]
    pipe = FusionPipeline(tiny, sources=sources_for(tiny) + ["cam0"])
    pipe.push_gate(entry(1.0, "s1", seq=1))
    pipe.push_gate(entry(1.5, "s2", seq=2))
    pipe.push_shelf(pick(tiny, "e1", 5.0, 5.6, "G1S1P1", -100.0))
    live = []
    for k in range(10, 90):
        t = k / 10
        seen = [Seen(*p, colour(c)) for p, c in ((at(t, s1), 0), (at(t, s2), 20)) if p is not None]
        pipe.push_detections("cam0", int(t * S), seen)
        advance_all(pipe, t)
        live += [(t, r.session_id, [ln.sku for ln in r.lines]) for r in pipe.step(now_ns=0)]
    assert {t.session_id for t in pipe.tracker.confirmed()} == {"s1", "s2"}
    assert {ln.sku: ln.qty for ln in pipe.book.receipt("s1").lines} == {"A": 1}
    assert pipe.book.receipt("s2").lines == []
    # the live line came as soon as fusion reached the change's start (on what was seen until then);
    # the answer after the window is an append-only amendment, published at once
    first = next(x for x in live if x[2])
    assert first[0] <= 5.2
    kinds = [row[3] for row in pipe.book.ledger.entries()]
    assert kinds.count("line") == 1 and kinds.count("amend") <= 1
    assert any(x[1] == "s1" and x[2] == ["A"] for x in live if x[0] >= 6.5)
