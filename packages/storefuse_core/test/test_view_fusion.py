"""What the cameras saw in a hand, fused into the scale's candidates (product_views.py) and into the
receipt when a change is rechecked (ReceiptBook.recheck).

Tiny store (conftest): gondola G1, shelf G1S2 holds C (55 g, P1) and D (45 g, P2).
"""
from __future__ import annotations

import math
import re

import pytest

from storefuse_core.events import ENTRY, EXIT, FINAL, PICK, PUT, Candidate, GateEvent, ProductView, ShelfEvent
from storefuse_core.product_views import BadView, ViewBook, fuse
from storefuse_core.receipt import ReceiptBook

S = 1_000_000_000


def view(store, t_s, plate, probs, gondola="G1", dx=0.0):
    p = store.plates[plate]
    return ProductView(int(t_s * S), "cam1", gondola, p.shelf_id, p.x + dx, p.y, p.z, 20.0, tuple(probs))


def change(eid, t_s, plate, delta, cands):
    start = int(t_s * S)
    return ShelfEvent(eid, start + S // 2, start, "G1", plate[:4], [plate], [delta], delta, 1.0,
                      PICK if delta < 0 else PUT, cands)


def cand(sku, p, grams=50.0):
    return Candidate(sku, sku, 1, grams, p)


def test_fuse_shares_out_only_the_candidates_mass(tiny):
    v = view(tiny, 5.2, "G1S2P1", [("D", 0.9), ("C", 0.1)])
    fused = fuse([cand("C", 0.6), cand("D", 0.3)], [v])
    assert [c.sku for c in fused] == ["D", "C"]
    assert abs(sum(c.probability for c in fused) - 0.9) < 1e-9     # 'unexplained' 0.1 stays
    assert fuse([cand("C", 0.6), cand("D", 0.3)], []) == [cand("C", 0.6), cand("D", 0.3)]


def test_a_product_the_camera_did_not_list_keeps_a_floor_not_zero(tiny):
    v = view(tiny, 5.2, "G1S2P1", [("D", 0.99)])
    fused = {c.sku: c.probability for c in fuse([cand("C", 0.9), cand("D", 0.1)], [v])}
    assert 0 < fused["C"] < fused["D"]


def test_views_match_a_change_by_gondola_place_and_time(tiny):
    book = ViewBook(tiny)
    ev = change("e1", 5.0, "G1S2P1", -55.0, [cand("C", 0.9)])
    book.add(view(tiny, 5.3, "G1S2P1", [("C", 0.8)]))                  # the hand at these plates
    book.add(view(tiny, 5.3, "G1S2P1", [("D", 0.8)], dx=2.0))          # someone two metres along
    book.add(view(tiny, 9.0, "G1S2P1", [("D", 0.8)]))                  # long after the window
    above = view(tiny, 5.3, "G1S2P1", [("D", 0.8)])
    book.add(ProductView(above.stamp_ns, "cam2", "G1", "G1S1", above.x, above.y, above.z + 0.4, 20.0,
                         above.probabilities))                         # a hand at the shelf above
    book.add(ProductView(int(4.6 * S), "cam3", "G1", "G1S2", above.x, above.y, above.z, 20.0,
                         (("D", 0.8),)))                               # before the item left the plate
    got = book.for_event(ev)
    assert len(got) == 1 and got[0].probabilities == (("C", 0.8),)
    put = change("e3", 5.0, "G1S2P1", 55.0, [cand("C", 0.9)])         # a put-back is seen before it lands
    assert [v.camera_id for v in book.for_event(put)] == ["cam1", "cam3"]
    assert book.for_event(change("e2", 20.0, "G1S2P1", -55.0, [])) == []


