"""camera: an RGB ceiling camera's frames -> PersonDetections (cameras publish detections, not pictures).

Frames come from `cameras/<id>/image_raw` (sensor_msgs/Image bgr8/rgb8/mono8, source:=topic) or
from a video file / V4L2 device (source:=path or index, paced at rate_hz, stamped from the frame
index and start_stamp_ns). Every frame gives one PersonDetections message stamped with the frame's
sensor time (empty when nobody is seen: that too is evidence). Frames are never stored; an opt-in
debug JPEG with the detections drawn goes to `cameras/<id>/debug/compressed` at a reduced rate.
"""
from __future__ import annotations

import time

import cv2
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from storefuse_core import topics
from storefuse_core.convert import detections_to_msg, image_to_msg, stamp_ns
from storefuse_core.errors import StorefuseError
from storefuse_core.layout import load_store
from storefuse_core.vision.camera import cameras_of
from storefuse_core.vision.person import DetectorParams, PersonDetector, draw_detections
from storefuse_core.vision.video import VideoSource, decode_image, to_bgr
from storefuse_interfaces.msg import PersonDetections
from storefuse_nodes.common import ERROR, EVENTS_QOS, MSG, OK, WARN, Diagnostics, run


def camera_of(node: Node, kind: str):
    """The layout camera named by the camera_id/store parameters (exits with one clear line if absent)."""
    cam_id = node.declare_parameter("camera_id", "cam0").value
    store = load_store(node.declare_parameter("store", "minimart").value)
    cams = cameras_of(store)
    if cam_id not in cams or cams[cam_id].kind != kind:
        have = ", ".join(c for c, v in cams.items() if v.kind == kind) or "none"
        raise SystemExit(f"{node.get_name()}: store {store.name!r} has no {kind} camera {cam_id!r} (has: {have})")
    return store, cams[cam_id]


class FrameStats:
    """Counters every camera node reports on /diagnostics (fps and processing time over wall time)."""

    def __init__(self):
        self.frames = self.detections = self.last_count = self.errors = 0
        self.last_error, self.proc_s, self.last_wall = "", 0.0, 0.0
        self._mark = (time.monotonic(), 0)
        self.fps = 0.0

    def frame(self, n: int, t0: float) -> None:
        self.frames += 1
        self.detections += n
        self.last_count = n
        self.last_wall = time.monotonic()
        self.proc_s += 0.05 * ((self.last_wall - t0) - self.proc_s)

    def error(self, node: Node, msg: str) -> None:
        self.errors += 1
        if msg != self.last_error:
            node.get_logger().warn(msg)
        self.last_error = msg

    def fields(self) -> dict:
        now = time.monotonic()
        t, n = self._mark
        if now - t >= 0.5:
            self.fps, self._mark = (self.frames - n) / (now - t), (now, self.frames)
        return dict(frames=self.frames, detections=self.detections, last_count=self.last_count,
                    fps=f"{self.fps:.1f}", proc_ms=f"{1000 * self.proc_s:.1f}", errors=self.errors,
                    last_error=self.last_error)


