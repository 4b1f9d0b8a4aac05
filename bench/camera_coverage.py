"""How much of the shoppers' walking the store's ceiling cameras see: the fraction of time a shopper is
in view (and not hidden by a gondola) of at least one and at least two RGB cameras.

    . scripts/env.sh && python bench/camera_coverage.py [--scenario scenarios/minimart_day.yaml]
                                                        [--seeds 3] [--fx 320 --fx 200]

The shoppers' true paths come from the simulator (every 0.5 s of every visit of the scenario's seeds);
visibility is the detection model's own test (`vision.detection_model.visibility`: the body point in
the image, not occluded by a gondola). `--fx F` adds a row with every camera's focal length set to F
(same image size, so a wider or narrower lens). A blind stretch on the walk in from the gate is where
tracks get lost and identities swap; this is the installer's check for it. Writes
out/bench/camera_coverage.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def coverage(store, cameras, points) -> dict:
    from storefuse_core.vision import Person
    from storefuse_core.vision.detection_model import visibility
    seen = []
    holes: Counter = Counter()
    for x, y in points:
        person = [Person(id="p", x=x, y=y)]
        n = sum(1 for c in cameras if (lambda v: v.in_view and not v.occluded)(visibility(c, person, store)[0]))
        seen.append(n)
        if n == 0:
            holes[(round(x * 2) / 2, round(y * 2) / 2)] += 1
    seen = np.array(seen)
    return {"points": len(points), "seen_1": round(float(np.mean(seen >= 1)), 4),
            "seen_2": round(float(np.mean(seen >= 2)), 4),
            "blind_spots": [{"x": k[0], "y": k[1], "points": v} for k, v in holes.most_common(8)]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "minimart_day.yaml")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--fx", type=float, action="append", default=[], help="also try every camera at this focal length")
    args = ap.parse_args()
    from storefuse_core.calibration import load_calibration
    from storefuse_core.simulation.scenario import load_scenario
    from storefuse_core.simulation.world import World
    from storefuse_core.vision.camera import PinholeCamera
    base = load_scenario(args.scenario)
    store = base.store
    points = []
    for i in range(args.seeds):
        scenario = load_scenario(args.scenario, base.seed + i)
        gt = World(scenario, load_calibration(store.root / "calibration.yaml")).ground_truth()
        for path in gt["trajectories"].values():
            last = None
            for t, x, y in path:
                if last is None or t - last >= 500_000_000:
                    points.append((x, y))
                    last = t
    layout = [PinholeCamera.from_layout(c) for _, c in sorted(store.cameras.items()) if c.kind == "rgb"]
    rows = [{"lens": "layout", "fx": sorted({c.fx for c in layout}), **coverage(store, layout, points)}]
    for fx in args.fx:
        cams = [replace(c, fx=fx, fy=fx) for c in layout]
        rows.append({"lens": f"fx={fx:g}", "fx": [fx], **coverage(store, cams, points)})
    out = {"scenario": args.scenario.stem, "seeds": args.seeds, "store": store.name, "cameras": len(layout),
           "rows": rows}
    path = ROOT / "out" / "bench" / "camera_coverage.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    for r in rows:
        print(f"{r['lens']:10s} in view of >= 1 camera {r['seen_1']:.1%}, >= 2 {r['seen_2']:.1%} "
              f"({r['points']} points)", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
