"""The store layout drawn through one camera's calibration: the installer's check of a camera pose.

Everything the layout says is in a camera's view — the floor grid (1 m), gondola footprints and
tops, shelf front edges at their heights, plate boundaries, gate zones — as 3-D segments in `map`,
clipped to the half-space in front of the camera (a segment that passes behind it is cut at the
near plane, never wrapped around), projected with the pinhole model and drawn onto a real frame.
If the pose in the layout is right, the drawn gondola edges lie on the gondolas' edges in the image;
a pose off by decimetres shows at once. `edge_agreement` puts a number on it: the share of points
along the projected gondola edges that have an image edge (Canny) within a few pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from storefuse_core.vision.camera import PinholeCamera, floor_bounds, gondola_boxes

NEAR_M = 0.05
# BGR, one colour per kind so a misplaced element is easy to name
COLOURS = {"grid": (200, 200, 200), "gondola": (0, 220, 255), "shelf": (0, 230, 0), "plate": (255, 200, 0),
           "gate": (255, 0, 255)}
WIDTHS = {"grid": 1, "gondola": 2, "shelf": 2, "plate": 1, "gate": 2}
STRUCTURE = ("gondola", "shelf")      # what shows as strong edges in a frame: used by edge_agreement


@dataclass(frozen=True)
class Segment:
    kind: str           # grid | gondola | shelf | plate | gate
    a: tuple[float, float, float]
    b: tuple[float, float, float]


@dataclass(frozen=True)
class Label:
    kind: str
    text: str
    at: tuple[float, float, float]


def _ring(points: np.ndarray, z: float, kind: str) -> list[Segment]:
    pts = [(float(x), float(y), z) for x, y in points]
    return [Segment(kind, pts[i], pts[(i + 1) % len(pts)]) for i in range(len(pts))]


def _rect(cx: float, cy: float, yaw: float, along: float, across: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[-along / 2, -across / 2], [along / 2, -across / 2], [along / 2, across / 2],
                      [-along / 2, across / 2]])
    return local @ np.array([[c, -s], [s, c]]).T + [cx, cy]


def layout_geometry(store, grid_m: float = 1.0, plates: bool = True) -> tuple[list[Segment], list[Label]]:
    """The layout as map-frame segments and labels (no camera yet)."""
    segs: list[Segment] = []
    labels: list[Label] = []
    x0, y0, x1, y1 = floor_bounds(store)
    if grid_m > 0:
        for x in np.arange(math.ceil(x0 / grid_m) * grid_m, x1 + 1e-9, grid_m):
            segs.append(Segment("grid", (float(x), y0, 0.0), (float(x), y1, 0.0)))
        for y in np.arange(math.ceil(y0 / grid_m) * grid_m, y1 + 1e-9, grid_m):
            segs.append(Segment("grid", (x0, float(y), 0.0), (x1, float(y), 0.0)))
        step = 2 * grid_m            # coordinates every other line: enough to read the grid off
        for x in np.arange(math.ceil(x0 / step) * step, x1 + 1e-9, step):
            for y in np.arange(math.ceil(y0 / step) * step, y1 + 1e-9, step):
                labels.append(Label("grid", f"{x:g},{y:g}", (float(x), float(y), 0.0)))
    for gid, corners, _, height in gondola_boxes(store):
        segs += _ring(corners, 0.0, "gondola") + _ring(corners, height, "gondola")
        segs += [Segment("gondola", (float(x), float(y), 0.0), (float(x), float(y), height)) for x, y in corners]
        front = corners[:2]          # corners 0 -> 1: the aisle side (local -y), where the shelves open
        for sid in store.gondolas[gid].shelf_ids:
            h = store.shelves[sid].height_m
            segs.append(Segment("shelf", (*map(float, front[0]), h), (*map(float, front[1]), h)))
            labels.append(Label("shelf", sid, (*map(float, front[0]), h)))
            if plates:
                for pid in store.shelves[sid].plate_ids:
                    p = store.plates[pid]
                    segs += _ring(_rect(p.x, p.y, p.yaw, p.width_m, p.depth_m), h, "plate")
        top_front = (front[0] + front[1]) / 2
        labels.append(Label("gondola", gid, (float(top_front[0]), float(top_front[1]), height)))
    for g in store.gates.values():
        segs += _ring(_rect(g.x, g.y, g.yaw, g.width_m, g.width_m), 0.0, "gate")
        labels.append(Label("gate", g.id, (g.x, g.y, 0.0)))
    return segs, labels


def project_segment(camera: PinholeCamera, a, b, near: float = NEAR_M) -> tuple[np.ndarray, np.ndarray] | None:
    """Pixel end points of the part of segment a -> b in front of the camera (None: all behind)."""
    pa, pb = camera.to_camera(np.array([a, b], dtype=float))
    za, zb = pa[2], pb[2]
    if za < near and zb < near:
        return None
    if za < near or zb < near:       # cut at the near plane: the part behind would project mirrored
        t = (near - za) / (zb - za)
        cut = pa + t * (pb - pa)
        pa, pb = (cut, pb) if za < near else (pa, cut)
    uv = [np.array([camera.fx * p[0] / p[2] + camera.cx, camera.fy * p[1] / p[2] + camera.cy]) for p in (pa, pb)]
    return uv[0], uv[1]


def _clip(camera: PinholeCamera, uv0: np.ndarray, uv1: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]] | None:
    lim = 1e6                                 # cv2.clipLine takes ints; keep far points finite
    p0 = tuple(int(round(v)) for v in np.clip(uv0, -lim, lim))
    p1 = tuple(int(round(v)) for v in np.clip(uv1, -lim, lim))
    ok, q0, q1 = cv2.clipLine((0, 0, camera.width, camera.height), p0, p1)
    return (q0, q1) if ok else None


def scaled_camera(camera: PinholeCamera, width: int, height: int) -> PinholeCamera:
    """The camera for a frame of another resolution (same field of view: intrinsics scaled)."""
    if (width, height) == (camera.width, camera.height):
        return camera
    sx, sy = width / camera.width, height / camera.height
    return PinholeCamera(camera.id, camera.kind, width, height, camera.fx * sx, camera.fy * sy, camera.cx * sx,
                         camera.cy * sy, camera.position, camera.R, camera.rate_hz)


def projected_lines(camera: PinholeCamera, segs: list[Segment]) -> list[tuple[str, tuple, tuple]]:
    """(kind, p0, p1) pixel lines of the segments, clipped to the image."""
    out = []
    for s in segs:
        uv = project_segment(camera, s.a, s.b)
        line = _clip(camera, *uv) if uv is not None else None
        if line is not None:
            out.append((s.kind, *line))
    return out


def _text(img: np.ndarray, text: str, org: tuple[int, int], colour, scale: float = 0.4) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def draw_layout(image: np.ndarray, camera: PinholeCamera, store, grid_m: float = 1.0, plates: bool = True,
                labels: bool = True, title: str | None = None) -> np.ndarray:
    """A copy of the frame with the layout drawn as this camera should see it (scaled to the frame)."""
    img = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    cam = scaled_camera(camera, img.shape[1], img.shape[0])
    segs, marks = layout_geometry(store, grid_m, plates)
    order = {"grid": 0, "plate": 1, "gate": 2, "gondola": 3, "shelf": 4}      # structure on top
    for kind, p0, p1 in sorted(projected_lines(cam, segs), key=lambda line: order[line[0]]):
        cv2.line(img, p0, p1, COLOURS[kind], WIDTHS[kind], cv2.LINE_AA)
    if labels:
        pts = np.array([m.at for m in marks], dtype=float).reshape(-1, 3)
        uv, depth = cam.project(pts)
        inside = cam.in_image(uv, margin=2) & (depth > NEAR_M)
        for m, (u, v), ok in zip(marks, uv, inside):
            if ok:
                _text(img, m.text, (int(u) + 3, int(v) - 3), COLOURS[m.kind], 0.35 if m.kind in ("grid", "shelf")
                      else 0.45)
    if title:
        _text(img, title, (6, 16), (255, 255, 255), 0.45)
    return img


@dataclass(frozen=True)
class Agreement:
    """How well the drawn gondola and shelf edges sit on the frame's edges.

    share: of the visible points along them, those with an image edge (Canny) within tol_px;
    chance: the same for the drawing shifted by shift_px in eight directions (a cluttered frame
    has edges everywhere: share means something only well above chance); points: how many."""
    share: float
    chance: float
    points: int

    @property
    def lift(self) -> float:
        """share - chance: about 0 for a drawing that is off, ~0.3-0.5 for a right one."""
        return self.share - self.chance


def edge_agreement(image: np.ndarray, camera: PinholeCamera, store, tol_px: int = 3, step_px: float = 4.0,
                   kinds: tuple[str, ...] = STRUCTURE, canny: tuple[int, int] = (20, 60),
                   shift_px: int = 15) -> Agreement:
    """Agreement of the projected gondola and shelf edges with the frame's edges (nan: none in view).
    Points a gondola hides from the camera are skipped: they have no edge to agree with."""
    from storefuse_core.vision.camera import segment_hits_gondola
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cam = scaled_camera(camera, grey.shape[1], grey.shape[0])
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 0), *canny)
    near = cv2.dilate(edges, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol_px + 1, 2 * tol_px + 1))) > 0
    pixels = []
    for seg in layout_geometry(store, grid_m=0, plates=False)[0]:
        if seg.kind not in kinds or (uv := project_segment(cam, seg.a, seg.b)) is None:
            continue
        n = int(min(2000, max(2, np.hypot(*(uv[1] - uv[0])) / step_px)))
        pts = np.array(seg.a) + np.linspace(0.0, 1.0, n)[:, None] * (np.array(seg.b) - np.array(seg.a))
        pix, depth = cam.project(pts)
        ok = (depth > NEAR_M) & cam.in_image(pix, margin=tol_px)
        for p, uv_ in zip(pts[ok], pix[ok]):
            ray = p - cam.position
            if not segment_hits_gondola(store, cam.position, p - 0.03 * ray / np.linalg.norm(ray)):
                pixels.append(uv_)            # else hidden behind (or by) a gondola
    if not pixels:
        return Agreement(float("nan"), float("nan"), 0)
    uv = np.round(np.array(pixels)).astype(int)

    def share(du: int, dv: int) -> float:
        u, v = uv[:, 0] + du, uv[:, 1] + dv
        ok = (u >= 0) & (u < near.shape[1]) & (v >= 0) & (v < near.shape[0])
        return float(near[v[ok], u[ok]].mean()) if ok.any() else float("nan")
    d = shift_px
    shifts = [(d, 0), (-d, 0), (0, d), (0, -d), (d, d), (-d, d), (d, -d), (-d, -d)]
    return Agreement(share(0, 0), float(np.nanmean([share(du, dv) for du, dv in shifts])), len(uv))


__all__ = ["COLOURS", "Agreement", "Label", "Segment", "draw_layout", "edge_agreement", "layout_geometry",
           "project_segment", "projected_lines", "scaled_camera"]
