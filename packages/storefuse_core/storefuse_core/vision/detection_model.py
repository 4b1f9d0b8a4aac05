"""The fast camera fidelity: PersonDetections drawn from a fitted detection model (numpy only).

Long scenarios and big stores do not render frames. Each camera frame, every shopper the camera sees
is detected or missed, displaced by noise, and false detections are added, with rates fitted by
running the real OpenCV detector on rendered frames (bench/fit_detection_model.py writes
config/detection_model.yaml). What the model knows about a shopper in a frame:
- in view: the body point (1 m above the floor) projects inside the image (margin `margin_px`);
- at the edge: ... within `edge_px` of the image border (the border cuts the shopper's silhouette);
- occluded: a gondola or a shopper nearer to the camera hides most of the body from the camera;
- crowded: another shopper stands within `crowd_m` (their blobs may merge);
- the distance from the camera's nadir (miss rate and position noise grow with it).

Everything is deterministic: the random draws of a frame depend only on the seed, the camera and the
frame's stamp, so the same scenario gives the same detections in any order of evaluation.
The scenario `sensors:` keys detection_miss_rate, detection_false_per_frame and detection_pos_sd_m
override the fitted values (`DetectionModelParams.with_sensors`).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import yaml

from storefuse_core.vision import (
    APPEARANCE_DIM,
    Detection,
    Person,
    appearance_descriptor,
    bgr_to_hsv,
    skin_and_hair,
    stable_hash,
)
from storefuse_core.vision.camera import PinholeCamera, segment_hits_gondola

BODY_Z_M = 1.0          # the point whose projection decides "in view"
CONFIG_NAME = "detection_model.yaml"


@dataclass(frozen=True)
class DetectionModelParams:
    miss_rate: float = 0.02             # in the clear (not at the edge, occluded or crowded), at the nadir
    miss_rate_per_m: float = 0.0        # + per metre from the nadir
    edge_miss_rate: float = 0.1         # at the image edge
    occluded_miss_rate: float = 0.5
    crowded_miss_rate: float = 0.15
    false_per_frame: float = 0.05       # Poisson mean per camera frame
    pos_sd_m: float = 0.10              # per axis, at the nadir
    pos_sd_per_m: float = 0.02          # + per metre from the nadir
    margin_px: float = 10.0
    edge_px: float = 60.0
    crowd_m: float = 0.6
    body_radius_m: float = 0.25         # for shopper-on-shopper occlusion
    max_miss_rate: float = 0.95

    def miss_probability(self, distance_m: float, occluded: bool = False, crowded: bool = False,
                         edge: bool = False) -> float:
        p = self.miss_rate + self.miss_rate_per_m * distance_m
        if edge:
            p = max(p, self.edge_miss_rate)
        if crowded:
            p = max(p, self.crowded_miss_rate)
        if occluded:
            p = max(p, self.occluded_miss_rate)
        return float(min(self.max_miss_rate, max(0.0, p)))

    def pos_sd(self, distance_m: float) -> float:
        return float(max(0.0, self.pos_sd_m + self.pos_sd_per_m * distance_m))

    def with_sensors(self, sensors: dict | None) -> DetectionModelParams:
        """Apply a scenario's `sensors:` overrides. A given value replaces the fitted curve by that
        constant: detection_miss_rate (miss probability in the clear at any distance; shoppers at the
        image edge, occluded or crowded are missed at least as often), detection_false_per_frame,
        detection_pos_sd_m (per-axis sd at any distance)."""
        sensors = sensors or {}
        out = self
        if sensors.get("detection_miss_rate") is not None:
            v = float(sensors["detection_miss_rate"])
            out = replace(out, miss_rate=v, miss_rate_per_m=0.0, edge_miss_rate=max(v, out.edge_miss_rate),
                          occluded_miss_rate=max(v, out.occluded_miss_rate),
                          crowded_miss_rate=max(v, out.crowded_miss_rate))
        if sensors.get("detection_false_per_frame") is not None:
            out = replace(out, false_per_frame=float(sensors["detection_false_per_frame"]))
        if sensors.get("detection_pos_sd_m") is not None:
            out = replace(out, pos_sd_m=float(sensors["detection_pos_sd_m"]), pos_sd_per_m=0.0)
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> DetectionModelParams:
        known = {f.name for f in fields(cls)}
        values = (doc or {}).get("params", doc or {})
        return cls(**{k: float(v) for k, v in values.items() if k in known})

    @classmethod
    def from_yaml(cls, path: str | Path) -> DetectionModelParams:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(yaml.safe_load(fh) or {})


def config_path() -> Path | None:
    """config/detection_model.yaml in the checkout, the installed bringup share, or
    $STOREFUSE_DETECTION_MODEL."""
    env = os.environ.get("STOREFUSE_DETECTION_MODEL")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    candidates = [parent / "config" / CONFIG_NAME for parent in here.parents]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "storefuse_bringup" / "config" / CONFIG_NAME)
    return next((c for c in candidates if c.is_file()), None)


def load_params(path: str | Path | None = None, sensors: dict | None = None) -> DetectionModelParams:
    """The fitted parameters (defaults where no file is found), with scenario overrides applied."""
    path = Path(path) if path else config_path()
    params = DetectionModelParams.from_yaml(path) if path and Path(path).is_file() else DetectionModelParams()
    return params.with_sensors(sensors)


# --- what a camera sees of the shoppers -----------------------------------------------------------

@dataclass(frozen=True)
class Visibility:
    in_view: bool
    distance_m: float        # from the camera's nadir
    occluded: bool
    crowded: bool
    by_gondola: bool = False
    edge: bool = False


def visibility(camera: PinholeCamera, people: list[Person], store=None, margin_px: float = 10.0,
               crowd_m: float = 0.6, body_radius_m: float = 0.25, edge_px: float = 60.0) -> list[Visibility]:
    """In view / occluded / crowded for each person, as the detection model and the bench define it."""
    if not people:
        return []
    body = np.array([[p.x, p.y, BODY_Z_M] for p in people])
    uv, z = camera.project(body)
    in_view = (z > 0.05) & camera.in_image(uv, margin_px)
    edge = ~camera.in_image(uv, edge_px)
    c = camera.position
    dist = camera.nadir_distance(body)
    out = []
    # Only people in (or at the margin of) this camera's view can be seen or stand in the way:
    # checking the others cost O(people^2 x gondolas) per frame in a busy big store.
    near = [j for j in range(len(people)) if z[j] > 0.05 and camera.in_image(uv[j:j + 1], -200.0)[0]]
    for i, p in enumerate(people):
        if not in_view[i]:
            out.append(Visibility(False, float(dist[i]), False, False, False, False))
            continue
        crowded = any(j != i and math.hypot(people[j].x - p.x, people[j].y - p.y) < crowd_m for j in near)
        occluded_by = 0
        by_gondola = False
        for zt in (0.6, 1.0, 1.4):
            target = np.array([p.x, p.y, min(zt, p.height_m)])
            hidden = False
            if store is not None and segment_hits_gondola(store, c, target):
                hidden = by_gondola = True
            else:
                for j in near:
                    q = people[j]
                    if j == i or dist[j] >= dist[i]:
                        continue
                    # closest approach of the camera->target segment to q's vertical axis (horizontal)
                    d = target - c
                    dh = d[:2]
                    t = float(np.clip(np.dot([q.x - c[0], q.y - c[1]], dh) / max(1e-9, float(dh @ dh)), 0, 1))
                    pt = c + t * d
                    if math.hypot(pt[0] - q.x, pt[1] - q.y) < body_radius_m and pt[2] < q.height_m:
                        hidden = True
                        break
            occluded_by += hidden
        out.append(Visibility(bool(in_view[i]), float(dist[i]), occluded_by >= 2, crowded, by_gondola,
                              bool(in_view[i] and edge[i])))
    return out


# --- assignment -----------------------------------------------------------------------------------

def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment of rows to columns (Hungarian, O(n^2 m)); min(n, m) pairs."""
    cost = np.asarray(cost, dtype=float)
    if cost.size == 0:
        return []
    transpose = cost.shape[0] > cost.shape[1]
    a = cost.T if transpose else cost
    n, m = a.shape
    inf = float("inf")
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=int)      # p[j]: row (1-based) matched to column j
    way = np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = a[i0 - 1, :] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    pairs = [(int(p[j]) - 1, j - 1) for j in range(1, m + 1) if p[j] != 0]
    if transpose:
        pairs = [(c, r) for r, c in pairs]
    return sorted(pairs)


