"""Rendered frames of a store camera, with OpenCV 2-D drawing only (no GL, headless, a few ms a frame).

What a ceiling camera sees: a tiled floor under pools of ceiling light, gondolas as boxes with
product facings on their aisle side, and shoppers as simple 3-D bodies (two leg cylinders, an
elliptic torso cylinder, two arms — one reaching toward a 3-D point when the shopper reaches — and a
head sphere with hair and face), in varied clothing. Occlusion is the painter's algorithm: objects
far from the camera's vertical first (for a camera above the floor the nearer object along a ray is
the one closer to the vertical below it), each object's parts by optical depth, box faces with
back-face culling. Lighting drifts in gain and colour temperature over time (`Lighting`), people
cast soft shadows, the sensor adds blur and noise. `render_depth` gives the same scene as a uint16
depth image in millimetres, by exact ray intersection with the boxes, cylinders and spheres.

Everything is deterministic given the renderer's seed, the people and the time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from storefuse_core.vision import Person, skin_and_hair, stable_hash
from storefuse_core.vision.camera import (  # noqa: F401  (re-exported)
    PinholeCamera,
    floor_bounds,
    gondola_boxes,
    gondola_height,
    point_in_gondola,
)

NEAR_M = 0.05


_hash = stable_hash


# --- lighting -------------------------------------------------------------------------------------

@dataclass
class Lighting:
    """Global illumination over time: slow gain drift, colour-temperature drift, a little flicker,
    and optional abrupt steps (a light bank switching) as (t_s, gain, warmth) tuples.
    warmth > 0 makes the light redder, < 0 bluer. `at(t)` gives per-channel (b, g, r) gains."""
    seed: int = 0
    gain: float = 1.0
    drift_amp: float = 0.10
    drift_period_s: float = 90.0
    warmth_amp: float = 0.05
    warmth_period_s: float = 150.0
    flicker_sd: float = 0.004
    steps: tuple[tuple[float, float, float], ...] = ()

    def at(self, t: float) -> np.ndarray:
        ph = (_hash("light", self.seed) % 10_000) / 10_000 * 2 * math.pi
        g = self.gain * (1.0 + self.drift_amp * math.sin(2 * math.pi * t / self.drift_period_s + ph))
        w = self.warmth_amp * math.sin(2 * math.pi * t / self.warmth_period_s + 2.1 * ph)
        for t0, sg, sw in self.steps:
            if t >= t0:
                g *= sg
                w += sw
        rng = np.random.default_rng([self.seed, int(round(t * 1000)) & 0xFFFFFFFF, 7])
        g *= 1.0 + self.flicker_sd * float(rng.standard_normal())
        return np.array([g * (1.0 - w), g, g * (1.0 + w)])

    @classmethod
    def constant(cls, gain: float = 1.0) -> Lighting:
        return cls(gain=gain, drift_amp=0.0, warmth_amp=0.0, flicker_sd=0.0)


@dataclass
class RenderParams:
    noise_sd: float = 3.0            # sensor noise (grey levels)
    blur: bool = True                # optics / demosaic softness
    shadow_strength: float = 0.45    # darkening at the centre of a shopper's shadow
    shadow_radius_m: float = 0.45
    tile_m: float = 0.6
    floor_bgr: tuple[int, int, int] = (152, 164, 176)
    depth_noise_a_m: float = 0.002   # depth sd = a + b * d^2
    depth_noise_b: float = 0.0015
    depth_dropout: float = 0.005     # fraction of invalid (0) depth pixels


# --- the people model -----------------------------------------------------------------------------

@dataclass
class Part:
    """A capped (elliptic) cylinder p0 -> p0 + L * e3 with radii a (along e1), b (along e2),
    or a sphere (L = 0, a = radius) — the people's building blocks."""
    name: str
    p0: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    e3: np.ndarray
    length: float
    a: float
    b: float
    colour: tuple[int, int, int]
    top_colour: tuple[int, int, int] | None = None
    sphere: bool = False

    @property
    def centre(self) -> np.ndarray:
        return self.p0 + 0.5 * self.length * self.e3

    def ring(self, at: float, n: int = 10) -> np.ndarray:
        th = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return (self.p0 + at * self.e3)[None, :] + np.cos(th)[:, None] * self.a * self.e1 + \
            np.sin(th)[:, None] * self.b * self.e2


