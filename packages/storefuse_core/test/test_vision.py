"""Vision: camera geometry, rendered frames, the real detectors and the fast detection model."""
from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest

from storefuse_core.vision import APPEARANCE_DIM, Person, appearance_distance
from storefuse_core.vision.camera import PinholeCamera, cameras_of, rotation_rpy
from storefuse_core.vision.detection_model import (
    DetectionModel,
    DetectionModelParams,
    linear_assignment,
    load_params,
    match,
    visibility,
)

cv2 = pytest.importorskip("cv2")

from storefuse_core.vision.person import DepthPersonDetector, PersonDetector, draw_detections  # noqa: E402
from storefuse_core.vision.render import CameraRenderer, Lighting, RenderParams  # noqa: E402

RED = Person("red", 0, 0, 0.3, 1.75, (40, 40, 200), (90, 60, 40))
BLUE = Person("blue", 0, 0, 2.0, 1.65, (200, 120, 40), (30, 30, 30))
WARMUP = 10


def at(p: Person, x: float, y: float, **kw) -> Person:
    from dataclasses import replace
    return replace(p, x=x, y=y, **kw)


@pytest.fixture(scope="module")
def cam0(minimart):
    return cameras_of(minimart)["cam0"]


@pytest.fixture(scope="module")
def renderer(minimart, cam0):
    return CameraRenderer(minimart, cam0, seed=3, lighting=Lighting(seed=3, drift_amp=0.12, drift_period_s=20.0,
                                                                   warmth_amp=0.05, warmth_period_s=30.0))


def warmed(renderer, t0=0.0, frames=WARMUP):
    det = PersonDetector(renderer.camera)
    t = t0
    for _ in range(frames):
        assert det.detect(renderer.render([], t), int(t * 1e9)) == []
        t += 0.1
    return det, t


# --- geometry -------------------------------------------------------------------------------------

def test_roll_180_looks_straight_down_with_image_right_along_x(cam0):
    assert np.allclose(cam0.R[:, 2], [0, 0, -1])        # optical z (viewing direction) = map -z
    assert np.allclose(cam0.R[:, 0], [1, 0, 0])         # image right = map +x
    assert np.allclose(cam0.R[:, 1], [0, -1, 0])        # image down = map -y
    assert np.allclose(cam0.nadir_pixel(), [cam0.cx, cam0.cy])
    assert np.allclose(rotation_rpy(0.3, -0.2, 1.1) @ rotation_rpy(0.3, -0.2, 1.1).T, np.eye(3))


@pytest.mark.parametrize("cam", [
    PinholeCamera.looking_down(3.0, 3.75, 3.0),
    PinholeCamera("cam9", "rgb", 640, 360, 400.0, 400.0, 320.0, 180.0, np.array([1.0, 2.0, 3.2]),
                  rotation_rpy(math.radians(180 - 35), 0.0, math.radians(30))),   # tilted 35 deg, turned
])
@pytest.mark.parametrize("h", [0.0, 1.0, 1.7])
def test_pixel_floor_pixel_round_trip(cam, h):
    rng = np.random.default_rng(0)
    uv = np.stack([rng.uniform(0, cam.width - 1, 200), rng.uniform(0, cam.height - 1, 200)], axis=1)
    pts = cam.backproject(uv, h)
    ok = np.all(np.isfinite(pts), axis=1)
    assert ok.sum() > 100
    assert np.allclose(pts[ok, 2], h)
    back, depth = cam.project(pts[ok])
    assert np.all(depth > 0)
    assert np.allclose(back, uv[ok], atol=1e-6)


def test_floor_point_under_the_camera_and_rays_above_the_horizon():
    cam = PinholeCamera("cam9", "rgb", 640, 480, 320.0, 320.0, 320.0, 240.0, np.array([0.0, 0.0, 3.0]),
                        rotation_rpy(math.radians(-90), 0.0, 0.0))      # looking horizontally along +y
    assert np.all(np.isnan(cam.pixel_to_floor(320, 100)))             # above the horizon: no floor
    down = PinholeCamera.looking_down(2.0, 5.0, 3.0)
    assert np.allclose(down.pixel_to_floor(down.cx, down.cy), [2.0, 5.0, 0.0])