def match(truth_xy: np.ndarray, det_xy: np.ndarray, gate_m: float = 0.75) -> list[tuple[int, int, float]]:
    """Hungarian matching of detections to true positions by floor distance, pairs within the gate:
    (truth index, detection index, distance)."""
    truth_xy = np.asarray(truth_xy, float).reshape(-1, 2)
    det_xy = np.asarray(det_xy, float).reshape(-1, 2)
    if len(truth_xy) == 0 or len(det_xy) == 0:
        return []
    d = np.hypot(truth_xy[:, None, 0] - det_xy[None, :, 0], truth_xy[:, None, 1] - det_xy[None, :, 1])
    big = 1e6
    pairs = linear_assignment(np.where(d <= gate_m, d, big))
    return [(i, j, float(d[i, j])) for i, j in pairs if d[i, j] <= gate_m]


# --- the model ------------------------------------------------------------------------------------

_APPEARANCE: dict[tuple, np.ndarray] = {}


def synthetic_appearance(person: Person, distance_m: float, rng: np.random.Generator, n: int = 160) -> np.ndarray:
    """The descriptor a detector would compute for this shopper: a pixel population of shirt,
    trousers (more of them seen from further off), hair and skin with shading jitter (fixed per
    shopper and half-metre of distance, cached), then per-frame multiplicative noise on the bins."""
    bucket = int(distance_m / 0.5)
    key = (person.id, tuple(person.shirt_bgr), tuple(person.pants_bgr), bucket)
    base = _APPEARANCE.get(key)
    if base is None:
        if len(_APPEARANCE) > 20_000:
            _APPEARANCE.clear()
        skin, hair = skin_and_hair(person.id)
        d = (bucket + 0.5) * 0.5
        pants_w = min(0.4, 0.08 + 0.08 * d)
        w = np.array([0.62 - pants_w, pants_w, 0.22, 0.10, 0.06])
        cols = np.array([person.shirt_bgr, person.pants_bgr, hair, skin, (128, 128, 128)], float)
        prng = np.random.default_rng([stable_hash("appearance", person.id), bucket])
        which = prng.choice(len(cols), size=n, p=w / w.sum())
        shade = prng.normal(1.0, 0.08, size=(n, 1)).clip(0.6, 1.4)
        pix = np.clip(cols[which] * shade + prng.normal(0, 3.0, size=(n, 3)), 0, 255).astype(np.uint8)
        base = _APPEARANCE[key] = appearance_descriptor(bgr_to_hsv(pix))
    out = base * np.exp(0.2 * rng.standard_normal(base.shape))
    total = float(out.sum())
    return (out / total).astype(np.float32) if total > 0 else out.astype(np.float32)


