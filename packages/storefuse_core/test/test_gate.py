"""GateReader: frames in, anonymous GateEvents out; the token never leaves the driver."""
from __future__ import annotations

import dataclasses

from storefuse_core.events import ENTRY, EXIT
from storefuse_core.frame import gate_frame
from storefuse_core.gate import GateReader, hash_token, session_id_for

SECRET = b"test-secret"
S = 1_000_000_000


def test_token_hash_depends_on_the_secret_and_hides_the_token():
    h = hash_token(SECRET, "tok-alice")
    assert h == hash_token(SECRET, "tok-alice")
    assert h != hash_token(b"other-secret", "tok-alice")
    assert h != hash_token(SECRET, "tok-bob")
    assert len(h) == 32 and "alice" not in h


def test_entry_event_carries_the_hash_never_the_token():
    reader = GateReader("gate_entry_1", SECRET)
    ev = reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice-secret-42", 2))
    assert ev is not None
    assert (ev.gate_id, ev.direction, ev.stamp_ns, ev.party_size, ev.staff, ev.seq) == \
        ("gate_entry_1", ENTRY, 10 * S, 2, False, 1)
    assert ev.token_hash == hash_token(SECRET, "tok-alice-secret-42")
    assert "tok-alice-secret-42" not in repr(dataclasses.asdict(ev))
    assert ev.session_id == session_id_for("gate_entry_1", 10 * S, 1)


def test_exit_event_has_no_session_id_and_staff_flag_passes():
    reader = GateReader("gate_exit_1", SECRET)
    ev = reader.feed(gate_frame(1, 10 * S, "EXIT", "staff-badge-7", 1, staff=True))
    assert ev.direction == EXIT and ev.session_id == "" and ev.staff is True


def test_session_ids_are_deterministic_and_distinct():
    assert session_id_for("gate_entry_1", 5 * S, 3) == session_id_for("gate_entry_1", 5 * S, 3)
    ids = {session_id_for("gate_entry_1", 5 * S, 3), session_id_for("gate_entry_1", 5 * S, 4),
           session_id_for("gate_entry_1", 6 * S, 3), session_id_for("gate_entry_2", 5 * S, 3)}
    assert len(ids) == 4
    assert all(i.startswith("s-") and len(i) == 18 for i in ids)
    a = GateReader("gate_entry_1", SECRET).feed(gate_frame(7, 5 * S, "ENTRY", "tok-x"))
    b = GateReader("gate_entry_1", b"another").feed(gate_frame(7, 5 * S, "ENTRY", "tok-x"))
    assert a.session_id == b.session_id            # replay names sessions identically


def test_duplicate_read_within_debounce_is_dropped():
    reader = GateReader("gate_entry_1", SECRET, debounce_s=2.0)
    first = reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice"))
    dup = reader.feed(gate_frame(2, 10 * S + 300_000_000, "ENTRY", "tok-alice"))
    other = reader.feed(gate_frame(3, 10 * S + 400_000_000, "ENTRY", "tok-bob"))
    again = reader.feed(gate_frame(4, 13 * S, "ENTRY", "tok-alice"))
    assert first is not None and dup is None and other is not None and again is not None
    assert reader.stats.duplicates == 1
    assert reader.events_out == 3
    assert again.session_id != first.session_id


def test_heartbeat_gives_no_event_but_advances_the_watermark():
    reader = GateReader("gate_entry_1", SECRET)
    assert reader.watermark_ns == 0
    assert reader.feed(gate_frame(1, 10 * S, "HB")) is None
    assert reader.watermark_ns == 10 * S
    assert reader.feed(gate_frame(2, 10 * S + 500_000_000, "HB")) is None
    assert reader.watermark_ns == 10 * S + 500_000_000
    assert reader.events_out == 0 and reader.stats.frames == 2


def test_bad_frames_and_sequence_gaps_are_counted_not_raised():
    reader = GateReader("gate_entry_1", SECRET)
    assert reader.feed(b"\x00\xff garbage") is None
    assert reader.feed(gate_frame(1, 10 * S, "ENTRY", "x")) is None                 # token too short
    assert reader.feed(gate_frame(1, 10 * S, "HB")[:-5] + b"\r\n") is None           # truncated
    assert reader.stats.bad_frames == 3 and reader.stats.last_error
    assert sum(reader.stats.errors.values()) == 3
    reader.feed(gate_frame(5, 11 * S, "HB"))
    reader.feed(gate_frame(9, 12 * S, "HB"))
    assert reader.stats.seq_gaps == 1
    assert reader.watermark_ns == 12 * S


def test_watermark_is_monotonic():
    reader = GateReader("gate_entry_1", SECRET)
    reader.feed(gate_frame(1, 10 * S, "HB"))
    reader.feed(gate_frame(2, 9 * S, "HB"))
    assert reader.watermark_ns == 10 * S
