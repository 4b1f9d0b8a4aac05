"""gate_reader: a gate's serial reader -> anonymous GateEvents (token hashed before it leaves)."""
from __future__ import annotations

from rclpy.node import Node

from storefuse_core import topics
from storefuse_core.convert import gate_event_to_msg, watermark_to_msg
from storefuse_core.gate import GateReader
from storefuse_core.layout import load_store
from storefuse_core.port import LinePort
from storefuse_interfaces.msg import GateEvent, Watermark
from storefuse_nodes.common import DURABLE_EVENTS_QOS, ERROR, EVENTS_QOS, MSG, OK, WARN, Diagnostics, run


class GateReaderNode(Node):
    def __init__(self):
        super().__init__("gate_reader")
        self.gate_id = self.declare_parameter("gate_id", "gate_entry_1").value
        port = self.declare_parameter("port", "/dev/ttyUSB0").value
        baud = self.declare_parameter("baudrate", 115200).value
        debounce = self.declare_parameter("debounce_s", 2.0).value
        store = load_store(self.declare_parameter("store", "minimart").value)
        if self.gate_id not in store.gates:
            raise SystemExit(f"gate_reader: store {store.name!r} has no gate {self.gate_id!r}")
        self.reader = GateReader(self.gate_id, store.token_secret(), debounce)
        self.port = LinePort(port, baud).start()
        self.pub = self.create_publisher(GateEvent, topics.relative(topics.GATE_EVENTS), DURABLE_EVENTS_QOS)
        self.wm_pub = self.create_publisher(Watermark, topics.relative(topics.GATE_WATERMARK), EVENTS_QOS)
        self.diag = Diagnostics(self, f"storefuse/gate_reader/{self.gate_id}", port)
        self.last_error = ""
        self.create_timer(0.02, self.poll)

    def poll(self) -> None:
        lines = self.port.drain()
        for line in lines:
            ev = self.reader.feed(line)
            if ev is not None:
                self.pub.publish(gate_event_to_msg(MSG, ev))
        if lines:
            self.wm_pub.publish(watermark_to_msg(MSG, self.gate_id, self.reader.watermark_ns,
                                                  self.reader.events_out))
        s, p = self.reader.stats, self.port.stats
        if s.last_error != self.last_error:
            self.get_logger().warn(f"dropped a bad frame from {self.port.url}: {s.last_error}")
            self.last_error = s.last_error
        level = OK if p.connected else ERROR
        if p.connected and s.bad_frames:
            level = WARN
        self.diag.set(level, "connected" if p.connected else (p.last_error or "not connected"),
                      connected=p.connected, frames=s.frames, bad_frames=s.bad_frames, duplicates=s.duplicates,
                      seq_gaps=s.seq_gaps, reopens=max(0, p.opens - 1), open_failures=p.open_failures,
                      errors=s.errors)

    def close(self) -> None:
        self.port.stop()


def main(args=None):
    run(GateReaderNode, args)
