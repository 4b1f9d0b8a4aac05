"""Vision: what ceiling cameras see of shoppers, at two fidelities (DESIGN.md "Simulation").

- `camera`: pinhole geometry from the layout (project, back-project to a plane, covariance).
- `render` (OpenCV): rendered RGB and depth frames of a store camera, for camera nodes and tests.
- `person` (OpenCV): the real detectors — RGB background subtraction and depth clustering.
- `detection_model`: the fast fidelity — detections drawn from fitted miss/false/noise statistics.

This module holds the shared types only and never imports OpenCV, so the fast fidelity (and the
simulator that uses it) starts quickly. Cameras publish detections, not pictures: a `Detection`
is exactly what goes into one `storefuse_interfaces/PersonDetection`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

# Appearance descriptor layout: chromatic pixels vote into HUE_BINS x SAT_BINS (hue soft-binned,
# circular); achromatic pixels (low saturation or dark) into VAL_BINS brightness bins.
HUE_BINS = 16
SAT_BINS = 3
VAL_BINS = 8
APPEARANCE_DIM = HUE_BINS * SAT_BINS + VAL_BINS
CHROMA_MIN_S = 50          # OpenCV HSV scale (S, V in 0..255, H in 0..180)
CHROMA_MIN_V = 45


@dataclass(frozen=True)
class Person:
    """A shopper as the renderer and the detection model see it (map frame, metres)."""
    id: str
    x: float
    y: float
    heading_rad: float = 0.0
    height_m: float = 1.70
    shirt_bgr: tuple[int, int, int] = (60, 60, 180)
    pants_bgr: tuple[int, int, int] = (90, 60, 40)
    reach: tuple[float, float, float] | None = None


@dataclass
class Detection:
    """One person seen by one camera: what a PersonDetection message carries.

    (x, y, z) is the person's floor point in map (z = 0); `cov` the 3x3 position covariance,
    row-major (9 floats, m^2); `score` in 0..1; `appearance` an L1-normalised float32 histogram
    of APPEARANCE_DIM bins. The rest is debug/bookkeeping and is not published.
    """
    x: float
    y: float
    z: float
    cov: tuple[float, ...]
    score: float
    appearance: np.ndarray
    height_m: float = float("nan")         # measured (depth) or assumed (RGB) head height
    bbox: tuple[int, int, int, int] | None = None   # x, y, w, h in the image (RGB path)
    pixel: tuple[float, float] | None = None        # the image point that was back-projected (RGB path)
    camera_id: str = ""
    stamp_ns: int = 0
    truth_id: str | None = field(default=None, compare=False)   # detection model only: who it was

    @property
    def xy(self) -> np.ndarray:
        return np.array([self.x, self.y])

    @property
    def cov3(self) -> np.ndarray:
        return np.asarray(self.cov, dtype=float).reshape(3, 3)


SKIN_BGR = ((120, 160, 225), (95, 135, 200), (70, 105, 165), (50, 75, 120), (140, 180, 235))
HAIR_BGR = ((20, 25, 30), (30, 50, 80), (40, 70, 120), (120, 150, 180), (160, 165, 170), (15, 15, 15))


def stable_hash(*parts) -> int:
    """A 32-bit hash of the parts' text that is the same in every process (unlike hash())."""
    return int.from_bytes(hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=4).digest(),
                          "little")


def skin_and_hair(person_id: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """A shopper's skin and hair colour (BGR), fixed by their id."""
    h = stable_hash("person", person_id)
    return SKIN_BGR[h % len(SKIN_BGR)], HAIR_BGR[(h // 7) % len(HAIR_BGR)]


def bgr_to_hsv(bgr: np.ndarray) -> np.ndarray:
    """uint8 BGR (..., 3) to uint8 HSV in OpenCV's convention (H 0..179, S and V 0..255)."""
    c = np.asarray(bgr, dtype=np.float32).reshape(-1, 3)
    b, g, r = c[:, 0], c[:, 1], c[:, 2]
    v = c.max(axis=1)
    mn = c.min(axis=1)
    d = v - mn
    s = np.where(v > 0, 255.0 * d / np.maximum(v, 1e-6), 0.0)
    dd = np.maximum(d, 1e-6)
    h = np.where(v == r, 60.0 * (g - b) / dd,
                 np.where(v == g, 120.0 + 60.0 * (b - r) / dd, 240.0 + 60.0 * (r - g) / dd))
    h = np.where(d > 0, np.mod(h, 360.0), 0.0) / 2.0
    out = np.stack([np.clip(np.round(h), 0, 179), np.clip(np.round(s), 0, 255), np.clip(np.round(v), 0, 255)], axis=1)
    return out.astype(np.uint8).reshape(np.shape(bgr))


def appearance_descriptor(hsv: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The appearance descriptor of a set of HSV pixels (N x 3 uint8, OpenCV convention).

    Chromatic pixels vote into a hue x saturation grid (hue linearly split between its two nearest
    bins, so a small hue shift moves mass smoothly); achromatic ones (grey, black, white) into
    brightness bins. L1-normalised float32 of length APPEARANCE_DIM; all zeros for no pixels.
    """
    hsv = np.asarray(hsv).reshape(-1, 3)
    out = np.zeros(APPEARANCE_DIM, dtype=np.float64)
    if hsv.shape[0] == 0:
        return out.astype(np.float32)
    w = np.ones(hsv.shape[0]) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    h = hsv[:, 0].astype(np.float64)
    s = hsv[:, 1].astype(np.float64)
    v = hsv[:, 2].astype(np.float64)
    chroma = (s >= CHROMA_MIN_S) & (v >= CHROMA_MIN_V)
    # chromatic: soft hue bins (circular), hard saturation bins over [CHROMA_MIN_S, 255]
    hc = h[chroma] / 180.0 * HUE_BINS - 0.5
    h0 = np.floor(hc)
    frac = hc - h0
    i0 = np.mod(h0, HUE_BINS).astype(int)
    i1 = np.mod(h0 + 1, HUE_BINS).astype(int)
    sb = np.clip(((s[chroma] - CHROMA_MIN_S) / (256 - CHROMA_MIN_S) * SAT_BINS).astype(int), 0, SAT_BINS - 1)
    wc = w[chroma]
    np.add.at(out, i0 * SAT_BINS + sb, wc * (1 - frac))
    np.add.at(out, i1 * SAT_BINS + sb, wc * frac)
    vb = np.clip((v[~chroma] / 256.0 * VAL_BINS).astype(int), 0, VAL_BINS - 1)
    np.add.at(out, HUE_BINS * SAT_BINS + vb, w[~chroma])
    total = out.sum()
    if total > 0:
        out /= total
    return out.astype(np.float32)


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance of two L1-normalised descriptors: 0 identical, 1 disjoint."""
    bc = float(np.sum(np.sqrt(np.clip(a, 0, None) * np.clip(b, 0, None))))
    return float(np.sqrt(max(0.0, 1.0 - min(1.0, bc))))


__all__ = ["APPEARANCE_DIM", "Detection", "Person", "appearance_descriptor", "appearance_distance", "bgr_to_hsv"]
