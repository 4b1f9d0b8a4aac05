"""The RGB person detector on the real AiFi AutoCheckout videos (cam1, cam3, cam5, cam7 of test 1).

Runs `PersonDetector` with its default settings — the very ones the simulated-frame tests and the
detection-model fit use — over every frame of each video, from a **cold start** (what the camera
node does live: the background is learned from the first frames, and in all four videos the shopper
is already in view then), and counts frames with 0 / 1 / 2+ detections. No calibration exists for
these cameras, so the judgement is in image space, against hand labels of each frame:
- `ON_FLOOR`: the shopper is on the floor this camera watches (all of him, or his legs at an image
  edge, or his head at the bottom edge under the camera) — one detection expected;
- otherwise nobody is on that floor (the room is empty, or he is in the next room behind a glass
  wall or going through a door) — none expected; `VISIBLE` (anywhere, glass included) is reported too.

The camera is the `aifi` layout camera of the same name: its pose is nominal, its focal length the
one `--fit-focal` measures (below) and its ignore regions (glass walls, doors, a TV) come from the
layout. `--no-ignore` drops the regions, `--focal-scale S` multiplies the focal length (how big the
detector expects a person), `--modes cold median` adds a start from the per-pixel median of every
5th frame (offline only: it looks at future frames; an upper bound for a clean background).

`--fit-focal` measures, for each camera, the focal length at which the shopper's silhouette (largest
foreground blob against the median background, frames with him on the floor) has the area the
detector expects under the nominal pose: the median of area / expected is 1 (on rendered frames,
where the camera is right, it is 0.9-1.3). That fx goes into `storefuse_core/aifi.py` (MEASURED_FX)
and from there, through `storefuse import-aifi-layout`, into urdf_store/aifi/layout.yaml.

    . scripts/env.sh && python bench/aifi_videos.py [DATASET_DIR] [--fit-focal] [--no-ignore]
        [--focal-scale S] [--modes cold median] [--debug-dir /tmp/aifi]

Writes out/bench/aifi_videos.json (numbers only). The videos are never copied; annotated frames are
written only with --debug-dir, which must be outside the repository.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))          # background_baselines, also when imported by a test
DEFAULT_DATA = Path(os.environ.get("STOREFUSE_AIFI_DIR",
                                   ROOT.parent / "shared" / "datasets" / "aifi-autocheckout-test1"))
CAMERAS = ("cam1", "cam3", "cam5", "cam7")

# Hand labels (every 10th frame looked at, transitions frame by frame in full-resolution crops; about
# +-2 frames), frame ranges, inclusive.
# ON_FLOOR: the shopper is on the floor of the room this camera watches (one detection expected).
ON_FLOOR = {
    "cam1": [(0, 212)],
    "cam3": [(0, 53), (84, 218)],
    "cam5": [(0, 171)],
    "cam7": [(0, 224)],
}
# VISIBLE: the shopper or part of him is visible anywhere in the image, through glass included.
VISIBLE = {
    "cam1": [(0, 337)],
    "cam3": [(0, 53), (84, 337)],
    "cam5": [(0, 171), (234, 338)],
    "cam7": [(0, 259)],
}
WHERE = {
    "cam1": "0-~212 on the floor of this room (from ~95 only his legs at the top edge), out through the door "
            "at the top at ~200-212, then his legs in the next room through the glass wall. The glass door on "
            "the left is open in the first frames and swings shut.",
    "cam3": "0-53 close under the camera, bottom left, partly; 54-83 not visible; 84-~212 in the room; "
            "~212-218 in the glass door; then through the glass in the next room (left edge). A live TV in view.",
    "cam5": "0-171 in the room (from ~145 only his head at the bottom edge); 172-233 not visible; 234-338 "
            "behind the glass on the right (the next room), fully from ~250.",
    "cam7": "0-~88 only his legs at the top edge; 88-~220 in the room; ~220-224 in the glass door, then "
            "his legs beyond it to 259; 260-337 not visible (the door stays open till ~300, then swings shut).",
}


def frame_mask(ranges: list[tuple[int, int]], n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for a, b in ranges:
        mask[a:b + 1] = True
    return mask


def visible_mask(cam_id: str, n: int) -> np.ndarray:
    return frame_mask(VISIBLE[cam_id], n)


def on_floor_mask(cam_id: str, n: int) -> np.ndarray:
    return frame_mask(ON_FLOOR[cam_id], n)


def median_background(frames: list[np.ndarray], every: int = 5) -> np.ndarray:
    return np.median(np.stack(frames[::every]), axis=0).astype(np.uint8)


def layout_camera(cam_id: str, focal_scale: float = 1.0, ignore: bool = True, nominal: bool = False):
    """The aifi layout camera; `nominal`: with the nominal lens instead of the measured focal length."""
    from storefuse_core import aifi
    from storefuse_core.layout import load_store
    from storefuse_core.vision.camera import cameras_of

    cam = cameras_of(load_store("aifi"))[cam_id]
    fx = aifi.nominal_fx() if nominal else cam.fx
    return replace(cam, fx=fx * focal_scale, fy=fx * focal_scale, ignore=cam.ignore if ignore else ())


def run_video(path: Path, cam_id: str, mode: str = "cold", debug_dir: Path | None = None,
              focal_scale: float = 1.0, ignore: bool = True, frames: list | None = None,
              background: str = "storefuse", nominal: bool = False) -> dict:
    """Counts for one video and one start mode ('cold' or 'median')."""
    import cv2
    from background_baselines import make_detector

    from storefuse_core.vision.person import draw_detections
    from storefuse_core.vision.video import read_frames

    cam = layout_camera(cam_id, focal_scale, ignore, nominal)
    frames = frames if frames is not None else list(read_frames(path))
    detector = make_detector(cam, None, background)     # default settings, as on simulated frames
    if mode == "median":
        detector.set_background(median_background([f.image for f in frames]))
    elif mode != "cold":
        raise ValueError(f"mode {mode!r}: use cold or median")
    counts, spent = [], 0.0
    for index, stamp, image in frames:
        t0 = time.perf_counter()
        dets = detector.detect(image, stamp)
        spent += time.perf_counter() - t0
        counts.append(len(dets))
        if debug_dir is not None and index % 10 == 0:
            pic = draw_detections(image, dets, cam)
            for poly in cam.ignore:
                cv2.polylines(pic, [np.round(np.asarray(poly)).astype(np.int32)], True, (255, 0, 255), 1)
            mask = cv2.cvtColor(cv2.resize(detector.last_mask, (image.shape[1], image.shape[0])), cv2.COLOR_GRAY2BGR)
            cv2.imwrite(str(debug_dir / f"{cam_id}_{mode}_{index:03d}.png"), np.hstack([pic, mask]))
    c = np.array(counts)
    floor = on_floor_mask(cam_id, len(c))
    vis = visible_mask(cam_id, len(c))
    return {
        "video": path.name, "camera": cam_id, "mode": mode, "background": background, "fx": round(cam.fx, 1),
        "ignore_regions": len(cam.ignore),
        "frames": int(len(c)),
        "frames_0": int((c == 0).sum()), "frames_1": int((c == 1).sum()), "frames_2plus": int((c >= 2).sum()),
        "mean_detections": round(float(c.mean()), 2),
        "on_floor_frames": int(floor.sum()), "on_floor_with_detection": int((c[floor] >= 1).sum()),
        "on_floor_exactly_1": int((c[floor] == 1).sum()),
        "off_floor_frames": int((~floor).sum()), "off_floor_with_detection": int((c[~floor] >= 1).sum()),
        "visible_frames": int(vis.sum()), "visible_with_detection": int((c[vis] >= 1).sum()),
        "absent_frames": int((~vis).sum()), "absent_with_detection": int((c[~vis] >= 1).sum()),
        "ms_per_frame": round(1000 * spent / max(1, len(c)), 2),
        "per_second_max": "".join(str(min(9, int(c[k:k + 10].max()))) for k in range(0, len(c), 10)),
    }


def size_ratios(detector, masks: list[np.ndarray]) -> np.ndarray:
    """Area of the largest foreground blob / the area the detector expects for a person there."""
    import cv2

    out = []
    for mask in masks:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n < 2:
            continue
        i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h, area = (int(v) for v in stats[i])
        cut = x <= 2 or y <= 2 or x + w >= detector.size[0] - 2 or y + h >= detector.size[1] - 2
        ys, xs = np.nonzero(labels == i)
        q, _, _ = detector.locate(np.stack([xs, ys], axis=1).astype(np.float32), cut)
        if np.all(np.isfinite(q)):
            out.append(area / detector.expected_area_at(q[:2]))
    return np.array(out)


def fit_focal(path: Path, cam_id: str, frames: list | None = None) -> dict:
    """The focal length at which the shopper has the silhouette area the detector expects (median
    ratio 1), under the nominal pose; foreground against the median background, frames on the floor."""
    from storefuse_core.vision.person import PersonDetector
    from storefuse_core.vision.video import read_frames

    frames = frames if frames is not None else list(read_frames(path))
    images = [f.image for f in frames]
    nominal = layout_camera(cam_id, nominal=True)
    ref = PersonDetector(nominal)
    ref.set_background(median_background(images))
    floor = on_floor_mask(cam_id, len(images))
    masks = [ref.foreground(img) for img in images]
    masks = [m for m, on in zip(masks, floor) if on]

    def median_ratio(scale: float) -> float:
        cam = replace(nominal, fx=nominal.fx * scale, fy=nominal.fy * scale)
        return float(np.median(size_ratios(PersonDetector(cam), masks)))

    lo, hi = 0.5, 4.0                      # the ratio falls as the focal length grows
    for _ in range(20):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if median_ratio(mid) > 1.0 else (lo, mid)
    scale = (lo * hi) ** 0.5
    return {"camera": cam_id, "nominal_fx": nominal.fx, "frames": len(masks),
            "median_ratio_nominal": round(median_ratio(1.0), 2), "scale": round(scale, 3),
            "fx": round(nominal.fx * scale, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=None, help="JSON (default out/bench/aifi_videos.json)")
    ap.add_argument("--debug-dir", type=Path, default=None, help="annotated frames (outside the repository)")
    ap.add_argument("--focal-scale", type=float, default=1.0,
                    help="scale the layout cameras' focal length: how big the detector expects a person")
    ap.add_argument("--no-ignore", action="store_true", help="without the layout's ignore regions")
    ap.add_argument("--nominal-camera", action="store_true", help="the nominal lens instead of the measured fx")
    ap.add_argument("--background", default="storefuse", choices=["storefuse", "mog2", "knn"],
                    help="foreground from OpenCV's MOG2/KNN instead (a comparison)")
    ap.add_argument("--modes", nargs="+", default=["cold"], choices=["cold", "median"])
    ap.add_argument("--fit-focal", action="store_true", help="measure each camera's focal length from the shopper")
    args = ap.parse_args()
    from storefuse_core.vision.video import read_frames

    videos = args.data / "videos"
    if not videos.is_dir():
        raise SystemExit(f"AiFi videos not found at {videos} (give DATASET_DIR or set STOREFUSE_AIFI_DIR)")
    if args.debug_dir is not None:
        args.debug_dir = args.debug_dir.resolve()
        if args.debug_dir.is_relative_to(ROOT):
            raise SystemExit("--debug-dir must be outside the repository (frames are never stored in it)")
        args.debug_dir.mkdir(parents=True, exist_ok=True)
    rows, fits = [], []
    for cam_id in CAMERAS:
        frames = list(read_frames(videos / f"{cam_id}.mp4"))
        if args.fit_focal:
            fit = fit_focal(videos / f"{cam_id}.mp4", cam_id, frames)
            fits.append(fit)
            print(f"{cam_id} focal length: nominal fx {fit['nominal_fx']} (median area/expected "
                  f"{fit['median_ratio_nominal']}) -> fx {fit['fx']} (x{fit['scale']}) over {fit['frames']} frames",
                  flush=True)
            continue
        for mode in args.modes:
            r = run_video(videos / f"{cam_id}.mp4", cam_id, mode, args.debug_dir, args.focal_scale,
                          not args.no_ignore, frames, args.background, args.nominal_camera)
            rows.append(r)
            print(f"{cam_id} {mode:6s} fx {r['fx']} frames {r['frames']}: 0/1/2+ = {r['frames_0']}/{r['frames_1']}/"
                  f"{r['frames_2plus']}; on the floor: >=1 in {r['on_floor_with_detection']}/{r['on_floor_frames']}, "
                  f"exactly 1 in {r['on_floor_exactly_1']}; off it: >=1 in {r['off_floor_with_detection']}/"
                  f"{r['off_floor_frames']}; visible anywhere: >=1 in {r['visible_with_detection']}/"
                  f"{r['visible_frames']}; {r['ms_per_frame']} ms/frame; max per second {r['per_second_max']}",
                  flush=True)
    out = args.out or ROOT / "out" / "bench" / ("aifi_focal_fit.json" if args.fit_focal else "aifi_videos.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"dataset": str(args.data), "where": WHERE, "on_floor": ON_FLOOR, "visible": VISIBLE,
           "focal_scale": args.focal_scale, "ignore": not args.no_ignore, "nominal_camera": args.nominal_camera,
           "background": args.background}
    doc.update({"fit_focal": fits} if args.fit_focal else {"results": rows})
    out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