def test_covariance_grows_with_distance_from_the_nadir(cam0):
    us = np.linspace(cam0.cx, cam0.width - 1, 8)
    uv = np.stack([us, np.full_like(us, cam0.cy + 100)], axis=1)
    for h, pixel_sd, height_sd in ((1.2, 2.0, 0.15), (0.5, 0.0, 0.1)):
        cov = cam0.ground_covariance(uv, h, pixel_sd=pixel_sd, height_sd=height_sd)
        spread = np.trace(cov[:, :2, :2], axis1=1, axis2=2)
        dist = cam0.nadir_distance(cam0.backproject(uv, h))
        assert np.all(np.diff(dist) > 0)
        assert np.all(np.diff(spread) > 0)
        assert np.all(np.linalg.eigvalsh(cov[:, :2, :2]) > -1e-12)
    # a camera looking straight down maps the floor affinely: pixel noise alone is the same everywhere ...
    flat = cam0.ground_covariance(uv, 0.0, pixel_sd=2.0)
    assert np.allclose(flat, flat[0])
    # ... but a tilted camera sees the floor ever more obliquely
    tilted = PinholeCamera("cam9", "rgb", 640, 480, 320.0, 320.0, 320.0, 240.0, np.array([0.0, 0.0, 3.0]),
                           rotation_rpy(math.radians(180 - 40), 0.0, 0.0))
    vs = np.linspace(240, 479, 8)            # image down = further out for this tilt
    uv = np.stack([np.full_like(vs, 320.0), vs], axis=1)
    spread = np.trace(tilted.ground_covariance(uv, 0.0, pixel_sd=2.0)[:, :2, :2], axis1=1, axis2=2)
    assert np.all(np.diff(tilted.nadir_distance(tilted.backproject(uv, 0.0))) > 0)
    assert np.all(np.diff(spread) > 0)


def test_linear_assignment_is_optimal():
    rng = np.random.default_rng(1)
    for _ in range(50):
        n, m = (int(v) for v in rng.integers(1, 5, 2))
        c = rng.random((n, m))
        pairs = linear_assignment(c)
        k = min(n, m)
        best = min(sum(c[i, j] for i, j in zip(rows, cols)) for rows in itertools.combinations(range(n), k)
                   for cols in itertools.permutations(range(m), k))
        assert len(pairs) == k and sum(c[i, j] for i, j in pairs) == pytest.approx(best)
    assert match(np.array([[0, 0], [5, 5]]), np.array([[0.2, 0.0], [9, 9]]), 0.75) == [(0, 0, pytest.approx(0.2))]


# --- rendering ------------------------------------------------------------------------------------

def test_render_is_deterministic_and_sized(minimart, cam0, renderer):
    people = [at(RED, 3.5, 3.5), at(BLUE, 2.0, 4.0, reach=(2.0, 4.7, 1.1))]
    a = renderer.render(people, 1.0)
    assert a.shape == (cam0.height, cam0.width, 3) and a.dtype == np.uint8
    b = CameraRenderer(minimart, cam0, seed=3, lighting=renderer.lighting).render(people, 1.0)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, renderer.render(people, 1.1))          # noise and light move on
    d = renderer.render_depth(people, 1.0)
    assert d.dtype == np.uint16 and d.shape == (cam0.height, cam0.width)
    assert np.array_equal(d, renderer.render_depth(people, 1.0))


def test_nearer_shopper_is_drawn_over_the_farther_one(minimart, cam0):
    r = CameraRenderer(minimart, cam0, seed=1, lighting=Lighting.constant(),
                       params=RenderParams(noise_sd=0.0, blur=False))
    near = at(RED, 4.0, 3.75, height_m=1.8)           # 1 m from the nadir, tall
    far = at(BLUE, 5.6, 3.75)                         # further out along the same image row
    head = np.array([[near.x, near.y, near.height_m - 0.1]])
    uv, _ = cam0.project(head)
    u, v = (int(round(c)) for c in uv[0])
    both = r.render([far, near], 0.0)
    alone = r.render([near], 0.0)
    assert np.array_equal(both[v, u], alone[v, u])      # the near head is on top ...
    vis = visibility(cam0, [near, at(BLUE, 4.9, 3.75)], minimart)
    assert not vis[0].occluded


