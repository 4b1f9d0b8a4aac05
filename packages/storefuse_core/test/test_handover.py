"""Hand-overs between visits and identity checks after shoppers meet (handover.py, identity.py)."""
from __future__ import annotations

import numpy as np

from storefuse_core.events import ENTRY, PICK, GateEvent, ShelfEvent
from storefuse_core.handover import Encounter, HandOverWatch
from storefuse_core.identity import IdentityGuard
from storefuse_core.product import candidates
from storefuse_core.receipt import ReceiptBook

T0 = 1_767_225_600_000_000_000
STEP = 100_000_000


class Tr:
    def __init__(self, sid, x, y, appearance=None, identity=None):
        self.session_id, self.x, self.appearance = sid, np.array([x, y, 0.0, 0.0]), appearance
        self.identity = identity or sid


def look(i):
    a = np.zeros(56)
    a[i] = 1.0
    return a


def test_standing_side_by_side_is_one_encounter_passing_by_is_none():
    watch = HandOverWatch()
    found = []
    for k in range(12):          # a and b pass each other: within 0.9 m for 0.4 s only
        found += watch.observe(T0 + k * STEP, [Tr("a", 2.0 + 0.2 * k, 1.0), Tr("b", 4.4 - 0.2 * k, 1.3)])
    assert found == []
    for k in range(20, 35):      # then stand together for 1.4 s
        found += watch.observe(T0 + k * STEP, [Tr("a", 3.0, 1.0), Tr("b", 3.5, 1.2), Tr("a", 3.4, 1.0)])
    assert [(e.session_a, e.session_b) for e in found] == [("a", "b")]
    assert found[0].end_ns - found[0].start_ns >= 1_000_000_000


def test_a_meeting_is_over_when_the_pair_parts_and_the_next_one_is_its_own():
    watch = HandOverWatch()
    found = []
    for k in range(30):          # together for 3 s, at (3.25, 1.1)
        found += watch.observe(T0 + k * STEP, [Tr("a", 3.0, 1.0), Tr("b", 3.5, 1.2)])
    assert len(found) == 1 and watch.drain_parted() == []       # still together: not over yet
    for k in range(30, 40):      # a step apart for a second, then together again: the same meeting
        found += watch.observe(T0 + k * STEP, [Tr("a", 1.0 if k < 40 else 3.0, 1.0), Tr("b", 3.5, 1.2)])
    found += watch.observe(T0 + 40 * STEP, [Tr("a", 3.0, 1.0), Tr("b", 3.5, 1.2)])
    assert len(found) == 1 and watch.drain_parted() == []
    for k in range(41, 72):      # apart for 3 s: the meeting ended when they parted
        watch.observe(T0 + k * STEP, [Tr("a", 1.0, 1.0), Tr("b", 6.0, 1.2)])
    (met,) = watch.drain_parted()
    assert (met.start_ns, met.end_ns) == (found[0].start_ns, T0 + 41 * STEP)
    assert abs(met.x - 3.25) < 1e-9 and abs(met.y - 1.1) < 1e-9
    assert watch.drain_parted() == []
    again = []
    for k in range(80, 95):      # they meet again later: a second meeting, reported once more
        again += watch.observe(T0 + k * STEP, [Tr("a", 5.0, 1.0), Tr("b", 5.5, 1.0)])
    assert len(again) == 1 and again[0].start_ns == T0 + 80 * STEP


def test_walking_slowly_past_a_shopper_at_a_shelf_is_no_encounter_keeping_pace_is():
    def walker(sid, x, y, vx):
        t = Tr(sid, x, y)
        t.x[2] = vx
        return t
    watch = HandOverWatch()
    found = []
    for k in range(18):          # b walks past a at 0.8 m/s: 1.8 s within 0.9 m, never keeping pace
        found += watch.observe(T0 + k * STEP, [Tr("a", 3.0, 1.0), walker("b", 2.3 + 0.08 * k, 1.4, 0.8)])
    assert found == []
    for k in range(20, 35):      # b walks up to a, then walks beside a (same velocity) for 1.4 s
        found += watch.observe(T0 + k * STEP, [walker("a", 3.0 + 0.08 * k, 1.0, 0.8),
                                               walker("b", 3.35 + 0.08 * k, 1.0, 0.8)])
    assert [(e.session_a, e.session_b) for e in found] == [("a", "b")]


def test_an_encounter_sends_both_visits_to_review_only_when_something_was_held(tiny):
    book = ReceiptBook(tiny)
    for t, sid in ((1, "s1"), (2, "s2")):
        book.apply_gate(GateEvent(t * 10 ** 9, "gate_entry_1", ENTRY, sid, f"h-{sid}"))
    assert book.apply_encounter(Encounter("s1", "s2", 3 * 10 ** 9, 4 * 10 ** 9)) is None     # empty hands
    book.locate = lambda x, y, t0, t1: {}
    cands = candidates(tiny, "G1S1", {"G1S1P2": -200.0}, -200.0, 1.0)
    ev = ShelfEvent("e1", 6 * 10 ** 9, 5 * 10 ** 9, "G1", "G1S1", ["G1S1P2"], [-200.0], -200.0, 1.0, PICK, cands)
    book.apply_shelf(ev)
    book.apply_encounter(Encounter("s1", "s2", 7 * 10 ** 9, 8 * 10 ** 9))
    assert book.receipt("s1").confidence <= 0.5 and book.receipt("s2").confidence <= 0.5
    assert any(f.startswith("hand_over?") for f in book.sessions["s1"].flags)