class DetectionModel:
    """Camera-level detections from true shopper positions (the default, fast camera fidelity)."""

    def __init__(self, params: DetectionModelParams | None = None, seed: int = 0, store=None):
        self.params = params or load_params()
        self.seed = int(seed)
        self.store = store

    def _rng(self, camera_id: str, stamp_ns: int) -> np.random.Generator:
        s = int(stamp_ns)
        return np.random.default_rng([self.seed & 0xFFFFFFFF, stable_hash("cam", camera_id),
                                      s & 0xFFFFFFFF, (s >> 32) & 0xFFFFFFFF])

    def detect(self, camera: PinholeCamera, people: list[Person], stamp_ns: int = 0) -> list[Detection]:
        prm = self.params
        rng = self._rng(camera.id, stamp_ns)
        vis = visibility(camera, people, self.store, prm.margin_px, prm.crowd_m, prm.body_radius_m, prm.edge_px)
        out: list[Detection] = []
        for person, v in zip(people, vis):
            # draw every random number for every person, seen or not, so one shopper's fate does
            # not shift the others' draws
            u_miss = rng.random()
            noise = rng.standard_normal(2)
            u_score = rng.random()
            app_seed = int(rng.integers(1 << 31))
            if not v.in_view:
                continue
            if u_miss < prm.miss_probability(v.distance_m, v.occluded, v.crowded, v.edge):
                continue
            sd = prm.pos_sd(v.distance_m)
            x, y = person.x + sd * noise[0], person.y + sd * noise[1]
            var = max(sd, 1e-3) ** 2
            score = 0.55 + 0.45 * u_score if not v.occluded else 0.3 + 0.4 * u_score
            app = synthetic_appearance(person, v.distance_m, np.random.default_rng(app_seed))
            out.append(Detection(float(x), float(y), 0.0, (var, 0.0, 0.0, 0.0, var, 0.0, 0.0, 0.0, 0.05 ** 2),
                                 float(score), app, float(person.height_m), None, None, camera.id, int(stamp_ns),
                                 truth_id=person.id))
        n_false = int(rng.poisson(prm.false_per_frame)) if prm.false_per_frame > 0 else 0
        for _ in range(n_false):
            uv = np.array([[rng.uniform(0, camera.width - 1), rng.uniform(0, camera.height - 1)]])
            q = camera.backproject(uv, BODY_Z_M)[0]
            if not np.all(np.isfinite(q)):
                continue
            sd = prm.pos_sd(float(camera.nadir_distance(q)[0]))
            var = max(sd, 1e-3) ** 2
            cols = rng.integers(0, 256, size=(2, 3))
            pix = np.repeat(cols, [60, 40], axis=0).astype(np.uint8)
            out.append(Detection(float(q[0]), float(q[1]), 0.0, (var, 0.0, 0.0, 0.0, var, 0.0, 0.0, 0.0, 0.05 ** 2),
                                 float(rng.uniform(0.25, 0.6)), appearance_descriptor(bgr_to_hsv(pix)), float("nan"),
                                 None, None, camera.id, int(stamp_ns), truth_id=None))
        return out


__all__ = ["APPEARANCE_DIM", "DetectionModel", "DetectionModelParams", "Visibility", "linear_assignment",
           "load_params", "match", "synthetic_appearance", "visibility"]