class CameraNode(Node):
    def __init__(self):
        super().__init__("camera")
        _, self.cam = camera_of(self, "rgb")
        cid = self.cam.id
        self.source = str(self.declare_parameter("source", "topic").value)
        self.rate_hz = float(self.declare_parameter("rate_hz", 0.0).value)      # 0: the video's own rate
        self.start_ns = int(self.declare_parameter("start_stamp_ns", -1).value)  # -1: 0 (file) / open time (device)
        self.loop = bool(self.declare_parameter("loop", False).value)
        # a file source starts once this many subscribers listen (replays, tests: no frame lost to discovery)
        self.wait_subs = int(self.declare_parameter("wait_for_subscribers", 0).value)
        self.debug = bool(self.declare_parameter("publish_debug", False).value)
        self.debug_period_ns = int(1e9 / max(1e-3, float(self.declare_parameter("debug_rate_hz", 2.0).value)))
        self.jpeg_quality = int(self.declare_parameter("jpeg_quality", 75).value)
        params = DetectorParams(**{k: type(v)(self.declare_parameter(f"detector.{k}", v).value)
                                   for k, v in DetectorParams().__dict__.items()})
        self.detector = PersonDetector(self.cam, params)
        self.pub = self.create_publisher(PersonDetections, topics.relative(topics.camera_topic(cid)), EVENTS_QOS)
        self.debug_pub = self.create_publisher(CompressedImage, topics.relative(
            topics.camera_topic(cid, "debug/compressed")), 5) if self.debug else None
        self.stats, self.last_debug_ns, self.ended = FrameStats(), None, False
        self.diag = Diagnostics(self, f"storefuse/camera/{cid}", self.source)
        self.video = self.frame_timer = None
        if self.source == "topic":
            self.image_topic = topics.relative(topics.camera_topic(cid, "image_raw"))
            self.create_subscription(Image, self.image_topic, self.on_image, qos_profile_sensor_data)
        else:
            self.backoff_s, self.next_try, self.reopens = 0.5, 0.0, 0
            self.open_timer = self.create_timer(0.1, self.try_open)
        self.create_timer(1.0, self.status)
        self.get_logger().info(f"{cid}: {self.cam.width}x{self.cam.height} from {self.source}, debug images "
                               f"{'on' if self.debug else 'off'}")

    # --- sources -----------------------------------------------------------------------------------
    def on_image(self, msg: Image) -> None:
        try:
            img = to_bgr(decode_image(msg), msg.encoding)
        except StorefuseError as e:
            self.stats.error(self, f"dropped a frame: {e}")
            return
        self.process(img, stamp_ns(msg.header.stamp))

    def try_open(self) -> None:
        if time.monotonic() < self.next_try or self.pub.get_subscription_count() < self.wait_subs:
            return
        self.video = VideoSource(self.source, self.start_ns if self.start_ns >= 0 else None, loop=self.loop)
        try:
            self.video.open()
        except StorefuseError as e:
            self.stats.error(self, str(e))
            self.next_try, self.backoff_s = time.monotonic() + self.backoff_s, min(10.0, 2 * self.backoff_s)
            return
        self.open_timer.cancel()
        self.backoff_s = 0.5
        if self.video.is_device:        # a reopened device continues from its own open time, never backwards
            self.start_ns = -1
        self.get_logger().info(f"opened {self.source}: {self.video.width}x{self.video.height} at "
                               f"{self.video.fps:g} fps, first stamp {self.video.start_stamp_ns}")
        self.frame_timer = self.create_timer(1.0 / (self.rate_hz if self.rate_hz > 0 else self.video.fps),
                                             self.next_frame)

    def next_frame(self) -> None:
        frame = self.video.read()
        if frame is not None:
            self.process(frame.image, frame.stamp_ns)
            return
        self.destroy_timer(self.frame_timer)
        self.video.close()
        if self.video.is_device:                  # a device that stopped delivering: reopen it
            self.stats.error(self, f"camera device {self.source} stopped delivering frames; reopening")
            self.reopens += 1
            self.open_timer.reset()
        else:
            self.ended = True
            self.get_logger().info(f"end of {self.source} after {self.stats.frames} frames")

    # --- per frame ---------------------------------------------------------------------------------
    def process(self, img, stamp: int) -> None:
        t0 = time.monotonic()
        if img.shape[:2] != (self.cam.height, self.cam.width):
            self.stats.error(self, f"dropped a {img.shape[1]}x{img.shape[0]} frame: layout camera {self.cam.id} "
                                   f"is {self.cam.width}x{self.cam.height}")
            return
        dets = self.detector.detect(img, stamp)
        self.pub.publish(detections_to_msg(MSG, self.cam.id, stamp, dets))
        if self.debug_pub is not None and (self.last_debug_ns is None or
                                           stamp - self.last_debug_ns >= self.debug_period_ns):
            ok, jpg = cv2.imencode(".jpg", draw_detections(img, dets, self.cam),
                                   [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if ok:
                self.debug_pub.publish(image_to_msg(MSG, self.cam.id, stamp, jpg.tobytes()))
                self.last_debug_ns = stamp
        self.stats.frame(len(dets), t0)

    def status(self) -> None:
        s = self.stats
        fields = s.fields()
        if self.source != "topic":
            fields.update(opened=self.video is not None and self.video.is_open, ended=self.ended,
                          reopens=self.reopens)
        if self.source != "topic" and self.video is None:
            level, msg = WARN, f"waiting for {self.wait_subs} subscriber(s)" if self.wait_subs else "opening"
        elif self.source != "topic" and not (self.video.is_open or self.ended):
            level, msg = ERROR, s.last_error or "opening"
        elif self.ended:
            level, msg = WARN, f"end of video after {s.frames} frames"
        elif not s.frames or time.monotonic() - s.last_wall > 3.0:
            level, msg = WARN, "waiting for frames" if not s.frames else "no frames for 3 s"
        else:
            level, msg = OK, f"{s.fps:.1f} fps, {s.last_count} people" + ("" if self.detector.warm else ", warming up")
        self.diag.set(level, msg, **fields)

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


def main(args=None):
    run(CameraNode, args)
