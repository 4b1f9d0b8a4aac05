"""What a product's packaging looks like, and a camera's view of it in a shopper's hand.

The simulator has no product photographs, so every product gets a synthetic package (`look_of`):
a brand decides the base colour, the shape and the layout (where the logo block and the flavour band
sit); the flavour decides only a smaller accent (band colour, mark shape and colour). Flavours of a
brand are therefore genuinely harder to tell apart than brands, as on a real shelf.

`render_view` draws the package in a hand the way a store camera would see it: at its true pixel
size (drawn supersampled, area-averaged down to camera pixels, so a package 8 pixels long really
loses its detail), rotated and foreshortened, over clutter, partly hidden by fingers, under the
camera's light and tint, motion-blurred, noisy and JPEG-compressed, then resampled to a fixed crop
for the classifier (`vision.product_classifier`). Randomness comes only from the caller's rng.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from storefuse_core.vision import SKIN_BGR, stable_hash

VIEW_SIZE = 48
CROP_K = 1.6          # the crop around the hand spans this many times the package's longer side
_CANVAS = 96          # supersampled canvas side (one view, before area-averaging to camera pixels)
_TEX = 64             # a package texture's longer side
MARKS = ("circle", "square", "triangle", "diamond", "cross", "ring")
LAYOUTS = ("top_logo", "side_logo", "round_logo")
JPEG_QUALITY = 75

# clutter behind the hand: shelf whites/greys, floor beiges, dark clothing (BGR)
_CLUTTER = ((200, 200, 200), (150, 150, 150), (90, 90, 90), (152, 164, 176), (120, 140, 160),
            (40, 40, 45), (70, 50, 40), (50, 60, 120), (110, 80, 60), (210, 215, 220), (60, 90, 60))


@dataclass(frozen=True)
class Look:
    """A package's appearance. Brand-wide: family, base/logo colours, aspect (h/w), layout, band
    placement. Flavour: accent (band) colour, mark shape and mark colour. Colours are BGR."""
    family: str
    base_bgr: tuple[int, int, int]
    logo_bgr: tuple[int, int, int]
    aspect: float
    layout: str
    band_pos: float        # centre of the flavour band along the package (0 top/left .. 1)
    band_frac: float       # its thickness as a fraction of the package
    accent_bgr: tuple[int, int, int]
    mark: str
    mark_bgr: tuple[int, int, int]


def family_of(product) -> str:
    """The brand key: the name's first word, lower-cased, punctuation dropped ("Haribo," -> "haribo")."""
    words = str(product.name).split()
    first = words[0].lower() if words else ""
    return re.sub(r"[^0-9a-z&'-]+", "", first) or first