def _visit_with_lookalike_put_back(tiny, views: bool, ledger=None):
    """s1 takes C and D; a 50 g item goes back onto C's plate (the scale leans to C)."""
    book = ReceiptBook(tiny, ledger)
    if views:
        book.views = ViewBook(tiny)
    book.apply_gate(GateEvent(1 * S, "gate_entry_1", ENTRY, "s1", "hash-s1"))
    for ev in (change("e1", 3.0, "G1S2P1", -55.0, [cand("C", 0.99, 55.0)]),
               change("e2", 6.0, "G1S2P2", -45.0, [cand("D", 0.99, 45.0)])):
        book.apply_shelf(ev)
        book.recheck(ev, ev.start_ns + 2 * S)
    put = change("e3", 10.0, "G1S2P1", 50.0, [cand("C", 0.6, 55.0), cand("D", 0.35, 45.0)])
    if views:
        book.views.add(view(tiny, 9.8, "G1S2P1", [("D", 0.99), ("C", 0.003)]))   # seen in the hand before it landed
    r = book.apply_shelf(put)
    first = {ln.sku: ln.qty for ln in r.lines}
    book.recheck(put, put.start_ns + 2 * S)
    final = book.apply_gate(GateEvent(20 * S, "gate_exit_1", EXIT, "", "hash-s1"))
    return book, first, final


def test_a_put_back_cancels_the_item_the_camera_saw(tiny):
    book, first, final = _visit_with_lookalike_put_back(tiny, views=True)
    assert first == {"D": 1}                            # billed at once on weight alone: C went back
    assert {ln.sku: ln.qty for ln in final.lines} == {"C": 1}
    assert final.status == FINAL
    rows = {key: body for key, _, _, kind, body in book.ledger.entries() if kind == "amend"}
    assert rows["window/e3"]["sku"] == "D" and rows["window/e3"]["qty"] == -1
    assert rows["window/e3"]["views"][0][0] == "cam1"


def test_without_views_the_weight_decides_and_the_receipt_is_in_doubt(tiny):
    _, first, final = _visit_with_lookalike_put_back(tiny, views=False)
    assert {ln.sku: ln.qty for ln in final.lines} == first == {"D": 1}
    assert final.confidence < 0.9


def test_the_views_amend_survives_a_restart(tiny, tmp_path):
    from storefuse_core.ledger import Ledger
    path = tmp_path / "l.sqlite"
    _, _, final = _visit_with_lookalike_put_back(tiny, views=True, ledger=Ledger(path))
    again = ReceiptBook(tiny, Ledger(path))
    assert again.receipt("s1").lines == final.lines


def test_a_view_with_half_a_body_point_or_an_infinite_one_is_refused(tiny):
    book = ViewBook(tiny)
    v = view(tiny, 5.0, "G1S2P1", [("C", 0.9)])
    for bx, by in ((1.0, math.nan), (math.inf, 1.0)):
        with pytest.raises(BadView, match="linked body's floor point"):
            book.add(ProductView(*[getattr(v, f) for f in ("stamp_ns", "camera_id", "gondola_id", "shelf_id", "x",
                                                           "y", "z", "pixels", "probabilities")], bx, by))
    book.add(v)
    assert (book.received, book.rejected, len(book.views)) == (3, 2, 1)


@pytest.mark.parametrize("probs, gondola, why", [
    ([("C", math.nan)], "G1", "not in [0, 1]"),
    ([("C", 1.5)], "G1", "not in [0, 1]"),
    ([("C", 0.7), ("D", 0.7)], "G1", "add up to"),
    ([("Z", 0.9)], "G1", "no product 'Z'"),
    ([], "G1", "no product probabilities"),
    ([("C", 0.9)], "G9", "no gondola 'G9'"),
])
def test_a_view_that_cannot_be_evidence_is_refused_with_its_reason_and_counted(tiny, probs, gondola, why):
    book = ViewBook(tiny)
    with pytest.raises(BadView, match=re.escape(why)):
        book.add(view(tiny, 5.0, "G1S2P1", probs, gondola=gondola))
    book.add(view(tiny, 5.0, "G1S2P1", [("C", 0.9)]))
    assert (book.received, book.rejected, len(book.views)) == (2, 1, 1)


