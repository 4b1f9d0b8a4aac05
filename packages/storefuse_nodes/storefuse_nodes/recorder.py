"""recorder: the live graph's storefuse topics, as received (CDR bytes), into a rosbag2 folder.

A topic enters the bag with its first message, with the QoS its publishers offer (as rosbag2's own
recorder does), so `ros2 bag play` republishes it the same way. Unless told which topics to record,
it also subscribes to any other topic under the store's namespace as it appears in the graph
(camera images excepted: frames are recorded only when asked for by name). Counts and known losses
(storefuse_core.recording) go to /diagnostics while recording and into the bag's custom data
(`storefuse.recorder`) at the end.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from storefuse_core import topics
from storefuse_core.bag import DEFAULT_COMPRESSION, BagWriter
from storefuse_core.layout import load_store
from storefuse_core.recording import RecordStats
from storefuse_core.shelf import ShelfParams
from storefuse_core.simulation.offline import bag_custom_data
from storefuse_nodes.common import OK, WARN, Diagnostics, run
from storefuse_nodes.msgtypes import message_class

RECORD_QOS = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
DRAIN = 200            # most messages of one topic taken in one callback (the others get their turn)
LATCHED_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


def known_topics(store) -> tuple[dict[str, str], list[str]]:
    """Every topic a store's graph may carry -> its type, and the ones recorded by default."""
    known = dict(topics.TYPES)
    for cart in store.carts:
        known.update({topics.cart_topic(cart, leaf): t for leaf, t in topics.CART_TYPES.items()})
    for cam in store.cameras:        # detections and product views always; frames only when asked for by name
        known[topics.camera_topic(cam)] = topics.DETECTIONS_TYPE
        known[topics.camera_topic(cam, "products")] = topics.PRODUCTS_TYPE
    default = list(known)
    for cam in store.cameras:
        known[topics.camera_topic(cam, "image/compressed")] = topics.IMAGE_TYPE
    return known, default


