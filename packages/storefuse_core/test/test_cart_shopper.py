"""Cart shoppers (issue 6): whose cart is whose, and the carts' word on who made a shelf change.

Tracking is replaced by a plain function with the tracker's `whereabouts` contract (per session, its
closest approach to a point in a time window), fed from made-up straight-line walks; the receipt
book and its ledger are the real ones, on the tiny store (conftest).
"""
from __future__ import annotations

import math

import pytest

from storefuse_core.cart_shopper import (
    SCAN,
    WEIGHT,
    CartChange,
    CartShopperParams,
    CartShoppers,
    Verdict,
    weight_matches,
)
from storefuse_core.events import ENTRY, PICK, PUT, Candidate, GateEvent, ShelfEvent
from storefuse_core.ledger import Ledger
from storefuse_core.receipt import ReceiptBook
from storefuse_core.track import Whereabouts

S = 1_000_000_000


def walker(points):
    """(t_s, x, y) corners -> position at t (seconds), held at the ends."""
    def at(t):
        if t <= points[0][0]:
            return points[0][1:]
        for (t0, x0, y0), (t1, x1, y1) in zip(points, points[1:]):
            if t0 <= t <= t1:
                f = (t - t0) / (t1 - t0)
                return x0 + f * (x1 - x0), y0 + f * (y1 - y0)
        return points[-1][1:]
    return at


def locator(paths):
    """A `whereabouts` stand-in: sessions walking known paths, sampled every 0.1 s."""
    def locate(x, y, t0_ns, t1_ns):
        out = {}
        for sid, at in paths.items():
            ds = [math.hypot(at(k / 10)[0] - x, at(k / 10)[1] - y)
                  for k in range(math.ceil(t0_ns / S * 10), math.floor(t1_ns / S * 10) + 1)]
            if ds:
                out[sid] = Whereabouts(closest=min(ds), mean=sum(ds) / len(ds))
        return out
    return locate


ALICE = walker([(0, 0.0, 0.0), (20, 20.0, 0.0)])          # walks along y = 0 at 1 m/s
BOB = walker([(0, 0.0, 5.0), (20, 20.0, 5.0)])            # along y = 5
PATHS = {"alice": ALICE, "bob": BOB}