def _hand_over(tiny, probs, at=(2.5, 1.0), t_view=7.5, s2_takes=None):
    """s1 takes C, then stands beside s2 (who may have taken something); a camera sees an item
    between them."""
    from storefuse_core.handover import Encounter
    book = ReceiptBook(tiny)
    book.views = ViewBook(tiny)
    book.apply_gate(GateEvent(1 * S, "gate_entry_1", ENTRY, "s1", "hash-s1"))
    book.apply_shelf(change("e1", 3.0, "G1S2P1", -55.0, [cand("C", 0.99, 55.0)]))
    book.apply_gate(GateEvent(4 * S, "gate_entry_1", ENTRY, "s2", "hash-s2"))
    if s2_takes:        # s1 is seen far from the plate: s2 pays
        book.locate = lambda x, y, t0, t1: {"s1": _Where(3.0), "s2": _Where(0.0)}
        book.apply_shelf(change("e2", 5.0, "G1S2P2", -45.0, [cand(s2_takes, 0.99, 45.0)]))
    enc = Encounter("s1", "s2", 7 * S, 8 * S, 2.4, 1.0)
    assert book.apply_encounter(enc) is not None
    book.views.add(ProductView(int(t_view * S), "cam1", "", "", at[0], at[1], 1.1, 20.0, tuple(probs)))
    out = book.resolve_hand_over(enc, 10 * S)
    return book, out


def test_an_item_seen_changing_hands_moves_to_the_taker_and_clears_the_doubt(tiny):
    book, out = _hand_over(tiny, [("C", 0.97), ("D", 0.02)])
    assert {r.session_id for r in out} == {"s1", "s2"}
    s1, s2 = book.receipt("s1"), book.receipt("s2")
    assert s1.lines == [] and [(ln.sku, ln.qty) for ln in s2.lines] == [("C", 1)]
    assert s2.confidence >= 0.9 and book.sessions["s1"].flags == [] and book.sessions["s2"].flags == []


class _Where:
    def __init__(self, mean):
        self.mean, self.last_ns, self.last_d = mean, None, None


def test_an_unclear_or_distant_view_leaves_the_hand_over_to_a_human(tiny):
    book, out = _hand_over(tiny, [("C", 0.5), ("D", 0.5)], s2_takes="D")     # s1's C or s2's D?
    assert out == [] and book.receipt("s1").confidence <= 0.5
    assert [(ln.sku, ln.qty) for ln in book.receipt("s2").lines] == [("D", 1)]
    book, out = _hand_over(tiny, [("C", 0.97)], at=(8.0, 8.0))          # somewhere else in the store
    assert out == [] and [(ln.sku, ln.qty) for ln in book.receipt("s1").lines] == [("C", 1)]
    book, out = _hand_over(tiny, [("D", 0.97), ("C", 0.01)])            # an item neither holds
    assert out == [] and book.receipt("s2").confidence <= 0.5
    book, out = _hand_over(tiny, [("C", 0.01)])                          # 99 % something unlisted
    assert out == [] and book.receipt("s2").confidence <= 0.5


def test_each_meeting_of_a_pair_is_settled_on_its_own(tiny, tmp_path):
    """s1 hands C to s2; later s1 takes D and they meet again, D seen passing: both move, each
    meeting's doubt lifted by its own hand-over; the book rebuilt from its ledger is the same."""
    from storefuse_core.handover import Encounter
    from storefuse_core.ledger import Ledger
    book, out = _hand_over(tiny, [("C", 0.97), ("D", 0.02)])
    assert out
    book.locate = lambda x, y, t0, t1: {"s1": _Where(0.0), "s2": _Where(3.0)}      # s1 at the plate
    book.apply_shelf(change("e2", 12.0, "G1S2P2", -45.0, [cand("D", 0.99, 45.0)]))
    assert [(ln.sku, ln.qty) for ln in book.receipt("s1").lines] == [("D", 1)]
    again = Encounter("s1", "s2", 15 * S, 16 * S, 2.4, 1.0)
    assert book.apply_encounter(again) is not None and book.receipt("s1").confidence <= 0.5
    book.views.add(ProductView(int(15.5 * S), "cam1", "", "", 2.5, 1.0, 1.1, 20.0, (("D", 0.97), ("C", 0.02))))
    assert book.resolve_hand_over(again, 18 * S)
    s1, s2 = book.receipt("s1"), book.receipt("s2")
    assert s1.lines == [] and sorted((ln.sku, ln.qty) for ln in s2.lines) == [("C", 1), ("D", 1)]
    assert book.sessions["s1"].flags == book.sessions["s2"].flags == []
    path = tmp_path / "l.sqlite"
    ledger = Ledger(path)
    for row in book.ledger.entries():
        ledger.append(*row)
    rebuilt = ReceiptBook(tiny, Ledger(path))
    assert [rebuilt.receipt(k) for k in ("s1", "s2")] == [s1, s2]
    assert rebuilt.sessions["s2"].flags == [] and rebuilt.sessions["s1"].unbilled == book.sessions["s1"].unbilled


