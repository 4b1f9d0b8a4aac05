"""What a recorder counts from the CDR bytes it receives (storefuse_core.recording)."""
from __future__ import annotations

import numpy as np
import pytest

from storefuse_core import topics
from storefuse_core.bag import make_typestore
from storefuse_core.convert import (
    block_to_msg,
    gate_event_to_msg,
    rosbags_factory,
    shelf_event_to_msg,
    watermark_to_msg,
)
from storefuse_core.events import PICK, GateEvent, PlateBlock, ShelfEvent
from storefuse_core.recording import (
    CdrError,
    RecordStats,
    group_of,
    peek_gate_event,
    peek_header,
    peek_plate_weights,
    peek_shelf_event,
    peek_watermark,
)

T = 1_767_225_600_123_456_789


@pytest.fixture(scope="module")
def cdr():
    store = make_typestore()
    f = rosbags_factory(store)

    def ser(topic, msg):
        return bytes(store.serialize_cdr(msg, topics.TYPES[topic]))

    def block(board, first_seq, n=6, plates=21):
        b = PlateBlock(board, first_seq, T + np.arange(n, dtype=np.int64), np.zeros((n, plates), np.float32),
                       np.zeros(plates, np.uint8))
        return ser(topics.PLATE_WEIGHTS, block_to_msg(f, b, f"{board}_link"))

    def watermark(topic, source, items):
        return ser(topic, watermark_to_msg(f, source, T, items))

    def gate(gate_id):
        return ser(topics.GATE_EVENTS, gate_event_to_msg(f, GateEvent(T, gate_id, 0, "s-1", "a" * 32, 1, False, 3)))

    def shelf(gondola):
        ev = ShelfEvent(f"{gondola}S1-1", T + 5, T, gondola, f"{gondola}S1", [f"{gondola}S1P1"], [-5.0], -5.0, 0.5,
                        PICK, [])
        return ser(topics.SHELF_EVENTS, shelf_event_to_msg(f, ev))
    return block, watermark, gate, shelf


def test_peeks_read_the_counting_fields(cdr):
    block, watermark, gate, shelf = cdr
    assert peek_plate_weights(block("scale_G12", 4_000_000_123, n=7)) == ("scale_G12", 4_000_000_123, 7)
    assert peek_watermark(watermark(topics.SHELF_WATERMARK, "scale_G3", 2**40 + 5)) == ("scale_G3", 2**40 + 5)
    assert peek_gate_event(gate("gate_exit_2")) == "gate_exit_2"
    assert peek_shelf_event(shelf("G7")) == "scale_G7"
    sec, nanosec, frame = peek_header(block("scale_G1", 0))
    assert (sec * 1_000_000_000 + nanosec, frame) == (T, "scale_G1_link")


@pytest.mark.parametrize("raw", [b"", b"\x00\x01\x00\x00", b"\x00\x00\x00\x00" + bytes(40),
                                 b"\x00\x01\x00\x00" + bytes(8) + b"\xff\xff\x00\x00"])
def test_bytes_that_are_not_the_message_raise_cdr_error(raw):
    with pytest.raises(CdrError):
        peek_plate_weights(raw)


def test_publisher_sequence_gaps_are_dropped_messages():
    s = RecordStats()
    for seq in (5, 6, 9, 10):             # 7 and 8 never arrived
        s.on_message("/store/cameras/cam1/detections", b"x" * 10, 0.0, b"pub-a", seq)
    for seq in (1, 2, 3):                 # another publisher on the same topic: its own numbering
        s.on_message("/store/cameras/cam1/detections", b"x", 0.0, b"pub-b", seq)
    s.on_message("/store/cameras/cam1/detections", b"x", 0.0, b"pub-b", 2)   # late duplicate / reorder
    assert s.dropped() == 2
    assert s.out_of_order == 1
    summary = s.summary()
    assert summary["dropped"] == 2 and summary["messages"] == 8 and summary["publishers"] == 2
    assert summary["dropped_topics"] == {"/store/cameras/cam1/detections": 2}


def test_events_missing_per_watermark_are_judged_after_the_lag(cdr):
    block, watermark, gate, shelf = cdr
    s = RecordStats(lag_s=2.0)
    s.on_message(topics.GATE_EVENTS, gate("gate_entry_1"), 10.0)
    s.on_message(topics.GATE_WATERMARK, watermark(topics.GATE_WATERMARK, "gate_entry_1", 3), 10.5)
    s.on_message(topics.SHELF_EVENTS, shelf("G2"), 10.6)
    s.on_message(topics.SHELF_WATERMARK, watermark(topics.SHELF_WATERMARK, "scale_G2", 1), 10.7)
    assert s.missing_events(now_s=11.0) == 0       # too recent to judge: events may still be in flight
    s.on_message(topics.GATE_EVENTS, gate("gate_entry_1"), 11.5)
    assert s.missing_events(now_s=13.0) == 1       # the watermark counted 3, two came
    assert s.missing_events() == 1                  # at the end: no lag
    rows = {r["group"]: r for r in s.groups(now_s=13.0)}
    assert rows["gates"]["missing"] == 1 and rows["shelves"]["missing"] == 0
    assert s.summary()["missing_events"] == 1 and s.dropped() == 0


def test_weight_sample_gaps_count_whole_blocks(cdr):
    block, *_ = cdr
    s = RecordStats()
    for first in (0, 6, 12, 24, 30, 36):       # 18..23 is a lost block, 29 one lost serial frame
        s.on_message(topics.PLATE_WEIGHTS, block("scale_G1", first, n=5 if first == 24 else 6), 0.0)
    s.on_message(topics.PLATE_WEIGHTS, block("scale_G1", 0), 0.0)    # the board started again
    b = s.boards["scale_G1"]
    assert (b.missing_samples, b.missing_blocks, b.resets) == (7, 1, 1)


def test_unreadable_messages_are_counted_not_fatal():
    s = RecordStats()
    s.on_message(topics.PLATE_WEIGHTS, b"\x00\x01\x00\x00garbage", 0.0)
    s.on_message(topics.GATE_WATERMARK, b"", 0.0)
    assert s.unreadable == 2 and s.topics[topics.PLATE_WEIGHTS].messages == 1
    assert topics.PLATE_WEIGHTS in s.last_error or topics.GATE_WATERMARK in s.last_error


def test_groups_report_rates_and_bytes():
    s = RecordStats()
    for i in range(100):
        s.on_message("/store/cameras/cam0/detections", bytes(1000), i * 0.01)
    s.groups(now_s=0.0)
    for i in range(100):
        s.on_message("/store/cameras/cam0/detections", bytes(1000), 1.0 + i * 0.01)
    s.on_message("/store/carts/cart_1/uwb", bytes(10), 2.0)
    rows = {r["group"]: r for r in s.groups(now_s=2.0)}
    assert rows["cameras"]["messages"] == 200 and rows["cameras"]["bytes"] == 200_000
    assert rows["cameras"]["rate"] == pytest.approx(50.0)       # 100 messages in the last 2 s
    assert set(rows) == {"cameras", "carts"}


def test_topic_groups_use_the_store_words():
    assert group_of("/store/cameras/cam3/detections") == "cameras"
    assert group_of("/store/shelves/weights") == "shelves"
    assert group_of("/shop2/gates/events") == "gates"
    assert group_of("/diagnostics") == "other"