def _frame(axis: np.ndarray, hint: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    axis = axis / np.linalg.norm(axis)
    hint = np.array([0.0, 0.0, 1.0]) if hint is None else hint
    if abs(float(np.dot(axis, hint))) > 0.9:
        hint = np.array([1.0, 0.0, 0.0])
    e1 = np.cross(hint, axis)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(axis, e1)


def _shade(bgr, k: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, round(c * k)))) for c in bgr)


def person_parts(p: Person) -> list[Part]:
    """The 3-D body of a shopper (map frame)."""
    k = p.height_m / 1.70
    skin, hair = skin_and_hair(p.id)
    fwd = np.array([math.cos(p.heading_rad), math.sin(p.heading_rad), 0.0])
    left = np.array([-fwd[1], fwd[0], 0.0])
    up = np.array([0.0, 0.0, 1.0])
    base = np.array([p.x, p.y, 0.0])
    leg_len, hip_z = 0.47 * p.height_m, 0.47 * p.height_m
    sh_z = 0.81 * p.height_m
    parts = []
    for side in (1, -1):
        parts.append(Part(f"leg{side}", base + side * 0.095 * k * left, fwd, left, up, leg_len, 0.07 * k, 0.07 * k,
                          p.pants_bgr, _shade(p.pants_bgr, 1.1)))
    parts.append(Part("torso", base + hip_z * up, fwd, left, up, sh_z - hip_z, 0.125 * k, 0.205 * k, p.shirt_bgr,
                      _shade(p.shirt_bgr, 1.18)))
    shoulders = {side: base + (sh_z - 0.04 * k) * up + side * 0.2 * k * left for side in (1, -1)}
    reach_side = 0
    if p.reach is not None:
        target = np.asarray(p.reach, float)
        reach_side = 1 if np.dot(target - base, left) >= 0 else -1
    arm_len = 0.62 * k
    for side in (1, -1):
        s0 = shoulders[side]
        if side == reach_side:
            d = np.asarray(p.reach, float) - s0
            n = float(np.linalg.norm(d))
            hand = s0 + d / max(n, 1e-6) * min(arm_len, n)
        else:
            hand = base + 0.42 * p.height_m * up + side * 0.25 * k * left + 0.04 * fwd
        axis = hand - s0
        e1, e2 = _frame(axis, fwd)
        parts.append(Part(f"arm{side}", s0, e1, e2, axis / np.linalg.norm(axis), float(np.linalg.norm(axis)),
                          0.045 * k, 0.045 * k, p.shirt_bgr if side != reach_side else _shade(p.shirt_bgr, 0.92),
                          None))
    head_r = 0.1 * k
    parts.append(Part("head", base + (p.height_m - head_r) * up, fwd, left, up, 0.0, head_r, head_r, hair,
                      skin, sphere=True))
    return parts


# --- ray intersection (depth) ---------------------------------------------------------------------

def _ray_part(origin: np.ndarray, dirs: np.ndarray, part: Part) -> np.ndarray:
    """Ray parameter t (same scale as dirs) of the first hit of rays origin + t dirs with a part
    (inf where missed)."""
    o = origin - part.p0
    if part.sphere:
        c = part.p0
        oc = origin - c
        a = np.einsum("ij,ij->i", dirs, dirs)
        b = 2 * dirs @ oc
        cc = float(oc @ oc) - part.a ** 2
        disc = b * b - 4 * a * cc
        with np.errstate(invalid="ignore"):
            t = (-b - np.sqrt(disc)) / (2 * a)
        return np.where((disc >= 0) & (t > 0), t, np.inf)
    # to the part frame, scaled so the cross-section is the unit circle
    basis = np.stack([part.e1 / part.a, part.e2 / part.b, part.e3], axis=0)
    ol = basis @ o
    dl = dirs @ basis.T
    best = np.full(len(dirs), np.inf)
    a = dl[:, 0] ** 2 + dl[:, 1] ** 2
    b = 2 * (ol[0] * dl[:, 0] + ol[1] * dl[:, 1])
    c = ol[0] ** 2 + ol[1] ** 2 - 1.0
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / (2 * a)
        z = ol[2] + t * dl[:, 2]
        ok = (disc >= 0) & (a > 1e-12) & (t > 0) & (z >= 0) & (z <= part.length)
        best = np.where(ok, t, best)
        for cap in (0.0, part.length):
            tc = (cap - ol[2]) / dl[:, 2]
            xc = ol[0] + tc * dl[:, 0]
            yc = ol[1] + tc * dl[:, 1]
            okc = (tc > 0) & (xc ** 2 + yc ** 2 <= 1.0)
            best = np.where(okc & (tc < best), tc, best)
    return best


