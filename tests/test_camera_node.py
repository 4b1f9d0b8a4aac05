"""Camera nodes as real processes: rendered frames in (sensor_msgs/Image or a video file), PersonDetections
out, stamped with the frame's own stamp, where the rendered shopper stands."""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from storefuse_core import topics
from storefuse_core.convert import stamp_ns
from storefuse_core.layout import load_store
from storefuse_core.vision import Person
from storefuse_core.vision.camera import cameras_of
from storefuse_core.vision.person import PersonDetector
from storefuse_core.vision.render import CameraRenderer, Lighting
from storefuse_core.vision.video import image_fields
from storefuse_interfaces.msg import PersonDetections
from storefuse_nodes.common import EVENTS_QOS

from sftest import ROOT, diagnostics_of, node_exe

cv2 = pytest.importorskip("cv2")
pytestmark = pytest.mark.system
T0 = 1_767_225_600_000_000_000
FRAME_NS = 100_000_000
SHOPPER = Person("alice", 0.0, 0.0, 0.4, 1.72, (40, 40, 200), (90, 60, 40))



def _walk(n_empty: int, n_person: int) -> list[tuple[float, float] | None]:
    """Where the shopper stands in each frame (None: the store is empty): across cam0's view."""
    return [None] * n_empty + [(1.9 + 2.2 * k / (n_person - 1), 3.2 + 1.0 * k / (n_person - 1))
                               for k in range(n_person)]


def _frames(renderer, walk):
    return [renderer.render([] if xy is None else [replace(SHOPPER, x=xy[0], y=xy[1])], 0.1 * k)
            for k, xy in enumerate(walk)]


def _image_msg(img: np.ndarray, encoding: str, stamp: int) -> Image:
    header = Header(stamp=Time(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000),
                    frame_id="cam0_optical_frame")
    return Image(header=header, **image_fields(img, encoding))


def _send(client, pub, msg, answers: dict, stamp: int, timeout: float = 30.0, resend_s: float = 5.0) -> None:
    """Publish one frame and spin until the node's answer for its stamp arrives (lock-step). A frame
    lost on the way is sent again: right after the publisher matched, the node's side of the match
    may lag and best-effort samples are dropped until it completes."""
    pub.publish(msg)
    start = last = time.monotonic()
    while stamp not in answers:
        now = time.monotonic()
        if now - start > timeout:
            raise AssertionError(f"no PersonDetections for stamp {stamp} after {timeout:.0f} s")
        if now - last > resend_s:
            pub.publish(msg)
            last = now
        client.executor.spin_once(timeout_sec=0.02)


def _nearest(msg, xy) -> float:
    return min((float(np.hypot(d.position.x - xy[0], d.position.y - xy[1])) for d in msg.detections), default=np.inf)


