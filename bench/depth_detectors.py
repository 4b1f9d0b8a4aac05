"""The depth-camera person detectors compared on rendered depth frames (vision/render.py render_depth).

Detectors: `heightmap` (person.py DepthPersonDetector: max-height map on a 5 cm grid, local maxima),
`dbscan-scipy` and `dbscan-open3d` (depth.py ClusterDepthDetector: point cloud -> floor and shelf
removal -> voxels -> DBSCAN -> heads; the open3d backend only where open3d imports). Scenes: 1-4
shoppers at random inside the camera's view on the walkable floor of the minimart (never inside a
gondola, at least 0.45 m apart; a quarter of the scenes put two of them 0.45-0.6 m apart, shoulder
to shoulder), heights 1.50-1.95 m, random headings, 30 % reaching into the nearest gondola.
A detection within 0.5 m of a shopper (Hungarian) is a hit.

    . scripts/env.sh && python bench/depth_detectors.py [--frames 200] [--seed 1]

Writes out/bench/depth_detectors.json: per detector recall, false detections per frame, position
error (mean, p95), height error (mean |error|, p95), ms per frame (median, mean; one thread, the
first frame excluded), and recall on the shoulder-to-shoulder scenes.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packages" / "storefuse_core"))

from storefuse_core.layout import load_store  # noqa: E402
from storefuse_core.vision import Person  # noqa: E402
from storefuse_core.vision.camera import PinholeCamera, point_in_gondola  # noqa: E402
from storefuse_core.vision.depth import ClusterDepthDetector, DepthClusterParams, open3d_available  # noqa: E402
from storefuse_core.vision.detection_model import match  # noqa: E402
from storefuse_core.vision.person import DepthPersonDetector  # noqa: E402
from storefuse_core.vision.render import CameraRenderer  # noqa: E402


def scenes(store, cam: PinholeCamera, n: int, seed: int) -> list[tuple[list[Person], bool]]:
    rng = np.random.default_rng(seed)
    foot = cam.footprint(h=1.8, margin=20)[:, :2]            # heads stay in view
    lo, hi = foot.min(axis=0), foot.max(axis=0)
    out = []
    for k in range(n):
        pair = k % 4 == 0
        people: list[Person] = []
        want = int(rng.integers(2, 5)) if pair else int(rng.integers(1, 5))
        tries = 0
        while len(people) < want and tries < 500:
            tries += 1
            if pair and len(people) == 1:
                a = rng.uniform(0, 2 * math.pi)
                r = rng.uniform(0.45, 0.6)
                xy = np.array([people[0].x + r * math.cos(a), people[0].y + r * math.sin(a)])
            else:
                xy = rng.uniform(lo, hi)
            if point_in_gondola(store, xy[None, :], margin=0.35)[0] or not (lo <= xy).all() or not (xy <= hi).all():
                continue
            if any(math.hypot(xy[0] - p.x, xy[1] - p.y) < 0.45 for p in people):
                continue
            reach = None
            if rng.random() < 0.3:
                g = min(store.gondolas.values(), key=lambda g: math.hypot(g.x - xy[0], g.y - xy[1]))
                front_y = g.y - g.depth_m / 2 if xy[1] < g.y else g.y + g.depth_m / 2
                reach = (float(np.clip(xy[0], g.x - g.length_m / 2, g.x + g.length_m / 2)), front_y,
                         float(rng.uniform(1.0, 1.4)))
                if math.hypot(reach[0] - xy[0], reach[1] - xy[1]) > 0.7:
                    reach = None
            people.append(Person(f"p{len(people)}", float(xy[0]), float(xy[1]), float(rng.uniform(0, 2 * math.pi)),
                                 float(rng.uniform(1.5, 1.95)), reach=reach))
        out.append((people, pair))
    return out


def run(name, detector, frames) -> dict:
    hits = truths = dets = 0
    pos_err, h_err, ms = [], [], []
    pair_hits = pair_truths = 0
    for k, (people, depth, pair) in enumerate(frames):
        t0 = time.perf_counter()
        found = detector.detect(depth, k)
        if k:                                  # the first frame pays imports and caches
            ms.append(1000 * (time.perf_counter() - t0))
        pairs = match(np.array([[p.x, p.y] for p in people]), np.array([[d.x, d.y] for d in found]), 0.5)
        hits, truths, dets = hits + len(pairs), truths + len(people), dets + len(found)
        if pair:
            pair_hits, pair_truths = pair_hits + len(pairs), pair_truths + len(people)
        for i, j, e in pairs:
            pos_err.append(e)
            h_err.append(abs(found[j].height_m - people[i].height_m))
    return {"detector": name, "frames": len(frames), "people": truths, "recall": round(hits / truths, 4),
            "false_per_frame": round((dets - hits) / len(frames), 4),
            "pos_err_mean_m": round(float(np.mean(pos_err)), 4),
            "pos_err_p95_m": round(float(np.percentile(pos_err, 95)), 4),
            "height_err_mean_m": round(float(np.mean(h_err)), 4),
            "height_err_p95_m": round(float(np.percentile(h_err, 95)), 4),
            "ms_median": round(float(np.median(ms)), 2), "ms_mean": round(float(np.mean(ms)), 2),
            "shoulder_to_shoulder_recall": round(pair_hits / pair_truths, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "depth_detectors.json")
    args = ap.parse_args()
    import cv2
    cv2.setNumThreads(1)
    store = load_store("minimart")
    cam = PinholeCamera.looking_down(7.5, 3.5, 3.0, width=320, height=240, f=160.0, id="cam7", kind="depth")
    renderer = CameraRenderer(store, cam, seed=args.seed)
    frames = [(people, renderer.render_depth(people, 0.1 * k), pair)
              for k, (people, pair) in enumerate(scenes(store, cam, args.frames, args.seed))]
    detectors = [("heightmap", DepthPersonDetector(cam, store)),
                 ("dbscan-scipy", ClusterDepthDetector(cam, store, DepthClusterParams(backend="scipy"))),
                 ("dbscan-scipy-fit-floor", ClusterDepthDetector(cam, store, DepthClusterParams(backend="scipy",
                                                                                                fit_floor=True)))]
    if open3d_available():
        import open3d as o3d
        o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
        detectors.append(("dbscan-open3d", ClusterDepthDetector(cam, store, DepthClusterParams(backend="open3d"))))
    results = [run(name, det, frames) for name, det in detectors]
    report = {"camera": "320x240, f 160 px, 3.0 m above the floor, looking down (minimart, x 7.5 y 3.5)",
              "seed": args.seed, "open3d": open3d_available(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
