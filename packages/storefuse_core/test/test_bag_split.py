"""Bags split into several MCAP files, zstd chunks, offered QoS: what every reader sees."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.typesys import Stores, get_typestore

from storefuse_core import topics
from storefuse_core.bag import BagWriter, bag_files, copy_bag, custom_data, make_typestore, read_bag
from storefuse_core.convert import block_to_msg, gate_event_to_msg, rosbags_factory
from storefuse_core.errors import StorefuseError
from storefuse_core.events import GateEvent, PlateBlock

T = 1_767_225_600_000_000_000
INF = QosTime(9223372036, 854775807)
LATCHED = Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, INF, INF,
              QosLiveliness.AUTOMATIC, INF, False)


@pytest.fixture(scope="module")
def typestore():
    return make_typestore()


def write_sample(path, typestore, n=600, order=None, **kw):
    """n plate blocks (noisy: ~1 kB each) and a gate event every 50, 100 ms apart in log time."""
    rng = np.random.default_rng(3)
    f = rosbags_factory(typestore)
    with BagWriter(path, {"storefuse.store": "minimart"}, typestore, **kw) as bag:
        bag.add_topic(topics.GATE_EVENTS, topics.TYPES[topics.GATE_EVENTS], [LATCHED])
        for i in (order if order is not None else range(n)):
            t = T + i * 100_000_000
            block = PlateBlock("scale_G1", i * 6, t + np.arange(6, dtype=np.int64) * 16_666_667,
                               rng.normal(300, 0.7, (6, 16)).astype(np.float32), np.zeros(16, np.uint8))
            bag.write(topics.PLATE_WEIGHTS, topics.TYPES[topics.PLATE_WEIGHTS], t, block_to_msg(f, block, "G1_link"))
            if i % 50 == 0:
                ev = GateEvent(t, "gate_entry_1", 0, f"s-{i}", "a" * 32, 1, False, i)
                bag.write(topics.GATE_EVENTS, topics.TYPES[topics.GATE_EVENTS], t, gate_event_to_msg(f, ev))
    return bag


def metadata(path):
    return yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]


def test_split_by_size_lists_every_file_in_metadata(tmp_path, typestore):
    bag = write_sample(tmp_path / "split", typestore, split_bytes=150_000, compression="")
    meta = metadata(tmp_path / "split")
    names = [f"split_{i}.mcap" for i in range(len(bag.files))]
    assert len(names) >= 3
    assert meta["relative_file_paths"] == names == [e["path"] for e in meta["files"]]
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == sorted(names + ["metadata.yaml"])
    assert sum(e["message_count"] for e in meta["files"]) == meta["message_count"] == 612
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]}
    assert counts == {topics.GATE_EVENTS: 12, topics.PLATE_WEIGHTS: 600}
    starts = [e["starting_time"]["nanoseconds_since_epoch"] for e in meta["files"]]
    assert starts == sorted(starts) and starts[0] == meta["starting_time"]["nanoseconds_since_epoch"] == T
    assert meta["duration"]["nanoseconds"] == 599 * 100_000_000
    for f in bag_files(tmp_path / "split")[:-1]:       # each closed once past the size (uncompressed)
        assert 150_000 <= f.stat().st_size < 150_000 + 70_000
    assert custom_data(tmp_path / "split") == {"storefuse.store": "minimart"}


def test_split_by_duration(tmp_path, typestore):
    write_sample(tmp_path / "d", typestore, split_s=10.0)
    meta = metadata(tmp_path / "d")
    assert len(meta["files"]) == 6                    # 60 s of log time, a file per 10 s
    for e in meta["files"]:
        assert e["duration"]["nanoseconds"] < 10_000_000_000 and e["message_count"] >= 100


def test_split_and_compressed_bags_read_like_one_file(tmp_path, typestore):
    write_sample(tmp_path / "one", typestore, compression="")
    write_sample(tmp_path / "many", typestore, split_bytes=100_000, compression="zstd")
    one = [(m.topic, m.log_ns, m.raw) for m in read_bag(tmp_path / "one", decode=False)]
    many = [(m.topic, m.log_ns, m.raw) for m in read_bag(tmp_path / "many", decode=False)]
    assert len(bag_files(tmp_path / "many")) >= 2
    assert many == one and len(one) == 612
    size = sum(f.stat().st_size for f in bag_files(tmp_path / "many"))
    assert size < 0.9 * (tmp_path / "one" / "one.mcap").stat().st_size     # zstd pays even on noisy floats


def test_stock_rosbags_reads_a_split_bag_with_embedded_definitions(tmp_path, typestore):
    write_sample(tmp_path / "s", typestore, split_bytes=100_000)
    seen = {}
    with AnyReader([tmp_path / "s"], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            seen[conn.topic] = seen.get(conn.topic, 0) + 1
            if conn.topic == topics.GATE_EVENTS:
                assert msg.gate_id == "gate_entry_1" and conn.ext.offered_qos_profiles == [LATCHED]
    assert seen == {topics.GATE_EVENTS: 12, topics.PLATE_WEIGHTS: 600}


def test_mcap_files_are_zstd_chunked_with_ros2msg_schemas(tmp_path, typestore):
    """What Foxglove reads: the official mcap reader, chunk compression and schemas per file."""
    from mcap.reader import make_reader
    write_sample(tmp_path / "z", typestore, split_bytes=100_000)
    for path in bag_files(tmp_path / "z"):
        with open(path, "rb") as f:
            reader = make_reader(f)
            summary = reader.get_summary()
            assert {c.compression for c in summary.chunk_indexes} == {"zstd"}
            schemas = {s.name: s for s in summary.schemas.values()}
            assert schemas[topics.TYPES[topics.PLATE_WEIGHTS]].encoding == "ros2msg"
            assert b"float32[] grams" in schemas[topics.TYPES[topics.PLATE_WEIGHTS]].data
            n = sum(1 for _ in reader.iter_messages())
            assert n == summary.statistics.message_count > 0


def test_files_written_out_of_log_time_order_merge_back(tmp_path, typestore):
    """The offline simulator writes a second at a time, cameras before plates: a file may end
    after the next one starts. read_bag still gives the unsplit order."""
    order = [i for k in range(0, 600, 40) for i in sorted(range(k, min(k + 40, 600)), key=lambda j: (j % 2, j))]
    write_sample(tmp_path / "a", typestore, order=order)
    write_sample(tmp_path / "b", typestore, order=order, split_bytes=60_000, compression="")
    a = [(m.topic, m.log_ns) for m in read_bag(tmp_path / "a", decode=False)]
    b = [(m.topic, m.log_ns) for m in read_bag(tmp_path / "b", decode=False)]
    assert len(bag_files(tmp_path / "b")) >= 5
    assert b == a and [t for _, t in a] == sorted(t for _, t in a)


def test_copy_keeps_bytes_qos_and_custom_data(tmp_path, typestore):
    write_sample(tmp_path / "src", typestore, compression="")
    counts = copy_bag(tmp_path / "src", tmp_path / "dst", split_bytes=200_000)
    assert counts == {topics.GATE_EVENTS: 12, topics.PLATE_WEIGHTS: 600}
    assert [m.raw for m in read_bag(tmp_path / "dst", decode=False)] == \
        [m.raw for m in read_bag(tmp_path / "src", decode=False)]
    qos = {t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
           for t in metadata(tmp_path / "dst")["topics_with_message_count"]}
    assert qos[topics.GATE_EVENTS][0]["durability"] == "transient_local" and qos[topics.PLATE_WEIGHTS] == []
    assert custom_data(tmp_path / "dst") == custom_data(tmp_path / "src")


def test_a_topic_keeps_its_first_type_and_bad_options_fail(tmp_path, typestore):
    with BagWriter(tmp_path / "t", typestore=typestore) as bag:
        bag.add_topic("/x", "std_msgs/msg/String")
        bag.add_topic("/x", "std_msgs/msg/String")
        with pytest.raises(StorefuseError, match="cannot also be"):
            bag.add_topic("/x", "std_msgs/msg/Header")
    with pytest.raises(StorefuseError, match="unknown bag compression"):
        BagWriter(tmp_path / "c", typestore=typestore, compression="lz4")


def test_a_missing_file_of_a_split_bag_is_one_clear_error(tmp_path, typestore):
    write_sample(tmp_path / "s", typestore, split_bytes=100_000)
    bag_files(tmp_path / "s")[1].unlink()
    with pytest.raises(StorefuseError, match="cannot read bag"):
        list(read_bag(tmp_path / "s"))
