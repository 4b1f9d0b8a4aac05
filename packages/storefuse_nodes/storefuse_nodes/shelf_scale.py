"""shelf_scale: a scale board's serial stream -> calibrated PlateWeights + PICK/PUT ShelfEvents."""
from __future__ import annotations

import json
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from storefuse_core import topics
from storefuse_core.calibration import load_calibration
from storefuse_core.convert import block_to_msg, shelf_event_to_msg, watermark_to_msg
from storefuse_core.layout import load_store
from storefuse_core.port import LinePort
from storefuse_core.scale import ScaleBoard
from storefuse_core.shelf import ShelfDetector, ShelfParams, config_json
from storefuse_interfaces.msg import PlateWeights, ShelfEvent, Watermark
from storefuse_nodes.common import DURABLE_EVENTS_QOS, ERROR, EVENTS_QOS, MSG, OK, WARN, WEIGHTS_QOS, Diagnostics, run


class ShelfScaleNode(Node):
    def __init__(self):
        super().__init__("shelf_scale")
        self.board_id = self.declare_parameter("board_id", "scale_G1").value
        port = self.declare_parameter("port", "/dev/ttyUSB0").value
        baud = self.declare_parameter("baudrate", 115200).value
        store = load_store(self.declare_parameter("store", "minimart").value)
        cal_file = self.declare_parameter("calibration_file", "").value or str(store.root / "calibration.yaml")
        block = self.declare_parameter("block_samples", 6).value
        params = ShelfParams.from_dict({k: self.declare_parameter(f"detector.{k}", v).value
                                        for k, v in ShelfParams().__dict__.items()})
        self.board = ScaleBoard(self.board_id, store.board_plates(self.board_id),
                                load_calibration(Path(cal_file)), block)
        self.detector = ShelfDetector(store, self.board_id, params)
        self.frame_id = f"{self.board_id.removeprefix('scale_')}_link"
        self.port = LinePort(port, baud).start()
        self.weights_pub = self.create_publisher(PlateWeights, topics.relative(topics.PLATE_WEIGHTS), WEIGHTS_QOS)
        self.events_pub = self.create_publisher(ShelfEvent, topics.relative(topics.SHELF_EVENTS), DURABLE_EVENTS_QOS)
        self.wm_pub = self.create_publisher(Watermark, topics.relative(topics.SHELF_WATERMARK), EVENTS_QOS)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.config_pub = self.create_publisher(String, topics.relative(topics.SHELF_CONFIG), latched)
        self.config_pub.publish(String(data=config_json(self.board_id, params)))
        self.diag = Diagnostics(self, f"storefuse/shelf_scale/{self.board_id}", port)
        self.last_error = ""
        self.get_logger().info(f"{self.board_id}: {len(self.board.plate_ids)} plates, detector "
                               f"{json.dumps(params.__dict__)}")
        self.create_timer(0.02, self.poll)

    def poll(self) -> None:
        published = False
        for line in self.port.drain():
            block = self.board.feed(line)
            if block is None:
                continue
            self.weights_pub.publish(block_to_msg(MSG, block, self.frame_id))
            for ev in self.detector.process(block):
                self.events_pub.publish(shelf_event_to_msg(MSG, ev))
                self.get_logger().info(f"{ev.event_id}: {'PICK' if ev.kind == 0 else 'PUT'} "
                                       f"{ev.delta_grams:+.1f} g, best {ev.candidates[:1]}")
            published = True
        if published:
            self.wm_pub.publish(watermark_to_msg(MSG, self.board_id, self.detector.watermark_ns(),
                                                  self.detector.events_emitted))
        s, p = self.board.stats, self.port.stats
        if s.last_error != self.last_error:
            self.get_logger().warn(f"dropped a bad frame from {self.port.url}: {s.last_error}")
            self.last_error = s.last_error
        level = OK if p.connected else ERROR
        if p.connected and (s.bad_frames or s.seq_gaps):
            level = WARN
        self.diag.set(level, "connected" if p.connected else (p.last_error or "not connected"),
                      connected=p.connected, frames=s.frames, bad_frames=s.bad_frames, seq_gaps=s.seq_gaps,
                      lost_samples=s.lost_samples, events=self.detector.events_emitted,
                      reopens=max(0, p.opens - 1), open_failures=p.open_failures, errors=s.errors)

    def close(self) -> None:
        self.port.stop()


def main(args=None):
    run(ShelfScaleNode, args)