def _hsv_bgr(h: float, s: float, v: float) -> tuple[int, int, int]:
    px = np.array([[[int(h) % 180, int(np.clip(s, 0, 255)), int(np.clip(v, 0, 255))]]], dtype=np.uint8)
    b, g, r = cv2.cvtColor(px, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def _unit(*parts) -> float:
    return stable_hash(*parts) / 2 ** 32


def _colour(*parts, achromatic: float = 0.12) -> tuple[int, int, int]:
    """A package colour from a hash: mostly saturated hues, some whites, blacks and silvers."""
    if _unit(*parts, "achromatic") < achromatic:
        v = (235, 30, 170, 120)[stable_hash(*parts, "grey") % 4]
        return _hsv_bgr(0, 0, v)
    return _hsv_bgr(180 * _unit(*parts, "h"), 110 + 145 * _unit(*parts, "s"), 80 + 170 * _unit(*parts, "v"))


def _accent(base_bgr: tuple[int, int, int], *parts) -> tuple[int, int, int]:
    """A flavour colour that stands out from the base: a hue at least 30 (of 180) away from it, or,
    now and then, white or black on a coloured base. Flavours of one brand may still be close."""
    base_hsv = cv2.cvtColor(np.array([[base_bgr]], np.uint8), cv2.COLOR_BGR2HSV)[0, 0]
    grey_base = int(base_hsv[1]) < 60
    if not grey_base and _unit(*parts, "achromatic") < 0.08:
        return _hsv_bgr(0, 0, 240 if base_hsv[2] < 150 else 25)
    hue = (0 if grey_base else int(base_hsv[0]) + 30) + (180 if grey_base else 120) * _unit(*parts, "h")
    return _hsv_bgr(hue, 150 + 105 * _unit(*parts, "s"), 110 + 140 * _unit(*parts, "v"))


def look_of(product) -> Look:
    """The product's package: brand-wide base/shape/layout, flavour-specific accent (deterministic)."""
    fam = family_of(product)
    name = " ".join(str(product.name).lower().split())
    layout = LAYOUTS[stable_hash("layout", fam) % len(LAYOUTS)]
    base = _colour("base", fam)
    return Look(
        family=fam,
        base_bgr=base,
        logo_bgr=_colour("logo", fam, achromatic=0.35),
        aspect=round(float(np.exp(np.log(0.55) + (np.log(2.0) - np.log(0.55)) * _unit("aspect", fam))), 3),
        layout=layout,
        band_pos=round(0.45 + 0.35 * _unit("band", fam), 3),
        band_frac=round(0.18 + 0.12 * _unit("band_frac", fam), 3),
        accent_bgr=_accent(base, "accent", name),
        mark=MARKS[stable_hash("mark", name) % len(MARKS)],
        mark_bgr=_colour("mark", name, achromatic=0.3),
    )


def _draw_mark(img: np.ndarray, mark: str, cx: float, cy: float, r: float, bgr) -> None:
    c = (int(round(cx)), int(round(cy)))
    r = max(2, int(round(r)))
    if mark == "circle":
        cv2.circle(img, c, r, bgr, -1, cv2.LINE_AA)
    elif mark == "ring":
        cv2.circle(img, c, r, bgr, max(2, r // 3), cv2.LINE_AA)
    elif mark == "square":
        cv2.rectangle(img, (c[0] - r, c[1] - r), (c[0] + r, c[1] + r), bgr, -1)
    elif mark == "cross":
        t = max(2, r // 2)
        cv2.rectangle(img, (c[0] - r, c[1] - t // 2), (c[0] + r, c[1] + t // 2), bgr, -1)
        cv2.rectangle(img, (c[0] - t // 2, c[1] - r), (c[0] + t // 2, c[1] + r), bgr, -1)
    else:
        if mark == "triangle":
            pts = [(c[0], c[1] - r), (c[0] + r, c[1] + r), (c[0] - r, c[1] + r)]
        else:   # diamond
            pts = [(c[0], c[1] - r), (c[0] + r, c[1]), (c[0], c[1] + r), (c[0] - r, c[1])]
        cv2.fillConvexPoly(img, np.array(pts, dtype=np.int32), bgr, cv2.LINE_AA)


@lru_cache(maxsize=2048)
def _texture(look: Look) -> np.ndarray:
    """The package's front face, _TEX pixels on its longer side (cached: looks are few)."""
    if look.aspect >= 1.0:
        th, tw = _TEX, max(8, int(round(_TEX / look.aspect)))
    else:
        tw, th = _TEX, max(8, int(round(_TEX * look.aspect)))
    img = np.empty((th, tw, 3), np.uint8)
    img[:] = look.base_bgr
    vertical = look.layout == "side_logo"
    # the brand's logo block and a few lines of "text" (shared by every flavour)
    if look.layout == "top_logo":
        cv2.rectangle(img, (0, int(0.06 * th)), (tw, int(0.26 * th)), look.logo_bgr, -1)
    elif vertical:
        cv2.rectangle(img, (int(0.05 * tw), 0), (int(0.27 * tw), th), look.logo_bgr, -1)
    else:
        cv2.circle(img, (tw // 2, int(0.27 * th)), int(0.22 * min(tw, th)), look.logo_bgr, -1, cv2.LINE_AA)
    text = tuple(255 - c if sum(look.base_bgr) < 380 else c // 4 for c in look.base_bgr)
    for k in range(2):
        y = int((0.33 + 0.06 * k) * th)
        x0 = int((0.35 if vertical else 0.15) * tw)
        cv2.line(img, (x0, y), (int(0.85 * tw), y), text, 1)
    # the flavour band and mark
    if vertical:
        a = int((look.band_pos - look.band_frac / 2) * tw)
        b = int((look.band_pos + look.band_frac / 2) * tw)
        cv2.rectangle(img, (a, 0), (b, th), look.accent_bgr, -1)
        _draw_mark(img, look.mark, (a + b) / 2, 0.75 * th, 0.16 * min(tw, th), look.mark_bgr)
    else:
        a = int((look.band_pos - look.band_frac / 2) * th)
        b = int((look.band_pos + look.band_frac / 2) * th)
        cv2.rectangle(img, (0, a), (tw, b), look.accent_bgr, -1)
        _draw_mark(img, look.mark, 0.72 * tw, (a + b) / 2, 0.16 * min(tw, th), look.mark_bgr)
    return img


def _clutter(rng: np.random.Generator, n: int) -> np.ndarray:
    img = np.empty((n, n, 3), np.uint8)
    img[:] = _CLUTTER[int(rng.integers(len(_CLUTTER)))]
    for _ in range(int(rng.integers(3, 7))):
        if rng.random() < 0.3:
            col = tuple(int(c) for c in rng.integers(20, 230, 3))
        else:
            col = _CLUTTER[int(rng.integers(len(_CLUTTER)))]
        x, y = rng.integers(-n // 2, n, 2)
        w, h = rng.integers(n // 8, n, 2)
        cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), col, -1)
    return img


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    k = int(math.ceil(length)) | 1
    ker = np.zeros((k, k), np.float32)
    c = (k - 1) / 2
    dx, dy = 0.5 * length * math.cos(angle), 0.5 * length * math.sin(angle)
    cv2.line(ker, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    return ker / max(ker.sum(), 1e-6)


def render_view(look: Look, rng: np.random.Generator, pixels: float, gain: float = 1.0,
                tint: tuple[float, float, float] = (1.0, 1.0, 1.0), occlusion: float = 0.0,
                blur_px: float = 0.0, noise_sd: float = 2.0, size: int = VIEW_SIZE) -> np.ndarray:
    """A size x size BGR uint8 crop around a hand holding the package, as a camera would see it.

    `pixels`: camera pixels along the package's longer side; `gain` and `tint` (per B, G, R channel):
    the light; `occlusion`: fraction of the package hidden by fingers (0..0.6); `blur_px`: motion
    blur length in camera pixels; `noise_sd`: sensor noise in grey levels.
    """
    n = _CANVAS
    canvas = _clutter(rng, n)
    tex = _texture(look)
    th, tw = tex.shape[:2]
    # pose: in-plane rotation, one side foreshortened, a slight squash, a small offset from centre
    scale = n / CROP_K / _TEX
    hw, hh = tw * scale / 2, th * scale / 2
    corners = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
    side = int(rng.integers(4))
    shrink = rng.uniform(0.0, 0.25)
    i, j = side, (side + 1) % 4
    mid = (corners[i] + corners[j]) / 2
    corners[i] = mid + (corners[i] - mid) * (1 - shrink)
    corners[j] = mid + (corners[j] - mid) * (1 - shrink)
    corners[:, 1 if side in (0, 2) else 0] *= rng.uniform(0.85, 1.0)
    ang = math.radians(rng.uniform(-30.0, 30.0))
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    centre = n / 2 + rng.uniform(-0.05, 0.05, 2) * n
    dst = (corners @ rot.T + centre).astype(np.float32)
    src = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    cv2.warpPerspective(tex, m, (n, n), dst=canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    _hand(canvas, m, tw, th, float(np.clip(occlusion, 0.0, 0.95)), rng)
    # light: gain, tint and a soft gradient across the view
    g = np.asarray(tint, np.float32) * np.float32(gain)
    ramp = 1.0 + rng.uniform(-0.12, 0.12) * np.linspace(-1, 1, n, dtype=np.float32)
    lit = canvas.astype(np.float32) * g
    lit *= ramp[:, None, None] if rng.random() < 0.5 else ramp[None, :, None]
    # the camera: area-average to its pixels, optics and motion blur, noise, JPEG
    cam = max(4, int(round(pixels * CROP_K)))
    img = cv2.resize(lit, (cam, cam), interpolation=cv2.INTER_AREA)
    img = cv2.GaussianBlur(img, (3, 3), 0.6)
    if blur_px >= 1.0:
        img = cv2.filter2D(img, -1, _motion_kernel(blur_px, rng.uniform(0, math.pi)), borderType=cv2.BORDER_REFLECT)
    if noise_sd > 0:
        img += rng.normal(0.0, noise_sd, img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, (cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY))
    if ok:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    interp = cv2.INTER_AREA if cam > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def _hand(canvas: np.ndarray, m: np.ndarray, tw: int, th: int, occlusion: float,
          rng: np.random.Generator) -> None:
    """Fingers across one edge of the package hiding `occlusion` of it, the palm beyond that edge.

    Drawn in the package's own coordinates, then mapped by the package's pose `m`."""
    skin = np.array(SKIN_BGR[int(rng.integers(len(SKIN_BGR)))], float) * rng.uniform(0.85, 1.1)
    skin = tuple(float(c) for c in np.clip(skin, 0, 255))
    shade = tuple(0.7 * c for c in skin)
    edge = int(rng.integers(4))           # 0 bottom, 1 right, 2 top, 3 left
    along, across = (tw, th) if edge in (0, 2) else (th, tw)

    def to_canvas(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        # u along the edge (0..along), v inward from it (0 at the edge, < 0 outside the package)
        if edge == 0:
            x, y = u, th - v
        elif edge == 2:
            x, y = u, v
        elif edge == 1:
            x, y = tw - v, u
        else:
            x, y = v, u
        pts = np.stack([x, y], axis=1).astype(np.float32)[None]
        return cv2.perspectiveTransform(pts, m)[0].round().astype(np.int32)

    # palm: an ellipse outside the package, against the gripped edge
    t = np.linspace(0, 2 * math.pi, 20)
    pu = along * (0.5 + 0.45 * np.cos(t))
    pv = -across * 0.28 * (1.0 + np.sin(t))
    cv2.fillPoly(canvas, [to_canvas(pu, pv)], skin, cv2.LINE_AA)
    if occlusion <= 0.01:
        return
    depth = occlusion * across
    fingers = 4
    w = along / fingers
    for k in range(fingers):
        d = depth * rng.uniform(0.9, 1.1)
        u0, u1 = k * w + 0.04 * w, (k + 1) * w - 0.04 * w
        r = min(d, (u1 - u0) / 2)
        # a finger: a bar from the palm in to depth d, rounded at its tip
        arc = np.linspace(0, math.pi, 7)
        uu = np.concatenate([[u0, u1], (u0 + u1) / 2 + (u1 - u0) / 2 * np.cos(arc)])
        vv = np.concatenate([[-0.1 * across, -0.1 * across], d - r + r * np.sin(arc)])
        cv2.fillPoly(canvas, [to_canvas(uu, vv)], skin if k % 2 else shade if rng.random() < 0.3 else skin,
                     cv2.LINE_AA)
        if k:
            cv2.line(canvas, *[tuple(int(c) for c in p) for p in to_canvas(np.array([u0, u0]),
                                                                          np.array([0.0, 0.8 * d]))],
                     shade, 1, cv2.LINE_AA)


__all__ = ["CROP_K", "LAYOUTS", "Look", "MARKS", "VIEW_SIZE", "family_of", "look_of", "render_view"]