# --- the RGB detector -----------------------------------------------------------------------------

@pytest.mark.parametrize("xy", [(3.0, 3.75), (4.4, 3.2), (1.3, 4.4)])
def test_one_person_one_detection_near_the_truth(renderer, xy):
    det, t = warmed(renderer)
    person = at(RED, *xy)
    found = []
    for _ in range(3):                        # a few frames of the shopper standing there
        found = det.detect(renderer.render([person], t), int(t * 1e9))
        t += 0.1
        assert len(found) == 1
        d = found[0]
        assert math.hypot(d.x - person.x, d.y - person.y) < 0.3
    d = found[0]
    assert 0 < d.score <= 1 and len(d.cov) == 9 and d.appearance.shape == (APPEARANCE_DIM,)
    assert d.appearance.dtype == np.float32 and d.appearance.sum() == pytest.approx(1.0, abs=1e-5)
    cov = d.cov3
    assert np.allclose(cov, cov.T) and np.all(np.linalg.eigvalsh(cov) > 0)
    png = draw_detections(renderer.render([person], t), found, renderer.camera)
    assert png.shape == (renderer.camera.height, renderer.camera.width, 3)


def test_empty_view_yields_nothing_after_warmup(renderer):
    det, t = warmed(renderer, t0=5.0)
    for _ in range(30):
        assert det.detect(renderer.render([], t), int(t * 1e9)) == []
        t += 0.1


def test_lighting_change_alone_yields_no_detections(minimart, cam0):
    light = Lighting(seed=5, drift_amp=0.1, drift_period_s=10.0, warmth_amp=0.05, warmth_period_s=15.0,
                     steps=((1.5, 0.7, 0.06), (2.5, 1.3, -0.08)))      # a bank off, then brighter and bluer
    r = CameraRenderer(minimart, cam0, seed=5, lighting=light)
    det, t = warmed(r)
    while t < 3.5:
        assert det.detect(r.render([], t), int(t * 1e9)) == [], f"false detection at t={t:.1f}"
        t += 0.1


def test_two_people_are_two_detections_and_occlusion_by_a_gondola(minimart, renderer):
    det, t = warmed(renderer, t0=9.0)
    a, b = at(RED, 2.2, 3.5), at(BLUE, 4.2, 4.0)
    dets = det.detect(renderer.render([a, b], t), int(t * 1e9))
    pairs = match(np.array([[a.x, a.y], [b.x, b.y]]), np.array([[d.x, d.y] for d in dets]), 0.75)
    assert len(dets) == 2 and len(pairs) == 2 and all(e < 0.3 for *_, e in pairs)
    # a child right behind G1 (y 2.2..2.8, 1.85 m tall) seen by a wide-angle camera over the aisle
    wide = PinholeCamera.looking_down(3.0, 3.4, 3.0, f=200.0, id="cam8")
    hidden, seen = at(RED, 3.0, 1.8, height_m=1.3), at(BLUE, 3.6, 3.9)
    vis = visibility(wide, [hidden, seen], minimart)
    assert vis[0].in_view and vis[0].occluded and vis[0].by_gondola
    assert vis[1].in_view and not vis[1].occluded
    r = CameraRenderer(minimart, wide, seed=4)
    det2, t2 = warmed(r)
    for _ in range(3):
        dets = det2.detect(r.render([hidden, seen], t2), int(t2 * 1e9))
        t2 += 0.1
        assert len(dets) == 1 and math.hypot(dets[0].x - seen.x, dets[0].y - seen.y) < 0.3


