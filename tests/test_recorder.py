"""`storefuse record` against a separate publisher process: every message of every publisher is in
the bag, the recorder's own counts agree, the bag is split, compressed and carries offered QoS."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from storefuse_core import topics
from storefuse_core.bag import bag_files, custom_data
from storefuse_tools.loadgen import count_bag

from sftest import diagnostics_of

pytest_plugins = ["launch_fixture"]        # launch_domain: a domain leased for this pytest process
pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, launch_domain):
    """Three seconds of a grocery's traffic (4 boards, 6 cameras, events) recorded in 1 s files."""
    from launch_fixture import GraphClient
    from rclpy.qos import qos_profile_sensor_data
    from std_msgs.msg import String

    from storefuse_tools.paths import ros_env as make_env
    tmp = tmp_path_factory.mktemp("record")
    bag, counts = tmp / "bag", tmp / "published.json"
    env = make_env(launch_domain) | {"ROS_LOG_DIR": str(tmp / "roslog")}
    client = GraphClient(launch_domain)
    diag = diagnostics_of(client, "storefuse/recorder")
    extra = [client.node.create_publisher(String, "/store/x/notes", 10),
             client.node.create_publisher(String, "/store/x/probe", qos_profile_sensor_data)]
    rec = subprocess.Popen(["storefuse", "record", "--out", str(bag), "--store", "grocery", "--split-s", "1",
                            "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        # the generator waits until the recorder subscribes to each of its topics, then publishes
        gen = subprocess.run([sys.executable, "-m", "storefuse_tools.loadgen", "--store", "grocery", "--boards", "4",
                              "--cameras", "6", "--seconds", "3", "--json", str(counts)],
                             env=env, capture_output=True, text=True, timeout=120)
        assert gen.returncode == 0, gen.stderr
        published = json.loads(counts.read_text())
        assert published["unacked_topics"] == []
        # topics it was not told about: found in the graph and recorded too (best-effort ones included)
        client.wait_for(lambda: all(p.get_subscription_count() for p in extra), 30,
                        "the recorder to discover /store/x/*")
        for i in range(3):
            for p in extra:
                p.publish(String(data=f"note {i}"))
        client.wait_for(lambda: int(diag.get("messages", -1)) >= published["published"] + 6, 30,
                        "the recorder's diagnostics to count every published message")
    finally:
        client.close()
        if rec.poll() is None:
            os.killpg(rec.pid, signal.SIGINT)
        out, err = rec.communicate(timeout=60)
    assert rec.returncode == 0, err
    return bag, published, json.loads(out.strip().splitlines()[-1]), err


def test_every_message_of_every_publisher_is_recorded(recorded):
    bag, published, summary, _ = recorded
    per_stream = count_bag(bag, published)
    assert len(per_stream) == 4 * 2 + 1 + 6 + 1 + 4 + 1      # boards (+ watermarks), shelf events, cameras, ...
    for name, c in per_stream.items():
        assert (c["recorded"], c["missing"], c["duplicates"]) == (c["sent"], 0, 0), name
    assert summary["messages"] == published["published"] + 6 > 400
    assert summary["dropped"] == summary["missing_events"] == summary["missing_blocks"] == 0
    by_topic: dict[str, int] = {}
    for c, v in zip(per_stream.values(), published["streams"].values()):
        by_topic[v["topic"]] = by_topic.get(v["topic"], 0) + c["sent"]
    assert summary["topics"] == by_topic | {"/store/x/notes": 3, "/store/x/probe": 3}
    assert json.loads(custom_data(bag)["storefuse.recorder"])["messages"] == summary["messages"]


def test_bag_is_split_listed_and_carries_the_offered_qos(recorded):
    bag, published, summary, _ = recorded
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert len(meta["relative_file_paths"]) >= 3 and summary["files"] == meta["relative_file_paths"]
    assert [p.name for p in bag_files(bag)] == meta["relative_file_paths"]
    assert meta["message_count"] == summary["messages"]
    qos = {t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
           for t in meta["topics_with_message_count"]}
    assert [(q["reliability"], q["durability"]) for q in qos[topics.GATE_EVENTS]] == [("reliable", "transient_local")]
    assert [(q["reliability"], q["durability"]) for q in qos[topics.PLATE_WEIGHTS]] == [("reliable", "volatile")]
    assert qos[topics.RECEIPTS_FINAL] == []           # never published: listed, no QoS to tell
    assert [q["reliability"] for q in qos["/store/x/probe"]] == ["best_effort"]
    assert custom_data(bag)["storefuse.store"] == "grocery"
    from mcap.reader import make_reader
    for path in bag_files(bag):
        with open(path, "rb") as f:
            assert {c.compression for c in make_reader(f).get_summary().chunk_indexes} == {"zstd"}


def test_stock_rosbags_decodes_the_recording(recorded):
    bag, published, summary, _ = recorded
    counts: dict[str, int] = {}
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            counts[conn.topic] = counts.get(conn.topic, 0) + 1
            if conn.topic == topics.PLATE_WEIGHTS:
                assert msg.plate_count == 21 and len(msg.grams) == 21 * 6
    assert counts == summary["topics"]


def test_progress_shows_groups_rates_and_drops(recorded):
    *_, err = recorded
    assert "recording" in err and "0 dropped" in err
    for word in ("topics", "messages", "MB", "msg/s", "dropped", "shelves", "cameras", "gates"):
        assert word in err


@pytest.mark.parametrize("args, message", [
    (["--compression", "lz4"], "--compression must be zstd or none"),
    (["--topic", "/store/no/such/topic", "--duration", "1"], "unknown topic '/store/no/such/topic'"),
])
def test_bad_options_fail_with_one_clear_message(args, message, tmp_path, ros_env):
    proc = subprocess.run(["storefuse", "record", "--out", str(tmp_path / "bag"), *args], env=ros_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_an_existing_bag_is_never_overwritten(tmp_path, ros_env):
    (tmp_path / "bag").mkdir()
    proc = subprocess.run(["storefuse", "record", "--out", str(tmp_path / "bag")], env=ros_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "already exists" in proc.stderr
