"""recorder: the live graph's storefuse topics, as received (CDR bytes), into a rosbag2 folder."""
from __future__ import annotations

import sys
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from storefuse_core import topics
from storefuse_core.bag import BagWriter
from storefuse_core.layout import load_store
from storefuse_core.shelf import ShelfParams
from storefuse_core.simulation.offline import bag_custom_data
from storefuse_nodes.common import OK, Diagnostics, run
from storefuse_nodes.msgtypes import message_class

RECORD_QOS = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


class RecorderNode(Node):
    def __init__(self):
        super().__init__("recorder")
        out = self.declare_parameter("out", "").value
        if not out:
            raise SystemExit("recorder: parameter 'out' (the bag folder to create) is required")
        store = load_store(self.declare_parameter("store", "minimart").value)
        scenario = self.declare_parameter("scenario", "").value
        known = dict(topics.TYPES)
        for cart in store.carts:
            known.update({topics.cart_topic(cart, leaf): t for leaf, t in topics.CART_TYPES.items()})
        for cam in store.cameras:        # detections always; frames only when asked for by name
            known[topics.camera_topic(cam)] = topics.DETECTIONS_TYPE
        default = list(known)
        for cam in store.cameras:
            known[topics.camera_topic(cam, "image/compressed")] = topics.IMAGE_TYPE
        wanted = list(self.declare_parameter("topics", default).value)
        text = Path(scenario).read_text() if scenario else ""
        self.bag = BagWriter(Path(out), bag_custom_data(store, ShelfParams(), text))
        self.closed = False
        for topic in wanted:
            msgtype = known.get(topic)
            if msgtype is None:
                raise SystemExit(f"recorder: unknown topic {topic!r} (known: {', '.join(known)})")
            self.bag.add_topic(topic, msgtype)
            qos = LATCHED_QOS if topic in topics.LATCHED else RECORD_QOS
            self.create_subscription(message_class(msgtype), topic, self._writer(topic), qos, raw=True)
        self.diag = Diagnostics(self, "storefuse/recorder", out)
        self.diag.set(OK, "recording", bag=out, topics=len(wanted))
        self.create_timer(1.0, self.report)
        self.get_logger().info(f"recording {len(wanted)} topics to {out}")

    def _writer(self, topic: str):
        def write(data: bytes) -> None:
            if not self.closed:
                self.bag.write_raw(topic, self.get_clock().now().nanoseconds, data)
        return write

    def report(self) -> None:
        self.diag.set(OK, "recording", messages=sum(self.bag.counts.values()))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bag.close()
            # the ROS context may already be shut down here (Ctrl-C): plain stderr, not rosout
            print(f"[recorder] bag closed: {sum(self.bag.counts.values())} messages", file=sys.stderr, flush=True)


def main(args=None):
    run(RecorderNode, args)