def _ray_box(origin: np.ndarray, dirs: np.ndarray, lo: np.ndarray, hi: np.ndarray, rot: np.ndarray,
             centre: np.ndarray) -> np.ndarray:
    """First hit of rays with an oriented box (rotation about z); inf where missed."""
    r3 = np.eye(3)
    r3[:2, :2] = rot
    o = (origin - centre) @ r3
    d = dirs @ r3
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo[None, :] - o[None, :]) / d
        t2 = (hi[None, :] - o[None, :]) / d
    tmin = np.nanmax(np.minimum(t1, t2), axis=1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=1)
    return np.where((tmax >= tmin) & (tmax > 0), np.maximum(tmin, 0), np.inf)


# --- the renderer ---------------------------------------------------------------------------------

@dataclass
class _Polygon:
    pts: np.ndarray            # int32 (N, 2), fixed point with SHIFT bits
    colour: tuple[int, int, int]


SHIFT = 2                      # sub-pixel bits for cv2 drawing
NOISE_PAD = 32


@dataclass
class _Object:
    key: float                 # painter's key: horizontal distance from the camera (larger first)
    polys: list[_Polygon] = field(default_factory=list)


class CameraRenderer:
    """Renders one camera of one store. Build once (the static floor and gondolas are cached),
    then call `render(people, t)` / `render_depth(people, t)` per frame."""

    def __init__(self, store, camera: PinholeCamera, seed: int = 0, lighting: Lighting | None = None,
                 params: RenderParams | None = None):
        self.store = store
        self.camera = camera
        self.seed = int(seed)
        self.params = params or RenderParams()
        self.lighting = lighting if lighting is not None else Lighting(seed=seed)
        self.bounds = floor_bounds(store)
        self._cam_hash = _hash(camera.id, self.seed)
        h, w = camera.height, camera.width
        vv, uu = np.mgrid[0:h, 0:w]
        self._uv = np.stack([uu.ravel() + 0.0, vv.ravel() + 0.0], axis=1)
        self._rays = camera.rays(self._uv)
        self.floor_image = self._floor_image()
        self._gondolas = self._gondola_objects()
        self._static_depth = None
        self._circle = np.stack([np.cos(np.linspace(0, 2 * np.pi, 20, endpoint=False)),
                                 np.sin(np.linspace(0, 2 * np.pi, 20, endpoint=False))], axis=1)
        nrng = np.random.default_rng([self._cam_hash, 99])
        self._noise = np.round(nrng.normal(0.0, self.params.noise_sd, (3, h + NOISE_PAD, w + NOISE_PAD, 3))
                               ).astype(np.int16)

    # static scene ---------------------------------------------------------------------------
    def _floor_image(self) -> np.ndarray:
        cam, p = self.camera, self.params
        h, w = cam.height, cam.width
        pts = cam.backproject(self._uv, 0.0)
        x, y = pts[:, 0], pts[:, 1]
        xmin, ymin, xmax, ymax = self.bounds
        on_floor = np.isfinite(x) & (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
        xs, ys = np.nan_to_num(x), np.nan_to_num(y)
        tx, ty = np.floor(xs / p.tile_m), np.floor(ys / p.tile_m)
        tile_rng = np.random.default_rng(self.seed + 11)
        table = tile_rng.normal(0, 6.0, size=(4096, 3))
        idx = ((tx.astype(np.int64) * 73856093) ^ (ty.astype(np.int64) * 19349663)) % 4096
        col = np.asarray(p.floor_bgr, float)[None, :] + table[idx]
        fx, fy = xs / p.tile_m - tx, ys / p.tile_m - ty
        grout = (np.minimum(np.minimum(fx, 1 - fx), np.minimum(fy, 1 - fy)) * p.tile_m) < 0.008
        col[grout] *= 0.72
        # mottling: a few low-frequency waves (terrazzo-ish), deterministic
        mot = np.zeros_like(xs)
        for _ in range(4):
            kx, ky, ph = tile_rng.uniform(2, 9), tile_rng.uniform(2, 9), tile_rng.uniform(0, 6.3)
            mot += np.sin(kx * xs + ph) * np.sin(ky * ys + 1.3 * ph)
        col *= (1.0 + 0.02 * mot)[:, None]
        # pools of light under ceiling fixtures every 2.5 m
        lx = np.arange(xmin + 1.25, xmax, 2.5)
        ly = np.arange(ymin + 1.25, ymax, 2.5)
        illum = np.full_like(xs, 0.82)
        for cx in lx:
            for cy in ly:
                illum += 0.22 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 0.9 ** 2))
        col *= np.minimum(illum, 1.15)[:, None]
        wall = np.array([196.0, 200.0, 205.0]) * (0.85 + 0.15 * (self._uv[:, 1] / max(1, h)))[:, None]
        col = np.where(on_floor[:, None], col, wall)
        return np.clip(col, 0, 255).astype(np.uint8).reshape(h, w, 3)

    def _project_poly(self, pts3: np.ndarray) -> np.ndarray | None:
        """Project a planar 3-D polygon, clipped at the near plane; None if nothing is in front."""
        pc = self.camera.to_camera(pts3)
        out = []
        n = len(pc)
        for i in range(n):
            a, b = pc[i], pc[(i + 1) % n]
            ina, inb = a[2] > NEAR_M, b[2] > NEAR_M
            if ina:
                out.append(a)
            if ina != inb:
                t = (NEAR_M - a[2]) / (b[2] - a[2])
                out.append(a + t * (b - a))
        if len(out) < 3:
            return None
        pc = np.array(out)
        uv = np.stack([self.camera.fx * pc[:, 0] / pc[:, 2] + self.camera.cx,
                       self.camera.fy * pc[:, 1] / pc[:, 2] + self.camera.cy], axis=1)
        uv = np.clip(uv, -20000, 20000)
        return np.round(uv * (1 << SHIFT)).astype(np.int32)

    def _gondola_objects(self) -> list[_Object]:
        objs = []
        cam_xy = self.camera.position[:2]
        for gid, corners, rot, height in gondola_boxes(self.store):
            g = self.store.gondolas[gid]
            centre = np.array([g.x, g.y])
            lo3 = np.hstack([corners, np.zeros((4, 1))])
            hi3 = np.hstack([corners, np.full((4, 1), height)])
            faces = [(hi3, np.array([0, 0, 1.0]), (110, 112, 118))]          # top
            front = -rot[:, 1]                                               # shelves face local -y
            for i in range(4):
                j = (i + 1) % 4
                quad = np.array([lo3[i], lo3[j], hi3[j], hi3[i]])
                mid = (corners[i] + corners[j]) / 2
                normal = np.append((mid - centre) / np.linalg.norm(mid - centre), 0.0)
                is_front = float(normal[:2] @ front) > 0.9
                faces.append((quad, normal, (150, 150, 155) if is_front else (128, 130, 134), is_front))
            obj = _Object(key=float(np.min(np.hypot(*(self._nearest_on_box(corners, cam_xy) - cam_xy)))))
            for face in faces:
                quad, normal, colour = face[0], face[1], face[2]
                view = quad.mean(axis=0) - self.camera.position
                if float(view @ normal) >= 0:                                # back face
                    continue
                poly = self._project_poly(quad)
                if poly is None:
                    continue
                obj.polys.append(_Polygon(poly, colour))
                if len(face) > 3 and face[3]:
                    obj.polys += self._facings(g, quad, height)
            objs.append(obj)
        return objs

    @staticmethod
    def _nearest_on_box(corners: np.ndarray, p: np.ndarray) -> np.ndarray:
        best, bd = corners[0], np.inf
        for i in range(4):
            a, b = corners[i], corners[(i + 1) % 4]
            t = float(np.clip(np.dot(p - a, b - a) / max(1e-9, np.dot(b - a, b - a)), 0, 1))
            q = a + t * (b - a)
            d = float(np.hypot(*(q - p)))
            if d < bd:
                best, bd = q, d
        rel = (corners - p)
        cross = rel[:, 0] * np.roll(rel[:, 1], -1) - rel[:, 1] * np.roll(rel[:, 0], -1)
        if np.all(cross >= 0) or np.all(cross <= 0):       # p inside the (convex) footprint
            return p
        return best

    def _facings(self, g, quad: np.ndarray, height: float) -> list[_Polygon]:
        """Coloured product blocks on the aisle face: one per plate, standing on each shelf."""
        polys = []
        a, b = quad[0][:2], quad[1][:2]                 # bottom edge of the face, along the gondola
        out = np.append((quad[0][:2] + quad[1][:2]) / 2 - [g.x, g.y], 0.0)
        out = out / np.linalg.norm(out) * 0.01
        shelves = [self.store.shelves[s] for s in g.shelf_ids]
        tops = [s.height_m for s in shelves[1:]] + [height - 0.05]
        for shelf, top in zip(shelves, tops):
            n = len(shelf.plate_ids)
            for k, pid in enumerate(shelf.plate_ids):
                skus = self.store.plate_products.get(pid, ())
                colour = (70, 70, 75) if not skus else tuple(
                    int(40 + (_hash(skus[0], c) % 200)) for c in range(3))
                f0, f1 = (k + 0.08) / n, (k + 0.92) / n
                p0, p1 = a + f0 * (b - a), a + f1 * (b - a)
                z0, z1 = shelf.height_m, shelf.height_m + 0.8 * (top - shelf.height_m)
                quad3 = np.array([[*p0, z0], [*p1, z0], [*p1, z1], [*p0, z1]]) + out
                poly = self._project_poly(quad3)
                if poly is not None:
                    polys.append(_Polygon(poly, colour))
        return polys

    # people --------------------------------------------------------------------------------
    def _person_object(self, p: Person) -> _Object:
        cam = self.camera
        parts = person_parts(p)
        d = float(np.hypot(p.x - cam.position[0], p.y - cam.position[1]))
        obj = _Object(key=d - 0.05)
        depth_of = []
        for part in parts:
            depth_of.append(float(cam.to_camera(part.centre[None, :])[0, 2]))
        order = np.argsort(-np.array(depth_of), kind="stable")
        for i in order:
            part = parts[i]
            if part.sphere:
                obj.polys += self._sphere_polys(part)
                continue
            ring0, ring1 = part.ring(0.0), part.ring(part.length)
            pc = cam.to_camera(np.vstack([ring0, ring1]))
            if np.any(pc[:, 2] <= NEAR_M):
                continue
            uv = np.stack([cam.fx * pc[:, 0] / pc[:, 2] + cam.cx, cam.fy * pc[:, 1] / pc[:, 2] + cam.cy], axis=1)
            pts = np.round(uv * (1 << SHIFT)).astype(np.int32)
            hull = cv2.convexHull(pts)
            obj.polys.append(_Polygon(hull.reshape(-1, 2), part.colour))
            if part.top_colour is not None and float((part.p0 + part.length * part.e3 - cam.position) @ part.e3) < 0:
                # the top cap faces the camera: lit from the ceiling
                obj.polys.append(_Polygon(pts[len(ring0):], part.top_colour))
        return obj

    def _sphere_polys(self, part: Part) -> list[_Polygon]:
        cam = self.camera
        c = part.p0
        pc = cam.to_camera(c[None, :])[0]
        if pc[2] <= part.a + NEAR_M:
            return []
        # silhouette: a circle around the projected centre (fine for a small sphere)
        th = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        e1, e2 = _frame(pc)
        ring = pc[None, :] + part.a * (np.cos(th)[:, None] * e1 + np.sin(th)[:, None] * e2)
        uv = np.stack([cam.fx * ring[:, 0] / ring[:, 2] + cam.cx, cam.fy * ring[:, 1] / ring[:, 2] + cam.cy], axis=1)
        polys = [_Polygon(np.round(uv * (1 << SHIFT)).astype(np.int32), part.colour)]
        # face: skin on the heading side of the head, below the crown
        fc = part.p0 + 0.55 * part.a * part.e1 - 0.2 * part.a * part.e3
        face = fc[None, :] + 0.6 * part.a * (np.cos(th)[:, None] * part.e2 + np.sin(th)[:, None] * part.e3)
        fcam = cam.to_camera(face)
        view = cam.to_camera(fc[None, :])[0]
        if np.all(fcam[:, 2] > NEAR_M) and float((fc - c) @ (cam.position - c)) > -0.3 * part.a * np.linalg.norm(
                cam.position - c) and view[2] > 0:
            uvf = np.stack([cam.fx * fcam[:, 0] / fcam[:, 2] + cam.cx, cam.fy * fcam[:, 1] / fcam[:, 2] + cam.cy],
                           axis=1)
            hull = cv2.convexHull(np.round(uvf * (1 << SHIFT)).astype(np.int32)).reshape(-1, 2)
            polys.append(_Polygon(hull, part.top_colour or (120, 160, 225)))
        return polys

    def _shadows(self, img: np.ndarray, people: list[Person]) -> None:
        """Soft contact shadows: concentric discs on the floor around each shopper, blurred,
        darkening the floor image in place (only inside their bounding box)."""
        if not people or self.params.shadow_strength <= 0:
            return
        h, w = img.shape[:2]
        polys = []
        for p in people:
            for frac, level in ((1.0, 70), (0.75, 70), (0.5, 70), (0.3, 45)):
                pts3 = np.hstack([np.array([p.x, p.y]) + self.params.shadow_radius_m * frac * self._circle,
                                  np.full((len(self._circle), 1), 0.001)])
                poly = self._project_poly(pts3)
                if poly is not None:
                    polys.append((poly, level))
        if not polys:
            return
        allp = np.vstack([q for q, _ in polys]) >> SHIFT
        x0, y0 = max(0, int(allp[:, 0].min()) - 8), max(0, int(allp[:, 1].min()) - 8)
        x1, y1 = min(w, int(allp[:, 0].max()) + 9), min(h, int(allp[:, 1].max()) + 9)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        layer = np.zeros_like(mask)
        off = np.array([x0, y0], np.int32) << SHIFT
        for poly, level in polys:
            layer[:] = 0
            cv2.fillPoly(layer, [poly - off], level, lineType=cv2.LINE_AA, shift=SHIFT)
            cv2.add(mask, layer, dst=mask)
        roi = cv2.GaussianBlur(mask, (0, 0), 3.0).astype(np.float32)
        factor = 1.0 - (self.params.shadow_strength / 255.0) * roi
        sub = img[y0:y1, x0:x1].astype(np.float32) * factor[:, :, None]
        img[y0:y1, x0:x1] = np.clip(sub, 0, 255).astype(np.uint8)

    # frames --------------------------------------------------------------------------------
    def render(self, people: list[Person], t: float = 0.0) -> np.ndarray:
        """BGR uint8 image (height x width x 3) of the camera at time t (s)."""
        img = self.floor_image.copy()
        self._shadows(img, people)
        objects = list(self._gondolas) + [self._person_object(p) for p in people]
        objects.sort(key=lambda o: -o.key)
        for obj in objects:
            for poly in obj.polys:
                cv2.fillPoly(img, [poly.pts], poly.colour, lineType=cv2.LINE_AA, shift=SHIFT)
        if self.params.blur:
            img = cv2.GaussianBlur(img, (3, 3), 0)
        gains = self.lighting.at(t)
        img = cv2.multiply(img, (float(gains[0]), float(gains[1]), float(gains[2]), 0.0))
        if self.params.noise_sd > 0:
            # a window of a pre-drawn noise bank at a per-frame random offset: i.i.d.-looking
            # Gaussian noise at a fraction of the cost of drawing it every frame
            rng = np.random.default_rng([self._cam_hash, int(round(t * 1000)) & 0xFFFFFFFF])
            k, dy, dx = int(rng.integers(len(self._noise))), int(rng.integers(NOISE_PAD)), int(rng.integers(NOISE_PAD))
            h, w = img.shape[:2]
            img = cv2.add(img, self._noise[k, dy:dy + h, dx:dx + w], dtype=cv2.CV_8U)
        return img

    def static_depth_m(self) -> np.ndarray:
        """Optical depth (m, float32, H x W) of the empty store: floor and gondolas (inf: nothing)."""
        if self._static_depth is None:
            cam = self.camera
            with np.errstate(divide="ignore", invalid="ignore"):
                s = (0.0 - cam.position[2]) / self._rays[:, 2]
            depth = np.where(np.isfinite(s) & (s > 0), s, np.inf)
            for gid, _, rot, height in gondola_boxes(self.store):
                g = self.store.gondolas[gid]
                lo = np.array([-g.length_m / 2, -g.depth_m / 2, 0.0])
                hi = np.array([g.length_m / 2, g.depth_m / 2, height])
                t = _ray_box(cam.position, self._rays, lo, hi, rot, np.array([g.x, g.y, 0.0]))
                depth = np.minimum(depth, t)
            self._static_depth = depth.reshape(cam.height, cam.width).astype(np.float32)
        return self._static_depth

    def render_depth(self, people: list[Person], t: float = 0.0) -> np.ndarray:
        """Depth image (uint16, millimetres along the optical axis, 0 = no return) of the scene."""
        cam = self.camera
        depth = self.static_depth_m().copy()
        h, w = depth.shape
        for p in people:
            parts = person_parts(p)
            pts = np.vstack([np.vstack([pt.ring(0.0, 8), pt.ring(pt.length, 8)]) if not pt.sphere else
                             pt.p0[None, :] + pt.a * np.vstack([np.eye(3), -np.eye(3)]) for pt in parts])
            uv, z = cam.project(pts)
            if np.any(z <= NEAR_M) or not np.all(np.isfinite(uv)):
                continue
            x0, y0 = int(max(0, np.floor(uv[:, 0].min()) - 2)), int(max(0, np.floor(uv[:, 1].min()) - 2))
            x1, y1 = int(min(w, np.ceil(uv[:, 0].max()) + 3)), int(min(h, np.ceil(uv[:, 1].max()) + 3))
            if x1 <= x0 or y1 <= y0:
                continue
            vv, uu = np.mgrid[y0:y1, x0:x1]
            rays = cam.rays(np.stack([uu.ravel() + 0.0, vv.ravel() + 0.0], axis=1))
            best = np.full(len(rays), np.inf)
            for part in parts:
                best = np.minimum(best, _ray_part(cam.position, rays, part))
            roi = depth[y0:y1, x0:x1]
            np.minimum(roi, best.reshape(roi.shape).astype(np.float32), out=roi)
        prm = self.params
        rng = np.random.default_rng([self.seed, _hash(cam.id), int(round(t * 1000)) & 0xFFFFFFFF, 3])
        finite = np.isfinite(depth)
        d = np.where(finite, depth, 0.0)
        noisy = d + (prm.depth_noise_a_m + prm.depth_noise_b * d ** 2) * rng.standard_normal(d.shape)
        mm = np.clip(np.round(noisy * 1000.0), 0, 65535)
        mm[~finite] = 0
        if prm.depth_dropout > 0:
            mm[rng.random(d.shape) < prm.depth_dropout] = 0
        return mm.astype(np.uint16)


_CACHE: dict[tuple, CameraRenderer] = {}


def renderer_for(store, camera: PinholeCamera, seed: int = 0) -> CameraRenderer:
    key = (id(store), camera.id, seed)
    if key not in _CACHE:
        _CACHE[key] = CameraRenderer(store, camera, seed)
    return _CACHE[key]


def render(store, camera: PinholeCamera, people: list[Person], t: float = 0.0, seed: int = 0) -> np.ndarray:
    """One BGR frame (cached renderer per store, camera and seed)."""
    return renderer_for(store, camera, seed).render(people, t)


def render_depth(store, camera: PinholeCamera, people: list[Person], t: float = 0.0, seed: int = 0) -> np.ndarray:
    """One uint16 depth frame in millimetres (same geometry as `render`)."""
    return renderer_for(store, camera, seed).render_depth(people, t)