def test_appearance_separates_people_across_frames(renderer):
    det, t = warmed(renderer, t0=30.0)
    path_red = [(2.0, 3.4), (2.6, 3.6), (3.3, 3.8), (4.0, 3.9)]
    path_blue = [(4.5, 4.1), (3.9, 4.0), (3.2, 3.3), (2.5, 3.2)]
    descs = {"red": [], "blue": []}
    for (xr, yr), (xb, yb) in zip(path_red, path_blue):
        people = [at(RED, xr, yr), at(BLUE, xb, yb)]
        dets = det.detect(renderer.render(people, t), int(t * 1e9))
        t += 0.1
        pairs = match(np.array([[p.x, p.y] for p in people]), np.array([[d.x, d.y] for d in dets]), 0.75)
        assert len(pairs) == 2
        for i, j, _ in pairs:
            descs[people[i].id].append(dets[j].appearance)
    same = [appearance_distance(a, b) for k in descs for a, b in itertools.combinations(descs[k], 2)]
    diff = [appearance_distance(a, b) for a in descs["red"] for b in descs["blue"]]
    assert max(same) < min(diff)


# --- the depth detector ---------------------------------------------------------------------------

def test_depth_detector_finds_people_in_a_rendered_depth_image(minimart):
    cam = PinholeCamera.looking_down(7.5, 3.5, 3.0, width=320, height=240, f=160.0, id="cam7", kind="depth")
    r = CameraRenderer(minimart, cam, seed=2)
    det = DepthPersonDetector(cam, minimart)
    assert det.detect(r.render_depth([], 0.0)) == []
    people = [at(RED, 7.0, 3.6, height_m=1.82), at(BLUE, 8.6, 3.1, reach=(8.6, 4.75, 1.2)),
              Person("third", 6.2, 2.9, 0.0, 1.6)]
    found = det.detect(r.render_depth(people, 0.0), 0)
    pairs = match(np.array([[p.x, p.y] for p in people]), np.array([[d.x, d.y] for d in found]), 0.75)
    assert len(found) == 3 and len(pairs) == 3
    for i, j, e in pairs:
        assert e < 0.2
        assert found[j].height_m == pytest.approx(people[i].height_m, abs=0.1)


# --- the detection model --------------------------------------------------------------------------

def test_detection_model_is_deterministic_for_a_seed(minimart, cam0):
    people = [at(RED, 3.0, 3.5), at(BLUE, 4.0, 4.2)]
    a = DetectionModel(seed=7, store=minimart).detect(cam0, people, 123_000_000)
    b = DetectionModel(seed=7, store=minimart).detect(cam0, people, 123_000_000)
    assert [(d.x, d.y, d.score, d.truth_id) for d in a] == [(d.x, d.y, d.score, d.truth_id) for d in b]
    assert all(np.array_equal(x.appearance, y.appearance) for x, y in zip(a, b))
    runs = {tuple((round(d.x, 6), round(d.y, 6)) for d in DetectionModel(seed=s, store=minimart).detect(
        cam0, people, 123_000_000)) for s in range(6)}
    assert len(runs) > 1


def test_detection_model_honours_miss_false_and_noise(minimart, cam0):
    base = DetectionModelParams(edge_miss_rate=0.5, occluded_miss_rate=0.9)
    prm = base.with_sensors({"detection_miss_rate": 0.3, "detection_false_per_frame": 0.5, "detection_pos_sd_m": 0.2})
    assert (prm.miss_rate, prm.false_per_frame, prm.pos_sd_m, prm.pos_sd_per_m) == (0.3, 0.5, 0.2, 0.0)
    assert prm.edge_miss_rate == 0.5 and prm.occluded_miss_rate == 0.9
    model = DetectionModel(prm, seed=1, store=minimart)
    person = at(RED, 3.4, 3.9)                   # in the clear, near cam0's nadir
    hits, false, err = 0, 0, []
    n = 3000
    for k in range(n):
        dets = model.detect(cam0, [person], 1_000_000 * k)
        true = [d for d in dets if d.truth_id == "red"]
        hits += len(true)
        false += len(dets) - len(true)
        err += [(d.x - person.x, d.y - person.y) for d in true]
    assert 1 - hits / n == pytest.approx(0.3, abs=0.03)
    assert false / n == pytest.approx(0.5, abs=0.05)
    e = np.array(err)
    assert np.abs(e.mean(axis=0)).max() < 0.02
    assert e.std(axis=0) == pytest.approx([0.2, 0.2], abs=0.015)
    # nobody is seen outside the view, and an empty store gives only false positives
    assert all(d.truth_id is None for d in model.detect(cam0, [at(RED, 11.0, 7.5)], 5))


