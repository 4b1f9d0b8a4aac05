"""shelf_scale: a scale board's serial stream -> calibrated PlateWeights + PICK/PUT ShelfEvents.

A lifecycle node: configure opens the port (and loads layout, calibration, detector), activate
publishes, deactivate stops publishing (frames read meanwhile are dropped), cleanup closes the port.
`autostart` (default true) configures and activates at start-up, for launchers without a lifecycle
manager; with autostart:=false drive it through ~/change_state.
"""
from __future__ import annotations

import json
from pathlib import Path

from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from storefuse_core import topics
from storefuse_core.calibration import load_calibration
from storefuse_core.convert import block_to_msg, shelf_event_to_msg, watermark_to_msg
from storefuse_core.errors import StorefuseError
from storefuse_core.layout import load_store
from storefuse_core.port import LinePort
from storefuse_core.scale import ScaleBoard
from storefuse_core.shelf import ShelfDetector, ShelfParams, config_json
from storefuse_interfaces.msg import PlateWeights, ShelfEvent, Watermark
from storefuse_nodes.common import (
    DURABLE_EVENTS_QOS,
    ERROR,
    EVENTS_QOS,
    MSG,
    OK,
    WARN,
    WEIGHTS_QOS,
    Diagnostics,
    SerialDriver,
    run,
)


class ShelfScaleNode(SerialDriver):
    def __init__(self):
        super().__init__("shelf_scale")
        for name, default in (("board_id", "scale_G1"), ("port", "/dev/ttyUSB0"), ("baudrate", 115200),
                              ("store", "minimart"), ("calibration_file", ""), ("block_samples", 6)):
            self.declare_parameter(name, default)
        for k, v in ShelfParams().__dict__.items():
            self.declare_parameter(f"detector.{k}", v)
        self.board_id = self.get_parameter("board_id").value
        self.autostart()

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        param = self.param
        try:
            self.board_id = param("board_id")
            store = load_store(param("store"))
            cal_file = param("calibration_file") or str(store.root / "calibration.yaml")
            self.params = ShelfParams.from_dict({k: param(f"detector.{k}") for k in ShelfParams().__dict__})
            self.board = ScaleBoard(self.board_id, store.board_plates(self.board_id),
                                    load_calibration(Path(cal_file)), param("block_samples"))
            self.detector = ShelfDetector(store, self.board_id, self.params)
        except StorefuseError as exc:
            self.error = str(exc)
            self.get_logger().error(f"cannot configure: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.frame_id = f"{self.board_id.removeprefix('scale_')}_link"
        self.weights_pub = self.create_lifecycle_publisher(PlateWeights, topics.relative(topics.PLATE_WEIGHTS),
                                                           WEIGHTS_QOS)
        self.events_pub = self.create_lifecycle_publisher(ShelfEvent, topics.relative(topics.SHELF_EVENTS),
                                                          DURABLE_EVENTS_QOS)
        self.wm_pub = self.create_lifecycle_publisher(Watermark, topics.relative(topics.SHELF_WATERMARK), EVENTS_QOS)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.config_pub = self.create_lifecycle_publisher(String, topics.relative(topics.SHELF_CONFIG), latched)
        self.lifecycle_pubs = [self.weights_pub, self.events_pub, self.wm_pub, self.config_pub]
        self.port = LinePort(param("port"), param("baudrate")).start()
        self.diag = Diagnostics(self, f"storefuse/shelf_scale/{self.board_id}", param("port"))
        self.last_error = ""
        self.timer = self.create_timer(0.02, self.poll)
        self.get_logger().info(f"{self.board_id}: {len(self.board.plate_ids)} plates, detector "
                               f"{json.dumps(self.params.__dict__)}")
        return super().on_configure(state)


    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.board.restart()                       # frames dropped while inactive are not a sequence gap
        ret = super().on_activate(state)           # enables the publishers
        self.config_pub.publish(String(data=config_json(self.board_id, self.params)))
        return ret

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        ret = super().on_deactivate(state)
        self.board.restart()                       # a half block is dropped: never published, never detected
        return ret





    def poll(self) -> None:
        published = False
        lines = self.drain()
        for line in lines:
            block = self.board.feed(line)
            if block is None:
                continue
            self.weights_pub.publish(block_to_msg(MSG, block, self.frame_id))
            for ev in self.detector.process(block):
                self.events_pub.publish(shelf_event_to_msg(MSG, ev))
                if ev.kind > 1:         # plate health (shelf.py): silent / live again
                    self.get_logger().info(f"{ev.event_id}: {', '.join(ev.plate_ids)} "
                                           f"{'silent' if ev.kind == 2 else 'live again'}")
                    continue
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
        message = "connected" if p.connected else (p.last_error or "not connected")
        self.diag.set(level, message if self.active else f"inactive; {message}",
                      connected=p.connected, frames=s.frames, bad_frames=s.bad_frames, seq_gaps=s.seq_gaps,
                      lost_samples=s.lost_samples, events=self.detector.events_emitted,
                      reopens=max(0, p.opens - 1), open_failures=p.open_failures, errors=s.errors,
                      active=self.active, discarded_lines=self.discarded)



def main(args=None):
    run(ShelfScaleNode, args)
