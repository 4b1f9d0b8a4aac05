"""rosbag2 folders (metadata.yaml + MCAP) through rosbags, with the storefuse message types."""
from __future__ import annotations

import numpy as np
import pytest

from storefuse_core import topics
from storefuse_core.bag import BagWriter, custom_data, make_typestore, read_bag
from storefuse_core.convert import (
    block_from_msg,
    block_to_msg,
    gate_event_from_msg,
    gate_event_to_msg,
    receipt_from_msg,
    receipt_to_msg,
    rosbags_factory,
    shelf_event_from_msg,
    shelf_event_to_msg,
    stamp_ns,
    watermark_to_msg,
)
from storefuse_core.errors import StorefuseError
from storefuse_core.events import (
    ENTRY,
    PICK,
    REVIEWED,
    Candidate,
    GateEvent,
    PlateBlock,
    Receipt,
    ReceiptLine,
    ShelfEvent,
)

T = 1_767_225_600_123_456_789


@pytest.fixture(scope="module")
def typestore():
    return make_typestore()


def sample_block():
    stamps = T + np.arange(6, dtype=np.int64) * 16_666_667
    grams = np.arange(6 * 4, dtype=np.float32).reshape(6, 4) * 1.5 - 3.25
    return PlateBlock("scale_G1", 42, stamps, grams, np.array([0, 1, 2, 0], np.uint8))


def sample_shelf_event():
    cands = [Candidate("MM-0002", "Sprite", 1, 628.0, 0.99), Candidate("MM-0001", "Coke", 2, 368.0, 0.005)]
    return ShelfEvent("G1S1-1", T + 400_000_000, T, "G1", "G1S1", ["G1S1P2"], [-628.125], -628.125, 0.75,
                      PICK, cands)


def sample_receipt():
    return Receipt("s-1", T, REVIEWED, "reviewed by rita", 3,
                   [ReceiptLine("MM-0002", "Sprite", 2, 2.49, 0.97, ["G1S1-1", "G1S1-2"])], 4.98, "USD", 0.97)


def test_typestore_knows_the_storefuse_messages(typestore):
    for msgtype in topics.TYPES.values():
        assert msgtype in typestore.types


def test_write_read_round_trip(tmp_path, typestore):
    path = tmp_path / "bag"
    gate = GateEvent(T, "gate_entry_1", ENTRY, "s-abc", "f" * 32, 2, False, 7)
    with BagWriter(path, {"storefuse.store": "minimart", "note": "unit test"}, typestore) as bag:
        f = rosbags_factory(bag.typestore)
        bag.write(topics.GATE_EVENTS, topics.TYPES[topics.GATE_EVENTS], T, gate_event_to_msg(f, gate))
        bag.write(topics.PLATE_WEIGHTS, topics.TYPES[topics.PLATE_WEIGHTS], T + 1,
                  block_to_msg(f, sample_block(), "G1_link"))
        bag.write(topics.SHELF_EVENTS, topics.TYPES[topics.SHELF_EVENTS], T + 2,
                  shelf_event_to_msg(f, sample_shelf_event()))
        bag.write(topics.RECEIPTS_FINAL, topics.TYPES[topics.RECEIPTS_FINAL], T + 3,
                  receipt_to_msg(f, sample_receipt()))
        bag.write(topics.GATE_WATERMARK, topics.TYPES[topics.GATE_WATERMARK], T + 4,
                  watermark_to_msg(f, "gate_entry_1", T, 1))
        assert bag.counts[topics.GATE_EVENTS] == 1
    assert (path / "metadata.yaml").is_file()

    messages = list(read_bag(path))
    assert [m.topic for m in messages] == [topics.GATE_EVENTS, topics.PLATE_WEIGHTS, topics.SHELF_EVENTS,
                                           topics.RECEIPTS_FINAL, topics.GATE_WATERMARK]
    assert [m.log_ns for m in messages] == [T, T + 1, T + 2, T + 3, T + 4]
    assert gate_event_from_msg(messages[0].msg) == gate
    block = block_from_msg(messages[1].msg)
    original = sample_block()
    assert block.board_id == "scale_G1" and block.first_seq == 42
    np.testing.assert_array_equal(block.stamps_ns, original.stamps_ns)
    np.testing.assert_array_equal(block.grams, original.grams)
    np.testing.assert_array_equal(block.plate_status, original.plate_status)
    assert stamp_ns(messages[1].msg.header.stamp) == int(original.stamps_ns[0])
    assert shelf_event_from_msg(messages[2].msg) == sample_shelf_event()
    assert receipt_from_msg(messages[3].msg) == sample_receipt()
    assert messages[4].msg.header.frame_id == "gate_entry_1" and messages[4].msg.items_published == 1
    assert messages[0].msgtype == topics.TYPES[topics.GATE_EVENTS]


def test_raw_bytes_survive_and_topics_filter(tmp_path, typestore):
    path = tmp_path / "bag"
    gate = GateEvent(T, "gate_exit_1", 1, "", "a" * 32, 1, True, 9)
    with BagWriter(path, typestore=typestore) as bag:
        f = rosbags_factory(bag.typestore)
        raw = typestore.serialize_cdr(gate_event_to_msg(f, gate), topics.TYPES[topics.GATE_EVENTS])
        bag.add_topic(topics.GATE_EVENTS, topics.TYPES[topics.GATE_EVENTS])
        bag.write_raw(topics.GATE_EVENTS, T, raw)
        bag.write(topics.PLATE_WEIGHTS, topics.TYPES[topics.PLATE_WEIGHTS], T,
                  block_to_msg(f, sample_block(), "x"))
    only = list(read_bag(path, [topics.GATE_EVENTS], decode=False))
    assert len(only) == 1 and only[0].msg is None and only[0].raw == bytes(raw)
    assert custom_data(path) == {}


def test_custom_data(tmp_path, typestore):
    path = tmp_path / "bag"
    layout = "store: minimart\n# a layout with: colons, 'quotes' and\nnewlines\n"
    with BagWriter(path, {"storefuse.store": "minimart", "storefuse.layout": layout}, typestore):
        pass
    assert custom_data(path) == {"storefuse.store": "minimart", "storefuse.layout": layout}


def test_never_overwrites_a_bag(tmp_path, typestore):
    path = tmp_path / "bag"
    with BagWriter(path, typestore=typestore):
        pass
    with pytest.raises(StorefuseError, match="already exists"):
        BagWriter(path, typestore=typestore)