def test_a_swap_while_close_is_undone_by_colour():
    guard = IdentityGuard()
    red, blue = look(0), look(20)
    for k in range(20):          # apart: the references learn each shopper's colour
        guard.observe(T0 + k * STEP, [Tr("r", 1.0, 1.0, red), Tr("b", 5.0, 1.0, blue)])
    for k in range(20, 30):      # close together
        guard.observe(T0 + k * STEP, [Tr("r", 3.0, 1.0, red), Tr("b", 3.5, 1.0, blue)])
    ta, tb = Tr("r", 1.0, 1.0, blue), Tr("b", 5.0, 1.0, red)       # apart again, the tracks swapped people
    checks = []
    for k in range(30, 45):
        checks += guard.observe(T0 + k * STEP, [ta, tb])
    assert len(checks) == 1 and checks[0].swapped and checks[0].conclusive
    assert (ta.session_id, tb.session_id) == ("b", "r")


def test_visits_scanned_in_together_are_checked_and_go_to_review_when_colour_cannot_tell():
    guard = IdentityGuard()
    guard.on_entry(T0, "gate_entry_1", "a")
    guard.on_entry(T0 + 3 * STEP, "gate_entry_1", "b")
    checks = []
    for k in range(2, 30):       # they walk in as one crowd, then part: no reference was ever learnt
        dx = 0.3 if k < 10 else 0.3 + 0.3 * (k - 10)
        checks += guard.observe(T0 + k * STEP, [Tr("a", 5.0, 1.0, look(3)), Tr("b", 5.0 + dx, 1.0, look(3))])
    assert len(checks) == 1 and not checks[0].conclusive and not checks[0].swapped


def test_a_pair_still_at_risk_when_one_leaves_is_undecided():
    guard = IdentityGuard()
    guard.on_entry(T0, "gate_entry_1", "a")
    guard.on_entry(T0 + 2 * STEP, "gate_entry_1", "b")
    guard.on_entry(T0 + 30 * STEP, "gate_entry_1", "c")         # much later: not with them
    checks = guard.leaving("a", T0 + 100 * STEP)
    assert [(c.session_a, c.session_b, c.conclusive) for c in checks] == [("a", "b", False)]
    assert guard.leaving("b", T0 + 101 * STEP) == [] and guard.leaving("c", T0 + 102 * STEP) == []


def test_the_first_of_two_who_scanned_in_together_is_enough_to_tell_them_apart():
    guard = IdentityGuard()
    red, blue = look(0), look(20)
    guard.on_entry(T0, "gate_entry_1", "r")
    for k in range(1, 5):        # red has the scanner to herself for a moment: her reference is learnt
        guard.observe(T0 + k * STEP, [Tr("r", 10.5, 0.6, red)])
    guard.on_entry(T0 + 5 * STEP, "gate_entry_1", "b")      # blue scans right behind her
    checks = []
    for k in range(5, 30):       # walking in as one crowd the tracks swapped people; then they part
        dx = 0.3 if k < 12 else 0.3 + 0.3 * (k - 12)
        checks += guard.observe(T0 + k * STEP, [Tr("r", 9.0, 1.0, blue), Tr("b", 9.0 - dx, 1.0, red)])
    assert len(checks) == 1 and checks[0].swapped and checks[0].conclusive


def test_a_visit_leaving_beside_another_is_cleared_when_their_colours_say_who_is_who():
    guard = IdentityGuard()
    red, blue = look(0), look(20)
    for k in range(10):          # each walks alone first: references learnt
        guard.observe(T0 + k * STEP, [Tr("r", 2.0, 1.0, red), Tr("b", 6.0, 1.0, blue)])
    for k in range(10, 20):      # blue walks in past red, who is on her way out: close, never apart again
        guard.observe(T0 + k * STEP, [Tr("r", 2.0, 1.0, red), Tr("b", 2.4, 1.0, blue)])
    checks = guard.leaving("r", T0 + 20 * STEP)
    assert [(c.session_a, c.session_b, c.conclusive, c.swapped) for c in checks] == [("b", "r", True, False)]
    # the same meeting where the tracks look like each other's references: unknown, not undone
    guard = IdentityGuard()
    for k in range(10):
        guard.observe(T0 + k * STEP, [Tr("r", 2.0, 1.0, red), Tr("b", 6.0, 1.0, blue)])
    for k in range(10, 20):
        guard.observe(T0 + k * STEP, [Tr("r", 2.0, 1.0, blue), Tr("b", 2.4, 1.0, red)])
    checks = guard.leaving("r", T0 + 20 * STEP)
    assert [(c.conclusive, c.swapped) for c in checks] == [(False, False)]
