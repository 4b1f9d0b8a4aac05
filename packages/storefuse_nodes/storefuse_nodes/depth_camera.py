"""depth_camera: a ceiling depth camera's frames -> PersonDetections (heads above the floor).

Subscribes `cameras/<id>/depth/image_raw` (sensor_msgs/Image 16UC1 millimetres, 0 = no return; 32FC1
metres accepted too), runs DepthPersonDetector (points above the floor and outside the gondolas,
heads = local height maxima) and publishes one PersonDetections per frame on `cameras/<id>/detections`,
stamped with the frame's stamp. Depth detections carry no appearance descriptor (no colour).
"""
from __future__ import annotations

import time

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from storefuse_core import topics
from storefuse_core.convert import detections_to_msg, stamp_ns
from storefuse_core.errors import StorefuseError
from storefuse_core.vision.person import DepthParams, DepthPersonDetector
from storefuse_core.vision.video import decode_image, to_depth_mm
from storefuse_interfaces.msg import PersonDetections
from storefuse_nodes.camera import FrameStats, camera_of
from storefuse_nodes.common import EVENTS_QOS, MSG, OK, WARN, Diagnostics, run


class DepthCameraNode(Node):
    def __init__(self):
        super().__init__("depth_camera")
        store, self.cam = camera_of(self, "depth")
        params = DepthParams(**{k: type(v)(self.declare_parameter(f"detector.{k}", v).value)
                                for k, v in DepthParams().__dict__.items()})
        self.detector = DepthPersonDetector(self.cam, store, params)
        self.pub = self.create_publisher(PersonDetections, topics.relative(topics.camera_topic(self.cam.id)),
                                         EVENTS_QOS)
        topic = topics.relative(topics.camera_topic(self.cam.id, "depth/image_raw"))
        self.create_subscription(Image, topic, self.on_image, qos_profile_sensor_data)
        self.stats = FrameStats()
        self.diag = Diagnostics(self, f"storefuse/depth_camera/{self.cam.id}", topic)
        self.create_timer(1.0, self.status)
        self.get_logger().info(f"{self.cam.id}: {self.cam.width}x{self.cam.height} depth from {topic}")

    def on_image(self, msg: Image) -> None:
        t0 = time.monotonic()
        try:
            depth = to_depth_mm(decode_image(msg), msg.encoding)
        except StorefuseError as e:
            self.stats.error(self, f"dropped a frame: {e}")
            return
        if depth.shape != (self.cam.height, self.cam.width):
            self.stats.error(self, f"dropped a {depth.shape[1]}x{depth.shape[0]} frame: layout camera "
                                   f"{self.cam.id} is {self.cam.width}x{self.cam.height}")
            return
        stamp = stamp_ns(msg.header.stamp)
        dets = self.detector.detect(depth, stamp)
        self.pub.publish(detections_to_msg(MSG, self.cam.id, stamp, dets))
        self.stats.frame(len(dets), t0)

    def status(self) -> None:
        s = self.stats
        fields = s.fields()
        if not s.frames or time.monotonic() - s.last_wall > 3.0:
            self.diag.set(WARN, "waiting for frames" if not s.frames else "no frames for 3 s", **fields)
        else:
            self.diag.set(OK, f"{s.fps:.1f} fps, {s.last_count} people", **fields)


def main(args=None):
    run(DepthCameraNode, args)