def offered_qos(infos) -> list:
    """rclpy's view of the publishers' QoS -> rosbags Qos profiles (distinct, in order)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    def t(d):
        return QosTime(*divmod(int(d.nanoseconds), 1_000_000_000))
    out = []
    for info in infos:
        q = info.qos_profile
        qos = Qos(QosHistory(int(q.history)), int(q.depth), QosReliability(int(q.reliability)),
                  QosDurability(int(q.durability)), t(q.deadline), t(q.lifespan), QosLiveliness(int(q.liveliness)),
                  t(q.liveliness_lease_duration), bool(q.avoid_ros_namespace_conventions))
        if qos not in out:
            out.append(qos)
    return out


class RecorderNode(Node):
    def __init__(self):
        super().__init__("recorder")
        out = self.declare_parameter("out", "").value
        if not out:
            raise SystemExit("recorder: parameter 'out' (the bag folder to create) is required")
        store = load_store(self.declare_parameter("store", "minimart").value)
        scenario = self.declare_parameter("scenario", "").value
        compression = self.declare_parameter("compression", DEFAULT_COMPRESSION or "none").value
        split_mb = float(self.declare_parameter("split_mb", 0.0).value)
        split_s = float(self.declare_parameter("split_s", 0.0).value)
        known, default = known_topics(store)
        wanted = list(self.declare_parameter("topics", default).value)
        unknown = [t for t in wanted if t not in known]
        if unknown:
            raise SystemExit(f"recorder: unknown topic {unknown[0]!r} (known: {', '.join(known)})")
        text = Path(scenario).read_text() if scenario else ""
        self.bag = BagWriter(Path(out), bag_custom_data(store, ShelfParams(), text),
                             compression="" if compression == "none" else compression,
                             split_bytes=int(split_mb * 1e6), split_s=split_s)
        self.types = {t: known[t] for t in wanted}
        self.stats = RecordStats()
        self.closed = False
        # log time: when DDS received the message (taking it may come later, in a burst), unless the
        # node runs on sim time
        self.receive_time = not self.get_parameter("use_sim_time").value
        self.subs = {}
        for topic in wanted:
            self._subscribe(topic, LATCHED_QOS if topic in topics.LATCHED else RECORD_QOS)
        self.discover = wanted == default
        self.skipped: set[str] = set()
        self.diag = Diagnostics(self, "storefuse/recorder", out)
        self.diag.set(OK, "recording", bag=out, topics=len(wanted))
        self.create_timer(1.0, self.report)
        self.get_logger().info(f"recording {len(wanted)} topics to {out}")

    def _subscribe(self, topic: str, qos: QoSProfile) -> None:
        events = SubscriptionEventCallbacks(message_lost=self._lost(topic))
        self.subs[topic] = self.create_subscription(message_class(self.types[topic]), topic, self._writer(topic), qos,
                                                    raw=True, event_callbacks=events)

    def _discover(self) -> None:
        """Topics under the namespace that appeared since (tailgating, cart poses, markers, ...), but
        not a node's own (<node>/transition_event and the like)."""
        nodes = {ns.rstrip("/") + "/" + n for n, ns in self.get_node_names_and_namespaces()}
        for name, types in self.get_topic_names_and_types():
            if name in self.subs or name in self.skipped or not name.startswith(topics.NS + "/") or "/image" in name:
                continue
            if name.rsplit("/", 1)[0] in nodes:
                continue
            if len(types) != 1 or types[0] not in self.bag.typestore.types:
                self.skipped.add(name)          # no definition to embed: cannot be decoded from the bag
                self.get_logger().warn(f"not recording {name}: type {types} unknown to the bag writer")
                continue
            infos = [i.qos_profile for i in self.get_publishers_info_by_topic(name)]
            if not infos:
                continue
            qos = LATCHED_QOS if all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in infos) else RECORD_QOS
            if any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in infos):    # else nothing would match
                qos = QoSProfile(depth=qos.depth, history=qos.history, reliability=ReliabilityPolicy.BEST_EFFORT,
                                 durability=qos.durability)
            self.types[name] = types[0]
            self._subscribe(name, qos)
            self.get_logger().info(f"recording {name} ({types[0]}) as well")

    def _writer(self, topic: str):
        def write(data: bytes, info: dict) -> None:
            self._record(topic, data, info)
            # rclpy takes one message per subscription per wait: take this topic's backlog now, or
            # a 500 msg/s topic among a hundred quiet ones overflows its queue
            sub = self.subs[topic]
            for _ in range(DRAIN):
                with sub.handle:
                    taken = sub.handle.take_message(sub.msg_type, sub.raw)
                if taken is None:
                    break
                self._record(topic, *taken)
        return write

    def _record(self, topic: str, data: bytes, info: dict) -> None:
        if self.closed:
            return
        if topic not in self.bag.topics:
            self.bag.add_topic(topic, self.types[topic], offered_qos(self.get_publishers_info_by_topic(topic)))
        stamp = info.get("received_timestamp") if self.receive_time else None
        self.bag.write_raw(topic, stamp or self.get_clock().now().nanoseconds, data)
        gid = info.get("publisher_gid") or {}
        self.stats.on_message(topic, data, time.monotonic(), gid.get("data", b""),
                              info.get("publication_sequence_number"))

    def _lost(self, topic: str):
        def lost(info) -> None:
            self.stats.on_lost(topic, int(info.total_count_change))
        return lost

    def report(self) -> None:
        if self.discover and not self.closed:
            self._discover()
        dropped = self.stats.dropped()
        self.diag.set(WARN if dropped else OK, f"recording; {dropped} messages lost" if dropped else "recording",
                      messages=sum(self.bag.counts.values()), mbytes=round(self.bag.bytes_written / 1e6, 3),
                      files=len(self.bag.files), dropped=dropped, unreadable=self.stats.unreadable)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for topic, msgtype in self.types.items():      # topics that never spoke are listed all the same
            self.bag.add_topic(topic, msgtype)
        summary = self.stats.summary()
        self.bag.set_custom_data("storefuse.recorder", json.dumps(summary, sort_keys=True))
        self.bag.close()
        # the ROS context may already be shut down here (Ctrl-C): plain stderr, not rosout
        print(f"[recorder] bag closed: {summary['messages']} messages in {len(self.bag.files)} file(s), "
              f"{summary['dropped']} dropped", file=sys.stderr, flush=True)


def main(args=None):
    run(RecorderNode, args)
