"""Parties and tailgating at a gate: PASS frames (persons through the gate) after a scan."""
from __future__ import annotations

import pytest

from storefuse_core.events import ENTRY, EXIT
from storefuse_core.frame import encode, gate_frame, parse_gate
from storefuse_core.gate import GateReader, hash_token, parse_gate_line, pass_frame
from storefuse_core.layout import load_store
from storefuse_core.ledger import Ledger
from storefuse_core.receipt import ReceiptBook

SECRET = b"test-secret"
S = 1_000_000_000
MS = 1_000_000


def _reader(gate="gate_entry_1", **kw) -> GateReader:
    return GateReader(gate, SECRET, follow_window_s=kw.pop("window", 5.0), **kw)


def test_pass_frame_round_trip_and_old_frames_unchanged():
    read = parse_gate_line(pass_frame(4, 12 * S, 3))
    assert (read.seq, read.stamp_ns, read.action, read.party_size, read.token) == (4, 12 * S, "PASS", 3, "")
    assert pass_frame(4, 12 * S, 3).startswith(b"$GATE,4,12000000,PASS,3*")
    scan = gate_frame(5, 13 * S, "ENTRY", "tok-alice", 2)
    assert parse_gate_line(scan) == parse_gate(scan)
    hb = gate_frame(6, 14 * S, "HB")
    assert parse_gate_line(hb) == parse_gate(hb)


@pytest.mark.parametrize("fields", [["GATE", "1", "10", "PASS"], ["GATE", "1", "10", "PASS", "0"],
                                    ["GATE", "1", "10", "PASS", "21"], ["GATE", "1", "10", "PASS", "two"],
                                    ["GATE", "1", "10", "PASS", "1", "x"]])
def test_bad_pass_frames_are_counted_not_raised(fields):
    reader = _reader()
    assert reader.feed(encode(fields)) is None
    assert reader.stats.bad_frames == 1 and reader.stats.passes == 0 and not reader.take_tailgates()


def test_the_scanned_party_passing_is_expected():
    reader = _reader()
    ev = reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice", 2))
    assert ev.party_size == 2
    assert reader.feed(pass_frame(2, 10 * S + 800 * MS, 1)) is None
    assert reader.feed(pass_frame(3, 11 * S + 500 * MS, 1)) is None
    assert (reader.stats.passes, reader.stats.joined, reader.stats.tailgates) == (2, 0, 0)
    assert reader.events_out == 1 and reader.take_tailgates() == []


def test_followers_within_the_window_join_the_party_as_an_update_of_the_same_session():
    reader = _reader()
    scan = reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice", 1))
    assert reader.feed(pass_frame(2, 10 * S + 700 * MS, 1)) is None          # alice herself
    grow = reader.feed(pass_frame(3, 12 * S, 2))                              # two more follow her in
    assert grow is not None
    assert (grow.direction, grow.session_id, grow.token_hash, grow.party_size) == \
        (ENTRY, scan.session_id, scan.token_hash, 3)
    assert (grow.stamp_ns, grow.seq, grow.gate_id, grow.staff) == (12 * S, 3, "gate_entry_1", False)
    later = reader.feed(pass_frame(4, 14 * S, 1))
    assert later.party_size == 4 and later.session_id == scan.session_id
    assert (reader.stats.passes, reader.stats.joined, reader.stats.tailgates) == (4, 3, 0)
    assert reader.events_out == 3                  # the scan and two updates (the watermark counts them)
    assert reader.take_tailgates() == []


def test_a_pass_with_no_scan_is_tailgating_and_never_a_session_event():
    reader = _reader()
    assert reader.feed(pass_frame(1, 10 * S, 1)) is None
    assert reader.stats.tailgates == 1 and reader.events_out == 0
    (tg,) = reader.take_tailgates()
    assert (tg.token_hash, tg.session_id, tg.direction, tg.party_size, tg.stamp_ns, tg.seq, tg.gate_id) == \
        ("", "", ENTRY, 1, 10 * S, 1, "gate_entry_1")
    assert reader.take_tailgates() == []           # taken once
    assert reader.watermark_ns == 10 * S


def test_a_pass_after_the_window_is_tailgating():
    reader = _reader(window=3.0)
    reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice", 1))
    reader.feed(pass_frame(2, 10 * S + 500 * MS, 1))
    assert reader.feed(pass_frame(3, 13 * S + 1000, 1)) is None               # 3 s + 1 us after the scan
    assert (reader.stats.joined, reader.stats.tailgates) == (0, 1)
    assert reader.take_tailgates()[0].stamp_ns == 13 * S + 1000


