"""Shopper tracker: Kalman filter per shopper, gated assignment, identity from the entry gate."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from storefuse_core.events import ENTRY, GateEvent
from storefuse_core.track import CONFIRMED, LOST, ShopperTracker, TrackerParams

T0 = 1_767_225_600_000_000_000
STEP = 100_000_000


@dataclass
class Det:
    x: float
    y: float
    cov: tuple = (0.01, 0, 0, 0, 0.01, 0, 0, 0, 0.01)
    score: float = 0.9


@pytest.fixture
def tracker(minimart):
    return ShopperTracker(minimart)


def walk(tracker, start, velocity, frames, t0=T0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    for k in range(frames):
        x = start[0] + velocity[0] * k * 0.1 + rng.normal(0, noise)
        y = start[1] + velocity[1] * k * 0.1 + rng.normal(0, noise)
        tracker.on_detections(t0 + k * STEP, [Det(x, y)])


def test_one_walking_shopper_is_one_confirmed_track_following_them(tracker):
    walk(tracker, (2.0, 1.5), (1.0, 0.0), 40, noise=0.05)
    confirmed = tracker.confirmed()
    assert len(confirmed) == 1
    assert confirmed[0].x[0] == pytest.approx(2.0 + 3.9, abs=0.2)
    assert confirmed[0].x[2] == pytest.approx(1.0, abs=0.3)       # estimated velocity


def test_two_shoppers_passing_keep_their_tracks(tracker):
    rng = np.random.default_rng(1)
    for k in range(50):
        a = Det(1.0 + 0.1 * k + rng.normal(0, 0.03), 2.0)
        b = Det(6.0 - 0.1 * k + rng.normal(0, 0.03), 3.0)
        tracker.on_detections(T0 + k * STEP, [a, b])
    confirmed = sorted(tracker.confirmed(), key=lambda t: t.x[1])
    assert len(confirmed) == 2
    assert confirmed[0].x[0] == pytest.approx(5.9, abs=0.2) and confirmed[1].x[0] == pytest.approx(1.1, abs=0.2)


def test_a_track_born_at_the_entry_gate_takes_the_session(tracker, minimart):
    gate = minimart.gates["gate_entry_1"]
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-abc", "h"))
    walk(tracker, (gate.x, gate.y + 0.3), (0.0, 0.8), 10)
    assert [t.session_id for t in tracker.confirmed()] == ["s-abc"]


def test_a_lost_shopper_keeps_the_identity(minimart):
    """Occluded for 3 s: the track is LOST, then either re-associated or re-identified, never a new
    identity; with a stiff motion model the new track is re-identified by where it could have walked."""
    tracker = ShopperTracker(minimart, TrackerParams(lost_after_s=0.5, accel_sd=0.05))
    gate = minimart.gates["gate_entry_1"]
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-abc", "h"))
    walk(tracker, (gate.x, gate.y + 0.3), (-0.8, 0.0), 20)
    # unseen for 3 s (occlusion), then seen again 2 m further on
    tracker.on_detections(T0 + 50 * STEP, [])
    assert [t.state for t in tracker.tracks] == [LOST]
    walk(tracker, (gate.x - 2.0, gate.y + 2.0), (0.0, 0.8), 10, t0=T0 + 50 * STEP)   # turned a corner
    bound = [t for t in tracker.tracks if t.session_id == "s-abc"]
    assert len(bound) == 1 and bound[0].state == CONFIRMED
    assert tracker.reidentified == 1


def test_tracking_is_deterministic(minimart):
    runs = []
    for _ in range(2):
        tr = ShopperTracker(minimart)
        walk(tr, (2.0, 1.5), (0.5, 0.5), 30, noise=0.1, seed=3)
        runs.append([(t.track_id, round(float(t.x[0]), 9)) for t in tr.tracks])
    assert runs[0] == runs[1]


def test_near_reports_sessions_within_reach(tracker, minimart):
    gate = minimart.gates["gate_entry_1"]
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-abc", "h"))
    walk(tracker, (gate.x, gate.y + 0.3), (0.0, 0.5), 20)
    end = T0 + 19 * STEP
    assert "s-abc" in tracker.near(gate.x, gate.y + 1.2, T0, end, 0.5)
    assert tracker.near(gate.x + 5, gate.y, T0, end, 0.5) == {}


@dataclass
class LookDet(Det):
    appearance: np.ndarray = None


def look(hue_bin: int) -> np.ndarray:
    a = np.zeros(56, np.float32)
    a[hue_bin] = 0.8
    a[hue_bin + 1] = 0.2
    return a


def test_a_party_scanned_in_once_binds_every_member(tracker, minimart):
    gate = minimart.gates["gate_entry_1"]
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-family", "h", party_size=2))
    for k in range(10):
        tracker.on_detections(T0 + k * STEP, [Det(gate.x - 0.4, gate.y + 0.3 + 0.08 * k),
                                              Det(gate.x + 0.4, gate.y + 0.3 + 0.08 * k)])
    confirmed = tracker.confirmed()
    assert sorted(t.session_id for t in confirmed) == ["s-family", "s-family"]
    assert len({t.identity for t in confirmed}) == 2


def test_a_lost_shopper_is_reidentified_by_colour_not_by_the_nearest_lost_track(tracker, minimart):
    gate = minimart.gates["gate_entry_1"]
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-red", "h1"))
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-blue", "h2"))
    red, blue = look(0), look(20)
    for k in range(30):      # both walk in from the gate and stand still: red at (10.5, 2), blue at (8.5, 2)
        f = min(1.0, k / 10)
        tracker.on_detections(T0 + k * STEP, [
            LookDet(gate.x + (10.5 - gate.x) * f, gate.y + (2.0 - gate.y) * f, appearance=red),
            LookDet(gate.x + (8.5 - gate.x) * f, gate.y + (2.0 - gate.y) * f, appearance=blue)])
    assert {t.session_id for t in tracker.confirmed()} == {"s-red", "s-blue"}
    # both vanish (a blind spot) for 3 s; one reappears 2.3 m from red's place, 2.7 m from blue's
    t1 = T0 + 60 * STEP
    for k in range(5):
        tracker.on_detections(t1 + k * STEP, [LookDet(10.0, 4.2, appearance=blue)])
    assert [t.session_id for t in tracker.confirmed()] == ["s-blue"]
    assert tracker.reidentified == 1


def test_whereabouts_says_near_far_or_unseen(tracker, minimart):
    gate = minimart.gates["gate_entry_1"]
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-a", "h"))
    walk(tracker, (gate.x, gate.y + 0.3), (0.0, 0.5), 20)
    end = T0 + 20 * STEP
    here = tracker.whereabouts(gate.x, gate.y + 1.2, end - 10 * STEP, end)["s-a"]
    assert here.mean < 0.6 and here.closest < 0.2
    later = tracker.whereabouts(gate.x, gate.y, end + 10 * STEP, end + 20 * STEP)["s-a"]
    assert later.mean is None and later.last_ns == T0 + 19 * STEP and later.last_d > 0.9


def test_a_coasting_track_does_not_take_a_stranger_walking_past(tracker, minimart):
    red, blue = look(0), look(20)
    for k in range(10):                       # red walks along the front aisle, then the cameras lose her
        tracker.on_detections(T0 + k * STEP, [LookDet(5.0 + 0.1 * k, 1.0, appearance=red)])
    (track,) = tracker.confirmed()
    t1 = T0 + 17 * STEP                       # 0.8 s unseen: a stranger appears 1 m from where she was heading
    tracker.on_detections(t1, [LookDet(6.3, 1.9, appearance=blue)])
    assert track.last_ns == T0 + 9 * STEP     # the stranger did not drag her track away
    tracker.on_detections(t1 + STEP, [LookDet(6.7, 1.0, appearance=red)])
    assert track.last_ns == t1 + STEP         # she is taken back when she shows up again


def test_two_shoppers_at_one_spot_are_told_apart_by_colour(tracker, minimart):
    gate = minimart.gates["gate_entry_1"]
    red, blue = look(0), look(20)
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-red", "h1"))
    for k in range(8):                        # red waits at the scanner
        tracker.on_detections(T0 + k * STEP, [LookDet(gate.x, gate.y, appearance=red)])
    tracker.on_gate(GateEvent(T0 + 8 * STEP, "gate_entry_1", ENTRY, "s-blue", "h2"))
    for k in range(8, 30):     # blue steps onto the scanner's spot as red walks on: by position alone,
        f = k - 7              # red's track (still where red stood) would take blue
        tracker.on_detections(T0 + k * STEP, [LookDet(gate.x, gate.y, appearance=blue),
                                              LookDet(gate.x - 0.12 * f, gate.y + 0.02 * f, appearance=red)])
    by_session = {t.session_id: t for t in tracker.confirmed()}
    assert set(by_session) == {"s-red", "s-blue"}
    assert by_session["s-red"].x[0] < gate.x - 1.0           # the one walking in is red
    assert by_session["s-blue"].x[0] == pytest.approx(gate.x, abs=0.1)


def test_an_unnamed_track_that_took_over_a_lost_shopper_gets_their_session(tracker, minimart):
    gate = minimart.gates["gate_entry_1"]
    red = look(0)
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-red", "h1"))
    for k in range(10):
        tracker.on_detections(T0 + k * STEP, [LookDet(gate.x - 0.1 * k, gate.y + 0.3, appearance=red)])
    (first,) = tracker.confirmed()
    assert first.session_id == "s-red"
    # she turns up 2.6 m on, 0.4 s later (the cameras missed her in between): too far for her track, so
    # a new one starts and is confirmed while the old one is still coasting; once that one is lost,
    # the new one is her
    t1 = T0 + 13 * STEP
    for k in range(15):
        tracker.on_detections(t1 + k * STEP, [LookDet(gate.x - 3.5 - 0.1 * k, gate.y + 0.3, appearance=red)])
    (track,) = tracker.confirmed()
    assert track is not first and track.session_id == "s-red"
    assert first.session_id == "" and tracker.reidentified == 1


def test_a_shopper_who_scanned_out_gives_up_the_session_and_never_takes_the_next_name(tracker, minimart):
    from storefuse_core.events import EXIT
    entry, exit_ = minimart.gates["gate_entry_1"], minimart.gates["gate_exit_1"]
    red, blue = look(0), look(20)
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-red", "h1"))
    for k in range(10):
        tracker.on_detections(T0 + k * STEP, [LookDet(exit_.x - 1.0 + 0.1 * k, exit_.y, appearance=red)])
    assert [t.session_id for t in tracker.confirmed()] == ["s-red"]
    t1 = T0 + 10 * STEP
    tracker.on_exit("s-red", GateEvent(t1, "gate_exit_1", EXIT, "", "h1"))
    (leaving,) = tracker.confirmed()
    assert leaving.session_id == "" and leaving.left and "s-red" in tracker.exited
    tracker.on_gate(GateEvent(t1 + STEP, "gate_entry_1", ENTRY, "s-blue", "h2"))
    for k in range(1, 12):    # red lingers beside the exit; blue scans in and walks past her
        tracker.on_detections(t1 + k * STEP, [LookDet(exit_.x, exit_.y, appearance=red),
                                              LookDet(entry.x - 0.1 * k, entry.y + 0.2, appearance=blue)])
    named = [t.session_id for t in tracker.confirmed() if t.session_id]
    assert named == ["s-blue"]
    assert all(t.session_id != "s-red" for t in tracker.tracks)
    assert "" not in tracker.whereabouts(exit_.x, exit_.y, t1, t1 + 11 * STEP)   # she is not a lost shopper


def test_a_track_never_takes_a_detection_that_does_not_look_like_it(tracker):
    red, blue = look(0), look(20)
    for k in range(10):                       # red walks along the aisle
        tracker.on_detections(T0 + k * STEP, [LookDet(3.0 + 0.1 * k, 1.5, appearance=red)])
    (track,) = tracker.confirmed()
    # next frame the camera misses red; a stranger in blue stands 0.3 m from where red is heading:
    # well inside red's gate, and red was seen a moment ago
    tracker.on_detections(T0 + 10 * STEP, [LookDet(4.2, 1.3, appearance=blue)])
    assert track.last_ns == T0 + 9 * STEP and len(tracker.tracks) == 2
    tracker.on_detections(T0 + 11 * STEP, [LookDet(4.1, 1.5, appearance=red), LookDet(4.2, 1.3, appearance=blue)])
    assert track.last_ns == T0 + 11 * STEP and track.x[0] == pytest.approx(4.1, abs=0.15)


def test_a_false_detection_at_the_gate_does_not_push_the_queue(tracker, minimart):
    gate = minimart.gates["gate_entry_1"]
    tracker.on_gate(GateEvent(T0, "gate_entry_1", ENTRY, "s-first", "h1"))
    tracker.on_gate(GateEvent(T0 + 5 * STEP, "gate_entry_1", ENTRY, "s-second", "h2"))
    # a false detection near the gate, seen once (a tentative track that dies), then the first shopper
    tracker.on_detections(T0 + 6 * STEP, [Det(gate.x + 2.0, gate.y + 1.0, score=0.55)])
    walk(tracker, (gate.x, gate.y + 0.3), (0.0, 0.8), 6, t0=T0 + 7 * STEP)
    named = [t.session_id for t in tracker.confirmed() if t.session_id]
    assert named == ["s-first"]


def test_a_detection_with_a_broken_covariance_fits_no_track(tracker):
    # a camera host that sends a singular or infinite covariance must not stop fusion: that detection
    # is counted and dropped (no track of its own, nothing NaN), the shopper's track goes on
    walk(tracker, (2.0, 1.5), (1.0, 0.0), 20)
    (t,) = tracker.confirmed()
    before = t.hits
    at = T0 + 20 * STEP
    for k, cov in enumerate([(1e20, 1e20, 0, 1e20, 1e20, 0, 0, 0, 1), (float("inf"), 0, 0, 0, 1, 0, 0, 0, 1)]):
        tracker.on_detections(at + k * STEP, [Det(4.0 + 0.1 * k, 1.5, cov)])
    assert t.hits == before and tracker.rejected == 2 and len(tracker.tracks) == 1
    walk(tracker, (4.2, 1.5), (1.0, 0.0), 10, t0=at + 2 * STEP)
    assert t in tracker.confirmed() and t.hits > before
