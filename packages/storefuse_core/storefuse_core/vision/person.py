"""The real person detectors of storefuse cameras: RGB background subtraction and depth clustering.

RGB (`PersonDetector`), per frame, at half resolution:
1. Global lighting: the frame is divided by a per-channel gain, the median ratio frame/background
   over background pixels (gain drift and colour-temperature drift cancel out).
2. Foreground: max-channel |frame - background| above a threshold; pixels darker than the background
   by a shadow-like ratio with the background's chromaticity are shadows, not people.
3. Morphology (open, close), connected components, size gating against the expected silhouette
   area of a person standing where the blob is; blobs much larger than one person (two shoppers
   side by side) are split where they have separate thick cores, if every part is a body's worth.
   A blob whose feet are in one of the camera's ignore regions (layout: glass walls and doors onto
   other rooms, screens) is not a shopper on this floor.
4. Each blob's centroid is back-projected (camera.py) to a horizontal plane at the body's effective
   height (`body_height_m`, fitted by bench/fit_detection_model.py) to give the floor position; its
   covariance is the back-projection of pixel noise and height uncertainty, so it grows with the
   distance from the camera's nadir. Score from the blob's size; appearance = HSV histogram of the
   blob's (gain-normalised) pixels.
5. The background: the per-pixel median of the warm-up frames, then it adapts slowly where there is
   no foreground and much more slowly under foreground (a shopper who stands still stays). Two
   things the background must forget quickly are told apart from a shopper:
   - a **ghost** — where something the background learned (a shopper in view at start-up) has
     left: a still foreground region across whose outline the *background* changes while the
     *frame* continues smoothly (the frame shows what is really there). Absorbed at once;
   - a **stale change** — a door left open, a moved sign: foreground that has not changed for
     `absorb_s` with no motion near it. A shopper is never that still for long (head, hands, sway),
     a rendered one standing at a shelf for a few seconds is, so `absorb_s` is longer than that.

Depth (`DepthPersonDetector`): depth pixels -> points in map, floor (z < 0.3 m) and gondola boxes
removed, a max-height map on a 5 cm grid, heads = local maxima above 1 m; the person is the head's
position and the map's height there is the person's height.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from storefuse_core.vision import APPEARANCE_DIM, Detection, appearance_descriptor
from storefuse_core.vision.camera import PinholeCamera

cv2.setNumThreads(1)       # camera hosts run many cameras; one thread each is faster and predictable


@dataclass
class DetectorParams:
    scale: float = 0.5                 # processing resolution relative to the frame
    warmup_frames: int = 8             # frames before detections are reported
    learning_rate: float = 0.02        # background adaptation per frame where there is no foreground
    fg_learning_rate: float = 0.0005   # ... and under foreground (stationary shoppers fade slowly)
    diff_threshold: float = 26.0       # grey levels, max over channels, after gain normalisation
    shadow_lo: float = 0.5             # brightness ratio range of a shadow (frame/background)
    shadow_hi: float = 0.94
    shadow_chroma: float = 0.022       # max chromaticity change of a shadow
    open_px: int = 3                   # morphology at processing scale
    close_px: int = 9
    min_area_frac: float = 0.18        # of the expected silhouette area
    min_area_frac_border: float = 0.08 # ... for a blob the image border cuts
    split_area_frac: float = 1.2       # blobs bigger than this many persons may be split ...
    split_area_frac_border: float = 1.3  # ... or, cut by the image border (more of it shows), this many
    core_frac: float = 0.4             # a body's core: distance to the blob edge > this x the maximum ...
    bridge_frac: float = 0.7           # ... and two cores are two bodies if the way between them narrows to this
    max_split: int = 4
    split_part_frac: float = 0.4       # a split only if every part is at least this many persons
    body_height_m: float = 1.2         # height of the plane the blob centroid is back-projected to
    height_sd: float = 0.15            # ... and its spread between people and poses (m)
    floor_sd: float = 0.03             # centroid vs body axis (m)
    foot_percentile: float = 4.0       # the blob's pixels this near the nadir are the feet
    foot_offset_m: float = 0.1         # from the near edge of the feet to the body axis
    foot_sd: float = 0.11              # feet vs body axis (stride, hidden feet under the camera) (m)
    pixel_sd: float = 3.0              # image point noise (full-frame px)
    nominal_height_m: float = 1.70
    person_radius_m: float = 0.25      # for the expected silhouette area: a standing cylinder ...
    fill_fraction: float = 0.45        # ... of which a body fills this much
    min_score: float = 0.25
    border_px: int = 2
    still_diff: float = 15.0           # a pixel changed less than this since the last frame is still
    motion_radius_px: int = 12         # motion (a change > diff_threshold) this near keeps foreground alive
    motion_s: float = 1.0              # ... for this long after it
    absorb_s: float = 4.0              # still foreground with no motion near it for this long is absorbed
    ghost_still_s: float = 0.5         # a foreground region this still (and no motion in it) ...
    ghost_still_frac: float = 0.9      # ... in this share of its pixels is tested for being a ghost:
    ghost_contrast: float = 8.0        # grey levels: along its outline, the background's contrast across
    ghost_votes: float = 0.5           # it beats the frame's by this much at this share of the outline


class PersonDetector:
    """Background-subtraction person detector for one ceiling RGB camera."""

    def __init__(self, camera: PinholeCamera, params: DetectorParams | None = None):
        self.camera = camera
        self.params = params or DetectorParams()
        p = self.params
        self.size = (max(1, int(round(camera.width * p.scale))), max(1, int(round(camera.height * p.scale))))
        self.sx = camera.width / self.size[0]
        self.sy = camera.height / self.size[1]
        self.background: np.ndarray | None = None
        self.frames = 0
        self.gain = np.ones(3, np.float32)
        self.last_mask: np.ndarray | None = None
        self._k_open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.open_px, p.open_px))
        self._k_close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.close_px, p.close_px))
        self._k_grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
        self._k_motion = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * p.motion_radius_px + 1,) * 2)
        self._nadir = camera.nadir_pixel()
        self.expected_area = self._expected_area_map()
        w, h = self.size
        self.keep = self._keep_mask()
        self._ignoring = not bool(self.keep.all())
        self._cut = np.zeros((h, w), np.uint8)      # a blob touching these pixels is cut by the image border
        b = p.border_px + 1
        self._cut[:b, :] = self._cut[-b:, :] = 255
        self._cut[:, :b] = self._cut[:, -b:] = 255
        gy, gx = np.mgrid[2:h:4, 2:w:4]
        ok = self.keep[gy, gx] > 0
        self._sample = (gy[ok].ravel(), gx[ok].ravel())
        rate = float(getattr(camera, "rate_hz", 10.0) or 10.0)
        self._n_motion = max(1, round(p.motion_s * rate))
        self._n_absorb = max(2, round(p.absorb_s * rate))
        self._n_ghost = max(2, round(p.ghost_still_s * rate))
        self._reset_state()

    # --- set-up --------------------------------------------------------------------------------
    def _expected_area_map(self) -> np.ndarray:
        """Expected silhouette area (processing px^2) of a person whose body point is seen at each
        pixel: a standing cylinder projected, on a coarse grid, then interpolated."""
        cam, p = self.camera, self.params
        w, h = self.size
        nx, ny = 24, 18
        us = np.linspace(0, cam.width - 1, nx)
        vs = np.linspace(0, cam.height - 1, ny)
        grid = np.zeros((ny, nx), np.float32)
        th = np.linspace(0, 2 * np.pi, 12, endpoint=False)
        ring = np.stack([np.cos(th), np.sin(th)], axis=1) * p.person_radius_m
        for j, v in enumerate(vs):
            for i, u in enumerate(us):
                q = cam.backproject(np.array([[u, v]]), p.body_height_m)[0]
                if not np.all(np.isfinite(q)):
                    continue
                pts = np.vstack([np.hstack([q[:2] + ring, np.full((12, 1), z)]) for z in (0.0, p.nominal_height_m)])
                uv, z = cam.project(pts)
                if np.any(z <= 0.05):
                    continue
                hull = cv2.convexHull((uv / [self.sx, self.sy]).astype(np.float32))
                grid[j, i] = cv2.contourArea(hull) * p.fill_fraction
        grid[grid <= 0] = grid.max() if grid.max() > 0 else 1.0
        return cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)

    def expected_area_at(self, xy: np.ndarray) -> float:
        """Expected visible silhouette area (processing px^2) of a person standing at floor point xy:
        the projected standing cylinder, clipped to the image, times the body's fill of it."""
        p, cam = self.params, self.camera
        th = np.linspace(0, 2 * np.pi, 12, endpoint=False)
        ring = np.stack([np.cos(th), np.sin(th)], axis=1) * p.person_radius_m + np.asarray(xy, float)[:2]
        pts = np.vstack([np.hstack([ring, np.full((12, 1), z)]) for z in (0.0, p.nominal_height_m)])
        uv, z = cam.project(pts)
        if np.any(z <= 0.05):
            return float(self.expected_area.max())
        hull = cv2.convexHull((uv / [self.sx, self.sy]).astype(np.float32))
        w, h = self.size
        rect = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        area, _ = cv2.intersectConvexConvex(hull, rect)
        return max(1.0, float(area) * p.fill_fraction)

    def _keep_mask(self) -> np.ndarray:
        """0 in the camera's ignore regions (layout polygons, full-frame px: glass walls, doors, screens),
        255 elsewhere. A blob whose feet are in an ignore region is not a shopper on this floor."""
        keep = np.full((self.size[1], self.size[0]), 255, np.uint8)
        for poly in getattr(self.camera, "ignore", ()) or ():
            pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2) / [self.sx, self.sy]
            cv2.fillPoly(keep, [np.round(pts - 0.5).astype(np.int32)], 0)
        return keep

    def _reset_state(self) -> None:
        self.background = None
        self.frames = 0
        self.last_mask = None
        self._warm: list[np.ndarray] = []
        self._prev: np.ndarray | None = None
        self._still: np.ndarray | None = None
        self._last_motion: np.ndarray | None = None
        self.absorbed: np.ndarray | None = None      # what the last frame absorbed (debug pictures)
        self._alive_at, self._alive_map = -1, None

    def reset(self) -> None:
        self._reset_state()

    def set_background(self, image_bgr: np.ndarray) -> None:
        """Start from a known empty-store frame (e.g. captured at opening)."""
        self._reset_state()
        self.background = self._small(image_bgr)
        self.gain = np.ones(3, np.float32)
        self.frames = self.params.warmup_frames

    def _small(self, image_bgr: np.ndarray) -> np.ndarray:
        img = image_bgr
        if (img.shape[1], img.shape[0]) != self.size:
            img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        return img.astype(np.float32)

    # --- per frame -------------------------------------------------------------------------------
    def _estimate_gain(self, frame: np.ndarray) -> np.ndarray:
        bg = self.background
        ys, xs = self._sample
        f, b = frame[ys, xs], bg[ys, xs]
        ok = np.all(b > 15, axis=1)
        if self.last_mask is not None:
            ok &= self.last_mask[ys, xs] == 0
        if ok.sum() < 50:
            return self.gain
        ratio = f[ok] / b[ok]
        return np.clip(np.median(ratio, axis=0), 0.2, 5.0).astype(np.float32)

    def foreground(self, image_bgr: np.ndarray) -> np.ndarray:
        """Update the model with a frame; the foreground mask (uint8 0/255, processing size)."""
        p = self.params
        frame = self._small(image_bgr)
        if self.background is None:
            self.background = frame.copy()
            self.frames = 1
            self._warm = [frame]
            self.last_mask = np.zeros(frame.shape[:2], np.uint8)
            return self.last_mask
        self.gain = self._estimate_gain(frame)
        g = 1.0 / self.gain
        norm = cv2.multiply(frame, (float(g[0]), float(g[1]), float(g[2]), 0.0))
        bg = self.background
        mask = self._difference(norm, bg)
        self._track_motion(norm)
        self.frames += 1
        self._norm = norm
        self.absorbed = None
        if self.frames <= p.warmup_frames:
            # warm-up: the per-pixel median of the frames (a shopper walking through is not learned)
            self._warm.append(norm)
            if self.frames == p.warmup_frames:
                self.background = np.median(np.stack(self._warm), axis=0).astype(np.float32)
                self._warm = []
            self.last_mask = mask
            return mask
        absorb = self._stale(mask)
        if mask.any():
            absorb |= self._ghosts(norm, bg, mask)
        if absorb.any():
            np.copyto(bg, norm, where=absorb[:, :, None])
            mask[absorb] = 0
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._k_open)
            self.absorbed = absorb
        # selective update: where there is no foreground, and far more slowly under it
        grown = cv2.dilate(mask, self._k_grow)
        cv2.accumulateWeighted(norm, bg, p.learning_rate, mask=cv2.bitwise_not(grown))
        if p.fg_learning_rate > 0:
            cv2.accumulateWeighted(norm, bg, p.fg_learning_rate, mask=grown)
        self.last_mask = mask
        return mask

    def _difference(self, norm: np.ndarray, bg: np.ndarray) -> np.ndarray:
        """Foreground of a normalised frame against the background: difference, not shadow, cleaned."""
        p = self.params
        nb, ng, nr = cv2.split(norm)
        bb, bgc, br = cv2.split(bg)
        dmax = cv2.max(cv2.max(cv2.absdiff(nb, bb), cv2.absdiff(ng, bgc)), cv2.absdiff(nr, br))
        fg = dmax > p.diff_threshold
        # shadows: darker than the background by a shadow-like ratio, same chromaticity
        sn = nb + ng + nr + 1.0
        sb = bb + bgc + br + 1.0
        ratio = sn / sb
        isn, isb = 1.0 / sn, 1.0 / sb
        chroma = cv2.max(cv2.max(cv2.absdiff(nb * isn, bb * isb), cv2.absdiff(ng * isn, bgc * isb)),
                         cv2.absdiff(nr * isn, br * isb))
        shadow = (ratio > p.shadow_lo) & (ratio < p.shadow_hi) & (chroma < p.shadow_chroma)
        mask = (fg & ~shadow).astype(np.uint8) * 255
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._k_open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._k_close)
        return mask

    def _track_motion(self, norm: np.ndarray) -> None:
        """Per pixel: frames since it last changed (stillness) and the frame of its last real motion."""
        p = self.params
        if self._prev is None or self._prev.shape != norm.shape:
            self._still = np.zeros(norm.shape[:2], np.uint16)
            self._last_motion = np.full(norm.shape[:2], -(1 << 30), np.int32)
        else:
            b, g, r = cv2.split(cv2.absdiff(norm, self._prev))
            d = cv2.max(cv2.max(b, g), r)
            self._still = cv2.add(self._still, 1)              # saturates at 65535
            self._still[d >= p.still_diff] = 0
            moving = cv2.morphologyEx((d > p.diff_threshold).view(np.uint8), cv2.MORPH_OPEN, self._k_open)
            self._last_motion[moving > 0] = self.frames + 1
        self._prev = norm

    def _alive(self) -> np.ndarray:
        """Pixels with motion near them (`motion_radius_px`) in the last `motion_s`: a shopper's."""
        if self._alive_at != self.frames:
            recent = ((self.frames - self._last_motion) < self._n_motion).astype(np.uint8)
            self._alive_map = cv2.dilate(recent, self._k_motion) > 0
            self._alive_at = self.frames
        return self._alive_map

    def _stale(self, mask: np.ndarray) -> np.ndarray:
        """Foreground that has not changed for `absorb_s`, with no motion near it for `motion_s`."""
        old = (mask > 0) & (self._still >= self._n_absorb)
        return old & ~self._alive() if old.any() else old

    def _ghosts(self, norm: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Still foreground regions whose outline is the background's, not the frame's.

        For a foreground region that is still (no motion in it), the mean colour just inside its
        outline is compared with the mean just outside (7x7 windows, so texture averages out), once
        in the frame and once in the background. A shopper is a step in the frame and none in the
        background; a ghost the other way round: the frame shows the floor or shelf continuing, the
        background the shopper who has left. (A ghost still joined to the shopper who left it is
        not still as a whole; it is tested once he has walked off it.)"""
        p = self.params
        out = np.zeros(mask.shape, bool)
        if np.count_nonzero((mask > 0) & (self._still >= self._n_ghost)) < 20:
            return out
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        h_img, w_img = mask.shape
        k3 = np.ones((3, 3), np.uint8)
        win = (7, 7)
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] < 20:
                continue
            x, y, w, h = (int(v) for v in stats[i, :4])
            x0, y0, x1, y1 = max(0, x - 4), max(0, y - 4), min(w_img, x + w + 4), min(h_img, y + h + 4)
            comp = (labels[y0:y1, x0:x1] == i).astype(np.uint8)
            sel = comp > 0
            if float((self._still[y0:y1, x0:x1][sel] >= self._n_ghost).mean()) < p.ghost_still_frac:
                continue
            if float(((self.frames - self._last_motion[y0:y1, x0:x1][sel]) <= 2).mean()) > 0.02:
                continue
            inner = comp.astype(np.float32)
            outer = ((cv2.dilate(comp, k3, iterations=4) > 0) & ~(mask[y0:y1, x0:x1] > 0)).astype(np.float32)
            n_in, n_out = cv2.blur(inner, win), cv2.blur(outer, win)
            band = (cv2.dilate(comp, k3, iterations=2) > 0) & (cv2.erode(comp, k3) == 0) & (n_in > 0.15) & \
                (n_out > 0.15)
            m = int(band.sum())
            if m < 15:
                continue
            in_frame = _step_across(norm[y0:y1, x0:x1], inner, outer, n_in, n_out, band, win)
            in_bg = _step_across(bg[y0:y1, x0:x1], inner, outer, n_in, n_out, band, win)
            bg_votes = float((in_bg > in_frame + p.ghost_contrast).mean())
            frame_votes = float((in_frame > in_bg + p.ghost_contrast).mean())
            if bg_votes > p.ghost_votes and bg_votes > 2 * frame_votes:
                out[y0:y1, x0:x1] |= cv2.dilate(comp, k3, iterations=2) > 0
        return out

    @property
    def warm(self) -> bool:
        return self.frames > self.params.warmup_frames

    def blobs(self, mask: np.ndarray) -> list[tuple[np.ndarray, float, bool]]:
        """Person-sized foreground blobs: (pixels (M, 2) x, y at processing scale, expected area, cut:
        whether the image border cuts it)."""
        p = self.params
        n, labels, stats, cents = cv2.connectedComponentsWithStats(mask, connectivity=8)
        blobs = []
        for i in range(1, n):
            area = stats[i, cv2.CC_STAT_AREA]
            cx, cy = cents[i]
            expect = float(self.expected_area[min(int(cy), self.size[1] - 1), min(int(cx), self.size[0] - 1)])
            x, y, w, h = (int(v) for v in stats[i, :4])
            ys, xs = np.nonzero(labels[y:y + h, x:x + w] == i)
            cut = bool(self._cut[ys + y, xs + x].any())
            if area < (p.min_area_frac_border if cut else p.min_area_frac) * expect:
                continue
            pix = np.stack([xs + x, ys + y], axis=1).astype(np.float32)
            k, seeds = 1, None
            split = p.split_area_frac_border if cut else p.split_area_frac
            if area > split * expect:
                # bigger than one person where it is: look for separate bodies (cores of the distance
                # transform) — two shoppers side by side are two thick torsos joined by a thin bridge
                q, _, _ = self.locate(pix, cut)
                local = self.expected_area_at(q[:2]) if np.all(np.isfinite(q)) else expect
                if area > split * local:
                    seeds = self._cores(labels[y:y + h, x:x + w] == i)
                    if seeds is not None and len(seeds) > 1:
                        k = min(p.max_split, len(seeds))
                        seeds = seeds[:k] + [x, y]
            if k > 1:
                d2 = ((pix[:, None, :] - seeds[None, :, :].astype(np.float32)) ** 2).sum(axis=2)
                lab = np.argmin(d2, axis=1)
                # every part must be a body: a shopper's laptop, arm or leg is a thick part too
                if np.bincount(lab, minlength=k).min() < p.split_part_frac * local:
                    k = 1
            if k > 1:
                for j in range(k):
                    sel = pix[lab == j]
                    if len(sel) >= p.min_area_frac * expect:
                        sx, sy = sel[:, 0].astype(int), sel[:, 1].astype(int)
                        blobs.append((sel, expect, bool(self._cut[sy, sx].any())))
            else:
                blobs.append((pix, expect, cut))
        return blobs

    def _cores(self, blob: np.ndarray) -> np.ndarray | None:
        """Centres (processing px, ROI coordinates) of the separate thick parts of a blob, thickest
        first: local maxima of the distance to the blob's edge, kept only where the way between two
        of them narrows (a bridge between two bodies, not a head on a torso)."""
        p = self.params
        dist = cv2.distanceTransform(blob.astype(np.uint8), cv2.DIST_L2, 3)
        peak = float(dist.max())
        if peak < 2:
            return None
        local = (dist >= cv2.dilate(dist, np.ones((5, 5), np.uint8))) & (dist > p.core_frac * peak)
        ys, xs = np.nonzero(local)
        order = np.argsort(-dist[ys, xs], kind="stable")
        kept: list[tuple[float, float, float]] = []
        for i in order:
            x, y, d = float(xs[i]), float(ys[i]), float(dist[ys[i], xs[i]])
            if any(math.hypot(x - kx, y - ky) < max(kd, d) * 1.2 for kx, ky, kd in kept):
                continue
            separate = True
            for kx, ky, kd in kept:
                n = int(math.hypot(x - kx, y - ky)) + 2
                line = dist[np.linspace(y, ky, n).round().astype(int), np.linspace(x, kx, n).round().astype(int)]
                if float(line.min()) > p.bridge_frac * min(d, kd):
                    separate = False
                    break
            if separate:
                kept.append((x, y, d))
        return np.array([[x, y] for x, y, _ in kept], np.float32) if kept else None

    def to_full(self, xy: np.ndarray) -> np.ndarray:
        """Processing-scale pixel coordinates to full-frame ones."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        return np.stack([(xy[:, 0] + 0.5) * self.sx - 0.5, (xy[:, 1] + 0.5) * self.sy - 0.5], axis=1)

    def _on_floor(self, pix: np.ndarray) -> bool:
        """False when a blob's feet are in an ignore region: a shopper behind a glass wall or in a
        doorway onto another room, a door, a screen. A blob whose end nearest the nadir is the image
        border shows no feet (a head at the bottom edge): it stays."""
        full = self.to_full(pix)
        nadir = self._nadir
        if np.all(np.isfinite(nadir)):
            near = pix[int(np.argmin(np.hypot(full[:, 0] - nadir[0], full[:, 1] - nadir[1])))]
        else:
            near = pix[int(np.argmax(pix[:, 1]))]
        if self._cut[int(near[1]), int(near[0])]:
            return True
        fu, fv = self.feet(full)[0]
        fx = min(self.size[0] - 1, max(0, int(fu / self.sx)))
        fy = min(self.size[1] - 1, max(0, int(fv / self.sy)))
        return bool(self.keep[fy, fx])

    def feet(self, full: np.ndarray) -> np.ndarray:
        """(1, 2) full-frame pixel of a blob's feet: its pixels nearest the camera's nadir."""
        nadir = self._nadir
        rad = np.hypot(full[:, 0] - nadir[0], full[:, 1] - nadir[1]) if np.all(np.isfinite(nadir)) else -full[:, 1]
        return full[rad <= np.percentile(rad, self.params.foot_percentile)].mean(axis=0, keepdims=True)

    def locate(self, pix: np.ndarray, touches_border: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Floor position (3,), its 3x3 covariance, and the image point used (full-frame px) of a blob.

        Two estimates, fused by their covariances: the blob centroid back-projected to the body's
        effective height (precise under the camera, where the height uncertainty hardly matters)
        and the blob's end nearest the camera's nadir — the feet — back-projected to the floor and
        moved out by a foot's length (precise further out, and the only one left when the image
        border cuts the blob: the cut is always on the head side)."""
        p, cam = self.params, self.camera
        full = self.to_full(pix)
        uv_c = full.mean(axis=0, keepdims=True)
        q_c = cam.backproject(uv_c, p.body_height_m)[0]
        cov_c = cam.ground_covariance(uv_c, p.body_height_m, p.pixel_sd, p.height_sd, p.floor_sd)[0][:2, :2]
        uv_f = self.feet(full)
        q_f = cam.backproject(uv_f, 0.0)[0]
        out = q_f[:2] - cam.position[:2]
        dist = float(np.hypot(*out))
        if np.all(np.isfinite(q_f)) and dist > 1e-6:
            q_f[:2] += p.foot_offset_m * out / dist
        cov_f = cam.ground_covariance(uv_f, 0.0, p.pixel_sd, 0.0, p.foot_sd)[0][:2, :2]
        ok_c, ok_f = bool(np.all(np.isfinite(q_c))), bool(np.all(np.isfinite(q_f)))
        if ok_f and (touches_border or not ok_c):
            xy, cov, uv = q_f[:2], cov_f, uv_f
        elif ok_c and ok_f:
            ic, i_f = np.linalg.inv(cov_c), np.linalg.inv(cov_f)
            cov = np.linalg.inv(ic + i_f)
            xy = cov @ (ic @ q_c[:2] + i_f @ q_f[:2])
            uv = uv_c
        elif ok_c:
            xy, cov, uv = q_c[:2], cov_c, uv_c
        else:
            return np.full(3, np.nan), np.full((3, 3), np.nan), uv_c[0]
        cov3 = np.zeros((3, 3))
        cov3[:2, :2] = cov
        cov3[2, 2] = 0.05 ** 2
        return np.array([xy[0], xy[1], 0.0]), cov3, uv[0]

    def detect(self, image_bgr: np.ndarray, stamp_ns: int = 0) -> list[Detection]:
        """People in one frame (none until the background model has warmed up)."""
        mask = self.foreground(image_bgr)
        if not self.warm:
            return []
        p, cam = self.params, self.camera
        blobs = self.blobs(mask)
        if not blobs:
            return []
        norm8 = np.clip(self._norm, 0, 255).astype(np.uint8)
        out = []
        for pix, expect, touches in blobs:
            x0, y0 = pix.min(axis=0).astype(int)
            x1, y1 = pix.max(axis=0).astype(int)
            score = float(min(1.0, len(pix) / expect) * (0.7 if touches else 1.0))
            if touches:
                score = max(score, p.min_score)
            if score < p.min_score:
                continue
            if self._ignoring and not self._on_floor(pix):
                continue
            q, cov, uv = self.locate(pix, touches)
            if not np.all(np.isfinite(q)):
                continue
            ix, iy = pix[:, 0].astype(int), pix[:, 1].astype(int)
            hsv = cv2.cvtColor(norm8[iy, ix][None, :, :], cv2.COLOR_BGR2HSV)[0]
            bbox = (int(x0 * self.sx), int(y0 * self.sy), int((x1 - x0 + 1) * self.sx), int((y1 - y0 + 1) * self.sy))
            out.append(Detection(float(q[0]), float(q[1]), 0.0, tuple(float(v) for v in cov.ravel()), score,
                                 appearance_descriptor(hsv), height_m=p.nominal_height_m, bbox=bbox,
                                 pixel=(float(uv[0]), float(uv[1])), camera_id=cam.id,
                                 stamp_ns=int(stamp_ns)))
        return out


def _step_across(roi: np.ndarray, inner: np.ndarray, outer: np.ndarray, n_in: np.ndarray, n_out: np.ndarray,
                 band: np.ndarray, win: tuple[int, int]) -> np.ndarray:
    """At each outline pixel: max-channel |mean colour just inside - mean just outside| (windowed)."""
    a = cv2.blur(roi * inner[:, :, None], win) / np.maximum(n_in, 1e-3)[:, :, None]
    b = cv2.blur(roi * outer[:, :, None], win) / np.maximum(n_out, 1e-3)[:, :, None]
    return np.max(np.abs(a - b), axis=2)[band]


def draw_detections(image: np.ndarray, detections: list[Detection], camera: PinholeCamera | None = None,
                    labels: list[str] | None = None) -> np.ndarray:
    """A debug picture: boxes, scores and (with the camera) the floor point and its 2-sigma ellipse."""
    img = image.copy()
    for i, d in enumerate(detections):
        colour = (0, 255, 255) if d.score >= 0.5 else (0, 165, 255)
        if d.bbox is not None:
            x, y, w, h = d.bbox
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), colour, 1, cv2.LINE_AA)
        text = f"{d.score:.2f}" + (f" {labels[i]}" if labels and i < len(labels) else "")
        anchor = (d.bbox[0], max(10, d.bbox[1] - 3)) if d.bbox else None
        if camera is not None:
            uv, z = camera.project(np.array([[d.x, d.y, d.z]]))
            if z[0] > 0 and np.all(np.isfinite(uv)):
                u, v = (int(round(a)) for a in uv[0])
                cv2.drawMarker(img, (u, v), colour, cv2.MARKER_CROSS, 12, 2)
                anchor = anchor or (u + 6, v - 6)
                cov = d.cov3[:2, :2]
                vals, vecs = np.linalg.eigh(cov)
                th = np.linspace(0, 2 * np.pi, 32)
                ell = (vecs @ (2.0 * np.sqrt(np.maximum(vals, 0))[:, None] * np.stack([np.cos(th), np.sin(th)]))).T
                pts = np.hstack([ell + [d.x, d.y], np.full((32, 1), d.z)])
                euv, ez = camera.project(pts)
                if np.all(ez > 0) and np.all(np.isfinite(euv)):
                    cv2.polylines(img, [np.round(euv).astype(np.int32)], True, colour, 1, cv2.LINE_AA)
        if anchor is not None:
            cv2.putText(img, text, anchor, cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return img


# --- depth ----------------------------------------------------------------------------------------

@dataclass
class DepthParams:
    step: int = 2                  # pixel subsampling
    floor_z_m: float = 0.3         # points below are floor
    max_z_m: float = 2.4
    shelf_margin_m: float = 0.05   # points inside gondola boxes grown by this are shelves
    cell_m: float = 0.05
    min_head_m: float = 1.0        # a head is a local maximum above this
    head_sep_m: float = 0.35       # two heads are at least this far apart
    head_band_m: float = 0.12      # cells this close below the peak are the head
    min_cells: int = 10            # of the person's cluster
    pos_sd_m: float = 0.08


class DepthPersonDetector:
    """People in a depth image of a ceiling depth camera, by clustering points above the floor."""

    def __init__(self, camera: PinholeCamera, store, params: DepthParams | None = None):
        from storefuse_core.vision.render import floor_bounds, gondola_boxes  # geometry helpers
        self.camera = camera
        self.store = store
        self.params = params or DepthParams()
        s = self.params.step
        vv, uu = np.mgrid[0:camera.height:s, 0:camera.width:s]
        self._idx = (vv, uu)
        self._rays = camera.rays(np.stack([uu.ravel() + 0.0, vv.ravel() + 0.0], axis=1)).astype(np.float32)
        self._boxes = [(self.store.gondolas[gid], h) for gid, _, _, h in gondola_boxes(store)]
        self.bounds = floor_bounds(store)

    def points(self, depth_mm: np.ndarray) -> np.ndarray:
        """Map points (N, 3) of the valid pixels, floor and shelves removed."""
        p = self.params
        d = depth_mm[self._idx].ravel().astype(np.float32) / 1000.0
        ok = d > 0
        pts = self.camera.position.astype(np.float32) + d[ok, None] * self._rays[ok]
        keep = (pts[:, 2] > p.floor_z_m) & (pts[:, 2] < p.max_z_m)
        for g, h in self._boxes:
            c, s = math.cos(g.yaw), math.sin(g.yaw)
            dx, dy = pts[:, 0] - g.x, pts[:, 1] - g.y
            a, b = dx * c + dy * s, -dx * s + dy * c
            m = p.shelf_margin_m
            keep &= ~((np.abs(a) <= g.length_m / 2 + m) & (np.abs(b) <= g.depth_m / 2 + m) & (pts[:, 2] <= h + m))
        return pts[keep]

    def detect(self, depth_mm: np.ndarray, stamp_ns: int = 0) -> list[Detection]:
        p = self.params
        pts = self.points(depth_mm)
        if len(pts) == 0:
            return []
        x0, y0 = pts[:, 0].min() - 0.5, pts[:, 1].min() - 0.5
        ix = ((pts[:, 0] - x0) / p.cell_m).astype(np.int32)
        iy = ((pts[:, 1] - y0) / p.cell_m).astype(np.int32)
        nx, ny = int(ix.max()) + 11, int(iy.max()) + 11
        hmap = np.zeros((ny, nx), np.float32)
        np.maximum.at(hmap, (iy, ix), pts[:, 2])
        # close small gaps (dropouts, subsampling) without moving maxima
        hmap = cv2.morphologyEx(hmap, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        occ = (hmap > 0).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(occ, connectivity=8)
        r = max(1, int(round(p.head_sep_m / p.cell_m / 2)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        peaks = (hmap >= cv2.dilate(hmap, kernel) - 1e-6) & (hmap > p.min_head_m)
        cand = sorted(((float(hmap[j, i]), j, i) for j, i in zip(*np.nonzero(peaks))), reverse=True)
        heads: list[tuple[float, int, int]] = []
        for h, j, i in cand:
            if stats[labels[j, i], cv2.CC_STAT_AREA] < p.min_cells:
                continue
            if any(math.hypot(j - jj, i - ii) * p.cell_m < p.head_sep_m for _, jj, ii in heads):
                continue
            heads.append((h, j, i))
        out = []
        rad = int(math.ceil(0.2 / p.cell_m))
        for h, j, i in heads:
            ja, jb, ia, ib = max(0, j - rad), j + rad + 1, max(0, i - rad), i + rad + 1
            win = hmap[ja:jb, ia:ib]
            jj, ii = np.nonzero(win > h - p.head_band_m)
            x = x0 + (ia + ii.mean() + 0.5) * p.cell_m
            y = y0 + (ja + jj.mean() + 0.5) * p.cell_m
            sd2 = p.pos_sd_m ** 2
            cov = (sd2, 0.0, 0.0, 0.0, sd2, 0.0, 0.0, 0.0, 0.05 ** 2)
            score = float(min(1.0, stats[labels[j, i], cv2.CC_STAT_AREA] / 60.0))
            out.append(Detection(float(x), float(y), 0.0, cov, score, np.zeros(0, np.float32), h, None, None,
                                 self.camera.id, int(stamp_ns)))
        return out


__all__ = ["APPEARANCE_DIM", "DepthParams", "DepthPersonDetector", "DetectorParams", "PersonDetector",
           "draw_detections"]
