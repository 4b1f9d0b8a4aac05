"""Pinhole geometry of a store camera, from the layout (numpy only).

Convention: a layout camera's pose (x, y, z, roll, pitch, yaw) is the pose of its optical frame
`<cam>_optical_frame` in `map` — REP-103 optical axes: z forward (viewing direction), x right,
y down in the image. The rotation is the URDF/REP-103 fixed-axis one, R = Rz(yaw) Ry(pitch) Rx(roll),
mapping optical-frame vectors to map vectors. So roll = 180 deg, pitch = yaw = 0 is a camera looking
straight down with image right = map +x and image down = map -y; yaw turns it about the vertical.
`<cam>_link` (x forward, y left, z up) relates to the optical frame by the fixed rotation
LINK_TO_OPTICAL, as in every ROS camera driver.

A pixel (u, v) is a ray C + s * R [(u - cx)/fx, (v - cy)/fy, 1]^T with s the optical depth;
back-projection intersects it with the horizontal plane z = h (the floor, or a body point at a
nominal height). The position covariance of a back-projected detection comes from pixel noise and
height uncertainty pushed through that intersection (first order), so it grows with the distance
from the camera's nadir as a real detection's error does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import yaml

# optical frame axes expressed in the camera link frame (x forward, y left, z up): columns x_opt, y_opt, z_opt
LINK_TO_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def rotation_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R = Rz(yaw) @ Ry(pitch) @ Rx(roll) (fixed axes x, y, z — URDF rpy)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class PinholeCamera:
    id: str
    kind: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    position: np.ndarray        # camera centre in map (3,)
    R: np.ndarray               # optical -> map rotation (3, 3)
    rate_hz: float = 10.0
    ignore: tuple = ()          # layout ignore regions: polygons of full-frame (u, v) pixels

    @classmethod
    def from_layout(cls, cam) -> PinholeCamera:
        """From a storefuse_core.layout.Camera (pose in radians)."""
        x, y, z, roll, pitch, yaw = cam.pose
        return cls(cam.id, cam.kind, int(cam.width), int(cam.height), float(cam.fx), float(cam.fy),
                   float(cam.cx), float(cam.cy), np.array([x, y, z], dtype=float),
                   rotation_rpy(roll, pitch, yaw), float(getattr(cam, "rate_hz", 10.0)),
                   tuple(getattr(cam, "ignore", ()) or ()))

    @classmethod
    def looking_down(cls, x: float, y: float, z: float, width: int = 640, height: int = 480,
                     f: float = 320.0, yaw: float = 0.0, id: str = "cam0", kind: str = "rgb") -> PinholeCamera:
        return cls(id, kind, width, height, f, f, width / 2.0, height / 2.0, np.array([x, y, z], float),
                   rotation_rpy(math.pi, 0.0, yaw))

    # --- frames -----------------------------------------------------------------------------
    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    def to_camera(self, points_map: np.ndarray) -> np.ndarray:
        """Map points (N, 3) to the optical frame (N, 3)."""
        p = np.asarray(points_map, dtype=float).reshape(-1, 3)
        return (p - self.position) @ self.R

    def project(self, points_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (N, 2) and optical depths (N,) of map points; depth <= 0 means behind the camera
        (those pixels are NaN)."""
        pc = self.to_camera(points_map)
        z = pc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            zs = np.where(z > 1e-9, z, np.nan)
            uv = np.stack([self.fx * pc[:, 0] / zs + self.cx, self.fy * pc[:, 1] / zs + self.cy], axis=1)
        return uv, z

    def in_image(self, uv: np.ndarray, margin: float = 0.0) -> np.ndarray:
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        with np.errstate(invalid="ignore"):
            return ((uv[:, 0] >= margin) & (uv[:, 0] <= self.width - 1 - margin)
                    & (uv[:, 1] >= margin) & (uv[:, 1] <= self.height - 1 - margin))

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """Map-frame directions (N, 3) of pixels, scaled so the optical z component is 1
        (so C + s * ray is the point at optical depth s)."""
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        d = np.stack([(uv[:, 0] - self.cx) / self.fx, (uv[:, 1] - self.cy) / self.fy, np.ones(len(uv))], axis=1)
        return d @ self.R.T

    def backproject(self, uv: np.ndarray, h: float | np.ndarray = 0.0) -> np.ndarray:
        """Map points (N, 3) where the pixels' rays meet the plane z = h (NaN where they do not,
        in front of the camera)."""
        r = self.rays(uv)
        h = np.broadcast_to(np.asarray(h, dtype=float), (len(r),))
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (h - self.position[2]) / r[:, 2]
        s = np.where(np.isfinite(s) & (s > 0), s, np.nan)
        return self.position + s[:, None] * r

    def pixel_to_floor(self, u: float, v: float, h: float = 0.0) -> np.ndarray:
        return self.backproject(np.array([[u, v]]), h)[0]

    # --- geometry helpers --------------------------------------------------------------------
    @property
    def nadir_xy(self) -> np.ndarray:
        return self.position[:2].copy()

    def nadir_pixel(self) -> np.ndarray:
        """Image point of the vertical through the camera (vanishing point of verticals below it);
        NaN if the camera does not look downward at all."""
        uv, z = self.project(np.array([[self.position[0], self.position[1], self.position[2] - 1.0]]))
        return uv[0] if z[0] > 0 else np.array([np.nan, np.nan])

    def nadir_distance(self, xy: np.ndarray) -> np.ndarray:
        """Horizontal distance (m) of map points from the point below the camera."""
        xy = np.atleast_2d(np.asarray(xy, dtype=float))[:, :2]
        return np.hypot(xy[:, 0] - self.position[0], xy[:, 1] - self.position[1])

    def footprint(self, h: float = 0.0, margin: float = 0.0) -> np.ndarray:
        """The view's outline on the plane z = h (4, 3) (rows NaN where a corner ray misses it)."""
        m = margin
        corners = np.array([[m, m], [self.width - 1 - m, m], [self.width - 1 - m, self.height - 1 - m],
                            [m, self.height - 1 - m]], float)
        return self.backproject(corners, h)

    # --- uncertainty --------------------------------------------------------------------------
    def backproject_jacobian(self, uv: np.ndarray, h: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """d point / d(u, v) (N, 3, 2) and d point / d h (N, 3) of back-projection to z = h."""
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        r = self.rays(uv)
        h = np.broadcast_to(np.asarray(h, dtype=float), (len(r),))
        dh = h - self.position[2]
        rz = r[:, 2]
        ru = self.R[:, 0] / self.fx        # d ray / du (constant)
        rv = self.R[:, 1] / self.fy
        with np.errstate(divide="ignore", invalid="ignore"):
            j_u = dh[:, None] * (ru[None, :] * rz[:, None] - r * ru[2]) / (rz ** 2)[:, None]
            j_v = dh[:, None] * (rv[None, :] * rz[:, None] - r * rv[2]) / (rz ** 2)[:, None]
            j_h = r / rz[:, None]
        return np.stack([j_u, j_v], axis=2), j_h

    def ground_covariance(self, uv: np.ndarray, h: float | np.ndarray = 0.0, pixel_sd: float = 2.0,
                          height_sd: float = 0.0, floor_sd: float = 0.0) -> np.ndarray:
        """Covariance (N, 3, 3) of the map point back-projected from pixels uv to the plane z = h,
        from isotropic pixel noise (pixel_sd, px), uncertainty of the plane's height (height_sd, m:
        the person's true height vs the nominal one) and an isotropic floor term (floor_sd, m: body
        size). Grows with the distance from the nadir: the ray meets the plane ever more obliquely."""
        j_uv, j_h = self.backproject_jacobian(uv, h)
        cov = pixel_sd ** 2 * np.einsum("nij,nkj->nik", j_uv, j_uv)
        cov += height_sd ** 2 * np.einsum("ni,nk->nik", j_h, j_h)
        cov[:, 0, 0] += floor_sd ** 2
        cov[:, 1, 1] += floor_sd ** 2
        return cov


def cameras_of(store, kind: str | None = None) -> dict[str, PinholeCamera]:
    """PinholeCameras of a Store's layout cameras (optionally only one kind: rgb, depth)."""
    return {cid: PinholeCamera.from_layout(c) for cid, c in sorted(store.cameras.items())
            if kind is None or c.kind == kind}


# --- store geometry cameras see (static; no OpenCV) ------------------------------------------------------------

def gondola_height(store, gondola) -> float:
    """Top of a gondola (m): its `height_m` if the layout gives one, else the top shelf + 0.35 m."""
    h = getattr(gondola, "height_m", None)
    if h:
        return float(h)
    tops = [store.shelves[s].height_m for s in gondola.shelf_ids]
    return (max(tops) if tops else 1.5) + 0.35


def gondola_boxes(store, margin: float = 0.0) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(id, centre xy, rotation 2x2, ...) per gondola: (gid, corners (4, 2) ccw, axes, height)."""
    out = []
    for gid, g in sorted(store.gondolas.items()):
        c, s = math.cos(g.yaw), math.sin(g.yaw)
        hl, hd = g.length_m / 2 + margin, g.depth_m / 2 + margin
        local = np.array([[-hl, -hd], [hl, -hd], [hl, hd], [-hl, hd]])
        rot = np.array([[c, -s], [s, c]])
        out.append((gid, local @ rot.T + [g.x, g.y], rot, gondola_height(store, g)))
    return out


def floor_bounds(store) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of the sales floor: the layout's `floor:` (length_m along x,
    width_m along y, from the origin) if present, else everything in the layout plus 1 m."""
    try:
        doc = yaml.safe_load(store.source_text) if store.source_text else {}
        fl = (doc or {}).get("floor") or {}
        if "length_m" in fl and "width_m" in fl:
            return 0.0, 0.0, float(fl["length_m"]), float(fl["width_m"])
    except yaml.YAMLError:
        pass
    pts = [(g.x, g.y) for g in store.gondolas.values()] + [(g.x, g.y) for g in store.gates.values()]
    pts += [(c.pose[0], c.pose[1]) for c in store.cameras.values()]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(0.0, min(xs) - 1.0), min(0.0, min(ys) - 1.0), max(xs) + 1.0, max(ys) + 1.0


def point_in_gondola(store, xy: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Which floor points (N, 2) lie inside some gondola footprint (grown by margin)."""
    xy = np.atleast_2d(np.asarray(xy, dtype=float))
    inside = np.zeros(len(xy), bool)
    for g in store.gondolas.values():
        c, s = math.cos(g.yaw), math.sin(g.yaw)
        d = xy - [g.x, g.y]
        a = d[:, 0] * c + d[:, 1] * s
        b = -d[:, 0] * s + d[:, 1] * c
        inside |= (np.abs(a) <= g.length_m / 2 + margin) & (np.abs(b) <= g.depth_m / 2 + margin)
    return inside


_BOXES: dict[int, tuple] = {}


def _box_table(store) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per gondola: centre (3,), rotation map->box (3, 3), half extents lo/hi (3,), 2-D bounds."""
    key = id(store)
    if key not in _BOXES:
        centres, rots, los, his, bounds = [], [], [], [], []
        for gid, corners, _, height in gondola_boxes(store):
            g = store.gondolas[gid]
            c, s = math.cos(g.yaw), math.sin(g.yaw)
            centres.append([g.x, g.y, 0.0])
            rots.append([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
            los.append([-g.length_m / 2, -g.depth_m / 2, 0.0])
            his.append([g.length_m / 2, g.depth_m / 2, height])
            bounds.append([*corners.min(axis=0), *corners.max(axis=0)])
        _BOXES[key] = (store, *(np.array(v, float).reshape(-1, *shape) for v, shape in
                                ((centres, (3,)), (rots, (3, 3)), (los, (3,)), (his, (3,)), (bounds, (4,)))))
    return _BOXES[key][1:]


def segment_hits_gondola(store, a: np.ndarray, b: np.ndarray, margin: float = 0.0) -> bool:
    """Whether the 3-D segment a -> b passes through some gondola box (slab test, all boxes at once)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    centres, rots, lo, hi, bounds = _box_table(store)
    if len(centres) == 0:
        return False
    near = ((np.minimum(a[0], b[0]) <= bounds[:, 2] + margin) & (np.maximum(a[0], b[0]) >= bounds[:, 0] - margin)
            & (np.minimum(a[1], b[1]) <= bounds[:, 3] + margin) & (np.maximum(a[1], b[1]) >= bounds[:, 1] - margin))
    if not near.any():
        return False
    o = np.einsum("gij,gj->gi", rots[near], a - centres[near])
    d = np.einsum("gij,j->gi", rots[near], b - a)
    grow = np.array([margin, margin, 0.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = (lo[near] - grow - o) / d
        tb = (hi[near] + grow - o) / d
    parallel = np.abs(d) < 1e-12
    inside = (o >= lo[near] - grow) & (o <= hi[near] + grow)
    t0 = np.where(parallel, np.where(inside, -np.inf, np.inf), np.minimum(ta, tb))
    t1 = np.where(parallel, np.where(inside, np.inf, -np.inf), np.maximum(ta, tb))
    enter = np.maximum(t0.max(axis=1), 0.0)
    leave = np.minimum(t1.min(axis=1), 1.0)
    return bool(np.any(enter <= leave))
