#!/usr/bin/env python3
"""Fit the camera detection model (config/detection_model.yaml) by running the real detector on
rendered frames.

For every RGB camera of the store: episodes of shoppers (1..6 at a time) walking random walks on
the floor in the camera's view — dwelling at shelves and reaching in now and then — under drifting
light. Each episode starts a fresh detector on empty frames (the store at opening), then renders
the walk, runs `PersonDetector` on every frame, matches detections to the true positions (Hungarian,
0.75 m gate) and records misses, false positives and position errors by distance from the camera's
nadir, occlusion and crowding. The fitted miss/false/noise parameters go to config/detection_model.yaml
and every measurement to out/bench/detection_model_fit.json.

    . scripts/env.sh && python bench/fit_detection_model.py            # minimart, ~300 frames a camera
    python bench/fit_detection_model.py --episodes 2 --frames 30 --no-write   # a quick look
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packages" / "storefuse_core"))

import cv2  # noqa: E402
import yaml  # noqa: E402

from storefuse_core.layout import load_store  # noqa: E402
from storefuse_core.vision import Person  # noqa: E402
from storefuse_core.vision.camera import cameras_of, floor_bounds, point_in_gondola  # noqa: E402
from storefuse_core.vision.detection_model import (  # noqa: E402
    DetectionModel,
    DetectionModelParams,
    match,
    visibility,
)
from storefuse_core.vision.person import DetectorParams, draw_detections  # noqa: E402
from storefuse_core.vision.render import CameraRenderer, Lighting  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from background_baselines import BACKGROUNDS, make_detector  # noqa: E402

GATE_M = 0.75
SQRT_HALF_PI = math.sqrt(math.pi / 2)   # mean distance error of a 2-D Gaussian with per-axis sd 1: the
                                        # per-axis sd is fitted from the (robust) mean error, not the RMS
SHIRTS = [(40, 40, 200), (200, 120, 40), (60, 170, 60), (30, 30, 30), (230, 230, 230), (130, 130, 130),
          (40, 200, 230), (150, 60, 150), (90, 40, 20), (20, 100, 200), (180, 180, 60), (70, 70, 140)]
PANTS = [(90, 60, 40), (30, 30, 30), (110, 140, 160), (70, 70, 70), (120, 90, 60), (40, 40, 90)]
DIST_BINS = [0.0, 1.0, 2.0, 3.0, 4.0, 6.0]


class Walker:
    """A shopper on a random walk that avoids gondolas, the walls and the other shoppers,
    and now and then stops at a shelf and reaches in."""

    def __init__(self, pid: str, xy, rng: np.random.Generator):
        self.id = pid
        self.xy = np.asarray(xy, float)
        self.heading = float(rng.uniform(-math.pi, math.pi))
        self.speed = float(rng.uniform(0.6, 1.3))
        self.height = float(np.clip(rng.normal(1.72, 0.08), 1.5, 1.95))
        self.shirt = SHIRTS[int(rng.integers(len(SHIRTS)))]
        self.pants = PANTS[int(rng.integers(len(PANTS)))]
        self.dwell = 0
        self.reach = None
        self.leader: Walker | None = None     # shoppers in a group walk side by side
        self.side = float(rng.uniform(0.45, 0.6)) * (1 if rng.random() < 0.5 else -1)

    def person(self) -> Person:
        return Person(self.id, float(self.xy[0]), float(self.xy[1]), self.heading, self.height, self.shirt,
                      self.pants, self.reach)


def _ok(store, region, xy, others, min_sep=0.5) -> bool:
    x0, y0, x1, y1 = region
    if not (x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1):
        return False
    if point_in_gondola(store, xy[None, :], 0.3)[0]:
        return False
    return all(np.hypot(*(xy - o)) >= min_sep for o in others)


def _near_shelf(store, xy):
    """The nearest point on a gondola face at reachable height, if within 0.8 m."""
    best, bd = None, 0.8
    for g in store.gondolas.values():
        c, s = math.cos(g.yaw), math.sin(g.yaw)
        d = xy - [g.x, g.y]
        a = float(np.clip(d[0] * c + d[1] * s, -g.length_m / 2, g.length_m / 2))
        b = float(np.clip(-d[0] * s + d[1] * c, -g.depth_m / 2, g.depth_m / 2))
        q = np.array([g.x + a * c - b * s, g.y + a * s + b * c])
        dist = float(np.hypot(*(xy - q)))
        if dist < bd:
            best, bd = q, dist
    return best


def walk_step(store, walkers, region, rng, dt):
    for w in walkers:
        others = [o.xy for o in walkers if o is not w]
        if w.leader is not None and w.dwell == 0:
            ld = w.leader
            left = np.array([-math.sin(ld.heading), math.cos(ld.heading)])
            goal = ld.xy + w.side * left
            step = goal - w.xy
            n = float(np.hypot(*step))
            nxt = w.xy + step * min(1.0, 1.6 * dt / max(n, 1e-6))
            if _ok(store, region, nxt, [o.xy for o in walkers if o is not w and o is not ld]) and \
                    np.hypot(*(nxt - ld.xy)) >= 0.35:
                if n > 0.05:
                    w.heading = math.atan2(step[1], step[0]) if n > 0.3 else ld.heading
                w.xy = nxt
                continue
        if w.dwell > 0:
            w.dwell -= 1
            if w.dwell == 0:
                w.reach = None
            continue
        shelf = _near_shelf(store, w.xy)
        if shelf is not None and rng.random() < 0.04:
            w.dwell = int(rng.integers(10, 30))
            w.heading = math.atan2(shelf[1] - w.xy[1], shelf[0] - w.xy[0])
            w.reach = (float(shelf[0]), float(shelf[1]), float(rng.uniform(0.5, 1.5)))
            continue
        w.heading += float(rng.normal(0, 0.25))
        for _ in range(8):
            nxt = w.xy + w.speed * dt * np.array([math.cos(w.heading), math.sin(w.heading)])
            if _ok(store, region, nxt, others):
                w.xy = nxt
                break
            w.heading += float(rng.uniform(0.8, 2.5)) * (1 if rng.random() < 0.5 else -1)


def spawn(store, region, k, rng, prefix, group_prob=0.35):
    walkers = []
    tries = 0
    while len(walkers) < k and tries < 2000:
        tries += 1
        xy = np.array([rng.uniform(region[0], region[2]), rng.uniform(region[1], region[3])])
        if _ok(store, region, xy, [w.xy for w in walkers], 0.7):
            w = Walker(f"{prefix}_{len(walkers)}", xy, rng)
            if walkers and walkers[-1].leader is None and rng.random() < group_prob:
                w.leader = walkers[-1]
            walkers.append(w)
    return walkers


def view_region(store, cam, grow=0.6):
    """Floor rectangle covering the camera's view of the body point, grown, clipped to the floor."""
    fp = cam.footprint(1.0)
    fp = fp[np.all(np.isfinite(fp), axis=1)]
    fx0, fy0, fx1, fy1 = floor_bounds(store)
    return (max(fx0 + 0.3, fp[:, 0].min() - grow), max(fy0 + 0.3, fp[:, 1].min() - grow),
            min(fx1 - 0.3, fp[:, 0].max() + grow), min(fy1 - 0.3, fp[:, 1].max() + grow))