def test_fitted_parameters_load_and_scenario_overrides_apply(tmp_path, repo_root):
    cfg = repo_root / "config" / "detection_model.yaml"
    params = load_params(cfg)
    assert params == DetectionModelParams.from_yaml(cfg)
    assert 0 <= params.miss_rate < 0.5 and params.pos_sd_m > 0
    path = tmp_path / "dm.yaml"
    path.write_text("params: {miss_rate: 0.2, pos_sd_m: 0.3, unknown_key: 1}\n")
    loaded = load_params(path, sensors={"detection_false_per_frame": 0.7})
    assert (loaded.miss_rate, loaded.pos_sd_m, loaded.false_per_frame) == (0.2, 0.3, 0.7)


def test_fast_fidelity_imports_neither_opencv_nor_rclpy():
    code = ("import sys, storefuse_core.vision.detection_model, storefuse_core.vision.camera; "
            "print('cv2' in sys.modules, 'rclpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("store_name", ["minimart", "aifi", "grocery"])
def test_camera_rotation_matches_the_layouts_and_a_tilted_camera_detects(store_name):
    from storefuse_core.errors import LayoutError
    from storefuse_core.layout import load_store
    try:
        store = load_store(store_name)
    except LayoutError:
        pytest.skip(f"no store {store_name}")
    cams = cameras_of(store)
    for cid, cam in cams.items():
        if hasattr(store.cameras[cid], "rotation"):
            assert np.allclose(cam.R, store.cameras[cid].rotation())
    if store_name != "aifi":
        return
    cam = cams["cam0"]                            # tilted: look where its optical axis meets the body plane
    c = cam.backproject(np.array([[cam.cx, cam.cy]]), 1.0)[0]
    r = CameraRenderer(store, cam, seed=2)
    det, t = warmed(r)
    person = at(RED, c[0], c[1])
    found = det.detect(r.render([person], t), int(t * 1e9))
    assert len(found) == 1 and math.hypot(found[0].x - person.x, found[0].y - person.y) < 0.3


# --- the RGB detector's background: start-up ghosts, stale changes, ignore regions -------------------

def test_a_shopper_in_view_at_start_up_leaves_no_ghost(renderer):
    """Cold start with a shopper standing in view (he is learned into the first background), who
    then walks away: where he stood must not stay a detection, and he is the only one."""
    det = PersonDetector(renderer.camera)
    start, t = at(RED, 2.4, 3.5), 40.0
    for _ in range(WARMUP):
        det.detect(renderer.render([start], t), int(t * 1e9))
        t += 0.1
    path = [(2.4 + 0.1 * k, 3.5 + 0.04 * k) for k in range(1, 31)]          # 1 m/s away from the spot
    counts, errors = [], []
    for k, (x, y) in enumerate(path):
        person = at(RED, x, y)
        dets = det.detect(renderer.render([person], t), int(t * 1e9))
        t += 0.1
        if k >= 15:                       # 1.5 s after he left (0.5 s still, then the ghost test)
            counts.append(len(dets))
            errors += [math.hypot(d.x - x, d.y - y) for d in dets]
    assert counts == [1] * len(counts), counts
    assert max(errors) < 0.3


def test_a_shopper_standing_still_stays_detected(renderer):
    """A rendered shopper is perfectly still (a real one never is): he is kept for `absorb_s`."""
    det, t = warmed(renderer, t0=60.0)
    for k in range(8):                                     # walks in ...
        det.detect(renderer.render([at(BLUE, 2.2 + 0.1 * k, 3.6)], t), int(t * 1e9))
        t += 0.1
    still = at(BLUE, 2.9, 3.6, reach=(2.9, 4.7, 1.1))     # ... and stands at the shelf, reaching in
    for _ in range(35):                                    # 3.5 s
        dets = det.detect(renderer.render([still], t), int(t * 1e9))
        t += 0.1
        assert len(dets) == 1 and math.hypot(dets[0].x - still.x, dets[0].y - still.y) < 0.3


def _with_panel(frame: np.ndarray, colour=(60, 140, 200)) -> np.ndarray:
    img = frame.copy()
    img[150:330, 200:290] = colour                          # a door panel, a moved display: not a shopper
    return img


def test_a_stale_change_is_absorbed_and_undone(renderer):
    det, t = warmed(renderer, t0=80.0)
    seen = []
    for _ in range(60):                                    # 6 s with a new static object in view
        seen.append(len(det.detect(_with_panel(renderer.render([], t)), int(t * 1e9))))
        t += 0.1
    assert seen[5] >= 1                                    # it is foreground at first ...
    assert seen[-10:] == [0] * 10, seen                    # ... absorbed after absorb_s
    after = []
    for _ in range(20):                                    # it goes away again (the door swings shut)
        after.append(len(det.detect(renderer.render([], t), int(t * 1e9))))
        t += 0.1
    assert after[-10:] == [0] * 10, after                  # what it hid is a ghost: gone within 1 s


def test_ignore_regions_drop_blobs_whose_feet_are_in_them(minimart, cam0):
    """A shopper whose feet are in an ignore region (behind a glass wall, in a doorway) is not
    reported; the other one is, whether or not the region is there."""
    from dataclasses import replace
    r = CameraRenderer(minimart, cam0, seed=6)
    inside, outside = at(RED, 4.4, 4.6), at(BLUE, 2.0, 3.2)
    u, v = (float(c) for c in cam0.project(np.array([[inside.x, inside.y, 0.0]]))[0][0])
    box = ((u - 60, v - 60), (u + 60, v - 60), (u + 60, v + 60), (u - 60, v + 60))
    found = {}
    for name, cam in (("plain", cam0), ("masked", replace(cam0, ignore=(box,)))):
        det = PersonDetector(cam)
        t = 0.0
        for _ in range(WARMUP):
            det.detect(r.render([], t), int(t * 1e9))
            t += 0.1
        found[name] = [(d.x, d.y) for d in det.detect(r.render([inside, outside], t), int(t * 1e9))]
    truth = np.array([[inside.x, inside.y], [outside.x, outside.y]])
    pairs = match(truth, np.array(found["plain"]), 0.3)
    assert len(found["plain"]) == 2 and len(pairs) == 2
    assert len(found["masked"]) == 1
    assert math.hypot(found["masked"][0][0] - outside.x, found["masked"][0][1] - outside.y) < 0.3


def test_layout_ignore_regions_reach_the_camera(minimart):
    from pathlib import Path

    import yaml

    from storefuse_core.errors import LayoutError
    from storefuse_core.layout import load_store, parse_store
    doc = yaml.safe_load(minimart.source_text)
    doc["cameras"][0]["ignore"] = [[[0, 0], [100, 0], [100, 80.5]]]
    store = parse_store(yaml.safe_dump(doc), Path("t.yaml"))
    assert store.cameras["cam0"].ignore == (((0.0, 0.0), (100.0, 0.0), (100.0, 80.5)),)
    assert cameras_of(store)["cam0"].ignore == store.cameras["cam0"].ignore
    for bad in ([[0, 0], [1, 1], [2, 0]], [[[0, 0], [1, 1]]], [[[0, 0], [1, "x"], [2, 0]]], "nope"):
        doc["cameras"][0]["ignore"] = bad
        with pytest.raises(LayoutError, match="ignore"):
            parse_store(yaml.safe_dump(doc), Path("t.yaml"))
    aifi = load_store("aifi")             # the cameras with video have theirs, the others none
    assert all(bool(aifi.cameras[f"cam{k}"].ignore) == (k in (1, 3, 5, 7)) for k in range(12))
