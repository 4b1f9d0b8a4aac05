"""Offline simulation speed: simulated seconds per wall second for `storefuse sim`, per scenario,
with camera detections (default) and with rendered frames. Writes JSON (out/bench/sim_speed.json).

    . scripts/env.sh && python bench/sim_speed.py [--frames] [SCENARIO ...]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from storefuse_core.simulation.offline import run_offline
from storefuse_core.simulation.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["scenarios/minimart_day.yaml", "scenarios/grocery_peak.yaml"]


def measure(path: Path, frames: bool) -> dict:
    out = Path(tempfile.mkdtemp(prefix="sfbench-"))
    try:
        start = time.perf_counter()
        cpu0 = time.process_time()
        gt = run_offline(load_scenario(path), out, frames=frames)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        bag_mb = sum(f.stat().st_size for f in (out / "bag").iterdir()) / 1e6
    finally:
        shutil.rmtree(out, ignore_errors=True)
    events = sorted([(v["entry_ns"], 1) for v in gt["visits"]] + [(v["exit_ns"], -1) for v in gt["visits"]])
    inside = peak = 0
    for _, d in events:
        inside += d
        peak = max(peak, inside)
    return {"scenario": path.name, "frames": frames, "simulated_s": gt["duration_s"], "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "sim_s_per_wall_s": round(gt["duration_s"] / wall, 2), "visits": len(gt["visits"]),
            "peak_concurrent": peak, "bag_mb": round(bag_mb, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*", default=DEFAULT)
    ap.add_argument("--frames", action="store_true", help="also measure with rendered frames")
    ap.add_argument("--out", default=str(ROOT / "out" / "bench" / "sim_speed.json"))
    args = ap.parse_args()
    results = []
    for s in args.scenarios:
        for frames in ([False, True] if args.frames else [False]):
            r = measure(ROOT / s, frames)
            print(json.dumps(r), flush=True)
            results.append(r)
    doc = {"machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
           "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