def test_two_items_seen_in_one_meeting_stay_with_a_human(tiny):
    book, out = _hand_over(tiny, [("C", 0.97)], s2_takes="D")
    assert out
    from storefuse_core.handover import Encounter
    enc = Encounter("s1", "s2", 20 * S, 21 * S, 2.4, 1.0)
    book.apply_shelf(change("e9", 17.0, "G1S2P1", -55.0, [cand("C", 0.99, 55.0)]))
    assert book.apply_encounter(enc) is not None
    for t, sku in ((20.2, "C"), (20.8, "D")):       # two different items seen passing
        book.views.add(ProductView(int(t * S), "cam1", "", "", 2.5, 1.0, 1.1, 20.0, ((sku, 0.97),)))
    assert book.resolve_hand_over(enc, 23 * S) == []
    assert book.receipt("s1").confidence <= 0.5


def test_a_stray_is_a_candidate_for_the_next_pick_from_its_plate_and_only_once(tiny):
    """D put back onto C's plate: the next 45-55 g pick there may be that D (the scale cannot know);
    once taken, or after staff faced the shelf, the plate holds only C again."""
    book = ReceiptBook(tiny)
    book.apply_gate(GateEvent(1 * S, "gate_entry_1", ENTRY, "s1", "hash-s1"))
    book.apply_shelf(change("e1", 3.0, "G1S2P2", -45.0, [cand("D", 0.99, 45.0)]))
    book.apply_shelf(change("e2", 6.0, "G1S2P1", 45.0, [cand("D", 0.9, 45.0)]))       # D onto C's plate
    assert book.strays() == {"G1S2P1": {"D"}}
    pick = change("e3", 9.0, "G1S2P1", -45.0, [cand("C", 0.9, 55.0)])
    assert {c.sku for c in book._with_strays(pick).candidates} == {"C", "D"}
    book.apply_shelf(pick)
    assert book.strays() == {}                        # taken (billed as D)
    assert book.strays(before="e3") == {"G1S2P1": {"D"}}     # as the recheck of e3 sees it
    book.apply_shelf(change("e4", 12.0, "G1S2P2", 45.0, [cand("D", 0.9, 45.0)]))       # D home: no stray
    book.apply_shelf(change("e5", 14.0, "G1S2P2", -45.0, [cand("D", 0.99, 45.0)]))
    book.apply_shelf(change("e6", 16.0, "G1S2P1", 45.0, [cand("D", 0.9, 45.0)]))       # astray again
    book.apply_gate(GateEvent(18 * S, "gate_entry_1", ENTRY, "staff1", "hash-staff", staff=True))
    book.apply_gate(GateEvent(19 * S, "gate_exit_1", EXIT, "", "hash-s1"))
    book.apply_shelf(change("e7", 20.0, "G1S2P1", 0.4, [cand("C", 0.5, 55.0)]))       # staff facing the shelf
    assert book.strays() == {}


def _seen_pick(tiny, probs_by_camera):
    """s1 takes a 50 g unit from C's plate (noisy scale: C at 55 g and D at 45 g both fit); the scale
    lists only C, the plate's own product; each camera's view of the hand is given."""
    book = ReceiptBook(tiny)
    book.views = ViewBook(tiny)
    book.apply_gate(GateEvent(1 * S, "gate_entry_1", ENTRY, "s1", "hash-s1"))
    ev = ShelfEvent("e1", 5 * S + S // 2, 5 * S, "G1", "G1S2", ["G1S2P1"], [-50.0], -50.0, 6.0, PICK,
                    [cand("C", 0.99, 55.0)])
    p = tiny.plates["G1S2P1"]
    for cam, probs in probs_by_camera.items():
        book.views.add(ProductView(int(5.3 * S), cam, "G1", "G1S2", p.x, p.y, p.z, 20.0, tuple(probs)))
    book.apply_shelf(ev)
    book.recheck(ev, ev.start_ns + 2 * S)
    return book.receipt("s1")


