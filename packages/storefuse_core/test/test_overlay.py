"""The layout drawn through a camera's calibration: right where the frame's edges are for the right
pose, clearly off for a pose 0.5 m (or a few degrees) wrong; nothing behind the camera is drawn."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from storefuse_core.layout import load_store
from storefuse_core.vision.camera import PinholeCamera, cameras_of, rotation_rpy
from storefuse_core.vision.overlay import (
    COLOURS,
    draw_layout,
    edge_agreement,
    layout_geometry,
    project_segment,
    projected_lines,
    scaled_camera,
)
from storefuse_core.vision.render import CameraRenderer

cv2 = pytest.importorskip("cv2")
STORE = load_store("minimart")


@pytest.fixture(scope="module")
def frames():
    """Rendered empty-store frames of the minimart cameras that see a gondola."""
    cams = {c: cam for c, cam in cameras_of(STORE).items() if c in ("cam0", "cam3")}   # cam1 sees a corner of G3
    return {c: (cam, CameraRenderer(STORE, cam, seed=11).render([], 5.0)) for c, cam in cams.items()}


@pytest.mark.parametrize("camera_id", ["cam0", "cam3"])
def test_right_pose_agrees_with_the_frame_far_more_than_a_shifted_one(frames, camera_id):
    cam, img = frames[camera_id]
    right = edge_agreement(img, cam, STORE)
    assert right.points > 200
    assert right.share > 0.6 and right.lift > 0.25, right
    for dx, dy in [(0.5, 0.0), (-0.5, 0.0), (0.0, 0.5), (0.0, -0.5)]:
        wrong = edge_agreement(img, replace(cam, position=cam.position + [dx, dy, 0.0]), STORE)
        assert wrong.share < right.share - 0.1, (dx, dy, wrong, right)
        assert wrong.lift < right.lift - 0.1, (dx, dy, wrong, right)


def test_a_few_degrees_of_yaw_show_too(frames):
    cam, img = frames["cam0"]
    right = edge_agreement(img, cam, STORE)
    turned = replace(cam, R=rotation_rpy(math.pi, 0.0, math.radians(4.0)))
    assert edge_agreement(img, turned, STORE).share < right.share - 0.1


def test_drawing_puts_the_layout_colours_on_the_frame(frames):
    cam, img = frames["cam0"]
    out = draw_layout(img, cam, STORE, title="cam0")
    assert out.shape == img.shape and out is not img
    assert not np.array_equal(out, img)
    for kind in ("gondola", "shelf", "plate", "grid"):       # cam0 sees G1 and G2 and the floor
        colour = np.array(COLOURS[kind])
        assert (np.abs(out.astype(int) - colour).sum(axis=2) < 30).sum() > 50, kind
    assert np.array_equal(img, frames["cam0"][1])             # the input frame is left untouched


def test_geometry_has_every_layout_element():
    segs, labels = layout_geometry(STORE)
    kinds = {s.kind for s in segs}
    assert kinds == {"grid", "gondola", "shelf", "plate", "gate"}
    assert sum(s.kind == "shelf" for s in segs) == len(STORE.shelves)
    assert sum(s.kind == "plate" for s in segs) == 4 * len(STORE.plates)
    assert sum(s.kind == "gate" for s in segs) == 4 * len(STORE.gates)
    assert sum(s.kind == "gondola" for s in segs) == 12 * len(STORE.gondolas)
    # 1 m grid over the 12 x 8 m floor: 13 + 9 lines
    assert sum(s.kind == "grid" for s in segs) == 13 + 9
    assert {lb.text for lb in labels} >= set(STORE.gondolas) | set(STORE.gates) | set(STORE.shelves)
    for s in segs:
        if s.kind == "shelf":                                  # shelf front edges at the shelf heights
            assert s.a[2] == s.b[2] and any(abs(s.a[2] - sh.height_m) < 1e-9 for sh in STORE.shelves.values())


def test_segments_behind_the_camera_are_clipped_not_mirrored():
    cam = PinholeCamera("c", "rgb", 640, 480, 320.0, 320.0, 320.0, 240.0, np.array([0.0, 0.0, 1.0]),
                        rotation_rpy(-math.pi / 2, 0.0, 0.0))      # horizontal, looking along map +y
    assert project_segment(cam, (0.0, -5.0, 1.0), (1.0, -3.0, 1.0)) is None     # all behind
    uv0, uv1 = project_segment(cam, (0.5, -2.0, 0.0), (0.5, 4.0, 0.0))          # crosses the image plane
    assert np.all(np.isfinite([*uv0, *uv1]))
    far = cam.project(np.array([[0.5, 4.0, 0.0]]))[0][0]
    assert np.allclose(uv1, far)                  # the visible end is where it projects ...
    assert uv0[1] > cam.height                    # ... the cut end runs off the bottom, not to the top
    lines = projected_lines(cam, layout_geometry(STORE, plates=False)[0])
    for _, p0, p1 in lines:
        for u, v in (p0, p1):
            assert 0 <= u <= cam.width and 0 <= v <= cam.height


def test_a_frame_of_another_size_scales_the_intrinsics(frames):
    cam, img = frames["cam0"]
    half = cv2.resize(img, (cam.width // 2, cam.height // 2), interpolation=cv2.INTER_AREA)
    small = scaled_camera(cam, half.shape[1], half.shape[0])
    assert (small.fx, small.cx, small.width) == (cam.fx / 2, cam.cx / 2, cam.width // 2)
    assert draw_layout(half, cam, STORE).shape == half.shape
    assert edge_agreement(half, cam, STORE).lift > 0.2