def test_heartbeats_expire_windows_too():
    reader = _reader(window=2.0)
    reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice", 1))
    reader.feed(gate_frame(2, 13 * S, "HB"))
    reader.feed(pass_frame(3, 13 * S + 1000, 1))   # alice's own pass came too late: not hers
    assert reader.stats.tailgates == 1


def test_one_frame_can_hold_the_party_followers_and_count_them_once():
    reader = _reader()
    scan = reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-group", 2))
    grow = reader.feed(pass_frame(2, 11 * S, 4))   # the two scanned plus two followers, one beam burst
    assert grow.party_size == 4 and grow.session_id == scan.session_id
    assert (reader.stats.passes, reader.stats.joined) == (4, 2)


def test_followers_of_a_staff_badge_are_tailgaters():
    reader = _reader()
    reader.feed(gate_frame(1, 10 * S, "ENTRY", "staff-badge-7", 1, staff=True))
    assert reader.feed(pass_frame(2, 10 * S + 500 * MS, 2)) is None
    assert (reader.stats.joined, reader.stats.tailgates) == (0, 1)
    assert reader.take_tailgates()[0].party_size == 1


def test_joiners_go_to_the_latest_scan_and_expected_members_fill_in_scan_order():
    reader = _reader()
    a = reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice", 1))
    b = reader.feed(gate_frame(2, 10 * S + 400 * MS, "ENTRY", "tok-bob", 1))
    assert reader.feed(pass_frame(3, 11 * S, 2)) is None            # alice, then bob
    grow = reader.feed(pass_frame(4, 12 * S, 1))
    assert grow.session_id == b.session_id != a.session_id and grow.party_size == 2


def test_max_party_caps_joining():
    reader = _reader(max_party=3)
    reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice", 2))
    grow = reader.feed(pass_frame(2, 11 * S, 5))
    assert grow.party_size == 3
    assert (reader.stats.joined, reader.stats.tailgates) == (1, 2)
    assert reader.take_tailgates()[0].party_size == 2


def test_exit_gate_followers_leave_with_the_party_without_a_second_exit_event():
    reader = _reader("gate_exit_1")
    ev = reader.feed(gate_frame(1, 50 * S, "EXIT", "tok-alice", 1))
    assert ev.direction == EXIT
    assert reader.feed(pass_frame(2, 50 * S + 600 * MS, 3)) is None
    assert (reader.stats.joined, reader.stats.tailgates) == (2, 0) and reader.events_out == 1
    reader.feed(pass_frame(3, 70 * S, 1))           # nobody scanned out: an unscanned exit
    (tg,) = reader.take_tailgates()
    assert tg.direction == EXIT and tg.token_hash == "" and tg.session_id == ""


def test_direction_can_be_given_for_gates_named_otherwise():
    reader = GateReader("door_2", SECRET, direction=EXIT)
    reader.feed(pass_frame(1, 10 * S, 1))
    assert reader.take_tailgates()[0].direction == EXIT


def test_a_duplicate_read_opens_no_second_window():
    reader = _reader()
    reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice", 1))
    assert reader.feed(gate_frame(2, 10 * S + 300 * MS, "ENTRY", "tok-alice", 1)) is None
    grow = reader.feed(pass_frame(3, 11 * S, 2))
    assert grow.party_size == 2 and reader.stats.joined == 1


def test_tokens_stay_hashed_with_the_store_secret():
    reader = _reader()
    scan = reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice-secret", 1))
    grow = reader.feed(pass_frame(2, 11 * S, 2))
    assert grow.token_hash == scan.token_hash == hash_token(SECRET, "tok-alice-secret")
    assert "tok-alice-secret" not in repr(grow)


def test_the_party_update_leaves_fusion_receipts_unchanged():
    """ReceiptBook opens a session once per session_id: the update is a no-op duplicate there."""
    store = load_store("minimart")
    reader = GateReader("gate_entry_1", store.token_secret())
    book = ReceiptBook(store, Ledger())
    scan = reader.feed(gate_frame(1, 10 * S, "ENTRY", "tok-alice", 1))
    grow = reader.feed(pass_frame(2, 11 * S, 2))
    assert book.apply_gate(scan) is not None
    assert book.apply_gate(grow) is None
    assert book.open_sessions() == [scan.session_id]