def feed_cart(carts, cart_id, at, t0_s, t1_s, lag_m=0.7):
    """A cart trailing its pusher by lag_m, a pose every 0.1 s."""
    for k in range(int(t0_s * 10), int(t1_s * 10) + 1):
        x, y = at(k / 10)
        carts.add_pose(cart_id, k * S // 10, x - lag_m, y)


def pick(eid, t_s, grams, skus=(("A", 0.9), ("B", 0.05)), kind=PICK):
    start = int(t_s * S)
    cands = [Candidate(sku, sku, 1, grams, p) for sku, p in skus]
    delta = -grams if kind == PICK else grams
    return ShelfEvent(eid, start + S, start, "G1", "G1S1", ["G1S1P1"], [delta], delta, 0.8, kind, cands)


@pytest.fixture
def two_carts():
    """Alice pushes cart_1, Bob cart_2, for 12 s; fusion has applied inputs up to 12 s."""
    carts = CartShoppers()
    feed_cart(carts, "cart_1", ALICE, 0, 12)
    feed_cart(carts, "cart_2", BOB, 0, 12)
    carts.advance(12 * S, locator(PATHS))
    return carts


def test_a_cart_belongs_to_the_shopper_walking_with_it(two_carts):
    one = two_carts.owners("cart_1", 12 * S, ["alice", "bob"])
    two = two_carts.owners("cart_2", 12 * S, ["alice", "bob"])
    assert set(one) == {"alice"} and one["alice"] > 0.75
    assert set(two) == {"bob"} and two["bob"] > 0.75


def test_ownership_grows_with_time_together():
    carts = CartShoppers()
    feed_cart(carts, "cart_1", ALICE, 0, 12)
    carts.advance(12 * S, locator(PATHS))
    early, late = (carts.owners("cart_1", t * S, ["alice"]).get("alice", 0.0) for t in (2, 11))
    assert early < 0.5 < late


def test_ownership_uses_only_samples_fusion_is_past():
    """A pose sample is judged once fusion is lag_s past it (tracks complete around it), so the
    answer does not depend on when the poses arrived."""
    carts = CartShoppers(CartShopperParams(lag_s=1.0))
    feed_cart(carts, "cart_1", ALICE, 0, 12)
    carts.advance(5 * S, locator(PATHS))
    assert max(t for t, _ in carts.samples["cart_1"]) <= 4 * S
    carts.advance(12 * S, locator(PATHS))
    assert max(t for t, _ in carts.samples["cart_1"]) == 11 * S


def test_side_by_side_says_nothing_about_whose_cart():
    together = {"alice": ALICE, "bob": walker([(0, 0.0, 0.4), (20, 20.0, 0.4)])}
    carts = CartShoppers()
    feed_cart(carts, "cart_1", ALICE, 0, 12)
    carts.advance(12 * S, locator(together))
    assert carts.owners("cart_1", 12 * S, ["alice", "bob"]) == {}


def test_closed_sessions_are_left_out():
    """A cart left at the exit by one visit and taken by the next: only the open sessions count."""
    carts = CartShoppers()
    feed_cart(carts, "cart_1", ALICE, 0, 12)
    carts.advance(12 * S, locator(PATHS))
    assert carts.owners("cart_1", 12 * S, ["bob"]) == {}


def test_weight_match_follows_both_scales_noise():
    ev = pick("e1", 5, 300.0)
    assert weight_matches(ev, CartChange(6 * S, "cart_1", WEIGHT, grams=304.0, noise_sd=2.0))
    assert not weight_matches(ev, CartChange(6 * S, "cart_1", WEIGHT, grams=330.0, noise_sd=2.0))
    assert not weight_matches(ev, CartChange(6 * S, "cart_1", WEIGHT, grams=-300.0, noise_sd=2.0))
    put = pick("e2", 5, 300.0, kind=PUT)
    assert weight_matches(put, CartChange(4 * S, "cart_1", WEIGHT, grams=-299.0, noise_sd=2.0))


def judge(carts, ev, shares):
    carts.watch(ev, shares)
    (w,) = carts.drain()
    return carts.judge(w)


def test_matching_cart_makes_an_even_camera_call_sure(two_carts):
    ev = pick("e1", 8, 300.0)
    two_carts.add_change(CartChange(9 * S, "cart_2", SCAN, sku="A", seq=1))
    two_carts.add_change(CartChange(int(9.5 * S), "cart_2", WEIGHT, grams=301.0, seq=2))
    v = judge(two_carts, ev, {"alice": 0.5, "bob": 0.5})
    assert v.payer == "bob" and v.shares["bob"] > 0.99
    shows = {c["cart_id"]: c["shows"] for c in v.carts}
    assert shows == {"cart_1": "none", "cart_2": "both"}
    assert v.product == {"A": 1.0, "B": pytest.approx(0.02)}
    assert set(v.used) == {"cart_2"}


def test_a_cart_against_the_cameras_lowers_confidence_instead_of_winning(two_carts):
    ev = pick("e1", 8, 300.0)
    two_carts.add_change(CartChange(9 * S, "cart_1", SCAN, sku="A", seq=1))
    two_carts.add_change(CartChange(int(9.5 * S), "cart_1", WEIGHT, grams=299.0, seq=2))
    cameras = {"alice": 0.0002, "bob": 0.9998}
    v = judge(two_carts, ev, cameras)
    assert v.shares["bob"] < 0.9 < cameras["bob"]             # the cameras were very sure ...
    assert max(v.shares.values()) < 0.9                       # ... the cart does not simply win: review


def test_a_weight_of_another_item_is_no_evidence(two_carts):
    ev = pick("e1", 8, 300.0)
    two_carts.add_change(CartChange(int(9.5 * S), "cart_2", WEIGHT, grams=450.0, seq=1))
    two_carts.add_change(CartChange(int(9.0 * S), "cart_2", SCAN, sku="Z", seq=2))
    v = judge(two_carts, ev, {"alice": 0.5, "bob": 0.5})
    assert {c["shows"] for c in v.carts} == {"none"}
    assert v.shares["alice"] == pytest.approx(0.5)            # both carts silent: the cameras' call stands


def test_changes_outside_the_window_do_not_count(two_carts):
    ev = pick("e1", 4, 300.0)                                 # settles at 5 s: window ends at 9 s
    two_carts.add_change(CartChange(int(9.5 * S), "cart_2", WEIGHT, grams=300.0, seq=1))
    v = judge(two_carts, ev, {"alice": 0.5, "bob": 0.5})
    assert {c["shows"] for c in v.carts} == {"none"}


def test_one_cart_change_explains_one_shelf_change(two_carts):
    """Two units taken two seconds apart: each shelf change takes its own scan and weight."""
    e1, e2 = pick("e1", 5, 300.0), pick("e2", 7, 300.0)
    for k, t in enumerate((6.0, 8.0)):
        two_carts.add_change(CartChange(int(t * S), "cart_1", SCAN, sku="A", seq=2 * k + 1))
        two_carts.add_change(CartChange(int((t + 0.5) * S), "cart_1", WEIGHT, grams=300.0, seq=2 * k + 2))
    two_carts.watch(e1, {"alice": 0.5, "bob": 0.5})
    two_carts.watch(e2, {"alice": 0.5, "bob": 0.5})
    w1, w2 = two_carts.drain()
    v1 = two_carts.judge(w1)
    two_carts.spend(v1)
    v2 = two_carts.judge(w2)
    first = next(c for c in v1.carts if c["cart_id"] == "cart_1")
    second = next(c for c in v2.carts if c["cart_id"] == "cart_1")
    assert first["scan"][0] == 6 * S and second["scan"][0] == 8 * S
    assert v1.payer == v2.payer == "alice"


def test_a_put_back_taken_out_of_the_cart(two_carts):
    ev = pick("e1", 8, 300.0, kind=PUT)
    two_carts.add_change(CartChange(int(6.5 * S), "cart_1", WEIGHT, grams=-300.5, seq=1))
    v = judge(two_carts, ev, {"alice": 0.5, "bob": 0.5})
    assert v.payer == "alice" and v.shares["alice"] > 0.95


def test_no_cart_no_word():
    carts = CartShoppers()
    assert not carts.active
    carts.watch(pick("e1", 8, 300.0), {"alice": 0.5, "bob": 0.5})
    (w,) = carts.drain()
    assert carts.judge(w) is None


def test_decided_when_fusion_passes_the_window(two_carts):
    ev = pick("e1", 8, 300.0)                # settles at 9 s: window to 13 s, decided from 13.5 s
    two_carts.watch(ev, {"alice": 0.5, "bob": 0.5})
    assert two_carts.due(13 * S) == []
    assert two_carts.due(10 * S, leaving="bob") != []          # a payer candidate leaving: decide now


def test_the_carts_weigh_the_shares_of_the_full_window(two_carts):
    # billed when fusion reached the start (nothing after it: 1:1), decided again once the cameras saw
    # the whole window (alice at the plate): neither cart shows the item, so the cameras' later call stands
    ev = pick("e1", 8, 300.0)
    two_carts.watch(ev, {"alice": 0.5, "bob": 0.5})
    two_carts.rewatch("e9", {"alice": 0.01, "bob": 0.99})       # another change: not this watch
    two_carts.rewatch("e1", {"alice": 0.99, "bob": 0.01})
    (w,) = two_carts.drain()
    v = two_carts.judge(w)
    assert v.payer == "alice" and v.shares["alice"] > 0.98


# ---- the receipt book's amendment ---------------------------------------------------------------
def _book(tiny, ledger):
    book = ReceiptBook(tiny, ledger)
    book.apply_gate(GateEvent(1 * S, "gate_entry_1", ENTRY, "s1", "h1"))
    book.apply_gate(GateEvent(2 * S, "gate_entry_1", ENTRY, "s2", "h2"))
    return book


def test_book_moves_a_line_to_the_carts_payer_and_a_restart_agrees(tiny):
    ledger = Ledger()
    book = _book(tiny, ledger)
    ev = ShelfEvent("e1", 6 * S, 5 * S, "G1", "G1S1", ["G1S1P2"], [-200.0], -200.0, 0.8, PICK,
                    [Candidate("B", "Bottle", 1, 200.0, 0.98)])
    book.apply_shelf(ev)                                     # no cameras: the latest arrival (s2) pays
    assert book.billed_line("e1")[0] == "s2"
    assert book.last_attribution.shares == {"s1": 0.5, "s2": 0.5}
    v = Verdict("e1", "s1", {"s1": 0.99, "s2": 0.01}, {"s1": 1.0, "s2": 0.01}, [{"cart_id": "cart_1"}],
                product={"B": 1.0}, product_other=0.02)
    out = book.apply_cart_verdict(ev, v, 9 * S)
    assert {r.session_id for r in out} == {"s1", "s2"}
    r1, r2 = book.receipt("s1"), book.receipt("s2")
    assert [(ln.sku, ln.qty) for ln in r1.lines] == [("B", 1)] and r2.lines == []
    assert r1.lines[0].confidence == pytest.approx(0.99 * 0.98 / (0.98 + 0.02 * 0.02), abs=1e-6)
    assert r2.confidence == pytest.approx(0.99)             # s2 might still have been the one
    assert book.apply_cart_verdict(ev, v, 10 * S) == []     # once per shelf change
    kinds = [row[3] for row in ledger.entries()]
    assert kinds.count("line") == 1 and kinds.count("amend") == 1     # the first decision stays on record
    again = ReceiptBook(tiny, ledger)
    for sid in ("s1", "s2"):
        assert again.receipt(sid) == book.receipt(sid)


def test_book_keeps_a_line_the_carts_confirm(tiny):
    book = _book(tiny, Ledger())
    ev = ShelfEvent("e1", 6 * S, 5 * S, "G1", "G1S1", ["G1S1P2"], [-200.0], -200.0, 0.8, PICK,
                    [Candidate("B", "Bottle", 1, 200.0, 0.98)])
    book.apply_shelf(ev)
    v = Verdict("e1", "s2", {"s1": 0.5, "s2": 0.5}, {"s1": 1.0, "s2": 1.0}, [])
    assert book.apply_cart_verdict(ev, v, 9 * S) == []        # nothing new: no row