def test_a_pick_two_cameras_saw_as_another_product_of_the_gondola_is_that_product(tiny):
    # D may have been left on C's plate by someone whose put-back was billed as C: only the views say so
    r = _seen_pick(tiny, {"cam1": [("D", 0.97), ("C", 0.01)], "cam2": [("D", 0.9), ("C", 0.05)]})
    assert {ln.sku: ln.qty for ln in r.lines} == {"D": 1}
    assert 0.5 < r.lines[0].confidence < 0.9          # billed as seen, and still worth a human's look
    # stronger views leave less doubt
    r = _seen_pick(tiny, {"cam1": [("D", 0.99), ("C", 0.002)], "cam2": [("D", 0.99), ("C", 0.002)]})
    assert {ln.sku: ln.qty for ln in r.lines} == {"D": 1} and r.lines[0].confidence > 0.9


def test_one_unsure_view_of_another_product_leaves_the_plates_own_product(tiny):
    r = _seen_pick(tiny, {"cam1": [("D", 0.6), ("C", 0.3)]})
    assert {ln.sku: ln.qty for ln in r.lines} == {"C": 1}
    assert r.lines[0].confidence > 0.9
    # and a view agreeing with the scale changes nothing
    r = _seen_pick(tiny, {"cam1": [("C", 0.9), ("D", 0.05)]})
    assert {ln.sku: ln.qty for ln in r.lines} == {"C": 1} and r.lines[0].confidence > 0.98


def _two_at_one_plate(tiny, bodies_by_camera):
    """s1 and s2 stand either side of C's plate front, equally close: the tracks cannot say who took
    the 55 g unit; each camera's view of the hand may link it to a body (its floor point) or not."""
    from storefuse_core.receipt import plate_front
    fx, fy = plate_front(tiny, ["G1S2P1"])
    at = {"s1": (fx - 0.25, fy), "s2": (fx + 0.25, fy)}
    book = ReceiptBook(tiny)
    book.views = ViewBook(tiny)
    book.locate = lambda x, y, t0, t1: {k: _Where(math.hypot(x - px, y - py)) for k, (px, py) in at.items()}
    book.apply_gate(GateEvent(1 * S, "gate_entry_1", ENTRY, "s1", "hash-s1"))
    book.apply_gate(GateEvent(2 * S, "gate_entry_1", ENTRY, "s2", "hash-s2"))
    ev = change("e1", 5.0, "G1S2P1", -55.0, [cand("C", 0.99, 55.0)])
    p = tiny.plates["G1S2P1"]
    for cam, body in bodies_by_camera.items():
        bx, by = at[body] if body else (math.nan, math.nan)
        book.views.add(ProductView(int(5.3 * S), cam, "G1", "G1S2", p.x, p.y, p.z, 20.0, (("C", 0.95),), bx, by))
    first = book.apply_shelf(ev)
    book.recheck(ev, ev.start_ns + 2 * S)
    sid, body = book.billed_line("e1")
    return first, sid, body["attribution"]


def test_the_arm_a_camera_saw_holding_the_item_says_who_took_it(tiny):
    first, sid, p = _two_at_one_plate(tiny, {})
    assert abs(p - 0.5) < 0.01                              # the tracks alone: a coin toss
    for who in ("s1", "s2"):
        _, sid, one = _two_at_one_plate(tiny, {"cam1": who})
        assert sid == who and 0.65 < one < 0.99             # one camera, 0.5 m apart: likely, never sure
        _, sid, two = _two_at_one_plate(tiny, {"cam1": who, "cam2": who})
        assert sid == who and two > one
    _, sid, p = _two_at_one_plate(tiny, {"cam1": None})     # a hand linked to no body says nothing
    assert abs(p - 0.5) < 0.01
    _, _, p = _two_at_one_plate(tiny, {"cam1": "s1", "cam2": "s2"})     # two cameras disagree
    assert abs(p - 0.5) < 0.01


def test_the_arm_weighs_in_only_at_the_recheck(tiny):
    # the live line is billed when fusion reaches the change's start: views arriving early in a live
    # run (not in a replay) must not decide it, or a replay would not reproduce it
    first, sid, _ = _two_at_one_plate(tiny, {"cam1": "s1", "cam2": "s1"})
    assert sid == "s1"
    assert first.session_id == "s2" and first.confidence < 0.55     # the latest arrival, at a coin toss
