"""Playback timing (schedule, clock, pause/step, loop, start offset, linger) on an injected clock."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from storefuse_core import topics
from storefuse_core.errors import StorefuseError
from storefuse_core.playback import (
    DEFAULT_EXCLUDE,
    BagTopic,
    Playback,
    PlaybackClock,
    Schedule,
    bag_info,
    open_playback,
    qos_for,
    resolve_wait,
    save_layout,
    select_topics,
)

REPO = Path(__file__).resolve().parents[3]
BAG = REPO / "bags" / "minimart_two_shoppers"
S = 1_000_000_000
T0 = 1_000 * S


class FakeWall:
    """A monotonic nanosecond clock that moves only when told to."""

    def __init__(self):
        self.ns = 5 * S

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * S)


def messages(*offsets_s, topic="/t"):
    return [(T0 + int(o * S), topic, "std_msgs/msg/String", f"m{o}".encode()) for o in offsets_s]


def playback(msgs, rate=1.0, start_s=0.0, loop=False, paused=False, linger_s=0.0):
    wall = FakeWall()
    clock = PlaybackClock(T0 + int(start_s * S), rate, paused, wall)
    pb = Playback(Schedule(lambda: iter(msgs), T0 + int(start_s * S), loop), clock, int(linger_s * S))
    return pb, wall


def stamps(items):
    return [round((m.stamp_ns - T0) / S, 3) for m in items]


def test_messages_come_due_at_their_log_time_scaled_by_the_rate():
    pb, wall = playback(messages(0.0, 1.0, 1.5, 4.0), rate=2.0)
    assert stamps(pb.due()) == [0.0]
    assert pb.wait_s(10.0) == pytest.approx(0.5)           # 1 s of bag time at 2x
    wall.advance(0.49)
    assert pb.due() == []
    wall.advance(0.01)
    assert stamps(pb.due()) == [1.0]
    wall.advance(0.25)
    assert stamps(pb.due()) == [1.5]
    wall.advance(10)
    assert stamps(pb.due()) == [4.0]
    assert pb.published == 4 and pb.finished


def test_bag_time_is_held_at_the_start_until_playback_starts():
    wall = FakeWall()
    pb = Playback(Schedule(lambda: iter(messages(0.0, 1.0)), T0), PlaybackClock(T0, 2.0, now=wall), started=False)
    wall.advance(30)                                       # waiting for subscribers
    assert pb.due() == [] and pb.step() is None and pb.clock_ns() == T0 and not pb.finished
    pb.start()
    assert stamps(pb.due()) == [0.0] and pb.clock_ns() == T0
    wall.advance(0.5)
    assert stamps(pb.due()) == [1.0]


def test_start_offset_skips_earlier_messages_and_starts_the_clock_there():
    pb, wall = playback(messages(0.0, 1.0, 2.0, 3.0), start_s=1.5)
    assert pb.clock_ns() == T0 + int(1.5 * S)
    assert pb.due() == []
    wall.advance(0.5)
    assert stamps(pb.due()) == [2.0]
    wall.advance(1.0)
    assert stamps(pb.due()) == [3.0]


def test_pause_freezes_bag_time_and_resume_continues_from_there():
    pb, wall = playback(messages(0.0, 1.0, 2.0))
    pb.due()
    wall.advance(0.5)
    pb.clock.pause()
    wall.advance(100)
    assert pb.due() == [] and pb.clock_ns() == T0 + S // 2
    assert math.isinf(pb.clock.wall_until(T0 + S))
    pb.clock.resume()
    wall.advance(0.5)
    assert stamps(pb.due()) == [1.0]
    assert pb.clock_ns() == T0 + S


def test_step_publishes_one_message_and_moves_bag_time_to_it_only_while_paused():
    pb, wall = playback(messages(0.0, 1.0, 2.0, 7.0), paused=True)
    assert pb.due() == []
    assert pb.step().stamp_ns == T0
    wall.advance(30)                                       # time passes, nothing is due while paused
    assert pb.due() == []
    item = pb.step()
    assert item.stamp_ns == T0 + S and pb.clock_ns() == T0 + S
    pb.clock.resume()
    assert pb.step() is None                               # running: step does nothing
    wall.advance(1.0)
    assert stamps(pb.due()) == [2.0]
    pb.clock.pause()
    assert stamps([pb.step()]) == [7.0]
    assert pb.step() is None                               # nothing left


def test_loop_starts_bag_time_over_each_pass_and_clock_is_monotonic_within_a_pass():
    pb, wall = playback(messages(0.5, 1.0, 2.0), loop=True)
    seen, clocks = [], []
    for _ in range(70):                                    # 7 s of wall time in 0.1 s ticks
        seen += [(m.pass_no, round((m.stamp_ns - T0) / S, 3)) for m in pb.due()]
        clocks.append((pb.pass_no, pb.clock_ns()))
        wall.advance(0.1)
    assert seen[:6] == [(0, 0.5), (0, 1.0), (0, 2.0), (1, 0.5), (1, 1.0), (1, 2.0)]
    assert {p for p, _ in seen} >= {0, 1, 2}
    for p in {p for p, _ in clocks}:
        ticks = [c for q, c in clocks if q == p]
        assert ticks == sorted(ticks)
    assert not pb.finished


def test_an_empty_selection_does_not_loop_for_ever():
    pb, _ = playback([], loop=True, linger_s=0.0)
    assert pb.due() == [] and pb.finished


def test_linger_keeps_bag_time_running_after_the_last_message():
    pb, wall = playback(messages(0.0, 1.0), linger_s=2.0)
    pb.due()
    wall.advance(1.0)
    assert stamps(pb.due()) == [1.0]
    assert not pb.finished
    wall.advance(1.5)
    assert pb.clock_ns() == T0 + int(2.5 * S) and not pb.finished
    wall.advance(1.0)
    assert pb.finished and pb.clock_ns() == T0 + 3 * S     # /clock stops at the end of the linger


def test_infinite_rate_plays_everything_at_once_with_bag_time_following():
    pb, _ = playback(messages(0.0, 1.0, 5.0, 9.0), rate=math.inf, linger_s=1.0)
    first = pb.due(limit=2)
    assert stamps(first) == [0.0, 1.0] and pb.clock_ns() == T0 + S
    assert stamps(pb.due()) == [5.0, 9.0]
    pb.due()
    assert pb.finished and pb.clock_ns() == T0 + 10 * S


def test_rate_change_keeps_bag_time_continuous():
    wall = FakeWall()
    clock = PlaybackClock(T0, 1.0, now=wall)
    wall.advance(2)
    clock.set_rate(4.0)
    assert clock.bag_ns() == T0 + 2 * S
    wall.advance(1)
    assert clock.bag_ns() == T0 + 6 * S


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_a_bad_rate_is_one_clear_error(rate):
    with pytest.raises(StorefuseError, match="rate must be > 0"):
        PlaybackClock(T0, rate)


def test_default_exclusion_drops_the_graphs_own_outputs_unless_named():
    names = [topics.GATE_EVENTS, topics.RECEIPTS_FINAL, topics.RECEIPTS_LIVE, "/store/review/queue", "/clock",
             topics.camera_topic("cam0")]
    assert select_topics(names) == [topics.GATE_EVENTS, topics.camera_topic("cam0")]
    assert select_topics(names, include=[topics.RECEIPTS_FINAL]) == [topics.RECEIPTS_FINAL]
    assert select_topics(names, include=["/store/*"]) == [topics.GATE_EVENTS, topics.camera_topic("cam0")]
    assert select_topics(names, exclude=["/store/cameras/*"]) == [topics.GATE_EVENTS]
    assert select_topics(names, include=[topics.RECEIPTS_FINAL], exclude=[topics.RECEIPTS_FINAL]) == []
    assert select_topics(names, default_exclude=()) == names
    assert "/store/receipts/*" in DEFAULT_EXCLUDE


def test_qos_follows_the_recorded_offer_and_otherwise_the_storefuse_defaults():
    latched = {"history": "keep_last", "depth": 1, "reliability": "reliable", "durability": "transient_local"}
    best_effort = {"history": "keep_last", "depth": 5, "reliability": "best_effort", "durability": "volatile"}
    old_style = {"history": 1, "depth": 1, "reliability": 1, "durability": 1}     # metadata <= v8 numbers
    assert qos_for(BagTopic("/robot_description", "std_msgs/msg/String", 1, (latched,))).transient_local
    assert qos_for(BagTopic("/x", "std_msgs/msg/String", 1, (old_style,))).transient_local
    unknown_depth = dict(latched, depth=0, history="unknown")                  # what our recorder writes
    three_boards = qos_for(BagTopic(topics.SHELF_CONFIG, "std_msgs/msg/String", 3, (unknown_depth,)))
    assert three_boards.transient_local and three_boards.depth == 3              # a late joiner gets all 3
    assert qos_for(BagTopic("/robot_description", "std_msgs/msg/String", 1, (latched,))).depth == 1
    q = qos_for(BagTopic("/scan", "sensor_msgs/msg/LaserScan", 9, (best_effort,)))
    assert not q.reliable and not q.transient_local
    # no recorded offer (rosbags leaves it empty): storefuse's own publishers' QoS
    assert qos_for(BagTopic("/tf_static", "tf2_msgs/msg/TFMessage", 3, ())).transient_local
    durable = qos_for(BagTopic(topics.GATE_EVENTS, topics.TYPES[topics.GATE_EVENTS], 4, ()))
    assert durable.transient_local and durable.reliable and durable.depth == 100
    config = qos_for(BagTopic(topics.SHELF_CONFIG, "std_msgs/msg/String", 3, ()))
    assert config.transient_local and config.depth == 3        # one config per scale board
    weights = qos_for(BagTopic(topics.PLATE_WEIGHTS, topics.TYPES[topics.PLATE_WEIGHTS], 9, ()))
    assert weights.reliable and not weights.transient_local


def test_committed_bag_plays_its_inputs_in_log_order_without_receipts():
    info = bag_info(BAG)
    wall = FakeWall()
    pb, played = open_playback(BAG, rate=math.inf, now=wall)
    pb.start()
    names = {t.name for t in played}
    assert topics.GATE_EVENTS in names and topics.SHELF_EVENTS in names
    assert not any(n.startswith("/store/receipts/") for n in names)
    out = []
    while not pb.finished:
        out += pb.due()
    assert [m.stamp_ns for m in out] == sorted(m.stamp_ns for m in out)
    assert info.start_ns <= out[0].stamp_ns and out[-1].stamp_ns <= info.end_ns
    assert len(out) == sum(t.count for t in played)
    assert all(isinstance(m.raw, bytes) and m.raw[:2] == b"\x00\x01" for m in out)   # CDR little endian


def test_bad_start_offset_or_topic_is_one_clear_error(tmp_path):
    with pytest.raises(StorefuseError, match="outside the bag"):
        open_playback(BAG, start_s=1e6)
    with pytest.raises(StorefuseError, match="no recorded messages on /nope"):
        open_playback(BAG, include=["/nope"])
    with pytest.raises(StorefuseError, match="not a rosbag2 folder"):
        open_playback(tmp_path)


def test_wait_for_resolves_globs_and_the_receipt_preset():
    played = [topics.GATE_EVENTS, topics.GATE_WATERMARK, topics.SHELF_EVENTS, topics.SHELF_WATERMARK,
              topics.PLATE_WEIGHTS, topics.camera_topic("cam0"), topics.camera_topic("cam1")]
    receipt = resolve_wait(["receipt"], played)
    assert set(receipt) == set(played) - {topics.PLATE_WEIGHTS} | {"/clock"}
    assert resolve_wait(["/store/cameras/*"], played) == [topics.camera_topic("cam0"), topics.camera_topic("cam1")]
    assert resolve_wait(["receipt"], [topics.GATE_EVENTS]) == [topics.GATE_EVENTS, "/clock"]   # no cameras: fine
    with pytest.raises(StorefuseError, match="not a played topic"):
        resolve_wait(["/store/gates/event"], played)                                          # a typo


def test_the_bags_own_layout_is_saved_for_the_receipt_node(tmp_path):
    from storefuse_core.layout import load_store
    store = load_store(save_layout(BAG, tmp_path / "sub" / "layout.yaml"))
    recorded = sorted(t.name.split("/")[3] for t in bag_info(BAG).topics if t.name.endswith("/detections"))
    assert store.name == "minimart" and sorted(store.cameras) == recorded and recorded
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "metadata.yaml").write_text((BAG / "metadata.yaml").read_text().replace(
        "storefuse.layout:", "storefuse.other:"))
    with pytest.raises(StorefuseError, match="does not carry its store layout"):
        save_layout(tmp_path / "bare", tmp_path / "x.yaml")