def test_camera_node_turns_image_topics_into_detections(tmp_path, processes, ros_client):
    store = load_store("minimart")
    cam = cameras_of(store)["cam0"]
    walk = _walk(10, 20)
    frames = _frames(CameraRenderer(store, cam, seed=11, lighting=Lighting(seed=11)), walk)
    proc = processes.start([node_exe("storefuse_nodes", "camera"), "--ros-args", "-r", "__ns:=/store",
                            "-p", "camera_id:=cam0", "-p", "store:=minimart", "-p", "publish_debug:=true",
                            "-p", "debug_rate_hz:=5.0"], tmp_path / "camera.log")
    answers, debug = {}, []
    det_topic = topics.camera_topic("cam0")
    sub = ros_client.node.create_subscription(PersonDetections, det_topic,
                                              lambda m: answers.setdefault(stamp_ns(m.header.stamp), m), EVENTS_QOS)
    ros_client.node.create_subscription(CompressedImage, topics.camera_topic("cam0", "debug/compressed"),
                                        debug.append, 10)
    diag = diagnostics_of(ros_client, "storefuse/camera/cam0")
    pub = ros_client.node.create_publisher(Image, topics.camera_topic("cam0", "image_raw"), qos_profile_sensor_data)
    ros_client.wait_for(lambda: pub.get_subscription_count() >= 1 and sub.get_publisher_count() >= 1,
                        60, "the camera node to subscribe to image_raw and publish detections")
    for k, img in enumerate(frames):                # bgr8 and rgb8 frames alternate
        enc = "bgr8" if k % 2 == 0 else "rgb8"
        stamp = T0 + k * FRAME_NS
        _send(ros_client, pub, _image_msg(img if enc == "bgr8" else img[:, :, ::-1], enc, stamp), answers, stamp,
              resend_s=0.5 if k == 0 else 5.0)
    ros_client.wait_for(lambda: int(diag.get("frames", 0)) >= len(frames), 10, "frames counted in diagnostics")
    exact = diag["frames"] == str(len(frames))      # no frame was processed twice (a resent one arriving late)
    reference = PersonDetector(cam)                 # the same detector in this process, same frames
    for k, (img, xy) in enumerate(zip(frames, walk)):
        stamp = T0 + k * FRAME_NS
        msg, ref = answers[stamp], reference.detect(img, stamp)
        assert stamp_ns(msg.header.stamp) == stamp and msg.header.frame_id == "map" and msg.camera_id == "cam0"
        if xy is None:
            assert len(msg.detections) == 0, k
            continue
        assert _nearest(msg, xy) < 0.5, (k, xy, [(d.position.x, d.position.y) for d in msg.detections])
        d = msg.detections[0]
        assert len(d.covariance) == 9 and 0 < d.score <= 1 and len(d.appearance) == 56
        if exact:                                   # then bit for bit what the detector gives in-process
            got = [v for d in msg.detections for v in (d.position.x, d.position.y)]
            assert got == pytest.approx([v for r in ref for v in (r.x, r.y)], abs=1e-9)
    # opt-in debug pictures: JPEG, stamped like the frame they show, at a reduced rate
    ros_client.wait_for(lambda: len(debug) >= 2, 10, "debug images")
    assert len(debug) < len(frames)
    assert {stamp_ns(m.header.stamp) for m in debug} <= set(answers) and debug[0].format == "jpeg"
    assert cv2.imdecode(np.frombuffer(bytes(debug[-1].data), np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)
    assert diag["errors"] == "0" and int(diag["detections"]) >= 20
    # a frame in an encoding the node does not take is counted and dropped; the node keeps running
    pub.publish(_image_msg(np.zeros((480, 320, 2), np.uint8), "yuv422", T0 + 99 * FRAME_NS))
    ros_client.wait_for(lambda: diag.get("errors") == "1", 20, "the bad frame counted")
    assert "yuv422" in diag["last_error"] and proc.poll() is None
    wrong_size = _image_msg(np.zeros((240, 320, 3), np.uint8), "bgr8", T0 + 98 * FRAME_NS)
    pub.publish(wrong_size)
    ros_client.wait_for(lambda: diag.get("errors") == "2", 20, "the wrong-sized frame counted")
    assert "320x240" in diag["last_error"] and T0 + 98 * FRAME_NS not in answers


def test_camera_node_reads_a_video_file_with_stamps_from_the_frame_index(tmp_path, processes, ros_client):
    store = load_store("minimart")
    cam = cameras_of(store)["cam0"]
    walk = _walk(10, 10)
    path = tmp_path / "shop.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (cam.width, cam.height))
    for img in _frames(CameraRenderer(store, cam, seed=4), walk):
        writer.write(img)
    writer.release()
    answers = []
    ros_client.node.create_subscription(PersonDetections, topics.camera_topic("cam0"), answers.append, EVENTS_QOS)
    diag = diagnostics_of(ros_client, "storefuse/camera/cam0")
    processes.start([node_exe("storefuse_nodes", "camera"), "--ros-args", "-r", "__ns:=/store",
                     "-p", "camera_id:=cam0", "-p", f"source:={path}", "-p", f"start_stamp_ns:={T0}",
                     "-p", "rate_hz:=25.0", "-p", "wait_for_subscribers:=1"], tmp_path / "camera.log")
    ros_client.wait_for(lambda: len(answers) == len(walk) and diag.get("ended") == "True", 60, "the whole video")
    assert [stamp_ns(m.header.stamp) for m in answers] == [T0 + k * FRAME_NS for k in range(len(walk))]
    for m, xy in zip(answers, walk):
        if xy is None:
            assert len(m.detections) == 0
        else:
            assert _nearest(m, xy) < 0.5, (xy, [(d.position.x, d.position.y) for d in m.detections])
    assert "end of video" in diag["_message"] and diag["frames"] == str(len(walk))


def test_camera_node_reports_an_unreadable_video_and_keeps_trying(tmp_path, processes, ros_client):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video\n" * 50)
    diag = diagnostics_of(ros_client, "storefuse/camera/cam0")
    proc = processes.start([node_exe("storefuse_nodes", "camera"), "--ros-args", "-r", "__ns:=/store",
                            "-p", "camera_id:=cam0", "-p", f"source:={junk}"], tmp_path / "camera.log")
    ros_client.wait_for(lambda: int(diag.get("errors", "0")) >= 2, 60, "open failures in diagnostics")
    assert diag["_level"] == DiagnosticStatus.ERROR
    assert "junk.mp4" in diag["_message"] and diag["opened"] == "False" and proc.poll() is None


def test_camera_node_exits_with_one_line_for_an_unknown_camera(tmp_path, processes):
    log = tmp_path / "camera.log"
    proc = processes.start([node_exe("storefuse_nodes", "camera"), "--ros-args", "-p", "camera_id:=cam99"], log)
    assert proc.wait(timeout=60) != 0
    assert "has no rgb camera 'cam99' (has: cam0, cam1, cam2, cam3)" in log.read_text()


def test_depth_camera_node_finds_heads_in_depth_images(tmp_path, processes, ros_client):
    # the minimart with a ceiling depth camera over its right aisle (a layout file given by path)
    text = (ROOT / "urdf_store" / "minimart" / "layout.yaml").read_text()
    assert "\ncameras:\n" in text
    layout = tmp_path / "layout.yaml"
    layout.write_text(text.replace("\ncameras:\n", "\ncameras:\n  - {id: cam7, kind: depth, x: 7.5, y: 3.5, z: 3.0, "
                                   "roll_deg: 180, pitch_deg: 0, yaw_deg: 0, width: 320, height: 240, fx: 160.0, "
                                   "fy: 160.0, cx: 160.0, cy: 120.0, rate_hz: 10}\n"))
    store = load_store(layout)
    cam = cameras_of(store)["cam7"]
    assert cam.kind == "depth"
    renderer = CameraRenderer(store, cam, seed=2)
    people = [replace(SHOPPER, id="a", x=7.0, y=3.6, height_m=1.82), replace(SHOPPER, id="b", x=8.6, y=3.1,
                                                                              height_m=1.60)]
    processes.start([node_exe("storefuse_nodes", "depth_camera"), "--ros-args", "-r", "__ns:=/store",
                     "-p", "camera_id:=cam7", "-p", f"store:={layout}"], tmp_path / "depth.log")
    answers = {}
    det_topic = topics.camera_topic("cam7")
    sub = ros_client.node.create_subscription(PersonDetections, det_topic,
                                              lambda m: answers.setdefault(stamp_ns(m.header.stamp), m), EVENTS_QOS)
    diag = diagnostics_of(ros_client, "storefuse/depth_camera/cam7")
    pub = ros_client.node.create_publisher(Image, topics.camera_topic("cam7", "depth/image_raw"),
                                           qos_profile_sensor_data)
    ros_client.wait_for(lambda: pub.get_subscription_count() >= 1 and sub.get_publisher_count() >= 1,
                        60, "the depth node to subscribe and publish")
    for k in range(3):
        depth = renderer.render_depth(people, 0.1 * k)
        stamp = T0 + k * FRAME_NS
        msg = (_image_msg(depth, "16UC1", stamp) if k < 2 else
               _image_msg(depth.astype(np.float32) / 1000, "32FC1", stamp))    # metres work too
        _send(ros_client, pub, msg, answers, stamp, resend_s=0.5)      # stateless detector: repeats are harmless
        got = answers[stamp]
        assert stamp_ns(got.header.stamp) == stamp and got.camera_id == "cam7" and len(got.detections) == 2, k
        for p in people:
            assert _nearest(got, (p.x, p.y)) < 0.3, (k, p)
        assert all(len(d.appearance) == 0 for d in got.detections)
    empty = T0 + 10 * FRAME_NS
    _send(ros_client, pub, _image_msg(renderer.render_depth([], 1.0), "16UC1", empty), answers, empty)
    assert len(answers[empty].detections) == 0
    ros_client.wait_for(lambda: int(diag.get("frames", 0)) >= 4, 10, "frames counted in diagnostics")
    assert diag["errors"] == "0"
