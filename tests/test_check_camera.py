"""`storefuse check-camera`: the layout through a camera's calibration onto a frame from an image,
a video, or a bag, saved as a PNG; bad input is one clear line and exit code 2."""
from __future__ import annotations

import json
import subprocess

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from storefuse_core.bag import BagWriter
from storefuse_core.convert import image_to_msg, rosbags_factory
from storefuse_core.layout import load_store
from storefuse_core.vision.camera import cameras_of
from storefuse_core.vision.render import CameraRenderer
from storefuse_tools.cli import app

STORE = load_store("minimart")
CAM = cameras_of(STORE)["cam0"]
T0 = 1_767_225_600_000_000_000


@pytest.fixture(scope="module")
def frame():
    return CameraRenderer(STORE, CAM, seed=5).render([], 1.0)


def check(*args):
    return CliRunner().invoke(app, ["check-camera", "--store", "minimart", "--camera", "cam0", *map(str, args)])


def test_frame_file_to_png_via_the_installed_command(tmp_path, frame):
    cv2.imwrite(str(tmp_path / "cam0.png"), frame)
    proc = subprocess.run(["storefuse", "check-camera", "--store", "minimart", "--camera", "cam0", "--frame",
                           str(tmp_path / "cam0.png"), "--out", str(tmp_path / "out" / "check.png"), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    png = cv2.imread(str(tmp_path / "out" / "check.png"))
    assert png is not None and png.shape == frame.shape
    assert not np.array_equal(png, frame)                      # the layout is drawn on it
    assert result["edge_points"] > 200 and result["edge_agreement"] > result["edge_chance"] + 0.25


def test_video_at_a_second_and_a_bag_topic(tmp_path, frame):
    renderer = CameraRenderer(STORE, CAM, seed=5)
    video = tmp_path / "cam0.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (CAM.width, CAM.height))
    for k in range(20):
        writer.write(renderer.render([], 0.1 * k))
    writer.release()
    res = check("--video", video, "--at", "1.5", "--out", tmp_path / "v.png", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["edge_agreement"] > 0.6
    assert cv2.imread(str(tmp_path / "v.png")).shape == frame.shape

    res = check("--video", video, "--at", "5", "--out", tmp_path / "late.png")
    assert res.exit_code == 2 and "no frame at 5 s (the video has 20 frames" in res.output
    assert not (tmp_path / "late.png").exists()

    bag = tmp_path / "bag"
    with BagWriter(bag) as w:
        for k in range(3):
            ok, jpg = cv2.imencode(".jpg", renderer.render([], 0.5 * k))
            msg = image_to_msg(rosbags_factory(w.typestore), "cam0", T0 + k * 500_000_000, jpg.tobytes())
            w.write("/store/cameras/cam0/image/compressed", "sensor_msgs/msg/CompressedImage",
                    T0 + k * 500_000_000, msg)
    res = check("--bag", bag, "--at", "0.5", "--out", tmp_path / "b.png", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["edge_agreement"] > 0.6
    res = check("--bag", bag, "--topic", "/store/cameras/cam9/image/compressed", "--out", tmp_path / "n.png")
    assert res.exit_code == 2 and "no message on /store/cameras/cam9/image/compressed" in res.output


@pytest.mark.parametrize(("args", "message"), [
    ([], "give exactly one frame source"),
    (["--frame", "{tmp}/missing.png"], "not an image OpenCV can read"),
    (["--frame", "{tmp}/wide.png"], "another aspect ratio"),
    (["--frame", "{tmp}/ok.png", "--video", "{tmp}/ok.png"], "give exactly one frame source"),
    (["--video", "{tmp}/missing.mp4"], "no such file"),
])
def test_bad_input_is_one_clear_error(tmp_path, frame, args, message):
    cv2.imwrite(str(tmp_path / "ok.png"), frame)
    cv2.imwrite(str(tmp_path / "wide.png"), np.zeros((100, 400, 3), np.uint8))
    res = check(*[a.format(tmp=tmp_path) for a in args], "--out", tmp_path / "o.png")
    assert res.exit_code == 2
    assert message in res.output and res.output.startswith("storefuse: check-camera:")
    assert not (tmp_path / "o.png").exists()


def test_unknown_camera(tmp_path, frame):
    cv2.imwrite(str(tmp_path / "ok.png"), frame)
    res = CliRunner().invoke(app, ["check-camera", "--store", "minimart", "--camera", "cam42", "--frame",
                                   str(tmp_path / "ok.png"), "--out", str(tmp_path / "o.png")])
    assert res.exit_code == 2 and "has no camera 'cam42' (has: cam0, cam1" in res.output