def run_camera(store, cam, args, det_params, records, timing, debug_dir):
    rng = np.random.default_rng([args.seed, int(cam.id[3:])])
    region = view_region(store, cam)
    dt = 1.0 / cam.rate_hz
    for ep in range(args.episodes):
        k = 1 + (ep % 6) if args.max_people >= 6 else 1 + (ep % args.max_people)
        t = float(rng.uniform(0, 100))
        # drift faster than a store's, and every other episode a light bank switches mid-way
        steps = ((t + (args.warmup + args.frames / 2) * dt, 0.8, 0.04),) if ep % 2 else ()
        lighting = Lighting(seed=args.seed * 100 + ep, drift_amp=0.15, drift_period_s=25.0, warmth_amp=0.06,
                            warmth_period_s=40.0, steps=steps)
        renderer = CameraRenderer(store, cam, seed=args.seed * 100 + ep, lighting=lighting)
        detector = make_detector(cam, det_params, args.background)
        for _ in range(args.warmup):
            detector.detect(renderer.render([], t), int(t * 1e9))
            t += dt
        walkers = spawn(store, region, k, rng, f"{cam.id}_e{ep}")
        for f in range(args.frames):
            walk_step(store, walkers, region, rng, dt)
            people = [w.person() for w in walkers]
            t0 = time.perf_counter()
            img = renderer.render(people, t)
            t1 = time.perf_counter()
            dets = detector.detect(img, int(t * 1e9))
            t2 = time.perf_counter()
            timing["render_ms"].append((t1 - t0) * 1000)
            timing["detect_ms"].append((t2 - t1) * 1000)
            vis = visibility(cam, people, store)
            truth = np.array([[p.x, p.y] for p in people])
            pairs = match(truth, np.array([[d.x, d.y] for d in dets]), GATE_M)
            by_truth = {i: (j, e) for i, j, e in pairs}
            matched_dets = {j for _, j, _ in pairs}
            rec = {"camera": cam.id, "episode": ep, "frame": f, "people": len(people), "truth": [],
                   "false": [], "n_dets": len(dets)}
            for i, (p, v) in enumerate(zip(people, vis)):
                entry = {"id": p.id, "x": round(p.x, 3), "y": round(p.y, 3), "height": round(p.height_m, 3),
                         "in_view": v.in_view, "distance_m": round(v.distance_m, 3), "occluded": v.occluded,
                         "crowded": v.crowded, "edge": v.edge, "by_gondola": v.by_gondola,
                         "reaching": p.reach is not None, "detected": i in by_truth}
                if i in by_truth:
                    d = dets[by_truth[i][0]]
                    entry.update(dx=round(d.x - p.x, 4), dy=round(d.y - p.y, 4), score=round(d.score, 3),
                                 cov=[round(c, 6) for c in (d.cov[0], d.cov[1], d.cov[4])],
                                 pixel=[round(c, 2) for c in d.pixel] if d.pixel else None)
                rec["truth"].append(entry)
            for j, d in enumerate(dets):
                if j not in matched_dets:
                    rec["false"].append({"x": round(d.x, 3), "y": round(d.y, 3), "score": round(d.score, 3)})
            records.append(rec)
            timing.setdefault("frames", []).append((cam, people, int(t * 1e9)))
            bad = any(e["in_view"] and not e["occluded"] and (not e["detected"] or math.hypot(e["dx"], e["dy"]) > 0.3)
                      for e in rec["truth"]) or rec["false"]
            if debug_dir is not None and (f == args.frames // 2 or (bad and timing.setdefault("bad", 0) < 60)):
                timing["bad"] = timing.get("bad", 0) + bool(bad)
                dbg = draw_detections(img, dets, cam)
                for p, e in zip(people, rec["truth"]):      # truth: green circle on the floor, red if missed
                    uv, z = cam.project(np.array([[p.x, p.y, 0.0]]))
                    if z[0] > 0 and np.all(np.isfinite(uv)):
                        cv2.circle(dbg, tuple(int(v) for v in np.round(uv[0])), 6,
                                   (0, 200, 0) if e["detected"] else (0, 0, 255), 2)
                tag = "bad" if bad else "mid"
                cv2.imwrite(str(debug_dir / f"{cam.id}_ep{ep}_f{f:03d}_{tag}.png"), dbg)
            t += dt


def _finite(obj):
    """NaN/inf to null, so the JSON is strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _rate(xs):
    return float(np.mean(xs)) if len(xs) else float("nan")


def summarise(records):
    seen = [e for r in records for e in r["truth"] if e["in_view"]]
    clear = [e for e in seen if not e["occluded"] and not e["crowded"] and not e["edge"]]
    edge = [e for e in seen if e["edge"] and not e["occluded"] and not e["crowded"]]
    occl = [e for e in seen if e["occluded"]]
    crowd = [e for e in seen if e["crowded"] and not e["occluded"]]
    hits = [e for e in seen if e["detected"]]
    err = np.array([math.hypot(e["dx"], e["dy"]) for e in hits]) if hits else np.zeros(0)
    frames = len(records)
    n_false = sum(len(r["false"]) for r in records)
    nees = []
    for e in hits:
        cxx, cxy, cyy = e["cov"]
        cov = np.array([[cxx, cxy], [cxy, cyy]])
        v = np.array([e["dx"], e["dy"]])
        nees.append(float(v @ np.linalg.solve(cov, v)))
    by_dist = []
    visible = [e for e in seen if not e["occluded"]]
    for lo, hi in zip(DIST_BINS[:-1], DIST_BINS[1:]):
        sel = [e for e in visible if lo <= e["distance_m"] < hi]
        sel_clear = [e for e in clear if lo <= e["distance_m"] < hi]
        hs = [e for e in sel if e["detected"]]
        ee = np.array([math.hypot(e["dx"], e["dy"]) for e in hs]) if hs else np.zeros(0)
        axis = np.array([c for e in hs for c in (e["dx"], e["dy"])]) if hs else np.zeros(0)
        by_dist.append({"from_m": lo, "to_m": hi, "n": len(sel), "recall": _rate([e["detected"] for e in sel]),
                        "n_clear": len(sel_clear), "recall_clear": _rate([e["detected"] for e in sel_clear]),
                        "mean_error_m": float(ee.mean()) if len(ee) else float("nan"),
                        "sd_m": float(ee.mean() / SQRT_HALF_PI) if len(ee) else float("nan"),
                        "axis_rms_m": float(np.sqrt(np.mean(axis ** 2))) if len(axis) else float("nan"),
                        "mean_distance_m": _rate([e["distance_m"] for e in sel])})
    return {
        "frames": frames, "in_view": len(seen),
        "recall": _rate([e["detected"] for e in seen]),
        "recall_clear": _rate([e["detected"] for e in clear]), "n_clear": len(clear),
        "recall_edge": _rate([e["detected"] for e in edge]), "n_edge": len(edge),
        "recall_visible": _rate([e["detected"] for e in seen if not e["occluded"]]),
        "recall_occluded": _rate([e["detected"] for e in occl]), "n_occluded": len(occl),
        "recall_crowded": _rate([e["detected"] for e in crowd]), "n_crowded": len(crowd),
        "recall_reaching": _rate([e["detected"] for e in seen if e["reaching"]]),
        "false_per_frame": n_false / max(1, frames),
        "mean_error_m": float(err.mean()) if len(err) else float("nan"),
        "median_error_m": float(np.median(err)) if len(err) else float("nan"),
        "p95_error_m": float(np.percentile(err, 95)) if len(err) else float("nan"),
        "mean_nees_2d": float(np.mean(nees)) if nees else float("nan"),
        "by_distance": by_dist,
    }


def _linfit(x, y, w):
    """Weighted least squares y = a + b x: (a, b, se_b)."""
    x, y, w = (np.asarray(v, float) for v in (x, y, w))
    ok = np.isfinite(x) & np.isfinite(y) & (w > 0)
    x, y, w = x[ok], y[ok], w[ok]
    if len(x) < 3:
        return float(np.average(y, weights=w)) if len(y) else float("nan"), 0.0, float("inf")
    A = np.stack([np.ones_like(x), x], axis=1) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(A, y * np.sqrt(w), rcond=None)
    resid = y - (coef[0] + coef[1] * x)
    dof = max(1, len(x) - 2)
    cov = np.linalg.pinv(A.T @ A) * float(np.sum(w * resid ** 2) / dof)
    return float(coef[0]), float(coef[1]), float(np.sqrt(max(cov[1, 1], 0.0)))


def model_check(store, frames, params: DetectionModelParams, seed: int) -> dict:
    """The fitted model's own statistics on the very same shoppers (it should look like the detector)."""
    model = DetectionModel(params, seed=seed, store=store)
    records = []
    for cam, people, stamp in frames:
        dets = model.detect(cam, people, stamp)
        vis = visibility(cam, people, store)
        pairs = match(np.array([[p.x, p.y] for p in people]), np.array([[d.x, d.y] for d in dets]), GATE_M)
        by_truth = {i: j for i, j, _ in pairs}
        rec = {"truth": [], "false": [None] * (len(dets) - len(pairs))}
        for i, (p, v) in enumerate(zip(people, vis)):
            e = {"in_view": v.in_view, "occluded": v.occluded, "crowded": v.crowded, "edge": v.edge,
                 "reaching": p.reach is not None, "distance_m": v.distance_m, "detected": i in by_truth}
            if i in by_truth:
                d = dets[by_truth[i]]
                e.update(dx=d.x - p.x, dy=d.y - p.y, cov=[d.cov[0], d.cov[1], d.cov[4]])
            rec["truth"].append(e)
        records.append(rec)
    return summarise(records)


def fit(summary, records, base: DetectionModelParams) -> tuple[DetectionModelParams, dict]:
    notes = {}
    cbins = [b for b in summary["by_distance"] if b["n_clear"] >= 20]
    a, b, se = _linfit([b["mean_distance_m"] for b in cbins], [1 - b["recall_clear"] for b in cbins],
                       [b["n_clear"] for b in cbins])
    overall_clear_miss = 1 - summary["recall_clear"]
    if np.isfinite(se) and abs(b) > 2 * se and abs(b) > 0.005:
        miss_rate, miss_slope = max(0.0, a), b
        notes["miss"] = f"miss rate grows {b:+.3f}/m from the nadir (se {se:.3f}): kept"
    else:
        miss_rate, miss_slope = overall_clear_miss, 0.0
        notes["miss"] = f"no clear trend with distance (slope {b:+.3f} +- {se:.3f}): constant"
    bins = [b for b in summary["by_distance"] if b["n"] >= 20]
    a2, b2, se2 = _linfit([b["mean_distance_m"] for b in bins], [b["sd_m"] for b in bins],
                          [b["n"] for b in bins])
    errs = np.array([math.hypot(e["dx"], e["dy"]) for r in records for e in r["truth"]
                     if e["in_view"] and e["detected"] and not e["occluded"]])
    if np.isfinite(se2) and abs(b2) > 2 * se2 and abs(b2) > 0.005:
        sd0, sd_slope = max(0.01, a2), b2
        notes["pos_sd"] = f"position sd grows {b2:+.3f} m/m (se {se2:.3f}): kept"
    else:
        sd0, sd_slope = float(errs.mean() / SQRT_HALF_PI) if len(errs) else base.pos_sd_m, 0.0
        notes["pos_sd"] = f"no clear trend with distance (slope {b2:+.3f} +- {se2:.3f}): constant"
    edge = 1 - summary["recall_edge"] if summary["n_edge"] >= 20 else base.edge_miss_rate
    occl = 1 - summary["recall_occluded"] if summary["n_occluded"] >= 20 else base.occluded_miss_rate
    crowd = 1 - summary["recall_crowded"] if summary["n_crowded"] >= 20 else base.crowded_miss_rate
    params = replace(base, miss_rate=round(float(miss_rate), 4), miss_rate_per_m=round(float(miss_slope), 4),
                     edge_miss_rate=round(float(edge), 4), occluded_miss_rate=round(float(occl), 4),
                     crowded_miss_rate=round(float(crowd), 4),
                     false_per_frame=round(float(summary["false_per_frame"]), 4),
                     pos_sd_m=round(float(sd0), 4), pos_sd_per_m=round(float(sd_slope), 4))
    return params, notes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="minimart")
    ap.add_argument("--cameras", nargs="*", help="camera ids (default: every rgb camera)")
    ap.add_argument("--episodes", type=int, default=6, help="episodes per camera (people count cycles 1..6)")
    ap.add_argument("--frames", type=int, default=50, help="walking frames per episode")
    ap.add_argument("--warmup", type=int, default=15, help="empty frames before each episode")
    ap.add_argument("--max-people", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "out" / "bench"))
    ap.add_argument("--config", default=str(REPO / "config" / "detection_model.yaml"))
    ap.add_argument("--no-write", action="store_true", help="measure only; do not write the config")
    ap.add_argument("--debug-png", action="store_true", help="write one annotated frame per episode")
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="detector parameters other than the defaults (a what-if: measures only, writes no config)")
    ap.add_argument("--background", default="storefuse", choices=BACKGROUNDS,
                    help="foreground from OpenCV's MOG2/KNN instead (a comparison: measures only, writes no config)")
    args = ap.parse_args(argv)
    if args.background != "storefuse" or args.set:
        args.no_write = True

    store = load_store(args.store)
    cams = {cid: c for cid, c in cameras_of(store, "rgb").items() if not args.cameras or cid in args.cameras}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    debug_dir = out / "frames" if args.debug_png else None
    if debug_dir:
        debug_dir.mkdir(parents=True, exist_ok=True)
    defaults = DetectorParams()
    try:
        det_params = replace(defaults, **{k: type(getattr(defaults, k))(v) for k, v in
                                          (item.split("=", 1) for item in args.set)})
    except (AttributeError, TypeError, ValueError) as exc:
        ap.error(f"--set: {exc}")
    records, timing = [], {"render_ms": [], "detect_ms": []}
    started = time.perf_counter()
    per_camera = {}
    for cid, cam in cams.items():
        before = len(records)
        run_camera(store, cam, args, det_params, records, timing, debug_dir)
        per_camera[cid] = summarise(records[before:])
    summary = summarise(records)
    params, notes = fit(summary, records, DetectionModelParams())
    check = model_check(store, timing.pop("frames", []), params, args.seed)
    result = {
        "command": "python bench/fit_detection_model.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "store": args.store, "cameras": sorted(cams), "seed": args.seed, "gate_m": GATE_M,
        "background": args.background, "episodes_per_camera": args.episodes, "frames_per_episode": args.frames,
        "warmup_frames": args.warmup,
        "detector_params": det_params.__dict__, "summary": summary, "per_camera": per_camera,
        "timing_ms": {k: {"mean": float(np.mean(v)), "p50": float(np.median(v)), "p95": float(np.percentile(v, 95))}
                      for k, v in timing.items() if k.endswith("_ms") and v},
        "fitted": params.to_dict(), "notes": notes,
        "model_check": {k: v for k, v in check.items() if k != "by_distance"},
        "wall_s": round(time.perf_counter() - started, 1),
        "records": records,
    }
    (out / "detection_model_fit.json").write_text(json.dumps(_finite(result), indent=1), encoding="utf-8")
    s = summary
    print(f"frames {s['frames']}  in view {s['in_view']}  recall {s['recall']:.3f} (not occluded "
          f"{s['recall_visible']:.3f}; clear {s['recall_clear']:.3f} n={s['n_clear']}, edge {s['recall_edge']:.3f} "
          f"n={s['n_edge']}, crowded {s['recall_crowded']:.3f} n={s['n_crowded']}, occluded "
          f"{s['recall_occluded']:.3f} n={s['n_occluded']})  false/frame {s['false_per_frame']:.3f}")
    print(f"position error mean {s['mean_error_m']:.3f} m  median {s['median_error_m']:.3f}  "
          f"p95 {s['p95_error_m']:.3f}  NEES(2D) {s['mean_nees_2d']:.2f}")
    for b in s["by_distance"]:
        print(f"  {b['from_m']:.0f}-{b['to_m']:.0f} m from the nadir: n={b['n']:4d} recall {b['recall']:.3f} "
              f"mean err {b['mean_error_m']:.3f} axis rms {b['axis_rms_m']:.3f}")
    for cid, cs in per_camera.items():
        print(f"  {cid}: recall {cs['recall']:.3f} false/frame {cs['false_per_frame']:.3f} "
              f"mean err {cs['mean_error_m']:.3f}")
    tm = result["timing_ms"]
    print(f"render {tm['render_ms']['mean']:.1f} ms/frame, detect {tm['detect_ms']['mean']:.1f} ms/frame "
          f"({next(iter(cams.values())).width}x{next(iter(cams.values())).height})")
    for v in notes.values():
        print("  fit:", v)
    print(f"fitted model on the same shoppers: recall {check['recall']:.3f} (clear {check['recall_clear']:.3f}, edge "
          f"{check['recall_edge']:.3f}, crowded {check['recall_crowded']:.3f}, occluded {check['recall_occluded']:.3f})"
          f"  false/frame {check['false_per_frame']:.3f}  mean error {check['mean_error_m']:.3f} m")
    if not args.no_write:
        doc = {
            "# written by": "bench/fit_detection_model.py (do not edit by hand; rerun it)",
            "source": {"command": result["command"], "store": args.store, "cameras": sorted(cams),
                       "frames": s["frames"], "in_view": s["in_view"], "recall": round(s["recall"], 4),
                       "mean_error_m": round(s["mean_error_m"], 4),
                       "false_per_frame": round(s["false_per_frame"], 4)},
            "params": params.to_dict(),
        }
        header = ("# Camera detection model: fitted by running the real detector (storefuse_core.vision.person)\n"
                  "# on rendered frames. Regenerate: . scripts/env.sh && python bench/fit_detection_model.py\n"
                  "# Scenario sensors: detection_miss_rate / detection_false_per_frame / detection_pos_sd_m\n"
                  "# override miss_rate / false_per_frame / pos_sd_m (see vision/detection_model.py).\n")
        doc.pop("# written by")
        Path(args.config).parent.mkdir(parents=True, exist_ok=True)
        Path(args.config).write_text(header + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        print(f"wrote {args.config}")
    print(f"wrote {out / 'detection_model_fit.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
