"""The clustering depth pipeline (vision/depth.py): people found at their heads in rendered depth
frames, shoulder to shoulder too; DBSCAN as defined; a floor the layout gets wrong is fitted."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from storefuse_core.layout import load_store
from storefuse_core.vision import Person
from storefuse_core.vision.camera import PinholeCamera
from storefuse_core.vision.depth import ClusterDepthDetector, DepthClusterParams, dbscan, open3d_available
from storefuse_core.vision.detection_model import match
from storefuse_core.vision.render import CameraRenderer

pytest.importorskip("cv2")
STORE = load_store("minimart")
CAM = PinholeCamera.looking_down(7.5, 3.5, 3.0, width=320, height=240, f=160.0, id="cam7", kind="depth")
PEOPLE = [Person("tall", 7.0, 3.6, 0.0, 1.82), Person("reacher", 8.6, 3.1, 0.0, 1.7, reach=(8.6, 4.75, 1.2)),
          Person("short", 6.2, 2.9, 0.0, 1.6), Person("beside_tall", 7.5, 3.6, 1.0, 1.75)]   # 0.5 m from "tall"


@pytest.fixture(scope="module")
def depth():
    r = CameraRenderer(STORE, CAM, seed=2)
    return r.render_depth([], 0.0), r.render_depth(PEOPLE, 0.0)


def _check(found, people=PEOPLE, pos_m=0.1, height_m=0.05):
    pairs = match(np.array([[p.x, p.y] for p in people]), np.array([[d.x, d.y] for d in found]), 0.5)
    assert len(found) == len(people) == len(pairs), [(d.x, d.y, d.height_m) for d in found]
    for i, j, e in pairs:
        assert e < pos_m, (people[i].id, e)
        assert found[j].height_m == pytest.approx(people[i].height_m, abs=height_m), people[i].id
        assert found[j].camera_id == "cam7" and found[j].stamp_ns == 42 and found[j].appearance.size == 0


def test_people_at_their_heads_and_none_in_an_empty_store(depth):
    empty, busy = depth
    det = ClusterDepthDetector(CAM, STORE, DepthClusterParams(backend="scipy"))
    assert det.detect(empty, 42) == []
    _check(det.detect(busy, 42))


def test_a_camera_mounted_lower_than_the_layout_says_needs_the_fitted_floor(depth):
    """The detector believes the camera is 0.35 m higher than it is: the floor shows at z = 0.35 and
    everyone looks 0.35 m taller, unless the floor is fitted."""
    _, busy = depth
    wrong = replace(CAM, position=CAM.position + [0.0, 0.0, 0.35])
    known = ClusterDepthDetector(wrong, STORE, DepthClusterParams(backend="scipy")).detect(busy, 42)
    with pytest.raises(AssertionError):            # measured from the layout's floor: 0.35 m too tall
        _check(known, pos_m=0.25)
    fitted = ClusterDepthDetector(wrong, STORE, DepthClusterParams(backend="scipy", fit_floor=True))
    _check(fitted.detect(busy, 42), pos_m=0.25)
    assert fitted.floor_plane[3] == pytest.approx(-0.35, abs=0.03)


def test_dbscan_labels():
    line = np.array([[0.04 * i, 0.0, 0.0] for i in range(10)])   # core: i = 2..7; ends: border points
    beyond = np.array([[0.45, 0.0, 0.0]])                          # near a border point only: noise
    rng = np.random.default_rng(3)
    blob = rng.normal([1.0, 0.0, 0.0], 0.02, (30, 3))
    lonely = np.array([[5.0, 5.0, 5.0]])
    pts = np.vstack([blob, lonely, line, beyond])
    labels = dbscan(pts, 0.1, 5)
    assert set(labels[:30]) == {0}                                 # clusters numbered by their first point
    assert labels[30] == -1
    assert set(labels[31:41]) == {1}                               # border points join their core neighbours
    assert labels[41] == -1
    assert np.array_equal(dbscan(pts, 0.1, 5), labels)             # deterministic
    assert len(dbscan(np.zeros((0, 3)), 0.1, 5)) == 0


def test_backends_are_checked():
    with pytest.raises(ValueError, match="depth backend 'gpu'"):
        ClusterDepthDetector(CAM, STORE, DepthClusterParams(backend="gpu"))
    if not open3d_available():
        with pytest.raises(ValueError, match="not importable"):
            ClusterDepthDetector(CAM, STORE, DepthClusterParams(backend="open3d"))
    assert ClusterDepthDetector(CAM, STORE).backend == ("open3d" if open3d_available() else "scipy")


def test_open3d_backend_finds_the_same_people(depth):
    pytest.importorskip("open3d", reason="open3d is optional (not in requirements.txt; docs/vision.md)")
    _, busy = depth
    _check(ClusterDepthDetector(CAM, STORE, DepthClusterParams(backend="open3d")).detect(busy, 42))
