"""store_sim: plays a scenario into pseudo-terminals in real time, as the store's devices would.

Waits until every driver reports its port connected (and fusion and the recorder are up) before
the scenario clock starts, so nothing a device says is lost to start-up order.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from storefuse_core import topics
from storefuse_core.calibration import load_calibration
from storefuse_core.convert import cart_message, detections_to_msg, image_to_msg, product_views_to_msg
from storefuse_core.simulation.cameras import CameraSim
from storefuse_core.simulation.devices import carts, devices
from storefuse_core.simulation.product_views import ProductViewSim
from storefuse_core.simulation.pty import PtyDevice
from storefuse_core.simulation.scenario import load_scenario
from storefuse_core.simulation.world import T0_NS, World
from storefuse_core.vision.video import image_fields
from storefuse_nodes.common import DURABLE_EVENTS_QOS, EVENTS_QOS, MSG, run
from storefuse_nodes.msgtypes import message_class

STATUS_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class StoreSimNode(Node):
    def __init__(self):
        super().__init__("store_sim")
        path = self.declare_parameter("scenario", "").value
        if not path:
            raise SystemExit("store_sim: parameter 'scenario' (a scenario YAML file) is required")
        dev_dir = Path(self.declare_parameter("dev_dir", "/tmp/storefuse/dev").value)
        out_dir = Path(self.declare_parameter("out_dir", "/tmp/storefuse").value)
        self.rate = float(self.declare_parameter("rate", 1.0).value)
        wait_recorder = self.declare_parameter("wait_for_recorder", True).value
        scenario = load_scenario(path)
        store = scenario.store
        self.world = World(scenario, load_calibration(store.root / "calibration.yaml"))
        gt = self.world.ground_truth()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "ground_truth.json").write_text(json.dumps(gt, indent=1))
        self.end_ns = T0_NS + int(gt["duration_s"] * 1e9)
        self.devices = devices(self.world)
        self.ptys = {dev: PtyDevice(dev, dev_dir) for dev in self.devices}
        # Smart carts are network devices: their computers publish ROS topics themselves.
        self.carts = carts(self.world)
        self.cart_pubs = {
            (c, leaf): self.create_publisher(message_class(t), topics.relative(topics.cart_topic(c, leaf)), EVENTS_QOS)
            for c in self.carts for leaf, t in topics.CART_TYPES.items()}
        # Cameras at the default fidelity: PersonDetections from the fitted detection model (the
        # camera nodes publish the same message from real frames); rendered frames only if asked.
        frames = self.declare_parameter("frames", False).value
        # camera_frames: what real cameras give instead (raw frames on cameras/<id>/image_raw at the
        # camera rate, no model detections): the camera nodes detect (sim.launch.yaml frames:=true).
        self.camera_frames = self.declare_parameter("camera_frames", False).value
        if self.camera_frames:
            self.cameras = CameraSim(self.world, frames=True, model=False, encode=False,
                                     frame_rate_hz=scenario.sensors["camera_rate_hz"])
        else:
            self.cameras = CameraSim(self.world, frames=frames)
        det_type, img_type = message_class(topics.DETECTIONS_TYPE), message_class(topics.IMAGE_TYPE)
        model_cams = [] if self.camera_frames else self.cameras.cameras
        self.det_pubs = {c: self.create_publisher(det_type, topics.relative(topics.camera_topic(c)), EVENTS_QOS)
                         for c in model_cams}
        self.img_pubs = {c: self.create_publisher(img_type, topics.relative(topics.camera_topic(c, "image/compressed")),
                                                  10) for c in self.cameras.renderers if not self.camera_frames}
        self.raw_pubs = {c: self.create_publisher(Image, topics.relative(topics.camera_topic(c, "image_raw")),
                                                  qos_profile_sensor_data)
                         for c in self.cameras.renderers if self.camera_frames}
        # Items seen in shoppers' hands: the camera hosts' product classifier (in every camera mode).
        self.views = ProductViewSim(self.world)
        self.names = {sku: p.name for sku, p in store.products.items()}
        view_type = message_class(topics.PRODUCTS_TYPE)
        self.view_pubs = {c: self.create_publisher(view_type, topics.relative(topics.camera_topic(c, "products")),
                                                   DURABLE_EVENTS_QOS) for c in self.views.cameras}
        self.waiting = {f"storefuse/gate_reader/{g}" for g in store.gates}
        self.waiting |= {f"storefuse/shelf_scale/{b}" for b in store.boards} | {"storefuse/receipt"}
        if wait_recorder:
            self.waiting.add("storefuse/recorder")
        self.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, 50)
        self.status_pub = self.create_publisher(String, topics.relative(topics.SIM_STATUS), STATUS_QOS)
        # /clock carries the scenario's device time, so tools and nodes run with use_sim_time follow
        # an accelerated run; the drivers themselves stamp from the frames either way.
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if self.declare_parameter(
            "publish_clock", True).value else None
        self.started: float | None = None
        self.done = False
        self.frames = 0
        self.publish_status("waiting", visits=len(gt["visits"]))
        self.get_logger().info(f"{len(self.ptys)} devices under {dev_dir}; waiting for {sorted(self.waiting)}")
        self.create_timer(0.01, self.tick)

    def on_diagnostics(self, msg) -> None:
        for s in msg.status:
            if s.name in self.waiting and s.level == DiagnosticStatus.OK:
                self.waiting.discard(s.name)

    def publish_status(self, state: str, **extra) -> None:
        self.status_pub.publish(String(data=json.dumps({"state": state, **extra})))

    def tick(self) -> None:
        if self.done:
            return
        if self.started is None:
            if self.waiting or any(p.get_subscription_count() == 0 for p in self.raw_pubs.values()):
                return          # (raw frames: until every camera node listens)
            self.started = time.monotonic()
            self.publish_status("running", rate=self.rate)
            self.get_logger().info(f"all devices connected: playing the scenario at {self.rate}x")
        sim_ns = T0_NS + int((time.monotonic() - self.started) * self.rate * 1e9)
        if self.clock_pub is not None:
            clock = Clock()
            clock.clock.sec, clock.clock.nanosec = divmod(min(sim_ns, self.end_ns), 1_000_000_000)
            self.clock_pub.publish(clock)
        batch = sorted((t, dev, frame) for dev, d in self.devices.items()
                       for t, frame in d.frames_until(min(sim_ns, self.end_ns)))
        for _, dev, frame in batch:
            self.ptys[dev].write(frame)
        for pty in self.ptys.values():
            pty.flush()
        for co in self.cameras.outputs_until(min(sim_ns, self.end_ns)):
            if co.image is not None:
                head = Header(stamp=Time(sec=co.t_ns // 1_000_000_000, nanosec=co.t_ns % 1_000_000_000),
                              frame_id=f"{co.camera_id}_optical_frame")
                self.raw_pubs[co.camera_id].publish(Image(header=head, **image_fields(co.image, "bgr8")))
            elif co.detections is not None:
                self.det_pubs[co.camera_id].publish(detections_to_msg(MSG, co.camera_id, co.t_ns, co.detections))
            else:
                self.img_pubs[co.camera_id].publish(image_to_msg(MSG, co.camera_id, co.t_ns, co.jpeg))
        for t_ns, cid, views in self.views.outputs_until(min(sim_ns, self.end_ns)):
            self.view_pubs[cid].publish(product_views_to_msg(MSG, cid, t_ns, views, self.names))
        for sim in self.carts.values():
            for cm in sim.messages_until(min(sim_ns, self.end_ns)):
                leaf, msg = cart_message(MSG, cm)
                self.cart_pubs[(cm.cart_id, leaf)].publish(msg)
        self.frames += len(batch)
        if sim_ns >= self.end_ns:
            self.done = True
            dropped = sum(p.dropped for p in self.ptys.values())
            self.publish_status("done", frames=self.frames, dropped=dropped)
            self.get_logger().info(f"scenario finished: {self.frames} frames written, {dropped} dropped")

    def close(self) -> None:
        for pty in self.ptys.values():
            pty.close()


def main(args=None):
    run(StoreSimNode, args)
